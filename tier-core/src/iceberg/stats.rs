//! A data file's entry for a manifest, from its Parquet footer: size, rows, and per column the
//! bytes, values, nulls and bounds readers prune by.

use std::fs::File;
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;

use super::manifest::DataFile;
use super::metadata::Schema;
use crate::error::{Error, Result};

/// Bounds longer than this are left out (a cut string is no upper bound).
const MAX_BOUND: usize = 64;

#[derive(Clone, PartialEq, PartialOrd)]
enum Bound {
    Bool(bool),
    I32(i32),
    I64(i64),
    F64(f64),
    Bytes(Vec<u8>),
}

impl Bound {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Bound::Bool(b) => vec![u8::from(*b)],
            Bound::I32(n) => n.to_le_bytes().to_vec(),
            Bound::I64(n) => n.to_le_bytes().to_vec(),
            Bound::F64(x) => x.to_le_bytes().to_vec(),
            Bound::Bytes(b) => b.clone(),
        }
    }
}

fn bounds(s: &Statistics) -> Option<(Bound, Bound)> {
    Some(match s {
        Statistics::Boolean(v) => (Bound::Bool(*v.min_opt()?), Bound::Bool(*v.max_opt()?)),
        Statistics::Int32(v) => (Bound::I32(*v.min_opt()?), Bound::I32(*v.max_opt()?)),
        Statistics::Int64(v) => (Bound::I64(*v.min_opt()?), Bound::I64(*v.max_opt()?)),
        Statistics::Double(v) => (Bound::F64(*v.min_opt()?), Bound::F64(*v.max_opt()?)),
        Statistics::ByteArray(v) => {
            let (lo, hi) = (v.min_opt()?.data(), v.max_opt()?.data());
            if !v.min_is_exact() || !v.max_is_exact() || lo.len().max(hi.len()) > MAX_BOUND {
                return None;
            }
            (Bound::Bytes(lo.to_vec()), Bound::Bytes(hi.to_vec()))
        }
        _ => return None,
    })
}

/// The entry of the Parquet file at `local` for a manifest of a table with `schema` (its path
/// and partition left for the caller).
pub fn data_file(local: &Path, schema: &Schema) -> Result<DataFile> {
    let bad =
        |e: parquet::errors::ParquetError| Error::io(local, std::io::Error::other(e.to_string()));
    let file = File::open(local).map_err(|e| Error::io(local, e))?;
    let size = file.metadata().map_err(|e| Error::io(local, e))?.len();
    let reader = SerializedFileReader::new(file).map_err(bad)?;
    let meta = reader.metadata();
    let mut out = DataFile {
        records: meta.file_metadata().num_rows(),
        size: size as i64,
        ..DataFile::default()
    };
    let columns = meta.file_metadata().schema_descr().columns().to_vec();
    for (i, col) in columns.iter().enumerate() {
        let Some(id) = schema.id_of(col.name()) else {
            continue;
        };
        let (mut bytes, mut values, mut nulls) = (0i64, 0i64, Some(0i64));
        let mut range: Option<(Bound, Bound)> = None;
        let mut exact = true;
        for rg in meta.row_groups() {
            let cc = rg.column(i);
            bytes += cc.compressed_size();
            values += cc.num_values();
            match cc.statistics() {
                Some(s) => {
                    nulls = nulls.zip(s.null_count_opt()).map(|(a, b)| a + b as i64);
                    if rg.num_rows() > s.null_count_opt().unwrap_or(0) as i64 {
                        match (bounds(s), range.take()) {
                            (Some((lo, hi)), None) => range = Some((lo, hi)),
                            (Some((lo, hi)), Some((a, b))) => {
                                let lo = if lo < a { lo } else { a };
                                let hi = if hi > b { hi } else { b };
                                range = Some((lo, hi));
                            }
                            (None, _) => exact = false,
                        }
                    }
                }
                None => {
                    nulls = None;
                    exact = false;
                }
            }
        }
        out.column_sizes.push((id, bytes));
        out.value_counts.push((id, values));
        if let Some(n) = nulls {
            out.null_counts.push((id, n));
        }
        if let (true, Some((lo, hi))) = (exact, range) {
            out.lower.push((id, lo.bytes()));
            out.upper.push((id, hi.bytes()));
        }
    }
    Ok(out)
}
