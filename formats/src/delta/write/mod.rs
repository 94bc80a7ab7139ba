//! Writers for static delta files: superblocks and parts, in ostree's format — the inverse
//! of [`super::superblock`], [`super::signed`] and [`super::part`].
//!
//! - [`PartBuilder`] (`payload.rs`): a part's objects, as the payload
//!   `(a(uuu)aa(ayay)ayay)` and the 33-byte object list of its header; `S` for whole
//!   objects, `r o B c R` for a bsdiff against an old file.
//! - [`compress_part`] (`compress.rs`): the part file `(yay)`, one xz stream (CRC64, a
//!   bounded dictionary) or stored.
//! - [`SuperblockWriter`] (`superblock.rs`): the superblock with its endianness marker,
//!   inline parts and commitmeta, in either byte order; [`signed_superblock`] wraps it
//!   in `OSTSGNDT` `(taya{sv})` with signatures.
//!
//! Everything here is bytes in, bytes out: reading the repository, pairing files and
//! running bsdiff belong to the engine (`engine/src/publish/delta`).

mod compress;
mod payload;
mod superblock;

pub use compress::{MAX_DICT_SIZE, compress_part, dict_size_for, stored_part};
pub use payload::{BuiltPart, PartBuilder, WriteError};
pub use superblock::{PartEntry, SuperblockWriter, signed_superblock};
