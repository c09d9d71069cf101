//! Log records on standard error and, when asked, in a file: time, level, target, message.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The run's log file, when there is one.
static FILE: OnceLock<Mutex<File>> = OnceLock::new();

/// The log file of a run: the one asked for, else a new file under `data/log/` when that
/// folder exists (as the original loader did).
pub fn log_path(asked: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = asked {
        return Some(p.to_path_buf());
    }
    let dir = Path::new("data/log");
    if dir.is_dir() {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        return Some(dir.join(format!("tier-{stamp}-{}.log", std::process::id())));
    }
    None
}

fn to_file(buf: &[u8]) -> io::Result<()> {
    match FILE.get() {
        Some(f) => f.lock().unwrap_or_else(|e| e.into_inner()).write_all(buf),
        None => Ok(()),
    }
}

/// Log records go to standard error and to the log file.
struct Tee;

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io::stderr().write_all(buf)?;
        to_file(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Sets the logger up: `RUST_LOG` wins, else `-v`/`-q` choose the level (default info).
pub fn init(verbose: u8, quiet: bool, file: Option<&Path>) -> io::Result<()> {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    if let Some(p) = file {
        let f = File::options()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
        let _ = FILE.set(Mutex::new(f));
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .format_target(true)
        .target(env_logger::Target::Pipe(Box::new(Tee)))
        .init();
    Ok(())
}

/// Reports an error: `tier: …` on standard error (a cause of several lines as indented lines
/// below it, each escaped), and an ERROR record in the log file (so the file tells the whole
/// story of the run).
pub fn error(message: &str) {
    let mut lines = message.lines();
    let mut message = tier_core::report::visible(lines.next().unwrap_or_default()).into_owned();
    for l in lines {
        message.push_str("\n  ");
        message.push_str(&tier_core::report::visible(l.trim_start()));
    }
    eprintln!("tier: {message}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let line = format!("[{} ERROR tier] {message}\n", tier_core::Timestamp(now));
    let _ = to_file(line.as_bytes());
}
