//! PostgreSQL's binary COPY format, encoded by hand into large buffers (the field notes measured
//! this an order of magnitude faster than a row-by-row writer).
//!
//! Valid rows are encoded with the target table's columns (then `_raw` when the load needs
//! it), rejects with the rejects table's columns; they travel in two separate streams.

use xxhash_rust::xxh3::Xxh3;

use crate::pipeline::Encode;
use crate::schema::row::{Row, Value};
use crate::schema::timestamp::PG_EPOCH_OFFSET_DAYS;
use crate::schema::validate::Reject;
use crate::schema::Dataset;

/// The 19-byte header of a binary COPY stream.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer of a binary COPY stream.
pub const TRAILER: &[u8] = &[0xff, 0xff];

/// Where the fields of a staging row are: the dataset's columns, then `_extra`, `_load_id`,
/// `_record_index`, the row's hash and (when kept) its raw text.
///
/// ```
/// let reg = tier_core::Registry::builtin();
/// let layout = tier_core::sink::copy::Layout::of(&reg.get("weather").unwrap());
/// assert_eq!((layout.load_id, layout.record_index), (layout.extra + 1, layout.extra + 2));
/// assert_eq!(layout.fields, layout.raw + 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `_extra`.
    pub extra: usize,
    /// `_load_id`.
    pub load_id: usize,
    /// `_record_index`.
    pub record_index: usize,
    /// The row's hash (128 bits).
    pub hash: usize,
    /// The record's raw text, when kept.
    pub raw: usize,
    /// Fields of a row with its raw text.
    pub fields: usize,
}

impl Layout {
    /// The layout of the staging rows of `dataset`.
    pub fn of(dataset: &Dataset) -> Layout {
        let n = dataset.columns.len();
        Layout {
            extra: n,
            load_id: n + 1,
            record_index: n + 2,
            hash: n + 3,
            raw: n + 4,
            fields: n + 5,
        }
    }

    /// The rejects-table tuple (`_load_id`, `_record_index`, `reason`, `raw`) of a staging row
    /// rejected for `reason` (a conflicting duplicate).
    pub fn reject<'a>(
        &self,
        fields: &[Option<&'a [u8]>],
        reason: &'a [u8],
    ) -> [Option<&'a [u8]>; 4] {
        [
            fields[self.load_id],
            fields[self.record_index],
            Some(reason),
            fields.get(self.raw).copied().flatten(),
        ]
    }
}

/// Encodes rows and rejects of one load as staging-table COPY rows.
pub struct CopyEncoder {
    columns: usize,
    keep_rejects: bool,
    load_id: i64,
    keep_raw: bool,
}

impl CopyEncoder {
    /// An encoder for a load of `dataset` with ledger id `load_id`; with `keep_raw`, each valid
    /// row also carries its raw text (a last `_raw` column).
    pub fn new(dataset: &Dataset, load_id: i64, keep_raw: bool) -> Self {
        CopyEncoder {
            columns: dataset.columns.len(),
            keep_rejects: false,
            load_id,
            keep_raw,
        }
    }

    /// The encoder, also keeping each batch's rejects (to hand them to an observer).
    pub fn keeping_rejects(mut self, keep: bool) -> Self {
        self.keep_rejects = keep;
        self
    }

    fn fields(&self) -> i16 {
        (self.columns + 4 + self.keep_raw as usize) as i16
    }
}

#[inline]
fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

#[inline]
fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

/// Encodes a `jsonb` value given as JSON text.
pub fn jsonb(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as i32 + 1).to_be_bytes());
    out.push(1);
    out.extend_from_slice(text.as_bytes());
}

/// Encodes one tuple of already encoded fields (`None` is null).
pub fn tuple(out: &mut Vec<u8>, fields: &[Option<&[u8]>]) {
    out.extend_from_slice(&(fields.len() as i16).to_be_bytes());
    for f in fields {
        match f {
            Some(bytes) => field(out, bytes),
            None => null(out),
        }
    }
}

/// Encodes one column value.
pub fn value(out: &mut Vec<u8>, v: &Value<'_>) {
    match v {
        Value::Null => null(out),
        Value::Text(s) => field(out, s.as_bytes()),
        Value::Timestamp(t) => field(out, &t.pg_micros().to_be_bytes()),
        Value::Float(f) => field(out, &f.to_be_bytes()),
        Value::SmallInt(i) => field(out, &i.to_be_bytes()),
        Value::Integer(i) => field(out, &i.to_be_bytes()),
        Value::BigInt(i) => field(out, &i.to_be_bytes()),
        Value::Bool(b) => field(out, &[*b as u8]),
        Value::Date(d) => field(out, &(d - PG_EPOCH_OFFSET_DAYS).to_be_bytes()),
        Value::Json(s) => jsonb(out, s),
    }
}

impl Encode for CopyEncoder {
    fn keep_rejects(&self) -> bool {
        self.keep_rejects
    }

    fn row(&self, row: &Row<'_>, raw: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        out.extend_from_slice(&self.fields().to_be_bytes());
        let start = out.len();
        for v in &row.values {
            value(out, v);
        }
        match &row.extra {
            Some(e) => jsonb(out, e),
            None => null(out),
        }
        let mut h = Xxh3::new();
        h.update(&out[start..]);
        let hash = h.digest128().to_be_bytes();
        field(out, &self.load_id.to_be_bytes());
        let at = out.len() + 4;
        field(out, &(row.index as i64).to_be_bytes());
        field(out, &hash);
        if self.keep_raw {
            field(out, raw); // a valid record is UTF-8 without NUL bytes
        }
        Some(at)
    }

    fn reject(&self, reject: &Reject, out: &mut Vec<u8>) -> Option<usize> {
        out.extend_from_slice(&4i16.to_be_bytes());
        field(out, &self.load_id.to_be_bytes());
        let at = out.len() + 4;
        field(out, &(reject.index as i64).to_be_bytes());
        field(out, reject.reason.to_string().as_bytes());
        field(out, reject.raw.as_bytes());
        Some(at)
    }
}
