//! Rust `log` records to Python's `logging`, under the logger `tier`.
//!
//! Records are queued where they happen (any thread, with or without the GIL) and handed to
//! Python by the thread that returns to it: no thread ever waits for the GIL to log, so logging
//! cannot deadlock a reader that holds it.

use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;

static QUEUE: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

struct Queue;

impl Log for Queue {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            let mut q = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
            q.push((r.level(), format!("{}: {}", r.target(), r.args())));
        }
    }

    fn flush(&self) {}
}

/// Installs the bridge. Records down to debug are queued; Python's `tier` logger decides, as
/// each is handed to it, whether it is emitted: its level may be set after `import tier`.
pub fn install(_py: Python<'_>) -> PyResult<()> {
    // Another logger may be installed already (an embedding program's): leave it.
    if log::set_logger(&Queue).is_ok() {
        log::set_max_level(LevelFilter::Debug);
    }
    Ok(())
}

/// Hands the queued records to `logging.getLogger("tier")`, which emits those its level lets
/// through. An exception raised meanwhile (a `KeyboardInterrupt` from a handler that ran during
/// a call into Python) is returned, never swallowed.
pub fn drain(py: Python<'_>) -> Option<PyErr> {
    let records = std::mem::take(&mut *QUEUE.lock().unwrap_or_else(|e| e.into_inner()));
    if records.is_empty() {
        return None;
    }
    let logger = match py
        .import("logging")
        .and_then(|l| l.call_method1("getLogger", ("tier",)))
    {
        Ok(l) => l,
        Err(e) => return Some(e),
    };
    for (level, message) in records {
        let n = match level {
            Level::Error => 40,
            Level::Warn => 30,
            Level::Info => 20,
            Level::Debug | Level::Trace => 10,
        };
        let emitted = logger
            .call_method1("isEnabledFor", (n,))
            .and_then(|on| on.is_truthy())
            .and_then(|on| match on {
                true => logger.call_method1("log", (n, message)).map(|_| ()),
                false => Ok(()),
            });
        if let Err(e) = emitted {
            return Some(e);
        }
    }
    None
}
