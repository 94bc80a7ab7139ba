//! The memory a part's decoder needs, read from the first bytes of the part file: the
//! LZMA2 dictionary size in the first block header of its xz stream (`.xz` file format
//! 1.2.1, sections 2.1.1 stream header, 3.1 block header, 5.3.1 LZMA2 properties).
//!
//! A decoder's memory is its dictionary (plus a few tens of KiB of state), so callers
//! that decode several parts at once charge each one this size. Only the header is read:
//! the stream's checksums are left to the decoder, which rejects a damaged stream anyway.

use super::compression::{Compression, PartError};

/// Bytes of a part file that always suffice to read its decoder's needs: the
/// compression byte, the 12-byte stream header and the largest block header (1024).
pub const DICT_PROBE_MAX: usize = 1 + 12 + 1024;

/// The xz stream header's magic bytes.
pub(crate) const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];

/// The LZMA2 filter id.
const LZMA2: u64 = 0x21;

/// What the start of a part file says about its decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecoderNeed {
    /// More of the file is needed: at least this many bytes from its start.
    More(usize),
    /// A stored payload: no decoder.
    Stored,
    /// An xz stream without blocks (an empty payload): no dictionary.
    NoBlocks,
    /// An xz stream whose first block decodes with an LZMA2 dictionary of this many bytes.
    Dict(u64),
}

/// Reads what decoding the part file starting with `prefix` needs. Give it the first
/// bytes of the file as they arrive; [`DecoderNeed::More`] asks for more (never more
/// than [`DICT_PROBE_MAX`] in all). A prefix that cannot start a valid part is an error.
pub fn decoder_need(prefix: &[u8]) -> Result<DecoderNeed, PartError> {
    let Some((&b, xz)) = prefix.split_first() else {
        return Ok(DecoderNeed::More(1));
    };
    match Compression::from_byte(b)? {
        Compression::None => Ok(DecoderNeed::Stored),
        Compression::Xz => Ok(match xz_dict_size(xz)? {
            XzNeed::More(n) => DecoderNeed::More(n.saturating_add(1)),
            XzNeed::NoBlocks => DecoderNeed::NoBlocks,
            XzNeed::Dict(d) => DecoderNeed::Dict(d),
        }),
    }
}

/// What the start of an xz stream says about its decoder ([`xz_dict_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XzNeed {
    More(usize),
    NoBlocks,
    Dict(u64),
}

/// Reads the LZMA2 dictionary size of the first block of the xz stream starting with
/// `xz` (the part file without its compression byte).
fn xz_dict_size(xz: &[u8]) -> Result<XzNeed, PartError> {
    let bad = |what: &'static str| PartError::XzHeader { what };
    let Some(header) = xz.get(..12) else {
        return Ok(XzNeed::More(12));
    };
    if header.get(..6) != Some(&XZ_MAGIC[..]) {
        return Err(bad("not an xz stream (bad magic bytes)"));
    }
    // Stream flags: a null byte, then the check type in the low nibble.
    if header.get(6) != Some(&0) || header.get(7).is_none_or(|f| f & 0xf0 != 0) {
        return Err(bad("unsupported stream flags"));
    }
    let Some(&size_byte) = xz.get(12) else {
        return Ok(XzNeed::More(13));
    };
    if size_byte == 0 {
        // The index comes first: the stream holds no block.
        return Ok(XzNeed::NoBlocks);
    }
    // At most (255 + 1) * 4 = 1024 bytes: no overflow.
    let size = usize::from(size_byte).saturating_add(1).saturating_mul(4);
    let end = size.saturating_add(12);
    let Some(block) = xz.get(12..end) else {
        return Ok(XzNeed::More(end));
    };
    // The header's last 4 bytes are its CRC32, not fields.
    let mut fields = block.get(1..size.saturating_sub(4)).unwrap_or_default();
    let flags = take_byte(&mut fields).ok_or(bad("block header too short"))?;
    if flags & 0x3c != 0 {
        return Err(bad("reserved block flags set"));
    }
    let filters = usize::from(flags & 0x03) + 1;
    for present in [flags & 0x40 != 0, flags & 0x80 != 0] {
        if present {
            take_varint(&mut fields).ok_or(bad("bad size field in block header"))?;
        }
    }
    let mut dict = None;
    for last in (1..=filters).map(|n| n == filters) {
        let id = take_varint(&mut fields).ok_or(bad("bad filter id"))?;
        let len = take_varint(&mut fields).ok_or(bad("bad filter properties size"))?;
        let len = usize::try_from(len).map_err(|_| bad("bad filter properties size"))?;
        let props = fields
            .get(..len)
            .ok_or(bad("filter properties overrun the header"))?;
        fields = fields.get(len..).unwrap_or_default();
        if last {
            if id != LZMA2 {
                return Err(bad("the last filter is not LZMA2"));
            }
            let [d] = props else {
                return Err(bad("LZMA2 properties are not one byte"));
            };
            dict = Some(lzma2_dict(*d).ok_or(bad("LZMA2 dictionary size out of range"))?);
        }
    }
    dict.map(XzNeed::Dict)
        .ok_or(bad("no filter in block header"))
}

