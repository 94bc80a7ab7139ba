//! Test data that is the same on every machine: hashes, a seeded generator, and
//! pseudo-random bytes.

use sha2::{Digest, Sha256};

/// Hex SHA-256 of `data`, lowercase.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `len` bytes of a fixed pseudo-random stream (xorshift64*), the same for the same
/// `seed` on every machine. Such content does not compress, and small edits to it are
/// found by bsdiff but not by a rolling checksum.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let x = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut rng = Rng(if x == 0 { 1 } else { x });
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let v = rng.next_u64();
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&v.to_le_bytes()[..take]);
    }
    out
}

/// A small seeded generator (xorshift64*), so a failing run can be repeated with the
/// same seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is replaced by a fixed constant).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_random_is_stable() {
        assert_eq!(pseudo_random(1, 20), pseudo_random(1, 20));
        assert_ne!(pseudo_random(1, 20), pseudo_random(2, 20));
        assert_eq!(pseudo_random(1, 13).len(), 13);
        assert_eq!(&pseudo_random(1, 16)[..8], &pseudo_random(1, 8)[..]);
    }
}
