//! [`GenerateOptions`]: what `delta generate` is asked for, with ostree's defaults where
//! ostree has an equivalent option.

use cfsync_formats::delta::superblock::ByteOrder;

/// Signs the superblock bytes: returns the engine name (`ed25519`) and one signature.
pub type DeltaSigner = Box<dyn Fn(&[u8]) -> Result<(String, Vec<u8>), String> + Send + Sync>;

/// Where the delta starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// From scratch (`--empty`).
    Empty,
    /// From this revision (ref or checksum).
    Rev(String),
    /// From the parent of the to-commit (ostree's default without `--from`).
    Parent,
}

/// Options of [`super::generate`].
pub struct GenerateOptions {
    /// Where the delta starts.
    pub from: From,
    /// Where it ends (ref or checksum).
    pub to: String,
    /// Put the parts into the superblock (`--inline`).
    pub inline: bool,
    /// Files larger than this (bytes) that are not rebuilt from an old file go as plain
    /// objects (fallbacks); 0 disables (`--min-fallback-size`, ostree's default 4 MB).
    pub min_fallback_size: u64,
    /// Largest file (old or new, bytes) that bsdiff runs on (`--max-bsdiff-size`).
    pub max_bsdiff_size: u64,
    /// Target payload bytes per part (`--max-chunk-size`).
    pub part_size: usize,
    /// xz preset (0–9).
    pub xz_preset: u32,
    /// Largest xz dictionary (bytes, at most 8 MiB).
    pub max_dict: u32,
    /// xz's `nice_len` (longest match sought) for whole-file parts; `None` keeps the
    /// preset's. bsdiff patches always keep the preset's.
    pub nice_len: Option<u32>,
    /// Whole-file parts find matches with xz's hash chains (`hc4`) instead of the
    /// preset's binary trees (`bt4`): less CPU, a few more bytes. bsdiff patches keep
    /// the preset's.
    pub hash_chain: bool,
    /// Byte order of the host-order fields.
    pub byte_order: ByteOrder,
    /// Write the `ostree.endianness` marker (leave it out only to test old readers).
    pub endianness_marker: bool,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Memory budget (bytes) for the heavy steps running at once: bsdiff suffix arrays
    /// and xz encoders.
    pub memory_budget: u64,
    /// Signers for a signed superblock.
    pub signers: Vec<DeltaSigner>,
    /// Generation time written into the superblock (seconds since the epoch).
    pub timestamp: u64,
}

impl GenerateOptions {
    /// Defaults for a delta to `to`: from the parent, ostree's fallback size (4 MB),
    /// bsdiff up to 24 MiB (168 MiB of working memory at most), 8 MiB parts, xz preset 6
    /// with a 4 MiB dictionary (whole files: `nice_len` 32 and hash chains),
    /// little-endian with the marker, every core, a 192 MiB budget.
    pub fn new(to: impl Into<String>) -> Self {
        GenerateOptions {
            from: From::Parent,
            to: to.into(),
            inline: false,
            min_fallback_size: 4_000_000,
            // 24 MiB: a changed 9 MB static library of the large fixture went as a
            // 2.5 MB fallback object at 8 MiB (v1 -> v2: 1.20x ostree's bytes).
            max_bsdiff_size: 24 << 20,
            part_size: 8 << 20,
            xz_preset: 6,
            max_dict: 4 << 20,
            // 32 instead of preset 6's 64: 8 % less xz time for 0.3 % more bytes on
            // whole files (scratch delta of the small fixture).
            nice_len: Some(32),
            // Hash chains: scratch delta of the small fixture 9.5 -> 7.5 s on two cores,
            // parts 2.3 % larger (0.99x of ostree's delta in all).
            hash_chain: true,
            byte_order: ByteOrder::Little,
            endianness_marker: true,
            threads: 0,
            memory_budget: 192 << 20,
            signers: Vec::new(),
            timestamp: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }
}

impl std::fmt::Debug for GenerateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateOptions")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("inline", &self.inline)
            .field("min_fallback_size", &self.min_fallback_size)
            .field("max_bsdiff_size", &self.max_bsdiff_size)
            .field("part_size", &self.part_size)
            .field("byte_order", &self.byte_order)
            .field("signers", &self.signers.len())
            .finish_non_exhaustive()
    }
}
