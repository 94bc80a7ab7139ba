//! Dirmeta objects `(uuua(ayay))`: parse, every accessor, and `to_owned` → `to_bytes`
//! must reproduce the input exactly. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::dirmeta::DirMetaRef;
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = DirMetaRef::from_bytes(data) else {
        return;
    };
    black_box(m.uid());
    black_box(m.gid());
    black_box(m.mode());
    let xr = m.xattrs_ref();
    let x = m.xattrs();
    assert_eq!(xr.len(), x.len());
    for (name, _) in xr {
        black_box(cfsync_formats::xattrs::name_without_nul(name));
    }
    let sorted = cfsync_formats::xattrs::sorted(&x);
    assert!(
        sorted.windows(2).all(|w| w[0].0 <= w[1].0),
        "xattrs::sorted is not sorted"
    );
    let owned = m.to_owned();
    let bytes = owned.to_bytes().expect("serialize a parsed dirmeta");
    assert_eq!(bytes, data, "dirmeta round trip changed the bytes");
    assert_eq!(
        owned.checksum().expect("checksum"),
        cfsync_formats::checksum::Checksum::of(data)
    );
    let again = DirMetaRef::from_bytes(&bytes).expect("re-parse a serialized dirmeta");
    assert_eq!(again.to_owned(), owned);
});
