//! The part of a file's duplicate set that no longer fits its memory budget: runs of hashes
//! written sorted to a temporary file, found again through one filter held in memory (a blocked
//! Bloom filter: a look-up reads one word) and, past it, the first hash of every block of a run.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;

/// Entries per block of a run: a look-up that passes the filter reads one block per run.
const BLOCK: usize = 256;
/// Bits of the filter per entry expected (about one false positive in fifty).
const FILTER_BITS_PER_ENTRY: usize = 10;
/// Bytes of the filter at most: past the entries it was made for, it answers "maybe" more often
/// (more blocks are read), but memory does not grow.
const FILTER_MAX_BYTES: usize = 64 << 20;

/// What a hash of the set carries: nothing (a row's hash), or the hash of the key's first row.
pub(super) trait Value: Copy + Default + PartialEq {
    /// Bytes of a value in a run.
    const BYTES: usize;
    /// Appends the value to `out`.
    fn write(&self, out: &mut Vec<u8>);
    /// The value at the start of `b` (at least [`Value::BYTES`] long).
    fn read(b: &[u8]) -> Self;
}

impl Value for () {
    const BYTES: usize = 0;
    fn write(&self, _: &mut Vec<u8>) {}
    fn read(_: &[u8]) {}
}

impl Value for u128 {
    const BYTES: usize = 16;
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn read(b: &[u8]) -> u128 {
        u128::from_le_bytes(b[..16].try_into().expect("16 bytes"))
    }
}

/// One sorted run in the file: where it starts, how many entries, each block's first hash.
struct Run {
    start: u64,
    len: usize,
    fences: Vec<u128>,
}

/// The spilled entries of a set: sorted runs in an unnamed temporary file, one filter for all.
pub(super) struct Spill<V> {
    file: File,
    end: u64,
    runs: Vec<Run>,
    filter: Vec<u64>,
    block: Vec<u8>,
    _value: std::marker::PhantomData<V>,
}

impl<V: Value> Spill<V> {
    /// An empty spill whose filter is made for `expected` entries (bounded by
    /// [`FILTER_MAX_BYTES`]), its runs in a new unnamed file of the temporary directory.
    pub(super) fn new(expected: usize) -> std::io::Result<Spill<V>> {
        let words =
            (expected.saturating_mul(FILTER_BITS_PER_ENTRY) / 64).clamp(1024, FILTER_MAX_BYTES / 8);
        Ok(Spill {
            file: tempfile::tempfile()?,
            end: 0,
            runs: Vec::new(),
            filter: super::huge(words, 0),
            block: Vec::new(),
            _value: std::marker::PhantomData,
        })
    }

    /// The filter's word for `key` and the bits of it the key sets.
    #[inline]
    fn filter_at(&self, key: u128) -> (usize, u64) {
        let (lo, hi) = (key as u64, (key >> 64) as u64);
        let word = ((lo as u128 * self.filter.len() as u128) >> 64) as usize;
        let bits = (0..4).fold(0u64, |m, i| m | 1 << ((hi >> (6 * i)) & 63));
        (word, bits)
    }

    /// Starts bringing the filter's word for `key` into the cache.
    #[inline]
    pub(super) fn prefetch(&self, key: u128) {
        let (word, _) = self.filter_at(key);
        super::prefetch(&self.filter[word..]);
    }

    /// Writes `entries` (sorted by hash, no hash twice) as a new run.
    pub(super) fn push(&mut self, entries: &[(u128, V)]) -> std::io::Result<()> {
        let size = 16 + V::BYTES;
        let mut out = BufWriter::with_capacity(1 << 20, &self.file);
        let mut fences = Vec::with_capacity(entries.len() / BLOCK + 1);
        let mut buf = Vec::with_capacity(size);
        for (i, (key, value)) in entries.iter().enumerate() {
            if i % BLOCK == 0 {
                fences.push(*key);
            }
            let (word, bits) = self.filter_at(*key);
            self.filter[word] |= bits;
            buf.clear();
            buf.extend_from_slice(&key.to_le_bytes());
            value.write(&mut buf);
            out.write_all(&buf)?;
        }
        out.flush()?;
        drop(out);
        // Written at the end of the file (the writer wrote from the cursor, which is there).
        self.runs.push(Run {
            start: self.end,
            len: entries.len(),
            fences,
        });
        self.end += (entries.len() * size) as u64;
        Ok(())
    }

    /// Runs written so far.
    #[cfg(test)]
    pub(super) fn runs(&self) -> usize {
        self.runs.len()
    }

    /// The value spilled with `key`, if it was.
    pub(super) fn get(&mut self, key: u128) -> std::io::Result<Option<V>> {
        let (word, bits) = self.filter_at(key);
        if self.filter[word] & bits != bits {
            return Ok(None);
        }
        let size = 16 + V::BYTES;
        for run in &self.runs {
            let Some(b) = run.fences.partition_point(|&f| f <= key).checked_sub(1) else {
                continue;
            };
            let n = BLOCK.min(run.len - b * BLOCK);
            self.block.resize(n * size, 0);
            self.file
                .read_exact_at(&mut self.block, run.start + (b * BLOCK * size) as u64)?;
            let at =
                |i: usize| u128::from_le_bytes(self.block[i * size..][..16].try_into().unwrap());
            let (mut lo, mut hi) = (0, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                match at(mid).cmp(&key) {
                    std::cmp::Ordering::Less => lo = mid + 1,
                    std::cmp::Ordering::Greater => hi = mid,
                    std::cmp::Ordering::Equal => {
                        return Ok(Some(V::read(&self.block[mid * size + 16..])));
                    }
                }
            }
        }
        Ok(None)
    }
}
