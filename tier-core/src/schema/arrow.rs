//! Arrow: a definition's schema, record batches built from encoded rows (for the lake and for
//! readers of Arrow), and rows read back from record batches.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float64Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::extension::Json;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::schema::row::{Row, Value};
use crate::schema::timestamp::{Timestamp, PG_EPOCH_OFFSET_DAYS, PG_EPOCH_OFFSET_MICROS};
use crate::schema::{ColumnType, Dataset};

/// The Arrow type of a column type.
pub fn data_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text | ColumnType::Jsonb => DataType::Utf8,
        ColumnType::SmallInt => DataType::Int16,
        ColumnType::Integer => DataType::Int32,
        ColumnType::BigInt => DataType::Int64,
        ColumnType::Double => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::Date => DataType::Date32,
    }
}

fn json_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable).with_extension_type(Json::default())
}

/// The schema of a dataset's lake files: its columns, then `_extra`, `_load_id`,
/// `_record_index`.
pub fn rows_schema(dataset: &Dataset) -> SchemaRef {
    let mut fields: Vec<Field> = dataset
        .columns
        .iter()
        .map(|c| match c.ty {
            ColumnType::Jsonb => json_field(&c.name, !c.required),
            ty => Field::new(&c.name, data_type(ty), !c.required),
        })
        .collect();
    fields.push(json_field("_extra", true));
    fields.push(Field::new("_load_id", DataType::Int64, false));
    fields.push(Field::new("_record_index", DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// The schema of the rejects files.
pub fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("_load_id", DataType::Int64, false),
        Field::new("_record_index", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, false),
    ]))
}

/// One column's builder.
#[derive(Debug)]
enum Column {
    Text(StringBuilder),
    Json(StringBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    Bool(BooleanBuilder),
    Ts(TimestampMicrosecondBuilder),
    Date(Date32Builder),
}

impl Column {
    fn new(ty: ColumnType) -> Column {
        match ty {
            ColumnType::Text => Column::Text(StringBuilder::new()),
            ColumnType::Jsonb => Column::Json(StringBuilder::new()),
            ColumnType::SmallInt => Column::I16(Int16Builder::new()),
            ColumnType::Integer => Column::I32(Int32Builder::new()),
            ColumnType::BigInt => Column::I64(Int64Builder::new()),
            ColumnType::Double => Column::F64(Float64Builder::new()),
            ColumnType::Boolean => Column::Bool(BooleanBuilder::new()),
            ColumnType::Timestamptz => {
                Column::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            ColumnType::Date => Column::Date(Date32Builder::new()),
        }
    }

    /// Appends one field of a binary COPY row (`None` is NULL).
    fn push(&mut self, field: Option<&[u8]>) {
        fn be<const N: usize>(b: &[u8]) -> [u8; N] {
            b.try_into().unwrap_or([0; N])
        }
        let Some(b) = field else {
            match self {
                Column::Text(x) | Column::Json(x) => x.append_null(),
                Column::I16(x) => x.append_null(),
                Column::I32(x) => x.append_null(),
                Column::I64(x) => x.append_null(),
                Column::F64(x) => x.append_null(),
                Column::Bool(x) => x.append_null(),
                Column::Ts(x) => x.append_null(),
                Column::Date(x) => x.append_null(),
            }
            return;
        };
        match self {
            // Text was checked to be UTF-8 when it was read, and encoded as it was.
            Column::Text(x) => x.append_value(utf8(b)),
            Column::Json(x) => x.append_value(utf8(&b[1.min(b.len())..])),
            Column::I16(x) => x.append_value(i16::from_be_bytes(be(b))),
            Column::I32(x) => x.append_value(i32::from_be_bytes(be(b))),
            Column::I64(x) => x.append_value(i64::from_be_bytes(be(b))),
            Column::F64(x) => x.append_value(f64::from_be_bytes(be(b))),
            Column::Bool(x) => x.append_value(b.first().is_some_and(|&v| v != 0)),
            Column::Ts(x) => x.append_value(i64::from_be_bytes(be(b)) + PG_EPOCH_OFFSET_MICROS),
            Column::Date(x) => x.append_value(i32::from_be_bytes(be(b)) + PG_EPOCH_OFFSET_DAYS),
        }
    }

    /// Appends one value of a validated row (of the column's type: validation made it so).
    fn push_value(&mut self, v: &Value<'_>) {
        match (self, v) {
            (Column::Text(x), Value::Text(s)) | (Column::Json(x), Value::Json(s)) => {
                x.append_value(s)
            }
            (Column::I16(x), Value::SmallInt(i)) => x.append_value(*i),
            (Column::I32(x), Value::Integer(i)) => x.append_value(*i),
            (Column::I64(x), Value::BigInt(i)) => x.append_value(*i),
            (Column::F64(x), Value::Float(f)) => x.append_value(*f),
            (Column::Bool(x), Value::Bool(b)) => x.append_value(*b),
            (Column::Ts(x), Value::Timestamp(t)) => x.append_value(t.0),
            (Column::Date(x), Value::Date(d)) => x.append_value(*d),
            (c, _) => c.push(None),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Text(x) | Column::Json(x) => Arc::new(x.finish()),
            Column::I16(x) => Arc::new(x.finish()),
            Column::I32(x) => Arc::new(x.finish()),
            Column::I64(x) => Arc::new(x.finish()),
            Column::F64(x) => Arc::new(x.finish()),
            Column::Bool(x) => Arc::new(x.finish()),
            Column::Ts(x) => Arc::new(x.finish()),
            Column::Date(x) => Arc::new(x.finish()),
        }
    }
}

/// Text that the reader checked to be UTF-8.
fn utf8(b: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(b).is_ok());
    // SAFETY: every text field of an encoded row comes from a `&str`.
    unsafe { std::str::from_utf8_unchecked(b) }
}

/// Builds record batches of a schema from binary COPY rows (the fields in schema order) or
/// from validated rows.
#[derive(Debug)]
pub struct Builder {
    schema: SchemaRef,
    columns: Vec<Column>,
    rows: usize,
    /// The `_load_id` of rows appended as [`Row`]s.
    load_id: i64,
}

impl Builder {
    /// A builder of the dataset's rows (its columns, `_extra`, `_load_id`, `_record_index`).
    pub fn rows(dataset: &Dataset) -> Builder {
        let mut columns: Vec<Column> = dataset.columns.iter().map(|c| Column::new(c.ty)).collect();
        columns.push(Column::new(ColumnType::Jsonb));
        columns.push(Column::new(ColumnType::BigInt));
        columns.push(Column::new(ColumnType::BigInt));
        Builder {
            schema: rows_schema(dataset),
            columns,
            rows: 0,
            load_id: 0,
        }
    }

