//! Shared exercisers for the cfsync-formats fuzz targets.
//!
//! Each `exercise_*` function takes an already parsed view and calls every accessor on it
//! under [`black_box`], checking the invariants that hold for any input the parser
//! accepted (round-trips through the owned types and serializers, lookups that must find
//! what iteration found). Errors from accessors are fine; panics are bugs, and so is an
//! invariant violation (reported with `assert!`).
//!
//! Targets nest: a superblock embeds a commit and metadata, a summary embeds metadata and
//! a delta list, so one exerciser per view keeps every target exhaustive.

use std::hint::black_box;
use std::io::Read;

use cfsync_formats::checksum::Checksum;
use cfsync_formats::commit::{Commit, CommitRef};
use cfsync_formats::delta::DeltaObjects;
use cfsync_formats::delta::index::DeltaList;
use cfsync_formats::delta::ops::{Op, OpCode, OpContext, Ops, WriteSource};
use cfsync_formats::delta::part::{self, PartPayloadReader, PartPayloadRef};
use cfsync_formats::delta::superblock::SuperblockRef;
use cfsync_formats::gvariant::{OwnedValue, Value};
use cfsync_formats::metadata::{self, Metadata, MetadataRef};

/// Cap on decompressed part payloads in the fuzz targets (the library caps at whatever
/// the caller passes; real callers pass [`cfsync_formats::delta::superblock::PartHeader::payload_cap`]).
pub const PAYLOAD_CAP: u64 = 4 << 20;

/// Every metadata key cfsync-formats names, plus a few that are not metadata keys.
pub const KEYS: &[&str] = &[
    metadata::VERSION,
    metadata::REF_BINDING,
    metadata::COLLECTION_BINDING,
    metadata::ENDOFLIFE,
    metadata::ENDOFLIFE_REBASE,
    metadata::SOURCE_TITLE,
    metadata::ARCHITECTURE,
    metadata::SIZES,
    metadata::COMPOSEFS_DIGEST_V0,
    metadata::BOOTABLE,
    metadata::LINUX,
    metadata::DEPLOY_COLLECTION_ID,
    metadata::GPGSIGS,
    metadata::SIGN_ED25519,
    metadata::SIGN_SPKI,
    metadata::COMMIT_TIMESTAMP,
    metadata::COMMIT_VERSION,
    metadata::STATIC_DELTAS,
    metadata::SUMMARY_INDEXED_DELTAS,
    metadata::SUMMARY_MODE,
    metadata::SUMMARY_TOMBSTONE_COMMITS,
    metadata::SUMMARY_LAST_MODIFIED,
    metadata::SUMMARY_EXPIRES,
    metadata::SUMMARY_COLLECTION_ID,
    metadata::SUMMARY_COLLECTION_MAP,
    metadata::DELTA_ENDIANNESS,
    "commit",
    "",
    "\0",
];

/// Deepest nesting of `a{sv}` inside `a{sv}` the exerciser follows.
const MAX_DICT_DEPTH: usize = 4;

/// Calls every getter of `m` for every known key and every stored key, and checks that
/// `to_owned` → `to_bytes` reproduces the (normal-form) bytes exactly.
pub fn exercise_metadata(m: MetadataRef<'_>) {
    exercise_metadata_depth(m, 0);
}

fn exercise_metadata_depth(m: MetadataRef<'_>, depth: usize) {
    black_box(m.len());
    black_box(m.is_empty());
    black_box(m.data());
    black_box(m.as_value());
    let mut n = 0usize;
    for e in m.iter() {
        n += 1;
        let Ok((k, v)) = e else { continue };
        exercise_value(v);
        // Lookups are linear: check the first entries only, so the exerciser stays
        // linear too (the fuzzer would otherwise spend its time here).
        if n > 64 {
            continue;
        }
        // What iteration finds, lookup must find (a checked dictionary has unique keys).
        let got = m.get(k).expect("get of an iterated key");
        let got = got.expect("iterated key is found by get");
        assert_eq!(got.data(), v.data(), "get({k:?}) returns another value");
        assert_eq!(got.type_str(), v.type_str());
        exercise_getters(m, k, depth);
    }
    assert_eq!(n, m.len(), "iter and len disagree");
    for k in KEYS {
        exercise_getters(m, k, depth);
    }
    if let Ok(owned) = m.to_owned() {
        let bytes = owned.to_bytes().expect("serialize parsed metadata");
        assert_eq!(bytes, m.data(), "metadata round trip changed the bytes");
        let again = Metadata::from_bytes(&bytes).expect("re-parse serialized metadata");
        assert_eq!(again, owned, "metadata round trip changed the value");
        black_box(owned.len());
        black_box(owned.is_empty());
        for (k, v) in owned.iter() {
            black_box(owned.get(k));
            black_box(v.type_str());
            black_box(v.bytes_data());
            black_box(v.as_value().expect("owned metadata value reads back"));
        }
    }
}

