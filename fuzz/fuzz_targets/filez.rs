//! Archive `.filez` objects through `FilezReader`: header validation, then streaming
//! inflate, which must yield exactly the declared size or fail. The checksum over the
//! streamed content must match `file_checksum` of the collected content. Errors are fine;
//! panics are bugs.
#![no_main]
use cfsync_formats::file::{self, FilezReader};
use libfuzzer_sys::fuzz_target;
use std::hint::black_box;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    black_box(file::decode_sized_archive_header(data).ok());
    let Ok(mut r) = FilezReader::new(data) else {
        return;
    };
    let header = r.header().clone();
    let declared = r.remaining();
    let mut hasher = r.hasher().expect("hasher of a validated header");
    let mut content = Vec::new();
    let mut buf = [0u8; 1000];
    let ok = loop {
        match r.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => {
                hasher.update(&buf[..n]);
                content.extend_from_slice(&buf[..n]);
                assert!(
                    content.len() as u64 <= declared,
                    "read past the declared size"
                );
                assert_eq!(r.remaining(), declared - content.len() as u64);
            }
            Err(e) => {
                black_box(e);
                break false;
            }
        }
    };
    if ok {
        assert_eq!(content.len() as u64, declared, "short content accepted");
        assert_eq!(hasher.content_len(), declared);
        let sum = hasher.finish();
        assert_eq!(
            file::file_checksum(&header, &content).expect("checksum"),
            sum
        );
        // Reading again after the end stays at the end.
        assert_eq!(r.read(&mut buf).expect("read after the end"), 0);
    }
    // Chunking the input differently must not change the outcome.
    for step in [1, 5] {
        let t = FilezReader::new(cfsync_fuzz::Trickle::new(data, step))
            .expect("header parses when read in small chunks");
        let (c, tok) = cfsync_fuzz::read_all(t, 777);
        assert_eq!(tok, ok, "outcome depends on input chunking ({step})");
        if ok {
            assert_eq!(c, content, "content depends on input chunking ({step})");
        }
    }
    // The archive header re-encodes to the same sized header.
    let enc = file::encode_sized_archive_header(&header).expect("re-encode a valid header");
    let (h2, rest) = file::decode_sized_archive_header(&enc).expect("decode re-encoded header");
    assert_eq!(h2, header);
    assert!(rest.is_empty());
});
