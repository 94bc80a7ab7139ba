//! OSTree object checksums: SHA-256, 32 raw bytes, 64 lowercase hex characters.
//!
//! Inside GVariants a checksum is an `ay` of exactly 32 bytes; in paths, refs and object
//! names it is 64 lowercase hex digits (uppercase is rejected, as in libostree's
//! `ostree_validate_structureof_checksum_string`, `src/libostree/ostree-core.c`).
//! Also provides OSTree's "modified base64" used in static-delta paths
//! (`ostree_checksum_b64_inplace_from_bytes`).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// A SHA-256 OSTree object checksum.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Checksum(pub [u8; 32]);

/// A string or byte slice that is not a valid checksum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseChecksumError {
    /// Raw checksum bytes of the wrong length.
    #[error("checksum has {0} bytes, expected 32")]
    Length(usize),
    /// Hex checksum string of the wrong length.
    #[error("checksum string has {0} characters, expected 64")]
    HexLength(usize),
    /// A character other than `0-9a-f`.
    #[error("checksum string has a character other than 0-9a-f at position {0}")]
    HexChar(usize),
    /// Modified base64 of the wrong form.
    #[error("invalid modified-base64 checksum")]
    Base64,
}

/// Two checksums that should be equal are not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checksum mismatch: expected {expected}, got {actual}")]
pub struct ChecksumMismatch {
    /// The checksum the object was requested by.
    pub expected: Checksum,
    /// The checksum of the data received.
    pub actual: Checksum,
}

impl Checksum {
    /// The checksum of the empty dirtree (the single byte `00`).
    pub const EMPTY_DIRTREE: Checksum = Checksum([
        0x6e, 0x34, 0x0b, 0x9c, 0xff, 0xb3, 0x7a, 0x98, 0x9c, 0xa5, 0x44, 0xe6, 0xbb, 0x78, 0x0a,
        0x2c, 0x78, 0x90, 0x1d, 0x3f, 0xb3, 0x37, 0x38, 0x76, 0x85, 0x11, 0xa3, 0x06, 0x17, 0xaf,
        0xa0, 0x1d,
    ]);

    /// Exactly 32 raw bytes. Allocates nothing.
    pub fn from_slice(b: &[u8]) -> Result<Self, ParseChecksumError> {
        b.try_into()
            .map(Checksum)
            .map_err(|_| ParseChecksumError::Length(b.len()))
    }

    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Checksum(Sha256::digest(data).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Succeeds if `actual` equals `self` (the expected checksum).
    pub fn verify(&self, actual: &Checksum) -> Result<(), ChecksumMismatch> {
        if self == actual {
            Ok(())
        } else {
            Err(ChecksumMismatch {
                expected: *self,
                actual: *actual,
            })
        }
    }

    /// OSTree's modified base64: standard base64 with `/` written `_`, no padding
    /// (43 characters). Used in static-delta paths.
    pub fn to_modified_base64(&self) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+_";
        let mut out = String::with_capacity(43);
        for chunk in self.0.chunks(3) {
            let mut buf = [0u8; 3];
            for (d, s) in buf.iter_mut().zip(chunk) {
                *d = *s;
            }
            let n = (u32::from(buf[0]) << 16) | (u32::from(buf[1]) << 8) | u32::from(buf[2]);
            let chars = chunk.len().saturating_add(1);
            for i in 0..chars {
                let shift = 18u32.saturating_sub(6u32.saturating_mul(i as u32));
                let idx = ((n >> shift) & 63) as usize;
                if let Some(c) = A.get(idx) {
                    out.push(char::from(*c));
                }
            }
        }
        out
    }

