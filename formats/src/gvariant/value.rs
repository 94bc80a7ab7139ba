//! Borrowed values: [`Value`] (checked on creation), its accessors and iterators, and
//! [`RawValue`], an owned copy of a checked value.

use std::fmt;

use super::error::Error;
use super::framing::{
    TupleFrame, VarArrayFrame, check_string, split_variant, var_array_child, var_array_frame,
};
use super::types::{Members, info_of, tuple_info};
use super::validate::validate;

/// A borrowed GVariant value in normal form: its bytes and its type string.
///
/// Only this module creates `Value`s, always from checked bytes, so every accessor
/// works on normal-form data; accessors return [`Error::WrongType`] when asked for a
/// type the value does not have.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    data: &'a [u8],
    ty: &'a str,
    offset: usize,
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("ty", &self.ty)
            .field("offset", &self.offset)
            .field("len", &self.data.len())
            .finish()
    }
}

const PLACEHOLDER: Value<'static> = Value {
    data: &[0],
    ty: "()",
    offset: 0,
};

macro_rules! fixed_accessor {
    ($(#[$doc:meta])* $name:ident, $t:ty, $code:literal, $conv:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> Result<$t, Error> {
            let b: [u8; std::mem::size_of::<$t>()] = self.fixed_bytes($code)?;
            Ok(<$t>::$conv(b))
        }
    };
}

impl<'a> Value<'a> {
    /// Checks that `data` is the normal-form serialization of a value of type `ty` and
    /// returns a view of it. The whole buffer is checked, including nested variants.
    ///
    /// Allocation for hostile input: the view borrows `data`; the check builds a type
    /// tree of O(`ty.len()`) nodes and, for each variant on the current nesting path (at
    /// most [`MAX_DEPTH`](super::MAX_DEPTH)), one for its embedded type (at most
    /// [`MAX_TYPE_LEN`](super::MAX_TYPE_LEN) bytes) — bounded independently of
    /// `data.len()`. Errors copy a type string.
    pub fn from_bytes(data: &'a [u8], ty: &'a str) -> Result<Self, Error> {
        validate(data, ty)?;
        Ok(Value {
            data,
            ty,
            offset: 0,
        })
    }

