//! What decoding a delta part needs, from its first bytes: the check shared by the
//! `part_dict` fuzz target and the corpus replay in `formats/tests/fuzz_corpus.rs`.

/// `decoder_need` on every prefix of `data` (up to the most it may ask for): an answer
/// or an error, never a panic; `More(n)` asks for more than it was given, at most the
/// `DICT_PROBE_MAX` bytes xz headers can span; once an answer is final, longer prefixes
/// agree.
pub fn part_dict_prefixes(data: &[u8]) {
    use cfsync_formats::delta::part::{DICT_PROBE_MAX, DecoderNeed, decoder_need};
    let data = &data[..data.len().min(2 * DICT_PROBE_MAX)];
    let mut settled: Option<Result<DecoderNeed, String>> = None;
    for n in 0..=data.len() {
        let got = decoder_need(&data[..n]).map_err(|e| e.to_string());
        if let Ok(DecoderNeed::More(m)) = got {
            assert!(m > n, "More({m}) after {n} bytes");
            assert!(m <= DICT_PROBE_MAX, "More({m}) beyond the xz headers");
            assert!(settled.is_none(), "More after a final answer at {n} bytes");
            continue;
        }
        match &settled {
            None => settled = Some(got),
            Some(s) => assert_eq!(s, &got, "the answer changed at {n} bytes"),
        }
    }
}
