//! Faults: a load killed, interrupted, cut off by the server or by a restart, and connections
//! that fail. Each test makes sure its fault happened while the COPY was running, then checks
//! the table, the ledger and the report.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Whether a COPY of this database's runs on the server now.
fn copying(db: &TestDb) -> bool {
    db.count(
        "SELECT * FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%'",
    ) > 0
}

/// Starts `tier load` of `file` into `url` with a JSON report, and waits until its COPY runs.
fn start_load(db: &TestDb, url: &str, file: &std::path::Path) -> Child {
    let child = tier_cmd()
        .args([
            "load",
            "--database-url",
            url,
            "--progress",
            "never",
            "--report",
            "json",
            s(file),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !copying(db) {
        assert!(Instant::now() < deadline, "the COPY was never seen running");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// Waits for the load to end; checks it failed as a failed load must: exit 1, one message
/// naming the file, the file in the JSON report as `failed` with its error.
fn assert_failed(child: Child, file: &std::path::Path, why: &str) -> serde_json::Value {
    let out: Run = child.wait_with_output().unwrap().into();
    let code = if why == "interrupted" { 130 } else { 1 };
    assert_eq!(out.code, code, "{}", out.stderr);
    assert!(out.stderr.contains(s(file)), "{}", out.stderr);
    assert!(!out.stderr.contains("allowed ratio"), "{}", out.stderr);
    let f = out.json()["files"][0].clone();
    assert_eq!(f["status"], "failed", "{f}");
    let error = f["error"].as_str().unwrap_or_default().to_lowercase();
    assert!(!error.is_empty() && error.contains(why), "{error}");
    f
}

fn big_events(dir: &std::path::Path) -> std::path::PathBuf {
    generate(dir, "track_events.json", "track_events", 300_000, 5, 0.01)
}

#[test]
fn killed_load_leaves_tables_as_before_and_next_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(
        dir.path(),
        "track_events.json",
        "track_events",
        300_000,
        5,
        0.01,
    );
    let db = TestDb::new();
    // Something loaded before must survive unchanged.
    let small = generate(
        dir.path(),
        "small_track_events.json",
        "track_events",
        100,
        6,
        0.0,
    );
    assert_eq!(db.load(&[s(&small)]).code, 0);
    let mut child = tier_cmd()
        .args([
            "load",
            "--database-url",
            &db.url,
            "--progress",
            "never",
            s(&file),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the COPY is under way: the staging data reaches the server.
    let mut waited = 0;
    while waited < 400 && !copying(&db) {
        std::thread::sleep(std::time::Duration::from_millis(25));
        waited += 1;
    }
    assert!(copying(&db), "the COPY was never seen running");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the load finished before it could be killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The server notices the dead client and rolls its transaction back.
    let mut tries = 0;
    while copying(&db) && tries < 100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        tries += 1;
    }
    assert_eq!(db.count("SELECT * FROM track_events"), 100);
    assert_eq!(db.count("SELECT * FROM tier_loads"), 1);
    let run = db.load(&[s(&file), "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = &run.json()["files"][0];
    assert_eq!(f["records"], 300_000);
    assert_eq!(
        db.count("SELECT * FROM track_events") as u64,
        100 + f["loaded"].as_u64().unwrap()
    );
}

#[test]
fn a_backend_terminated_mid_copy_is_a_failed_load_in_the_report_and_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let file = big_events(dir.path());
    let db = TestDb::new();
    let child = start_load(&db, &db.url, &file);
    db.client()
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'COPY%'",
        )
        .unwrap();
    let f = assert_failed(child, &file, "");
    assert_eq!(db.count("SELECT * FROM track_events"), 0);
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'failed'"),
        1
    );
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'succeeded'"),
        0
    );
    let id = f["load_id"].as_i64().unwrap();
    assert_eq!(
        db.count(&format!(
            "SELECT * FROM tier_loads WHERE load_id = {id} AND error IS NOT NULL"
        )),
        1
    );
}

#[test]
fn ctrl_c_rolls_the_load_back_and_records_it_failed() {
    let dir = tempfile::tempdir().unwrap();
    let file = big_events(dir.path());
    let db = TestDb::new();
    let child = start_load(&db, &db.url, &file);
    // SAFETY: kill() on the pid of a child we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let f = assert_failed(child, &file, "interrupted");
    assert_eq!(f["loaded"], 0);
    assert_eq!(db.count("SELECT * FROM track_events"), 0);
    // The failed row names the content, and when the load began.
    let sha = f["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64, "{f}");
    assert_eq!(
        db.count(&format!(
            "SELECT * FROM tier_loads WHERE status = 'failed' AND sha256 = '{sha}' \
             AND bytes > 0 AND started_at < finished_at - interval '10 milliseconds'"
        )),
        1
    );
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'succeeded'"),
        0
    );
}

#[test]
fn a_server_restarted_mid_copy_is_a_failed_load_recorded_after_it() {
    // A server of its own: a restart must not disturb the other tests.
    let home = home_dir("tier-rst");
    let cluster = tier_core::db::embedded::Cluster::at(home.path()).unwrap();
    cluster.start().unwrap();
    let url = cluster.url();
    let db = TestDb { url: url.clone() };
    let dir = tempfile::tempdir().unwrap();
    let file = big_events(dir.path());
    let child = start_load(&db, &url, &file);
    restart_at_once(&cluster);
    assert_failed(child, &file, "");
    assert_eq!(db.count("SELECT * FROM track_events"), 0);
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'failed'"),
        1
    );
    cluster.stop().unwrap();
}

#[test]
fn connection_failures_are_one_clear_line_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 5, 12, 0.0);
    let refused = tier(&[
        "load",
        "--database-url",
        "postgresql://tier:s3cr3t-pw@127.0.0.1:1/tier",
        s(&file),
    ]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("cannot connect"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("s3cr3t-pw") && !refused.stdout.contains("s3cr3t-pw"));
    assert_eq!(
        refused
            .stderr
            .trim()
            .lines()
            .filter(|l| l.starts_with("tier:"))
            .count(),
        1,
        "{}",
        refused.stderr
    );
    let db = TestDb::new();
    let missing = db.url.replace("dbname=", "dbname=nope_");
    let run = tier(&[
        "load",
        "--database-url",
        &missing,
        "--progress",
        "never",
        s(&file),
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    let bad_url = tier(&["load", "--database-url", "postgresql://x:y@[", s(&file)]);
    assert_eq!(bad_url.code, 2, "{}", bad_url.stderr);
    assert!(!bad_url.stderr.contains("panicked"));
}

#[test]
fn wrong_password_is_one_clear_line_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 5, 16, 0.0);
    let db = TestDb::new();
    let mut c = db.client();
    // A role that must give its password (over the socket too); other roles keep their rules.
    c.batch_execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tier_pw') THEN \
         CREATE ROLE tier_pw LOGIN PASSWORD 'right-one'; END IF; END $$",
    )
    .unwrap();
    let hba: String = c.query_one("SHOW hba_file", &[]).unwrap().get(0);
    let rules = std::fs::read_to_string(&hba).unwrap();
    let rule = "local all tier_pw scram-sha-256\n";
    if !rules.starts_with(rule) {
        std::fs::write(&hba, format!("{rule}{rules}")).unwrap();
        c.batch_execute("SELECT pg_reload_conf()").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let url = db.url.replace("user=postgres", "user=tier_pw") + " password=wr0ng-s3cret";
    let run = tier(&["load", "--database-url", &url, s(&file)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("password authentication failed"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wr0ng-s3cret") && !run.stdout.contains("wr0ng-s3cret"));
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
}

/// The server down for longer than a few seconds in a run of several files: the file being
/// loaded fails, naming itself; the next wait for the server and load when it is back; every
/// file is in the report.
#[test]
fn files_after_an_outage_wait_for_the_server_and_each_is_in_the_report() {
    let home = home_dir("tier-out");
    let cluster = tier_core::db::embedded::Cluster::at(home.path()).unwrap();
    cluster.start().unwrap();
    let url = cluster.url();
    let db = TestDb { url: url.clone() };
    let dir = tempfile::tempdir().unwrap();
    let big = big_events(dir.path());
    let small: Vec<_> = (0..3)
        .map(|i| {
            generate(
                dir.path(),
                &format!("weather_{i}.json"),
                "weather",
                50,
                40 + i,
                0.0,
            )
        })
        .collect();
    let mut args = vec![
        "load",
        "--database-url",
        &url,
        "--progress",
        "never",
        "--report",
        "json",
    ];
    args.push(s(&big));
    args.extend(small.iter().map(|p| s(p)));
    let child = tier_cmd()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !copying(&db) {
        assert!(Instant::now() < deadline, "the COPY was never seen running");
        std::thread::sleep(Duration::from_millis(10));
    }
    cluster.stop().unwrap();
    std::thread::sleep(Duration::from_secs(10));
    cluster.start().unwrap();
    let out: Run = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(s(&big)), "{}", out.stderr);
    let report = out.json();
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 4, "{report}");
    assert_eq!(files[0]["status"], "failed");
    let mut loaded = 0;
    for f in &files[1..] {
        assert_eq!(f["status"], "succeeded", "{f}");
        assert_eq!(f["records"], 50, "{f}");
        loaded += f["loaded"].as_i64().unwrap();
    }
    assert!(loaded > 140);
    assert_eq!(db.count("SELECT * FROM weather"), loaded);
    cluster.stop().unwrap();
}

/// Ctrl-C while the file is read a second time (the staged route into a populated table) stops
/// the load too: exit 130, nothing committed.
#[test]
fn ctrl_c_during_the_second_reading_rolls_the_load_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = big_events(dir.path());
    let db = TestDb::new();
    // Some of the file's rows in the table already: the direct copy is refused, then the
    // file is read again into a staging table.
    let head: String = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .take(2000)
        .collect::<Vec<_>>()
        .join("\n");
    let part = dir.path().join("part").join("track_events.json");
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    std::fs::write(&part, head + "\n").unwrap();
    assert_eq!(db.load(&[s(&part)]).code, 0);
    let before = db.count("SELECT * FROM track_events");
    let child = tier_cmd()
        .args(["load", "--database-url", &db.url, "--progress", "never"])
        .args(["--report", "json", s(&file)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.count(
        "SELECT * FROM pg_stat_activity WHERE datname = current_database() \
         AND query LIKE 'COPY%tier_stage%'",
    ) == 0
    {
        assert!(
            Instant::now() < deadline,
            "the second reading was never seen"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill() on the pid of a child we started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    assert_failed(child, &file, "interrupted");
    assert_eq!(db.count("SELECT * FROM track_events"), before);
}
