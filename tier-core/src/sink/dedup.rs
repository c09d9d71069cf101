//! Duplicates within one file, found as its rows go by: the first occurrence of a row (or, for a
//! keyed dataset, of a key) is kept; a later row equal in every column is a duplicate; a later
//! row with the same key and other values is a conflicting duplicate. Both sinks use it: the lake
//! for every dataset, PostgreSQL for keyed datasets (so their rows can be copied straight in).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use xxhash_rust::xxh3::xxh3_128;

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
    /// ```
    /// use tier_core::sink::dedup::{FirstSeen, Seen};
    /// let weather = tier_core::Registry::builtin().get("weather").unwrap().clone();
    /// let mut seen = FirstSeen::new(&weather);
    /// let n = weather.columns.len();
    /// let row = |city: &'static [u8], hash: &'static [u8]| {
    ///     let mut f: Vec<Option<&[u8]>> = vec![None; n + 4];
    ///     f[weather.column_index("city").unwrap()] = Some(city);
    ///     f[weather.column_index("date_time").unwrap()] = Some(b"\0\0\0\0\0\0\0\x01");
    ///     f[n + 3] = Some(hash);
    ///     f
    /// };
    /// assert_eq!(seen.see(&row(b"Berlin", &[1; 16])), Seen::First);
    /// assert_eq!(seen.see(&row(b"Berlin", &[1; 16])), Seen::Duplicate);
    /// assert_eq!(seen.see(&row(b"Berlin", &[2; 16])), Seen::Conflict);
    /// assert_eq!(seen.see(&row(b"Paris", &[2; 16])), Seen::First);
    /// ```
    pub fn new(dataset: &Dataset) -> FirstSeen {
        FirstSeen {
            key_at: dataset
                .key
                .as_ref()
                .map(|key| key.iter().filter_map(|k| dataset.column_index(k)).collect()),
            hash_at: dataset.columns.len() + 3,
            keys: Hashes::default(),
            rows: HashSet::default(),
            key_bytes: Vec::new(),
        }
    }

    /// Whether the dataset has a natural key (conflicts are possible).
    pub fn keyed(&self) -> bool {
        self.key_at.is_some()
    }

    /// Takes note of a row (its COPY fields) and says what it is.
    pub fn see(&mut self, fields: &[Option<&[u8]>]) -> Seen {
        let hash = u128::from_be_bytes(
            fields[self.hash_at]
                .and_then(|h| h.try_into().ok())
                .unwrap_or([0; 16]),
        );
        let Some(key_at) = &self.key_at else {
            return if self.rows.insert(hash) {
                Seen::First
            } else {
                Seen::Duplicate
            };
        };
        self.key_bytes.clear();
        for &i in key_at {
            let f = fields[i].unwrap_or(&[]);
            self.key_bytes
                .extend_from_slice(&(f.len() as u32).to_be_bytes());
            self.key_bytes.extend_from_slice(f);
        }
        match self.keys.entry(xxh3_128(&self.key_bytes)) {
            std::collections::hash_map::Entry::Occupied(e) if *e.get() == hash => Seen::Duplicate,
            std::collections::hash_map::Entry::Occupied(_) => Seen::Conflict,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(hash);
                Seen::First
            }
        }
    }
}
