//! File objects: headers, the archive `.filez` stream, the sized-header framing and the
//! file-object checksum.
//!
//! Two GVariant headers describe a file object:
//! - the **bare header** `(uuuusa(ayay))`: uid, gid, mode (all **big-endian**), rdev
//!   (must be 0), symlink target (empty for regular files), xattrs;
//! - the **archive header** `(tuuuusa(ayay))`: the same with the uncompressed content
//!   size (**big-endian** `t`, 0 for symlinks) in front.
//!
//! Both are framed the same way ("sized"): `u32` **big-endian** header length, four zero
//! bytes, then the header, so that it starts 8-aligned (`variant_to_lenprefixed_buffer`).
//! - The checksum of a file object is SHA-256 of `sized(bare header with xattrs sorted)`
//!   followed by the content (nothing for symlinks): [`FileHasher`], [`file_checksum`].
//! - An archive `.filez` object is `sized(archive header)` followed by the content as a
//!   raw DEFLATE stream (RFC 1951, no zlib or gzip wrapper; regular files only):
//!   [`FilezReader`].
//! - composefs-ostree commit splitstreams store `sized(archive header)` followed by
//!   small contents inline: [`encode_sized_archive_header`],
//!   [`decode_sized_archive_header`].
//! - `bare-user` repositories keep uid/gid/mode/xattrs in the `user.ostreemeta` xattr,
//!   GVariant `(uuua(ayay))` (big-endian): [`parse_ostreemeta`].
//!
//! Mirrors `ostree_content_stream_parse`, `_ostree_file_header_new`,
//! `_ostree_zlib_file_header_new` and `ostree_validate_structureof_file_mode`
//! (`src/libostree/ostree-core.c`) and `write_content_object`
//! (`ostree-repo-commit.c`). Stricter than ostree: the padding must be zero, xattrs
//! bounded and unique, symlink targets non-empty and bounded, and a `.filez` must end
//! exactly where its deflate stream ends.

use std::io::{self, BufRead, BufReader, Read};

use flate2::{Decompress, FlushDecompress, Status};

use crate::checksum::{Checksum, Sha256Writer};
use crate::gvariant::{self, OwnedValue, Value};
use crate::xattrs::{self, Order, Xattrs};

/// GVariant type of the bare file header.
pub const BARE_HEADER_TYPE: &str = "(uuuusa(ayay))";
/// GVariant type of the archive file header.
pub const ARCHIVE_HEADER_TYPE: &str = "(tuuuusa(ayay))";
/// GVariant type of the `user.ostreemeta` xattr of `bare-user` objects.
pub const FILEMETA_TYPE: &str = "(uuua(ayay))";

/// Largest header accepted in a sized framing (10 MiB).
pub const MAX_HEADER_SIZE: usize = 10_485_760;
/// Longest symlink target accepted, in bytes (Linux `PATH_MAX`).
pub const MAX_SYMLINK_TARGET: usize = 4096;

pub use crate::mode::{PERMISSION_BITS, S_IFLNK, S_IFMT, S_IFREG};

