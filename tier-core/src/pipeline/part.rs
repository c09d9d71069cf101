//! Lake files back out: the rows of a Parquet part written by tier, as the pipeline's batches,
//! for loading the warehouse from the lake.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};
use crate::pipeline::{Encode, Processed, ReadOptions};
use crate::read::Location;
use crate::schema::arrow::{check_fields, check_schema, BatchRows};
use crate::schema::row::{Row, Value};
use crate::schema::timestamp::format_date;
use crate::schema::validate::Reject;
use crate::schema::Dataset;
use arrow_array::RecordBatch;

/// A lake part opened for reading, its schema checked against its dataset.
pub struct Part {
    path: PathBuf,
    dataset: Dataset,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    /// A part of `<table>_rejects`: rejects with their reasons, no rows.
    rejects: bool,
}

/// The table a part belongs to: the first folder above it that is not a `date=` partition.
fn table_folder(path: &Path) -> Option<String> {
    path.ancestors()
        .skip(1)
        .filter_map(|a| a.file_name()?.to_str())
        .find(|n| !n.starts_with("date="))
        .map(str::to_string)
}

impl Part {
    /// Opens a part: the dataset is forced, else the one whose table is the part's folder.
    /// A file that tier did not write, or whose columns do not match the definition, is refused
    /// naming the first column that does not match.
    pub fn open(path: &Path, opts: &ReadOptions) -> Result<Part> {
        let refuse = |detail: String| Error::Input {
            path: path.to_path_buf(),
            detail,
        };
        let folder = table_folder(path).unwrap_or_default();
        let rejects = folder.ends_with("_rejects");
        let table = folder.strip_suffix("_rejects").unwrap_or(&folder);
        let dataset = match &opts.dataset {
            Some(d) => d.clone(),
            None => {
                opts.datasets
                    .all()
                    .iter()
                    .find(|d| d.table == table)
                    .cloned()
                    .ok_or_else(|| {
                        refuse(format!(
                            "not in the folder of a known dataset's table (found `{folder}`); name its dataset"
                        ))
                    })?
            }
        };
        let file = if let Location::Object(url) = Location::parse(path)? {
            // Parquet is read by seeking: an object is fetched into a temporary file first.
            let mut f = tempfile::tempfile().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            let mut object = crate::read::object::open(&url)?;
            std::io::copy(&mut object, &mut f).map_err(|e| Error::io(path, e))?;
            f
        } else {
            File::open(path).map_err(|e| Error::io(path, e))?
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| refuse(format!("not a Parquet file ({e})")))?;
        let checked = if rejects {
            check_fields(&crate::schema::arrow::rejects_schema(), builder.schema())
        } else {
            check_schema(&dataset, builder.schema())
        };
        checked.map_err(|m| refuse(format!("not a lake file of dataset {}: {m}", dataset.name)))?;
        let reader = builder
            .with_batch_size(8192)
            .build()
            .map_err(|e| refuse(e.to_string()))?;
        Ok(Part {
            path: path.to_path_buf(),
            dataset,
            reader,
            rejects,
        })
    }

    /// Whether the part holds rejects (it is a part of `<table>_rejects`).
    pub fn is_rejects(&self) -> bool {
        self.rejects
    }

    /// The part's dataset.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// Hands the part's rows, encoded by `enc`, to `sink` in batches; rows keep their
    /// `_record_index`. With `raw`, each row carries a JSON text of its values (the lake keeps no
    /// raw record).
    pub fn run(
        self,
        enc: &dyn Encode,
        sink: &mut dyn FnMut(&Processed) -> Result<()>,
    ) -> Result<()> {
        let mut raw = String::new();
        for batch in self.reader {
            let batch = batch.map_err(|e| Error::Input {
                path: self.path.clone(),
                detail: e.to_string(),
            })?;
            if self.rejects {
                sink(&rejects_of(&self.path, &batch, enc)?)?;
                continue;
            }
            let rows = BatchRows::new(&self.dataset, &batch).ok_or_else(|| Error::Input {
                path: self.path.clone(),
                detail: "a batch without the dataset's columns".into(),
            })?;
            let mut out = Processed::new(enc);
            for i in 0..batch.num_rows() {
                let row = rows.row(i);
                raw.clear();
                row_json(&self.dataset, &row, &mut raw);
                out.push_row(row, raw.as_bytes(), enc);
            }
            out.finish(0);
            sink(&out)?;
        }
        Ok(())
    }
}

/// The rejects of a batch of a rejects part, with their indexes, reasons and raw texts.
fn rejects_of(path: &Path, batch: &RecordBatch, enc: &dyn Encode) -> Result<Processed> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    let bad = |detail: String| Error::Input {
        path: path.to_path_buf(),
        detail,
    };
    let col = |n: &str| {
        batch
            .column_by_name(n)
            .ok_or_else(|| bad(format!("column {n} is missing")))
    };
    let (index, reason, raw) = (col("_record_index")?, col("reason")?, col("raw")?);
    let (index, reason, raw) = (
        index.as_primitive::<Int64Type>(),
        reason.as_string::<i32>(),
        raw.as_string::<i32>(),
    );
    let mut out = Processed::new(enc);
    for i in 0..batch.num_rows() {
        let reason = reason.value(i).parse().map_err(bad)?;
        let reject = Reject {
            index: index.value(i) as u64,
            reason,
            raw: raw.value(i).to_string(),
        };
        out.push_reject(reject, enc);
    }
    out.finish(0);
    Ok(out)
}

/// A JSON text of a row's values (for a rejects table's `raw`).
fn row_json(dataset: &Dataset, row: &Row<'_>, out: &mut String) {
    use std::fmt::Write;
    out.push('{');
    let mut first = true;
    for (c, v) in dataset.columns.iter().zip(&row.values) {
        if matches!(v, Value::Null) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{}:", serde_json::Value::String(c.name.clone()));
        let _ = match v {
            Value::Null => Ok(()),
            Value::Text(s) => write!(out, "{}", serde_json::Value::String(s.to_string())),
            Value::Json(s) => write!(out, "{s}"),
            Value::Timestamp(t) => write!(out, "\"{t}\""),
            Value::Date(d) => write!(out, "\"{}\"", format_date(*d)),
            Value::Float(f) => write!(out, "{f:?}"),
            Value::SmallInt(i) => write!(out, "{i}"),
            Value::Integer(i) => write!(out, "{i}"),
            Value::BigInt(i) => write!(out, "{i}"),
            Value::Bool(b) => write!(out, "{b}"),
        };
    }
    out.push('}');
}
