//! The entry order of an `a{sv}` that libostree builds with a `GVariantDict`.
//!
//! `g_variant_dict_end` walks the dictionary's `GHashTable` bucket by bucket, so the
//! summary's metadata, its `ostree.static-deltas` map and every delta index list their
//! keys in hash-table order, not in insertion or sorted order. To write bytes equal to
//! `ostree summary -u`'s, [`dict_order`] replays GLib's table (2.74, as in Debian 12;
//! unchanged in later releases): `g_str_hash` (djb2 over signed bytes), a table of
//! `1 << shift` buckets indexed by `(hash * 11) % prime_mod[shift]`, quadratic probing
//! (`index += ++step`, masked), growth when `size <= occupied + occupied / 16` to the
//! shift of `(int)(nnodes * 1.333)` with GLib's in-place rehash, and iteration from
//! bucket 0 upwards. Only inserts of distinct keys are replayed (what the writers do).

/// GLib's `prime_mod[]`, the modulus for each table shift.
const PRIME_MOD: [u32; 32] = [
    1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
    262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859, 134217689,
    268435399, 536870909, 1073741789, 2147483647,
];

/// `HASH_TABLE_MIN_SHIFT`.
const MIN_SHIFT: usize = 3;

/// `g_str_hash`: djb2 over the bytes read as `signed char`, folded away from the two
/// reserved values (0 unused, 1 tombstone) as `g_hash_table_lookup_node` does.
fn str_hash(key: &str) -> u32 {
    let mut h: u32 = 5381;
    for &b in key.as_bytes() {
        // `signed char` sign extension: bytes >= 0x80 add a negative value.
        let c = i32::from(b as i8) as u32;
        h = (h << 5).wrapping_add(h).wrapping_add(c);
    }
    if h < 2 { 2 } else { h }
}

/// The hash table, reduced to what decides positions: each bucket's hash and key index.
struct Table {
    shift: usize,
    hashes: Vec<u32>,
    keys: Vec<usize>,
    occupied: usize,
}

impl Table {
    fn new() -> Self {
        let mut t = Table {
            shift: MIN_SHIFT,
            hashes: Vec::new(),
            keys: Vec::new(),
            occupied: 0,
        };
        t.set_shift(MIN_SHIFT);
        t
    }

    fn set_shift(&mut self, shift: usize) {
        let shift = shift.clamp(MIN_SHIFT, PRIME_MOD.len().saturating_sub(1));
        self.shift = shift;
        self.hashes.resize(1 << shift, 0);
        self.keys.resize(1 << shift, usize::MAX);
    }

    fn size(&self) -> usize {
        1 << self.shift
    }

    fn mask(&self) -> usize {
        self.size().wrapping_sub(1)
    }

    fn home(&self, hash: u32) -> usize {
        let m = PRIME_MOD.get(self.shift).copied().unwrap_or(1);
        hash.wrapping_mul(11).checked_rem(m).unwrap_or(0) as usize
    }

    /// Inserts a key known to be new.
    fn insert(&mut self, hash: u32, key: usize) {
        let mut i = self.home(hash);
        let mut step: usize = 0;
        while self.hashes.get(i).copied().unwrap_or(0) != 0 {
            step = step.wrapping_add(1);
            i = i.wrapping_add(step) & self.mask();
        }
        if let (Some(h), Some(k)) = (self.hashes.get_mut(i), self.keys.get_mut(i)) {
            *h = hash;
            *k = key;
        }
        self.occupied = self.occupied.saturating_add(1);
        if self.size() <= self.occupied.saturating_add(self.occupied / 16) {
            self.grow();
        }
    }

