//! Many loaders into one table, as processes and as threads (`-j`): loads overlap, each row is
//! loaded once, the same content loads once, conflicts are reported whoever wins.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// `tier load --report json` of these arguments, started and left running.
fn spawn_load(db: &TestDb, args: &[&str]) -> Child {
    tier_cmd()
        .args(["load", "--database-url", &db.url, "--progress", "never"])
        .args(["--report", "json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a started load; it must have succeeded.
fn finish(child: Child) -> serde_json::Value {
    let out: Run = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
}

/// The number of COPY statements the server is running in this test's database.
fn copies(db: &TestDb) -> i64 {
    db.count(
        "SELECT * FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%'",
    )
}

/// Waits (at most a minute) until `ok` holds.
fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn four_loaders_of_the_same_directories_load_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    exports(dir.path(), 5000, 800, 7, 0.05);
    let db = TestDb::new();
    let at_once = |extra: &[&str]| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                tier_cmd()
                    .args([
                        "load",
                        "--database-url",
                        &db.url,
                        "--progress",
                        "never",
                        "--report",
                        "json",
                    ])
                    .args(extra)
                    .arg(dir.path())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for h in handles {
            let out = h.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    at_once(&[]);
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'succeeded'"),
        2
    );
    at_once(&["--force"]);
    let single = TestDb::new();
    let r = single.load(&[s(dir.path()), "--report", "json"]).json();
    for table in ["track_events", "weather"] {
        let f = r["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["dataset"] == table)
            .unwrap();
        assert_eq!(
            db.count(&format!("SELECT * FROM {table}")) as u64,
            f["loaded"].as_u64().unwrap(),
            "{table}"
        );
        assert_eq!(
            db.count(&format!(
                "SELECT * FROM tier_loads WHERE target_table = 'public.{table}' AND loaded > 0"
            )),
            1
        );
    }
}

/// Loads of different files into one table run at the same time: no lock on the table is held
/// for a whole load (only the bulk path, and the settling of rows, take the table alone).
#[test]
fn loads_of_different_files_into_one_table_copy_at_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..3)
        .map(|i| {
            generate(
                dir.path(),
                &format!("track_events_{i}.json"),
                "track_events",
                120_000,
                40 + i,
                0.0,
            )
        })
        .collect();
    let db = TestDb::new();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            tier_cmd()
                .args([
                    "load",
                    "--database-url",
                    &db.url,
                    "--progress",
                    "never",
                    "--report",
                    "json",
                    s(f),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut most = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let copying = db.count(
            "SELECT * FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%'",
        );
        most = most.max(copying);
        if most >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut loaded = 0;
    for c in children {
        let out: Run = c.wait_with_output().unwrap().into();
        assert_eq!(out.code, 0, "{}", out.stderr);
        loaded += out.json()["files"][0]["loaded"].as_u64().unwrap();
    }
    assert!(most >= 2, "the loads never copied at the same time");
    assert_eq!(db.count("SELECT * FROM track_events") as u64, loaded);
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'succeeded'"),
        3
    );
}

/// A small load into a table commits while a large load into the same table is still copying.
#[test]
fn a_small_load_commits_while_a_large_one_is_copying() {
    let dir = tempfile::tempdir().unwrap();
    let first = generate(dir.path(), "first_track.json", "track_events", 100, 1, 0.0);
    let large = generate(
        dir.path(),
        "large_track.json",
        "track_events",
        400_000,
        2,
        0.0,
    );
    let small = generate(dir.path(), "small_track.json", "track_events", 200, 3, 0.0);
    let db = TestDb::new();
    // The table holds rows: both loads take the merge route, neither takes the table alone.
    assert_eq!(db.load(&[s(&first)]).code, 0);
    let mut big = spawn_load(&db, &[s(&large)]);
    wait_until("the large load copies", || copies(&db) >= 1);
    let r = db.load(&[s(&small), "--report", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The small load has committed (its rows and ledger row are seen from outside) while the
    // large one is still running and has not committed.
    let large_running = big.try_wait().unwrap().is_none();
    let large_done = db.count(
        "SELECT * FROM tier_loads WHERE source LIKE '%large_track.json' AND status = 'succeeded'",
    );
    assert!(
        large_running && large_done == 0,
        "the large load ended first"
    );
    assert_eq!(r.json()["files"][0]["loaded"], 200);
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'succeeded'"),
        2
    );
    let big = finish(big);
    assert_eq!(big["files"][0]["loaded"], 400_000);
    assert_eq!(db.count("SELECT * FROM track_events"), 400_300);
}

/// Loaders over overlapping sets of files, as processes with two threads each: the table holds
/// the union, each row once, and the ledger has one successful load per content.
#[test]
fn loaders_over_overlapping_files_leave_the_union_once() {
    let dir = tempfile::tempdir().unwrap();
    // With one seed, a shorter export is the start of a longer one: files share rows.
    let files: Vec<_> = (0..6u64)
        .flat_map(|i| {
            [
                generate(
                    dir.path(),
                    &format!("track_events_{i}.json"),
                    "track_events",
                    1_000 * (i + 1),
                    7,
                    0.0,
                ),
                generate(
                    dir.path(),
                    &format!("weather_{i}.json"),
                    "weather",
                    300 * (i + 1),
                    8,
                    0.0,
                ),
            ]
        })
        .collect();
    let db = TestDb::new();
    let children: Vec<_> = (0..4)
        .map(|p| {
            let mut args = vec!["-j", "2"];
            args.extend(files.iter().skip(p * 3).take(6).map(|f| s(f)));
            spawn_load(&db, &args)
        })
        .collect();
    let reports: Vec<_> = children.into_iter().map(finish).collect();
    let single = TestDb::new();
    let all: Vec<&str> = files.iter().map(|f| s(f)).collect();
    assert_eq!(single.load(&all).code, 0);
    for table in ["track_events", "weather"] {
        let rows = format!("SELECT * FROM {table}");
        assert_eq!(db.count(&rows), single.count(&rows), "{table}");
        let distinct = match table {
            "weather" => "SELECT DISTINCT city, date_time FROM weather".to_string(),
            _ => format!("SELECT DISTINCT received_time, _row_hash FROM {table}"),
        };
        assert_eq!(db.count(&distinct), db.count(&rows), "{table}: a row twice");
        let loaded: i64 = db
            .client()
            .query_one(
                "SELECT COALESCE(sum(loaded), 0)::bigint FROM tier_loads \
                 WHERE status = 'succeeded' AND target_table = $1",
                &[&format!("public.{table}")],
            )
            .unwrap()
            .get(0);
        assert_eq!(loaded, db.count(&rows), "{table}: ledger against the table");
    }
    // One successful load per content; every file of every report succeeded or was skipped.
    assert_eq!(
        db.count("SELECT sha256 FROM tier_loads WHERE status = 'succeeded' GROUP BY sha256, target_table HAVING count(*) > 1"),
        0
    );
    assert_eq!(
        db.count("SELECT DISTINCT sha256 FROM tier_loads WHERE status = 'succeeded'"),
        12
    );
    for r in &reports {
        for f in r["files"].as_array().unwrap() {
            assert!(
                f["status"] == "succeeded" || f["status"] == "skipped",
                "{f}"
            );
        }
    }
}

/// The same file by four processes at once: one loads it, three wait and report `skipped`.
#[test]
fn the_same_file_four_times_at_once_loads_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 3_000, 5, 0.02);
    let db = TestDb::new();
    let children: Vec<_> = (0..4).map(|_| spawn_load(&db, &[s(&file)])).collect();
    let mut statuses: Vec<String> = children
        .into_iter()
        .map(|c| {
            finish(c)["files"][0]["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["skipped", "skipped", "skipped", "succeeded"]);
    assert_eq!(db.count("SELECT * FROM tier_loads"), 1);
    let single = TestDb::new();
    assert_eq!(single.load(&[s(&file)]).code, 0);
    for t in ["weather", "weather_rejects"] {
        let q = format!("SELECT * FROM {t}");
        assert_eq!(db.count(&q), single.count(&q), "{t}");
    }
}

/// Two files with the same keys and other values, one in reverse order, loaded at once (their
/// inserts can deadlock; the load PostgreSQL picks tries again): every key once, and every
/// loser's row a `conflicting_duplicate` with its raw text.
#[test]
fn keyed_conflicts_are_rejected_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let rec = |i: u32, t: f64| {
        format!(
            r#"{{"weather_data.city":"City {}","weather_data.date_time":"2019-06-{:02} {:02}:{:02}:00","weather_data.currently_temperature":{t}}}"#,
            i % 50,
            1 + (i / 50) / 24 % 28,
            (i / 50) % 24,
            (i / 50 / 24 / 28) % 60,
        )
    };
    let write = |name: &str, order: Vec<u32>, t: f64| {
        let lines: Vec<String> = order.into_iter().map(|i| rec(i, t)).collect();
        let path = dir.path().join(name);
        std::fs::write(&path, format!("[{}]", lines.join(",\n"))).unwrap();
        path
    };
    let a = write("a_weather.json", (0..n).collect(), 1.5);
    let b = write("b_weather.json", (0..n).rev().collect(), 2.5);
    let db = TestDb::new();
    // A first row makes the table non-empty: both loads take the merge route at once.
    let seed = write("seed_weather.json", vec![n + 10_000], 0.0);
    assert_eq!(db.load(&[s(&seed)]).code, 0);
    let ca = spawn_load(&db, &[s(&a)]);
    let cb = spawn_load(&db, &[s(&b)]);
    let (ra, rb) = (finish(ca), finish(cb));
    let field = |r: &serde_json::Value, k: &str| r["files"][0][k].as_u64().unwrap();
    assert_eq!(field(&ra, "loaded") + field(&rb, "loaded"), n as u64);
    assert_eq!(field(&ra, "rejected") + field(&rb, "rejected"), n as u64);
    let conflicts = |r: &serde_json::Value| {
        r["files"][0]["reject_reasons"]["conflicting_duplicate"]
            .as_u64()
            .unwrap_or(0)
    };
    assert_eq!(conflicts(&ra) + conflicts(&rb), n as u64);
    assert_eq!(db.count("SELECT * FROM weather"), n as i64 + 1);
    assert_eq!(
        db.count("SELECT DISTINCT city, date_time FROM weather"),
        n as i64 + 1
    );
    assert_eq!(
        db.count("SELECT * FROM weather_rejects WHERE reason = 'conflicting_duplicate'"),
        n as i64
    );
    // Each rejected row is the other value of a key in the table.
    assert_eq!(
        db.count(
            "SELECT * FROM weather_rejects r JOIN weather w \
             ON w.city = (r.raw::jsonb)->>'weather_data.city' \
             WHERE (r.raw::jsonb)->>'weather_data.currently_temperature' \
                   <> w.currently_temperature::text \
               AND w.date_time = ((r.raw::jsonb)->>'weather_data.date_time')::timestamp AT TIME ZONE 'UTC'"
        ),
        n as i64
    );
}

/// A load that hashes its input as it reads takes the content's lock once its rows are in.
/// When another session holds that lock, the load lets go of the table it took alone (an empty
/// table's bulk route) and goes again, the content's lock first — rather than wait for the
/// lock with the table in hand, where a session that holds the lock and reads the table
/// deadlocks with it.
#[test]
fn a_load_never_waits_for_its_content_with_the_table_in_hand() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "weather.json", "weather", 3000, 3, 0.0);
    let (sha, _) = tier_core::sha256_file(&input).unwrap();
    let db = TestDb::new();
    let mut c = db.client();
    let mut other = c.transaction().unwrap();
    other
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&format!("public.weather\n{sha}")],
        )
        .unwrap();
    let load = spawn_load(&db, &[s(&input)]);
    // The load waits for the content's lock.
    wait_until("the load waits for the content's lock", || {
        db.count("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == 1
    });
    // Meanwhile the table can be read: the load holds it no more.
    other
        .batch_execute("SET LOCAL lock_timeout = '5s'")
        .unwrap();
    let rows: i64 = other
        .query_one("SELECT count(*) FROM weather", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
    other.commit().unwrap();
    let report = finish(load);
    assert_eq!(report["files"][0]["status"], "succeeded");
    assert_eq!(
        db.count("SELECT 1 FROM weather"),
        report["files"][0]["loaded"].as_i64().unwrap()
    );
}
