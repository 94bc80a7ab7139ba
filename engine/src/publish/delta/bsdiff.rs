//! bsdiff patches in the raw format ostree's `B` operation applies (mendsley's bsdiff
//! without a header: per step three 8-byte sign-magnitude integers, the diff bytes and
//! the extra bytes; docs/ostree-formats.md §7.7), with a suffix array built by
//! divsufsort (the `divsufsort` crate) instead of bsdiff's qsufsort: several times
//! faster, 4 bytes per old byte instead of 16, and the same matches.
//!
//! The match search is Colin Percival's bsdiff 4 algorithm: for each position of the
//! new file, the longest match in the old file (binary search in the suffix array); a
//! match is taken when it beats the current alignment by more than 8 bytes, then
//! extended forwards and backwards while at least half the bytes agree.

/// The patch turning `old` into `new`, or `None` when `old` is too large to index
/// (2 GiB and more), or when `probe` is set and `new` looks unrelated to `old`
/// ([`similar`]).
pub(crate) fn diff(old: &[u8], new: &[u8], probe: bool) -> Option<Vec<u8>> {
    i32::try_from(old.len()).ok()?;
    let mut sa = vec![0i32; old.len()];
    if !old.is_empty() {
        // A port of C code: should it ever panic on some input, that file goes whole
        // instead of taking the generator down.
        let sorted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            divsufsort::sort_in_place(old, &mut sa);
        }));
        sorted.ok()?;
    }
    if probe && !similar(&sa, old, new) {
        return None;
    }
    Some(diff_with(old, &sa, new))
}

/// A cheap test before the full match search: of up to 64 evenly spaced positions of
/// `new`, at least one in eight starts a match of 32 bytes or more in `old`. Two
/// compressed files (gzip, zip) share such runs only where their contents agree
/// unchanged; otherwise bsdiff would spend a search on every byte for nothing.
fn similar(sa: &[i32], old: &[u8], new: &[u8]) -> bool {
    const PROBES: usize = 64;
    const RUN: usize = 32;
    if old.is_empty() || new.len() < RUN {
        return false;
    }
    let probes = (new.len() / RUN).clamp(1, PROBES);
    let step = new.len() / probes;
    let hits = (0..probes)
        .filter(|i| {
            let tail = new.get(i * step..).unwrap_or_default();
            search(sa, old, tail).1 >= RUN.min(tail.len())
        })
        .count();
    hits * 8 >= probes
}

/// Bytes of memory [`diff`] needs for an old file of `old` and a new file of `new`
/// bytes: the suffix array (4 bytes per old byte), both files and the patch.
pub(crate) fn memory(old: u64, new: u64) -> u64 {
    old.saturating_mul(5).saturating_add(new.saturating_mul(2))
}