    /// A builder of the rows of load `load_id` of the dataset, appended as [`Row`]s.
    pub fn rows_of_load(dataset: &Dataset, load_id: i64) -> Builder {
        Builder {
            load_id,
            ..Builder::rows(dataset)
        }
    }

    /// A builder of rejects (`_load_id`, `_record_index`, `reason`, `raw`).
    pub fn rejects() -> Builder {
        Builder {
            schema: rejects_schema(),
            columns: vec![
                Column::new(ColumnType::BigInt),
                Column::new(ColumnType::BigInt),
                Column::new(ColumnType::Text),
                Column::new(ColumnType::Text),
            ],
            rows: 0,
            load_id: 0,
        }
    }

    /// Appends a row from its fields (at least as many as the schema has; more are ignored).
    pub fn push(&mut self, fields: &[Option<&[u8]>]) {
        for (c, f) in self.columns.iter_mut().zip(fields) {
            c.push(*f);
        }
        self.rows += 1;
    }

    /// Appends a validated row of the dataset of a [`Builder::rows_of_load`] builder: its
    /// values, `_extra`, the load's id and the row's index.
    pub fn push_row(&mut self, row: &Row<'_>) {
        let n = row.values.len();
        for (c, v) in self.columns.iter_mut().zip(&row.values) {
            c.push_value(v);
        }
        if let [extra, load_id, index] = &mut self.columns[n..] {
            match &row.extra {
                Some(e) => extra.push_value(&Value::Json(Cow::Borrowed(e))),
                None => extra.push(None),
            }
            load_id.push_value(&Value::BigInt(self.load_id));
            index.push_value(&Value::BigInt(row.index as i64));
        }
        self.rows += 1;
    }

