//! The compression byte of a part file and bounded decompression of the payload, for
//! a part in memory ([`decompress`]) or streamed ([`PartPayloadReader`]).

use std::borrow::Cow;
use std::io::{self, Read};

use thiserror::Error;

/// Decoder memory limit for xz streams, as ostree HEAD (`OSTREE_LZMA_DECODER_MEMLIMIT`).
pub const XZ_MEMLIMIT: u64 = 100 * 1024 * 1024;

/// Size of the internal input/output chunks used while decompressing.
const CHUNK: usize = 64 * 1024;

/// How a part payload is stored (the first byte of the part file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Byte `0x00`: the payload follows as is.
    None,
    /// Byte `'x'`: the payload is one xz stream.
    Xz,
}

impl Compression {
    /// Interprets a compression byte.
    pub fn from_byte(b: u8) -> Result<Self, PartError> {
        match b {
            0 => Ok(Compression::None),
            b'x' => Ok(Compression::Xz),
            other => Err(PartError::UnknownCompression(other)),
        }
    }

    /// The byte that stands for this compression in a part file.
    pub fn to_byte(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Xz => b'x',
        }
    }
}

/// Why a part file could not be opened or decompressed.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum PartError {
    /// The part file is empty (no compression byte).
    #[error("delta part is empty: no compression byte")]
    Empty,
    /// The compression byte is neither 0 nor `'x'`.
    #[error("delta part has unknown compression byte 0x{0:02x}")]
    UnknownCompression(u8),
    /// Decompression produced more than the cap.
    #[error("delta part payload exceeds the cap of {cap} bytes")]
    PayloadTooLarge {
        /// The cap given by the caller.
        cap: u64,
    },
    /// The xz decoder rejected the stream.
    #[error("delta part xz stream is invalid at compressed offset {offset}: {kind:?}")]
    Xz {
        /// Offset in the xz stream (after the compression byte) reached so far.
        offset: u64,
        /// liblzma's verdict.
        kind: liblzma::stream::Error,
    },
    /// The xz stream ended before its end marker.
    #[error("delta part xz stream is truncated at compressed offset {offset}")]
    XzTruncated {
        /// Bytes of xz input consumed.
        offset: u64,
    },
    /// Bytes follow the end of the xz stream.
    #[error("delta part has trailing bytes after the xz stream at compressed offset {offset}")]
    TrailingData {
        /// Offset (after the compression byte) of the first trailing byte.
        offset: u64,
    },
    /// The xz stream's header or first block header cannot start a part
    /// ([`super::decoder_need`]).
    #[error("delta part xz header is invalid: {what}")]
    XzHeader {
        /// What is wrong with it.
        what: &'static str,
    },
    /// Output memory could not be reserved.
    #[error("delta part could not reserve {0} bytes for the payload")]
    Alloc(u64),
}

/// Splits a part file into its compression and the (still compressed) rest.
/// Allocates nothing.
pub fn split(part_file: &[u8]) -> Result<(Compression, &[u8]), PartError> {
    let (&b, rest) = part_file.split_first().ok_or(PartError::Empty)?;
    Ok((Compression::from_byte(b)?, rest))
}

/// Decompresses a whole part file held in memory, returning the payload bytes.
///
/// Stored payloads are borrowed from `part_file`. At most `cap` bytes are produced; a
/// payload longer than that is [`PartError::PayloadTooLarge`].
///
/// Allocation: at most `cap` bytes of output (grown as bytes are produced, never
/// reserved from a declared size), a fixed chunk buffer, and the xz decoder's state,
/// which liblzma caps at [`XZ_MEMLIMIT`] (a stream whose dictionary needs more is
/// rejected).
pub fn decompress(part_file: &[u8], cap: u64) -> Result<Cow<'_, [u8]>, PartError> {
    let (comp, rest) = split(part_file)?;
    match comp {
        Compression::None => {
            if rest.len() as u64 > cap {
                return Err(PartError::PayloadTooLarge { cap });
            }
            Ok(Cow::Borrowed(rest))
        }
        Compression::Xz => {
            let mut xz = XzState::new(XZ_MEMLIMIT)?;
            let mut out = Vec::new();
            let mut input = rest;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let (n, done) = xz.step(&mut input, &mut buf, cap)?;
                let chunk = buf.get(..n).unwrap_or_default();
                out.try_reserve(n)
                    .map_err(|_| PartError::Alloc(xz.produced))?;
                out.extend_from_slice(chunk);
                if done {
                    break;
                }
            }
            if !input.is_empty() {
                return Err(PartError::TrailingData {
                    offset: xz.consumed(),
                });
            }
            Ok(Cow::Owned(out))
        }
    }
}