fn match_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The longest prefix of `new` found in `old`: (position in old, length).
fn search(sa: &[i32], old: &[u8], new: &[u8]) -> (usize, usize) {
    let at = |i: usize| {
        sa.get(i)
            .and_then(|&p| usize::try_from(p).ok())
            .unwrap_or(0)
    };
    let suffix = |i: usize| old.get(at(i)..).unwrap_or_default();
    let (mut lo, mut hi) = (0usize, sa.len().saturating_sub(1));
    while hi.saturating_sub(lo) >= 2 {
        let mid = lo + (hi - lo) / 2;
        let s = suffix(mid);
        let n = s.len().min(new.len());
        if s.get(..n) < new.get(..n) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let (x, y) = (match_len(suffix(lo), new), match_len(suffix(hi), new));
    if x > y { (at(lo), x) } else { (at(hi), y) }
}

/// bsdiff's sign-magnitude little-endian 64-bit integer.
fn push_off(out: &mut Vec<u8>, v: i64) {
    let mut b = v.unsigned_abs().to_le_bytes();
    if v < 0 {
        b[7] |= 0x80;
    }
    out.extend_from_slice(&b);
}

fn byte(s: &[u8], i: usize) -> Option<u8> {
    s.get(i).copied()
}

fn diff_with(old: &[u8], sa: &[i32], new: &[u8]) -> Vec<u8> {
    let (olen, nlen) = (old.len(), new.len());
    let mut out = Vec::with_capacity(nlen / 8 + 64);
    let (mut scan, mut len, mut pos) = (0usize, 0usize, 0usize);
    let (mut lastscan, mut lastpos, mut lastoffset) = (0usize, 0usize, 0i64);
    // `old[i + lastoffset]`, when inside old.
    let old_at = |i: usize, off: i64| -> Option<u8> {
        let j = i64::try_from(i).ok()?.checked_add(off)?;
        byte(old, usize::try_from(j).ok()?)
    };
    while scan < nlen {
        let mut oldscore = 0i64;
        scan += len;
        let mut scsc = scan;
        while scan < nlen {
            (pos, len) = if olen == 0 {
                (0, 0)
            } else {
                search(sa, old, new.get(scan..).unwrap_or_default())
            };
            while scsc < scan + len {
                if old_at(scsc, lastoffset).is_some() && old_at(scsc, lastoffset) == byte(new, scsc)
                {
                    oldscore += 1;
                }
                scsc += 1;
            }
            let l = len as i64;
            if (l == oldscore && len != 0) || l > oldscore + 8 {
                break;
            }
            if old_at(scan, lastoffset).is_some() && old_at(scan, lastoffset) == byte(new, scan) {
                oldscore -= 1;
            }
            scan += 1;
        }
        if len as i64 == oldscore && scan != nlen {
            continue;
        }
        // Forward extension of the last match.
        let (mut s, mut best, mut lenf) = (0i64, 0i64, 0usize);
        let mut i = 0usize;
        while lastscan + i < scan && lastpos + i < olen {
            if byte(old, lastpos + i) == byte(new, lastscan + i) {
                s += 1;
            }
            i += 1;
            if s * 2 - i as i64 > best * 2 - lenf as i64 {
                best = s;
                lenf = i;
            }
        }
        // Backward extension of the new match.
        let mut lenb = 0usize;
        if scan < nlen {
            let (mut s, mut best) = (0i64, 0i64);
            let mut i = 1usize;
            while scan >= lastscan + i && pos >= i {
                if byte(old, pos - i) == byte(new, scan - i) {
                    s += 1;
                }
                if s * 2 - i as i64 > best * 2 - lenb as i64 {
                    best = s;
                    lenb = i;
                }
                i += 1;
            }
        }
        // Where the two extensions overlap, split at the best point.
        if lastscan + lenf > scan - lenb {
            let overlap = (lastscan + lenf) - (scan - lenb);
            let (mut s, mut best, mut lens) = (0i64, 0i64, 0usize);
            for i in 0..overlap {
                if byte(new, lastscan + lenf - overlap + i)
                    == byte(old, lastpos + lenf - overlap + i)
                {
                    s += 1;
                }
                if byte(new, scan - lenb + i) == byte(old, pos - lenb + i) {
                    s -= 1;
                }
                if s > best {
                    best = s;
                    lens = i + 1;
                }
            }
            lenf = lenf + lens - overlap;
            lenb -= lens;
        }
        let extra = (scan - lenb) - (lastscan + lenf);
        let seek = (pos as i64 - lenb as i64) - (lastpos as i64 + lenf as i64);
        push_off(&mut out, lenf as i64);
        push_off(&mut out, extra as i64);
        push_off(&mut out, seek);
        for i in 0..lenf {
            let n = byte(new, lastscan + i).unwrap_or(0);
            let o = byte(old, lastpos + i).unwrap_or(0);
            out.push(n.wrapping_sub(o));
        }
        out.extend_from_slice(new.get(lastscan + lenf..scan - lenb).unwrap_or_default());
        lastscan = scan - lenb;
        lastpos = pos - lenb;
        lastoffset = pos as i64 - scan as i64;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(old: &[u8], new: &[u8]) -> usize {
        let patch = diff(old, new, false).unwrap();
        let mut out = Vec::new();
        bsdiff::patch(old, &mut patch.as_slice(), &mut out).unwrap();
        assert_eq!(out, new);
        patch.len()
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn patches_apply_and_match_the_reference() {
        let old = noise(200_000, 1);
        let mut new = old.clone();
        new[1000] ^= 0xff;
        new.splice(50_000..50_100, noise(300, 2));
        new.extend_from_slice(&noise(5000, 3));
        new.drain(120_000..125_000);
        let ours = check(&old, &new);
        let mut reference = Vec::new();
        bsdiff::diff(&old, &new, &mut reference).unwrap();
        // The same algorithm: patches of the same size, give or take a few steps.
        assert!(
            ours <= reference.len() + 256,
            "{ours} vs {}",
            reference.len()
        );
        for (o, n) in [
            (&b""[..], &b"new file"[..]),
            (b"old file", b""),
            (b"", b""),
            (b"aaaa", b"aaaa"),
            (b"abcabcabc", b"cbacbacba"),
        ] {
            check(o, n);
        }
        let text = b"the quick brown fox jumps over the lazy dog ".repeat(500);
        let mut edited = text.clone();
        edited[7000..7005].copy_from_slice(b"HELLO");
        check(&text, &edited);
    }

    #[test]
    fn the_probe_tells_related_from_unrelated() {
        let old = noise(100_000, 7);
        let mut new = old.clone();
        new.splice(1000..1010, noise(50, 8));
        assert!(diff(&old, &new, true).is_some());
        assert!(diff(&old, &noise(100_000, 9), true).is_none());
        assert!(diff(&old, &noise(100_000, 9), false).is_some());
    }

    #[test]
    fn sign_magnitude_offsets() {
        let mut v = Vec::new();
        push_off(&mut v, -5);
        push_off(&mut v, 5);
        assert_eq!(v[..8], [5, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(v[8..], [5, 0, 0, 0, 0, 0, 0, 0]);
    }
}