fn exercise_getters(m: MetadataRef<'_>, k: &str, depth: usize) {
    black_box(m.get(k).ok());
    black_box(m.get_str(k).ok());
    black_box(m.get_u64_be(k).ok());
    black_box(m.get_u64_le(k).ok());
    black_box(m.get_bool(k).ok());
    black_box(m.get_u8(k).ok());
    black_box(m.get_bytes(k).ok());
    black_box(m.get_bytes_array(k).ok());
    black_box(m.get_strv(k).ok());
    if let Ok(Some(d)) = m.get_dict(k)
        && depth < MAX_DICT_DEPTH
    {
        exercise_metadata_depth(d, depth + 1);
    }
}

/// Deepest nesting [`exercise_value`] follows (the parser allows 64; walking is linear
/// per level, so this only bounds the work per input).
const MAX_WALK_DEPTH: usize = 16;

/// Walks a value with the accessor its type calls for, and returns its structural copy
/// (leaves rebuilt from the accessors, not copied as raw bytes), or `None` past
/// [`MAX_WALK_DEPTH`]. Every accessor of the wrong type must return an error, not panic.
pub fn exercise_value(v: Value<'_>) -> Option<OwnedValue> {
    walk(v, 0, &mut 64)
}

fn walk(v: Value<'_>, depth: usize, budget: &mut u32) -> Option<OwnedValue> {
    black_box(v.data());
    black_box(v.offset());
    // Accessors of other types fail cleanly. Each failure allocates an error, so only
    // the first nodes of each input get the whole battery (it is the same code for every
    // node of a type; without the budget it dominated the run time).
    if *budget > 0 {
        *budget -= 1;
        black_box(v.to_raw());
        black_box(v.as_bool().ok());
        black_box(v.as_u8().ok());
        black_box(v.as_u16_le().ok());
        black_box(v.as_i16_le().ok());
        black_box(v.as_u32_le().ok());
        black_box(v.as_u32_be().ok());
        black_box(v.as_i32_le().ok());
        black_box(v.as_u64_le().ok());
        black_box(v.as_u64_be().ok());
        black_box(v.as_i64_le().ok());
        black_box(v.as_f64_le().ok());
        black_box(v.as_str().ok());
        black_box(v.as_bytes().ok());
        black_box(v.as_bytestring().ok());
        black_box(v.array_len().ok());
        black_box(v.lookup("").ok());
        black_box(v.expect_type("a{sv}").ok());
    }
    if depth > MAX_WALK_DEPTH {
        return None;
    }
    let ty = v.type_str();
    let first = ty.as_bytes().first().copied()?;
    let out = match first {
        b'b' => OwnedValue::Bool(v.as_bool().expect("b")),
        b'y' => OwnedValue::Byte(v.as_u8().expect("y")),
        b'n' => OwnedValue::I16(v.as_i16_le().expect("n")),
        b'q' => OwnedValue::U16(v.as_u16_le().expect("q")),
        b'i' => OwnedValue::I32(v.as_i32_le().expect("i")),
        b'u' => OwnedValue::U32(v.as_u32_le().expect("u")),
        b'x' => OwnedValue::I64(v.as_i64_le().expect("x")),
        b't' => OwnedValue::U64(v.as_u64_le().expect("t")),
        b'd' => OwnedValue::F64(v.as_f64_le().expect("d")),
        b's' => OwnedValue::Str(v.as_str().expect("s").to_owned()),
        b'o' => OwnedValue::ObjectPath(v.as_str().expect("o").to_owned()),
        b'g' => OwnedValue::Signature(v.as_str().expect("g").to_owned()),
        // 'h' (handle) has no owned counterpart; keep it raw.
        b'h' => v.to_owned_value(),
        b'v' => OwnedValue::Variant(Box::new(walk(
            v.as_variant().expect("v"),
            depth + 1,
            budget,
        )?)),
        b'm' => {
            let inner = v.as_maybe().expect("m");
            let value = match inner {
                None => None,
                Some(x) => Some(Box::new(walk(x, depth + 1, budget)?)),
            };
            OwnedValue::Maybe {
                elem: ty.get(1..)?.to_owned(),
                value,
            }
        }
        b'a' => {
            let n = v.array_len().expect("array_len of an array");
            let mut items = Vec::new();
            for item in v.array_iter().expect("array_iter of an array") {
                let item = item.ok()?;
                items.push(walk(item, depth + 1, budget)?);
            }
            assert_eq!(items.len(), n, "array_len and array_iter disagree");
            let elem = ty.get(1..)?.to_owned();
            if elem == "y" {
                OwnedValue::Bytes(v.as_bytes().expect("ay").to_vec())
            } else {
                OwnedValue::Array { elem, items }
            }
        }
        b'(' | b'{' => {
            let mut items = Vec::new();
            for f in v.tuple_iter().expect("tuple_iter of a tuple") {
                items.push(walk(f.ok()?, depth + 1, budget)?);
            }
            if first == b'{' {
                let mut it = items.into_iter();
                let (k, val) = (it.next()?, it.next()?);
                OwnedValue::DictEntry(Box::new(k), Box::new(val))
            } else {
                OwnedValue::Tuple(items)
            }
        }
        _ => return None,
    };
    Some(out)
}