    /// `g_hash_table_resize` + `resize_map` for a table without tombstones.
    fn grow(&mut self) {
        let old_size = self.size();
        // `(gint)(nnodes * 1.333)`, then `g_hash_table_find_closest_shift` (bit length).
        let target = (self.occupied as f64 * 1.333) as usize;
        let bits = usize::BITS.saturating_sub(target.leading_zeros());
        self.set_shift(bits as usize);
        let mut moved = vec![false; self.size().max(old_size)];
        for i in 0..old_size {
            let node_hash = self.hashes.get(i).copied().unwrap_or(0);
            if node_hash < 2 {
                continue;
            }
            if moved.get(i).copied().unwrap_or(false) {
                continue;
            }
            if let Some(h) = self.hashes.get_mut(i) {
                *h = 0;
            }
            let mut hash = node_hash;
            let mut key = self.keys.get(i).copied().unwrap_or(usize::MAX);
            loop {
                let mut j = self.home(hash);
                let mut step: usize = 0;
                while moved.get(j).copied().unwrap_or(false) {
                    step = step.wrapping_add(1);
                    j = j.wrapping_add(step) & self.mask();
                }
                if let Some(m) = moved.get_mut(j) {
                    *m = true;
                }
                let (Some(h), Some(k)) = (self.hashes.get_mut(j), self.keys.get_mut(j)) else {
                    break;
                };
                let replaced_hash = std::mem::replace(h, hash);
                let replaced_key = std::mem::replace(k, key);
                if replaced_hash < 2 {
                    break;
                }
                hash = replaced_hash;
                key = replaced_key;
            }
        }
    }
}

/// The order in which `g_variant_dict_end` writes the keys `keys`, inserted in that
/// order into a fresh `GVariantDict`: indexes into `keys`. Keys must be distinct (a
/// repeated key is kept at its first insertion).
pub fn dict_order<S: AsRef<str>>(keys: &[S]) -> Vec<usize> {
    let mut t = Table::new();
    for (n, k) in keys.iter().enumerate() {
        if keys.iter().take(n).any(|p| p.as_ref() == k.as_ref()) {
            continue;
        }
        t.insert(str_hash(k.as_ref()), n);
    }
    t.hashes
        .iter()
        .zip(&t.keys)
        .filter(|(h, _)| **h >= 2)
        .map(|(_, k)| *k)
        .collect()
}

/// `items` (key, value) reordered as [`dict_order`] of their keys.
pub fn in_dict_order<K: AsRef<str>, V>(items: Vec<(K, V)>) -> Vec<(K, V)> {
    let order = dict_order(&items.iter().map(|(k, _)| k.as_ref()).collect::<Vec<_>>());
    let mut slots: Vec<Option<(K, V)>> = items.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn str_hash_is_djb2() {
        // g_str_hash("") = 5381; g_str_hash("a") = 5381 * 33 + 97.
        assert_eq!(str_hash(""), 5381);
        assert_eq!(str_hash("a"), 5381 * 33 + 97);
    }

    #[test]
    fn every_key_once_whatever_the_count() {
        for n in 0..200 {
            let keys: Vec<String> = (0..n).map(|i| format!("key{i}")).collect();
            let mut order = dict_order(&keys);
            assert_eq!(order.len(), n);
            order.sort_unstable();
            assert_eq!(order, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn summary_metadata_order_of_ostree_2022_7() {
        // The order `ostree summary -u` (2022.7, GLib 2.74) wrote for an archive repo
        // with deltas (`ostree summary --raw`); publish_summary.rs checks it live.
        let keys = [
            "ostree.static-deltas",
            "ostree.summary.last-modified",
            "ostree.summary.mode",
            "ostree.summary.tombstone-commits",
            "ostree.summary.indexed-deltas",
        ];
        let order: Vec<&str> = dict_order(&keys).into_iter().map(|i| keys[i]).collect();
        assert_eq!(
            order,
            [
                "ostree.summary.mode",
                "ostree.summary.last-modified",
                "ostree.summary.tombstone-commits",
                "ostree.static-deltas",
                "ostree.summary.indexed-deltas",
            ]
        );
    }
}
