//! The lake as Iceberg tables: one snapshot per load carrying its ledger facts, re-runs adding
//! none, reading a table at its current or an earlier snapshot, schema evolution, a commit
//! killed before its swap, concurrent writers, and the SQL catalog whose swap commits with the
//! load's `tier_loads` row.

use std::path::{Path, PathBuf};

use crate::common::*;

/// The table's current metadata, found as a reader without a catalog finds it.
fn metadata(table: &Path) -> serde_json::Value {
    let dir = table.join("metadata");
    let hint = std::fs::read_to_string(dir.join("version-hint.text"));
    let path = match hint {
        Ok(n) => dir.join(format!("v{}.metadata.json", n.trim())),
        Err(_) => std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".metadata.json"))
            .max()
            .unwrap(),
    };
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn snapshots(table: &Path) -> Vec<serde_json::Value> {
    let committed = std::fs::read_dir(table.join("metadata")).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.path().to_string_lossy().ends_with(".metadata.json"))
    });
    if !committed {
        return Vec::new();
    }
    metadata(table)["snapshots"].as_array().unwrap().clone()
}

fn weather_files(dir: &Path, n: u64) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            generate(
                dir,
                &format!("weather_{i}.json"),
                "weather",
                200,
                40 + i,
                0.1,
            )
        })
        .collect()
}

