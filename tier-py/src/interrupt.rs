//! Work that Ctrl-C stops: the core runs on a thread of its own while the calling thread waits
//! without the GIL and looks at Python's signals every 100 ms. On `KeyboardInterrupt` the work
//! is told to stop (its loads roll back at their next batch) and the exception is raised once
//! it has.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use pyo3::prelude::*;
use tier_core::{Error, Observer};

/// An observer that stops the work once told to.
#[derive(Default)]
pub struct Cancel(AtomicBool);

impl Observer for Cancel {
    fn stopped(&self) -> tier_core::Result<()> {
        if self.0.load(Ordering::Relaxed) {
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }
}

/// Runs `work` (given the observer to pass to the core) so that Ctrl-C stops it.
pub fn run<T: Send>(py: Python<'_>, work: impl FnOnce(&Cancel) -> T + Send) -> PyResult<T> {
    match run_keeping(py, work)? {
        (value, None) => Ok(value),
        (_, Some(interrupt)) => Err(interrupt),
    }
}

/// Runs `work` as [`run`] does, and returns what it did even when Ctrl-C stopped it, with the
/// interrupt to raise (so a caller can say what was committed before it).
pub fn run_keeping<T: Send>(
    py: Python<'_>,
    work: impl FnOnce(&Cancel) -> T + Send,
) -> PyResult<(T, Option<PyErr>)> {
    let cancel = Cancel::default();
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let rx = std::sync::Mutex::new(rx);
        let recv = |wait: Option<Duration>| {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            match wait {
                Some(d) => rx.recv_timeout(d),
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            }
        };
        let cancel = &cancel;
        s.spawn(move || {
            let _ = tx.send(work(cancel));
        });
        loop {
            let got = py.detach(|| recv(Some(Duration::from_millis(100))));
            match got {
                // A signal that came while the work ran is raised here, with what it did.
                Ok(v) => return Ok((v, py.check_signals().err())),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(pyo3::exceptions::PyRuntimeError::new_err(
                        "the work stopped",
                    ))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            let raised = crate::logging::drain(py).map_or_else(|| py.check_signals(), Err);
            if let Err(e) = raised {
                cancel.0.store(true, Ordering::Relaxed);
                return match py.detach(|| recv(None)) {
                    Ok(v) => Ok((v, Some(e))),
                    Err(_) => Err(e),
                };
            }
        }
    })
}
