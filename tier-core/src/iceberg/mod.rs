//! Apache Iceberg tables (format version 2) over the Parquet files of a lake: table metadata,
//! manifest lists and manifests, appended to one snapshot per load, and read back.
//!
//! A table's current metadata is found through a [`Catalog`]: the file
//! `metadata/version-hint.text` beside the metadata files ([`Hint`]), or the SQL catalog in a
//! PostgreSQL database ([`catalog::Sql`]). A commit writes a manifest and a manifest list
//! under new names, then makes the next metadata file current in one atomic step; a writer that
//! loses the race to another reads the new metadata and tries again, so no commit is lost.

mod avro;
pub mod catalog;
pub mod manifest;
pub mod metadata;
mod read;
pub mod stats;
pub mod store;

pub use read::table_files;
use read::{read_uri, relocated};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::read::Location;
pub use catalog::{Catalog, Hint, Sql};
pub use metadata::{Column, TableMetadata};
pub use store::Store;

/// 128 bits that no other call, here or in another process, gives.
pub(crate) fn random() -> [u8; 16] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut h = Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

/// A random (version 4) UUID.
pub fn uuid() -> String {
    let mut b = random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A name part no other writer uses.
fn unique() -> String {
    random()[..8].iter().map(|x| format!("{x:02x}")).collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A Parquet file to add to a table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewFile {
    /// Its path below the lake's root.
    pub rel: String,
    /// Its day partition (days since 1970-01-01; `None` for null or no partition).
    pub day: Option<i32>,
}

/// One load's files appended to a table as one snapshot.
pub struct Append<'a> {
    /// The table's folder below the lake's root.
    pub table: &'a str,
    /// The columns the table should have (missing ones are added).
    pub columns: &'a [Column],
    /// The column whose day partitions the table.
    pub day_of: Option<&'a str>,
    /// The files.
    pub files: Vec<NewFile>,
    /// The tier load: its id and content SHA-256 (a snapshot holding them is this append).
    pub load_id: i64,
    /// The content's SHA-256.
    pub sha256: &'a str,
    /// The loaded file.
    pub source: &'a str,
    /// What a database catalog commits in the transaction of the swap (tier's ledger row of the
    /// load); a catalog of files leaves that to the caller.
    pub also: Option<&'a Also<'a>>,
    /// Whether the content is appended even when another load's snapshot holds it (`--force`).
    pub again: bool,
}

/// What [`append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The load is this snapshot (committed now, or by an earlier run of the same load).
    Snapshot(i64),
    /// Nothing: the snapshot of another load, this one's id, holds the same content (two
    /// loaders of one file that passed the ledger's look-up at once; the later one yields).
    Loaded(i64),
}

/// Work done in a catalog's commit transaction.
pub type Also<'a> = dyn Fn(&mut postgres::Transaction<'_>) -> Result<()> + Sync + 'a;

impl Append<'_> {
    /// The name part of the files written for this load (`load-<id>-<sha16>`): the same in
    /// every attempt, so that the run that finishes a load killed before its commit writes over
    /// what the dead one left rather than beside it. (A committed load is never written again:
    /// its snapshot is found first.)
    pub(crate) fn tag(&self) -> String {
        let sha16: String = self.sha256.chars().take(16).collect();
        format!("load-{}-{sha16}", self.load_id)
    }
}

/// The table's current metadata: its location in the store and what it says.
pub fn current(
    store: &Store,
    catalog: &dyn Catalog,
    table: &str,
) -> Result<Option<(String, TableMetadata)>> {
    let Some(rel) = catalog.current(store, table)? else {
        return Ok(None);
    };
    let bytes = store.read(&rel)?.ok_or_else(|| {
        Error::io(
            store.uri(&rel),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the table's current metadata file is missing",
            ),
        )
    })?;
    let meta = serde_json::from_slice(&bytes).map_err(|e| {
        Error::io(
            store.uri(&rel),
            std::io::Error::other(format!("not Iceberg table metadata: {e}")),
        )
    })?;
    Ok(Some((rel, meta)))
}

/// Refuses parts partitioned otherwise than the table: their days would be told wrong.
fn same_partitions(
    store: &Store,
    table: &str,
    meta: &TableMetadata,
    day_of: Option<&str>,
) -> Result<()> {
    let by = meta.partitioned_by();
    if by.as_deref() == day_of {
        return Ok(());
    }
    let say = |c: Option<&str>| c.map_or("nothing".to_string(), |c| format!("day({c})"));
    Err(Error::Usage(format!(
        "{}: the Iceberg table is partitioned by {}, the definition by {}; load it into another lake",
        store.uri(table),
        say(by.as_deref()),
        say(day_of)
    )))
}

