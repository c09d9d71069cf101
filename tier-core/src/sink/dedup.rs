//! Duplicates within one file, found as its rows go by: the first occurrence of a row (or, for a
//! keyed dataset, of a key) is kept; a later row equal in every column is a duplicate; a later
//! row with the same key and other values is a conflicting duplicate. Both sinks use it: the lake
//! for every dataset, PostgreSQL for keyed datasets (so their rows can be copied straight in).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::xxh3_128;

use crate::pipeline::Encode;
use crate::schema::row::Row;
use crate::schema::validate::Reject;
use crate::schema::Dataset;

/// What a row is, next to the rows of its file seen before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The first of its kind: keep it.
    First,
    /// Equal in every column to a row seen before.
    Duplicate,
    /// The key of a row seen before, with other values.
    Conflict,
}

/// Hashes a value that is a hash already (xxh3): its low 64 bits are the hash.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

type Hashes<V> = HashMap<u128, V, BuildHasherDefault<Prehashed>>;

/// The rows (or keys) of one file seen so far, as 128-bit hashes: 32 bytes a row.
pub struct FirstSeen {
    key_at: Option<Vec<usize>>,
    hash_at: usize,
    keys: Hashes<u128>,
    rows: HashSet<u128, BuildHasherDefault<Prehashed>>,
    key_bytes: Vec<u8>,
}

impl FirstSeen {
    /// The rows of a file of `dataset`, as the binary COPY fields of its target table (the
    /// definition's columns, `_extra`, `_load_id`, `_record_index`, `_row_hash`, maybe `_raw`).
    ///
    pub fn new(dataset: &Dataset) -> FirstSeen {
        FirstSeen {
            key_at: dataset
                .key
                .as_ref()
                .map(|key| key.iter().filter_map(|k| dataset.column_index(k)).collect()),
            hash_at: super::copy::Layout::of(dataset).hash,
            keys: Hashes::default(),
            rows: HashSet::default(),
            key_bytes: Vec::new(),
        }
    }

    /// The rows of a file of `dataset` expected to hold about `rows` rows: the set is made that
    /// large at once (up to 4 million), sparing it the rehashing of its growth.
    pub fn with_capacity(dataset: &Dataset, rows: usize) -> FirstSeen {
        let mut seen = FirstSeen::new(dataset);
        let rows = rows.min(4 << 20);
        match seen.key_at {
            Some(_) => seen.keys.reserve(rows),
            None => seen.rows.reserve(rows),
        }
        seen
    }

    /// Takes note of a row (its COPY fields) and says what it is.
    pub fn see(&mut self, fields: &[Option<&[u8]>]) -> Seen {
        let hash = u128::from_be_bytes(
            fields[self.hash_at]
                .and_then(|h| h.try_into().ok())
                .unwrap_or([0; 16]),
        );
        let Some(key_at) = &self.key_at else {
            return self.see_hashed(0, hash);
        };
        self.key_bytes.clear();
        for &i in key_at {
            let f = fields[i].unwrap_or(&[]);
            self.key_bytes
                .extend_from_slice(&(f.len() as u32).to_be_bytes());
            self.key_bytes.extend_from_slice(f);
        }
        let key = xxh3_128(&self.key_bytes);
        self.see_hashed(key, hash)
    }

    /// Takes note of a row by its key's hash (ignored without a key) and its own, as
    /// [`HashEncoder`] gives them, and says what it is.
    pub fn see_hashed(&mut self, key: u128, hash: u128) -> Seen {
        if self.key_at.is_none() {
            return if self.rows.insert(hash) {
                Seen::First
            } else {
                Seen::Duplicate
            };
        }
        match self.keys.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) if *e.get() == hash => Seen::Duplicate,
            std::collections::hash_map::Entry::Occupied(_) => Seen::Conflict,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(hash);
                Seen::First
            }
        }
    }
}

