//! Manifests and manifest lists: the Avro files of an Iceberg snapshot (format version 2).
//!
//! Records are encoded by `apache-avro`; the container around them is [`super::avro`]'s.

use apache_avro::types::Value;
use apache_avro::Reader;

use super::avro::Container;
use crate::error::{Error, Result};

/// A data file added by a snapshot, with the statistics readers prune by.
#[derive(Debug, Clone, Default)]
pub struct DataFile {
    /// Its URI.
    pub path: String,
    /// Its day partition: `None` for an unpartitioned table, `Some(None)` for null.
    pub day: Option<Option<i32>>,
    /// Rows.
    pub records: i64,
    /// Bytes.
    pub size: i64,
    /// Bytes per field id.
    pub column_sizes: Vec<(i32, i64)>,
    /// Values (nulls included) per field id.
    pub value_counts: Vec<(i32, i64)>,
    /// Nulls per field id.
    pub null_counts: Vec<(i32, i64)>,
    /// The least value per field id (Iceberg's single-value form).
    pub lower: Vec<(i32, Vec<u8>)>,
    /// The greatest value per field id.
    pub upper: Vec<(i32, Vec<u8>)>,
}

/// An entry of a manifest list.
#[derive(Debug, Clone)]
pub struct ManifestFile {
    /// The manifest's URI.
    pub path: String,
    /// Its length in bytes.
    pub length: i64,
    /// The partition spec its files were written with.
    pub spec_id: i32,
    /// 0: data files, 1: deletes.
    pub content: i32,
    /// The sequence number of the snapshot that added it.
    pub sequence_number: i64,
    /// The least data sequence number of its files.
    pub min_sequence_number: i64,
    /// The snapshot that added it.
    pub added_snapshot_id: i64,
    /// Files added, kept and deleted.
    pub files: [i32; 3],
    /// Rows added, kept and deleted.
    pub rows: [i64; 3],
    /// Per partition field: contains null, contains NaN, lower and upper bound.
    pub partitions: Option<Vec<PartitionSummary>>,
}

/// What a manifest holds of one partition field.
#[derive(Debug, Clone)]
pub struct PartitionSummary {
    /// A null value is there.
    pub contains_null: bool,
    /// A NaN is there (`None`: unknown).
    pub contains_nan: Option<bool>,
    /// The least value.
    pub lower: Option<Vec<u8>>,
    /// The greatest value.
    pub upper: Option<Vec<u8>>,
}

pub(super) fn bad(what: &str, e: impl std::fmt::Display) -> Error {
    Error::io(
        what,
        std::io::Error::other(format!("Iceberg manifest: {e}")),
    )
}

fn map_schema(id: i32, key: i32, value: i32, value_ty: &str) -> String {
    format!(
        r#"{{"name":"{name}","type":["null",{{"type":"array","logicalType":"map","items":{{"type":"record","name":"k{key}_v{value}","fields":[{{"name":"key","type":"int","field-id":{key}}},{{"name":"value","type":"{value_ty}","field-id":{value}}}]}}}}],"default":null,"field-id":{id}}}"#,
        name = match id {
            108 => "column_sizes",
            109 => "value_counts",
            110 => "null_value_counts",
            125 => "lower_bounds",
            _ => "upper_bounds",
        }
    )
}

/// The Avro schema of a manifest's entries; `day` names the partition field when there is one.
fn entry_schema(day: Option<&str>) -> String {
    let partition = match day {
        Some(name) => format!(
            r#"{{"name":"{name}","type":["null",{{"type":"int","logicalType":"date"}}],"default":null,"field-id":1000}}"#
        ),
        None => String::new(),
    };
    format!(
        r#"{{"type":"record","name":"manifest_entry","fields":[
{{"name":"status","type":"int","field-id":0}},
{{"name":"snapshot_id","type":["null","long"],"default":null,"field-id":1}},
{{"name":"sequence_number","type":["null","long"],"default":null,"field-id":3}},
{{"name":"file_sequence_number","type":["null","long"],"default":null,"field-id":4}},
{{"name":"data_file","type":{{"type":"record","name":"r2","fields":[
{{"name":"content","type":"int","field-id":134}},
{{"name":"file_path","type":"string","field-id":100}},
{{"name":"file_format","type":"string","field-id":101}},
{{"name":"partition","type":{{"type":"record","name":"r102","fields":[{partition}]}},"field-id":102}},
{{"name":"record_count","type":"long","field-id":103}},
{{"name":"file_size_in_bytes","type":"long","field-id":104}},
{},
{},
{},
{},
{}
]}},"field-id":2}}]}}"#,
        map_schema(108, 117, 118, "long"),
        map_schema(109, 119, 120, "long"),
        map_schema(110, 121, 122, "long"),
        map_schema(125, 126, 127, "bytes"),
        map_schema(128, 129, 130, "bytes"),
    )
}

