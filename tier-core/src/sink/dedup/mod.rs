//! Duplicates within one file, found as its rows go by: the first occurrence of a row (or, for a
//! keyed dataset, of a key) is kept; a later row equal in every column is a duplicate; a later
//! row with the same key and other values is a conflicting duplicate. Both sinks use it: the lake
//! for every dataset, PostgreSQL for keyed datasets (so their rows can be copied straight in).
//!
//! The set holds 128-bit hashes in a table of bounded size ([`TABLE_BYTES`]); a file with more
//! rows than it holds spills it, sorted, to a temporary file ([`spill`]) and starts it again.

mod spill;

use xxhash_rust::xxh3::xxh3_128;

use super::copy::copy_fields;
use crate::error::{Error, Result};
use crate::pipeline::Encode;
use crate::schema::row::Row;
use crate::schema::validate::Reject;
use crate::schema::Dataset;

/// How many rows ahead a caller going down a batch asks for [`FirstSeen::prefetch`]: enough
/// for the memory to answer before the row's turn comes.
pub const LOOK_AHEAD: usize = 12;

/// Bytes of a duplicate set's table at most: past it, the table is spilled (a table of rows'
/// hashes holds about 1.8 million rows, one of keys about 0.9 million).
const TABLE_BYTES: usize = 32 << 20;

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

/// An open-addressing table of 128-bit hashes, each with a value: linear probing from a slot
/// the hash's high bits scale to the table's size. A look-up touches one cache line, and the
/// table is sized to the rows expected (not rounded up to a power of two), so the table of a
/// file of a million rows stays within a processor's last-level cache.
struct Flat<V> {
    slots: Vec<(u128, V)>,
    len: usize,
    /// The value of the hash 0, which marks empty slots.
    zero: Option<V>,
}

impl<V: Copy + Default> Flat<V> {
    fn with_capacity(rows: usize) -> Flat<V> {
        Flat {
            slots: huge((rows + rows / 4).max(64), (0, V::default())),
            len: 0,
            zero: None,
        }
    }

