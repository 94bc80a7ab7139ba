//! Pairing new files with old ones, and the tests that decide whether bsdiff is worth
//! running: pure functions, table-tested.
//!
//! ostree pairs a new file with an old one of the same basename. cfsync tries the same
//! path first, then files whose basename matches once version digits are dropped
//! (`libfoo.so.1.2.3` and `libfoo.so.1.3.0` share the stem `libfoo.so`), choosing the
//! candidate closest in size. Already-compressed files (gzip, xz, zstd, bzip2, zip,
//! PNG, JPEG) are not bsdiffed: a small change moves every later byte.

/// Most candidate bases considered for one file.
pub(crate) const MAX_CANDIDATES: usize = 8;

/// The basename with ASCII digits removed and trailing `.`, `-`, `_` trimmed.
pub(crate) fn stem(name: &str) -> String {
    let s: String = name.chars().filter(|c| !c.is_ascii_digit()).collect();
    let t = s.trim_end_matches(['.', '-', '_']);
    if t.is_empty() {
        name.to_owned()
    } else {
        t.to_owned()
    }
}

/// Whether `content` starts like an already-compressed format.
pub(crate) fn is_compressed(content: &[u8]) -> bool {
    const MAGICS: &[&[u8]] = &[
        &[0x1f, 0x8b],                         // gzip
        &[0xfd, b'7', b'z', b'X', b'Z', 0x00], // xz
        &[0x28, 0xb5, 0x2f, 0xfd],             // zstd
        b"BZh",                                // bzip2
        b"PK\x03\x04",                         // zip, jar, apk
        b"\x89PNG",                            // png
        &[0xff, 0xd8, 0xff],                   // jpeg
        &[0x04, 0x22, 0x4d, 0x18],             // lz4
        b"7z\xbc\xaf",                         // 7z
    ];
    MAGICS.iter().any(|m| content.starts_with(m))
}

/// What kind of bytes a whole file is, which decides the part it goes into and how
/// that part is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Text, data, metadata: the configured xz settings.
    Plain,
    /// x86 or x86-64 ELF files: the x86 branch filter before LZMA2.
    Code,
    /// Already-compressed files: a fast preset (xz finds little more in them), or
    /// uncompressed LZMA2 chunks when that saves under 3 % (`pack::saves_little`).
    Packed,
    /// bsdiff patches: a longer match length than `--xz-nice-len` gives (48; their long
    /// runs of zeros pay for it: `compress.rs`).
    Patch,
}

impl Class {
    /// Every class, in the order the packer keeps their parts.
    pub(crate) const ALL: [Class; 4] = [Class::Plain, Class::Code, Class::Packed, Class::Patch];

    /// Position in [`Class::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Class::Plain => 0,
            Class::Code => 1,
            Class::Packed => 2,
            Class::Patch => 3,
        }
    }
}

/// The class of a regular file's `content`: ELF with `e_machine` 3 (i386) or 62
/// (x86-64) is [`Class::Code`], a compressed format is [`Class::Packed`].
pub(crate) fn classify(content: &[u8]) -> Class {
    if content.starts_with(b"\x7fELF") {
        // e_machine: a 16-bit field at offset 18, in the byte order of EI_DATA (byte 5).
        let machine = match (content.get(5), content.get(18), content.get(19)) {
            (Some(1), Some(&lo), Some(&hi)) => u16::from_le_bytes([lo, hi]),
            (Some(2), Some(&hi), Some(&lo)) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        };
        if machine == 3 || machine == 62 {
            return Class::Code;
        }
    }
    if is_compressed(content) {
        return Class::Packed;
    }
    Class::Plain
}

/// Whether a bsdiff patch is plainly better than sending the file whole: patches are
/// mostly zero bytes where old and new agree, which xz then removes; fewer than one
/// nonzero byte in eight of the file settles it without compressing anything.
pub(crate) fn clearly_worth_patch(patch: &[u8], new_size: u64) -> bool {
    let nonzero = patch.iter().filter(|&&b| b != 0).count() as u64;
    nonzero.saturating_mul(8) < new_size
}

/// Of `candidates` (checksum, size), the one closest in size to `size` within a factor
/// of 4, and not larger than `max`.
pub(crate) fn closest<T: Copy>(candidates: &[(T, u64)], size: u64, max: u64) -> Option<T> {
    candidates
        .iter()
        .filter(|(_, s)| {
            *s > 0 && *s <= max && *s <= size.saturating_mul(4) && size <= s.saturating_mul(4)
        })
        .min_by_key(|(_, s)| s.abs_diff(size))
        .map(|(c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_drop_versions() {
        assert_eq!(stem("libfoo.so.1.2.3"), "libfoo.so");
        assert_eq!(stem("libfoo.so.1.3.0"), "libfoo.so");
        assert_eq!(stem("python3.11"), "python");
        assert_eq!(stem("README"), "README");
        assert_eq!(stem("1234"), "1234");
    }

    #[test]
    fn compressed_and_worth() {
        assert!(is_compressed(&[0x1f, 0x8b, 8, 0]));
        assert!(is_compressed(b"\xfd7zXZ\x00rest"));
        assert!(!is_compressed(b"\x7fELF"));
        assert!(clearly_worth_patch(&[0u8; 1000], 1000));
        assert!(!clearly_worth_patch(&[1u8; 600], 1000));
    }

    #[test]
    fn classes() {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(20, 0);
        elf[18] = 62;
        assert_eq!(classify(&elf), Class::Code);
        elf[18] = 183; // aarch64: no x86 filter
        assert_eq!(classify(&elf), Class::Plain);
        assert_eq!(classify(b"\x7fELF"), Class::Plain);
        assert_eq!(classify(&[0x1f, 0x8b, 8, 0]), Class::Packed);
        assert_eq!(classify(b"#!/bin/sh\n"), Class::Plain);
        assert!(Class::ALL.iter().enumerate().all(|(i, c)| c.index() == i));
    }

    #[test]
    fn closest_in_size() {
        let c = [(1, 100u64), (2, 1000), (3, 5000)];
        assert_eq!(closest(&c, 900, u64::MAX), Some(2));
        assert_eq!(closest(&c, 900, 500), None);
        assert_eq!(closest(&c, 100_000, u64::MAX), None);
    }
}
