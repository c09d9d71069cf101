//! `tier load --lake`: the layout, the ledger, re-runs, a kill mid-write, and the lake loaded
//! into PostgreSQL row for row as the JSON would be.

use std::path::{Path, PathBuf};

use crate::common::*;

/// Every data file under `dir`, relative, sorted (the lake's own `_tier` folder and the
/// tables' Iceberg `metadata` folders left out).
fn visible(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == "_tier" || rel.ends_with("/metadata") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

fn ledger(lake: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(lake.join("_tier/loads.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An ordered fingerprint of a table: every column but `_load_id`.
fn fingerprint(db: &TestDb, table: &str) -> String {
    let cols: Vec<String> = db
        .client()
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = $1 AND column_name <> '_load_id' ORDER BY ordinal_position",
            &[&table],
        )
        .unwrap()
        .iter()
        .map(|r| format!("\"{}\"", r.get::<_, String>(0)))
        .collect();
    db.client()
        .query_one(
            &format!(
                "SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t._record_index)), '') \
                 FROM (SELECT {} FROM {table}) t",
                cols.join(", ")
            ),
            &[],
        )
        .unwrap()
        .get(0)
}

#[test]
fn the_lake_layout_ledger_and_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    exports(&data, 3000, 800, 5, 0.05);
    let lake = dir.path().join("lake");
    let run = lake_load(&lake, &[s(&data)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let files = report["files"].as_array().unwrap();
    let mut all_parts = Vec::new();
    for f in files {
        let table = f["dataset"].as_str().unwrap();
        assert_eq!(f["table"], format!("lake:{table}"));
        assert_eq!(f["status"], "succeeded");
        let n = |k: &str| f[k].as_u64().unwrap();
        assert_eq!(n("records"), n("loaded") + n("duplicates") + n("rejected"));
        assert!(n("duplicates") > 0 && n("rejected") > 0, "{f}");
        let sha16 = &f["sha256"].as_str().unwrap()[..16];
        for p in f["parts"].as_array().unwrap() {
            let p = p.as_str().unwrap();
            let rows = p.starts_with(&format!("{table}/date="));
            let rejects = p == format!("{table}_rejects/part-{sha16}-0000.parquet");
            assert!(rows || rejects, "{p}");
            assert!(p.ends_with(&format!("part-{sha16}-0000.parquet")), "{p}");
            all_parts.push(p.to_string());
        }
    }
    all_parts.sort();
    assert_eq!(
        visible(&lake),
        all_parts,
        "exactly the reported parts are in the lake"
    );
    // The generated observations span several days: several date= folders.
    assert!(
        all_parts
            .iter()
            .filter(|p| p.starts_with("weather/date="))
            .count()
            > 1
    );
    let lines = ledger(&lake);
    assert_eq!(lines.len(), 2);
    for (l, f) in lines.iter().zip(files) {
        for k in [
            "load_id",
            "sha256",
            "records",
            "loaded",
            "duplicates",
            "rejected",
        ] {
            assert_eq!(l[k], f[k], "{k}");
        }
        assert_eq!(l["status"], "succeeded");
        assert!(l["started_at"].is_string() && l["finished_at"].is_string());
    }
    // Re-run: skipped by SHA-256; nothing written.
    let again = lake_load(&lake, &[s(&data)]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    for f in again.json()["files"].as_array().unwrap() {
        assert_eq!(f["status"], "skipped");
    }
    assert_eq!(ledger(&lake).len(), 2);
    // --force: loaded again, as parts of names of their own (the next free numbers) beside
    // the first load's, which stay as they are.
    let forced = lake_load(&lake, &[s(&data), "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    let mut again: Vec<String> = forced.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["parts"].as_array().unwrap().clone())
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    again.sort();
    assert_eq!(again.len(), all_parts.len());
    assert!(again.iter().all(|p| !all_parts.contains(p)), "{again:?}");
    assert!(
        again.iter().all(|p| p.ends_with("-0001.parquet")),
        "{again:?}"
    );
    let mut both = [all_parts.clone(), again].concat();
    both.sort();
    assert_eq!(visible(&lake), both);
    assert_eq!(ledger(&lake).len(), 4);
    // No database was touched: none is configured and none was started.
    assert!(!dir.path().join(".tier").exists());
}

#[test]
fn a_load_killed_mid_write_leaves_nothing_visible_and_the_next_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(
        dir.path(),
        "track_events.json",
        "track_events",
        300_000,
        9,
        0.0,
    );
    let lake = dir.path().join("lake");
    let mut child = tier_cmd()
        .args(["load", "--lake", s(&lake), "--progress", "never", s(&input)])
        .spawn()
        .unwrap();
    // Wait until parts are being written under _tier/tmp/, then kill.
    let tmp = lake.join("_tier/tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let writing = loop {
        let busy = std::fs::read_dir(&tmp).ok().is_some_and(|d| {
            d.flatten().any(|e| {
                e.path().is_dir()
                    && std::fs::read_dir(e.path())
                        .unwrap()
                        .flatten()
                        .any(|f| f.path().extension().is_some_and(|x| x == "parquet"))
            })
        });
        if busy || std::time::Instant::now() > deadline {
            break busy;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(writing, "the load was never seen writing");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(visible(&lake), Vec::<String>::new(), "no part is visible");
    assert!(ledger(&lake).is_empty());
    let run = lake_load(&lake, &[s(&input)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = &run.json()["files"][0];
    assert_eq!(f["loaded"], 300_000);
    let parts: Vec<String> = f["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(visible(&lake), parts);
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_lake_loads_into_postgres_as_the_json_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    exports(&data, 2000, 700, 7, 0.05);
    let rides = dir.path().join("rides.json");
    std::fs::write(
        &rides,
        "{\"rides.ride_id\":\"a\",\"rides.started_at\":\"2024-03-01 10:00:00\",\"rides.meta\":{\"n\":123456789012345678901234567890},\"rides.service_day\":\"2024-03-01\",\"rides.paid\":true,\"rides.fare_cents\":9007199254740993}\n\
         {\"rides.ride_id\":\"b\",\"rides.started_at\":\"2024-03-02 10:00:00\",\"x\":1e999}\n",
    )
    .unwrap();
    let defs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rides.toml");
    let lake = dir.path().join("lake");
    let run = lake_load(&lake, &[s(&data), s(&rides), "--datasets", s(&defs)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(visible(&lake)
        .iter()
        .any(|p| p.starts_with("rides/date=2024-03-02/")));

    let from_json = TestDb::new();
    let r = from_json.load(&[s(&data), s(&rides), "--datasets", s(&defs)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let from_lake = TestDb::new();
    let r = from_lake.load(&[s(&lake), "--datasets", s(&defs), "--report", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in r.json()["files"].as_array().unwrap() {
        assert!(f["path"].as_str().unwrap().ends_with(".parquet"));
        assert_eq!(f["status"], "succeeded");
    }
    for table in ["track_events", "weather", "rides"] {
        assert_eq!(
            fingerprint(&from_lake, table),
            fingerprint(&from_json, table),
            "{table}"
        );
        // The rejects come along: every record stays accounted for.
        let rejects = |db: &TestDb| {
            db.count(&format!(
                "SELECT _record_index, reason FROM {table}_rejects GROUP BY 1, 2"
            ))
        };
        assert_eq!(rejects(&from_lake), rejects(&from_json), "{table}_rejects");
    }
    // Loaded again from the lake: every part skipped by its SHA-256.
    let again = from_lake.load(&[s(&lake), "--datasets", s(&defs), "--report", "json"]);
    for f in again.json()["files"].as_array().unwrap() {
        assert_eq!(f["status"], "skipped");
    }
    // A Parquet file tier did not write: refused, naming the file and the column.
    let rejects = std::fs::read_dir(lake.join("weather_rejects"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let foreign = dir.path().join("weather").join("foreign.parquet");
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    std::fs::copy(&rejects, &foreign).unwrap();
    let r = from_lake.load(&[s(&foreign)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("foreign.parquet") && r.stderr.contains("column city"),
        "{}",
        r.stderr
    );
    let not_parquet = dir.path().join("weather").join("text.parquet");
    std::fs::write(&not_parquet, "not parquet").unwrap();
    let r = from_lake.load(&[s(&not_parquet)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("text.parquet"), "{}", r.stderr);
}

/// Every file under `dir` with its size, `_tier` included.
fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in walk(dir) {
        let size = std::fs::metadata(&e).map(|m| m.len()).unwrap_or(0);
        out.push((e.strip_prefix(dir).unwrap().display().to_string(), size));
    }
    out.sort();
    out
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_load_killed_during_its_renames_is_finished_from_another_directory_and_after_a_move() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "weather.json", "weather", 6000, 3, 0.05);
    let reference = dir.path().join("reference");
    let run = lake_load(&reference, &[s(&input)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let parts = visible(&reference);
    assert!(parts.len() > 3, "{parts:?}");

    // Killed after its second rename, the lake named relative to the working directory.
    killed_lake_load(dir.path(), "lake", &input, "lake.rename:2", &[]);
    let lake = dir.path().join("lake");
    assert_eq!(visible(&lake).len(), 2);

    // Listing it from elsewhere changes nothing and shows no load.
    let before = snapshot(&lake);
    let out = tier_cmd()
        .current_dir("/")
        .args(["loads", "--lake", s(&lake), "--report", "json"])
        .output()
        .unwrap();
    let listed = Run::from(out);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(listed.json()["loads"], serde_json::json!([]));
    assert_eq!(snapshot(&lake), before, "a listing changes nothing");
    // A mistyped lake: an error naming it, and nothing created.
    let typo = dir.path().join("lkae");
    let r = tier(&["loads", "--lake", s(&typo)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("lkae"), "{}", r.stderr);
    assert!(!typo.exists());

    // Moved, then loaded again from another directory: the load is finished, then skipped.
    let moved = dir.path().join("moved");
    std::fs::rename(&lake, &moved).unwrap();
    let out = tier_cmd()
        .current_dir("/")
        .args(["load", "--lake", s(&moved), "--progress", "never"])
        .args(["--report", "json", s(&input)])
        .output()
        .unwrap();
    let again = Run::from(out);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json()["files"][0]["status"], "skipped");
    assert_eq!(visible(&moved), parts, "every part in place");
    assert_eq!(snapshot(&moved.join("_tier/tmp")), vec![]);
    let lines = ledger(&moved);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["status"], "succeeded");
    let mut listed: Vec<String> = lines[0]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, parts);
}

#[test]
fn a_part_lost_from_an_unfinished_load_is_damage_not_success() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "weather.json", "weather", 6000, 4, 0.05);
    let reference = dir.path().join("reference");
    assert_eq!(lake_load(&reference, &[s(&input)]).code, 0);
    let parts = visible(&reference);

    killed_lake_load(dir.path(), "lake", &input, "lake.rename:1", &[]);
    let lake = dir.path().join("lake");
    // One part still waiting in the load's folder disappears.
    let waiting: Vec<PathBuf> = walk(&lake.join("_tier/tmp"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    assert!(!waiting.is_empty());
    std::fs::remove_file(&waiting[0]).unwrap();

    let run = lake_load(&lake, &[s(&input)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("damaged"), "{}", run.stderr);
    let f = &run.json()["files"][0];
    assert_eq!(f["status"], "succeeded", "loaded again, not skipped");
    assert_eq!(visible(&lake), parts);
    let lines = ledger(&lake);
    assert_eq!(lines.len(), 1, "the damaged load has no ledger line");
}

#[test]
fn a_load_killed_after_its_manifest_is_finished_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "weather.json", "weather", 3000, 5, 0.05);
    killed_lake_load(dir.path(), "lake", &input, "lake.manifest", &[]);
    let lake = dir.path().join("lake");
    assert!(visible(&lake).is_empty());
    let run = lake_load(&lake, &[s(&input)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["files"][0]["status"], "skipped");
    assert_eq!(ledger(&lake).len(), 1);
    assert!(!visible(&lake).is_empty());
}

/// Many commands on one lake at once, round after round: every one succeeds (a scan of
/// unfinished loads never trips over a load finishing), and each content is in the ledger once.
#[test]
fn many_commands_on_one_lake_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let files: Vec<PathBuf> = (0..40)
        .map(|i| {
            generate(
                dir.path(),
                &format!("weather_{i}.json"),
                "weather",
                20,
                100 + i,
                0.1,
            )
        })
        .collect();
    for round in files.chunks(8) {
        let children: Vec<_> = round
            .iter()
            .map(|f| {
                tier_cmd()
                    .args([
                        "load",
                        "--lake",
                        s(&lake),
                        "--progress",
                        "never",
                        s(f),
                        s(&files[0]),
                    ])
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
    let lines = ledger(&lake);
    let mut shas: Vec<&str> = lines
        .iter()
        .filter(|l| l["status"] == "succeeded")
        .map(|l| l["sha256"].as_str().unwrap())
        .collect();
    shas.sort();
    let n = shas.len();
    shas.dedup();
    assert_eq!(shas.len(), n, "a content loaded twice");
    assert_eq!(n, 40);
}

/// `tier check` reads a lake's parts as `load` does: their rows, not JSON.
#[test]
fn check_reads_lake_parts_as_load_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    exports(&data, 900, 300, 12, 0.05);
    let lake = dir.path().join("lake");
    let run = lake_load(&lake, &[s(&data)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let sum = |k: &str| -> u64 {
        run.json()["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f[k].as_u64().unwrap())
            .sum()
    };
    let (loaded, rejected) = (sum("loaded"), sum("rejected"));
    let check = tier(&["check", s(&lake), "--report", "json"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let files = check.json()["files"].as_array().unwrap().clone();
    assert!(files.len() >= 2);
    let (mut records, mut rejects) = (0, 0);
    for f in &files {
        let path = f["path"].as_str().unwrap();
        assert!(path.ends_with(".parquet"), "{f}");
        assert_eq!(f["sha256"].as_str().unwrap().len(), 64, "{f}");
        assert_eq!(f["status"], "checked", "{f}");
        if path.contains("_rejects/") {
            rejects += f["rejected"].as_u64().unwrap();
        } else {
            assert_eq!(f["rejected"], 0, "{f}");
            records += f["records"].as_u64().unwrap();
        }
    }
    assert_eq!(rejects, rejected);
    assert_eq!(records, loaded);
}
