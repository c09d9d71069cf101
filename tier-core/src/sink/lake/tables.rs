//! The Iceberg tables a load appends to: their columns from the dataset, and a part's day.

use super::*;

/// A load's files appended to one Iceberg table.
#[derive(Serialize, Deserialize)]
pub(super) struct TableAppend {
    pub(super) table: String,
    pub(super) columns: Vec<iceberg::Column>,
    pub(super) day_of: Option<String>,
    pub(super) files: Vec<iceberg::NewFile>,
}

/// The Iceberg columns of a dataset's lake table: its columns, then `_extra`, `_load_id`,
/// `_record_index` (as [`super::arrow::rows_schema`] writes them).
pub(super) fn table_columns(dataset: &Dataset) -> Vec<iceberg::Column> {
    let col = |name: &str, ty: &str, required: bool| iceberg::Column {
        name: name.to_string(),
        ty: ty.to_string(),
        required,
    };
    let mut out: Vec<iceberg::Column> = dataset
        .columns
        .iter()
        .map(|c| {
            let ty = match c.ty {
                ColumnType::Text | ColumnType::Jsonb => "string",
                ColumnType::SmallInt | ColumnType::Integer => "int",
                ColumnType::BigInt => "long",
                ColumnType::Double => "double",
                ColumnType::Boolean => "boolean",
                ColumnType::Timestamptz => "timestamptz",
                ColumnType::Date => "date",
            };
            col(&c.name, ty, c.required)
        })
        .collect();
    out.push(col("_extra", "string", false));
    out.push(col("_load_id", "long", true));
    out.push(col("_record_index", "long", true));
    out
}

/// The Iceberg columns of a rejects table.
pub(super) fn rejects_columns() -> Vec<iceberg::Column> {
    [
        ("_load_id", "long"),
        ("_record_index", "long"),
        ("reason", "string"),
        ("raw", "string"),
    ]
    .into_iter()
    .map(|(name, ty)| iceberg::Column {
        name: name.into(),
        ty: ty.into(),
        required: true,
    })
    .collect()
}

/// The day partition of a part from its path (`…/date=2024-05-01/part-….parquet`).
pub(super) fn day_of_rel(rel: &str) -> Option<i32> {
    rel.split('/')
        .find_map(|p| p.strip_prefix("date="))
        .and_then(crate::schema::timestamp::parse_date)
}