/// Checks, before a load writes anything, that its parts fit the table as it is (when there
/// is one): the same partitioning.
pub fn check_fits(
    store: &Store,
    catalog: &dyn Catalog,
    table: &str,
    day_of: Option<&str>,
) -> Result<()> {
    match current(store, catalog, table)? {
        Some((_, meta)) => same_partitions(store, table, &meta, day_of),
        None => Ok(()),
    }
}

/// Commits `append` as the table's next snapshot, unless a snapshot already holds its load (a
/// commit finished by an earlier run) or, unless `again`, its content (another load's). The
/// check is made on the metadata each try commits on top of, so of two loads of the same
/// content that race to commit, the later one finds the earlier one's snapshot.
///
/// The files' statistics are read from their footers at `local` (the lake's root on this
/// machine, which for a lake in a bucket holds the files uploaded).
pub fn append(
    store: &Store,
    local: &std::path::Path,
    catalog: &dyn Catalog,
    append: &Append,
) -> Result<Appended> {
    for attempt in 0u64..200 {
        let found = current(store, catalog, append.table)?;
        if let Some((_, m)) = &found {
            let mut loads = m.loads_of(append.sha256);
            if let Some((_, s)) = loads.find(|(id, _)| *id == append.load_id) {
                return Ok(Appended::Snapshot(s.snapshot_id));
            }
            // Not this load's: any snapshot of the content is another load's.
            if let Some((id, _)) = m.loads_of(append.sha256).next().filter(|_| !append.again) {
                return Ok(Appended::Loaded(id));
            }
        }
        let (old, mut meta) = match found {
            Some((rel, meta)) => (Some(rel), meta),
            None => (
                None,
                TableMetadata::new(
                    store.uri(append.table),
                    append.columns,
                    append.day_of,
                    now_ms(),
                ),
            ),
        };
        meta.evolve(append.columns);
        same_partitions(store, append.table, &meta, append.day_of)?;
        let (written, snapshot_id) = prepare(store, local, &mut meta, old.as_deref(), append)?;
        let bytes = serde_json::to_vec_pretty(&meta)
            .map_err(|e| Error::io(append.table, std::io::Error::other(e)))?;
        crate::fault::point("lake.iceberg");
        if catalog.commit(store, append.table, old.as_deref(), bytes, append)? {
            return Ok(Appended::Snapshot(snapshot_id));
        }
        // Another writer committed first: what was written for this try is nobody's.
        for rel in written {
            store.delete(&rel)?;
        }
        let pause = 2 + (attempt * 7 + u64::from(std::process::id())) % 30;
        std::thread::sleep(std::time::Duration::from_millis(pause));
    }
    Err(Error::io(
        store.uri(append.table),
        std::io::Error::other("too many writers at once: gave up after 200 tries"),
    ))
}

/// Writes the live files of `manifests` as one manifest, added by the snapshot `(id, sequence
/// number)` being made; returns its entry for the manifest list and where it is.
fn merge(
    store: &Store,
    meta: &TableMetadata,
    append: &Append,
    manifests: &[manifest::ManifestFile],
    day: Option<&str>,
    (schema, spec): (&str, &str),
    (snapshot_id, sequence_number): (i64, i64),
) -> Result<(manifest::ManifestFile, String)> {
    let rel = format!("{}/metadata/{}-m1.avro", append.table, append.tag());
    let mut each = Vec::with_capacity(manifests.len());
    for m in manifests {
        let what = relocated(store, append.table, meta, &m.path);
        each.push((m, read_uri(store, &what)?));
    }
    let (avro, files, rows, least) = manifest::merge(&each, day, schema, spec)?;
    let length = avro.len() as i64;
    store.write(&rel, avro)?;
    let merged = manifest::ManifestFile {
        path: store.uri(&rel),
        length,
        spec_id: meta.default_spec_id,
        content: 0,
        sequence_number,
        min_sequence_number: least.min(sequence_number),
        added_snapshot_id: snapshot_id,
        files: [0, files, 0],
        rows: [0, rows, 0],
        partitions: manifest::merged_partitions(manifests),
    };
    Ok((merged, rel))
}

