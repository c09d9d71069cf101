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

/// Splits a binary COPY row into its fields; `None` for NULL. Returns the fields and the bytes
/// after the row.
pub fn copy_fields<'b>(mut b: &'b [u8], out: &mut Vec<Option<&'b [u8]>>) -> &'b [u8] {
    out.clear();
    let n = i16::from_be_bytes([b[0], b[1]]);
    b = &b[2..];
    for _ in 0..n {
        let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        b = &b[4..];
        if len < 0 {
            out.push(None);
        } else {
            let (f, rest) = b.split_at(len as usize);
            out.push(Some(f));
            b = rest;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Encode;

    #[test]
    fn the_layout_is_the_ddl_and_a_row_decodes_where_it_says() {
        let reg = crate::Registry::builtin();
        for name in ["weather", "track_events"] {
            let d = reg.get(name).unwrap();
            let layout = Layout::of(&d);
            // The staging table's columns, in the DDL's order, are the layout's.
            let cols = crate::db::ddl::target_columns(&d);
            let at = |n: &str| cols.iter().position(|c| c.0 == n).unwrap();
            assert_eq!(at("_extra"), layout.extra);
            assert_eq!(at("_load_id"), layout.load_id);
            assert_eq!(at("_record_index"), layout.record_index);
            assert_eq!(at("_row_hash"), layout.hash);
            assert_eq!(
                cols.len(),
                layout.raw,
                "`_raw` follows the target's columns"
            );

            let row = Row {
                index: 7,
                values: d.columns.iter().map(|_| Value::Null).collect(),
                extra: Some("{\"k\":1}".into()),
            };
            let mut out = Vec::new();
            CopyEncoder::new(&d, 42, true).row(&row, b"{\"raw\":1}", &mut out);
            let mut fields = Vec::new();
            let rest = copy_fields(&out, &mut fields);
            assert!(rest.is_empty());
            assert_eq!(fields.len(), layout.fields);
            assert!(fields[..layout.extra].iter().all(Option::is_none));
            assert_eq!(fields[layout.extra], Some(&b"\x01{\"k\":1}"[..]));
            assert_eq!(fields[layout.load_id], Some(&42i64.to_be_bytes()[..]));
            assert_eq!(fields[layout.record_index], Some(&7i64.to_be_bytes()[..]));
            assert_eq!(fields[layout.hash].map(<[u8]>::len), Some(16));
            let reject = layout.reject(&fields, b"conflicting_duplicate");
            assert_eq!(reject[3], Some(&b"{\"raw\":1}"[..]));
            // Encoded again as a tuple, the reject decodes to itself.
            let mut t = Vec::new();
            tuple(&mut t, &reject);
            let mut back = Vec::new();
            copy_fields(&t, &mut back);
            assert_eq!(back, reject);
        }
    }
}

#[cfg(test)]
mod examples {
    #[test]
    fn layout_of_weather() {
        let reg = crate::Registry::builtin();
        let layout = super::Layout::of(&reg.get("weather").unwrap());
        assert_eq!(
            (layout.load_id, layout.record_index),
            (layout.extra + 1, layout.extra + 2)
        );
        assert_eq!(layout.fields, layout.raw + 1);
    }
}
