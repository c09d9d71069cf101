//! An Iceberg table's metadata file (format version 2): the parts tier reads and writes, and
//! whatever else another writer put there, kept as it was.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A column of a table as tier wants it: name, Iceberg type, whether it is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// Its Iceberg primitive type (`long`, `string`, `timestamptz`, …).
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether it is never null.
    pub required: bool,
}

/// A field of a schema.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Field {
    /// The field id, never reused.
    pub id: i32,
    /// The name.
    pub name: String,
    /// Whether it is never null.
    pub required: bool,
    /// Its type (a string for a primitive).
    #[serde(rename = "type")]
    pub ty: Value,
    /// What else the writer put there.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A schema of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schema {
    /// Always `struct`.
    #[serde(rename = "type")]
    pub ty: String,
    /// The schema's id.
    #[serde(rename = "schema-id")]
    pub id: i32,
    /// Its fields.
    pub fields: Vec<Field>,
    /// What else the writer put there.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Schema {
    /// The id of the field of this name.
    pub fn id_of(&self, name: &str) -> Option<i32> {
        self.fields.iter().find(|f| f.name == name).map(|f| f.id)
    }
}

/// A snapshot: the table's data files at one commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Snapshot {
    /// Its id.
    pub snapshot_id: i64,
    /// The snapshot it follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_snapshot_id: Option<i64>,
    /// Its sequence number.
    pub sequence_number: i64,
    /// When it was committed (ms since the epoch).
    pub timestamp_ms: i64,
    /// Its manifest list's URI.
    pub manifest_list: String,
    /// `operation` and what else its writer said of it.
    pub summary: BTreeMap<String, String>,
    /// The schema it was written with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<i32>,
    /// What else the writer put there.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A table's metadata file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TableMetadata {
    /// 2.
    pub format_version: i32,
    /// The table's UUID.
    pub table_uuid: String,
    /// The table's base URI.
    pub location: String,
    /// The highest sequence number given out.
    pub last_sequence_number: i64,
    /// When it last changed (ms since the epoch).
    pub last_updated_ms: i64,
    /// The highest field id given out.
    pub last_column_id: i32,
    /// The schemas, oldest first.
    pub schemas: Vec<Schema>,
    /// The schema new data is written with.
    pub current_schema_id: i32,
    /// The partition specs.
    pub partition_specs: Vec<Value>,
    /// The spec new data is written with.
    pub default_spec_id: i32,
    /// The highest partition field id given out.
    pub last_partition_id: i32,
    /// Table properties.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// The current snapshot (none for an empty table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_snapshot_id: Option<i64>,
    /// Every snapshot kept.
    #[serde(default)]
    pub snapshots: Vec<Snapshot>,
    /// When each snapshot became current.
    #[serde(default)]
    pub snapshot_log: Vec<Value>,
    /// The metadata files before this one.
    #[serde(default)]
    pub metadata_log: Vec<Value>,
    /// The sort orders.
    pub sort_orders: Vec<Value>,
    /// The default sort order.
    pub default_sort_order_id: i32,
    /// Named references (`main`).
    #[serde(default)]
    pub refs: Map<String, Value>,
    /// What else the writer put there.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// The first partition field id of Iceberg.
const FIRST_PARTITION_ID: i32 = 1000;

impl TableMetadata {
    /// A new table at `location` with these columns, partitioned by the day of `day_of` when
    /// given.
    pub fn new(location: String, columns: &[Column], day_of: Option<&str>, now_ms: i64) -> Self {
        let fields: Vec<Field> = columns
            .iter()
            .zip(1..)
            .map(|(c, id)| Field {
                id,
                name: c.name.clone(),
                required: c.required,
                ty: Value::String(c.ty.clone()),
                rest: Map::new(),
            })
            .collect();
        let last_column_id = fields.len() as i32;
        let spec_fields: Vec<Value> = day_of
            .and_then(|name| fields.iter().find(|f| f.name == name))
            .map(|f| {
                serde_json::json!({
                    "source-id": f.id,
                    "field-id": FIRST_PARTITION_ID,
                    "name": format!("{}_day", f.name),
                    "transform": "day",
                })
            })
            .into_iter()
            .collect();
        let last_partition_id = if spec_fields.is_empty() {
            FIRST_PARTITION_ID - 1
        } else {
            FIRST_PARTITION_ID
        };
        let mut meta = TableMetadata {
            format_version: 2,
            table_uuid: super::uuid(),
            location,
            last_sequence_number: 0,
            last_updated_ms: now_ms,
            last_column_id,
            schemas: vec![Schema {
                ty: "struct".into(),
                id: 0,
                fields,
                rest: Map::new(),
            }],
            current_schema_id: 0,
            partition_specs: vec![serde_json::json!({"spec-id": 0, "fields": spec_fields})],
            default_spec_id: 0,
            last_partition_id,
            properties: BTreeMap::new(),
            current_snapshot_id: None,
            snapshots: Vec::new(),
            snapshot_log: Vec::new(),
            metadata_log: Vec::new(),
            sort_orders: vec![serde_json::json!({"order-id": 0, "fields": []})],
            default_sort_order_id: 0,
            refs: Map::new(),
            rest: Map::new(),
        };
        meta.set_name_mapping();
        meta
    }

    /// The schema new data is written with.
    pub fn schema(&self) -> &Schema {
        self.schemas
            .iter()
            .find(|s| s.id == self.current_schema_id)
            .unwrap_or(&self.schemas[0])
    }

