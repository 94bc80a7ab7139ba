//! The compressors of the generator's pipeline (`pack.rs`): each part is compressed as
//! its [`Class`] says ([`compression_for`]) and written as it finishes, on every core,
//! within the memory [`Budget`] the bsdiff workers share. Parts of already-compressed
//! files that xz cannot shrink by 3 % go as uncompressed LZMA2 chunks
//! ([`stored_xz_part`]), which clients decode at the speed of a copy; a large part is
//! judged by a sample of it first, since xz's fastest preset crawls over such data.

use std::path::Path;
use std::sync::mpsc::Receiver;
use std::sync::{Condvar, Mutex};

use cfsync_formats::checksum::Checksum;
use cfsync_formats::delta::write::{
    BuiltPart, PartCompression, PartEntry, compress_part_as, dict_size_for, stored_xz_part,
};

use super::error::DeltaError;
use super::options::GenerateOptions;
use super::pair::Class;

/// A counting semaphore over bytes.
pub(super) struct Budget {
    avail: Mutex<u64>,
    cv: Condvar,
    total: u64,
}

impl Budget {
    /// A budget of `total` bytes.
    pub(super) fn new(total: u64) -> Self {
        Budget {
            avail: Mutex::new(total),
            cv: Condvar::new(),
            total,
        }
    }

    /// Takes `want` bytes (at most the whole budget), waiting until they are free;
    /// returns what was taken, for [`Budget::release`].
    pub(super) fn acquire(&self, want: u64) -> u64 {
        let n = want.min(self.total);
        let mut a = self.avail.lock().unwrap_or_else(|e| e.into_inner());
        while *a < n {
            a = self.cv.wait(a).unwrap_or_else(|e| e.into_inner());
        }
        *a = a.saturating_sub(n);
        n
    }

    /// Gives back `n` bytes taken by [`Budget::acquire`].
    pub(super) fn release(&self, n: u64) {
        let mut a = self.avail.lock().unwrap_or_else(|e| e.into_inner());
        *a = a.saturating_add(n);
        self.cv.notify_all();
    }
}

/// A part to compress: its index, its payload and objects, and its class.
pub(super) type PartMsg = (usize, BuiltPart, Class);

/// A part compressed and written: its index, its superblock entry, the dictionary its
/// decoder needs, and whether it went as uncompressed LZMA2 chunks.
pub(super) struct Compressed {
    pub(super) idx: usize,
    pub(super) entry: PartEntry,
    pub(super) dict: u32,
    pub(super) stored: bool,
}

/// A part of already-compressed files whose xz stream is not at least this many
/// thousandths smaller than its payload goes as uncompressed LZMA2 chunks instead
/// ([`stored_xz_part`]): a client decodes those at the speed of a copy, where LZMA
/// decoding of such data costs about as much time as a part ten times its size, for a
/// percent or two of bytes.
const PACKED_MIN_SAVING: usize = 30;

/// The dictionary of a stored part's stream ([`stored_xz_part`]: 4 KiB).
const STORED_DICT: u32 = 4096;

/// Whether a compressed file of `compressed` bytes saves less than
/// [`PACKED_MIN_SAVING`] thousandths of a payload of `payload` bytes.
fn saves_little(compressed: usize, payload: usize) -> bool {
    // Compared in u128: no overflow for any lengths.
    (compressed as u128) * 1000 > (payload as u128) * (1000 - PACKED_MIN_SAVING as u128)
}

/// Windows of a payload compressed to judge whether xz can shrink it
/// ([`sample_saves_little`]).
const SAMPLES: usize = 4;
/// Bytes of each window.
const SAMPLE_LEN: usize = 128 * 1024;

/// Whether `payload` looks incompressible from [`SAMPLES`] windows spread over it,
/// compressed as `how` says (within `budget`): they save under [`PACKED_MIN_SAVING`]
/// thousandths. Short payloads (up to twice the windows) are not judged by a sample:
/// false.
fn sample_saves_little(payload: &[u8], how: &PartCompression, budget: &Budget) -> bool {
    let window = SAMPLES.saturating_mul(SAMPLE_LEN);
    if payload.len() <= window.saturating_mul(2) {
        return false;
    }
    let step = payload.len() / SAMPLES;
    let sample: Vec<u8> = (0..SAMPLES)
        .filter_map(|i| {
            let at = i.saturating_mul(step);
            payload.get(at..at.saturating_add(SAMPLE_LEN))
        })
        .flatten()
        .copied()
        .collect();
    let got = budget.acquire(
        how.encoder_memory(sample.len())
            .saturating_add(sample.len() as u64),
    );
    let little = compress_part_as(&sample, how).is_ok_and(|f| saves_little(f.len(), sample.len()));
    budget.release(got);
    little
}

