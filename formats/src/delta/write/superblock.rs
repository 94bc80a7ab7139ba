//! [`SuperblockWriter`]: the superblock
//! `(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))` and its signed wrapper.
//!
//! The host-order fields (part version, sizes, fallback sizes) are written in the order
//! chosen, and `ostree.endianness` says which (`l` or `B`), as `ostree static-delta
//! generate --set-endianness` does; leaving the marker out writes a delta as ostree did
//! before the key existed. Metadata keys follow ostree's order: caller metadata, the
//! endianness marker, `<dir>/commitmeta`, then inline parts `<dir>/<i>`.

use crate::checksum::Checksum;
use crate::delta::DeltaName;
use crate::delta::signed::{SIGN_KEY_PREFIX, SIGNED_MAGIC, SIGNED_TYPE};
use crate::delta::superblock::{ByteOrder, PART_VERSION};
use crate::gvariant::{OwnedValue, RawValue};
use crate::metadata::{DELTA_ENDIANNESS, Metadata, Variant};

use super::payload::WriteError;

/// One part as its header lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartEntry {
    /// SHA-256 of the whole part file.
    pub checksum: Checksum,
    /// Part file length.
    pub size: u64,
    /// The header's "uncompressed size" (see the engine for what it counts).
    pub uncompressed_size: u64,
    /// Object list, 33 bytes per object.
    pub objects: Vec<u8>,
    /// The part file itself, when it goes inline into the superblock metadata.
    pub inline: Option<Vec<u8>>,
}

/// A superblock to serialize.
#[derive(Debug, Clone)]
pub struct SuperblockWriter {
    /// Caller metadata (written first).
    pub metadata: Metadata,
    /// Generation time, seconds since the epoch.
    pub timestamp: u64,
    /// The from commit; `None` for a delta from scratch.
    pub from: Option<Checksum>,
    /// The to commit.
    pub to: Checksum,
    /// The serialized to-commit object.
    pub commit: Vec<u8>,
    /// The to-commit's detached metadata (`a{sv}` bytes), if it has any.
    pub commitmeta: Option<Vec<u8>>,
    /// Part headers in order.
    pub parts: Vec<PartEntry>,
    /// Fallback file objects: (checksum, `.filez` size, content size).
    pub fallbacks: Vec<(Checksum, u64, u64)>,
    /// Byte order of the host-order fields.
    pub byte_order: ByteOrder,
    /// Whether to write `ostree.endianness` (ostree always does since 2016).
    pub endianness_marker: bool,
}

impl SuperblockWriter {
    fn u32v(&self, v: u32) -> OwnedValue {
        match self.byte_order {
            ByteOrder::Little => OwnedValue::U32(v),
            ByteOrder::Big => OwnedValue::u32_be(v),
        }
    }

    fn u64v(&self, v: u64) -> OwnedValue {
        match self.byte_order {
            ByteOrder::Little => OwnedValue::U64(v),
            ByteOrder::Big => OwnedValue::u64_be(v),
        }
    }

    /// The superblock metadata dictionary.
    pub fn full_metadata(&self) -> Result<Metadata, WriteError> {
        let name = DeltaName::new(self.from, self.to);
        let mut m = self.metadata.clone();
        if self.endianness_marker {
            let b = match self.byte_order {
                ByteOrder::Little => b'l',
                ByteOrder::Big => b'B',
            };
            m.insert(DELTA_ENDIANNESS, Variant::byte(b))?;
        }
        if let Some(cm) = &self.commitmeta {
            m.insert(&name.commitmeta_key(), Variant::raw("a{sv}", cm.clone())?)?;
        }
        for (i, p) in self.parts.iter().enumerate() {
            if let Some(file) = &p.inline {
                m.insert(&name.part_path(i), Variant::raw("(yay)", file.clone())?)?;
            }
        }
        Ok(m)
    }

    /// Serializes the (unsigned) superblock.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WriteError> {
        let parts = self
            .parts
            .iter()
            .map(|p| {
                OwnedValue::Tuple(vec![
                    self.u32v(PART_VERSION),
                    OwnedValue::bytes(p.checksum.as_bytes().to_vec()),
                    self.u64v(p.size),
                    self.u64v(p.uncompressed_size),
                    OwnedValue::bytes(p.objects.clone()),
                ])
            })
            .collect();
        let fallbacks = self
            .fallbacks
            .iter()
            .map(|(c, size, usize_)| {
                OwnedValue::Tuple(vec![
                    OwnedValue::Byte(crate::object::ObjectType::File.as_u8()),
                    OwnedValue::bytes(c.as_bytes().to_vec()),
                    self.u64v(*size),
                    self.u64v(*usize_),
                ])
            })
            .collect();
        let from = self.from.map(|c| c.as_bytes().to_vec()).unwrap_or_default();
        Ok(OwnedValue::Tuple(vec![
            self.full_metadata()?.to_owned_value(),
            OwnedValue::u64_be(self.timestamp),
            OwnedValue::bytes(from),
            OwnedValue::bytes(self.to.as_bytes().to_vec()),
            OwnedValue::Raw(RawValue::new(
                "(a{sv}aya(say)sstayay)",
                self.commit.clone(),
            )?),
            OwnedValue::bytes(Vec::new()),
            OwnedValue::array("(uayttay)", parts),
            OwnedValue::array("(yaytt)", fallbacks),
        ])
        .to_bytes()?)
    }
}

/// Wraps `superblock` bytes in ostree's signed format `(taya{sv})`: the magic
/// `OSTSGNDT`, the superblock, and `ostree.sign.<engine>` → `aay` for each
/// `(engine, signatures)` given (e.g. `("ed25519", [sig])`).
pub fn signed_superblock(
    superblock: &[u8],
    signatures: &[(&str, Vec<Vec<u8>>)],
) -> Result<Vec<u8>, WriteError> {
    let mut m = Metadata::new();
    for (engine, sigs) in signatures {
        m.insert(
            &format!("{SIGN_KEY_PREFIX}{engine}"),
            Variant::bytes_array(sigs)?,
        )?;
    }
    let v = OwnedValue::Tuple(vec![
        OwnedValue::u64_be(u64::from_be_bytes(SIGNED_MAGIC)),
        OwnedValue::bytes(superblock.to_vec()),
        m.to_owned_value(),
    ]);
    debug_assert_eq!(v.type_string(), SIGNED_TYPE);
    Ok(v.to_bytes()?)
}