/// Parses `data` as `ty`; if that works, walks it, rebuilds it structurally and checks the
/// writer reproduces the bytes and type exactly.
pub fn exercise_typed_bytes(data: &[u8], ty: &str) {
    let Ok(v) = Value::from_bytes(data, ty) else {
        return;
    };
    assert_eq!(v.type_str(), ty);
    black_box(format!("{v:?}").len());
    if let Some(owned) = exercise_value(v) {
        if !ty.contains('h') {
            assert_eq!(owned.type_string(), ty, "rebuilt value has another type");
        }
        let bytes = owned.to_bytes().expect("serialize a rebuilt value");
        assert_eq!(bytes, data, "gvariant {ty} round trip changed the bytes");
    }
}

/// Every accessor of a parsed commit, and the owned round trip.
pub fn exercise_commit(c: CommitRef<'_>) {
    black_box(c.data());
    black_box(c.checksum());
    black_box(c.parent());
    for r in c.related() {
        black_box(r.ok());
    }
    black_box(c.subject());
    black_box(c.body());
    black_box(c.timestamp());
    black_box(c.root_contents());
    black_box(c.root_metadata());
    black_box(c.content_checksum());
    black_box(c.version().ok());
    black_box(c.ref_binding().ok());
    black_box(c.collection_binding().ok());
    black_box(c.composefs_digest().ok());
    black_box(c.endoflife().ok());
    black_box(c.endoflife_rebase().ok());
    exercise_metadata(c.metadata());
    let owned: Commit = c.to_owned().expect("to_owned of a parsed commit");
    let bytes = owned.to_bytes().expect("serialize a parsed commit");
    assert_eq!(bytes, c.data(), "commit round trip changed the bytes");
    assert_eq!(owned.checksum().expect("checksum"), c.checksum());
    let again = CommitRef::from_bytes(&bytes).expect("re-parse a serialized commit");
    assert_eq!(again.to_owned().expect("to_owned"), owned);
}