/// The Avro schema of a manifest list's entries.
const LIST_SCHEMA: &str = r#"{"type":"record","name":"manifest_file","fields":[
{"name":"manifest_path","type":"string","field-id":500},
{"name":"manifest_length","type":"long","field-id":501},
{"name":"partition_spec_id","type":"int","field-id":502},
{"name":"content","type":"int","field-id":517},
{"name":"sequence_number","type":"long","field-id":515},
{"name":"min_sequence_number","type":"long","field-id":516},
{"name":"added_snapshot_id","type":"long","field-id":503},
{"name":"added_files_count","type":"int","field-id":504},
{"name":"existing_files_count","type":"int","field-id":505},
{"name":"deleted_files_count","type":"int","field-id":506},
{"name":"added_rows_count","type":"long","field-id":512},
{"name":"existing_rows_count","type":"long","field-id":513},
{"name":"deleted_rows_count","type":"long","field-id":514},
{"name":"partitions","type":["null",{"type":"array","items":{"type":"record","name":"r508","fields":[
{"name":"contains_null","type":"boolean","field-id":509},
{"name":"contains_nan","type":["null","boolean"],"default":null,"field-id":518},
{"name":"lower_bound","type":["null","bytes"],"default":null,"field-id":510},
{"name":"upper_bound","type":["null","bytes"],"default":null,"field-id":511}]},"element-id":508}],"default":null,"field-id":507}]}"#;

fn some(v: Value) -> Value {
    Value::Union(1, Box::new(v))
}

fn none() -> Value {
    Value::Union(0, Box::new(Value::Null))
}

fn pairs<T: Clone>(items: &[(i32, T)], wrap: fn(T) -> Value) -> Value {
    some(Value::Array(
        items
            .iter()
            .map(|(k, v)| {
                Value::Record(vec![
                    ("key".into(), Value::Int(*k)),
                    ("value".into(), wrap(v.clone())),
                ])
            })
            .collect(),
    ))
}

