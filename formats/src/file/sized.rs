//! The sized framing: `u32` big-endian header length, four zero bytes, the header.

use super::MAX_HEADER_SIZE;
use super::error::Error;
use super::header::FileHeader;

fn sized_prefix(len: usize) -> Result<[u8; 8], Error> {
    let l = u32::try_from(len).map_err(|_| Error::HeaderTooLarge(len))?;
    let mut p = [0u8; 8];
    for (d, s) in p.iter_mut().zip(l.to_be_bytes()) {
        *d = s;
    }
    Ok(p)
}

/// Reads an 8-byte sized prefix; returns the header length.
pub(super) fn parse_prefix(p: [u8; 8]) -> Result<usize, Error> {
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
