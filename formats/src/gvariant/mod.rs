//! A strict reader and a normal-form writer for serialized GVariant data.
//!
//! Every OSTree metadata format (commit, dirtree, dirmeta, file headers, summary, summary
//! index, delta superblocks and parts) is a GVariant in *normal form*. GLib's own reader
//! turns malformed children into default values; this module instead rejects anything
//! that is not exactly the normal form of a value of the requested type: bad or
//! non-monotonic frame offsets, a wider offset width than the container needs, trailing
//! or missing bytes, nonzero padding, fixed-size values of the wrong size, booleans other
//! than 0/1, strings without their NUL, with an interior NUL or with invalid UTF-8, and
//! variants whose embedded type string is not one complete definite type.
//!
//! The rules mirror GLib's `glib/gvariant-serialiser.c` (`gvs_calculate_total_size`,
//! `gvs_*_is_normal`), which libostree calls through `g_variant_is_normal_form`
//! (`src/libostree/ostree-core.c`, `validate_variant`). Framing offsets are
//! little-endian; integer *values* are returned as stored, and OSTree's big-endian fields
//! are read with the `_be` accessors.
//!
//! # Reading
//!
//! [`Value::from_bytes`] checks the whole buffer once (linear time, bounded nesting
//! depth [`MAX_DEPTH`]) and returns a borrowed [`Value`]: the bytes plus the type string.
//! Every `Value` handed out by this module is therefore known to be in normal form;
//! accessors still check the type they are asked for and return [`Error::WrongType`]
//! on a mismatch instead of panicking.
//!
//! ```
//! use cfsync_formats::gvariant::Value;
//! // ("hi", 7u32) serialized by GLib: "hi\0", one padding byte, u32 7, framing offset 3.
//! let bytes = [b'h', b'i', 0, 0, 7, 0, 0, 0, 3];
//! let v = Value::from_bytes(&bytes, "(su)")?;
//! let [s, n] = v.tuple_fields()?;
//! assert_eq!(s.as_str()?, "hi");
//! assert_eq!(n.as_u32_le()?, 7);
//! # Ok::<(), cfsync_formats::gvariant::Error>(())
//! ```
//!
//! Containers: [`Value::tuple_fields`] / [`Value::tuple_iter`] for `(...)` and `{..}`,
//! [`Value::array_iter`] / [`Value::array_len`] for `a*`, [`Value::as_maybe`] for `m*`,
//! [`Value::as_variant`] for `v`, [`Value::lookup`] for arrays of string-keyed dict
//! entries. Leaves: [`Value::as_str`], [`Value::as_bytes`] (`ay`), `as_u32_le`,
//! `as_u32_be`, `as_u64_le`, `as_u64_be` and friends.
//!
//! # Writing
//!
//! [`OwnedValue`] is a small value tree (the "builder"): `to_bytes()` writes it in normal
//! form, byte-identical to `g_variant_get_data` of the same value built with GLib, and
//! re-reads the result with the strict reader before returning it. Already-serialized
//! values can be embedded with [`OwnedValue::Raw`] ([`RawValue`], checked on creation).
//!
//! # Layout
//!
//! - `error.rs`: the [`Error`] type of reader and writer.
//! - `types.rs`: type strings (validity, alignment, fixed size, tuple members).
//! - `framing.rs`: framing offsets and the framing of arrays, tuples, strings, variants.
//! - `validate.rs`: the one-pass normal-form check behind [`Value::from_bytes`].
//! - `value.rs`: the borrowed [`Value`], its accessors and iterators, and [`RawValue`].
//! - `writer.rs`: [`OwnedValue`], the normal-form writer.

mod error;
mod framing;
mod types;
mod validate;
mod value;
mod writer;

pub use error::Error;
pub(crate) use framing::{offset_size, read_offset};
pub use types::{alignment, fixed_size, is_valid_type};
pub use value::{ArrayIter, RawValue, TupleIter, Value};
pub use writer::OwnedValue;

/// Deepest container nesting accepted (GLib allows 128; OSTree formats need about 6).
pub const MAX_DEPTH: usize = 64;

/// Longest type string accepted, for caller-provided types and those inside a `v`.
pub const MAX_TYPE_LEN: usize = 1024;

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]
mod tests {
    use super::*;

