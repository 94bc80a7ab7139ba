//! The static-delta superblock: `(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))`.
//!
//! Fields (`OSTREE_STATIC_DELTA_SUPERBLOCK_FORMAT`,
//! `src/libostree/ostree-repo-static-delta-private.h`; writer:
//! `ostree_repo_static_delta_generate` in `ostree-repo-static-delta-compilation.c`):
//!
//! | # | type | field |
//! |---|---|---|
//! | 0 | `a{sv}` | metadata: `ostree.endianness`, `<dir>/commitmeta`, inline parts `<dir>/<i>` |
//! | 1 | `t` | generation time, **big-endian** |
//! | 2 | `ay` | from commit (32 bytes) or empty for a delta from scratch |
//! | 3 | `ay` | to commit (32 bytes) |
//! | 4 | commit | the to-commit object itself |
//! | 5 | `ay` | "recursive deltas" (pairs of checksums; always empty, ignored by ostree) |
//! | 6 | `a(uayttay)` | part headers: version, part file SHA-256, part file size, objects' content size, object list |
//! | 7 | `a(yaytt)` | fallback objects: type, checksum, `.filez` size, content size |
//!
//! Framing offsets are little-endian as in every GVariant. The part header `u`/`t` values
//! and the fallback sizes are in the **writer's** byte order, recorded in
//! `ostree.endianness` (`l` or `B`); without that key ostree guesses
//! (`_ostree_delta_get_endianness` in `ostree-repo-static-delta-core.c`). [`Endianness`]
//! mirrors that logic as a little-endian host runs it, and the accessors here return
//! values already converted.

use crate::checksum::Checksum;
use crate::commit::{self, CommitRef};
use crate::gvariant::{self, Value};
use crate::metadata::{self, DELTA_ENDIANNESS, MetadataRef};
use crate::object::ObjectType;

use super::{DeltaName, DeltaObjects, DeltaObjectsError};

/// GVariant type of a superblock.
pub const SUPERBLOCK_TYPE: &str = "(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))";

/// GVariant type of one part header.
pub const PART_HEADER_TYPE: &str = "(uayttay)";

/// GVariant type of one fallback entry.
pub const FALLBACK_TYPE: &str = "(yaytt)";

/// The only part format version ostree knows (`OSTREE_DELTAPART_VERSION`).
pub const PART_VERSION: u32 = 0;

/// Byte order of the host-order fields of a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Little-endian.
    Little,
    /// Big-endian.
    Big,
}

/// What a delta says (or what ostree guesses) about its byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endianness {
    /// `ostree.endianness` is `'l'`.
    Little,
    /// `ostree.endianness` is `'B'`.
    Big,
    /// `ostree.endianness` holds another byte: ostree does not swap (host order); read as
    /// little-endian, the order of every ostree writer seen.
    Invalid(u8),
    /// No `ostree.endianness`: ostree's heuristic (a part whose file is more than 1.2× its
    /// content size, or an average above 4 GiB per object, means byte-swapped) as a
    /// little-endian host computes it, overruled when it would read some size as more
    /// than 1 PiB and the other order reads every size plausibly.
    Heuristic(ByteOrder),
}

impl Endianness {
    /// The order the host-order fields are read in.
    pub fn byte_order(self) -> ByteOrder {
        match self {
            Endianness::Little | Endianness::Invalid(_) => ByteOrder::Little,
            Endianness::Big => ByteOrder::Big,
            Endianness::Heuristic(o) => o,
        }
    }

    /// What `ostree static-delta show` prints on a little-endian host ("little", "big",
    /// "big (heuristic)", "invalid"; a heuristic that finds no swap prints "invalid").
    pub fn ostree_description(self) -> &'static str {
        match self {
            Endianness::Little => "little",
            Endianness::Big => "big",
            Endianness::Heuristic(ByteOrder::Big) => "big (heuristic)",
            Endianness::Invalid(_) | Endianness::Heuristic(ByteOrder::Little) => "invalid",
        }
    }

    fn u32(self, raw: [u8; 4]) -> u32 {
        match self.byte_order() {
            ByteOrder::Little => u32::from_le_bytes(raw),
            ByteOrder::Big => u32::from_be_bytes(raw),
        }
    }

    fn u64(self, raw: [u8; 8]) -> u64 {
        match self.byte_order() {
            ByteOrder::Little => u64::from_le_bytes(raw),
            ByteOrder::Big => u64::from_be_bytes(raw),
        }
    }
}