/// Every accessor of a delta list.
pub fn exercise_delta_list(d: &DeltaList) {
    black_box(d.len());
    black_box(d.is_empty());
    // get and ending_at are linear: only the first entries use them.
    for e in d.entries().iter().take(64) {
        let got = d.get(&e.name);
        assert!(got.is_some(), "listed delta not found by get");
        black_box(d.ending_at(&e.name.to).count());
        exercise_delta_name(&e.name);
    }
    black_box(d.get(&cfsync_formats::delta::DeltaName::new(
        None,
        Checksum([0; 32]),
    )));
}

/// Every path helper of a delta name, and the string round trips.
pub fn exercise_delta_name(n: &cfsync_formats::delta::DeltaName) {
    black_box(n.is_from_scratch());
    let dir = n.dir();
    black_box(n.superblock_path());
    black_box(n.part_path(0));
    black_box(n.part_path(usize::MAX));
    black_box(n.commitmeta_key());
    black_box(n.index_path());
    let parsed = cfsync_formats::delta::DeltaName::from_dir(&dir).expect("from_dir(dir())");
    assert_eq!(&parsed, n, "from_dir(dir()) changed the name");
    let s = n.to_string();
    let parsed: cfsync_formats::delta::DeltaName = s.parse().expect("parse(to_string())");
    assert_eq!(&parsed, n, "parse(to_string()) changed the name");
}

/// Every accessor of a superblock; inline parts are decompressed and their ops decoded.
pub fn exercise_superblock(s: &SuperblockRef<'_>) {
    black_box(s.data());
    black_box(s.timestamp());
    black_box(s.from());
    black_box(s.to());
    let name = s.name();
    exercise_delta_name(&name);
    black_box(s.recursive_deltas());
    let e = s.endianness();
    black_box(e.byte_order());
    black_box(e.ostree_description());
    black_box(s.fallbacks());
    black_box(s.total_part_size());
    black_box(s.total_part_uncompressed_size());
    exercise_metadata(s.metadata());
    if let Ok(c) = s.commit() {
        exercise_commit(c);
    }
    black_box(s.commit_bytes());
    if let Ok(Some(m)) = s.commitmeta() {
        exercise_metadata(m);
    }
    for p in s.parts() {
        black_box(p.payload_cap());
        black_box(p.objects.len());
        for o in p.objects.iter() {
            black_box(o);
        }
        if let Ok(Some(bytes)) = s.inline_part(p.index) {
            exercise_part_file(bytes, p.objects, p.payload_cap().min(PAYLOAD_CAP));
        }
    }
    black_box(s.inline_part(usize::MAX).ok());
}

/// A part file: split, bounded decompression (in memory and streaming, which must
/// agree), the payload, and its op stream against `objects`.
pub fn exercise_part_file(part_file: &[u8], objects: DeltaObjects<'_>, cap: u64) {
    black_box(part::split(part_file).ok());
    let whole = part::decompress(part_file, cap);
    if let Ok(p) = &whole {
        assert!(p.len() as u64 <= cap, "decompress exceeded its cap");
        // The cap is exact: the payload's own length is enough, one byte less is not.
        let len = p.len() as u64;
        let exact = part::decompress(part_file, len).expect("decompress at cap = payload length");
        assert_eq!(&exact[..], &p[..]);
        if len > 0 {
            assert!(
                part::decompress(part_file, len - 1).is_err(),
                "decompress produced more than its cap"
            );
            let mut v = Vec::new();
            assert!(
                PartPayloadReader::new(part_file, len - 1)
                    .read_to_end(&mut v)
                    .is_err(),
                "reader produced more than its cap"
            );
        }
    }
    // The streaming reader must agree with the in-memory decompressor.
    let mut r = PartPayloadReader::new(part_file, cap);
    let mut streamed = Vec::new();
    let mut buf = [0u8; 4096];
    let streamed_ok = loop {
        match r.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => {
                streamed.extend_from_slice(&buf[..n]);
                assert!(streamed.len() as u64 <= cap, "reader exceeded its cap");
            }
            Err(e) => {
                black_box(part::PartError::from_io(&e));
                break false;
            }
        }
    };
    match &whole {
        Ok(p) => {
            assert!(streamed_ok, "reader failed where decompress succeeded");
            assert_eq!(&streamed[..], &p[..], "reader and decompress disagree");
        }
        Err(_) => assert!(!streamed_ok, "reader succeeded where decompress failed"),
    }
    black_box(r.into_inner());
    // Chunking the input differently must not change the outcome.
    for step in [1, 7] {
        let (t, ok) = read_all(
            PartPayloadReader::new(Trickle::new(part_file, step), cap),
            3,
        );
        assert_eq!(
            ok, streamed_ok,
            "reader outcome depends on input chunking ({step})"
        );
        if ok {
            assert_eq!(
                t, streamed,
                "reader output depends on input chunking ({step})"
            );
        }
    }
    if let Ok(payload) = whole {
        exercise_payload(&payload, objects);
    }
}