    /// Parses OSTree's modified base64 (43 characters, see [`Checksum::to_modified_base64`]).
    /// Allocates only a fixed 32-byte buffer.
    pub fn from_modified_base64(s: &str) -> Result<Self, ParseChecksumError> {
        fn val(c: u8) -> Option<u32> {
            Some(match c {
                b'A'..=b'Z' => c.wrapping_sub(b'A'),
                b'a'..=b'z' => c.wrapping_sub(b'a').wrapping_add(26),
                b'0'..=b'9' => c.wrapping_sub(b'0').wrapping_add(52),
                b'+' => 62,
                b'_' => 63,
                _ => return None,
            } as u32)
        }
        let b = s.as_bytes();
        if b.len() != 43 {
            return Err(ParseChecksumError::Base64);
        }
        let mut out = Vec::with_capacity(32);
        for chunk in b.chunks(4) {
            let mut n = 0u32;
            for (i, c) in chunk.iter().enumerate() {
                let v = val(*c).ok_or(ParseChecksumError::Base64)?;
                n |= v << 18u32.saturating_sub(6u32.saturating_mul(i as u32));
            }
            let bytes = n.to_be_bytes();
            let take = chunk.len().saturating_sub(1);
            out.extend(bytes.iter().skip(1).take(take));
        }
        let c = Checksum::from_slice(&out).map_err(|_| ParseChecksumError::Base64)?;
        // Reject non-canonical encodings (nonzero unused bits in the last character).
        if c.to_modified_base64() != s {
            return Err(ParseChecksumError::Base64);
        }
        Ok(c)
    }
}

impl FromStr for Checksum {
    type Err = ParseChecksumError;

    /// Exactly 64 lowercase hex characters. Allocates nothing.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(ParseChecksumError::HexLength(b.len()));
        }
        if let Some(pos) = b
            .iter()
            .position(|c| !matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(ParseChecksumError::HexChar(pos));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(b, &mut out).map_err(|_| ParseChecksumError::HexLength(b.len()))?;
        Ok(Checksum(out))
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({self})")
    }
}

impl From<[u8; 32]> for Checksum {
    fn from(b: [u8; 32]) -> Self {
        Checksum(b)
    }
}

impl AsRef<[u8]> for Checksum {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Incremental SHA-256 that also works as an [`std::io::Write`] sink.
#[derive(Debug, Clone, Default)]
pub struct Sha256Writer {
    hasher: Sha256,
    len: u64,
}

impl Sha256Writer {
    /// A new, empty hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.len = self.len.saturating_add(data.len() as u64);
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The checksum of everything fed.
    pub fn finish(self) -> Checksum {
        Checksum(self.hasher.finalize().into())
    }
}

impl std::io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        let s = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d";
        let c: Checksum = s.parse().unwrap();
        assert_eq!(c, Checksum::EMPTY_DIRTREE);
        assert_eq!(c, Checksum::of(&[0]));
        assert_eq!(c.to_string(), s);
        assert_eq!(c.to_hex(), s);
        assert!(s.to_uppercase().parse::<Checksum>().is_err());
        assert!(s[1..].parse::<Checksum>().is_err());
        assert!(format!("{s}0").parse::<Checksum>().is_err());
        assert!(Checksum::from_slice(&[0; 31]).is_err());
        let e = c.verify(&Checksum([0; 32])).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("checksum mismatch: expected {s}, got {}", "0".repeat(64))
        );
    }

    #[test]
    fn modified_base64() {
        // Values from the fixture (docs/ostree-formats.md §10.5).
        let a: Checksum = "873654cfb9ba81eed17d2c0f204f4bdebdc5b33669a18cfd36a4e49efc87c73d"
            .parse()
            .unwrap();
        assert_eq!(
            a.to_modified_base64(),
            "hzZUz7m6ge7RfSwPIE9L3r3FszZpoYz9NqTknvyHxz0"
        );
        let b: Checksum = "6e908d2df405a0d95e107ed141be3e297f9e35cac99d9045c9bcab84784f5017"
            .parse()
            .unwrap();
        assert_eq!(
            b.to_modified_base64(),
            "bpCNLfQFoNleEH7RQb4+KX+eNcrJnZBFybyrhHhPUBc"
        );
        assert_eq!(
            Checksum::from_modified_base64("bpCNLfQFoNleEH7RQb4+KX+eNcrJnZBFybyrhHhPUBc"),
            Ok(b)
        );
        assert!(
            Checksum::from_modified_base64("bpCNLfQFoNleEH7RQb4+KX+eNcrJnZBFybyrhHhPUBd").is_err()
        );
        assert!(
            Checksum::from_modified_base64("bpCNLfQFoNleEH7RQb4/KX+eNcrJnZBFybyrhHhPUBc").is_err()
        );
    }
}