/// An xz decoder that enforces the output cap and reports truncation.
struct XzState {
    stream: liblzma::stream::Stream,
    produced: u64,
    finished: bool,
}

impl std::fmt::Debug for XzState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XzState")
            .field("produced", &self.produced)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl XzState {
    /// A decoder whose memory liblzma keeps under `memlimit` (a stream that needs
    /// more is [`PartError::Xz`] with `MemLimit`).
    fn new(memlimit: u64) -> Result<Self, PartError> {
        let stream = liblzma::stream::Stream::new_stream_decoder(memlimit.clamp(1, XZ_MEMLIMIT), 0)
            .map_err(|kind| PartError::Xz { offset: 0, kind })?;
        Ok(XzState {
            stream,
            produced: 0,
            finished: false,
        })
    }

    fn consumed(&self) -> u64 {
        self.stream.total_in()
    }

    /// Decodes from `input` (advancing it) into `out`; returns (bytes written, stream ended).
    ///
    /// `input` may be empty only when no more input exists: then a stalled decoder is a
    /// truncation error.
    fn step(
        &mut self,
        input: &mut &[u8],
        out: &mut [u8],
        cap: u64,
    ) -> Result<(usize, bool), PartError> {
        if self.finished {
            return Ok((0, true));
        }
        // Allow one byte past the cap so that an overlong payload is detected.
        let room = cap.saturating_sub(self.produced).saturating_add(1);
        let lim = usize::try_from(room).unwrap_or(usize::MAX).min(out.len());
        let out = out.get_mut(..lim).unwrap_or_default();
        let in_before = self.stream.total_in();
        let out_before = self.stream.total_out();
        let action = if input.is_empty() {
            liblzma::stream::Action::Finish
        } else {
            liblzma::stream::Action::Run
        };
        let status = self
            .stream
            .process(input, out, action)
            .map_err(|kind| PartError::Xz {
                offset: in_before,
                kind,
            })?;
        let used_in =
            usize::try_from(self.stream.total_in().saturating_sub(in_before)).unwrap_or(usize::MAX);
        let made = usize::try_from(self.stream.total_out().saturating_sub(out_before))
            .unwrap_or(usize::MAX);
        *input = input.get(used_in..).unwrap_or_default();
        self.produced = self.produced.saturating_add(made as u64);
        if self.produced > cap {
            return Err(PartError::PayloadTooLarge { cap });
        }
        match status {
            liblzma::stream::Status::StreamEnd => {
                self.finished = true;
                Ok((made, true))
            }
            liblzma::stream::Status::MemNeeded => Err(PartError::XzTruncated {
                offset: self.stream.total_in(),
            }),
            _ if used_in == 0 && made == 0 && input.is_empty() && !out.is_empty() => {
                Err(PartError::XzTruncated {
                    offset: self.stream.total_in(),
                })
            }
            _ => Ok((made, false)),
        }
    }
}

/// Streaming reader of a part payload: reads a part file from `R` and yields the payload.
///
/// The first byte read from `R` is the compression byte. At most `cap` payload bytes are
/// returned; producing more, an invalid or truncated xz stream, or bytes after the xz stream
/// make `read` fail with [`io::ErrorKind::InvalidData`] (or `UnexpectedEof` for truncation)
/// wrapping a [`PartError`] (get it back with [`PartError::from_io`]).
#[derive(Debug)]
pub struct PartPayloadReader<R> {
    inner: R,
    cap: u64,
    memlimit: u64,
    state: ReaderState,
}

#[derive(Debug)]
enum ReaderState {
    Start,
    Raw {
        produced: u64,
    },
    Xz {
        xz: Box<XzState>,
        inbuf: Vec<u8>,
        pos: usize,
        len: usize,
        eof: bool,
    },
    Done,
}