    /// Inserts `key` with `value` unless it is there; returns the value held before, if any.
    #[inline]
    fn insert(&mut self, key: u128, value: V) -> Option<V> {
        if key == 0 {
            return self.zero.or_else(|| {
                self.zero = Some(value);
                None
            });
        }
        if self.full() {
            self.grow();
        }
        let n = self.slots.len();
        let mut i = self.home(key);
        loop {
            let slot = &mut self.slots[i];
            if slot.0 == key {
                return Some(slot.1);
            }
            if slot.0 == 0 {
                *slot = (key, value);
                self.len += 1;
                return None;
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
    }

    /// The slot a key's probe starts at: its high half scaled to the table's size.
    #[inline]
    fn home(&self, key: u128) -> usize {
        (((key >> 64) * self.slots.len() as u128) >> 64) as usize
    }

    /// Starts bringing the slot `key` probes first into the cache, for an insert soon after.
    #[inline]
    fn prefetch(&self, key: u128) {
        prefetch(&self.slots[self.home(key)..]);
    }

    /// Whether the next insert makes the table grow.
    fn full(&self) -> bool {
        (self.len + 1) * 8 > self.slots.len() * 7
    }

    /// Hands the table's entries, sorted by hash, to `out`, and empties it (the hash 0 stays).
    fn drain_sorted(&mut self, out: impl FnOnce(&[(u128, V)]) -> Result<()>) -> Result<()> {
        let n = self.slots.len();
        let mut slots = std::mem::take(&mut self.slots);
        slots.retain(|s| s.0 != 0);
        slots.sort_unstable_by_key(|s| s.0);
        let written = out(&slots);
        slots.clear();
        slots.resize(n, (0, V::default()));
        self.slots = slots;
        self.len = 0;
        written
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.slots = huge(old.len() * 2, (0, V::default()));
        self.len = 0;
        for (k, v) in old.into_iter().filter(|s| s.0 != 0) {
            self.insert(k, v);
        }
    }
}

/// `n` copies of `value` in memory asked to be mapped in huge pages where the system does that
/// on request (Linux's transparent huge pages): random look-ups into a table of many megabytes
/// then find their pages' addresses in the processor's cache of translations instead of walking
/// the page tables for most of them.
fn huge<T: Clone>(n: usize, value: T) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 2 << 20;
        let bytes = n * std::mem::size_of::<T>();
        let start = (v.as_ptr() as usize).next_multiple_of(PAGE);
        let end = (v.as_ptr() as usize + bytes) / PAGE * PAGE;
        if end > start {
            // SAFETY: advice about the pages of the vector's own allocation (a whole number of
            // 2 MiB pages inside it), which the kernel may take or ignore: no memory is read,
            // written or unmapped.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    v.resize(n, value);
    v
}

/// Starts bringing the memory at the start of `at` into the cache.
#[inline]
fn prefetch<T>(at: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint that reads nothing (the address is in a live allocation,
        // or one past it for an empty slice); SSE is part of every x86-64 processor.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at.as_ptr() as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// A set of 128-bit hashes, each with a value: a [`Flat`] table of at most `budget` bytes, and
/// what it spilled.
struct Set<V> {
    table: Flat<V>,
    spill: Option<spill::Spill<V>>,
    budget: usize,
    /// Entries the file is expected to hold in all (for the spill's filter).
    expected: usize,
}

impl<V: spill::Value> Set<V> {
    fn new(expected: usize, budget: usize) -> Set<V> {
        let slot = std::mem::size_of::<(u128, V)>();
        Set {
            table: Flat::with_capacity(expected.min(budget / slot * 4 / 5)),
            spill: None,
            budget,
            expected,
        }
    }

    /// Inserts `key` with `value` unless it is there; returns the value held before, if any.
    #[inline]
    fn insert(&mut self, key: u128, value: V) -> Result<Option<V>> {
        if self.table.full()
            && self.table.slots.len() * 2 * std::mem::size_of::<(u128, V)>() > self.budget
        {
            self.spill_table()?;
        }
        // A hash is in one place at most: the runs hold what the table held before.
        if let Some(spill) = &mut self.spill {
            if let Some(first) = spill.get(key).map_err(spilled)? {
                return Ok(Some(first));
            }
        }
        Ok(self.table.insert(key, value))
    }

    #[inline]
    fn prefetch(&self, key: u128) {
        self.table.prefetch(key);
        if let Some(spill) = &self.spill {
            spill.prefetch(key);
        }
    }

    #[cold]
    fn spill_table(&mut self) -> Result<()> {
        let spill = match &mut self.spill {
            Some(s) => s,
            None => {
                let expected = self.expected.max(4 * self.table.len);
                self.spill
                    .insert(spill::Spill::new(expected).map_err(spilled)?)
            }
        };
        self.table
            .drain_sorted(|entries| spill.push(entries).map_err(spilled))
    }
}

/// The error of a spill's temporary file.
fn spilled(e: std::io::Error) -> Error {
    Error::io(std::env::temp_dir(), e)
}

/// The rows (or keys) of one file seen so far, as 128-bit hashes: 20 bytes a row (40 for a
/// keyed dataset, its key's hash and its row's) up to [`TABLE_BYTES`]; past it, spilled to a
/// temporary file, with about 1.25 bytes a row (at most 64 MiB) left in memory.
pub struct FirstSeen {
    hash_at: usize,
    seen: Known,
    key_bytes: Vec<u8>,
}

/// What the rows of a file are known by.
enum Known {
    /// A keyed dataset's (its key's fields where they stand in a row): each key's hash, with
    /// the hash of the first row of that key.
    Keys(Vec<usize>, Set<u128>),
    /// Rows without a key: each row's hash.
    Rows(Set<()>),
}

impl FirstSeen {
    /// The rows of a file of `dataset`, as the binary COPY fields of its target table (the
    /// definition's columns, `_extra`, `_load_id`, `_record_index`, `_row_hash`, maybe `_raw`).
    pub fn new(dataset: &Dataset) -> FirstSeen {
        FirstSeen::with_budget(dataset, 0, TABLE_BYTES)
    }

    /// The rows of a file of `dataset` expected to hold `rows` rows, in a table of at most
    /// `budget` bytes.
    fn with_budget(dataset: &Dataset, rows: usize, budget: usize) -> FirstSeen {
        FirstSeen {
            seen: match &dataset.key {
                Some(key) => Known::Keys(
                    key.iter().filter_map(|k| dataset.column_index(k)).collect(),
                    Set::new(rows, budget),
                ),
                None => Known::Rows(Set::new(rows, budget)),
            },
            hash_at: super::copy::Layout::of(dataset).hash,
            key_bytes: Vec::new(),
        }
    }

    /// The rows of a file of `dataset` of `bytes` bytes (about 700 a record in the exports): the
    /// set is made that large at once, sparing it the copies of its growth (the peak of a growth
    /// is the old table and one twice its size).
    pub fn for_file(dataset: &Dataset, bytes: u64) -> FirstSeen {
        FirstSeen::with_budget(dataset, (bytes / 700) as usize, TABLE_BYTES)
    }

    /// Takes note of each row of a batch of binary COPY rows, in order, and hands it to `each`
    /// (its bytes, its fields, what it is). The batch's hashes are taken first, so that each
    /// look-up asks for its memory [`LOOK_AHEAD`] rows before its turn and waits for none.
    pub fn see_rows<'p>(
        &mut self,
        payload: &'p [u8],
        mut each: impl FnMut(&'p [u8], &[Option<&'p [u8]>], Seen) -> Result<()>,
    ) -> Result<()> {
        let (mut fields, mut all, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        let mut b = payload;
        while !b.is_empty() {
            let row = b;
            b = copy_fields(b, &mut fields);
            let (key, hash) = self.hashes(&fields);
            rows.push((key, hash, &row[..row.len() - b.len()]));
            all.extend_from_slice(&fields);
        }
        let mut fields = all.chunks_exact(fields.len().max(1));
        self.see_in_order(&rows, |row, seen| {
            each(row, fields.next().unwrap_or_default(), seen)
        })
    }

    /// Takes note of each row of a batch encoded by [`HashEncoder`] (`with_raw`: keeping their
    /// raw texts), in order, and hands `each` its index, raw text and what it is; as
    /// [`FirstSeen::see_rows`], each look-up asks for its memory ahead.
    pub fn see_hashed_rows<'p>(
        &mut self,
        payload: &'p [u8],
        with_raw: bool,
        mut each: impl FnMut(u64, &'p [u8], Seen) -> Result<()>,
    ) -> Result<()> {
        let mut rows = Vec::new();
        let mut b = payload;
        while !b.is_empty() {
            let (index, hash, key, raw, rest) = if with_raw {
                HashEncoder::decode_raw(b)
            } else {
                HashEncoder::decode(b)
            };
            b = rest;
            rows.push((key, hash, (index, raw)));
        }
        self.see_in_order(&rows, |(index, raw), seen| each(index, raw, seen))
    }

    /// Takes note of rows by their key's hash and their own, in order, and hands `each` what
    /// goes with each row and what it is; each look-up asks for its memory [`LOOK_AHEAD`] rows
    /// before its turn.
    fn see_in_order<T: Copy>(
        &mut self,
        rows: &[(u128, u128, T)],
        mut each: impl FnMut(T, Seen) -> Result<()>,
    ) -> Result<()> {
        for (i, &(key, hash, with)) in rows.iter().enumerate() {
            if let Some(&(key, hash, _)) = rows.get(i + LOOK_AHEAD) {
                self.prefetch(key, hash);
            }
            each(with, self.see_hashed(key, hash)?)?;
        }
        Ok(())
    }

    /// The hashes a row (its COPY fields) is known by: its key's (0 without a key) and its own.
    pub fn hashes(&mut self, fields: &[Option<&[u8]>]) -> (u128, u128) {
        let hash = u128::from_be_bytes(
            fields[self.hash_at]
                .and_then(|h| h.try_into().ok())
                .unwrap_or([0; 16]),
        );
        let Known::Keys(key_at, _) = &self.seen else {
            return (0, hash);
        };
        self.key_bytes.clear();
        for &i in key_at {
            let f = fields[i].unwrap_or(&[]);
            self.key_bytes
                .extend_from_slice(&(f.len() as u32).to_be_bytes());
            self.key_bytes.extend_from_slice(f);
        }
        (xxh3_128(&self.key_bytes), hash)
    }

    /// Starts bringing what the look-up of these hashes reads into the cache: a caller that
    /// knows the rows to come asks this a few rows ahead, and the look-ups wait for no memory.
    #[inline]
    pub fn prefetch(&self, key: u128, hash: u128) {
        match &self.seen {
            Known::Keys(_, keys) => keys.prefetch(key),
            Known::Rows(rows) => rows.prefetch(hash),
        }
    }

    /// Takes note of a row by its key's hash (ignored without a key) and its own, as
    /// [`HashEncoder`] gives them, and says what it is. An error is one of the temporary file
    /// a large file's set spills to.
    pub fn see_hashed(&mut self, key: u128, hash: u128) -> Result<Seen> {
        Ok(match &mut self.seen {
            Known::Rows(rows) => match rows.insert(hash, ())? {
                None => Seen::First,
                Some(()) => Seen::Duplicate,
            },
            Known::Keys(_, keys) => match keys.insert(key, hash)? {
                None => Seen::First,
                Some(first) if first == hash => Seen::Duplicate,
                Some(_) => Seen::Conflict,
            },
        })
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
                // As `FirstSeen::hashes` takes a key from COPY fields: a null is empty.
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
mod tests;
