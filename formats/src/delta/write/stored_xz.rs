//! A part file whose xz stream holds its payload in LZMA2's *uncompressed* chunks: still
//! an ordinary `.xz` stream (compression byte `'x'`) that every liblzma decoder reads,
//! ostree's included, but one that decodes at the speed of a copy.
//!
//! For payloads xz cannot shrink (gzip, zstd, JPEG and other already-compressed files),
//! an LZMA-coded stream saves a percent or two of bytes and costs the client about as
//! much decoding time as a part of code ten times its payload. Parts stored with
//! compression byte 0 would be cheaper still, but ostree 2022.7's `static-delta show`
//! fails on them; uncompressed LZMA2 chunks are part of the format every version reads.
//!
//! Layout (`.xz` file format 1.2.1): stream header (check CRC32), one block whose header
//! gives both sizes and one LZMA2 filter with a 4 KiB dictionary, chunks of at most
//! 64 KiB (control byte 1 for the first, which resets the dictionary, 2 after), the end
//! marker, block padding, the CRC32 of the payload, the index with its one record, and
//! the stream footer.

use flate2::Crc;

use crate::delta::part::XZ_MAGIC;

/// The stream footer's magic bytes.
const FOOTER_MAGIC: [u8; 2] = [b'Y', b'Z'];
/// Stream flags: no reserved bits, check type 1 (CRC32).
const STREAM_FLAGS: [u8; 2] = [0, 1];
/// Bytes of the CRC32 check after the block.
const CHECK_LEN: u64 = 4;
/// The LZMA2 filter id.
const LZMA2: u8 = 0x21;
/// LZMA2 properties byte 0: a 4 KiB dictionary (xz's smallest). Uncompressed chunks
/// only pass through it, so a client's decoder needs next to no memory.
const DICT_4K: u8 = 0;
/// The most bytes one uncompressed LZMA2 chunk carries.
const CHUNK: usize = 64 * 1024;

/// The part file of `payload` as `'x'` and one `.xz` stream of uncompressed LZMA2
/// chunks (see the module docs): about 3 bytes per 64 KiB and 60 bytes in all larger
/// than the payload, decoded by a copy.
pub fn stored_xz_part(payload: &[u8]) -> Vec<u8> {
    let chunks = payload.len().div_ceil(CHUNK);
    let mut out = Vec::with_capacity(
        payload
            .len()
            .saturating_add(chunks.saturating_mul(3))
            .saturating_add(96),
    );
    out.push(b'x');
    // Stream header.
    out.extend_from_slice(&XZ_MAGIC);
    out.extend_from_slice(&STREAM_FLAGS);
    out.extend_from_slice(&crc32(&STREAM_FLAGS).to_le_bytes());

    // The block's LZMA2 data: one chunk per 64 KiB, then the end marker.
    let data_len = (payload.len() as u64)
        .saturating_add(3u64.saturating_mul(chunks as u64))
        .saturating_add(1);

    // Block header: size byte, flags (one filter, both sizes present), the sizes, the
    // filter flags, zero padding to a multiple of four, CRC32.
    let mut header = vec![0u8, 0xc0];
    put_varint(&mut header, data_len);
    put_varint(&mut header, payload.len() as u64);
    header.extend_from_slice(&[LZMA2, 1, DICT_4K]);
    while header.len() % 4 != 0 {
        header.push(0);
    }
    // With its CRC32 the header is at most 28 bytes: its size byte is `len / 4 - 1`.
    let header_len = header.len().saturating_add(4);
    if let Some(size) = header.first_mut() {
        *size = u8::try_from((header_len / 4).saturating_sub(1)).unwrap_or(u8::MAX);
    }
    let crc = crc32(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&header);

    let mut control = 1u8;
    for chunk in payload.chunks(CHUNK) {
        out.push(control);
        control = 2;
        // 1..=65536 bytes: `len - 1` fits 16 bits.
        let n = u16::try_from(chunk.len().saturating_sub(1)).unwrap_or(u16::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out.push(0);

    let unpadded = (header_len as u64)
        .saturating_add(data_len)
        .saturating_add(CHECK_LEN);
    while out.len() % 4 != 1 {
        // Block padding: header and data to a multiple of four (the stream so far
        // starts at offset 1, after the compression byte, and its header is 12 bytes).
        out.push(0);
    }
    out.extend_from_slice(&crc32(payload).to_le_bytes());

    // Index: indicator, one record (unpadded size, uncompressed size), padding, CRC32.
    let mut index = vec![0u8];
    put_varint(&mut index, 1);
    put_varint(&mut index, unpadded);
    put_varint(&mut index, payload.len() as u64);
    while index.len() % 4 != 0 {
        index.push(0);
    }
    let crc = crc32(&index);
    index.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&index);

    // Stream footer: CRC32 of (backward size, flags), backward size, flags, magic.
    let backward = u32::try_from((index.len() / 4).saturating_sub(1)).unwrap_or(u32::MAX);
    let mut tail = Vec::with_capacity(6);
    tail.extend_from_slice(&backward.to_le_bytes());
    tail.extend_from_slice(&STREAM_FLAGS);
    out.extend_from_slice(&crc32(&tail).to_le_bytes());
    out.extend_from_slice(&tail);
    out.extend_from_slice(&FOOTER_MAGIC);
    out
}

/// The CRC32 (IEEE) of `data`.
fn crc32(data: &[u8]) -> u32 {
    let mut c = Crc::new();
    c.update(data);
    c.sum()
}

/// Appends `v` as an xz multibyte integer (seven bits a byte, low first).
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v = v.wrapping_shr(7);
    }
    out.push((v & 0x7f) as u8);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::delta::part::{DecoderNeed, decoder_need};
    use std::io::Read;

    fn decode(file: &[u8]) -> Vec<u8> {
        assert_eq!(file[0], b'x');
        let mut out = Vec::new();
        liblzma::read::XzDecoder::new(&file[1..])
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn liblzma_decodes_stored_streams_of_every_shape() {
        // Empty, one byte, a chunk exactly, a chunk and one, several chunks with a
        // ragged end (so padding of block and index both vary).
        for len in [0usize, 1, 3, 65535, 65536, 65537, 200_003, 3 * 65536 + 2] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
            let file = stored_xz_part(&payload);
            assert_eq!(decode(&file), payload, "length {len}");
            let overhead = file.len() - payload.len();
            assert!(
                overhead <= 64 + 3 * len.div_ceil(CHUNK),
                "length {len}: {overhead}"
            );
        }
    }

    #[test]
    fn a_damaged_stored_stream_is_refused_by_the_decoder() {
        let payload = vec![7u8; 100_000];
        let mut file = stored_xz_part(&payload);
        // A payload byte: only the block's CRC32 check notices.
        file[40_000] ^= 1;
        let mut out = Vec::new();
        assert!(
            liblzma::read::XzDecoder::new(&file[1..])
                .read_to_end(&mut out)
                .is_err()
        );
    }

    #[test]
    fn the_decoder_needs_a_4k_dictionary() {
        let file = stored_xz_part(&[1u8; 300_000]);
        assert_eq!(decoder_need(&file).unwrap(), DecoderNeed::Dict(4096));
    }
}
