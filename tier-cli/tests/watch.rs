//! `tier watch`: the ignore rules and the settle time, a restart that resumes from the ledger,
//! several watchers on one inbox, SIGTERM, a lake target, and a chaos run (watchers killed at
//! random moments, the server restarted) that ends with every file loaded once.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn watcher(url: &str, inbox: &Path, extra: &[&str]) -> Child {
    tier_cmd()
        .args([
            "watch",
            s(inbox),
            "--database-url",
            url,
            "--interval",
            "0.1",
        ])
        .args(["--settle", "0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn once(url: &str, inbox: &Path) -> Run {
    watcher(url, inbox, &["--once"])
        .wait_with_output()
        .unwrap()
        .into()
}

/// `n` weather files of `records` each, seeds from `seed`.
fn files(dir: &Path, n: u64, records: u64, seed: u64) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            generate(
                dir,
                &format!("weather_{seed}_{i}.json"),
                "weather",
                records,
                seed + i,
                0.05,
            )
        })
        .collect()
}

/// The (source, status) of every ledger row.
fn ledger(db: &TestDb) -> Vec<(String, String)> {
    if db.count("SELECT 1 WHERE to_regclass('tier_loads') IS NOT NULL") == 0 {
        return Vec::new();
    }
    db.client()
        .query(
            "SELECT source, status FROM tier_loads ORDER BY load_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn names_being_written_are_never_taken_and_once_loads_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let good = generate(&inbox, "weather.json", "weather", 30, 1, 0.0);
    for name in [
        ".weather.json",
        "_weather.json",
        "weather.json.tmp",
        "weather.json.part",
    ] {
        std::fs::copy(&good, inbox.join(name)).unwrap();
    }
    let db = TestDb::new();
    let run = once(&db.url, &inbox);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        ledger(&db),
        [(s(&good).to_string(), "succeeded".to_string())]
    );
    // Again: the ledger says it is done, and nothing is read twice.
    let run = once(&db.url, &inbox);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ledger(&db).len(), 1);
    assert!(!run.stderr.contains("skipped"), "{}", run.stderr);
    // A file whose content fails (every record rejected) fails once, and --once says so.
    std::fs::write(inbox.join("weather_bad.json"), "{\"x\":1}\n{\"y\":2}\n").unwrap();
    let run = once(&db.url, &inbox);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = once(&db.url, &inbox);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let failed = ledger(&db).iter().filter(|l| l.1 == "failed").count();
    assert_eq!(
        failed, 1,
        "a failed file is not taken again until it changes"
    );
}

