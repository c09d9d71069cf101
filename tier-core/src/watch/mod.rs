//! `tier watch`: files keep landing in directories or under `s3://` prefixes, and each loads as
//! `tier load` loads it, within a second of landing. A loop around the same load of one file
//! (PostgreSQL or a lake), not a second loader.
//!
//! The ledger is the only state. Each round lists the sources, waits for a local file's size
//! and modification time to hold for the settle time, leaves out the files this watcher handled
//! and those the ledger settled (one query for many files), and loads the rest, oldest first,
//! `jobs` at once. Many watchers share one inbox with no coordinator: a file is claimed by a
//! session-level advisory lock on the connection that loads it, so a watcher that dies releases
//! its claims with its connection; a file that another watcher loaded meanwhile is skipped by
//! its SHA-256. A failure of the database is retried with backoff (1 s doubling to 60 s) and
//! never ends the loop; a file that fails by its content is recorded `failed` once and taken
//! again only when it changes.

mod metrics;
mod worker;

use worker::{transient, Worker};

pub use metrics::Metrics;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::load::Destination;
use crate::pipeline::Observer;
use crate::read::{list_inputs, Listed, Location};
use crate::report::{FileReport, Status};
use crate::sink::lake::Lake;
use crate::sink::ledger::Ledger;
use crate::sink::{postgres::Loader, LoadOptions};

/// How a watcher runs.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Directories and `s3://` prefixes to watch.
    pub sources: Vec<PathBuf>,
    /// Only the files whose name or path below a source matches one of these (all when empty).
    pub globs: Vec<String>,
    /// The listing period.
    pub interval: Duration,
    /// How long a local file's size and modification time must hold before it is taken.
    pub settle: Duration,
    /// Files loaded at once.
    pub jobs: usize,
    /// Load the backlog, then return.
    pub once: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            sources: Vec::new(),
            globs: Vec::new(),
            interval: Duration::from_secs(1),
            settle: Duration::from_secs(1),
            jobs: 1,
            once: false,
        }
    }
}

/// What a watcher did, when it returns (`--once`, or stopped).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Watched {
    /// Files loaded or skipped.
    pub done: u64,
    /// Files that failed by their content.
    pub failed: u64,
}

/// Whether a file is never taken: names beginning with `.` or `_`, or ending in `.tmp` or
/// `.part` (files being written under a temporary name).
///
/// ```
/// use tier_core::watch::ignored;
/// assert!(ignored("inbox/.events.json".as_ref()) && ignored("inbox/_SUCCESS".as_ref()));
/// assert!(ignored("inbox/a.json.tmp".as_ref()) && ignored("inbox/a.json.part".as_ref()));
/// assert!(!ignored("inbox/a.json".as_ref()));
/// ```
pub fn ignored(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.starts_with('.')
        || name.starts_with('_')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
}

/// The key of a path in the watcher's memory: 8 bytes, however long the path.
fn key(path: &Path) -> u64 {
    xxhash_rust::xxh3::xxh3_64(path.as_os_str().as_encoded_bytes())
}

/// Whether a ledger row of `bytes`, finished at `at` (seconds), settled the listed file: its
/// size, and no write to it since (a second of slack for coarse clocks).
fn settles(f: &Listed, bytes: u64, at: f64) -> bool {
    bytes == f.size && at + 1.0 >= secs(f.modified)
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The watcher's memory: files settling, and files handled (by name, size and time written).
#[derive(Default)]
struct State {
    settling: HashMap<u64, (u64, SystemTime, Instant)>,
    handled: HashMap<u64, (u64, SystemTime)>,
}

/// Watches `opts.sources` and loads what lands into `dest`, until `stop` is set (or, with
/// `once`, the backlog is loaded). Each file's outcome is handed to `on_file`; `observer` sees
/// each load (its `stopped` ends a load in progress); `metrics` are kept up to date.
pub fn watch(
    opts: &WatchOptions,
    dest: &Destination,
    load: &LoadOptions,
    observer: &dyn Observer,
    stop: &AtomicBool,
    metrics: &Metrics,
    on_file: &(dyn Fn(&Result<FileReport>) + Sync),
) -> Result<Watched> {
    let jobs = opts.jobs.max(1);
    let mut workers: Vec<Option<Worker>> = (0..jobs).map(|_| None).collect();
    let mut state = State::default();
    let mut outcome = Watched::default();
    let mut backoff = Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let round = round(
            opts,
            dest,
            load,
            &mut workers,
            &mut state,
            observer,
            stop,
            metrics,
            on_file,
        );
        let round = round.and_then(|r| {
            outcome.done += r.done;
            outcome.failed += r.failed;
            match r.error {
                Some(e) => Err(e),
                None => Ok(r),
            }
        });
        let wait = match round {
            Ok(r) => {
                metrics.set_healthy(true);
                backoff = Duration::from_secs(1);
                if opts.once && !r.waiting {
                    break;
                }
                // Listings a period apart, however long the loads took (none when they took
                // longer: files landed meanwhile wait no more).
                opts.interval.saturating_sub(began.elapsed())
            }
            Err(e) => {
                metrics.set_healthy(false);
                if !transient(&e) && e.kind() != ErrorKind::InputNotFound {
                    return Err(e);
                }
                log::warn!("{e}; trying again in {} s", backoff.as_secs());
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                wait
            }
        };
        sleep(wait, stop);
    }
    Ok(outcome)
}

