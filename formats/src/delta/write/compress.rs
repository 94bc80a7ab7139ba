//! Part files: `(yay)`, a compression byte and the payload, xz-compressed as one stream.
//!
//! ostree reads a part with one LZMA decoder and stops at the end of the first stream, so
//! a part is exactly one `.xz` stream (it may hold several blocks). The dictionary is
//! bounded ([`MAX_DICT_SIZE`]) and never larger than the payload, so a client's decoder
//! needs at most that much window memory and several parts decode side by side.

use std::io::Write;

use liblzma::stream::{Check, LzmaOptions, Stream};
use liblzma::write::XzEncoder;

use super::payload::WriteError;

/// The largest LZMA2 dictionary a cfsync part uses: 8 MiB, so that a 48 MiB decoding
/// budget holds several decoders at once (ostree writes 32 MiB, xz preset 8).
pub const MAX_DICT_SIZE: u32 = 8 << 20;

/// Smallest dictionary used (liblzma's minimum is 4 KiB).
const MIN_DICT_SIZE: u32 = 64 << 10;

/// The dictionary size for a payload of `len` bytes: the next power of two at or above
/// it, between 64 KiB and `max` (itself at most [`MAX_DICT_SIZE`]). A window larger than
/// the data buys nothing and costs the decoder memory.
pub fn dict_size_for(len: usize, max: u32) -> u32 {
    let max = max.clamp(MIN_DICT_SIZE, MAX_DICT_SIZE);
    let want = u32::try_from(len).unwrap_or(u32::MAX);
    want.checked_next_power_of_two()
        .unwrap_or(max)
        .clamp(MIN_DICT_SIZE, max)
}

/// How one part is compressed: the xz preset, the largest dictionary, and whether the
/// x86 branch filter (BCJ) runs before LZMA2 (for parts of x86 machine code, whose
/// relative call targets it turns absolute so that repeated calls compress; every
/// liblzma decoder, ostree's included, undoes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartCompression {
    /// xz preset, 0–9.
    pub preset: u32,
    /// Largest dictionary (clamped to [`MAX_DICT_SIZE`]).
    pub max_dict: u32,
    /// Longest match the encoder looks for (liblzma's `nice_len`, 2–273); `None` keeps
    /// the preset's.
    pub nice_len: Option<u32>,
    /// Run the x86 BCJ filter first.
    pub x86: bool,
    /// Find matches with liblzma's 4-byte hash chains (`hc4`) instead of the preset's
    /// binary trees: about a fifth less CPU for about 2 % more bytes on OS trees.
    pub hash_chain: bool,
}

impl PartCompression {
    /// Memory the encoder needs, estimated: the dictionary times 12 for the binary-tree
    /// match finders of presets 4–9, times 8 for hash chains (presets 0–3, or asked).
    pub fn encoder_memory(&self, payload_len: usize) -> u64 {
        let dict = u64::from(dict_size_for(payload_len, self.max_dict));
        let factor = if self.preset.min(9) >= 4 && !self.hash_chain {
            12
        } else {
            8
        };
        dict.saturating_mul(factor)
    }
}

/// The part file of `payload` compressed with xz: `'x'` then one `.xz` stream (LZMA2,
/// CRC64) with `preset` (0–9) and a dictionary of [`dict_size_for`]`(payload, max_dict)`.
pub fn compress_part(payload: &[u8], preset: u32, max_dict: u32) -> Result<Vec<u8>, WriteError> {
    compress_part_as(
        payload,
        &PartCompression {
            preset,
            max_dict,
            nice_len: None,
            x86: false,
            hash_chain: false,
        },
    )
}

/// The part file of `payload` compressed as `how` says: `'x'` then one `.xz` stream
/// (CRC64; the x86 filter if asked, then LZMA2 with a dictionary of
/// [`dict_size_for`]`(payload, how.max_dict)`).
pub fn compress_part_as(payload: &[u8], how: &PartCompression) -> Result<Vec<u8>, WriteError> {
    let mut opts = LzmaOptions::new_preset(how.preset.min(9)).map_err(WriteError::Xz)?;
    opts.dict_size(dict_size_for(payload.len(), how.max_dict));
    if let Some(n) = how.nice_len {
        opts.nice_len(n.clamp(2, 273));
    }
    if how.hash_chain {
        opts.match_finder(liblzma::stream::MatchFinder::HashChain4);
    }
    let mut filters = liblzma::stream::Filters::new();
    if how.x86 {
        filters.x86();
    }
    filters.lzma2(&opts);
    let stream = Stream::new_stream_encoder(&filters, Check::Crc64).map_err(WriteError::Xz)?;
    let mut out = Vec::with_capacity((payload.len() / 3).saturating_add(64));
    out.push(b'x');
    let mut enc = XzEncoder::new_stream(out, stream);
    enc.write_all(payload).map_err(WriteError::Io)?;
    enc.finish().map_err(WriteError::Io)
}

/// The part file of `payload` stored uncompressed: `0x00` then the payload.
pub fn stored_part(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len().saturating_add(1));
    out.push(0);
    out.extend_from_slice(payload);
    out
}