/// The summary of the snapshot of `append`, which adds `files` files of `records` rows after
/// `parent`: Iceberg's counts and the load tier made it from.
fn summary(
    parent: Option<&metadata::Snapshot>,
    files: usize,
    records: i64,
    append: &Append,
) -> BTreeMap<String, String> {
    let total = |key: &str, added: i64| {
        let before: i64 = parent
            .and_then(|p| p.summary.get(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (before + added).to_string()
    };
    let mut summary = BTreeMap::new();
    summary.insert("operation".to_string(), "append".to_string());
    summary.insert("added-data-files".into(), files.to_string());
    summary.insert("added-records".into(), records.to_string());
    summary.insert(
        "total-data-files".into(),
        total("total-data-files", files as i64),
    );
    summary.insert("total-records".into(), total("total-records", records));
    summary.insert("total-delete-files".into(), "0".into());
    summary.insert("total-position-deletes".into(), "0".into());
    summary.insert("total-equality-deletes".into(), "0".into());
    summary.insert("tier.sha256".into(), append.sha256.to_string());
    summary.insert("tier.source".into(), append.source.to_string());
    summary.insert("tier.load-id".into(), append.load_id.to_string());
    summary
}

/// Manifests in a table's snapshot from which a commit merges them into one (Iceberg's
/// `commit.manifest.min-count-to-merge`).
const MERGE_AT: usize = 100;

/// Writes the manifest and manifest list of `append` and adds its snapshot to `meta`; returns
/// the files written and the snapshot's id.
fn prepare(
    store: &Store,
    local: &std::path::Path,
    meta: &mut TableMetadata,
    old: Option<&str>,
    append: &Append,
) -> Result<(Vec<String>, i64)> {
    let snapshot_id = i64::from_le_bytes(random()[..8].try_into().unwrap_or([1; 8])) & i64::MAX;
    let sequence_number = meta.last_sequence_number + 1;
    let parent = meta.current().cloned();
    let mut manifests = match &parent {
        Some(p) => {
            let what = relocated(store, append.table, meta, &p.manifest_list);
            let bytes = read_uri(store, &what)?;
            manifest::read_list(&bytes, &what)?
        }
        None => Vec::new(),
    };
    let spec = meta.spec_fields();
    let day = spec
        .first()
        .and_then(|f| f["name"].as_str())
        .map(str::to_string);
    let schema_json = serde_json::to_string(meta.schema())
        .map_err(|e| Error::io(append.table, std::io::Error::other(e)))?;
    let spec_json = serde_json::Value::Array(spec).to_string();
    let mut written = Vec::new();
    // A table committed to file by file would be read through one manifest per commit: from
    // MERGE_AT on, the manifests so far become one, as Iceberg's own writers merge them.
    if manifests.len() + 1 >= MERGE_AT
        && manifests
            .iter()
            .all(|m| m.content == 0 && m.spec_id == meta.default_spec_id)
    {
        let (merged, rel) = merge(
            store,
            meta,
            append,
            &manifests,
            day.as_deref(),
            (&schema_json, &spec_json),
            (snapshot_id, sequence_number),
        )?;
        manifests = vec![merged];
        written.push(rel);
    }
    let mut files = Vec::with_capacity(append.files.len());
    for f in &append.files {
        let mut file = stats::data_file(&local.join(&f.rel), meta.schema())?;
        file.path = store.uri(&f.rel);
        file.day = day.as_ref().map(|_| f.day);
        files.push(file);
    }
    let records: i64 = files.iter().map(|f| f.records).sum();
    if !files.is_empty() {
        let avro = manifest::write_manifest(
            &files,
            snapshot_id,
            day.as_deref(),
            &schema_json,
            &spec_json,
        )?;
        let rel = format!("{}/metadata/{}-m0.avro", append.table, append.tag());
        let length = avro.len() as i64;
        store.write(&rel, avro)?;
        let days: Vec<Option<i32>> = files.iter().filter_map(|f| f.day).collect();
        let partitions = day.as_ref().map(|_| {
            let present: Vec<i32> = days.iter().flatten().copied().collect();
            vec![manifest::PartitionSummary {
                contains_null: days.iter().any(Option::is_none),
                contains_nan: Some(false),
                lower: present.iter().min().map(|d| d.to_le_bytes().to_vec()),
                upper: present.iter().max().map(|d| d.to_le_bytes().to_vec()),
            }]
        });
        manifests.insert(
            0,
            manifest::ManifestFile {
                path: store.uri(&rel),
                length,
                spec_id: meta.default_spec_id,
                content: 0,
                sequence_number,
                min_sequence_number: sequence_number,
                added_snapshot_id: snapshot_id,
                files: [files.len() as i32, 0, 0],
                rows: [records, 0, 0],
                partitions,
            },
        );
        written.push(rel);
    }
    let list = manifest::write_list(
        &manifests,
        snapshot_id,
        parent.as_ref().map(|p| p.snapshot_id),
        sequence_number,
    )?;
    let list_rel = format!("{}/metadata/snap-{}.avro", append.table, append.tag());
    store.write(&list_rel, list)?;
    written.push(list_rel.clone());
    let summary = summary(parent.as_ref(), files.len(), records, append);
    let ms = now_ms();
    let previous = old.map(|rel| (store.uri(rel), meta.last_updated_ms));
    meta.add_snapshot(
        metadata::Snapshot {
            snapshot_id,
            parent_snapshot_id: parent.as_ref().map(|p| p.snapshot_id),
            sequence_number,
            timestamp_ms: ms.max(meta.last_updated_ms),
            manifest_list: store.uri(&list_rel),
            summary,
            schema_id: Some(meta.current_schema_id),
            rest: serde_json::Map::new(),
        },
        previous,
    );
    Ok((written, snapshot_id))
}