#[test]
fn each_load_is_one_snapshot_and_a_table_reads_at_any_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let files = weather_files(dir.path(), 3);
    let lake = dir.path().join("lake");
    let mut reports = Vec::new();
    for f in &files {
        let run = lake_load(&lake, &[s(f)]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        reports.push(run.json()["files"][0].clone());
    }
    let table = lake.join("weather");
    let meta = metadata(&table);
    assert_eq!(meta["format-version"], 2);
    let spec = &meta["partition-specs"][0]["fields"][0];
    assert_eq!(spec["transform"], "day");
    let snaps = snapshots(&table);
    assert_eq!(snaps.len(), 3);
    for (snap, report) in snaps.iter().zip(&reports) {
        let summary = &snap["summary"];
        assert_eq!(summary["operation"], "append");
        assert_eq!(summary["tier.sha256"], report["sha256"]);
        assert_eq!(summary["tier.source"], report["path"]);
        assert_eq!(summary["tier.load-id"], report["load_id"].to_string());
        assert_eq!(summary["added-records"], report["loaded"].to_string());
    }
    assert_eq!(meta["current-snapshot-id"], snaps[2]["snapshot-id"]);
    // The rejects are a table of their own, a snapshot per load that had rejects.
    assert_eq!(snapshots(&lake.join("weather_rejects")).len(), 3);
    // A re-run adds no snapshot.
    let again = lake_load(&lake, &[s(&files[0])]);
    assert_eq!(again.json()["files"][0]["status"], "skipped");
    assert_eq!(snapshots(&table).len(), 3);

    // Lake → warehouse from the current snapshot: the rows the JSON files load.
    let rows = "SELECT city, date_time, currently_temperature FROM weather";
    let from_json = TestDb::new();
    let paths: Vec<&str> = files.iter().map(|f| s(f)).collect();
    assert_eq!(from_json.load(&paths).code, 0);
    let db = TestDb::new();
    let run = db.load(&[s(&table), s(&lake.join("weather_rejects"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(db.count(rows), from_json.count(rows));
    assert!(db.count("SELECT 1 FROM weather_rejects") > 0);
    // … and from the first snapshot: the first file's rows only (time travel).
    let first = snaps[0]["snapshot-id"].as_i64().unwrap().to_string();
    let db = TestDb::new();
    let run = db.load(&[s(&table), "--snapshot", &first]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        db.count("SELECT 1 FROM weather"),
        reports[0]["loaded"].as_i64().unwrap()
    );
    // A snapshot the table does not have, or a path that is no table: usage errors.
    let r = db.load(&[s(&table), "--snapshot", "42"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no snapshot 42"), "{}", r.stderr);
    let r = db.load(&[s(&files[0]), "--snapshot", &first]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // The metadata files are no input of a walk over the lake.
    let r = tier(&["check", "--report", "json", "--progress", "never", s(&lake)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in r.json()["files"].as_array().unwrap() {
        assert!(f["path"].as_str().unwrap().ends_with(".parquet"), "{f}");
    }
}

#[test]
fn a_definition_that_gains_a_column_is_a_schema_update() {
    let dir = tempfile::tempdir().unwrap();
    let base =
        "name = \"visits\"\npartition_by = \"at\"\n[[columns]]\nname = \"page\"\ntype = \"text\"\nrequired = true\n[[columns]]\nname = \"at\"\ntype = \"timestamptz\"\nrequired = true\n";
    let v1 = dir.path().join("v1.toml");
    std::fs::write(&v1, base).unwrap();
    let v2 = dir.path().join("v2.toml");
    std::fs::write(
        &v2,
        format!("{base}[[columns]]\nname = \"secs\"\ntype = \"integer\"\n"),
    )
    .unwrap();
    let f1 = dir.path().join("visits-1.json");
    std::fs::write(
        &f1,
        "{\"page\":\"a\",\"at\":\"2024-05-01T10:00:00Z\",\"secs\":3}\n",
    )
    .unwrap();
    let f2 = dir.path().join("visits-2.json");
    std::fs::write(
        &f2,
        "{\"page\":\"b\",\"at\":\"2024-05-02T10:00:00Z\",\"secs\":5}\n",
    )
    .unwrap();
    let lake = dir.path().join("lake");
    let run = lake_load(
        &lake,
        &[s(&f1), "--datasets", s(&v1), "--dataset", "visits"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = lake_load(
        &lake,
        &[s(&f2), "--datasets", s(&v2), "--dataset", "visits"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let meta = metadata(&lake.join("visits"));
    let schemas = meta["schemas"].as_array().unwrap();
    assert_eq!(schemas.len(), 2);
    assert_eq!(meta["current-schema-id"], schemas[1]["schema-id"]);
    let secs = schemas[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "secs")
        .unwrap();
    let before = schemas[0]["fields"].as_array().unwrap();
    assert!(before.iter().all(|f| f["name"] != "secs"));
    let max_before = before.iter().map(|f| f["id"].as_i64().unwrap()).max();
    assert_eq!(secs["id"].as_i64(), max_before.map(|m| m + 1));
    assert_eq!(secs["required"], false);
    assert_eq!(meta["last-column-id"], secs["id"]);
    // The table into PostgreSQL with the new definition: the earlier file reads null there.
    let db = TestDb::new();
    let run = db.load(&[s(&lake.join("visits")), "--datasets", s(&v2)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<(String, Option<i32>)> = db
        .client()
        .query("SELECT page, secs FROM visits ORDER BY page", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, vec![("a".into(), None), ("b".into(), Some(5))]);
    // A definition partitioned otherwise is refused: the table's days would be wrong.
    let v3 = dir.path().join("v3.toml");
    std::fs::write(&v3, base.replace("partition_by = \"at\"\n", "")).unwrap();
    let f3 = dir.path().join("visits-3.json");
    std::fs::write(&f3, "{\"page\":\"c\",\"at\":\"2024-05-03T10:00:00Z\"}\n").unwrap();
    let run = lake_load(
        &lake,
        &[s(&f3), "--datasets", s(&v3), "--dataset", "visits"],
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("partitioned by day(at), the definition by nothing"),
        "{}",
        run.stderr
    );
    assert_eq!(snapshots(&lake.join("visits")).len(), 2);
    // Refused before anything was written.
    assert!(std::fs::read_dir(lake.join("_tier/tmp"))
        .unwrap()
        .next()
        .is_none());
    assert_eq!(visible_parts(&lake.join("visits")), 2);
}

/// The Parquet files in a table's folder, at any depth.
fn visible_parts(table: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(table).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += visible_parts(&p);
        } else if p.extension().is_some_and(|x| x == "parquet") {
            n += 1;
        }
    }
    n
}

/// The Parquet parts under `table`, with their bytes.
fn part_bytes(table: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut parts = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(table).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            parts.extend(part_bytes(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            parts.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
    parts
}

#[test]
fn a_commit_killed_before_its_swap_shows_nothing_and_the_next_run_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let files = weather_files(dir.path(), 2);
    let lake = dir.path().join("lake");
    killed_lake_load(dir.path(), s(&lake), &files[0], "lake.iceberg", &[]);
    // The parts are in place, but no snapshot names them: through Iceberg, nothing is there.
    assert!(snapshots(&lake.join("weather")).is_empty());
    assert!(!lake.join("_tier/loads.jsonl").exists() || ledger_lines(&lake) == 0);
    // The next run (of another file) finishes it: one snapshot each, one ledger line each.
    let run = lake_load(&lake, &[s(&files[1])]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let snaps = snapshots(&lake.join("weather"));
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    assert_eq!(ledger_lines(&lake), 2);
    // What the killed commit wrote was written over, not left beside: a manifest and a
    // manifest list per snapshot, nothing else.
    let avro = std::fs::read_dir(lake.join("weather/metadata"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "avro"))
        .count();
    assert_eq!(avro, 2 * snaps.len());
    // The killed file itself is then skipped: no third snapshot.
    let run = lake_load(&lake, &[s(&files[0])]);
    assert_eq!(run.json()["files"][0]["status"], "skipped");
    assert_eq!(snapshots(&lake.join("weather")).len(), 2);
    assert!(std::fs::read_dir(lake.join("_tier/tmp"))
        .unwrap()
        .next()
        .is_none());
}

fn ledger_lines(lake: &Path) -> usize {
    std::fs::read_to_string(lake.join("_tier/loads.jsonl"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// Loads `files` into `lake` from `n` processes at once, each file by one process.
fn at_once(lake: &Path, files: &[PathBuf], extra: &[&str]) {
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            tier_cmd()
                .args(["load", "--lake", s(lake), "--progress", "never", s(f)])
                .args(extra)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn concurrent_writers_lose_no_commit() {
    let dir = tempfile::tempdir().unwrap();
    let files = weather_files(dir.path(), 8);
    let lake = dir.path().join("lake");
    at_once(&lake, &files, &[]);
    let snaps = snapshots(&lake.join("weather"));
    let mut shas: Vec<&str> = snaps
        .iter()
        .map(|s| s["summary"]["tier.sha256"].as_str().unwrap())
        .collect();
    shas.sort();
    shas.dedup();
    assert_eq!(shas.len(), 8, "every load is a snapshot, once");
    assert_eq!(snaps.len(), 8);
    // Each snapshot follows the one before it.
    for w in snaps.windows(2) {
        assert_eq!(w[1]["parent-snapshot-id"], w[0]["snapshot-id"]);
    }
}

#[test]
fn a_second_loader_of_the_same_content_yields_at_the_commit() {
    // Two loaders of one file that both looked the ledger up before either had written its
    // line (two machines on one bucket): the later one finds the earlier one's snapshot when it
    // commits, and skips. Here the ledger is emptied between two loads to stand for that.
    let dir = tempfile::tempdir().unwrap();
    let files = weather_files(dir.path(), 1);
    let lake = dir.path().join("lake");
    let first = lake_load(&lake, &[s(&files[0])]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first = first.json()["files"][0].clone();
    std::fs::write(lake.join("_tier/loads.jsonl"), "").unwrap();
    let table = lake.join("weather");
    let rows_files = part_bytes(&table);

    let second = lake_load(&lake, &[s(&files[0])]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let report = &second.json()["files"][0];
    assert_eq!(report["status"], "skipped", "{report}");
    assert_eq!(report["load_id"], first["load_id"]);
    assert_eq!(
        snapshots(&table).len(),
        1,
        "no second snapshot of the content"
    );
    // The later load wrote none of the earlier one's parts (rows of its own load id, maybe
    // other sizes than the snapshot says), and removed its own.
    assert!(
        part_bytes(&table) == rows_files,
        "the first load's parts changed"
    );
    assert_eq!(ledger_lines(&lake), 0, "a skip writes no line");

    // `--force` loads it again all the same, under names of its own: the first load's parts
    // stay as its snapshot names them (their rows carry its load id).
    let before = part_bytes(&table);
    let forced = lake_load(&lake, &[s(&files[0]), "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(forced.json()["files"][0]["status"], "succeeded");
    assert_eq!(snapshots(&table).len(), 2);
    let after = part_bytes(&table);
    assert_eq!(after.len(), 2 * before.len(), "{:?}", after.keys());
    for (path, bytes) in &before {
        assert!(
            after.get(path) == Some(bytes),
            "{} was rewritten",
            path.display()
        );
    }

    // The same with a SQL catalog: the later load's `running` row is gone with it.
    let lake = dir.path().join("sql-lake");
    let db = TestDb::new();
    let cat = ["--catalog-url", db.url.as_str()];
    let first = lake_load(&lake, &[&[s(&files[0])][..], &cat[..]].concat());
    assert_eq!(first.code, 0, "{}", first.stderr);
    let mut c = db.client();
    c.batch_execute("UPDATE tier_loads SET status = 'failed'")
        .unwrap();
    let second = lake_load(&lake, &[&[s(&files[0])][..], &cat[..]].concat());
    assert_eq!(second.code, 0, "{}", second.stderr);
    let report = &second.json()["files"][0];
    assert_eq!(report["status"], "skipped", "{report}");
    assert_eq!(report["load_id"], first.json()["files"][0]["load_id"]);
    assert_eq!(
        db.count("SELECT 1 FROM tier_loads"),
        1,
        "the first load's row only"
    );
}

#[test]
fn the_sql_catalog_swaps_with_the_ledger_row() {
    let dir = tempfile::tempdir().unwrap();
    let files = weather_files(dir.path(), 6);
    let lake = dir.path().join("lake");
    let db = TestDb::new();
    let cat = ["--catalog-url", db.url.as_str()];
    let run = lake_load(&lake, &[&[s(&files[0])][..], &cat[..]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json()["files"][0].clone();
    let mut c = db.client();
    let row = c
        .query_one(
            "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = 'tier' \
             AND table_namespace = 'tier' AND table_name = 'weather'",
            &[],
        )
        .unwrap();
    let location: String = row.get(0);
    assert!(location.starts_with("file:///") && location.ends_with(".metadata.json"));
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(location.strip_prefix("file://").unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        meta["snapshots"][0]["summary"]["tier.load-id"],
        report["load_id"].to_string()
    );
    let ledger = c
        .query_one(
            "SELECT target_table, status, loaded, sha256 FROM tier_loads WHERE load_id = $1",
            &[&report["load_id"].as_i64().unwrap()],
        )
        .unwrap();
    assert_eq!(ledger.get::<_, String>(0), "lake:weather");
    assert_eq!(ledger.get::<_, String>(1), "succeeded");
    assert_eq!(ledger.get::<_, i64>(2), report["loaded"].as_i64().unwrap());
    assert!(
        !lake.join("_tier/loads.jsonl").exists(),
        "the ledger is the database's"
    );
    // A commit killed before its swap: no snapshot, the row not succeeded; the next run
    // finishes it in one transaction.
    killed_lake_load(dir.path(), s(&lake), &files[1], "lake.iceberg", &cat);
    let succeeded = |db: &TestDb| {
        db.count(
            "SELECT 1 FROM tier_loads WHERE target_table = 'lake:weather' AND status = 'succeeded'",
        )
    };
    assert_eq!(succeeded(&db), 1);
    // Four writers at once, and a re-run of the first file (skipped).
    at_once(&lake, &files[2..], &cat);
    let run = lake_load(&lake, &[&[s(&files[0])][..], &cat[..]].concat());
    assert_eq!(run.json()["files"][0]["status"], "skipped");
    assert_eq!(succeeded(&db), 6);
    let location: String = c
        .query_one(
            "SELECT metadata_location FROM iceberg_tables WHERE table_name = 'weather'",
            &[],
        )
        .unwrap()
        .get(0);
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(location.strip_prefix("file://").unwrap()).unwrap(),
    )
    .unwrap();
    let mut ids: Vec<i64> = meta["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["summary"]["tier.load-id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    ids.sort();
    let mut rows: Vec<i64> = c
        .query(
            "SELECT load_id FROM tier_loads WHERE target_table = 'lake:weather' \
             AND status = 'succeeded' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    rows.sort();
    assert_eq!(ids, rows, "the snapshots and the ledger agree");
}

#[test]
fn a_moved_lake_reads_and_loads_where_it_is_now() {
    let dir = tempfile::tempdir().unwrap();
    let files = weather_files(dir.path(), 3);
    let lake = dir.path().join("lake");
    for f in &files[..2] {
        assert_eq!(lake_load(&lake, &[s(f)]).code, 0);
    }
    let moved = dir.path().join("moved");
    std::fs::rename(&lake, &moved).unwrap();
    // Its metadata names the old place; tier reads the files where they are now …
    let db = TestDb::new();
    let run = db.load(&[s(&moved.join("weather")), "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let parts = run.json()["files"].as_array().unwrap().len();
    assert!(parts > 0);
    for f in run.json()["files"].as_array().unwrap() {
        assert!(f["path"].as_str().unwrap().contains("/moved/"), "{f}");
    }
    // … and loads into it: the next snapshot follows the two before.
    let run = lake_load(&moved, &[s(&files[2])]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(snapshots(&moved.join("weather")).len(), 3);
    let db = TestDb::new();
    let run = db.load(&[s(&moved.join("weather")), "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.json()["files"].as_array().unwrap().len() > parts);
}
