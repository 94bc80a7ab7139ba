//! GLib key files (`config`, `remotes.d/*.conf`): whatever parses must write back to text
//! that parses to an equal key file, and reading every value as a string, boolean and list
//! must not panic. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::keyfile::{KeyFile, escape_value, parse_bool, unescape_list, unescape_value};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(kf) = KeyFile::parse_bytes(data) else {
        return;
    };
    let text = kf.to_data();
    let again = KeyFile::parse(&text).expect("written key file must parse");
    assert_eq!(again, kf, "{text:?}");
    for group in kf.groups() {
        for (key, raw) in kf.entries(group) {
            if let Ok(s) = unescape_value(raw) {
                assert_eq!(unescape_value(&escape_value(&s)).as_deref(), Ok(s.as_str()));
            }
            black_box(parse_bool(raw));
            black_box(unescape_list(raw, ';').ok());
            black_box(kf.get_string(group, key).ok());
        }
    }
});