    /// The serialized bytes of this value.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The type string of this value.
    pub fn type_str(&self) -> &'a str {
        self.ty
    }

    /// Offset of this value in the buffer given to [`Value::from_bytes`].
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn wrong(&self, expected: &'static str) -> Error {
        Error::WrongType {
            expected,
            actual: self.ty.to_owned(),
            offset: self.offset,
        }
    }

    fn malformed(&self, what: &'static str) -> Error {
        Error::Malformed {
            what,
            ty: self.ty.to_owned(),
            offset: self.offset,
        }
    }

    /// Fails with [`Error::WrongType`] unless this value has type `ty`.
    pub fn expect_type(&self, ty: &'static str) -> Result<(), Error> {
        if self.ty == ty {
            Ok(())
        } else {
            Err(self.wrong(ty))
        }
    }

    fn child(&self, start: usize, end: usize, ty: &'a str) -> Result<Value<'a>, Error> {
        let data = self
            .data
            .get(start..end)
            .ok_or_else(|| self.malformed("child out of range"))?;
        Ok(Value {
            data,
            ty,
            offset: self.offset.saturating_add(start),
        })
    }

    fn fixed_bytes<const N: usize>(&self, code: &'static str) -> Result<[u8; N], Error> {
        if self.ty != code {
            return Err(self.wrong(code));
        }
        self.data
            .try_into()
            .map_err(|_| self.malformed("fixed-size value has the wrong size"))
    }

    /// A boolean (`b`).
    pub fn as_bool(&self) -> Result<bool, Error> {
        let [b] = self.fixed_bytes::<1>("b")?;
        match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.malformed("boolean is not 0 or 1")),
        }
    }

    /// A byte (`y`).
    pub fn as_u8(&self) -> Result<u8, Error> {
        let [b] = self.fixed_bytes::<1>("y")?;
        Ok(b)
    }

    fixed_accessor!(
        /// A `q` stored little-endian (GVariant's host order on every OSTree writer).
        as_u16_le, u16, "q", from_le_bytes);
    fixed_accessor!(
        /// An `n` stored little-endian.
        as_i16_le, i16, "n", from_le_bytes);
    fixed_accessor!(
        /// A `u` stored little-endian (host order: e.g. delta part counts).
        as_u32_le, u32, "u", from_le_bytes);
    fixed_accessor!(
        /// A `u` that OSTree byte-swapped to big-endian (uid, gid, mode).
        as_u32_be, u32, "u", from_be_bytes);
    fixed_accessor!(
        /// An `i` stored little-endian.
        as_i32_le, i32, "i", from_le_bytes);
    fixed_accessor!(
        /// A `t` stored little-endian (host order: e.g. summary commit size).
        as_u64_le, u64, "t", from_le_bytes);
    fixed_accessor!(
        /// A `t` that OSTree byte-swapped to big-endian (timestamps, file sizes).
        as_u64_be, u64, "t", from_be_bytes);
    fixed_accessor!(
        /// An `x` stored little-endian.
        as_i64_le, i64, "x", from_le_bytes);
    fixed_accessor!(
        /// A `d` stored little-endian.
        as_f64_le, f64, "d", from_le_bytes);

    /// A string (`s`, `o` or `g`), without its NUL terminator.
    pub fn as_str(&self) -> Result<&'a str, Error> {
        if !matches!(self.ty, "s" | "o" | "g") {
            return Err(self.wrong("s"));
        }
        check_string(self.data).map_err(|w| self.malformed(w))
    }

    /// A byte array (`ay`).
    pub fn as_bytes(&self) -> Result<&'a [u8], Error> {
        if self.ty != "ay" {
            return Err(self.wrong("ay"));
        }
        Ok(self.data)
    }

    /// A NUL-terminated byte string stored as `ay` (GLib's "bytestring"), without the
    /// NUL. Fails if the last byte is not NUL or if another NUL occurs.
    pub fn as_bytestring(&self) -> Result<&'a [u8], Error> {
        let b = self.as_bytes()?;
        match b.split_last() {
            Some((0, body)) if !body.contains(&0) => Ok(body),
            _ => Err(self.malformed("byte string is not NUL-terminated exactly once")),
        }
    }

    /// The value inside a variant (`v`), with its own type string.
    pub fn as_variant(&self) -> Result<Value<'a>, Error> {
        if self.ty != "v" {
            return Err(self.wrong("v"));
        }
        let (data, ty) = split_variant(self.data).ok_or(Error::InvalidVariantType {
            offset: self.offset,
        })?;
        Ok(Value {
            data,
            ty,
            offset: self.offset,
        })
    }

    /// The content of a maybe (`m*`): `None` for Nothing.
    pub fn as_maybe(&self) -> Result<Option<Value<'a>>, Error> {
        let ety = match self.ty.strip_prefix('m') {
            Some(t) => t,
            None => return Err(self.wrong("m*")),
        };
        if self.data.is_empty() {
            return Ok(None);
        }
        let info = info_of(ety).ok_or_else(|| self.wrong("m*"))?;
        let end = match info.fixed {
            Some(_) => self.data.len(),
            None => self
                .data
                .len()
                .checked_sub(1)
                .ok_or_else(|| self.malformed("empty maybe"))?,
        };
        Ok(Some(self.child(0, end, ety)?))
    }

    /// Number of elements of an array (`a*`).
    pub fn array_len(&self) -> Result<usize, Error> {
        Ok(self.array_iter()?.len())
    }

    /// Iterates over the elements of an array (`a*`).
    pub fn array_iter(&self) -> Result<ArrayIter<'a>, Error> {
        let ety = self.ty.strip_prefix('a').ok_or_else(|| self.wrong("a*"))?;
        let info = info_of(ety).ok_or_else(|| self.wrong("a*"))?;
        let kind = match info.fixed {
            Some(sz) => {
                if self.data.len().checked_rem(sz) != Some(0) {
                    return Err(self.malformed("array size is not a multiple of the element size"));
                }
                ArrayKind::Fixed { size: sz }
            }
            None => ArrayKind::Variable {
                frame: var_array_frame(self.data).map_err(|w| self.malformed(w))?,
                prev_end: 0,
            },
        };
        let n = match kind {
            ArrayKind::Fixed { size } => self.data.len().checked_div(size).unwrap_or(0),
            ArrayKind::Variable { frame, .. } => frame.n,
        };
        Ok(ArrayIter {
            array: *self,
            ety,
            align: info.align,
            kind,
            next: 0,
            n,
        })
    }

    /// Iterates over the members of a tuple (`(...)`) or dict entry (`{..}`).
    pub fn tuple_iter(&self) -> Result<TupleIter<'a>, Error> {
        let members = Members::new(self.ty).ok_or_else(|| self.wrong("tuple"))?;
        let (info, n_offsets) =
            tuple_info(members.clone().map(info_of)).ok_or_else(|| Error::InvalidType {
                ty: self.ty.to_owned(),
            })?;
        let frame =
            TupleFrame::new(self.data, n_offsets, info.fixed).map_err(|w| self.malformed(w))?;
        Ok(TupleIter {
            tuple: *self,
            members,
            frame,
            failed: false,
        })
    }

    /// The members of a tuple or dict entry with exactly `N` members.
    pub fn tuple_fields<const N: usize>(&self) -> Result<[Value<'a>; N], Error> {
        let mut out = [PLACEHOLDER; N];
        let mut it = self.tuple_iter()?;
        for slot in out.iter_mut() {
            *slot = it
                .next()
                .ok_or_else(|| self.wrong("tuple with more members"))??;
        }
        match it.next() {
            None => Ok(out),
            Some(Err(e)) => Err(e),
            Some(Ok(_)) => Err(self.wrong("tuple with fewer members")),
        }
    }

    /// For an array of dict entries with a string key (`a{s*}`): the value of the first
    /// entry whose key equals `key`.
    pub fn lookup(&self, key: &str) -> Result<Option<Value<'a>>, Error> {
        if !self.ty.starts_with("a{s") {
            return Err(self.wrong("a{s*}"));
        }
        for entry in self.array_iter()? {
            let [k, v] = entry?.tuple_fields()?;
            if k.as_str()? == key {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// An owned copy of this value's type and bytes.
    pub fn to_raw(&self) -> RawValue {
        RawValue {
            ty: self.ty.to_owned(),
            bytes: self.data.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum ArrayKind {
    Fixed {
        size: usize,
    },
    Variable {
        frame: VarArrayFrame,
        prev_end: usize,
    },
}

/// Iterator over the elements of an array, from [`Value::array_iter`].
#[derive(Debug, Clone)]
pub struct ArrayIter<'a> {
    array: Value<'a>,
    ety: &'a str,
    align: usize,
    kind: ArrayKind,
    next: usize,
    n: usize,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Result<Value<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.n {
            return None;
        }
        let i = self.next;
        self.next = self.next.saturating_add(1);
        let range = match &mut self.kind {
            ArrayKind::Fixed { size } => i
                .checked_mul(*size)
                .and_then(|s| Some((s, s.checked_add(*size)?)))
                .ok_or("offset overflow"),
            ArrayKind::Variable { frame, prev_end } => {
                var_array_child(self.array.data, frame, i, *prev_end, self.align).inspect(|r| {
                    *prev_end = r.1;
                })
            }
        };
        let item = match range {
            Ok((s, e)) => self.array.child(s, e, self.ety),
            Err(w) => Err(self.array.malformed(w)),
        };
        if item.is_err() {
            self.next = self.n;
        }
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.n.saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for ArrayIter<'_> {}

/// Iterator over the members of a tuple, from [`Value::tuple_iter`].
#[derive(Debug, Clone)]
pub struct TupleIter<'a> {
    tuple: Value<'a>,
    members: Members<'a>,
    frame: TupleFrame,
    failed: bool,
}

impl<'a> Iterator for TupleIter<'a> {
    type Item = Result<Value<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let Some(mty) = self.members.next() else {
            if let Err(w) = self.frame.finish(self.tuple.data) {
                self.failed = true;
                return Some(Err(self.tuple.malformed(w)));
            }
            self.failed = true;
            return None;
        };
        let last = self.members.at_last(self.members.pos);
        let item = match info_of(mty) {
            None => Err(Error::InvalidType {
                ty: self.tuple.ty.to_owned(),
            }),
            Some(info) => match self.frame.member(self.tuple.data, info, last) {
                Ok((s, e)) => self.tuple.child(s, e, mty),
                Err(w) => Err(self.tuple.malformed(w)),
            },
        };
        if item.is_err() {
            self.failed = true;
        }
        Some(item)
    }
}

/// An already-serialized normal-form value and its type, checked on creation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawValue {
    ty: String,
    bytes: Vec<u8>,
}

impl RawValue {
    /// Checks `bytes` as a normal-form value of type `ty`.
    pub fn new(ty: impl Into<String>, bytes: Vec<u8>) -> Result<Self, Error> {
        let ty = ty.into();
        Value::from_bytes(&bytes, &ty)?;
        Ok(RawValue { ty, bytes })
    }

    /// For values that are valid by construction (fixed-size integers, `ay`): no check.
    pub(crate) fn trusted(ty: &str, bytes: Vec<u8>) -> Self {
        debug_assert!(Value::from_bytes(&bytes, ty).is_ok());
        RawValue {
            ty: ty.to_owned(),
            bytes,
        }
    }

    /// The type string.
    pub fn type_str(&self) -> &str {
        &self.ty
    }

    /// The serialized bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A borrowed view (always succeeds: the bytes were checked on creation).
    pub fn as_value(&self) -> Result<Value<'_>, Error> {
        Value::from_bytes(&self.bytes, &self.ty)
    }
}
