//! OSTree static deltas: names and paths, superblock, signed wrapper, delta index, part
//! files, the operation bytecode, bspatch, and a summary of a delta's figures.
//!
//! Layout of a delta (see `docs/ostree-formats.md` §7 and `src/libostree/
//! ostree-repo-static-delta-private.h`):
//!
//! - [`names`]: hex delta names and `deltas/…` paths (modified base64).
//! - [`superblock`]: `(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))`, with the
//!   delta's byte order for host-order fields ([`superblock::Endianness`]).
//! - [`signed`]: the `OSTSGNDT` `(taya{sv})` wrapper around a superblock.
//! - [`index`]: `delta-indexes/XX/REST.index`, an `a{sv}` with `ostree.static-deltas`.
//! - [`part`]: part files (`(yay)`: compression byte + payload), bounded decompression, and
//!   the payload `(a(uuu)aa(ayay)ayay)`.
//! - [`ops`]: the operation bytecode, decoded and range-checked as an iterator.
//! - [`bspatch`]: the patch format of `B` operations.
//! - [`show`]: the figures `ostree static-delta show` prints.
//!
//! Everything here is pure: bytes in, views out. Fetching, checksum policy and writing
//! objects belong to the engine.

pub mod bspatch;
pub mod index;
pub mod names;
pub mod ops;
pub mod part;
pub mod show;
pub mod signed;
pub mod superblock;
pub mod write;

use crate::checksum::Checksum;
use crate::object::ObjectType;

pub use names::DeltaName;

/// Length of one entry of a part's object list: a type byte and a 32-byte checksum.
pub const OBJECT_ENTRY_LEN: usize = 33;

/// One object of a part's object list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeltaObject {
    /// Position in the part's object list.
    pub index: usize,
    /// The object's type.
    pub object_type: ObjectType,
    /// The object's checksum (its name).
    pub checksum: Checksum,
}

/// An object list that is not `n × 33` bytes of (type 1–4, checksum).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaObjectsError {
    /// The length is not a multiple of 33.
    #[error("delta object list has {0} bytes, not a multiple of 33")]
    Length(usize),
    /// An entry has a type byte other than 1–4.
    #[error("delta object list entry {index} has invalid object type {byte}")]
    Type {
        /// The entry.
        index: usize,
        /// Its type byte.
        byte: u8,
    },
}

/// A checked object list (`ay` of `n × 33` bytes in a part header): the objects a part
/// creates, in the order its operations create them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaObjects<'a> {
    data: &'a [u8],
}

impl<'a> DeltaObjects<'a> {
    /// Checks the length and every type byte. Allocates nothing.
    pub fn new(data: &'a [u8]) -> Result<Self, DeltaObjectsError> {
        if data.len().checked_rem(OBJECT_ENTRY_LEN) != Some(0) {
            return Err(DeltaObjectsError::Length(data.len()));
        }
        for (index, chunk) in data.chunks_exact(OBJECT_ENTRY_LEN).enumerate() {
            let byte = chunk.first().copied().unwrap_or(0);
            if !ObjectType::from_u8(byte).is_ok_and(ObjectType::is_transferable) {
                return Err(DeltaObjectsError::Type { index, byte });
            }
        }
        Ok(DeltaObjects { data })
    }

    /// The raw list bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(OBJECT_ENTRY_LEN).unwrap_or(0)
    }

    /// Whether the list is empty ("nothing to do").
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Object `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<DeltaObject> {
        let chunk = self.data.chunks_exact(OBJECT_ENTRY_LEN).nth(index)?;
        let (&ty, csum) = chunk.split_first()?;
        Some(DeltaObject {
            index,
            object_type: ObjectType::from_u8(ty).ok()?,
            checksum: Checksum::from_slice(csum).ok()?,
        })
    }

    /// Iterates over the objects.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = DeltaObject> + 'a {
        let data = self.data;
        let n = self.len();
        (0..n).map(move |i| {
            // Entries were checked in `new`; `get` cannot fail for i < n.
            DeltaObjects { data }.get(i).unwrap_or(DeltaObject {
                index: i,
                object_type: ObjectType::File,
                checksum: Checksum([0; 32]),
            })
        })
    }
}