    fn ok(data: &[u8], ty: &'static str) -> Value<'static> {
        let d: &'static [u8] = Box::leak(data.to_vec().into_boxed_slice());
        Value::from_bytes(d, ty).unwrap_or_else(|e| panic!("{ty} {data:?}: {e}"))
    }

    fn bad(data: &[u8], ty: &str) {
        assert!(
            Value::from_bytes(data, ty).is_err(),
            "{ty} {data:?} should be rejected"
        );
    }

    #[test]
    fn type_strings() {
        for t in [
            "s",
            "ay",
            "a{sv}",
            "(a(s(taya{sv}))a{sv})",
            "()",
            "(a{sv}aya(say)sstayay)",
            "mv",
            "maay",
        ] {
            assert!(is_valid_type(t), "{t}");
        }
        for t in [
            "", "a", "(", "(s", "{vs}", "{s}", "{sss}", "r", "*", "?", "ss", "(s))", "z",
        ] {
            assert!(!is_valid_type(t), "{t}");
        }
        assert!(!is_valid_type(&"a".repeat(MAX_DEPTH + 2).to_string()));
        assert_eq!(fixed_size("(yt)"), Some(16));
        assert_eq!(fixed_size("(ty)"), Some(16));
        assert_eq!(fixed_size("()"), Some(1));
        assert_eq!(fixed_size("(uuu)"), Some(12));
        assert_eq!(fixed_size("(ayu)"), None);
        assert_eq!(alignment("(yt)"), Some(8));
        assert_eq!(alignment("as"), Some(1));
    }

    #[test]
    fn strings() {
        assert_eq!(ok(b"hi\0", "s").as_str().unwrap(), "hi");
        assert_eq!(ok(b"\0", "s").as_str().unwrap(), "");
        bad(b"hi", "s");
        bad(b"", "s");
        bad(b"h\0i\0", "s");
        bad(b"\xff\0", "s");
        ok(b"/a/b_1\0", "o");
        bad(b"/a/\0", "o");
        bad(b"a\0", "o");
        ok(b"a{sv}s\0", "g");
        bad(b"a{\0", "g");
    }

    #[test]
    fn fixed_values() {
        assert!(ok(&[1], "b").as_bool().unwrap());
        bad(&[2], "b");
        bad(&[1, 0], "u");
        bad(&[], "u");
        assert_eq!(ok(&[0, 0, 0, 5], "u").as_u32_be().unwrap(), 5);
        assert_eq!(ok(&[5, 0, 0, 0], "u").as_u32_le().unwrap(), 5);
        // (yt): y, 7 padding bytes, t
        let mut yt = vec![1u8, 0, 0, 0, 0, 0, 0, 0];
        yt.extend_from_slice(&9u64.to_le_bytes());
        let [y, t] = ok(&yt, "(yt)").tuple_fields().unwrap();
        assert_eq!(y.as_u8().unwrap(), 1);
        assert_eq!(t.as_u64_le().unwrap(), 9);
        let mut nz = yt.clone();
        nz[3] = 1;
        bad(&nz, "(yt)");
        // (ty): trailing padding must be zero
        let mut ty = 9u64.to_le_bytes().to_vec();
        ty.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        ok(&ty, "(ty)");
        let mut ty2 = ty.clone();
        ty2[15] = 7;
        bad(&ty2, "(ty)");
        ok(&[0], "()");
        bad(&[1], "()");
        bad(&[], "()");
        // wrong type asked
        assert!(ok(&[0, 0, 0, 5], "u").as_u64_be().is_err());
    }

    #[test]
    fn arrays() {
        let v = ok(b"a\0bc\0\x02\x05", "as");
        let items: Vec<_> = v
            .array_iter()
            .unwrap()
            .map(|x| x.unwrap().as_str().unwrap())
            .collect();
        assert_eq!(items, ["a", "bc"]);
        ok(b"", "as");
        bad(b"a\0bc\0\x05\x02", "as"); // offsets decreasing
        bad(b"a\0bc\0\x02\x09", "as"); // offset beyond table
        bad(b"a\0bc\0\x02\x05\x00", "as"); // last offset 0 -> table too large/bad
        bad(b"a\0", "as"); // no offsets
        bad(&[1, 2, 3], "au"); // not a multiple
        ok(&[1, 0, 0, 0, 2, 0, 0, 0], "au");
        bad(&[1, 2], "ab");
        // aay with empty elements
        let v = ok(&[0, 0], "aay");
        assert_eq!(v.array_len().unwrap(), 2);
        // misaligned (non-zero padding) children: a(ut)? use at-aligned variable tuples a(ts)
        let mut e = 1u64.to_le_bytes().to_vec();
        e.extend_from_slice(b"x\0"); // (ts) = 10 bytes, no offsets (s last)
        let one = OwnedValue::Tuple(vec![OwnedValue::U64(1), OwnedValue::str("x")]);
        let arr = OwnedValue::array("(ts)", vec![one.clone(), one])
            .to_bytes()
            .unwrap();
        assert_eq!(&arr[..10], &e[..]);
        assert_eq!(&arr[10..16], &[0u8; 6]);
        let mut bad_pad = arr.clone();
        bad_pad[12] = 1;
        bad(&bad_pad, "a(ts)");
        ok(&arr, "a(ts)");
    }

    #[test]
    fn offset_width_must_be_minimal() {
        // ["a"] as 'as' with 1-byte offset: "a\0" + 0x02
        ok(b"a\0\x02", "as");
        // same with a 2-byte offset: size 4 <= 255 so width would be 1 -> offsets read as
        // [0x02, 0x00] -> last offset 0 -> table 4 bytes -> n=4 and elements bogus
        bad(b"a\0\x02\x00", "as");
        // A body of 254 bytes + one element needs 1-byte offsets (255 total). Encoding it
        // with 2-byte offsets gives 256 bytes, which is consistent but not normal.
        let s = "x".repeat(253);
        let one = OwnedValue::array("s", vec![OwnedValue::str(s.clone())])
            .to_bytes()
            .unwrap();
        assert_eq!(one.len(), 255);
        let mut wide = one[..254].to_vec();
        wide.extend_from_slice(&254u16.to_le_bytes());
        bad(&wide, "as");
    }

    #[test]
    fn tuples_and_variants() {
        // (su) "hi" 7
        let v = ok(&[b'h', b'i', 0, 0, 7, 0, 0, 0, 3], "(su)");
        assert_eq!(v.tuple_fields::<2>().unwrap()[1].as_u32_le().unwrap(), 7);
        bad(&[b'h', b'i', 0, 0, 7, 0, 0, 0, 3, 0], "(su)"); // trailing byte
        bad(&[b'h', b'i', 0, 1, 7, 0, 0, 0, 3], "(su)"); // nonzero padding
        bad(&[b'h', b'i', 0, 0, 7, 0, 0, 0, 9], "(su)"); // offset out of range
        assert!(v.tuple_fields::<3>().is_err());
        // variant
        let v = ok(b"hi\0\0s", "v");
        let inner = v.as_variant().unwrap();
        assert_eq!(inner.type_str(), "s");
        assert_eq!(inner.as_str().unwrap(), "hi");
        bad(b"hi\0s", "v"); // child "hi" has no NUL
        bad(b"hi\0\0ss", "v"); // two types
        bad(b"hi\0\0", "v"); // empty type
        bad(b"hi", "v");
        bad(&[1, 0, 0, 0, 1, 0, b'u'], "v"); // fixed size mismatch (5 bytes for u)
        assert_eq!(
            ok(&[1, 0, 0, 0, 0, b'u'], "v")
                .as_variant()
                .unwrap()
                .as_u32_le()
                .unwrap(),
            1
        );
        // maybe
        assert!(ok(&[], "ms").as_maybe().unwrap().is_none());
        assert_eq!(
            ok(b"a\0\0", "ms")
                .as_maybe()
                .unwrap()
                .unwrap()
                .as_str()
                .unwrap(),
            "a"
        );
        bad(b"a\0", "ms");
        bad(&[1, 0, 0], "mu");
        ok(&[1, 0, 0, 0], "mu");
    }

    #[test]
    fn writer_matches_reader() {
        let meta = OwnedValue::array(
            "{sv}",
            vec![
                OwnedValue::entry(
                    OwnedValue::str("version"),
                    OwnedValue::Variant(Box::new(OwnedValue::str("2"))),
                ),
                OwnedValue::entry(
                    OwnedValue::str("ostree.ref-binding"),
                    OwnedValue::Variant(Box::new(OwnedValue::array(
                        "s",
                        vec![OwnedValue::str("os/x86_64/stable")],
                    ))),
                ),
            ],
        );
        let b = meta.to_bytes().unwrap();
        let v = Value::from_bytes(&b, "a{sv}").unwrap();
        assert_eq!(
            v.lookup("version")
                .unwrap()
                .unwrap()
                .as_variant()
                .unwrap()
                .as_str()
                .unwrap(),
            "2"
        );
        assert!(v.lookup("nope").unwrap().is_none());
        // Inconsistent arrays are caught.
        assert!(
            OwnedValue::array("u", vec![OwnedValue::str("x")])
                .to_bytes()
                .is_err()
        );
        assert!(OwnedValue::str("a\0b").to_bytes().is_err());
        assert_eq!(OwnedValue::Tuple(vec![]).to_bytes().unwrap(), vec![0]);
    }
}