/// Parses a decompressed payload and decodes its ops against `objects`.
pub fn exercise_payload(payload: &[u8], objects: DeltaObjects<'_>) {
    let parsed = PartPayloadRef::from_bytes(payload);
    // payload_ranges + from_tables (the out-of-memory route) must agree with from_bytes.
    let tail = &payload[payload.len().saturating_sub(part::PAYLOAD_TAIL)..];
    let ranges = part::payload_ranges(payload.len() as u64, tail);
    if let Ok(rs) = &ranges {
        let get = |r: &std::ops::Range<u64>| payload.get(r.start as usize..r.end as usize);
        let fields: Vec<_> = rs.iter().map(get).collect();
        assert!(
            fields.iter().all(Option::is_some),
            "payload_ranges out of the payload"
        );
        let (m, x, b, o) = (
            fields[0].unwrap(),
            fields[1].unwrap(),
            fields[2].unwrap(),
            fields[3].unwrap(),
        );
        let t = PartPayloadRef::from_tables(m, x, o);
        if let Ok(p) = &parsed {
            assert_eq!(b, p.blob(), "payload_ranges: blob range differs");
            assert_eq!(o, p.ops_bytes(), "payload_ranges: ops range differs");
            let t = t
                .as_ref()
                .expect("from_tables rejects a valid payload's tables");
            assert_eq!(t.n_modes(), p.n_modes());
            assert_eq!(t.n_xattrs(), p.n_xattrs());
            assert!(t.blob().is_empty());
        }
        black_box(t.ok());
    }
    if parsed.is_ok() {
        assert!(ranges.is_ok(), "payload_ranges rejects a valid payload");
    }
    let Ok(p) = parsed else {
        return;
    };
    let n_modes = p.n_modes();
    for i in 0..n_modes.min(64) {
        assert!(p.mode(i).is_some(), "mode({i}) < n_modes missing");
    }
    assert!(p.mode(n_modes).is_none());
    black_box(p.mode(usize::MAX));
    let n_x = p.n_xattrs();
    for i in 0..n_x.min(64) {
        let x = p.xattrs(i).expect("xattrs(i) < n_xattrs");
        black_box(x.is_empty());
        black_box(x.as_value());
        black_box(x.entries().ok());
    }
    assert!(p.xattrs(n_x).is_none());
    black_box(p.blob());
    black_box(p.ops_bytes());
    let ctx = p.op_context(objects);
    exercise_ops(p.ops_bytes(), ctx);
    let counts = p.op_counts(objects);
    if let Ok(c) = counts {
        black_box(c.total());
    }
}

