//! [`PartBuilder`]: one part's objects as its payload `(a(uuu)aa(ayay)ayay)` and the
//! object list of its header.
//!
//! Operations emitted (docs/ostree-formats.md §7.7), the patterns ostree's own compiler
//! writes, so that every ostree version applies them:
//!
//! - metadata object or whole file: `S` (`size, offset` for metadata; `mode, xattrs,
//!   size, offset` for content), the bytes in the blob;
//! - file rebuilt from an old one: `r` (the old object's checksum, in the blob), `o`,
//!   `B` (the patch, in the blob), `c`, `R`.
//!
//! Mode and xattr tables are deduplicated; xattr lists are stored sorted by name, the
//! order ostree hashes them in.

use std::collections::HashMap;

use crate::checksum::Checksum;
use crate::gvariant::{self, OwnedValue};
use crate::object::ObjectType;
use crate::xattrs::Xattrs;

/// Why a part could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// A GVariant could not be serialized.
    #[error("delta writer: {0}")]
    Variant(#[from] gvariant::Error),
    /// A metadata dictionary could not be built.
    #[error("delta writer metadata: {0}")]
    Metadata(#[from] crate::metadata::Error),
    /// The xz encoder refused its options.
    #[error("delta part xz encoder: {0}")]
    Xz(liblzma::stream::Error),
    /// Compression failed.
    #[error("delta part compression: {0}")]
    Io(std::io::Error),
    /// An object type that a part cannot carry (commits travel in the superblock).
    #[error("object type {0:?} cannot go in a delta part")]
    ObjectType(ObjectType),
}

/// A finished part: its payload and what its header lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPart {
    /// The serialized payload `(a(uuu)aa(ayay)ayay)` (compress it with
    /// [`super::compress_part`]).
    pub payload: Vec<u8>,
    /// The object list: 33 bytes (type, checksum) per object, in creation order.
    pub objects: Vec<u8>,
    /// Sum of the content sizes of the part's objects (metadata objects count their
    /// length, symlinks 0).
    pub content_size: u64,
}