impl PartError {
    /// Extracts the [`PartError`] carried by an error from [`PartPayloadReader`], if any.
    pub fn from_io(e: &io::Error) -> Option<&PartError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<PartError>())
    }

    fn into_io(self) -> io::Error {
        let kind = match self {
            PartError::XzTruncated { .. } | PartError::Empty => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }
}

impl<R: Read> PartPayloadReader<R> {
    /// Wraps a reader positioned at the start of a part file (its compression byte).
    ///
    /// Produces at most `cap` bytes in total. Allocation is fixed: an input buffer and the
    /// xz decoder's state (at most [`XZ_MEMLIMIT`]), independent of the input.
    pub fn new(inner: R, cap: u64) -> Self {
        Self::with_memlimit(inner, cap, XZ_MEMLIMIT)
    }

    /// [`PartPayloadReader::new`] with the xz decoder's memory held under `memlimit`
    /// (at most [`XZ_MEMLIMIT`]): a block whose dictionary needs more fails with
    /// [`PartError::Xz`]. Callers that charge a decoder the dictionary size that
    /// [`super::decoder_need`] read give that size (plus the decoder's state), so a
    /// later block cannot ask for more than was charged.
    pub fn with_memlimit(inner: R, cap: u64, memlimit: u64) -> Self {
        PartPayloadReader {
            inner,
            cap,
            memlimit,
            state: ReaderState::Start,
        }
    }

    /// Returns the wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

impl<R: Read> Read for PartPayloadReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match &mut self.state {
                ReaderState::Start => {
                    let mut b = [0u8; 1];
                    if self.read_inner(&mut b)? == 0 {
                        return Err(PartError::Empty.into_io());
                    }
                    self.state = match Compression::from_byte(b[0]).map_err(PartError::into_io)? {
                        Compression::None => ReaderState::Raw { produced: 0 },
                        Compression::Xz => ReaderState::Xz {
                            xz: Box::new(XzState::new(self.memlimit).map_err(PartError::into_io)?),
                            inbuf: vec![0u8; CHUNK],
                            pos: 0,
                            len: 0,
                            eof: false,
                        },
                    };
                }
                ReaderState::Raw { produced } => {
                    let produced = *produced;
                    let room = self.cap.saturating_sub(produced).saturating_add(1);
                    let lim = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
                    let n = self.read_inner(buf.get_mut(..lim).unwrap_or_default())?;
                    let produced = produced.saturating_add(n as u64);
                    if produced > self.cap {
                        return Err(PartError::PayloadTooLarge { cap: self.cap }.into_io());
                    }
                    self.state = if n == 0 {
                        ReaderState::Done
                    } else {
                        ReaderState::Raw { produced }
                    };
                    return Ok(n);
                }
                ReaderState::Xz {
                    xz,
                    inbuf,
                    pos,
                    len,
                    eof,
                } => {
                    if xz.finished {
                        // The stream ended: anything after it is an error.
                        let offset = xz.consumed();
                        if *pos < *len {
                            return Err(PartError::TrailingData { offset }.into_io());
                        }
                        let mut probe = [0u8; 1];
                        let n = loop {
                            match self.inner.read(&mut probe) {
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                                r => break r?,
                            }
                        };
                        if n != 0 {
                            return Err(PartError::TrailingData { offset }.into_io());
                        }
                        self.state = ReaderState::Done;
                        return Ok(0);
                    }
                    if *pos >= *len && !*eof {
                        let n = loop {
                            match self.inner.read(inbuf) {
                                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                                r => break r?,
                            }
                        };
                        *pos = 0;
                        *len = n;
                        if n == 0 {
                            *eof = true;
                        }
                    }
                    let mut input = inbuf.get(*pos..*len).unwrap_or_default();
                    let before = input.len();
                    let (n, _done) = xz
                        .step(&mut input, buf, self.cap)
                        .map_err(PartError::into_io)?;
                    *pos = pos.saturating_add(before.saturating_sub(input.len()));
                    if n > 0 {
                        return Ok(n);
                    }
                }
                ReaderState::Done => return Ok(0),
            }
        }
    }
}
