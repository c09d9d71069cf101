//! Test tooling: one throwaway PostgreSQL server for the test run, a fresh database per test,
//! and helpers to run the `tier` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use tier_core::postgres::{config::Host, Client, Config, NoTls};

/// A prerequisite of a test is missing: the test is skipped when run by hand, and fails under
/// the test script (`TIER_TEST_STRICT`), which provides every prerequisite — no silent pass.
pub fn missing(what: &str) {
    assert!(
        std::env::var_os("TIER_TEST_STRICT").is_none(),
        "{what} is missing, and scripts/test.sh provides it"
    );
    eprintln!("skipped: {what} is missing");
}

/// The server's connection settings: `TIER_TEST_DATABASE_URL` when the test script started one,
/// else an embedded cluster under the target directory, started on first use.
fn server() -> &'static Config {
    static SERVER: OnceLock<Config> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("TIER_TEST_DATABASE_URL") {
            return url.parse().expect("TIER_TEST_DATABASE_URL");
        }
        let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pg");
        let cluster = tier_core::db::embedded::Cluster::at(&home).expect("cluster");
        cluster.start().expect("start the test server");
        cluster.config("postgres")
    })
}

/// A `key=value` connection string for `dbname` on the test server.
fn conninfo(dbname: &str) -> String {
    let c = server();
    let host = match &c.get_hosts()[0] {
        Host::Tcp(h) => h.clone(),
        Host::Unix(p) => p.display().to_string(),
    };
    let mut s = format!(
        "host={host} port={} user={} dbname={dbname}",
        c.get_ports().first().copied().unwrap_or(5432),
        c.get_user().unwrap_or("postgres")
    );
    if let Some(pw) = c.get_password() {
        s.push_str(&format!(" password={}", String::from_utf8_lossy(pw)));
    }
    s
}

/// A database of its own for one test.
pub struct TestDb {
    /// Connection string to hand to `tier --database-url`.
    pub url: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let maint = server().get_dbname().unwrap_or("postgres").to_string();
        let mut c = Client::connect(&conninfo(&maint), NoTls).expect("connect to test server");
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        TestDb {
            url: conninfo(&name),
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).expect("connect to test database")
    }

    /// `SELECT count(*)` of a query's rows.
    pub fn count(&self, sql: &str) -> i64 {
        self.client()
            .query_one(&format!("SELECT count(*) FROM ({sql}) q"), &[])
            .unwrap()
            .get(0)
    }

    /// Runs `tier load` against this database.
    pub fn load(&self, args: &[&str]) -> Run {
        let mut a = vec!["load", "--database-url", &self.url, "--progress", "never"];
        a.extend_from_slice(args);
        tier(&a)
    }
}

/// The outcome of one `tier` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn tier_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tier"));
    c.env_remove("DATABASE_URL")
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env_remove("PGUSER")
        .env_remove("PGPASSWORD")
        .env_remove("PGDATABASE")
        .env("RUST_LOG", "warn");
    c
}

pub fn tier(args: &[&str]) -> Run {
    tier_cmd().args(args).output().expect("run tier").into()
}

/// Writes generated data to `dir/name`.
pub fn generate(
    dir: &Path,
    name: &str,
    dataset: &str,
    records: u64,
    seed: u64,
    defects: f64,
) -> PathBuf {
    let path = dir.join(name);
    let r = tier(&[
        "generate",
        dataset,
        "--records",
        &records.to_string(),
        "--seed",
        &seed.to_string(),
        "--defect-rate",
        &defects.to_string(),
        "-o",
        path.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    path
}

/// Writes `track_events.json` and `weather.json` with these many records to `dir`.
pub fn exports(dir: &Path, events: u64, weather: u64, seed: u64, defects: f64) {
    generate(
        dir,
        "track_events.json",
        "track_events",
        events,
        seed,
        defects,
    );
    generate(dir, "weather.json", "weather", weather, seed + 1, defects);
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A short home directory under /tmp that the server's account can enter (tests run as root,
/// the server as `postgres`).
pub fn home_dir(prefix: &str) -> tempfile::TempDir {
    let home = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(
        home.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    home
}

/// Restarts an embedded cluster's server at once (`pg_ctl restart -m immediate`: a crash and a
/// recovery), as the server's account.
pub fn restart_at_once(cluster: &tier_core::db::embedded::Cluster) {
    let pg_ctl = tier_core::db::embedded::find_binary("pg_ctl").unwrap();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let mut restart = if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
        c
    } else {
        Command::new(&pg_ctl)
    };
    let ok = restart
        .arg("-D")
        .arg(cluster.data_dir())
        .args(["-m", "immediate", "-w", "restart"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `tier load --lake LAKE --report json ARGS…`.
pub fn lake_load(lake: &Path, args: &[&str]) -> Run {
    let mut a = vec![
        "load",
        "--lake",
        s(lake),
        "--progress",
        "never",
        "--report",
        "json",
    ];
    a.extend_from_slice(args);
    tier(&a)
}

/// A lake load of `input` (run in `cwd`, with `extra` arguments) that dies by SIGKILL at the
/// crash point `fault`.
pub fn killed_lake_load(cwd: &Path, lake: &str, input: &Path, fault: &str, extra: &[&str]) {
    let out = tier_cmd()
        .current_dir(cwd)
        .env("TIER_FAULT", fault)
        .args(["load", "--lake", lake, "--progress", "never", s(input)])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