    /// Rows appended since the last batch.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was appended since the last batch.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The rows appended so far as a batch; the builder starts again empty.
    pub fn finish(&mut self) -> RecordBatch {
        self.rows = 0;
        let arrays = self.columns.iter_mut().map(Column::finish).collect();
        RecordBatch::try_new(self.schema.clone(), arrays).expect("arrays follow the schema")
    }
}

/// A batch of rows with `base` added to each `_record_index` (a batch's indexes counted from the
/// start of the input).
pub fn add_to_index(batch: &RecordBatch, base: i64) -> RecordBatch {
    let Ok(i) = batch.schema().index_of("_record_index") else {
        return batch.clone();
    };
    let mut columns = batch.columns().to_vec();
    let index = columns[i]
        .as_primitive::<Int64Type>()
        .unary::<_, Int64Type>(|x| x + base);
    columns[i] = Arc::new(index);
    RecordBatch::try_new(batch.schema(), columns).expect("the arrays of the batch, one replaced")
}

/// Checks that a lake file's schema holds a dataset's rows: every column of the definition with
/// its type, `_extra` and `_record_index`. Names the first column that does not match.
pub fn check_schema(dataset: &Dataset, found: &Schema) -> Result<(), String> {
    check_fields(&rows_schema(dataset), found)
}

/// Checks that a schema has every field of `want` (but `_load_id`, which a lake does not need)
/// with its type; names the first that does not match. A field that may be null can be
/// missing: a file written before its column was added holds nulls there.
pub fn check_fields(want: &Schema, found: &Schema) -> Result<(), String> {
    for f in want.fields() {
        if f.name() == "_load_id" {
            continue;
        }
        match found.field_with_name(f.name()) {
            Err(_) if f.is_nullable() => {}
            Err(_) => return Err(format!("column {} is missing", f.name())),
            Ok(g) if g.data_type() != f.data_type() => {
                return Err(format!(
                    "column {} is {}, not {}",
                    f.name(),
                    g.data_type(),
                    f.data_type()
                ))
            }
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Reads rows back from a batch of a lake file whose schema [`check_schema`] accepted.
pub struct BatchRows {
    columns: Vec<ArrayRef>,
    types: Vec<ColumnType>,
    extra: ArrayRef,
    index: ArrayRef,
}

impl BatchRows {
    /// The dataset's columns of `batch`, by name.
    pub fn new(dataset: &Dataset, batch: &RecordBatch) -> Option<BatchRows> {
        let col = |n: &str| batch.column_by_name(n).cloned();
        Some(BatchRows {
            columns: dataset
                .columns
                .iter()
                .map(|c| {
                    col(&c.name).unwrap_or_else(|| {
                        arrow_array::new_null_array(&data_type(c.ty), batch.num_rows())
                    })
                })
                .collect(),
            types: dataset.columns.iter().map(|c| c.ty).collect(),
            extra: col("_extra")
                .unwrap_or_else(|| arrow_array::new_null_array(&DataType::Utf8, batch.num_rows())),
            index: col("_record_index")?,
        })
    }

    /// The row at `i`.
    pub fn row(&self, i: usize) -> Row<'_> {
        let values = self
            .columns
            .iter()
            .zip(&self.types)
            .map(|(a, ty)| value(a, *ty, i))
            .collect();
        let extra =
            (!self.extra.is_null(i)).then(|| self.extra.as_string::<i32>().value(i).to_string());
        Row {
            index: self.index.as_primitive::<Int64Type>().value(i) as u64,
            values,
            extra,
        }
    }
}

fn value(a: &ArrayRef, ty: ColumnType, i: usize) -> Value<'_> {
    if a.is_null(i) {
        return Value::Null;
    }
    match ty {
        ColumnType::Text => Value::Text(Cow::Borrowed(a.as_string::<i32>().value(i))),
        ColumnType::Jsonb => Value::Json(Cow::Borrowed(a.as_string::<i32>().value(i))),
        ColumnType::SmallInt => Value::SmallInt(a.as_primitive::<Int16Type>().value(i)),
        ColumnType::Integer => Value::Integer(a.as_primitive::<Int32Type>().value(i)),
        ColumnType::BigInt => Value::BigInt(a.as_primitive::<Int64Type>().value(i)),
        ColumnType::Double => Value::Float(a.as_primitive::<Float64Type>().value(i)),
        ColumnType::Boolean => Value::Bool(a.as_boolean().value(i)),
        ColumnType::Timestamptz => Value::Timestamp(Timestamp(
            a.as_primitive::<TimestampMicrosecondType>().value(i),
        )),
        ColumnType::Date => Value::Date(a.as_primitive::<Date32Type>().value(i)),
    }
}