fn record(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// A manifest's container with its header: the table's schema and partition spec.
fn header(day: Option<&str>, schema: &str, spec: &str) -> Result<Container> {
    let mut w = Container::new(&entry_schema(day))?;
    for (k, v) in [
        ("schema", schema),
        ("schema-id", "0"),
        ("partition-spec", spec),
        ("partition-spec-id", "0"),
        ("format-version", "2"),
        ("content", "data"),
    ] {
        w.add_user_metadata(k.into(), v)
            .map_err(|e| bad("header", e))?;
    }
    Ok(w)
}

/// A manifest of files added by `snapshot_id`. `day` names the partition field (none for an
/// unpartitioned table); `schema` and `spec` are the table's, as JSON, for the file's header.
pub fn write_manifest(
    files: &[DataFile],
    snapshot_id: i64,
    day: Option<&str>,
    schema: &str,
    spec: &str,
) -> Result<Vec<u8>> {
    let mut w = header(day, schema, spec)?;
    for f in files {
        let partition = match (day, f.day) {
            (Some(name), Some(d)) => vec![(name, d.map_or_else(none, |d| some(Value::Date(d))))],
            _ => Vec::new(),
        };
        let data_file = record(vec![
            ("content", Value::Int(0)),
            ("file_path", Value::String(f.path.clone())),
            ("file_format", Value::String("PARQUET".into())),
            ("partition", record(partition)),
            ("record_count", Value::Long(f.records)),
            ("file_size_in_bytes", Value::Long(f.size)),
            ("column_sizes", pairs(&f.column_sizes, Value::Long)),
            ("value_counts", pairs(&f.value_counts, Value::Long)),
            ("null_value_counts", pairs(&f.null_counts, Value::Long)),
            ("lower_bounds", pairs(&f.lower, Value::Bytes)),
            ("upper_bounds", pairs(&f.upper, Value::Bytes)),
        ]);
        let entry = record(vec![
            ("status", Value::Int(1)),
            ("snapshot_id", some(Value::Long(snapshot_id))),
            ("sequence_number", none()),
            ("file_sequence_number", none()),
            ("data_file", data_file),
        ]);
        w.append_value(entry).map_err(|e| bad("entry", e))?;
    }
    w.into_inner()
}

/// One manifest holding the live files of `manifests` (each with its bytes), kept as they were:
/// each entry EXISTING, with its snapshot and sequence numbers written out instead of inherited
/// from the manifest that added it. Returns the manifest, its files, rows and least sequence
/// number.
pub fn merge(
    manifests: &[(&ManifestFile, Vec<u8>)],
    day: Option<&str>,
    schema: &str,
    spec: &str,
) -> Result<(Vec<u8>, i32, i64, i64)> {
    let mut w = header(day, schema, spec)?;
    let (mut files, mut rows, mut least) = (0i32, 0i64, i64::MAX);
    for (m, avro) in manifests {
        let reader = Reader::new(&avro[..]).map_err(|e| bad(&m.path, e))?;
        for v in reader {
            let v = v.map_err(|e| bad(&m.path, e))?;
            let status = long(&v, "status");
            if status == 2 {
                continue;
            }
            let Some(data_file) = get(&v, "data_file") else {
                return Err(bad(&m.path, "an entry without a data_file"));
            };
            // Iceberg's inheritance: an entry without them takes the manifest's.
            let inherit = |name: &str, of_manifest: i64| match get(&v, name) {
                Some(Value::Long(n)) => *n,
                _ => of_manifest,
            };
            let snapshot = inherit("snapshot_id", m.added_snapshot_id);
            let sequence = inherit("sequence_number", m.sequence_number);
            let file_sequence = inherit("file_sequence_number", m.sequence_number);
            files += 1;
            rows += long(data_file, "record_count");
            least = least.min(sequence);
            let entry = record(vec![
                ("status", Value::Int(0)),
                ("snapshot_id", some(Value::Long(snapshot))),
                ("sequence_number", some(Value::Long(sequence))),
                ("file_sequence_number", some(Value::Long(file_sequence))),
                ("data_file", data_file.clone()),
            ]);
            w.append_value(entry).map_err(|e| bad(&m.path, e))?;
        }
    }
    Ok((w.into_inner()?, files, rows, least))
}

/// What `manifests` hold of the day partition together (`None` unless each says).
pub fn merged_partitions(manifests: &[ManifestFile]) -> Option<Vec<PartitionSummary>> {
    let each: Vec<&PartitionSummary> = manifests
        .iter()
        .filter_map(|m| m.partitions.as_ref()?.first())
        .collect();
    if each.len() != manifests.len() {
        return None;
    }
    let day = |b: &Option<Vec<u8>>| {
        b.as_deref()
            .and_then(|b| b.try_into().ok())
            .map(i32::from_le_bytes)
    };
    let nan = each
        .iter()
        .try_fold(false, |any, p| Some(any || p.contains_nan?));
    Some(vec![PartitionSummary {
        contains_null: each.iter().any(|p| p.contains_null),
        contains_nan: nan,
        lower: each
            .iter()
            .filter_map(|p| day(&p.lower))
            .min()
            .map(|d| d.to_le_bytes().to_vec()),
        upper: each
            .iter()
            .filter_map(|p| day(&p.upper))
            .max()
            .map(|d| d.to_le_bytes().to_vec()),
    }])
}

/// A manifest list of these manifests.
pub fn write_list(
    manifests: &[ManifestFile],
    snapshot_id: i64,
    parent: Option<i64>,
    sequence_number: i64,
) -> Result<Vec<u8>> {
    let mut w = Container::new(LIST_SCHEMA)?;
    let parent = parent.map_or_else(|| "null".to_string(), |p| p.to_string());
    for (k, v) in [
        ("snapshot-id", snapshot_id.to_string()),
        ("parent-snapshot-id", parent),
        ("sequence-number", sequence_number.to_string()),
        ("format-version", "2".to_string()),
    ] {
        w.add_user_metadata(k.into(), v)
            .map_err(|e| bad("header", e))?;
    }
    for m in manifests {
        let partitions = m.partitions.as_ref().map_or_else(none, |ps| {
            some(Value::Array(
                ps.iter()
                    .map(|p| {
                        record(vec![
                            ("contains_null", Value::Boolean(p.contains_null)),
                            (
                                "contains_nan",
                                p.contains_nan
                                    .map_or_else(none, |b| some(Value::Boolean(b))),
                            ),
                            (
                                "lower_bound",
                                p.lower.clone().map_or_else(none, |b| some(Value::Bytes(b))),
                            ),
                            (
                                "upper_bound",
                                p.upper.clone().map_or_else(none, |b| some(Value::Bytes(b))),
                            ),
                        ])
                    })
                    .collect(),
            ))
        });
        let entry = record(vec![
            ("manifest_path", Value::String(m.path.clone())),
            ("manifest_length", Value::Long(m.length)),
            ("partition_spec_id", Value::Int(m.spec_id)),
            ("content", Value::Int(m.content)),
            ("sequence_number", Value::Long(m.sequence_number)),
            ("min_sequence_number", Value::Long(m.min_sequence_number)),
            ("added_snapshot_id", Value::Long(m.added_snapshot_id)),
            ("added_files_count", Value::Int(m.files[0])),
            ("existing_files_count", Value::Int(m.files[1])),
            ("deleted_files_count", Value::Int(m.files[2])),
            ("added_rows_count", Value::Long(m.rows[0])),
            ("existing_rows_count", Value::Long(m.rows[1])),
            ("deleted_rows_count", Value::Long(m.rows[2])),
            ("partitions", partitions),
        ]);
        w.append_value(entry).map_err(|e| bad("entry", e))?;
    }
    w.into_inner()
}

/// A field of a record, its union unwrapped (`None` when absent or null).
fn get<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    let Value::Record(fields) = v else {
        return None;
    };
    let mut found = &fields.iter().find(|(k, _)| k == name)?.1;
    while let Value::Union(_, inner) = found {
        found = inner;
    }
    (!matches!(found, Value::Null)).then_some(found)
}