/// Errors in file headers and `.filez` streams.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A header is not a normal-form GVariant of its type.
    #[error("file header: {0}")]
    Variant(#[from] gvariant::Error),
    /// The xattrs are invalid.
    #[error("file header {0}")]
    Xattrs(#[from] xattrs::Error),
    /// Neither a regular file nor a symlink, or bits outside `S_IFMT | 07777`.
    #[error("file header mode {mode:o} is not a valid regular file or symlink mode")]
    Mode {
        /// The mode found.
        mode: u32,
    },
    /// rdev is not 0.
    #[error("file header rdev is {rdev}, expected 0")]
    Rdev {
        /// The rdev found.
        rdev: u32,
    },
    /// A symlink target is empty or too long, or a regular file has one.
    #[error("file header: {0}")]
    Symlink(&'static str),
    /// A symlink declares a content size.
    #[error("symlink file header declares {size} content bytes")]
    SymlinkSize {
        /// The size found.
        size: u64,
    },
    /// The sized framing is bad (length 0 or too large, nonzero padding).
    #[error("file header framing at offset {offset}: {what}")]
    Framing {
        /// What is wrong.
        what: &'static str,
        /// Offset in the object.
        offset: usize,
    },
    /// The object ends before its header does.
    #[error("file object truncated: {0}")]
    Truncated(&'static str),
    /// A header too large to frame (over 4 GiB).
    #[error("file header of {0} bytes is too large")]
    HeaderTooLarge(usize),
    /// Reading the underlying stream failed.
    #[error("reading file object: {0}")]
    Io(#[from] io::Error),
}

/// A file object's header (the fields of the archive header).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FileHeader {
    /// Uncompressed content size (0 for symlinks; 0 when parsed from a bare header,
    /// which does not carry it).
    pub size: u64,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Full mode, including `S_IFREG` or `S_IFLNK`.
    pub mode: u32,
    /// Device number; always 0 for valid objects.
    pub rdev: u32,
    /// Symlink target; empty for regular files.
    pub symlink_target: String,
    /// Xattrs as stored: (name with trailing NUL, value).
    pub xattrs: Xattrs,
}

fn sized_prefix(len: usize) -> Result<[u8; 8], Error> {
    let l = u32::try_from(len).map_err(|_| Error::HeaderTooLarge(len))?;
    let mut p = [0u8; 8];
    for (d, s) in p.iter_mut().zip(l.to_be_bytes()) {
        *d = s;
    }
    Ok(p)
}

/// Reads an 8-byte sized prefix; returns the header length.
fn parse_prefix(p: [u8; 8]) -> Result<usize, Error> {
    let [a, b, c, d, pad @ ..] = p;
    if pad != [0; 4] {
        return Err(Error::Framing {
            what: "nonzero padding after the header length",
            offset: 4,
        });
    }
    let len = u32::from_be_bytes([a, b, c, d]);
    let len = usize::try_from(len).map_err(|_| Error::Framing {
        what: "header too large",
        offset: 0,
    })?;
    if len == 0 {
        return Err(Error::Framing {
            what: "header length is 0",
            offset: 0,
        });
    }
    if len > MAX_HEADER_SIZE {
        return Err(Error::Framing {
            what: "header larger than 10 MiB",
            offset: 0,
        });
    }
    Ok(len)
}

/// Splits `sized(header) ‖ rest` into (header bytes, rest).
fn split_sized(data: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let (p, rest) = data
        .split_first_chunk::<8>()
        .ok_or(Error::Truncated("no header length"))?;
    let len = parse_prefix(*p)?;
    if rest.len() < len {
        return Err(Error::Truncated("header shorter than its declared length"));
    }
    Ok(rest.split_at(len))
}

impl FileHeader {
    /// Whether this is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// Whether this is a regular file.
    pub fn is_regular(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// Checks the rules every valid file object satisfies: regular file or symlink, no
    /// mode bits outside `S_IFMT | 07777`, rdev 0, a non-empty target of at most
    /// [`MAX_SYMLINK_TARGET`] bytes for symlinks and none for regular files, content
    /// size 0 for symlinks, bounded unique xattrs.
    pub fn validate(&self) -> Result<(), Error> {
        let t = self.mode & S_IFMT;
        if (t != S_IFREG && t != S_IFLNK) || self.mode & !(S_IFMT | PERMISSION_BITS) != 0 {
            return Err(Error::Mode { mode: self.mode });
        }
        if self.rdev != 0 {
            return Err(Error::Rdev { rdev: self.rdev });
        }
        if t == S_IFLNK {
            if self.symlink_target.is_empty() {
                return Err(Error::Symlink("empty symlink target"));
            }
            if self.symlink_target.len() > MAX_SYMLINK_TARGET {
                return Err(Error::Symlink("symlink target longer than 4096 bytes"));
            }
            if self.size != 0 {
                return Err(Error::SymlinkSize { size: self.size });
            }
        } else if !self.symlink_target.is_empty() {
            return Err(Error::Symlink("regular file with a symlink target"));
        }
        if self.symlink_target.contains('\0') {
            return Err(Error::Symlink("NUL in symlink target"));
        }
        xattrs::check(
            self.xattrs
                .iter()
                .map(|(n, v)| (n.as_slice(), v.as_slice())),
            Order::Any,
        )?;
        Ok(())
    }

    fn from_fields(size: u64, f: [Value<'_>; 6]) -> Result<Self, Error> {
        let [uid, gid, mode, rdev, target, x] = f;
        let h = FileHeader {
            size,
            uid: uid.as_u32_be()?,
            gid: gid.as_u32_be()?,
            mode: mode.as_u32_be()?,
            rdev: rdev.as_u32_be()?,
            symlink_target: target.as_str()?.to_owned(),
            xattrs: xattrs::to_owned(&xattrs::parse(x, Order::Any)?),
        };
        h.validate()?;
        Ok(h)
    }

    /// Parses and validates a bare header `(uuuusa(ayay))` (no framing). `size` is 0.
    ///
    /// Copies the symlink target and xattrs: allocates O(input length).
    pub fn from_bare_bytes(data: &[u8]) -> Result<Self, Error> {
        let [uid, gid, mode, rdev, t, x] =
            Value::from_bytes(data, BARE_HEADER_TYPE)?.tuple_fields()?;
        Self::from_fields(0, [uid, gid, mode, rdev, t, x])
    }

    /// Parses and validates an archive header `(tuuuusa(ayay))` (no framing).
    ///
    /// Copies the symlink target and xattrs: allocates O(input length). The declared
    /// content `size` is only a number here; nothing is allocated from it.
    pub fn from_archive_bytes(data: &[u8]) -> Result<Self, Error> {
        let [size, uid, gid, mode, rdev, t, x] =
            Value::from_bytes(data, ARCHIVE_HEADER_TYPE)?.tuple_fields()?;
        Self::from_fields(size.as_u64_be()?, [uid, gid, mode, rdev, t, x])
    }

    fn fields(&self, sort: bool) -> Vec<OwnedValue> {
        let x = if sort {
            xattrs::to_value(xattrs::sorted(&self.xattrs).into_iter())
        } else {
            xattrs::to_value(self.xattrs.iter())
        };
        vec![
            OwnedValue::u32_be(self.uid),
            OwnedValue::u32_be(self.gid),
            OwnedValue::u32_be(self.mode),
            OwnedValue::u32_be(self.rdev),
            OwnedValue::str(self.symlink_target.as_str()),
            x,
        ]
    }

    /// The bare header `(uuuusa(ayay))` with xattrs sorted by name, as ostree hashes it.
    pub fn to_bare_bytes(&self) -> Result<Vec<u8>, Error> {
        self.validate()?;
        Ok(OwnedValue::Tuple(self.fields(true)).to_bytes()?)
    }

    /// The archive header `(tuuuusa(ayay))`, xattrs in the order given.
    pub fn to_archive_bytes(&self) -> Result<Vec<u8>, Error> {
        self.validate()?;
        let mut f = vec![OwnedValue::u64_be(self.size)];
        f.extend(self.fields(false));
        Ok(OwnedValue::Tuple(f).to_bytes()?)
    }

    /// Builds the header of a `bare-user` object from its `user.ostreemeta` xattr and,
    /// for symlinks, the object file's content (the target followed by one NUL byte).
    /// `content_size` is the object file's size for regular files.
    ///
    /// Allocates O(`meta.len()` + `content.len()`); nothing is allocated from
    /// `content_size`.
    pub fn from_ostreemeta(
        meta: &[u8],
        content: Option<&[u8]>,
        content_size: u64,
    ) -> Result<Self, Error> {
        let (uid, gid, mode, xattrs) = parse_ostreemeta(meta)?;
        let is_link = mode & S_IFMT == S_IFLNK;
        let symlink_target = if is_link {
            let c = content.ok_or(Error::Symlink("symlink object without its target"))?;
            let c = match c.split_last() {
                Some((0, t)) => t,
                _ => {
                    return Err(Error::Symlink(
                        "bare-user symlink content is not NUL-terminated",
                    ));
                }
            };
            std::str::from_utf8(c)
                .map_err(|_| Error::Symlink("symlink target is not UTF-8"))?
                .to_owned()
        } else {
            String::new()
        };
        let h = FileHeader {
            size: if is_link { 0 } else { content_size },
            uid,
            gid,
            mode,
            rdev: 0,
            symlink_target,
            xattrs,
        };
        h.validate()?;
        Ok(h)
    }
}

/// Parses the `user.ostreemeta` xattr of a `bare-user` object, `(uuua(ayay))`:
/// (uid, gid, mode, xattrs), integers big-endian.
///
/// Copies the xattrs: allocates O(input length).
pub fn parse_ostreemeta(data: &[u8]) -> Result<(u32, u32, u32, Xattrs), Error> {
    let [uid, gid, mode, x] = Value::from_bytes(data, FILEMETA_TYPE)?.tuple_fields()?;
    Ok((
        uid.as_u32_be()?,
        gid.as_u32_be()?,
        mode.as_u32_be()?,
        xattrs::to_owned(&xattrs::parse(x, Order::Any)?),
    ))
}

/// `sized(archive header)`: the 8-byte prefix (u32 big-endian length, 4 zero bytes)
/// and the archive header, as composefs-ostree stores file objects in commit
/// splitstreams and as `.filez` objects begin.
pub fn encode_sized_archive_header(h: &FileHeader) -> Result<Vec<u8>, Error> {
    let hb = h.to_archive_bytes()?;
    let mut out = Vec::with_capacity(hb.len().saturating_add(8));
    out.extend_from_slice(&sized_prefix(hb.len())?);
    out.extend_from_slice(&hb);
    Ok(out)
}

/// Parses `sized(archive header) ‖ rest`; returns the validated header and `rest`.
///
/// Allocates O(header length) (see [`FileHeader::from_archive_bytes`]); the declared
/// length is checked against `data` before anything is read.
pub fn decode_sized_archive_header(data: &[u8]) -> Result<(FileHeader, &[u8]), Error> {
    let (h, rest) = split_sized(data)?;
    Ok((FileHeader::from_archive_bytes(h)?, rest))
}

/// `sized(bare header)`: the bytes that precede the content in a file checksum.
pub fn encode_sized_bare_header(h: &FileHeader) -> Result<Vec<u8>, Error> {
    let hb = h.to_bare_bytes()?;
    let mut out = Vec::with_capacity(hb.len().saturating_add(8));
    out.extend_from_slice(&sized_prefix(hb.len())?);
    out.extend_from_slice(&hb);
    Ok(out)
}

/// Parses `sized(bare header) ‖ rest` (ostree's uncompressed "content stream").
///
/// Allocates O(header length), as [`decode_sized_archive_header`].
pub fn decode_sized_bare_header(data: &[u8]) -> Result<(FileHeader, &[u8]), Error> {
    let (h, rest) = split_sized(data)?;
    Ok((FileHeader::from_bare_bytes(h)?, rest))
}

/// Computes a file object's checksum incrementally: `sized(bare header)` then content.
#[derive(Debug, Clone)]
pub struct FileHasher {
    h: Sha256Writer,
    header_len: u64,
}

impl FileHasher {
    /// Starts hashing the object with this header (xattrs are sorted for hashing).
    pub fn new(header: &FileHeader) -> Result<Self, Error> {
        let mut h = Sha256Writer::new();
        let b = encode_sized_bare_header(header)?;
        h.update(&b);
        Ok(FileHasher {
            h,
            header_len: h_len(&b),
        })
    }

    /// Feeds content bytes.
    pub fn update(&mut self, content: &[u8]) {
        self.h.update(content);
    }

    /// Content bytes fed so far.
    pub fn content_len(&self) -> u64 {
        self.h.len().saturating_sub(self.header_len)
    }

    /// The object checksum.
    pub fn finish(self) -> Checksum {
        self.h.finish()
    }
}

fn h_len(b: &[u8]) -> u64 {
    u64::try_from(b.len()).unwrap_or(u64::MAX)
}

impl io::Write for FileHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The checksum of a file object with this header and content (empty for symlinks).
pub fn file_checksum(header: &FileHeader, content: &[u8]) -> Result<Checksum, Error> {
    let mut h = FileHasher::new(header)?;
    h.update(content);
    Ok(h.finish())
}

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
    /// declared header length, itself at most [`MAX_HEADER_SIZE`]); reading content
    /// afterwards uses the caller's buffers plus a fixed-size `BufReader` and inflate
    /// state, never the declared content size.
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn reg(size: u64) -> FileHeader {
        FileHeader {
            size,
            mode: S_IFREG | 0o644,
            ..Default::default()
        }
    }

    fn filez(h: &FileHeader, content: &[u8]) -> Vec<u8> {
        let mut out = encode_sized_archive_header(h).unwrap();
        if h.is_regular() {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
            io::Write::write_all(&mut e, content).unwrap();
            out.extend(e.finish().unwrap());
        }
        out
    }

    fn read_all(b: &[u8]) -> io::Result<Vec<u8>> {
        let mut r = FilezReader::new(b).map_err(|e| io::Error::other(e.to_string()))?;
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        Ok(v)
    }

    #[test]
    fn fixture_vectors() {
        // docs/ostree-formats.md §10.4: empty root-owned 0644 regular file.
        assert_eq!(
            file_checksum(&reg(0), b"").unwrap().to_hex(),
            "cc700d46f407c6c5ab2d5dde474366a928b7398277e61162e7f8ec06f469f07e"
        );
        // /usr/etc/debian_version, .filez bytes from the fixture.
        let fz = hex::decode(concat!(
            "0000001a00000000",
            "0000000000000006",
            "0000000000000000",
            "000081a400000000",
            "00193334d23334e50200"
        ))
        .unwrap();
        let mut r = FilezReader::new(&fz[..]).unwrap();
        assert_eq!(r.header().size, 6);
        let mut c = Vec::new();
        r.read_to_end(&mut c).unwrap();
        assert_eq!(c, b"12.15\n");
        assert_eq!(
            file_checksum(r.header(), &c).unwrap().to_hex(),
            "be10e26383f7609493f53b8bfa0cad632db7d60eecde737acc7b13898b79474a"
        );
        // Symlink /usr/etc/rmt -> /usr/sbin/rmt.
        let link = FileHeader {
            mode: S_IFLNK | 0o777,
            symlink_target: "/usr/sbin/rmt".into(),
            ..Default::default()
        };
        let fz = filez(&link, b"");
        assert_eq!(fz.len(), 8 + 39);
        assert_eq!(
            file_checksum(&link, b"").unwrap().to_hex(),
            "d4543cfc57bda2a6b9b6b0c11ad4fb19a32c8f6acd79083f5222696d82915d70"
        );
        assert_eq!(read_all(&fz).unwrap(), b"");
    }

    #[test]
    fn stream_size_rules() {
        let content = b"hello world, hello world, hello world";
        let good = filez(&reg(content.len() as u64), content);
        assert_eq!(read_all(&good).unwrap(), content);
        // declared shorter than the stream
        let long = filez(&reg(5), content);
        assert!(read_all(&long).is_err());
        // declared longer than the stream
        let short = filez(&reg(100), content);
        assert_eq!(
            read_all(&short).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        // trailing data
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(read_all(&trailing).is_err());
        // every truncation fails
        for n in 0..good.len() {
            assert!(read_all(&good[..n]).is_err(), "prefix {n}");
        }
        // nonzero padding, zero length
        let mut pad = good.clone();
        pad[5] = 1;
        assert!(FilezReader::new(&pad[..]).is_err());
        assert!(FilezReader::new(&[0u8; 8][..]).is_err());
    }

    #[test]
    fn header_validation() {
        let mut h = reg(1);
        h.mode = 0o020644; // char device
        assert!(h.to_archive_bytes().is_err());
        let mut h = reg(1);
        h.rdev = 1;
        assert!(h.to_archive_bytes().is_err());
        let mut h = reg(0);
        h.symlink_target = "x".into();
        assert!(h.to_archive_bytes().is_err());
        let h = FileHeader {
            mode: S_IFLNK | 0o777,
            ..Default::default()
        };
        assert!(h.to_archive_bytes().is_err());
        let h = FileHeader {
            mode: S_IFLNK | 0o777,
            size: 3,
            symlink_target: "x".into(),
            ..Default::default()
        };
        assert!(h.to_archive_bytes().is_err());
        let h = FileHeader {
            mode: S_IFREG | 0o4755,
            xattrs: vec![
                (b"user.b\0".to_vec(), b"2".to_vec()),
                (b"user.a\0".to_vec(), b"1".to_vec()),
            ],
            ..reg(0)
        };
        let sized = encode_sized_archive_header(&h).unwrap();
        let (back, rest) = decode_sized_archive_header(&sized).unwrap();
        assert_eq!(back, h);
        assert!(rest.is_empty());
        // bare header sorts xattrs, so the checksum does not depend on their order
        let mut h2 = h.clone();
        h2.xattrs.reverse();
        assert_eq!(
            file_checksum(&h, b"").unwrap(),
            file_checksum(&h2, b"").unwrap()
        );
        let (bare, _) = decode_sized_bare_header(&encode_sized_bare_header(&h).unwrap()).unwrap();
        assert_eq!(bare.xattrs, h2.xattrs);
    }
}
