//! Log records on standard error and, when asked, in a file: time, level, target, message.
//!
//! Quiet by default, like psql: standard error shows warnings and errors (`-v` adds info, `-vv`
//! debug, `-vvv` trace; `RUST_LOG` chooses instead when set). A log file (`--log-file`) gets info
//! and above whatever standard error shows, so it tells the whole story of the run.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use tier_core::FileReport;

/// Where records go, from which level, and in which format.
struct Logger {
    stderr: env_filter::Filter,
    file: Option<Mutex<File>>,
    json: bool,
}

fn now() -> tier_core::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    tier_core::Timestamp(now)
}

/// One record as a line: `[time LEVEL target] message`, or one JSON object.
fn line(level: &str, target: &str, message: &str) -> String {
    if LOGGER.get().is_some_and(|l| l.json) {
        let mut o = serde_json::json!({
            "time": now().to_string(),
            "level": level,
            "target": target,
            "message": message,
        });
        if let Some(report) = REPORT.with(|r| r.borrow_mut().take()) {
            if let (Some(o), serde_json::Value::Object(fields)) = (o.as_object_mut(), report) {
                o.extend(fields);
            }
        }
        return o.to_string() + "\n";
    }
    format!("[{} {level:<5} {target}] {message}\n", now())
}

thread_local! {
    /// The report of the file whose result is being logged (its fields join the JSON line).
    static REPORT: std::cell::RefCell<Option<serde_json::Value>> = const { std::cell::RefCell::new(None) };
}

/// Logs a file's result as an info record: one line of text, or (with `--log-format json`) one
/// JSON object holding the report's fields.
pub fn file_result(f: &FileReport) {
    if LOGGER.get().is_some_and(|l| l.json) {
        let fields = serde_json::to_value(f).ok();
        REPORT.with(|r| *r.borrow_mut() = fields);
    }
    log::info!(
        "{}: {}, {} records: {} loaded, {} duplicates, {} rejected{}",
        tier_core::visible(&f.path),
        f.status,
        f.records,
        f.loaded,
        f.duplicates,
        f.rejected,
        f.error
            .as_deref()
            .map(|e| format!(" ({})", tier_core::visible(e)))
            .unwrap_or_default()
    );
    REPORT.with(|r| r.borrow_mut().take());
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        self.stderr.enabled(m) || (self.file.is_some() && m.level() <= Level::Info)
    }

    fn log(&self, r: &Record<'_>) {
        let to_stderr = self.stderr.matches(r);
        let to_file = self.file.is_some() && r.level() <= Level::Info;
        if !to_stderr && !to_file {
            return;
        }
        let text = line(r.level().as_str(), r.target(), &r.args().to_string());
        if to_stderr {
            let _ = io::stderr().write_all(text.as_bytes());
        }
        if let (true, Some(f)) = (to_file, &self.file) {
            let _ = f
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(text.as_bytes());
        }
    }

    fn flush(&self) {}
}

static LOGGER: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();

/// Sets the logger up: `RUST_LOG` wins, else `-v`/`-q` choose the level of standard error;
/// `json` writes each record as one JSON object.
pub fn init(verbose: u8, quiet: bool, file: Option<&Path>, json: bool) -> io::Result<()> {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let mut filter = env_filter::Builder::new();
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => filter.parse(&spec),
        _ => filter.parse(level),
    };
    let file = match file {
        Some(p) => Some(Mutex::new(
            File::options()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?,
        )),
        None => None,
    };
    let logger = LOGGER.get_or_init(|| Logger {
        stderr: filter.build(),
        file,
        json,
    });
    let max = if logger.file.is_some() {
        logger.stderr.filter().max(LevelFilter::Info)
    } else {
        logger.stderr.filter()
    };
    let _ = log::set_logger(logger);
    log::set_max_level(max);
    Ok(())
}

/// Reports an error: `tier: …` on standard error (a cause of several lines as indented lines
/// below it, each escaped), and an ERROR record in the log file.
pub fn error(message: &str) {
    let mut lines = message.lines();
    let mut message = tier_core::visible(lines.next().unwrap_or_default()).into_owned();
    for l in lines {
        message.push_str("\n  ");
        message.push_str(&tier_core::visible(l.trim_start()));
    }
    if LOGGER.get().is_some_and(|l| l.json) {
        eprint!("{}", line("ERROR", "tier", &message));
    } else {
        eprintln!("tier: {message}");
    }
    if let Some(f) = LOGGER.get().and_then(|l| l.file.as_ref()) {
        let _ = f
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_all(line("ERROR", "tier", &message).as_bytes());
    }
}
