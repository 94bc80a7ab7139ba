//! The archive `.filez` reader: sized archive header, then raw-deflate content.

use std::io::{self, BufRead, BufReader, Read};

use flate2::{Decompress, FlushDecompress, Status};

use super::error::Error;
use super::hash::FileHasher;
use super::header::FileHeader;
use super::sized::parse_prefix;

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Streaming reader of an archive `.filez` object.
///
/// [`FilezReader::new`] reads and validates the sized archive header; the reader then
/// yields exactly the declared number of inflated content bytes. It fails with
/// `InvalidData` if the deflate stream is corrupt, holds more than the declared size, or
/// is followed by more bytes, and with `UnexpectedEof` if it ends short. The final
/// checks run on the read that returns 0, so read to the end (e.g. `io::copy`).
#[derive(Debug)]
pub struct FilezReader<R: Read> {
    header: FileHeader,
    inner: BufReader<R>,
    inflate: Decompress,
    remaining: u64,
    stream_ended: bool,
    finished: bool,
}

impl<R: Read> FilezReader<R> {
    /// Reads and validates the header of a `.filez` stream.
    ///
    /// The header buffer grows only as header bytes actually arrive (at most the
    /// declared header length, itself at most
    /// [`MAX_HEADER_SIZE`](super::MAX_HEADER_SIZE)); reading content afterwards uses the
    /// caller's buffers plus a fixed-size `BufReader` and inflate state, never the
    /// declared content size.
    pub fn new(mut r: R) -> Result<Self, Error> {
        let mut p = [0u8; 8];
        r.read_exact(&mut p).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => Error::Truncated("no header length"),
            _ => Error::Io(e),
        })?;
        let len = parse_prefix(p)?;
        let mut hb = Vec::with_capacity(len.min(64 * 1024));
        r.by_ref().take(len as u64).read_to_end(&mut hb)?;
        if hb.len() != len {
            return Err(Error::Truncated("header shorter than its declared length"));
        }
        let header = FileHeader::from_archive_bytes(&hb)?;
        let remaining = if header.is_regular() { header.size } else { 0 };
        Ok(FilezReader {
            inflate: Decompress::new(false),
            remaining,
            stream_ended: header.is_symlink(),
            finished: false,
            header,
            inner: BufReader::new(r),
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Content bytes still to be read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// A [`FileHasher`] primed with this object's header.
    pub fn hasher(&self) -> Result<FileHasher, Error> {
        FileHasher::new(&self.header)
    }

    /// Runs the inflater once into `out`; returns (produced, input was at EOF).
    fn step(&mut self, out: &mut [u8]) -> io::Result<(usize, bool)> {
        let input = self.inner.fill_buf()?;
        let eof = input.is_empty();
        let in0 = self.inflate.total_in();
        let out0 = self.inflate.total_out();
        let status = self
            .inflate
            .decompress(input, out, FlushDecompress::None)
            .map_err(|_| invalid("corrupt deflate stream in .filez object"))?;
        let consumed = usize::try_from(self.inflate.total_in().saturating_sub(in0))
            .map_err(|_| invalid("deflate consumed too much"))?;
        let produced = usize::try_from(self.inflate.total_out().saturating_sub(out0))
            .map_err(|_| invalid("deflate produced too much"))?;
        self.inner.consume(consumed);
        if status == Status::StreamEnd {
            self.stream_ended = true;
        }
        if produced == 0 && consumed == 0 && !eof && !self.stream_ended {
            return Err(invalid("deflate stream makes no progress"));
        }
        Ok((produced, eof))
    }

    /// At the declared end: the deflate stream must end with no more output, and no
    /// bytes may follow it.
    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        let mut scratch = [0u8; 1];
        while !self.stream_ended {
            let (produced, eof) = self.step(&mut scratch)?;
            if produced > 0 {
                return Err(invalid(".filez content is longer than its declared size"));
            }
            if eof && !self.stream_ended {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    ".filez deflate stream is truncated",
                ));
            }
        }
        if !self.inner.fill_buf()?.is_empty() {
            return Err(invalid("trailing bytes after the .filez content"));
        }
        self.finished = true;
        Ok(())
    }
}

impl<R: Read> Read for FilezReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.remaining == 0 {
            self.finish()?;
            return Ok(0);
        }
        let want = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let out = buf.get_mut(..want).ok_or_else(|| invalid("buffer"))?;
        loop {
            if self.stream_ended {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    ".filez content is shorter than its declared size",
                ));
            }
            let (produced, eof) = self.step(out)?;
            if produced > 0 {
                self.remaining = self.remaining.saturating_sub(produced as u64);
                return Ok(produced);
            }
            if eof && !self.stream_ended {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    ".filez deflate stream is truncated",
                ));
            }
        }
    }
}