/// Decodes an op stream, checking what the iterator promises about each op.
pub fn exercise_ops(ops: &[u8], ctx: OpContext<'_>) {
    let mut it = Ops::new(ops, ctx);
    let mut counts = [0u64; 7];
    let mut failed = false;
    let mut n = 0usize;
    let mut last_pos = it.position();
    // What the iterator promises: objects are created in list order, each exactly once,
    // and an opened object gets exactly its declared size before it is closed.
    let mut next_object = 0usize;
    let mut open: Option<(usize, u64, u64)> = None; // (index, declared, written)
    while let Some(op) = it.next() {
        n += 1;
        let pos = it.position();
        assert!(
            pos >= last_pos && pos <= ops.len(),
            "position went backwards or past the end"
        );
        last_pos = pos;
        match op {
            Err(e) => {
                black_box(e.to_string());
                failed = true;
            }
            Ok(op) => {
                let code = op.opcode();
                assert_eq!(OpCode::from_byte(code.to_byte()), Some(code));
                black_box(code.show_name());
                counts[code.index()] += 1;
                match op {
                    Op::SpliceFile { mode, xattrs, .. } | Op::Open { mode, xattrs, .. } => {
                        assert!(mode < ctx.n_modes, "mode index not checked");
                        assert!(xattrs < ctx.n_xattrs, "xattr index not checked");
                    }
                    _ => {}
                }
                match op {
                    Op::SpliceMetadata { object, .. } | Op::SpliceFile { object, .. } => {
                        assert!(open.is_none(), "splice while an object is open");
                        assert_eq!(object.index, next_object, "objects out of order");
                        assert_eq!(Some(object), ctx.objects.get(next_object));
                        assert_eq!(
                            object.object_type.is_meta(),
                            matches!(op, Op::SpliceMetadata { .. }),
                            "splice kind does not match the object type"
                        );
                        next_object += 1;
                    }
                    Op::Open { object, size, .. } => {
                        assert!(open.is_none(), "open while an object is open");
                        assert_eq!(object.index, next_object, "objects out of order");
                        assert_eq!(Some(object), ctx.objects.get(next_object));
                        open = Some((object.index, size, 0));
                    }
                    Op::Write { size, source } => {
                        if let WriteSource::Blob(b) = source {
                            assert_eq!(b.len() as u64, size, "blob slice has the wrong size");
                        }
                        let o = open.as_mut().expect("write without an open object");
                        o.2 += size;
                        assert!(o.2 <= o.1, "writes past the declared size");
                    }
                    Op::Bspatch { size, .. } => {
                        let o = open.as_mut().expect("bspatch without an open object");
                        assert_eq!(o.2, 0, "bspatch after writes");
                        assert_eq!(size, o.1);
                        o.2 = size;
                    }
                    Op::Close { object } => {
                        let (index, declared, written) = open.take().expect("close without open");
                        assert_eq!(object.index, index);
                        assert_eq!(written, declared, "closed before the declared size");
                        next_object += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(n <= ops.len() + 1, "more ops than bytes");
    if !failed {
        assert!(open.is_none(), "stream ended with an open object");
        assert_eq!(
            next_object,
            ctx.objects.len(),
            "stream ended before every object"
        );
    }
    // Fused after the end or the first error.
    assert!(it.next().is_none());
    let counted = cfsync_formats::delta::ops::count(ops, ctx);
    match counted {
        Ok(c) => {
            assert!(!failed, "count succeeded where the iterator failed");
            assert_eq!(c.0, counts, "count disagrees with the iterator");
            black_box(c.total());
            for code in OpCode::ALL {
                black_box(c.get(code));
            }
            let mut twice = c;
            twice.add(&c);
            for code in OpCode::ALL {
                assert_eq!(twice.get(code), c.get(code).saturating_mul(2));
            }
        }
        Err(_) => assert!(failed, "count failed where the iterator succeeded"),
    }
}

/// A reader that hands out at most `step` bytes per `read` (and sometimes
/// `ErrorKind::Interrupted`), to check that streaming decoders do not depend on how
/// their input is chunked.
#[derive(Debug)]
pub struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    calls: usize,
}

impl<'a> Trickle<'a> {
    /// Reads `data` `step` bytes at a time.
    pub fn new(data: &'a [u8], step: usize) -> Self {
        Trickle {
            data,
            step: step.max(1),
            calls: 0,
        }
    }
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.calls += 1;
        if self.calls % 5 == 0 {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = self.step.min(buf.len()).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        buf[..n].copy_from_slice(head);
        self.data = rest;
        Ok(n)
    }
}

/// Reads `r` to the end in `chunk`-byte reads, retrying `Interrupted`; returns the bytes
/// and whether it ended without an error.
pub fn read_all(mut r: impl Read, chunk: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk.max(1)];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return (out, false),
        }
    }
}

/// Splits `data` at a little-endian u16 length prefix: (`len` bytes, rest). Short input
/// gives empty slices.
pub fn split_prefixed(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return (&[], data);
    };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    rest.split_at(len)
}

pub mod part_dict;
pub mod summary_write;
pub mod superblock_write;