/// Why a superblock is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SuperblockError {
    /// Not a normal-form superblock GVariant.
    #[error("delta superblock: {0}")]
    Variant(#[from] gvariant::Error),
    /// The metadata dictionary is invalid.
    #[error("delta superblock metadata: {0}")]
    Metadata(#[from] metadata::Error),
    /// A checksum field does not have 32 bytes.
    #[error("delta superblock {field} has {len} bytes, expected 32")]
    ChecksumLength {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// A part has a version other than 0.
    #[error("delta part {part} has unsupported version {version}")]
    PartVersion {
        /// Part index.
        part: usize,
        /// Its version (after byte-order conversion).
        version: u32,
    },
    /// A part's object list is invalid.
    #[error("delta part {part}: {source}")]
    PartObjects {
        /// Part index.
        part: usize,
        /// What is wrong.
        #[source]
        source: DeltaObjectsError,
    },
    /// A fallback entry is not a file object.
    #[error(
        "delta fallback {index} has object type {byte}, only file objects (1) may be fallbacks"
    )]
    FallbackType {
        /// Fallback index.
        index: usize,
        /// Its type byte.
        byte: u8,
    },
    /// An inline part has the wrong type.
    #[error("delta inline part {part} is a {actual}, expected (yay)")]
    InlinePartType {
        /// Part index.
        part: usize,
        /// The type found.
        actual: String,
    },
    /// The embedded commit is invalid.
    #[error("delta superblock commit: {0}")]
    Commit(#[from] commit::Error),
}

/// One part header, with host-order fields already converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartHeader<'a> {
    /// Position in the superblock's part list (the `<i>` of the part path).
    pub index: usize,
    /// Format version (always [`PART_VERSION`] once parsed).
    pub version: u32,
    /// SHA-256 of the whole part file (compression byte included).
    pub checksum: Checksum,
    /// Size of the part file in bytes (the download cap).
    pub size: u64,
    /// Sum of the content sizes of the part's objects (not the payload size).
    pub uncompressed_size: u64,
    /// The objects the part creates, in order.
    pub objects: DeltaObjects<'a>,
}

impl PartHeader<'_> {
    /// A generous cap for this part's decompressed payload, for
    /// [`super::part::decompress`]: four times the objects' content size (bsdiff patches
    /// carry every output byte plus 24 bytes of control per run) plus 4 KiB per object and
    /// 1 MiB for tables and ops, saturating.
    pub fn payload_cap(&self) -> u64 {
        let n = self.objects.len() as u64;
        self.uncompressed_size
            .saturating_mul(4)
            .saturating_add(n.saturating_mul(4096))
            .saturating_add(1 << 20)
    }
}

/// One fallback object (fetched as a loose `.filez` instead of from a part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// Position in the fallback list.
    pub index: usize,
    /// The object's type (always [`ObjectType::File`] once parsed).
    pub object_type: ObjectType,
    /// The object's checksum.
    pub checksum: Checksum,
    /// Size of the `.filez` in bytes.
    pub compressed_size: u64,
    /// Uncompressed content size.
    pub uncompressed_size: u64,
}

/// A checked, borrowed superblock.
#[derive(Debug, Clone)]
pub struct SuperblockRef<'a> {
    data: &'a [u8],
    metadata: MetadataRef<'a>,
    timestamp: u64,
    from: Option<Checksum>,
    to: Checksum,
    commit: &'a [u8],
    recurse: &'a [u8],
    endianness: Endianness,
    parts: Vec<PartHeader<'a>>,
    fallbacks: Vec<Fallback>,
}

