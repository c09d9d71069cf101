//! The embedded PostgreSQL: a private cluster under `$TIER_HOME` (default `./.tier`), created
//! and started with the server binaries on the machine, reachable through a Unix socket only.
//!
//! Durable: PostgreSQL's durability settings stay at their defaults. Private: the socket lives in
//! a directory of mode 0700 that tier creates itself (a short one under `/tmp` when the home's
//! path is too long for a socket), the socket is 0700, and connections are authenticated by
//! `peer`: only the account that created the cluster (and the server's own account) may connect.
//!
//! PostgreSQL refuses to run as root: when tier runs as root, the server runs as the `postgres`
//! account (through `runuser`), which then owns the data directory; where that account cannot
//! enter `$TIER_HOME` (a home under `/root`, mode 0700), the data lives under `/var/lib/tier/`
//! (never under `/tmp`), linked from the home as `pgdata`, and the socket in a private directory
//! under `/tmp`. The choice is made once, when the cluster is created, and read back from the
//! home by every later command.
//!
//! The server is started without a shell in between (`postgres -D <data>` with its settings as
//! arguments), so no character of a path can run a command.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::home::*;
use crate::error::{Error, Result};

/// The database tier creates in the embedded cluster.
pub const DATABASE: &str = "tier";
/// The superuser of the embedded cluster.
pub const USER: &str = "postgres";
const PORT: u16 = 5432;
/// Where root's clusters live when the server account cannot enter `$TIER_HOME`.
const OUTSIDE: &str = "/var/lib/tier";

/// An embedded cluster rooted at a home directory.
#[derive(Debug, Clone)]
pub struct Cluster {
    home: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
}

/// Whether the cluster's server is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No cluster has been created yet.
    Absent,
    /// Created, not running.
    Stopped,
    /// Running and accepting connections on its socket.
    Running,
}

fn short_hash(s: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(s.as_bytes()))
}