/// Builds one part, object by object.
#[derive(Debug, Default)]
pub struct PartBuilder {
    modes: Vec<(u32, u32, u32)>,
    mode_index: HashMap<(u32, u32, u32), u64>,
    xattrs: Vec<Xattrs>,
    xattr_index: HashMap<Xattrs, u64>,
    blob: Vec<u8>,
    ops: Vec<u8>,
    objects: Vec<u8>,
    content_size: u64,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl PartBuilder {
    /// An empty part.
    pub fn new() -> Self {
        PartBuilder::default()
    }

    /// Number of objects so far.
    pub fn len(&self) -> usize {
        self.objects.len().checked_div(33).unwrap_or(0)
    }

    /// Whether no object was added.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Bytes of payload so far (blob and ops; tables are small beside them).
    pub fn approx_len(&self) -> usize {
        self.blob.len().saturating_add(self.ops.len())
    }

    fn push_object(&mut self, ty: ObjectType, checksum: &Checksum) {
        self.objects.push(ty.as_u8());
        self.objects.extend_from_slice(checksum.as_bytes());
    }

    fn push_blob(&mut self, data: &[u8]) -> u64 {
        let at = len64(self.blob.len());
        self.blob.extend_from_slice(data);
        at
    }

    fn mode_idx(&mut self, uid: u32, gid: u32, mode: u32) -> u64 {
        let key = (uid, gid, mode);
        if let Some(&i) = self.mode_index.get(&key) {
            return i;
        }
        let i = len64(self.modes.len());
        self.modes.push(key);
        self.mode_index.insert(key, i);
        i
    }

    fn xattr_idx(&mut self, xattrs: &Xattrs) -> u64 {
        let mut sorted = xattrs.clone();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(&i) = self.xattr_index.get(&sorted) {
            return i;
        }
        let i = len64(self.xattrs.len());
        self.xattrs.push(sorted.clone());
        self.xattr_index.insert(sorted, i);
        i
    }

    /// Adds a dirtree or dirmeta object whole (`S`).
    pub fn add_metadata(
        &mut self,
        ty: ObjectType,
        checksum: &Checksum,
        data: &[u8],
    ) -> Result<(), WriteError> {
        if !matches!(ty, ObjectType::DirTree | ObjectType::DirMeta) {
            return Err(WriteError::ObjectType(ty));
        }
        let off = self.push_blob(data);
        self.ops.push(b'S');
        varint(&mut self.ops, len64(data.len()));
        varint(&mut self.ops, off);
        self.push_object(ty, checksum);
        self.content_size = self.content_size.saturating_add(len64(data.len()));
        Ok(())
    }

    /// Adds a file object whole (`S`): `content` is a regular file's bytes or a symlink's
    /// target (without NUL).
    pub fn add_file(
        &mut self,
        checksum: &Checksum,
        (uid, gid, mode): (u32, u32, u32),
        xattrs: &Xattrs,
        content: &[u8],
        is_symlink: bool,
    ) {
        let m = self.mode_idx(uid, gid, mode);
        let x = self.xattr_idx(xattrs);
        let off = self.push_blob(content);
        self.ops.push(b'S');
        varint(&mut self.ops, m);
        varint(&mut self.ops, x);
        varint(&mut self.ops, len64(content.len()));
        varint(&mut self.ops, off);
        self.push_object(ObjectType::File, checksum);
        if !is_symlink {
            self.content_size = self.content_size.saturating_add(len64(content.len()));
        }
    }

    /// Adds a regular file rebuilt from the old file object `old` with a bsdiff `patch`
    /// (mendsley format, no header): `r`, `o`, `B`, `c`, `R`.
    pub fn add_bsdiff(
        &mut self,
        checksum: &Checksum,
        (uid, gid, mode): (u32, u32, u32),
        xattrs: &Xattrs,
        old: &Checksum,
        new_size: u64,
        patch: &[u8],
    ) {
        let m = self.mode_idx(uid, gid, mode);
        let x = self.xattr_idx(xattrs);
        let src = self.push_blob(old.as_bytes());
        let poff = self.push_blob(patch);
        self.ops.push(b'r');
        varint(&mut self.ops, src);
        self.ops.push(b'o');
        varint(&mut self.ops, m);
        varint(&mut self.ops, x);
        varint(&mut self.ops, new_size);
        self.ops.push(b'B');
        varint(&mut self.ops, poff);
        varint(&mut self.ops, len64(patch.len()));
        self.ops.push(b'c');
        self.ops.push(b'R');
        self.push_object(ObjectType::File, checksum);
        self.content_size = self.content_size.saturating_add(new_size);
    }

    /// Serializes the payload.
    pub fn finish(self) -> Result<BuiltPart, WriteError> {
        let modes = self
            .modes
            .iter()
            .map(|&(u, g, m)| {
                OwnedValue::Tuple(vec![
                    OwnedValue::u32_be(u),
                    OwnedValue::u32_be(g),
                    OwnedValue::u32_be(m),
                ])
            })
            .collect();
        let xattrs = self
            .xattrs
            .iter()
            .map(|list| {
                OwnedValue::array(
                    "(ayay)",
                    list.iter()
                        .map(|(k, v)| {
                            OwnedValue::Tuple(vec![
                                OwnedValue::bytes(k.clone()),
                                OwnedValue::bytes(v.clone()),
                            ])
                        })
                        .collect(),
                )
            })
            .collect();
        let payload = OwnedValue::Tuple(vec![
            OwnedValue::array("(uuu)", modes),
            OwnedValue::array("a(ayay)", xattrs),
            OwnedValue::Bytes(self.blob),
            OwnedValue::Bytes(self.ops),
        ])
        .to_bytes()?;
        Ok(BuiltPart {
            payload,
            objects: self.objects,
            content_size: self.content_size,
        })
    }
}
