//! A part's compressed bytes on their way from its download to its decoder, and the
//! order parts start downloading in.
//!
//! [`spool`]: the download appends the bytes to an anonymous file ([`SpoolWriter`]) and
//! the decoder, on a blocking thread, reads them behind it ([`SpoolReader`]), waiting
//! when it has caught up. So a part is decoded as it arrives, the download never waits
//! for the decoder (the bytes wait in the file, not in memory), and the decoder sees
//! the end of the part only once the download has checked it ([`SpoolWriter::finish`]):
//! a download that is abandoned (a damaged body, an error, a cancelled pull) makes the
//! reader fail, so nothing decoded from it is ever complete.
//!
//! [`Turn`]: parts start downloading in the order of the delta, each when the one
//! before lets it go.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// How far the download has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Still downloading.
    Open,
    /// Downloaded whole and checked: the reader may reach the end.
    Done,
    /// Given up: the reader fails.
    Abandoned,
}

#[derive(Debug)]
struct State {
    /// Bytes in the file.
    written: u64,
    end: End,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    grown: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain numbers behind: keep going.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn end(&self, end: End) {
        let mut s = self.lock();
        if s.end == End::Open {
            s.end = end;
        }
        drop(s);
        self.grown.notify_all();
    }
}

/// The download's end of a spool. Dropped before [`SpoolWriter::finish`], it abandons
/// the spool.
#[derive(Debug)]
pub(crate) struct SpoolWriter {
    file: File,
    shared: Arc<Shared>,
}

/// The decoder's end of a spool: reads the bytes written so far, waits for more, ends
/// when the writer finished, fails when it gave up.
#[derive(Debug)]
pub(crate) struct SpoolReader {
    file: File,
    shared: Arc<Shared>,
    pos: u64,
}

/// A spool over `file` (empty, opened for reading and writing).
pub(crate) fn spool(file: File) -> io::Result<(SpoolWriter, SpoolReader)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            written: 0,
            end: End::Open,
        }),
        grown: Condvar::new(),
    });
    let reader = SpoolReader {
        file: file.try_clone()?,
        shared: Arc::clone(&shared),
        pos: 0,
    };
    Ok((SpoolWriter { file, shared }, reader))
}

impl SpoolWriter {
    /// Appends `bytes` and wakes the reader.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        let mut s = self.shared.lock();
        s.written = s.written.saturating_add(bytes.len() as u64);
        drop(s);
        self.shared.grown.notify_all();
        Ok(())
    }

    /// Lets the reader reach the end: the part is whole and checked.
    pub(crate) fn finish(self) {
        self.shared.end(End::Done);
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        self.shared.end(End::Abandoned);
    }
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.shared.lock();
        let ready = loop {
            if s.end == End::Abandoned {
                return Err(io::Error::other("the part's download was abandoned"));
            }
            let ready = s.written.saturating_sub(self.pos);
            if ready > 0 {
                break ready;
            }
            if s.end == End::Done {
                return Ok(0);
            }
            s = self
                .shared
                .grown
                .wait(s)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        };
        drop(s);
        let n = usize::try_from(ready).unwrap_or(usize::MAX).min(buf.len());
        let got = self
            .file
            .read_at(buf.get_mut(..n).unwrap_or_default(), self.pos)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "spool file shorter than written",
            ));
        }
        self.pos = self.pos.saturating_add(got as u64);
        Ok(got)
    }
}

/// The order in which parts start downloading: part `i` (its place among the parts
/// to fetch) starts once every part before it has let the next one go
/// ([`Turn::pass`]).
#[derive(Debug)]
pub(crate) struct Turn {
    /// Parts that may start: those below this place.
    open: tokio::sync::watch::Sender<usize>,
}

impl Turn {
    /// A turn where only the first part may start.
    pub(crate) fn new() -> Self {
        Self {
            open: tokio::sync::watch::Sender::new(1),
        }
    }

    /// Waits until the part at `place` may start.
    pub(crate) async fn wait(&self, place: usize) {
        let mut rx = self.open.subscribe();
        // The sender lives in `self`: waiting cannot fail.
        let _ = rx.wait_for(|open| *open > place).await;
    }

    /// Lets the part after `place` start (and every one before it).
    pub(crate) fn pass(&self, place: usize) {
        self.open.send_if_modified(|open| {
            let next = place.saturating_add(2);
            let grow = *open < next;
            if grow {
                *open = next;
            }
            grow
        });
    }
}

/// Passes the turn of `place` when dropped (whatever way the attempt ends), unless
/// passed before.
#[derive(Debug)]
pub(crate) struct TurnGuard<'a> {
    turn: &'a Turn,
    place: usize,
}

impl<'a> TurnGuard<'a> {
    /// A guard for the part at `place`.
    pub(crate) fn new(turn: &'a Turn, place: usize) -> Self {
        Self { turn, place }
    }

    /// Lets the next part start now.
    pub(crate) fn pass(&self) {
        self.turn.pass(self.place);
    }
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.pass();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spooled() -> (SpoolWriter, SpoolReader) {
        spool(tempfile::tempfile().unwrap()).unwrap()
    }

    #[test]
    fn the_reader_follows_the_writer_and_ends_when_it_finishes() {
        let (mut w, mut r) = spooled();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            r.read_to_end(&mut got).map(|_| got)
        });
        let mut want = Vec::new();
        for i in 0..50u8 {
            let chunk = vec![i; 1000 + usize::from(i)];
            w.append(&chunk).unwrap();
            want.extend(chunk);
        }
        w.finish();
        assert_eq!(reader.join().unwrap().unwrap(), want);
    }

    #[test]
    fn an_abandoned_spool_fails_the_reader_even_after_all_bytes() {
        let (mut w, mut r) = spooled();
        w.append(b"all of it").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(r.read(&mut buf).unwrap(), 9);
        drop(w);
        assert!(r.read(&mut buf).is_err());
        // And a reader waiting for more is woken to fail.
        let (mut w, mut r) = spooled();
        w.append(b"x").unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            r.read_to_end(&mut got)
        });
        std::thread::yield_now();
        drop(w);
        assert!(reader.join().unwrap().is_err());
    }

    #[tokio::test]
    async fn parts_start_in_order_as_the_turn_passes() {
        let turn = Turn::new();
        turn.wait(0).await;
        let open = |place| {
            let rx = turn.open.subscribe();
            *rx.borrow() > place
        };
        assert!(!open(1));
        {
            let g = TurnGuard::new(&turn, 0);
            assert!(!open(1));
            g.pass();
            assert!(open(1) && !open(2));
        }
        // Passing an earlier place again changes nothing; a guard dropped passes.
        turn.pass(0);
        assert!(!open(2));
        drop(TurnGuard::new(&turn, 1));
        assert!(open(2) && !open(3));
        turn.wait(2).await;
    }
}