/// The dictionary size an LZMA2 properties byte stands for (5.3.1): bit 0 and the
/// rest give `2 or 3` shifted left by `11 + d / 2`; 40 is 4 GiB - 1; above is invalid.
fn lzma2_dict(d: u8) -> Option<u64> {
    match d {
        0..=39 => Some((2 | u64::from(d & 1)) << (u32::from(d / 2) + 11)),
        40 => Some(u64::from(u32::MAX)),
        _ => None,
    }
}

/// Takes the first byte of `b`.
fn take_byte(b: &mut &[u8]) -> Option<u8> {
    let (&first, rest) = b.split_first()?;
    *b = rest;
    Some(first)
}

/// Takes a multibyte integer (1.2: seven bits a byte, low first, at most 9 bytes, no
/// needless trailing zero byte) from the front of `b`.
fn take_varint(b: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..9u32 {
        let byte = take_byte(b)?;
        if i > 0 && byte == 0 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << i.saturating_mul(7);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A part file: `'x'` and `data` compressed as one xz stream with LZMA2 `dict`.
    fn xz_part(data: &[u8], dict: u32, bcj: bool) -> Vec<u8> {
        let mut opts = liblzma::stream::LzmaOptions::new_preset(1).unwrap();
        opts.dict_size(dict);
        let mut chain = liblzma::stream::Filters::new();
        if bcj {
            chain.x86();
        }
        chain.lzma2(&opts);
        let stream =
            liblzma::stream::Stream::new_stream_encoder(&chain, liblzma::stream::Check::Crc64)
                .unwrap();
        let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
        e.write_all(data).unwrap();
        let mut v = vec![b'x'];
        v.extend(e.finish().unwrap());
        v
    }

    fn need_of_whole_and_every_prefix(file: &[u8]) -> DecoderNeed {
        let want = decoder_need(file).unwrap();
        // Every prefix asks for more, and for no more than the answer needs.
        let mut n = 0;
        loop {
            match decoder_need(&file[..n]).unwrap() {
                DecoderNeed::More(m) => {
                    assert!(m > n && m <= DICT_PROBE_MAX, "{n} -> {m}");
                    n = m;
                }
                got => {
                    assert_eq!(got, want, "prefix {n}");
                    return got;
                }
            }
        }
    }

    #[test]
    fn reads_the_dictionary_liblzma_wrote() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for dict in [4096u32, 64 << 10, 1 << 20, 3 << 20, 32 << 20, 64 << 20] {
            let file = xz_part(&data, dict, false);
            assert_eq!(
                need_of_whole_and_every_prefix(&file),
                DecoderNeed::Dict(u64::from(dict)),
                "dict {dict}"
            );
            // With a BCJ filter before LZMA2, and the payload still decodes.
            let bcj = xz_part(&data, dict, true);
            assert_eq!(
                decoder_need(&bcj).unwrap(),
                DecoderNeed::Dict(u64::from(dict))
            );
        }
    }

    #[test]
    fn reads_the_32_mib_dictionary_of_ostree_parts() {
        // The first 30 bytes of a part that ostree 2022.7 wrote (preset 8).
        let head = [
            0x78, 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04, 0xe6, 0xd6, 0xb4, 0x46, 0x02,
            0x00, 0x21, 0x01, 0x1a, 0x00, 0x00, 0x00, 0xcc, 0x90, 0x33, 0xe9, 0xe3, 0x65,
        ];
        assert_eq!(decoder_need(&head).unwrap(), DecoderNeed::Dict(32 << 20));
    }

    #[test]
    fn stored_and_empty_streams_need_no_dictionary() {
        assert_eq!(decoder_need(b"").unwrap(), DecoderNeed::More(1));
        assert_eq!(decoder_need(b"\0payload").unwrap(), DecoderNeed::Stored);
        let empty = xz_part(b"", 1 << 20, false);
        assert_eq!(
            need_of_whole_and_every_prefix(&empty),
            DecoderNeed::NoBlocks
        );
    }

    #[test]
    fn rejects_headers_that_cannot_start_a_part() {
        let good = xz_part(b"hello", 1 << 20, false);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"q".to_vec(), "unknown compression"),
            (
                {
                    let mut b = good.clone();
                    b[1] = 0;
                    b
                },
                "magic",
            ),
            (
                {
                    let mut b = good.clone();
                    b[7] = 1;
                    b
                },
                "flags",
            ),
            (
                {
                    let mut b = good.clone();
                    b[8] = 0x10;
                    b
                },
                "flags",
            ),
            // Reserved block flag bits.
            (
                {
                    let mut b = good.clone();
                    b[14] |= 0x04;
                    b
                },
                "reserved",
            ),
            // A filter other than LZMA2 last.
            (
                {
                    let mut b = good.clone();
                    b[15] = 0x03;
                    b
                },
                "LZMA2",
            ),
            // Two bytes of LZMA2 properties.
            (
                {
                    let mut b = good.clone();
                    b[16] = 2;
                    b
                },
                "properties",
            ),
            // A dictionary byte above 40.
            (
                {
                    let mut b = good.clone();
                    b[17] = 41;
                    b
                },
                "dictionary",
            ),
        ];
        for (file, what) in cases {
            let e = decoder_need(&file).unwrap_err().to_string();
            assert!(e.contains(what), "{what}: {e}");
        }
    }

    #[test]
    fn mangled_headers_never_panic_and_never_ask_past_the_probe() {
        let good = xz_part(b"hello", 1 << 20, true);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut b = good[..good.len().min(40)].to_vec();
            // Flip a few bytes past the magic, and cut the file somewhere.
            for k in 0..3 {
                let at = 7 + (seed >> (k * 8)) as usize % (b.len() - 7);
                b[at] ^= (seed >> (k * 8 + 24)) as u8 | 1;
            }
            b.truncate(1 + (seed >> 40) as usize % b.len());
            if let Ok(DecoderNeed::More(n)) = decoder_need(&b) {
                assert!(n > b.len() && n <= DICT_PROBE_MAX, "{b:02x?} -> {n}");
            }
        }
    }

    #[test]
    fn lzma2_dictionary_bytes_and_varints() {
        assert_eq!(lzma2_dict(0), Some(4096));
        assert_eq!(lzma2_dict(1), Some(6144));
        assert_eq!(lzma2_dict(18), Some(2 << 20));
        assert_eq!(lzma2_dict(26), Some(32 << 20));
        assert_eq!(lzma2_dict(39), Some(3 << 30));
        assert_eq!(lzma2_dict(40), Some(u64::from(u32::MAX)));
        assert_eq!(lzma2_dict(41), None);
        let mut b: &[u8] = &[0x80 | 0x21, 0x01, 7];
        assert_eq!(take_varint(&mut b), Some(0xa1));
        assert_eq!(b, &[7]);
        // A needless zero continuation byte, a varint past 9 bytes, one cut short.
        assert_eq!(take_varint(&mut &[0x81, 0x00][..]), None);
        assert_eq!(take_varint(&mut &[0xff; 10][..]), None);
        assert_eq!(take_varint(&mut &[0x81][..]), None);
    }
}
