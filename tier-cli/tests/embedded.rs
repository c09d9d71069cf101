//! The embedded server: created, started and left running; durable and private, with a short
//! and a long `TIER_HOME`; `tier db status` looks without touching anything.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use std::path::Path;

use common::*;

fn run_in(home: &Path, args: &[&str]) -> Run {
    tier_cmd()
        .env("TIER_HOME", home)
        .args(args)
        .output()
        .unwrap()
        .into()
}

#[test]
fn embedded_default_is_created_started_and_left_running() {
    let home = home_dir("tier-emb");
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 30, 15, 0.0);
    let run_in_home = |args: &[&str]| -> Run {
        tier_cmd()
            .env("TIER_HOME", home.path())
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let load = run_in_home(&["load", "--progress", "never", s(&file), "--report", "json"]);
    assert_eq!(load.code, 0, "{}", load.stderr);
    assert_eq!(load.json()["files"][0]["loaded"], 30);
    let status = run_in_home(&["db", "status"]);
    assert!(status.stdout.starts_with("running"), "{}", status.stdout);
    let url = run_in_home(&["db", "url"]).stdout.trim().to_string();
    let mut c = tier_core::postgres::Client::connect(&url, tier_core::postgres::NoTls).unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM weather", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 30);
    assert_eq!(run_in_home(&["db", "stop"]).code, 0);
    assert!(run_in_home(&["db", "status"]).stdout.starts_with("stopped"));
}

/// Durable and private: checked with a short and with a long (> 90 characters) home.
#[test]
fn the_embedded_server_is_durable_and_private() {
    let short = home_dir("tier-s");
    let long_parent = home_dir("tier-l");
    let long = long_parent.path().join("x".repeat(100));
    std::fs::create_dir(&long).unwrap();
    std::fs::set_permissions(&long, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(long.as_os_str().len() > 90);
    for home in [short.path(), long.as_path()] {
        // Status looks only: nothing is created, exit 3 when nothing runs.
        let status = run_in(home, &["db", "status"]);
        assert_eq!(status.code, 3, "{}", status.stdout);
        assert!(status.stdout.contains("not created"), "{}", status.stdout);
        assert_eq!(
            std::fs::read_dir(home).unwrap().count(),
            0,
            "status created something"
        );

        let start = run_in(home, &["db", "start"]);
        assert_eq!(start.code, 0, "{}", start.stderr);
        let status = run_in(home, &["db", "status"]);
        assert_eq!(status.code, 0);
        let socket_dir = status
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("socket: "))
            .unwrap()
            .to_string();
        assert!(status.stdout.contains("data:"), "{}", status.stdout);
        assert!(
            !status.stdout.contains("/tmp/tier-pgdata"),
            "{}",
            status.stdout
        );
        // The socket directory and the socket: 0700.
        let dir_mode = std::fs::metadata(&socket_dir).unwrap().mode() & 0o777;
        assert_eq!(dir_mode, 0o700, "{socket_dir}");
        let sock = Path::new(&socket_dir).join(".s.PGSQL.5432");
        assert_eq!(std::fs::metadata(&sock).unwrap().mode() & 0o777, 0o700);
        // Durability settings at their defaults.
        let url = run_in(home, &["db", "url"]).stdout.trim().to_string();
        let mut c = tier_core::postgres::Client::connect(&url, tier_core::postgres::NoTls).unwrap();
        for setting in ["fsync", "full_page_writes", "synchronous_commit"] {
            let v: String = c.query_one(&format!("SHOW {setting}"), &[]).unwrap().get(0);
            assert_eq!(v, "on", "{setting}");
        }
        // Another local account is refused.
        if unsafe { libc::geteuid() } == 0 {
            let other = std::process::Command::new("runuser")
                .args(["-u", "nobody", "--", "psql", &url, "-XAtc", "SELECT 1"])
                .output()
                .unwrap();
            assert!(!other.status.success(), "another account connected");
        } else {
            println!("not root: the test with a second local account is skipped");
        }
        assert_eq!(run_in(home, &["db", "stop"]).code, 0);
        let status = run_in(home, &["db", "status"]);
        assert_eq!(status.code, 3);
        assert!(status.stdout.starts_with("stopped"), "{}", status.stdout);
    }
}

/// A socket directory that exists already and is not the server account's private one is
/// refused, not reused.
#[test]
fn a_foreign_socket_directory_is_refused() {
    let parent = home_dir("tier-f");
    let home = parent.path().join("y".repeat(100));
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cluster = tier_core::db::embedded::Cluster::at(&home).unwrap();
    let sock = cluster.socket_dir().to_path_buf();
    assert!(sock.starts_with("/tmp"));
    std::fs::create_dir_all(&sock).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    let start = run_in(&home, &["db", "start"]);
    assert_eq!(start.code, 1, "{}", start.stderr);
    assert!(
        start.stderr.contains("not a private directory"),
        "{}",
        start.stderr
    );
    std::fs::remove_dir(&sock).unwrap();
    let _ = run_in(&home, &["db", "stop"]);
}

/// As root, a home the server account cannot enter yet keeps its cluster under
/// `/var/lib/tier`. When the home is deleted and made again at the same path (a checkout cloned
/// again), the next start finds that cluster and links it, so later commands use the same one.
#[test]
fn a_home_made_again_finds_its_cluster() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the cluster lives in the home; nothing to check");
        return;
    }
    let parent = home_dir("tier-again");
    let home = parent.path().join("h");
    let data = tier_core::db::embedded::Cluster::at(&home)
        .unwrap()
        .data_dir()
        .to_path_buf();
    assert!(data.starts_with("/var/lib/tier"), "{}", data.display());
    let first = run_in(&home, &["db", "start"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(run_in(&home, &["db", "stop"]).code, 0);
    std::fs::remove_dir_all(&home).unwrap();
    for args in [&["db", "start"][..], &["db", "status"], &["db", "url"]] {
        let run = run_in(&home, args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }
    assert_eq!(
        std::fs::read_link(home.join("pgdata")).unwrap(),
        data,
        "the home links the cluster it had"
    );
    assert_eq!(run_in(&home, &["db", "stop"]).code, 0);
    std::fs::remove_dir_all(&data).unwrap();
}