    /// The column whose day partitions the table (by its default spec), if any.
    pub fn partitioned_by(&self) -> Option<String> {
        let source = self.spec_fields().first()?["source-id"].as_i64()?;
        self.schemas
            .iter()
            .flat_map(|s| &s.fields)
            .find(|f| i64::from(f.id) == source)
            .map(|f| f.name.clone())
    }

    /// The default partition spec's fields.
    pub fn spec_fields(&self) -> Vec<Value> {
        self.partition_specs
            .iter()
            .find(|s| s["spec-id"] == self.default_spec_id)
            .and_then(|s| s["fields"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Adds the columns the current schema lacks, each an optional field with a new id, as a
    /// new schema made current. `true` when the schema changed.
    pub fn evolve(&mut self, columns: &[Column]) -> bool {
        let current = self.schema().clone();
        let new: Vec<&Column> = columns
            .iter()
            .filter(|c| current.id_of(&c.name).is_none())
            .collect();
        if new.is_empty() {
            return false;
        }
        let mut schema = current;
        schema.id = self.schemas.iter().map(|s| s.id).max().unwrap_or(0) + 1;
        for c in new {
            self.last_column_id += 1;
            schema.fields.push(Field {
                id: self.last_column_id,
                name: c.name.clone(),
                required: false,
                ty: Value::String(c.ty.clone()),
                rest: Map::new(),
            });
        }
        self.current_schema_id = schema.id;
        self.schemas.push(schema);
        self.set_name_mapping();
        true
    }

    /// Names the field ids of data files written without ids (tier's Parquet files): the
    /// name mapping of the Iceberg spec, by which readers match columns by name.
    fn set_name_mapping(&mut self) {
        let mut ids: BTreeMap<&str, i32> = BTreeMap::new();
        for s in &self.schemas {
            for f in &s.fields {
                ids.entry(&f.name).or_insert(f.id);
            }
        }
        let mut mapping: Vec<(i32, &str)> = ids.into_iter().map(|(n, id)| (id, n)).collect();
        mapping.sort();
        let json: Vec<Value> = mapping
            .into_iter()
            .map(|(id, name)| serde_json::json!({"field-id": id, "names": [name]}))
            .collect();
        self.properties.insert(
            "schema.name-mapping.default".into(),
            Value::Array(json).to_string(),
        );
    }

    /// The current snapshot.
    pub fn current(&self) -> Option<&Snapshot> {
        let id = self.current_snapshot_id.filter(|id| *id >= 0)?;
        self.snapshots.iter().find(|s| s.snapshot_id == id)
    }

    /// The snapshots whose summaries say they hold this content, each with its tier load's id.
    pub fn loads_of<'a>(&'a self, sha256: &'a str) -> impl Iterator<Item = (i64, &'a Snapshot)> {
        self.snapshots.iter().filter_map(move |s| {
            let same = s.summary.get("tier.sha256").map(String::as_str) == Some(sha256);
            let id = s.summary.get("tier.load-id")?.parse::<i64>().ok()?;
            same.then_some((id, s))
        })
    }

    /// Makes `snapshot` current (on branch `main`), after the metadata file `previous`.
    pub fn add_snapshot(&mut self, snapshot: Snapshot, previous: Option<(String, i64)>) {
        self.last_sequence_number = snapshot.sequence_number;
        self.last_updated_ms = snapshot.timestamp_ms;
        self.current_snapshot_id = Some(snapshot.snapshot_id);
        self.snapshot_log.push(serde_json::json!({
            "snapshot-id": snapshot.snapshot_id,
            "timestamp-ms": snapshot.timestamp_ms,
        }));
        if let Some((file, ms)) = previous {
            self.metadata_log
                .push(serde_json::json!({"metadata-file": file, "timestamp-ms": ms}));
            // Iceberg's default `write.metadata.previous-versions-max`.
            let excess = self.metadata_log.len().saturating_sub(100);
            self.metadata_log.drain(..excess);
        }
        self.refs.insert(
            "main".into(),
            serde_json::json!({"snapshot-id": snapshot.snapshot_id, "type": "branch"}),
        );
        self.snapshots.push(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, required: bool) -> Column {
        Column {
            name: name.into(),
            ty: ty.into(),
            required,
        }
    }

    #[test]
    fn a_new_column_is_an_optional_field_with_a_new_id_and_a_name_mapping() {
        let cols = vec![col("page", "string", true), col("at", "timestamptz", true)];
        let mut meta = TableMetadata::new("file:///l/visits".into(), &cols, Some("at"), 1);
        assert_eq!(meta.spec_fields()[0]["source-id"], 2);
        assert_eq!(meta.partitioned_by().as_deref(), Some("at"));
        assert_eq!(meta.last_partition_id, 1000);
        assert!(!meta.evolve(&cols), "nothing new");
        let mut more = cols.clone();
        more.insert(1, col("secs", "int", true));
        assert!(meta.evolve(&more));
        let s = meta.schema();
        assert_eq!((s.id, meta.current_schema_id), (1, 1));
        let secs = s.fields.iter().find(|f| f.name == "secs").unwrap();
        assert_eq!((secs.id, secs.required), (3, false));
        assert_eq!(meta.last_column_id, 3);
        let mapping = &meta.properties["schema.name-mapping.default"];
        assert!(
            mapping.contains(r#"{"field-id":3,"names":["secs"]}"#),
            "{mapping}"
        );
        // Kept through a round trip, with fields another writer added.
        let mut json = serde_json::to_value(&meta).unwrap();
        json["statistics"] = serde_json::json!([]);
        let back: TableMetadata = serde_json::from_value(json).unwrap();
        assert!(back.rest.contains_key("statistics"));
        assert_eq!(back.schema().id_of("secs"), Some(3));
    }
}
