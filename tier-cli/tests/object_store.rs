//! Object storage from Rust: `s3://` inputs and lakes through the library and the CLI, against
//! a local S3-compatible server (`moto_server`, named by `TIER_TEST_MOTO_SERVER` or found on
//! `PATH`; `scripts/test.sh` installs it). Every case runs in this one test: the standard
//! variables are set for the whole process.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tier_core::Destination;
use tier_core::Quiet;
use tier_core::{Bucket, Url};
use tier_core::{LoadOptions, ReadOptions};

struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One plain HTTP request to the server; its status code.
fn http(port: u16, method: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split(' ').nth(1)?.parse().ok()
}

fn start() -> Option<Server> {
    let exe = match std::env::var_os("TIER_TEST_MOTO_SERVER") {
        Some(exe) => PathBuf::from(exe),
        None => std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("moto_server"))
                .find(|f| f.is_file())
        })?,
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(exe)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let server = Server(child, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(port, "GET", "/moto-api/").is_none() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(server)
}

fn url(s: &str) -> PathBuf {
    PathBuf::from(s)
}

#[test]
fn s3_inputs_and_lakes_through_the_library_and_the_cli() {
    let Some(server) = start() else {
        missing("moto_server (TIER_TEST_MOTO_SERVER, PATH)");
        return;
    };
    let port = server.1;
    std::env::set_var("AWS_ACCESS_KEY_ID", "rust-test-key");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "rust-test-secret-never-printed");
    std::env::set_var("AWS_REGION", "eu-west-1");
    std::env::set_var("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
    std::env::set_var("AWS_ALLOW_HTTP", "true");
    // moto takes an unsigned bucket creation.
    assert_eq!(http(port, "PUT", "/raw"), Some(200));

    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "a.json", "track_events", 1200, 1, 0.05);
    generate(dir.path(), "b.json", "weather", 700, 2, 0.05);
    let bucket = Bucket::of(&Url::parse(&url("s3://raw/in/")).unwrap()).unwrap();
    for f in ["a.json", "b.json"] {
        bucket
            .upload(&dir.path().join(f), &format!("in/day/{f}"))
            .unwrap();
    }

    // The library: a prefix lists its objects; check and load read them as files.
    let files = tier_core::expand_inputs(&[url("s3://raw/in")], &[]).unwrap();
    assert_eq!(
        files,
        [url("s3://raw/in/day/a.json"), url("s3://raw/in/day/b.json")]
    );
    let local = [dir.path().join("a.json"), dir.path().join("b.json")];
    let read = ReadOptions::default();
    let counts = |files: &[PathBuf]| -> Vec<(u64, u64, String)> {
        tier_core::check_files(files, &read, None, 1, &Quiet)
            .into_iter()
            .map(|r| r.unwrap())
            .map(|r| (r.records, r.rejected, r.sha256))
            .collect()
    };
    assert_eq!(counts(&files), counts(&local));

    let db = TestDb::new();
    let dest = Destination::Postgres {
        database_url: Some(db.url.clone()),
    };
    let opts = LoadOptions::default();
    let first = tier_core::load_files(&files, &dest, &opts, 2, &Quiet).unwrap();
    let loaded: u64 = first.iter().map(|r| r.as_ref().unwrap().loaded).sum();
    assert!(loaded > 0);
    assert_eq!(
        db.count("SELECT 1 FROM track_events") + db.count("SELECT 1 FROM weather"),
        loaded as i64
    );
    assert_eq!(
        db.count("SELECT 1 FROM tier_loads WHERE source LIKE 's3://raw/in/day/%'"),
        2
    );

    // The CLI: a re-run skips; a lake on the bucket; errors name the URL and hide the secret.
    let again = db.load(&["s3://raw/in/", "--report", "json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let statuses: Vec<_> = again.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["skipped", "skipped"]);

    let lake = tier(&[
        "load",
        "s3://raw/in/day/b.json",
        "--lake",
        "s3://raw/lake",
        "-q",
    ]);
    assert_eq!(lake.code, 0, "{}", lake.stderr);
    let parts = bucket.list("lake/weather/").unwrap();
    let (meta, data): (Vec<_>, Vec<_>) = parts
        .iter()
        .partition(|(k, _)| k.starts_with("lake/weather/metadata/"));
    assert!(!data.is_empty() && data.iter().all(|(k, _)| k.ends_with(".parquet")));
    // An Iceberg table in the bucket: its first metadata version, named by the hint.
    assert!(
        meta.iter().any(|(k, _)| k.ends_with("/v1.metadata.json")),
        "{meta:?}"
    );
    assert_eq!(
        bucket
            .get("lake/weather/metadata/version-hint.text")
            .unwrap(),
        Some(b"1".to_vec())
    );
    assert!(bucket.get("lake/_tier/loads.jsonl").unwrap().is_some());

    // Two machines loading one file at once, both past the ledger's look-up (the ledger emptied
    // here to stand for that): the later one writes none of the earlier one's parts, yields at
    // its commit and removes what it uploaded; no claim on a name is left.
    let parts_of = |bucket: &Bucket| -> Vec<(String, Vec<u8>)> {
        let mut keys: Vec<String> = bucket
            .list("lake/weather/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.ends_with(".parquet"))
            .collect();
        keys.sort();
        keys.into_iter()
            .map(|k| (k.clone(), bucket.get(&k).unwrap().unwrap()))
            .collect()
    };
    let before = parts_of(&bucket);
    bucket.put("lake/_tier/loads.jsonl", Vec::new()).unwrap();
    let second = tier(&[
        "load",
        "s3://raw/in/day/b.json",
        "--lake",
        "s3://raw/lake",
        "--report",
        "json",
    ]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.json()["files"][0]["status"], "skipped");
    assert!(
        parts_of(&bucket) == before,
        "the first load's parts changed"
    );
    assert_eq!(bucket.list("lake/_tier/claims/").unwrap(), []);

    for (input, words) in [
        ("s3://raw/in/day/none.json", "no such object"),
        ("s3://nobucket/a.json", "bucket"),
    ] {
        let r = tier(&["check", input]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr.contains(input) && r.stderr.contains(words),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("rust-test-secret"), "{}", r.stderr);
    }
    let bad = tier(&["check", "s3:///key"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);

    // A watcher over the bucket's prefix: its objects load once; an empty prefix is no error.
    let watched = TestDb::new();
    for _ in 0..2 {
        let w = tier(&[
            "watch",
            "s3://raw/in/",
            "--database-url",
            &watched.url,
            "--once",
            "--settle",
            "0",
        ]);
        assert_eq!(w.code, 0, "{}", w.stderr);
    }
    assert_eq!(watched.count("SELECT * FROM tier_loads"), 2);
    assert_eq!(
        watched.count("SELECT 1 FROM track_events") + watched.count("SELECT 1 FROM weather"),
        loaded as i64
    );
    let empty = tier(&[
        "watch",
        "s3://raw/nothing/",
        "--database-url",
        &watched.url,
        "--once",
    ]);
    assert_eq!(empty.code, 0, "{}", empty.stderr);

    // A lake that is not there: one line and exit 1, naming the bucket when it is the bucket.
    let none = tier(&["loads", "--lake", "s3://nobucket/lake"]);
    assert_eq!(none.code, 1, "{}", none.stderr);
    assert!(
        none.stderr.contains("bucket nobucket does not exist"),
        "{}",
        none.stderr
    );
    let empty = tier(&["loads", "--lake", "s3://raw/nolake"]);
    assert_eq!(empty.code, 1, "{}", empty.stderr);
    assert!(empty.stderr.contains("no lake"), "{}", empty.stderr);
    let into = tier(&[
        "load",
        "s3://raw/in/day/b.json",
        "--lake",
        "s3://nobucket/lake",
    ]);
    assert_eq!(into.code, 1, "{}", into.stderr);
    assert!(
        into.stderr.contains("bucket nobucket does not exist"),
        "{}",
        into.stderr
    );
    // A plain-HTTP endpoint needs AWS_ALLOW_HTTP, and is told so.
    let http_only = tier_cmd()
        .env_remove("AWS_ALLOW_HTTP")
        .args(["check", "s3://raw/in/day/b.json"])
        .output()
        .unwrap();
    let http_only = Run::from(http_only);
    assert_eq!(http_only.code, 2, "{}", http_only.stderr);
    assert!(
        http_only.stderr.contains("AWS_ALLOW_HTTP"),
        "{}",
        http_only.stderr
    );
}
