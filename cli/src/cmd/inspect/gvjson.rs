//! GVariant values (and the xattr lists of OSTree headers) as JSON.

use cfsync_formats::gvariant::{self, Value};
use cfsync_formats::metadata::MetadataRef;
use serde_json::{Map, Value as J, json};

/// Deepest GVariant nesting printed; deeper values are elided.
const MAX_DEPTH: usize = 64;

/// A GVariant value as JSON: numbers as numbers (little-endian, as GVariant stores
/// them), strings as strings, `ay` as lowercase hex, arrays and tuples as arrays,
/// dictionaries with string keys as objects, variants as `{"type", "value"}`, maybes as
/// the value or `null`. Undecodable parts become `{"error": "..."}`.
pub(super) fn gv_json(v: Value<'_>, depth: usize) -> J {
    gv_json_inner(v, depth).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

pub(super) fn gv_json_inner(v: Value<'_>, depth: usize) -> Result<J, gvariant::Error> {
    if depth > MAX_DEPTH {
        return Ok(json!({ "error": "nested too deeply" }));
    }
    let d = depth.saturating_add(1);
    let ty = v.type_str();
    Ok(match ty {
        "b" => J::Bool(v.as_bool()?),
        "y" => json!(v.as_u8()?),
        "n" => json!(v.as_i16_le()?),
        "q" => json!(v.as_u16_le()?),
        "i" => json!(v.as_i32_le()?),
        "u" => json!(v.as_u32_le()?),
        "x" => json!(v.as_i64_le()?),
        "t" => json!(v.as_u64_le()?),
        "d" => json!(v.as_f64_le()?),
        "s" | "o" | "g" => J::String(v.as_str()?.to_owned()),
        "ay" => J::String(hex::encode(v.as_bytes()?)),
        "v" => {
            let inner = v.as_variant()?;
            json!({ "type": inner.type_str(), "value": gv_json(inner, d) })
        }
        t if t.starts_with('m') => match v.as_maybe()? {
            Some(x) => gv_json(x, d),
            None => J::Null,
        },
        t if t.starts_with("a{") => {
            let mut m = Map::new();
            for e in v.array_iter()? {
                let [k, val] = e?.tuple_fields()?;
                let key = match gv_json(k, d) {
                    J::String(s) => s,
                    other => other.to_string(),
                };
                m.insert(key, gv_json(val, d));
            }
            J::Object(m)
        }
        t if t.starts_with('a') => {
            let mut out = Vec::new();
            for e in v.array_iter()? {
                out.push(gv_json(e?, d));
            }
            J::Array(out)
        }
        t if t.starts_with('(') || t.starts_with('{') => {
            let mut out = Vec::new();
            for e in v.tuple_iter()? {
                out.push(gv_json(e?, d));
            }
            J::Array(out)
        }
        _ => J::String(hex::encode(v.data())),
    })
}

/// An `a{sv}` dictionary as a JSON object of `{"type", "value"}`.
pub(super) fn metadata_json(m: &MetadataRef<'_>) -> J {
    gv_json(m.as_value(), 0)
}

pub(super) fn xattrs_json(x: &[(impl AsRef<[u8]>, impl AsRef<[u8]>)]) -> J {
    J::Array(
        x.iter()
            .map(|(n, v)| {
                let name = n.as_ref();
                let name = name.strip_suffix(&[0]).unwrap_or(name);
                json!({
                    "name": String::from_utf8_lossy(name),
                    "value": hex::encode(v.as_ref()),
                })
            })
            .collect(),
    )
}