fn checksum_field(v: &Value<'_>, field: &'static str) -> Result<Checksum, SuperblockError> {
    let b = v.as_bytes()?;
    Checksum::from_slice(b).map_err(|_| SuperblockError::ChecksumLength {
        field,
        len: b.len(),
    })
}

fn fixed<const N: usize>(v: &Value<'_>) -> Result<[u8; N], SuperblockError> {
    let d = v.data();
    d.try_into().map_err(|_| {
        SuperblockError::Variant(gvariant::Error::Malformed {
            what: "fixed-size value has the wrong size",
            ty: v.type_str().to_owned(),
            offset: v.offset(),
        })
    })
}

/// Raw fields of one part header before byte-order conversion.
struct RawPart<'a> {
    version: [u8; 4],
    checksum: Value<'a>,
    size: [u8; 8],
    usize: [u8; 8],
    objects: &'a [u8],
}

/// Largest size a real part or fallback field holds (1 PiB): a value above it in one
/// byte order is that order being wrong.
const PLAUSIBLE_MAX: u64 = 1 << 50;

/// Whether every host-order size reads as a plausible value in `order`.
fn plausible(parts: &[RawPart<'_>], fallbacks: &[[u8; 8]], order: ByteOrder) -> bool {
    let read = |raw: [u8; 8]| match order {
        ByteOrder::Little => u64::from_le_bytes(raw),
        ByteOrder::Big => u64::from_be_bytes(raw),
    };
    parts
        .iter()
        .flat_map(|p| [p.size, p.usize])
        .chain(fallbacks.iter().copied())
        .all(|raw| read(raw) <= PLAUSIBLE_MAX)
}

/// The byte order of a delta without `ostree.endianness`.
///
/// First ostree's heuristic as a little-endian host computes it (a part whose file is
/// more than 1.2× its content size, or an average above 4 GiB per object, means
/// byte-swapped). That rule misreads little-endian deltas with a small part that
/// compresses badly (the file is larger than its content): every size then reads as
/// exabytes and the delta "needs 16 EiB". So the guess is checked: when it makes some
/// size implausible (over 1 PiB) and the other order makes every size plausible, the
/// other order wins.
fn heuristic(parts: &[RawPart<'_>], fallbacks: &[[u8; 8]]) -> ByteOrder {
    let guess = ostree_heuristic(parts);
    let other = match guess {
        ByteOrder::Little => ByteOrder::Big,
        ByteOrder::Big => ByteOrder::Little,
    };
    if !plausible(parts, fallbacks, guess) && plausible(parts, fallbacks, other) {
        other
    } else {
        guess
    }
}

/// ostree's endianness heuristic as a little-endian host computes it.
fn ostree_heuristic(parts: &[RawPart<'_>]) -> ByteOrder {
    let mut total_size: u64 = 0;
    let mut total_objects: u64 = 0;
    for p in parts {
        let size = u64::from_le_bytes(p.size);
        let usize_ = u64::from_le_bytes(p.usize);
        let n = p
            .objects
            .len()
            .checked_div(super::OBJECT_ENTRY_LEN)
            .unwrap_or(0);
        total_objects = total_objects.wrapping_add(n as u64);
        total_size = total_size.wrapping_add(size);
        if size > usize_ {
            // ratio > 1.2, i.e. 5 * size > 6 * usize, computed without floating point
            // (and usize == 0 counts as an infinite ratio, as in C).
            let lhs = u128::from(size).saturating_mul(5);
            let rhs = u128::from(usize_).saturating_mul(6);
            if lhs > rhs {
                return ByteOrder::Big;
            }
        }
    }
    if total_objects > 0 && total_size.checked_div(total_objects).unwrap_or(0) > u64::from(u32::MAX)
    {
        return ByteOrder::Big;
    }
    ByteOrder::Little
}

impl<'a> SuperblockRef<'a> {
    /// Parses and checks an (unsigned) superblock: normal form, checksum lengths, part
    /// versions, object lists, fallback types, and the metadata dictionary.
    ///
    /// The view borrows `data`; it keeps one header per part and one entry per fallback,
    /// whose counts come from framing offsets: allocation is O(input length).
    pub fn from_bytes(data: &'a [u8]) -> Result<Self, SuperblockError> {
        let v = Value::from_bytes(data, SUPERBLOCK_TYPE)?;
        let [meta, ts, from, to, commit, recurse, parts, fallbacks] = v.tuple_fields()?;
        let metadata = MetadataRef::from_value(meta)?;
        let timestamp = ts.as_u64_be()?;
        let from_b = from.as_bytes()?;
        let from = if from_b.is_empty() {
            None
        } else {
            Some(checksum_field(&from, "from checksum")?)
        };
        let to = checksum_field(&to, "to checksum")?;

        let mut raw = Vec::with_capacity(parts.array_len()?.min(4096));
        for p in parts.array_iter()? {
            let [version, checksum, size, usize_, objects] = p?.tuple_fields()?;
            raw.push(RawPart {
                version: fixed(&version)?,
                checksum,
                size: fixed(&size)?,
                usize: fixed(&usize_)?,
                objects: objects.as_bytes()?,
            });
        }

        let mut raw_fallbacks = Vec::with_capacity(fallbacks.array_len()?.min(4096));
        for f in fallbacks.array_iter()? {
            let [_, _, size, usize_] = f?.tuple_fields()?;
            raw_fallbacks.push(fixed::<8>(&size)?);
            raw_fallbacks.push(fixed::<8>(&usize_)?);
        }

        let endianness = match metadata.get(DELTA_ENDIANNESS)? {
            Some(e) if e.type_str() == "y" => match e.as_u8()? {
                b'l' => Endianness::Little,
                b'B' => Endianness::Big,
                other => Endianness::Invalid(other),
            },
            Some(e) => {
                return Err(metadata::Error::WrongType {
                    key: DELTA_ENDIANNESS.to_owned(),
                    expected: "y",
                    actual: e.type_str().to_owned(),
                }
                .into());
            }
            None => Endianness::Heuristic(heuristic(&raw, &raw_fallbacks)),
        };

        let mut part_headers = Vec::with_capacity(raw.len());
        for (index, r) in raw.into_iter().enumerate() {
            let version = endianness.u32(r.version);
            if version > PART_VERSION {
                return Err(SuperblockError::PartVersion {
                    part: index,
                    version,
                });
            }
            part_headers.push(PartHeader {
                index,
                version,
                checksum: checksum_field(&r.checksum, "part checksum")?,
                size: endianness.u64(r.size),
                uncompressed_size: endianness.u64(r.usize),
                objects: DeltaObjects::new(r.objects).map_err(|source| {
                    SuperblockError::PartObjects {
                        part: index,
                        source,
                    }
                })?,
            });
        }

        let mut fb = Vec::with_capacity(fallbacks.array_len()?.min(4096));
        for (index, f) in fallbacks.array_iter()?.enumerate() {
            let [ty, csum, size, usize_] = f?.tuple_fields()?;
            let byte = ty.as_u8()?;
            if byte != ObjectType::File.as_u8() {
                return Err(SuperblockError::FallbackType { index, byte });
            }
            fb.push(Fallback {
                index,
                object_type: ObjectType::File,
                checksum: checksum_field(&csum, "fallback checksum")?,
                compressed_size: endianness.u64(fixed(&size)?),
                uncompressed_size: endianness.u64(fixed(&usize_)?),
            });
        }

        Ok(SuperblockRef {
            data,
            metadata,
            timestamp,
            from,
            to,
            commit: commit.data(),
            recurse: recurse.as_bytes()?,
            endianness,
            parts: part_headers,
            fallbacks: fb,
        })
    }

    /// The superblock bytes (hash these for the digest listed in the summary/index of an
    /// unsigned delta).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The metadata dictionary.
    pub fn metadata(&self) -> MetadataRef<'a> {
        self.metadata
    }

    /// Generation time, seconds since the epoch.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The from commit, `None` for a delta from scratch.
    pub fn from(&self) -> Option<Checksum> {
        self.from
    }

    /// The to commit.
    pub fn to(&self) -> Checksum {
        self.to
    }

    /// The delta's name (from, to).
    pub fn name(&self) -> DeltaName {
        DeltaName::new(self.from, self.to)
    }

    /// The serialized to-commit (its SHA-256 should equal [`SuperblockRef::to`]).
    pub fn commit_bytes(&self) -> &'a [u8] {
        self.commit
    }

    /// The to-commit, parsed.
    pub fn commit(&self) -> Result<CommitRef<'a>, SuperblockError> {
        Ok(CommitRef::from_bytes(self.commit)?)
    }

    /// The "recursive deltas" field: raw bytes (pairs of 32-byte checksums; unused).
    pub fn recursive_deltas(&self) -> &'a [u8] {
        self.recurse
    }

    /// The delta's byte order for host-order fields.
    pub fn endianness(&self) -> Endianness {
        self.endianness
    }

    /// The part headers, in part order.
    pub fn parts(&self) -> &[PartHeader<'a>] {
        &self.parts
    }

    /// The fallback objects.
    pub fn fallbacks(&self) -> &[Fallback] {
        &self.fallbacks
    }

    /// The part file of part `index` when the delta was generated with `--inline`: the
    /// value of metadata key `<dir>/<index>` (a `(yay)`, whose bytes are exactly a part
    /// file). `None` if the part is not inline.
    pub fn inline_part(&self, index: usize) -> Result<Option<&'a [u8]>, SuperblockError> {
        match self.metadata.get(&self.name().part_path(index))? {
            None => Ok(None),
            Some(v) if v.type_str() == "(yay)" => Ok(Some(v.data())),
            Some(v) => Err(SuperblockError::InlinePartType {
                part: index,
                actual: v.type_str().to_owned(),
            }),
        }
    }

    /// The to-commit's detached metadata (signatures), from metadata key
    /// `<dir>/commitmeta`.
    pub fn commitmeta(&self) -> Result<Option<MetadataRef<'a>>, SuperblockError> {
        Ok(self.metadata.get_dict(&self.name().commitmeta_key())?)
    }

    /// Sum of the part file sizes.
    pub fn total_part_size(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.size))
    }

    /// Sum of the parts' uncompressed sizes.
    pub fn total_part_uncompressed_size(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.uncompressed_size))
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::type_complexity
)]
mod tests {
    use super::*;
    use crate::gvariant::{OwnedValue, RawValue};
    use crate::metadata::{Metadata, Variant};

