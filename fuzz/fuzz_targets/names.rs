//! Ref, remote, refspec, collection-ID, checksum-string and file-name validation, plus
//! object names and checksum parsing (hex and modified base64). Whatever validates must
//! survive the round trips the engine relies on (refs become paths, names join with
//! `/`). Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::checksum::Checksum;
use cfsync_formats::names;
use cfsync_formats::object::{self, ObjectName, ObjectType, RepoMode};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if names::validate_rev(s).is_ok() {
        assert!(!s.is_empty() && !s.starts_with('/') && !s.ends_with('/'));
        assert!(
            !s.split('/').any(|c| c.is_empty() || c == "." || c == ".."),
            "{s:?}"
        );
        black_box(object::ref_path(s));
        black_box(object::remote_ref_path("origin", s));
        black_box(object::mirror_ref_path("org.example.Os", s));
    }
    black_box(names::validate_rev_for_write(s).ok());
    black_box(names::validate_remote_name(s).ok());
    if let Ok((remote, r)) = names::parse_refspec(s) {
        assert!(names::validate_rev(r).is_ok());
        if let Some(remote) = remote {
            assert!(names::validate_remote_name(remote).is_ok());
        }
    }
    black_box(names::validate_collection_id(s).ok());
    if let Ok(c) = names::validate_checksum_string(s) {
        assert_eq!(c.to_hex(), s.to_ascii_lowercase());
    }
    if names::validate_filename(s).is_ok() {
        assert!(
            !s.is_empty() && !s.contains('/') && s != "." && s != "..",
            "{s:?}"
        );
    }
    if let Ok(c) = s.parse::<Checksum>() {
        assert_eq!(c.to_hex().parse::<Checksum>().expect("hex round trip"), c);
    }
    if let Ok(c) = Checksum::from_modified_base64(s) {
        let b = c.to_modified_base64();
        assert_eq!(
            Checksum::from_modified_base64(&b).expect("base64 round trip"),
            c
        );
    }
    if let Ok(n) = s.parse::<ObjectName>() {
        let again: ObjectName = n.to_string().parse().expect("object name round trip");
        assert_eq!(again, n);
        for mode in [
            RepoMode::Archive,
            RepoMode::Bare,
            RepoMode::BareUser,
            RepoMode::BareUserOnly,
            RepoMode::BareSplitXattrs,
        ] {
            black_box(n.loose_path(mode));
        }
    }
    black_box(s.parse::<ObjectType>().ok());
    black_box(s.parse::<RepoMode>().ok());
});
