//! Progress bars on standard error: bytes read and records per second, one bar per file.

use std::collections::HashMap;
use std::fs::File;
use std::io::IsTerminal;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tier_core::Observer;
use tier_core::Progress;

use crate::ProgressMode;

/// A file's bar, its live byte count, and the records seen so far.
type Bar = (ProgressBar, Arc<Progress>, u64);

/// Set by the first Ctrl-C (or, for a watcher, SIGTERM).
pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
    // A second Ctrl-C ends the process at once.
    // SAFETY: signal() is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

extern "C" fn on_stop_signal(signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
    // SAFETY: signal() is async-signal-safe.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// A watcher's stop: SIGTERM or SIGINT takes no new file and lets the loads in progress end
/// (within a grace the watcher sets); the same signal again ends the process.
pub fn stop_on_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic and resets the disposition.
        unsafe {
            libc::signal(
                signal,
                on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// The first Ctrl-C stops the work at its next batch (loads roll back and are reported and
/// recorded as failed); a second one ends the process.
pub fn stop_on_ctrl_c() {
    // SAFETY: the handler only stores to an atomic and resets the disposition.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// The progress bars of a run (none when standard error is not a terminal, unless forced),
/// and where its rejects are written as JSON Lines, if anywhere.
pub struct Bars {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<PathBuf, Bar>>,
    rejects: Option<(PathBuf, Mutex<BufWriter<File>>)>,
}

impl Bars {
    /// Also writes the rejects to `rejects_out` when given.
    pub fn with_rejects(mode: ProgressMode, rejects_out: Option<&Path>) -> tier_core::Result<Bars> {
        let mut bars = Bars::new(mode);
        if let Some(p) = rejects_out {
            let f = File::create(p).map_err(|e| tier_core::Error::io(p, e))?;
            bars.rejects = Some((p.to_path_buf(), Mutex::new(BufWriter::new(f))));
        }
        Ok(bars)
    }

    /// Flushes the rejects file.
    pub fn flush(&self) -> tier_core::Result<()> {
        if let Some((p, w)) = &self.rejects {
            let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
            w.flush().map_err(|e| tier_core::Error::io(p, e))?;
        }
        Ok(())
    }

    pub fn new(mode: ProgressMode) -> Bars {
        let on = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        Bars {
            multi: on.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: Mutex::new(HashMap::new()),
            rejects: None,
        }
    }
}

impl Observer for Bars {
    fn wants_rejects(&self) -> bool {
        self.rejects.is_some()
    }

    fn reject(&self, path: &Path, r: &tier_core::Reject) -> tier_core::Result<()> {
        let Some((p, w)) = &self.rejects else {
            return Ok(());
        };
        let file = path.display().to_string();
        let line = serde_json::json!({
            "file": file, "path": file, "record_index": r.index,
            "reason": r.reason.to_string(), "raw": r.raw,
        });
        let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
        writeln!(w, "{line}").map_err(|e| tier_core::Error::io(p, e))
    }

    fn started(&self, path: &Path, size: Option<u64>, progress: Arc<Progress>) {
        let Some(multi) = &self.multi else { return };
        let bar = multi.add(match size {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        });
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(path.display().to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_path_buf(), (bar, progress, 0));
    }

    fn stopped(&self) -> tier_core::Result<()> {
        if STOP.load(Ordering::Relaxed) {
            return Err(tier_core::Error::Interrupted);
        }
        Ok(())
    }

    fn records(&self, path: &Path, n: u64) -> tier_core::Result<()> {
        self.stopped()?;
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((bar, progress, count)) = bars.get_mut(path) {
            *count += n;
            bar.set_position(progress.bytes());
            let secs = bar.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{count} records, {:.0}/s", *count as f64 / secs));
        }
        Ok(())
    }

    fn finished(&self, path: &Path) {
        if let Some((bar, progress, _)) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path)
        {
            bar.set_position(progress.bytes());
            bar.finish_and_clear();
        }
    }
}