    fn commit_bytes() -> Vec<u8> {
        OwnedValue::Tuple(vec![
            OwnedValue::array("{sv}", vec![]),
            OwnedValue::bytes(vec![]),
            OwnedValue::array("(say)", vec![]),
            OwnedValue::str("s"),
            OwnedValue::str(""),
            OwnedValue::u64_be(1),
            OwnedValue::bytes(vec![1; 32]),
            OwnedValue::bytes(vec![2; 32]),
        ])
        .to_bytes()
        .unwrap()
    }

    fn superblock(
        meta: &Metadata,
        order: ByteOrder,
        sizes: (u64, u64),
        fallback_type: u8,
    ) -> Vec<u8> {
        let (u32v, u64v): (fn(u32) -> OwnedValue, fn(u64) -> OwnedValue) = match order {
            ByteOrder::Little => (OwnedValue::U32, OwnedValue::U64),
            ByteOrder::Big => (OwnedValue::u32_be, OwnedValue::u64_be),
        };
        let mut objs = vec![1u8];
        objs.extend_from_slice(&[7; 32]);
        OwnedValue::Tuple(vec![
            meta.to_owned_value(),
            OwnedValue::u64_be(1_700_000_000),
            OwnedValue::bytes(vec![]),
            OwnedValue::bytes(vec![9; 32]),
            OwnedValue::Raw(RawValue::new("(a{sv}aya(say)sstayay)", commit_bytes()).unwrap()),
            OwnedValue::bytes(vec![]),
            OwnedValue::array(
                "(uayttay)",
                vec![OwnedValue::Tuple(vec![
                    u32v(0),
                    OwnedValue::bytes(vec![3; 32]),
                    u64v(sizes.0),
                    u64v(sizes.1),
                    OwnedValue::bytes(objs),
                ])],
            ),
            OwnedValue::array(
                "(yaytt)",
                vec![OwnedValue::Tuple(vec![
                    OwnedValue::Byte(fallback_type),
                    OwnedValue::bytes(vec![4; 32]),
                    u64v(5000),
                    u64v(9000),
                ])],
            ),
        ])
        .to_bytes()
        .unwrap()
    }