/// Sleeps, waking early when `stop` is set.
fn sleep(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// What one round did.
struct Round {
    done: u64,
    failed: u64,
    /// Files still settling or left for a later round.
    waiting: bool,
    /// The failure of the database that ended the round early.
    error: Option<Error>,
}

/// One listing and the loads it calls for. A failure of the database ends the round early
/// (its files are taken again by the next).
#[allow(clippy::too_many_arguments)]
fn round(
    opts: &WatchOptions,
    dest: &Destination,
    load: &LoadOptions,
    workers: &mut [Option<Worker>],
    state: &mut State,
    observer: &dyn Observer,
    stop: &AtomicBool,
    metrics: &Metrics,
    on_file: &(dyn Fn(&Result<FileReport>) + Sync),
) -> Result<Round> {
    for w in workers.iter_mut().filter(|w| w.is_none()) {
        *w = Some(Worker::open(dest, load)?);
    }
    let (mut ready, waiting) = settled_files(opts, state, metrics)?;
    let first = workers[0].as_mut().expect("opened above");
    leave_out_loaded(first, &load.schema, state, &mut ready)?;
    let loads = load_all(
        ready,
        workers,
        &load.schema,
        observer,
        stop,
        metrics,
        on_file,
    );
    let mut round = Round {
        done: 0,
        failed: 0,
        waiting: waiting || loads.left,
        error: None,
    };
    let mut first_transient = None;
    let mut handled = |f: &Listed| {
        state.settling.remove(&key(&f.path));
        state.handled.insert(key(&f.path), (f.size, f.modified));
    };
    for (f, outcome) in loads.results {
        match outcome {
            Err(e) if transient(&e) => {
                round.waiting = true;
                first_transient.get_or_insert(e);
                continue;
            }
            Ok(r) if r.status != Status::Failed => round.done += 1,
            // Failed by its content: recorded, and taken again only when it changes.
            _ => round.failed += 1,
        }
        handled(&f);
    }
    loads.done_elsewhere.iter().for_each(handled);
    round.error = loads.broken.or(first_transient);
    if round.error.is_some() {
        // The connections are made again for the next round.
        for w in workers.iter_mut() {
            *w = None;
        }
    }
    Ok(round)
}

/// Lists the sources: the files not handled yet that held still long enough, and whether
/// others are still settling. Sets the backlog metrics.
fn settled_files(
    opts: &WatchOptions,
    state: &mut State,
    metrics: &Metrics,
) -> Result<(Vec<Listed>, bool)> {
    let now = Instant::now();
    let mut listed: Vec<(Listed, bool)> = Vec::new();
    for source in &opts.sources {
        let remote = Location::is_object(source);
        for f in list_inputs(source, &opts.globs, &|p| crate::load::tables_at(p, None))? {
            if !ignored(&f.path) {
                listed.push((f, remote));
            }
        }
    }
    let (mut backlog, mut bytes, mut waiting) = (0i64, 0i64, false);
    let mut ready: Vec<Listed> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (f, remote) in listed {
        let k = key(&f.path);
        seen.insert(k);
        if state.handled.get(&k) == Some(&(f.size, f.modified)) {
            continue;
        }
        backlog += 1;
        bytes += f.size as i64;
        // An object is whole once listed; a local file once it held still long enough: since
        // its modification time (nothing changed it since), or since this watcher saw it so.
        let settled = remote
            || SystemTime::now()
                .duration_since(f.modified)
                .is_ok_and(|held| held >= opts.settle)
            || {
                let entry = state.settling.entry(k).or_insert((f.size, f.modified, now));
                if (entry.0, entry.1) != (f.size, f.modified) {
                    *entry = (f.size, f.modified, now);
                }
                now.duration_since(entry.2) >= opts.settle
            };
        if settled {
            ready.push(f);
        } else {
            waiting = true;
        }
    }
    // Files gone from the sources are forgotten: memory follows the inbox.
    state.settling.retain(|k, _| seen.contains(k));
    state.handled.retain(|k, _| seen.contains(k));
    metrics.set_backlog(backlog, bytes);
    Ok((ready, waiting))
}

/// Leaves out of `ready` the files the ledger settled (this watcher's earlier life, or another
/// watcher), and orders the rest oldest first.
fn leave_out_loaded(
    worker: &mut Worker,
    schema: &crate::db::ddl::SchemaName,
    state: &mut State,
    ready: &mut Vec<Listed>,
) -> Result<()> {
    for chunk in ready.chunks(1000) {
        let sources: Vec<String> = chunk.iter().map(|f| f.path.display().to_string()).collect();
        let settled = worker.settled(schema, &sources)?;
        let settled: HashMap<&str, Vec<(u64, f64)>> =
            settled.iter().fold(HashMap::new(), |mut m, (s, b, at)| {
                m.entry(s.as_str()).or_default().push((*b, *at));
                m
            });
        for f in chunk {
            let source = f.path.display().to_string();
            if settled
                .get(source.as_str())
                .is_some_and(|v| v.iter().any(|(b, at)| settles(f, *b, *at)))
            {
                state.handled.insert(key(&f.path), (f.size, f.modified));
            }
        }
    }
    ready.retain(|f| state.handled.get(&key(&f.path)) != Some(&(f.size, f.modified)));
    ready.sort_by(|a, b| a.modified.cmp(&b.modified).then(a.path.cmp(&b.path)));
    Ok(())
}

/// What the workers did with a round's files.
struct Loads {
    /// The files loaded (or failed), with their outcomes.
    results: Vec<(Listed, Result<FileReport>)>,
    /// Files another watcher loaded meanwhile.
    done_elsewhere: Vec<Listed>,
    /// The failure of the database that stopped the workers.
    broken: Option<Error>,
    /// Whether files were left in the queue.
    left: bool,
}

/// Loads `ready` on the workers, each file claimed first (another watcher may have it).
fn load_all(
    ready: Vec<Listed>,
    workers: &mut [Option<Worker>],
    schema: &crate::db::ddl::SchemaName,
    observer: &dyn Observer,
    stop: &AtomicBool,
    metrics: &Metrics,
    on_file: &(dyn Fn(&Result<FileReport>) + Sync),
) -> Loads {
    let queue = Mutex::new(ready.into_iter());
    let results: Mutex<Vec<(Listed, Result<FileReport>)>> = Mutex::new(Vec::new());
    let broken: Mutex<Option<Error>> = Mutex::new(None);
    let done_elsewhere: Mutex<Vec<Listed>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for w in workers.iter_mut() {
            let (queue, results, broken) = (&queue, &results, &broken);
            let done_elsewhere = &done_elsewhere;
            s.spawn(move || {
                let Some(worker) = w.as_mut() else { return };
                loop {
                    if stop.load(Ordering::Relaxed) || broken.lock().is_ok_and(|b| b.is_some()) {
                        return;
                    }
                    let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                    let Some(f) = next else { return };
                    match worker.claim(&f.path) {
                        // Loaded by another watcher since the listing: nothing to read again.
                        Ok(true) if worker.done_elsewhere(schema, &f) => {
                            worker.release(&f.path);
                            done_elsewhere
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(f);
                            continue;
                        }
                        Ok(true) => {}
                        Ok(false) => continue, // another watcher has it
                        Err(e) => {
                            broken
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(e);
                            return;
                        }
                    }
                    let started = Instant::now();
                    let outcome = worker.load(&f.path, observer);
                    worker.release(&f.path);
                    metrics.file(&outcome, started.elapsed(), f.modified);
                    on_file(&outcome);
                    let transient = outcome.as_ref().is_err_and(transient);
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((f, outcome));
                    if transient {
                        return;
                    }
                }
            });
        }
    });
    Loads {
        results: results.into_inner().unwrap_or_else(|p| p.into_inner()),
        done_elsewhere: done_elsewhere
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()),
        broken: broken.into_inner().unwrap_or_else(|p| p.into_inner()),
        left: queue.into_inner().map(|q| q.len()).unwrap_or(0) > 0,
    }
}