/// Finds a PostgreSQL server binary: on `PATH`, in `pg_config --bindir`, or under
/// `/usr/lib/postgresql/*/bin` (newest first).
pub fn find_binary(name: &str) -> Result<PathBuf> {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join(name).is_file() {
            return Ok(dir.join(name));
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    for v in versions.iter().rev() {
        let p = v.join("bin").join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::Embedded(format!(
        "`{name}` not found on PATH, in `pg_config --bindir` or under /usr/lib/postgresql/*/bin; \
         install the PostgreSQL server (e.g. `apt-get install postgresql`) or name a database"
    )))
}

impl Cluster {
    /// The cluster of `$TIER_HOME`, or `./.tier`.
    pub fn from_env() -> Result<Cluster> {
        let home = std::env::var_os("TIER_HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".tier"));
        Cluster::at(&home)
    }

    /// The cluster whose home is `home`. Nothing is created until [`Cluster::start`].
    pub fn at(home: &Path) -> Result<Cluster> {
        let home = match home.canonicalize() {
            Ok(h) => h,
            Err(_) if home.is_absolute() => home.to_path_buf(),
            Err(_) => std::env::current_dir()
                .map_err(|e| Error::io(home, e))?
                .join(home),
        };
        let key = short_hash(&home.display().to_string());
        let link = home.join("pgdata");
        let outside = PathBuf::from(format!("{OUTSIDE}/{key}"));
        // The server account must reach the data directory: when running as root in a home
        // it cannot enter, the cluster lives under /var/lib/tier and `pgdata` links to it.
        // A home not made yet is judged by the folder it will be made in.
        let data = match std::fs::read_link(&link) {
            Ok(target) => target,
            Err(_) if link.is_dir() => link,
            Err(_) if running_as_root() && !postgres_can_enter(nearest_existing(&home)) => outside,
            Err(_) => link,
        };
        let run = home.join("run");
        // A server running says where its socket is. Else a socket path must stay under ~100
        // bytes (`<dir>/.s.PGSQL.5432`), be reachable by the server's account, and be a plain
        // path (the setting is a list of names).
        let socket_dir = if let Some(dir) = running_socket(&data) {
            dir
        } else if data.starts_with(&home) && run.as_os_str().len() <= 80 && plain(&run) {
            run
        } else {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let uid = unsafe { libc::geteuid() };
            PathBuf::from(format!("/tmp/tier-{uid}-{key}"))
        };
        Ok(Cluster {
            home,
            data,
            socket_dir,
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// A connection URL for the cluster's `tier` database.
    ///
    /// ```
    /// let c = tier_core::db::embedded::Cluster::at(&std::env::temp_dir().join("tier-doc")).unwrap();
    /// assert!(c.url().starts_with("postgresql://postgres@/tier?host=/"));
    /// ```
    pub fn url(&self) -> String {
        format!(
            "postgresql://{USER}@/{DATABASE}?host={}&port={PORT}",
            self.socket_dir.display()
        )
    }

    /// The connection configuration for `database`.
    pub fn config(&self, database: &str) -> postgres::Config {
        let mut c = postgres::Config::new();
        c.host_path(&self.socket_dir);
        c.port(PORT);
        c.user(USER);
        c.dbname(database);
        c
    }

    /// Whether the cluster exists and runs.
    pub fn state(&self) -> State {
        if !self.data.join("PG_VERSION").exists() {
            return State::Absent;
        }
        match self
            .pg_ctl(&["status"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(s) if s.success() => State::Running,
            _ => State::Stopped,
        }
    }

    fn as_server_user(&self, program: &Path) -> Command {
        if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut c = self.as_server_user(&find_binary("pg_ctl").unwrap_or_else(|_| "pg_ctl".into()));
        c.arg("-D").arg(&self.data).args(args);
        c
    }

    /// Creates the cluster if needed and starts it if it is not running; then makes sure the
    /// `tier` database exists. Safe to call when it already runs.
    pub fn start(&self) -> Result<()> {
        if self.state() == State::Running {
            return Ok(());
        }
        // One starter at a time, across threads and processes.
        let _lock = HomeLock::take(&self.home)?;
        if self.state() == State::Running {
            return Ok(());
        }
        self.link_outside()?;
        if !self.data.join("PG_VERSION").exists() {
            self.init()?;
        }
        self.write_access_rules()?;
        private_dir(&self.socket_dir)?;
        self.spawn_server()?;
        let mut c = super::connect::connect(&self.config("postgres"), "the embedded PostgreSQL")?;
        let exists = c
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DATABASE])?
            .is_some();
        if !exists {
            c.batch_execute(&format!("CREATE DATABASE {DATABASE}"))?;
        }
        log::info!("embedded PostgreSQL running ({})", self.url());
        Ok(())
    }

    /// Starts `postgres` on the data directory, detached in a session of its own, its output
    /// appended to `server.log`, and waits until it accepts connections (60 s at most).
    fn spawn_server(&self) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let log_path = self.data.join("server.log");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(&log_path, e))?;
        let err = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
        let mut cmd = self.as_server_user(&find_binary("postgres")?);
        cmd.arg("-D").arg(&self.data);
        // Durability settings stay at their defaults; fewer checkpoints cost no committed data.
        // A server of one machine replicates nowhere: with the least WAL, a bulk load into a
        // table emptied in its transaction writes its rows once (synced at commit).
        let socket = format!("unix_socket_directories={}", self.socket_dir.display());
        for setting in [
            "listen_addresses=",
            &format!("port={PORT}"),
            &socket,
            "unix_socket_permissions=0700",
            "max_wal_size=4GB",
            "checkpoint_timeout=30min",
            "wal_level=minimal",
            "max_wal_senders=0",
        ] {
            cmd.arg("-c").arg(setting);
        }
        cmd.stdin(Stdio::null()).stdout(log).stderr(err);
        // SAFETY: setsid is async-signal-safe; the server leaves the terminal's session, so a
        // Ctrl-C meant for tier does not stop it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Embedded(format!("cannot run postgres: {e}")))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut probe = self.config("postgres");
        probe.connect_timeout(std::time::Duration::from_secs(2));
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(Error::Embedded(format!(
                    "the server did not start ({status}); the end of {}:{}",
                    log_path.display(),
                    log_tail(&log_path)
                )));
            }
            if probe.connect(postgres::NoTls).is_ok() {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(Error::Embedded(format!(
                    "the server did not accept connections within 60 s; the end of {}:{}",
                    log_path.display(),
                    log_tail(&log_path)
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Stops the server and removes the cluster's data, its socket directory and the home's
    /// link to it. Returns the data directory removed, if there was one.
    pub fn destroy(&self) -> Result<Option<PathBuf>> {
        let _lock = HomeLock::take(&self.home)?;
        if self.state() == State::Running {
            self.stop()?;
        }
        let link = self.home.join("pgdata");
        let existed = self.data.exists();
        for dir in [&self.data, &self.socket_dir] {
            match std::fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io(dir, e))
                }
                _ => {}
            }
        }
        if std::fs::read_link(&link).is_ok() {
            std::fs::remove_file(&link).map_err(|e| Error::io(&link, e))?;
        }
        Ok(existed.then(|| self.data.clone()))
    }

    /// Who may connect: over the socket only, by `peer`, the creating account and the server's.
    fn write_access_rules(&self) -> Result<()> {
        let me = account_name()?;
        let hba = self.data.join("pg_hba.conf");
        let ident = self.data.join("pg_ident.conf");
        let write =
            |path: &Path, text: String| std::fs::write(path, text).map_err(|e| Error::io(path, e));
        write(
            &hba,
            "# Written by tier: the Unix socket only, by peer, the accounts of pg_ident.conf.\n\
             local all all peer map=tier\n"
                .into(),
        )?;
        let mut accounts = vec![me];
        if running_as_root() {
            accounts.push(USER.to_string());
        }
        accounts.dedup();
        let lines: String = accounts
            .iter()
            .map(|a| format!("tier {a} {USER}\n"))
            .collect();
        write(&ident, format!("# Written by tier.\n{lines}"))?;
        if running_as_root() {
            chown_to_postgres(&hba)?;
            chown_to_postgres(&ident)?;
        }
        Ok(())
    }

    /// A cluster under /var/lib/tier gets its `pgdata` link in the home, also when the cluster
    /// is older than the home (a checkout cloned again at the same path): without the link, the
    /// next command, finding the home now exists, would look for the cluster inside it.
    fn link_outside(&self) -> Result<()> {
        if !self.data.starts_with(OUTSIDE) {
            return Ok(());
        }
        std::fs::create_dir_all(OUTSIDE).map_err(|e| Error::io(OUTSIDE, e))?;
        let link = self.home.join("pgdata");
        std::fs::create_dir_all(&self.home).map_err(|e| Error::io(&self.home, e))?;
        if std::fs::read_link(&link).is_err() {
            std::os::unix::fs::symlink(&self.data, &link).map_err(|e| Error::io(&link, e))?;
        }
        Ok(())
    }

    fn init(&self) -> Result<()> {
        std::fs::create_dir_all(&self.data).map_err(|e| Error::io(&self.data, e))?;
        set_mode(&self.data, 0o700)?;
        if running_as_root() {
            chown_to_postgres(&self.data)?;
        }
        let initdb = find_binary("initdb")?;
        let out = self
            .as_server_user(&initdb)
            .arg("-D")
            .arg(&self.data)
            .args([
                "--auth-local=peer",
                "--auth-host=reject",
                "-U",
                USER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Embedded(format!("cannot run initdb: {e}")))?;
        if !out.status.success() {
            return Err(Error::Embedded(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Stops the server if it runs.
    pub fn stop(&self) -> Result<()> {
        if self.state() != State::Running {
            return Ok(());
        }
        let out = self
            .pg_ctl(&["-w", "-m", "fast", "stop"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Embedded(format!("cannot run pg_ctl: {e}")))?;
        if !out.status.success() {
            return Err(Error::Embedded(format!(
                "stop failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

/// The last lines of a server log, each on an indented line of its own.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines
        .into_iter()
        .rev()
        .map(|l| format!("\n  {l}"))
        .collect()
}

/// The socket directory of the server running on `data`, from its `postmaster.pid` (its fifth
/// line), when the process it names is alive.
fn running_socket(data: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid: libc::pid_t = lines.next()?.trim().parse().ok()?;
    let dir = PathBuf::from(lines.nth(3)?.trim());
    // SAFETY: kill with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) == 0 }
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    (pid > 0 && alive && dir.is_absolute()).then_some(dir)
}