/// xz's `nice_len` for bsdiff patches, whatever `--xz-nice-len` says: their long runs
/// of zeros pay for long matches (32 costs 3.6 % more bytes than the preset's 64), and
/// 48 keeps most of that (1.2 % more) for about a sixth less time.
const PATCH_NICE_LEN: u32 = 48;

/// How a part of `class` is compressed.
fn compression_for(class: Class, opts: &GenerateOptions) -> PartCompression {
    let base = PartCompression {
        preset: opts.xz_preset,
        max_dict: opts.max_dict,
        nice_len: opts.nice_len,
        x86: false,
        hash_chain: opts.hash_chain,
    };
    match class {
        Class::Plain => base,
        Class::Code => PartCompression { x86: true, ..base },
        // xz finds about a tenth more in gzip and zip files at any preset.
        Class::Packed => PartCompression {
            preset: base.preset.min(1),
            nice_len: None,
            hash_chain: false,
            ..base
        },
        Class::Patch => PartCompression {
            nice_len: Some(PATCH_NICE_LEN),
            hash_chain: false,
            ..base
        },
    }
}

/// A compressor thread: takes parts from `rx` until it closes, compresses each as its
/// class says (within `budget`), writes it into `dir` (or keeps it for the superblock
/// when inline) and sends the result to `out`.
pub(super) fn compress_loop(
    rx: &Mutex<Receiver<PartMsg>>,
    out: &std::sync::mpsc::Sender<Result<Compressed, DeltaError>>,
    opts: &GenerateOptions,
    dir: &Path,
    budget: &Budget,
) {
    loop {
        let msg = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok((idx, built, class)) = msg else { return };
        let how = compression_for(class, opts);
        let (file, dict, stored) = if class == Class::Packed
            && sample_saves_little(&built.payload, &how, budget)
        {
            // Incompressible by its sample: not worth a full pass (xz's preset 1 runs at
            // about 3 MB/s over such data).
            (Ok(stored_xz_part(&built.payload)), STORED_DICT, true)
        } else {
            let cost = how
                .encoder_memory(built.payload.len())
                .saturating_add(built.payload.len() as u64);
            let got = budget.acquire(cost);
            let file = compress_part_as(&built.payload, &how);
            budget.release(got);
            match file {
                Ok(f) if class == Class::Packed && saves_little(f.len(), built.payload.len()) => {
                    (Ok(stored_xz_part(&built.payload)), STORED_DICT, true)
                }
                other => (
                    other,
                    dict_size_for(built.payload.len(), how.max_dict),
                    false,
                ),
            }
        };
        let result = file.map_err(DeltaError::from).and_then(|file| {
            let checksum = Checksum::of(&file);
            let size = file.len() as u64;
            let inline = if opts.inline {
                Some(file)
            } else {
                let path = dir.join(idx.to_string());
                std::fs::write(&path, &file)
                    .map_err(|source| DeltaError::Write { path, source })?;
                None
            };
            Ok(Compressed {
                idx,
                entry: PartEntry {
                    checksum,
                    size,
                    // At least the payload: every client's decompression limit derived
                    // from this field (ostree 2026.3) then accepts the part.
                    uncompressed_size: built.content_size.max(built.payload.len() as u64),
                    objects: built.objects,
                    inline,
                },
                dict,
                stored,
            })
        });
        if out.send(result).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_saving_under_three_percent_go_stored() {
        assert!(saves_little(1000, 1000));
        assert!(saves_little(971, 1000));
        assert!(!saves_little(970, 1000));
        assert!(!saves_little(500, 1000));
        // No overflow at the extremes.
        assert!(saves_little(usize::MAX, usize::MAX));
        assert!(!saves_little(0, usize::MAX));
    }

    #[test]
    fn a_sample_judges_large_payloads_only() {
        let how = compression_for(Class::Packed, &GenerateOptions::new("0".repeat(64)));
        let budget = Budget::new(64 << 20);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..3 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(sample_saves_little(&noise, &how, &budget));
        // The same bytes repeated compress well.
        let repeated: Vec<u8> = noise[..4096]
            .iter()
            .copied()
            .cycle()
            .take(3 << 20)
            .collect();
        assert!(!sample_saves_little(&repeated, &how, &budget));
        // Up to twice the sample, the whole part is compressed and judged instead.
        assert!(!sample_saves_little(&noise[..1 << 20], &how, &budget));
    }

    #[test]
    fn only_already_compressed_parts_skip_the_slow_preset() {
        let opts = GenerateOptions::new("0".repeat(64));
        assert_eq!(compression_for(Class::Packed, &opts).preset, 1);
        assert!(compression_for(Class::Code, &opts).x86);
        assert_eq!(compression_for(Class::Plain, &opts).preset, opts.xz_preset);
    }
}