/// Encodes each valid row as what [`FirstSeen`] needs of it, and no more (for a check, which
/// writes no rows): `[index: i64][row hash: u128][key hash: u128]`, then, when rejects are kept,
/// `[raw length: u32][raw]`, all big-endian. The hashes are those of a load's COPY fields, so a
/// check finds the duplicates a load finds.
pub struct HashEncoder {
    key_at: Vec<usize>,
    keep_rejects: bool,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl HashEncoder {
    /// An encoder for rows of `dataset`; with `keep_rejects`, rows carry their raw text (a
    /// conflicting duplicate is a reject to hand on) and batches keep their rejects.
    pub fn new(dataset: &Dataset, keep_rejects: bool) -> HashEncoder {
        HashEncoder {
            key_at: dataset
                .key
                .iter()
                .flatten()
                .filter_map(|k| dataset.column_index(k))
                .collect(),
            keep_rejects,
        }
    }

    /// Reads one encoded row back: its index, row hash, key hash and raw text, and the rest.
    pub fn decode(b: &[u8]) -> (u64, u128, u128, &[u8], &[u8]) {
        let num = |r: std::ops::Range<usize>| b.get(r).unwrap_or(&[]);
        let index = u64::from_be_bytes(num(0..8).try_into().unwrap_or([0; 8]));
        let row = u128::from_be_bytes(num(8..24).try_into().unwrap_or([0; 16]));
        let key = u128::from_be_bytes(num(24..40).try_into().unwrap_or([0; 16]));
        (index, row, key, &[], b.get(40..).unwrap_or(&[]))
    }

    /// Reads one encoded row back, with its raw text (rows encoded keeping rejects).
    pub fn decode_raw(b: &[u8]) -> (u64, u128, u128, &[u8], &[u8]) {
        let (index, row, key, _, rest) = HashEncoder::decode(b);
        let len = u32::from_be_bytes(
            rest.get(..4)
                .unwrap_or(&[0; 4])
                .try_into()
                .unwrap_or([0; 4]),
        );
        let end = (4 + len as usize).min(rest.len());
        (
            index,
            row,
            key,
            rest.get(4..end).unwrap_or(&[]),
            &rest[end..],
        )
    }
}

impl Encode for HashEncoder {
    fn keep_rejects(&self) -> bool {
        self.keep_rejects
    }

    fn row(&self, row: &Row<'_>, raw: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let (hash, key) = SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            for v in &row.values {
                super::copy::value(&mut s, v);
            }
            match &row.extra {
                Some(e) => super::copy::jsonb(&mut s, e),
                None => s.extend_from_slice(&(-1i32).to_be_bytes()),
            }
            let hash = xxh3_128(&s);
            if self.key_at.is_empty() {
                return (hash, 0);
            }
            s.clear();
            for &i in &self.key_at {
                // As `FirstSeen::see` takes a key from COPY fields: a null is empty.
                match &row.values[i] {
                    crate::schema::row::Value::Null => s.extend_from_slice(&0u32.to_be_bytes()),
                    v => super::copy::value(&mut s, v),
                }
            }
            (hash, xxh3_128(&s))
        });
        let at = out.len();
        out.extend_from_slice(&(row.index as i64).to_be_bytes());
        out.extend_from_slice(&hash.to_be_bytes());
        out.extend_from_slice(&key.to_be_bytes());
        if self.keep_rejects {
            out.extend_from_slice(&(raw.len() as u32).to_be_bytes());
            out.extend_from_slice(raw);
        }
        Some(at)
    }

    fn reject(&self, _: &Reject, _: &mut Vec<u8>) -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod examples {
    #[test]
    fn first_seen_tells_duplicates_from_conflicts() {
        use super::{FirstSeen, Seen};
        let weather = crate::Registry::builtin().get("weather").unwrap().clone();
        let mut seen = FirstSeen::new(&weather);
        let n = weather.columns.len();
        let row = |city: &'static [u8], hash: &'static [u8]| {
            let mut f: Vec<Option<&[u8]>> = vec![None; n + 4];
            f[weather.column_index("city").unwrap()] = Some(city);
            f[weather.column_index("date_time").unwrap()] = Some(b"\0\0\0\0\0\0\0\x01");
            f[n + 3] = Some(hash);
            f
        };
        assert_eq!(seen.see(&row(b"Berlin", &[1; 16])), Seen::First);
        assert_eq!(seen.see(&row(b"Berlin", &[1; 16])), Seen::Duplicate);
        assert_eq!(seen.see(&row(b"Berlin", &[2; 16])), Seen::Conflict);
        assert_eq!(seen.see(&row(b"Paris", &[2; 16])), Seen::First);
    }
}