#[test]
fn a_file_is_taken_once_it_held_still_for_the_settle_time() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let db = TestDb::new();
    let mut child = tier_cmd()
        .args(["watch", s(&inbox), "--database-url", &db.url])
        .args(["--interval", "0.1", "--settle", "1.5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A file written in pieces, slower than the listing.
    let path = inbox.join("weather.json");
    let text =
        std::fs::read_to_string(generate(dir.path(), "w.json", "weather", 40, 2, 0.0)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (head, tail) = lines.split_at(20);
    std::fs::write(&path, head.join("\n") + "\n").unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let mut all = head.join("\n") + "\n";
    all.push_str(&(tail.join("\n") + "\n"));
    std::fs::write(&path, all).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ledger(&db).is_empty() {
        assert!(Instant::now() < deadline, "the file was never loaded");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill() on the pid of a child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success(), "SIGTERM exits 0");
    assert_eq!(db.count("SELECT * FROM tier_loads"), 1);
    assert_eq!(
        db.count("SELECT * FROM weather"),
        40,
        "the whole file, not its first half"
    );
}

/// A file that failed by its content is taken again by the same watcher once it changes.
#[test]
fn a_failed_file_is_taken_again_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let db = TestDb::new();
    let mut child = watcher(&db.url, &inbox, &[]);
    let path = inbox.join("weather.json");
    std::fs::write(&path, "{\"x\":1}\n").unwrap();
    let wait_for = |status: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ledger(&db).iter().any(|l| l.1 == status) {
            assert!(Instant::now() < deadline, "no {status} load");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("failed");
    std::thread::sleep(Duration::from_millis(1500));
    let good = generate(dir.path(), "w.json", "weather", 20, 3, 0.0);
    std::fs::copy(&good, &path).unwrap();
    wait_for("succeeded");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(db.count("SELECT * FROM weather"), 20);
}

#[test]
fn three_watchers_on_one_inbox_load_every_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let all = files(&inbox, 24, 60, 100);
    // Byte-identical copies under new names: loaded once, the others skipped.
    for f in &all[..4] {
        let copy = inbox.join(format!("copy_{}", f.file_name().unwrap().to_str().unwrap()));
        std::fs::copy(f, copy).unwrap();
    }
    let db = TestDb::new();
    let watchers: Vec<Child> = (0..3)
        .map(|_| watcher(&db.url, &inbox, &["--once", "-j", "2"]))
        .collect();
    for w in watchers {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'succeeded'"),
        24
    );
    assert_eq!(
        db.count("SELECT DISTINCT sha256 FROM tier_loads WHERE status = 'succeeded'"),
        24
    );
    let loaded: i64 = db
        .client()
        .query_one("SELECT sum(loaded)::bigint FROM tier_loads", &[])
        .unwrap()
        .get(0);
    assert_eq!(db.count("SELECT * FROM weather"), loaded);
    assert_eq!(
        db.count("SELECT DISTINCT city, date_time FROM weather"),
        loaded
    );
}

#[test]
fn a_lake_target_takes_what_lands() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    files(&inbox, 3, 50, 7);
    let lake = dir.path().join("lake");
    let ledger_lines = || {
        let run: Run = tier_cmd()
            .args([
                "watch",
                s(&inbox),
                "--lake",
                s(&lake),
                "--once",
                "--settle",
                "0",
            ])
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, 0, "{}", run.stderr);
        let lines = std::fs::read_to_string(lake.join("_tier/loads.jsonl")).unwrap();
        lines.lines().count()
    };
    assert_eq!(ledger_lines(), 3);
    // Again: nothing new.
    assert_eq!(ledger_lines(), 3);
    // Each file is one snapshot of its Iceberg table.
    let snapshots: usize = std::fs::read_dir(&lake)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|t| !t.to_string_lossy().ends_with("_rejects"))
        .filter_map(|t| {
            std::fs::read_to_string(t.join("metadata/version-hint.text"))
                .ok()
                .map(|v| (t, v))
        })
        .map(|(t, v)| {
            let meta: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(t.join(format!("metadata/v{}.metadata.json", v.trim())))
                    .unwrap(),
            )
            .unwrap();
            meta["snapshots"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(snapshots, 3);
    // With a SQL catalog: the watcher's loads are the catalog database's ledger rows.
    let db = TestDb::new();
    for _ in 0..2 {
        let run: Run = tier_cmd()
            .args(["watch", s(&inbox), "--lake", s(&dir.path().join("lake2"))])
            .args(["--catalog-url", &db.url, "--once", "--settle", "0"])
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(
            db.count("SELECT 1 FROM tier_loads WHERE target_table LIKE 'lake:%' AND status = 'succeeded'"),
            3
        );
    }
    assert!(db.count("SELECT 1 FROM iceberg_tables WHERE catalog_name = 'tier'") >= 1);
}

/// Three watchers on an inbox of files (some copies under new names, some defective), killed
/// with SIGKILL at random moments and started again, and the server restarted at once in the
/// middle: in the end every file is loaded once, with no row twice.
#[test]
fn chaos_watchers_killed_and_a_server_restarted_lose_nothing_and_load_nothing_twice() {
    let home = home_dir("tier-chaos");
    let cluster = tier_core::db::embedded::Cluster::at(home.path()).unwrap();
    cluster.start().unwrap();
    let url = cluster.url();
    let db = TestDb { url: url.clone() };
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    // scripts/chaos.sh runs it longer, over more files.
    let env = |k: &str, default: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (seconds, n) = (env("TIER_CHAOS_SECONDS", 12), env("TIER_CHAOS_FILES", 40));
    let distinct = files(&inbox, n, 400, 1000);
    for f in &distinct[..6] {
        let copy = inbox.join(format!(
            "again_{}",
            f.file_name().unwrap().to_str().unwrap()
        ));
        std::fs::copy(f, copy).unwrap();
    }
    std::fs::write(
        inbox.join("weather_broken.json"),
        "{\"nothing\": \"of weather\"}\n",
    )
    .unwrap();

    // The expected rows: every distinct file loaded once, in another database.
    let reference = TestDb::new();
    let all: Vec<&str> = distinct.iter().map(|p| s(p)).collect();
    assert_eq!(reference.load(&all).code, 0);
    let expected = reference.count("SELECT * FROM weather");

    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut watchers: Vec<Child> = (0..3).map(|_| watcher(&url, &inbox, &[])).collect();
    let mut kills = 0;
    let started = Instant::now();
    let mut restarted = false;
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(100 + next(400)));
        let i = next(3) as usize;
        watchers[i].kill().unwrap();
        watchers[i].wait().unwrap();
        kills += 1;
        watchers[i] = watcher(&url, &inbox, &[]);
        if !restarted && started.elapsed() > Duration::from_secs(seconds / 2) {
            restart_at_once(&cluster);
            restarted = true;
        }
    }
    // The survivors finish the backlog and stop on SIGTERM; one more pass with --once. (The
    // last one started gets a moment to take its signals.)
    std::thread::sleep(Duration::from_secs(1));
    for w in &watchers {
        // SAFETY: kill() on the pid of a child we started.
        unsafe { libc::kill(w.id() as i32, libc::SIGTERM) };
    }
    for w in watchers {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The broken file failed already and was recorded — unless the watcher that failed it was
    // killed before it could record it and none took it again before the end: then this pass
    // fails it (exit 1, naming only that file), and the next one has nothing left to do.
    let mut last = once(&url, &inbox);
    if last.code == 1 {
        assert!(
            last.stderr.contains("weather_broken.json")
                && last
                    .stderr
                    .lines()
                    .filter(|l| l.contains("ERROR"))
                    .all(|l| l.contains("weather_broken.json")),
            "{}",
            last.stderr
        );
        last = once(&url, &inbox);
    }
    assert_eq!(last.code, 0, "{}", last.stderr);
    eprintln!(
        "chaos: {} files, {kills} kills, one server restart",
        distinct.len() + 7
    );

    assert_eq!(db.count("SELECT * FROM weather"), expected);
    assert_eq!(
        db.count("SELECT DISTINCT city, date_time FROM weather"),
        expected
    );
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'succeeded'"),
        distinct.len() as i64
    );
    assert_eq!(
        db.count("SELECT DISTINCT sha256 FROM tier_loads WHERE status = 'succeeded'"),
        distinct.len() as i64
    );
    // Every file accounted for: its content succeeded, or it is the broken one, failed.
    for f in std::fs::read_dir(&inbox).unwrap().flatten() {
        let sha = tier_core::sha256_file(&f.path()).unwrap().0;
        let ok = db.count(&format!(
            "SELECT * FROM tier_loads WHERE sha256 = '{sha}' AND status = 'succeeded'"
        ));
        let failed = db.count(&format!(
            "SELECT * FROM tier_loads WHERE sha256 = '{sha}' AND status = 'failed'"
        ));
        assert!(
            ok == 1 || failed > 0,
            "{} not accounted for",
            f.path().display()
        );
    }
    cluster.stop().unwrap();
}
