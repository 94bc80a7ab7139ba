//! cfsync's resume journal (`<repo>/cfsync/partial/<commit>.journal`): the magic, then
//! records split by `next_record` until a torn or corrupt one; the first record as a
//! header, the others as objects. Every record that splits re-encodes to the same bytes,
//! and so does every header and object that decodes. Errors are fine; panics are bugs.
#![no_main]
use cfsync_formats::journal::{self, MAGIC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Either a whole journal, or (without the magic) a bare record stream.
    let mut rest = data.strip_prefix(MAGIC.as_slice()).unwrap_or(data);
    let mut first = true;
    loop {
        let before = rest;
        let Some(payload) = journal::next_record(&mut rest) else {
            assert_eq!(rest, before, "a refused record must not be consumed");
            break;
        };
        let mut framed = Vec::new();
        journal::encode_record(&mut framed, payload).expect("a decoded record re-encodes");
        assert_eq!(framed.len(), journal::framed_len(payload.len()));
        let consumed = before.len() - rest.len();
        assert_eq!(
            before.get(..consumed),
            Some(framed.as_slice()),
            "record round trip"
        );
        if first {
            if let Some(h) = journal::decode_header(payload) {
                assert_eq!(journal::encode_header(&h), payload, "header round trip");
            }
            first = false;
        } else if let Some(rec) = journal::decode_object(payload) {
            let mut out = Vec::new();
            journal::encode_object(&mut out, &rec).expect("a decoded object re-encodes");
            let mut again = out.as_slice();
            assert_eq!(
                journal::next_record(&mut again),
                Some(payload),
                "object round trip"
            );
            assert!(again.is_empty());
        }
    }
});