    #[test]
    fn both_byte_orders_and_heuristic() {
        for (letter, order) in [(b'l', ByteOrder::Little), (b'B', ByteOrder::Big)] {
            let mut m = Metadata::new();
            m.insert(DELTA_ENDIANNESS, Variant::byte(letter)).unwrap();
            let b = superblock(&m, order, (313, 1000), 1);
            let sb = SuperblockRef::from_bytes(&b).unwrap();
            assert_eq!(sb.endianness().byte_order(), order);
            assert_eq!(sb.parts()[0].size, 313);
            assert_eq!(sb.parts()[0].uncompressed_size, 1000);
            assert_eq!(sb.fallbacks()[0].compressed_size, 5000);
            assert_eq!(sb.fallbacks()[0].uncompressed_size, 9000);
            assert_eq!(sb.timestamp(), 1_700_000_000);
            assert_eq!(sb.from(), None);
            assert_eq!(sb.to(), Checksum([9; 32]));
            assert_eq!(sb.parts()[0].objects.len(), 1);
            assert!(sb.commit().is_ok());
        }
        // Without the key: a big-endian delta is detected (size/usize ratio), a
        // little-endian one is "invalid" (no swap) and reads as little-endian.
        let empty = Metadata::new();
        let b = superblock(&empty, ByteOrder::Big, (313, 1000), 1);
        let sb = SuperblockRef::from_bytes(&b).unwrap();
        assert_eq!(sb.endianness(), Endianness::Heuristic(ByteOrder::Big));
        assert_eq!(sb.endianness().ostree_description(), "big (heuristic)");
        assert_eq!(sb.parts()[0].size, 313);
        let b = superblock(&empty, ByteOrder::Little, (313, 1000), 1);
        let sb = SuperblockRef::from_bytes(&b).unwrap();
        assert_eq!(sb.endianness(), Endianness::Heuristic(ByteOrder::Little));
        assert_eq!(sb.endianness().ostree_description(), "invalid");
        assert_eq!(sb.parts()[0].size, 313);
    }

