//! The embedded server: created, started and left running; durable and private, with a short
//! and a long `TIER_HOME`; `tier db status` looks without touching anything.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use std::path::Path;

use crate::common::*;

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

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A line of `tier db status`: `data`, `socket` or `home`.
fn status_line(status: &Run, name: &str) -> String {
    status
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {}", status.stdout))
        .trim()
        .to_string()
}

/// As root, a home the server's account cannot enter (a checkout under `/root`, mode 0700):
/// the data lives under `/var/lib/tier`, the socket in a private directory under `/tmp`, every
/// `db` command finds them, and `db destroy` removes them. When the home is deleted and made
/// again at the same path (a checkout cloned again), the next start finds that cluster.
#[test]
fn a_home_the_server_account_cannot_enter_is_served_from_outside() {
    if !is_root() {
        eprintln!("not root: the cluster lives in the home; nothing to check");
        return;
    }
    let parent = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let home = parent.path().join("checkout/.tier");
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 40, 3, 0.0);
    let load = run_in(&home, &["load", "--progress", "never", s(&file)]);
    assert_eq!(load.code, 0, "{}", load.stderr);
    let status = run_in(&home, &["db", "status"]);
    assert_eq!(status.code, 0, "{}", status.stdout);
    let data = std::path::PathBuf::from(status_line(&status, "data"));
    assert!(data.starts_with("/var/lib/tier"), "{}", status.stdout);
    assert!(
        status_line(&status, "socket").starts_with("/tmp/"),
        "{}",
        status.stdout
    );
    let psql = run_in(
        &home,
        &["db", "psql", "-Atc", "SELECT count(*) FROM weather"],
    );
    assert_eq!(psql.code, 0, "{}", psql.stderr);
    assert_eq!(psql.stdout.trim(), "40");
    assert_eq!(run_in(&home, &["db", "stop"]).code, 0);

    // The checkout deleted and cloned again: the same cluster, linked again.
    std::fs::remove_dir_all(parent.path().join("checkout")).unwrap();
    for args in [&["db", "start"][..], &["db", "status"], &["db", "url"]] {
        let run = run_in(&home, args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }
    assert_eq!(std::fs::read_link(home.join("pgdata")).unwrap(), data);

    // Destroyed without a terminal to ask: refused; with --yes: gone, wherever it was.
    let refused = run_in(&home, &["db", "destroy"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(data.exists());
    let destroyed = run_in(&home, &["db", "destroy", "--yes"]);
    assert_eq!(destroyed.code, 0, "{}", destroyed.stderr);
    assert!(!data.exists() && !home.join("pgdata").exists());
    let status = run_in(&home, &["db", "status"]);
    assert_eq!(status.code, 3);
    assert!(status.stdout.contains("not created"), "{}", status.stdout);
}

/// A home not made yet, in a folder the server's account can enter, keeps its data inside: the
/// choice is made for the home as it will be, and removing the home resets everything.
#[test]
fn a_new_home_keeps_its_data_inside_and_removing_it_resets_everything() {
    let parent = home_dir("tier-new");
    let home = parent.path().join("h");
    let start = run_in(&home, &["db", "start"]);
    assert_eq!(start.code, 0, "{}", start.stderr);
    let status = run_in(&home, &["db", "status"]);
    assert_eq!(
        status_line(&status, "data"),
        home.join("pgdata").display().to_string()
    );
    assert_eq!(run_in(&home, &["db", "stop"]).code, 0);
    std::fs::remove_dir_all(&home).unwrap();
    let status = run_in(&home, &["db", "status"]);
    assert_eq!(status.code, 3);
    assert!(status.stdout.contains("not created"), "{}", status.stdout);
}

/// Commands that only read say there is no database (exit 3) and create nothing.
#[test]
fn commands_that_only_read_create_no_database() {
    let parent = home_dir("tier-ro");
    let home = parent.path().join("h");
    for args in [
        &["loads"][..],
        &["db", "url"],
        &["db", "psql", "-c", "SELECT 1"],
    ] {
        let run = run_in(&home, args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("no embedded database"),
            "{}",
            run.stderr
        );
        assert!(!home.exists(), "{args:?} created {}", home.display());
    }
}

/// A home whose path holds quotes, `$(…)`, backquotes and a comma works, and runs no command.
#[test]
fn a_home_with_shell_characters_in_its_path_runs_no_command() {
    let parent = home_dir("tier-sh");
    let home = parent
        .path()
        .join("r'$(touch pwned1)\"`touch pwned2`, x")
        .join(".tier");
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 10, 4, 0.0);
    let load = tier_cmd()
        .current_dir(parent.path())
        .env("TIER_HOME", &home)
        .args(["load", "--progress", "never", s(&file)])
        .output()
        .unwrap();
    let load = Run::from(load);
    assert_eq!(load.code, 0, "{}", load.stderr);
    let pwned: Vec<_> = walk_names(parent.path())
        .into_iter()
        .chain(walk_names(Path::new("/tmp")))
        .filter(|n| n.starts_with("pwned"))
        .collect();
    assert!(pwned.is_empty(), "a command ran: {pwned:?}");
    assert_eq!(run_in(&home, &["db", "destroy", "--yes"]).code, 0);
}

/// The names of the files right under `dir` and one level below.
fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.file_name().to_string_lossy().into_owned());
        if e.path().is_dir() && !e.path().is_symlink() {
            for f in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
                out.push(f.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// A server that cannot start: the log's last lines under the message, each indented on a line
/// of its own.
#[test]
fn a_server_that_cannot_start_says_why_on_lines_of_their_own() {
    let home = home_dir("tier-bad");
    assert_eq!(run_in(home.path(), &["db", "start"]).code, 0);
    assert_eq!(run_in(home.path(), &["db", "stop"]).code, 0);
    let status = run_in(home.path(), &["db", "status"]);
    let conf = Path::new(&status_line(&status, "data")).join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\nshared_buffers = 'lots'\n");
    std::fs::write(&conf, text).unwrap();
    let start = run_in(home.path(), &["db", "start"]);
    assert_eq!(start.code, 1, "{}", start.stderr);
    assert!(start.stderr.contains("\n  "), "{}", start.stderr);
    assert!(start.stderr.contains("shared_buffers"), "{}", start.stderr);
    assert!(!start.stderr.contains("\\n"), "{}", start.stderr);
}