fn long(v: &Value, name: &str) -> i64 {
    match get(v, name) {
        Some(Value::Long(n)) => *n,
        Some(Value::Int(n)) => i64::from(*n),
        _ => 0,
    }
}

fn bytes(v: Option<&Value>) -> Option<Vec<u8>> {
    match v {
        Some(Value::Bytes(b)) | Some(Value::Fixed(_, b)) => Some(b.clone()),
        _ => None,
    }
}

/// The entries of a manifest list.
pub fn read_list(avro: &[u8], what: &str) -> Result<Vec<ManifestFile>> {
    let reader = Reader::new(avro).map_err(|e| bad(what, e))?;
    let mut out = Vec::new();
    for v in reader {
        let v = v.map_err(|e| bad(what, e))?;
        let partitions = match get(&v, "partitions") {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|p| PartitionSummary {
                        contains_null: matches!(
                            get(p, "contains_null"),
                            Some(Value::Boolean(true))
                        ),
                        contains_nan: match get(p, "contains_nan") {
                            Some(Value::Boolean(b)) => Some(*b),
                            _ => None,
                        },
                        lower: bytes(get(p, "lower_bound")),
                        upper: bytes(get(p, "upper_bound")),
                    })
                    .collect(),
            ),
            _ => None,
        };
        let Some(Value::String(path)) = get(&v, "manifest_path") else {
            return Err(bad(what, "an entry without a manifest_path"));
        };
        out.push(ManifestFile {
            path: path.clone(),
            length: long(&v, "manifest_length"),
            spec_id: long(&v, "partition_spec_id") as i32,
            content: long(&v, "content") as i32,
            sequence_number: long(&v, "sequence_number"),
            min_sequence_number: long(&v, "min_sequence_number"),
            added_snapshot_id: long(&v, "added_snapshot_id"),
            files: [
                long(&v, "added_files_count") as i32,
                long(&v, "existing_files_count") as i32,
                long(&v, "deleted_files_count") as i32,
            ],
            rows: [
                long(&v, "added_rows_count"),
                long(&v, "existing_rows_count"),
                long(&v, "deleted_rows_count"),
            ],
            partitions,
        });
    }
    Ok(out)
}

/// The data files a manifest holds live (added or kept, not deleted), by URI.
pub fn read_live_files(avro: &[u8], what: &str) -> Result<Vec<String>> {
    let reader = Reader::new(avro).map_err(|e| bad(what, e))?;
    let mut out = Vec::new();
    for v in reader {
        let v = v.map_err(|e| bad(what, e))?;
        if long(&v, "status") == 2 {
            continue;
        }
        let Some(file) = get(&v, "data_file") else {
            continue;
        };
        if long(file, "content") != 0 {
            return Err(bad(
                what,
                "the table has delete files, which tier does not read",
            ));
        }
        if let Some(Value::String(p)) = get(file, "file_path") {
            out.push(p.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