    #[test]
    fn unmarked_little_endian_delta_with_a_badly_compressing_part_is_little() {
        // ostree's rule says "swapped" (file 313 bytes > 1.2 × content 100), which would
        // read the sizes as exabytes; the plausibility check keeps little-endian.
        let empty = Metadata::new();
        let b = superblock(&empty, ByteOrder::Little, (313, 100), 1);
        let sb = SuperblockRef::from_bytes(&b).unwrap();
        assert_eq!(sb.endianness(), Endianness::Heuristic(ByteOrder::Little));
        assert_eq!(sb.parts()[0].uncompressed_size, 100);
        assert_eq!(sb.total_part_uncompressed_size(), 100);
        let b = superblock(&empty, ByteOrder::Big, (313, 100), 1);
        let sb = SuperblockRef::from_bytes(&b).unwrap();
        assert_eq!(sb.endianness(), Endianness::Heuristic(ByteOrder::Big));
        assert_eq!(sb.parts()[0].uncompressed_size, 100);
    }

    #[test]
    fn rejects_metadata_fallbacks_and_truncation() {
        let mut m = Metadata::new();
        m.insert(DELTA_ENDIANNESS, Variant::byte(b'l')).unwrap();
        let b = superblock(&m, ByteOrder::Little, (1, 1), 2);
        assert!(matches!(
            SuperblockRef::from_bytes(&b),
            Err(SuperblockError::FallbackType { byte: 2, .. })
        ));
        let b = superblock(&m, ByteOrder::Little, (1, 1), 1);
        for n in 0..b.len() {
            assert!(SuperblockRef::from_bytes(&b[..n]).is_err(), "prefix {n}");
        }
    }
}
