//! The writer: [`OwnedValue`], a small value tree serialized in normal form.

use super::error::Error;
use super::framing::{offset_size, total_size};
use super::types::{Info, VARIABLE_1, info_of, tuple_info};
use super::value::{RawValue, Value};

/// A GVariant value to serialize (the writer side, GLib's `GVariantBuilder`).
///
/// Integers are written little-endian, as GLib does on the hosts OSTree runs on; for
/// OSTree's byte-swapped fields use [`OwnedValue::u32_be`] and [`OwnedValue::u64_be`],
/// which store the swapped value so that the bytes come out big-endian.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum OwnedValue {
    /// `b`
    Bool(bool),
    /// `y`
    Byte(u8),
    /// `n`
    I16(i16),
    /// `q`
    U16(u16),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `x`
    I64(i64),
    /// `t`
    U64(u64),
    /// `d`
    F64(f64),
    /// `s` (must not contain NUL)
    Str(String),
    /// `o`
    ObjectPath(String),
    /// `g`
    Signature(String),
    /// `ay`, written as one block of bytes
    Bytes(Vec<u8>),
    /// `v`
    Variant(Box<OwnedValue>),
    /// `m<elem>`
    Maybe {
        /// Element type string.
        elem: String,
        /// `None` for Nothing.
        value: Option<Box<OwnedValue>>,
    },
    /// `a<elem>`; every item must have type `elem`.
    Array {
        /// Element type string.
        elem: String,
        /// The elements.
        items: Vec<OwnedValue>,
    },
    /// `(...)`
    Tuple(Vec<OwnedValue>),
    /// `{kv}`
    DictEntry(Box<OwnedValue>, Box<OwnedValue>),
    /// A value that is already serialized.
    Raw(RawValue),
}

impl Value<'_> {
    /// An owned copy of this value, for embedding into an [`OwnedValue`].
    pub fn to_owned_value(&self) -> OwnedValue {
        OwnedValue::Raw(self.to_raw())
    }
}

impl OwnedValue {
    /// A `u` whose bytes are big-endian (uid, gid, mode in OSTree objects).
    pub fn u32_be(v: u32) -> Self {
        OwnedValue::U32(u32::from_le_bytes(v.to_be_bytes()))
    }

    /// A `t` whose bytes are big-endian (commit timestamp, archive file size).
    pub fn u64_be(v: u64) -> Self {
        OwnedValue::U64(u64::from_le_bytes(v.to_be_bytes()))
    }

    /// A `s`.
    pub fn str(s: impl Into<String>) -> Self {
        OwnedValue::Str(s.into())
    }

    /// An `ay`.
    pub fn bytes(b: impl Into<Vec<u8>>) -> Self {
        OwnedValue::Bytes(b.into())
    }

    /// An array of type `a<elem>`.
    pub fn array(elem: impl Into<String>, items: Vec<OwnedValue>) -> Self {
        OwnedValue::Array {
            elem: elem.into(),
            items,
        }
    }

    /// A dict entry `{kv}`.
    pub fn entry(k: OwnedValue, v: OwnedValue) -> Self {
        OwnedValue::DictEntry(Box::new(k), Box::new(v))
    }

    /// The type string of this value.
    pub fn type_string(&self) -> String {
        let mut s = String::new();
        self.write_type(&mut s);
        s
    }

    fn write_type(&self, s: &mut String) {
        let code = match self {
            OwnedValue::Bool(_) => "b",
            OwnedValue::Byte(_) => "y",
            OwnedValue::I16(_) => "n",
            OwnedValue::U16(_) => "q",
            OwnedValue::I32(_) => "i",
            OwnedValue::U32(_) => "u",
            OwnedValue::I64(_) => "x",
            OwnedValue::U64(_) => "t",
            OwnedValue::F64(_) => "d",
            OwnedValue::Str(_) => "s",
            OwnedValue::ObjectPath(_) => "o",
            OwnedValue::Signature(_) => "g",
            OwnedValue::Bytes(_) => "ay",
            OwnedValue::Variant(_) => "v",
            OwnedValue::Maybe { elem, .. } => {
                s.push('m');
                elem
            }
            OwnedValue::Array { elem, .. } => {
                s.push('a');
                elem
            }
            OwnedValue::Tuple(items) => {
                s.push('(');
                for i in items {
                    i.write_type(s);
                }
                ")"
            }
            OwnedValue::DictEntry(k, v) => {
                s.push('{');
                k.write_type(s);
                v.write_type(s);
                "}"
            }
            OwnedValue::Raw(r) => r.type_str(),
        };
        s.push_str(code);
    }

    fn info(&self) -> Info {
        let i = match self {
            OwnedValue::Maybe { elem, .. } | OwnedValue::Array { elem, .. } => {
                info_of(elem).map(|i| Info {
                    align: i.align,
                    fixed: None,
                })
            }
            OwnedValue::Tuple(items) => {
                tuple_info(items.iter().map(|i| Some(i.info()))).map(|t| t.0)
            }
            OwnedValue::DictEntry(k, v) => {
                tuple_info([Some(k.info()), Some(v.info())].into_iter()).map(|t| t.0)
            }
            OwnedValue::Raw(r) => info_of(r.type_str()),
            other => {
                let mut s = String::new();
                other.write_type(&mut s);
                info_of(&s)
            }
        };
        i.unwrap_or(VARIABLE_1)
    }

    /// Serializes in normal form and checks the result with the strict reader
    /// (which catches, e.g., a string with an interior NUL or array items whose type
    /// differs from the array's element type).
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.write(&mut out);
        let ty = self.type_string();
        Value::from_bytes(&out, &ty)?;
        Ok(out)
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            OwnedValue::Bool(b) => out.push(u8::from(*b)),
            OwnedValue::Byte(b) => out.push(*b),
            OwnedValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::Str(s) | OwnedValue::ObjectPath(s) | OwnedValue::Signature(s) => {
                out.extend_from_slice(s.as_bytes());
                out.push(0);
            }
            OwnedValue::Bytes(b) => out.extend_from_slice(b),
            OwnedValue::Raw(r) => out.extend_from_slice(r.bytes()),
            OwnedValue::Variant(v) => {
                v.write(out);
                out.push(0);
                v.write_type_bytes(out);
            }
            OwnedValue::Maybe { value, .. } => {
                if let Some(v) = value {
                    v.write(out);
                    if v.info().fixed.is_none() {
                        out.push(0);
                    }
                }
            }
            OwnedValue::Array { elem, items } => {
                let einfo = info_of(elem).unwrap_or(VARIABLE_1);
                let start = out.len();
                let mut ends = Vec::new();
                for item in items {
                    pad(out, start, einfo.align);
                    item.write(out);
                    if einfo.fixed.is_none() {
                        ends.push(out.len().wrapping_sub(start));
                    }
                }
                write_offsets(out, start, &ends);
            }
            OwnedValue::Tuple(items) => write_tuple(out, items.iter()),
            OwnedValue::DictEntry(k, v) => write_tuple(out, [&**k, &**v].into_iter()),
        }
    }

    fn write_type_bytes(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.type_string().as_bytes());
    }
}

fn pad(out: &mut Vec<u8>, start: usize, mask: usize) {
    while out.len().wrapping_sub(start) & mask != 0 {
        out.push(0);
    }
}

fn write_offsets(out: &mut Vec<u8>, start: usize, ends: &[usize]) {
    if ends.is_empty() {
        return;
    }
    let body = out.len().wrapping_sub(start);
    let osz = total_size(body, ends.len()).map_or(8, offset_size);
    for e in ends {
        out.extend((*e as u64).to_le_bytes().iter().take(osz));
    }
}

fn write_tuple<'v>(out: &mut Vec<u8>, items: impl ExactSizeIterator<Item = &'v OwnedValue>) {
    let start = out.len();
    let n = items.len();
    let mut align = 0;
    let mut fixed = true;
    let mut ends = Vec::new();
    for (i, item) in items.enumerate() {
        let info = item.info();
        align |= info.align;
        pad(out, start, info.align);
        item.write(out);
        if info.fixed.is_none() {
            fixed = false;
            if i.saturating_add(1) < n {
                ends.push(out.len().wrapping_sub(start));
            }
        }
    }
    if fixed {
        if out.len() == start {
            out.push(0);
        }
        pad(out, start, align);
    } else {
        ends.reverse();
        write_offsets(out, start, &ends);
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::gvariant::MAX_DEPTH;

    #[test]
    fn deep_nesting_is_rejected() {
        // A chain of variants each holding a variant.
        let mut v = OwnedValue::Byte(1);
        for _ in 0..(MAX_DEPTH + 5) {
            v = OwnedValue::Variant(Box::new(v));
        }
        let mut out = Vec::new();
        v.write(&mut out);
        assert!(matches!(
            Value::from_bytes(&out, "v"),
            Err(Error::TooDeep { .. })
        ));
    }
}
