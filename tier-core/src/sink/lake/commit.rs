//! A load's commit and its recovery: the manifest written in the load's folder, the parts
//! renamed (or uploaded) into place, the Iceberg snapshots, the ledger line; and the folders an
//! earlier run left, finished or cleared. Each step can be redone.

use super::*;

/// The renames of a load and its ledger line, written before the first rename. Each rename is
/// (the part's file name in the load's directory, its path below the lake's root).
#[derive(Serialize, Deserialize)]
pub(super) struct Manifest {
    pub(super) renames: Vec<(String, String)>,
    pub(super) line: LedgerLine,
    /// The Iceberg snapshots the load appends, one per table it wrote to.
    #[serde(default)]
    pub(super) tables: Vec<TableAppend>,
    /// Loaded even if the content is in the lake already (`--force`).
    #[serde(default)]
    pub(super) again: bool,
    /// The part names were taken for this load alone (see [`Lake::claim`]); a manifest of an
    /// older version may name parts of another load.
    #[serde(default)]
    pub(super) claimed: bool,
}

/// A part's file name in its load's folder, as a manifest names it (older manifests named it
/// by its whole path).
fn part_file(from: &str) -> &std::ffi::OsStr {
    Path::new(from).file_name().unwrap_or_default()
}

/// An exclusive lock on a file (held until dropped).
pub(super) struct Locked(#[allow(dead_code)] File);

impl Locked {
    pub(super) fn take(path: &Path, wait: bool) -> Result<Option<Locked>> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io(path))?;
        let how = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), how) };
        if rc == 0 {
            Ok(Some(Locked(f)))
        } else if !wait {
            Ok(None)
        } else {
            Err(Error::io(path, std::io::Error::last_os_error()))
        }
    }
}

/// Removes a directory and what it holds; one already gone is fine.
pub(super) fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}

/// Syncs a file or a folder (its entries) to disk.
pub(super) fn sync_path(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Files or folders synced to disk, several at once: a load's parts and folders are many, and
/// a device (and the file system's journal) takes concurrent flushes together, where one after
/// another each waits for the disk.
pub(super) fn sync_all<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    const AT_ONCE: usize = 16;
    let paths: Vec<&Path> = paths.into_iter().collect();
    if paths.len() < 2 {
        return paths.into_iter().try_for_each(sync_path);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..AT_ONCE.min(paths.len()))
            .map(|_| {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = paths.get(i) else {
                        return Ok(());
                    };
                    sync_path(path)?;
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|_| Err(Error::io("-", std::io::Error::other("a sync stopped"))))
        })
    })
}

impl Lake {
    /// Finishes the loads whose manifest was written, and clears the rest, of load directories
    /// that no running load holds. A load whose parts are damaged is reported and moved to
    /// `_tier/damaged/`; its file is loaded again by the next run that names it.
    pub(super) fn recover(&self) -> Result<()> {
        let tmp = self.tmp();
        let _scan = Locked::take(&self.meta().join("tmp.lock"), true)?;
        let entries = fs::read_dir(&tmp).map_err(io(&tmp))?;
        for e in entries.flatten() {
            let dir = e.path();
            if !dir.is_dir() {
                continue;
            }
            // Load folders are made with their lock, and removed, under `tmp.lock`, which this
            // scan holds: a folder without its lock was left by a run that died in between.
            if !dir.join(".lock").exists() {
                remove_dir(&dir)?;
                continue;
            }
            let Some(lock) = Locked::take(&dir.join(".lock"), false)? else {
                continue; // a load in progress
            };
            let manifest = dir.join("COMMIT");
            if let Ok(text) = fs::read_to_string(&manifest) {
                if let Ok(m) = serde_json::from_str::<Manifest>(&text) {
                    log::warn!(
                        "{}: finishing load {} that an earlier run left committed but not in place",
                        self.root.display(),
                        m.line.load_id
                    );
                    let lost = self.lost_part(&m, &dir);
                    if lost.is_some() && m.claimed {
                        // No snapshot names its parts (none is made before every part is in
                        // place): those in place go back beside the others, and their names
                        // are free again.
                        for (file, rel) in &m.renames {
                            let placed = self.root.join(rel);
                            if placed.exists() {
                                fs::rename(&placed, dir.join(part_file(file)))
                                    .map_err(io(&placed))?;
                            }
                            self.release(rel);
                        }
                    }
                    let finished = match lost {
                        Some(err) => Err(err),
                        None => self.commit(&m, &dir),
                    };
                    if let Ok(Some(id)) = finished {
                        log::info!("load {} holds the same content: nothing to finish", id);
                    }
                    if let Err(err) = finished {
                        // Kept for inspection, out of the way of later runs.
                        let kept = self.meta().join("damaged").join(e.file_name());
                        fs::create_dir_all(self.meta().join("damaged"))
                            .and_then(|()| fs::rename(&dir, &kept))
                            .map_err(io(&kept))?;
                        log::error!("{err}; what it left is kept in {}", kept.display());
                        continue;
                    }
                }
            } else {
                log::info!("{}: clearing an unfinished load", dir.display());
            }
            remove_dir(&dir)?;
            drop(lock);
        }
        Ok(())
    }

    /// Renames the parts from the load's directory `dir` into place and appends the ledger
    /// line (each step can be redone). A part that is in neither place is an error: the ledger
    /// line is not written, and a later run loads the file again. Returns the id of another
    /// load found holding the same content when the snapshot was to be made: then nothing is
    /// appended (the parts put in place have the names, and the bytes, of that load's) and
    /// the ledger has no row of this load.
    pub(super) fn commit(&self, m: &Manifest, dir: &Path) -> Result<Option<i64>> {
        if let Some(err) = self.lost_part(m, dir) {
            return Err(err);
        }
        let mut dirs = HashSet::new();
        for (from, to) in &m.renames {
            let (from, to) = (dir.join(part_file(from)), self.root.join(to));
            if !from.exists() {
                continue; // renamed before a crash
            }
            let folder = to.parent().unwrap_or(&self.root).to_path_buf();
            if !folder.is_dir() {
                // A new folder: its entry in the folder above is synced too.
                fs::create_dir_all(&folder).map_err(io(&folder))?;
                dirs.extend(
                    folder
                        .ancestors()
                        .skip(1)
                        .take_while(|d| d.starts_with(&self.root))
                        .map(Path::to_path_buf),
                );
            }
            fs::rename(&from, &to).map_err(io(&to))?;
            crate::fault::point("lake.rename");
            dirs.insert(folder);
        }
        sync_all(dirs.iter().map(PathBuf::as_path))?;
        if let iceberg::Store::Bucket(url, bucket) = &self.store {
            for (_, rel) in &m.renames {
                bucket.upload(&self.root.join(rel), &url.join(rel).key)?;
            }
        }
        // With a SQL catalog, the load's row commits with the rows table's swap.
        let record = |tx: &mut postgres::Transaction<'_>| match &self.catalog {
            Catalog::Sql(_, ledger) => ledger.record_line(tx, &m.line),
            Catalog::Files | Catalog::Bucket(..) => Ok(()),
        };
        for (i, t) in m.tables.iter().enumerate() {
            let rows_table = t.table == m.line.target_table;
            let append = iceberg::Append {
                table: &t.table,
                columns: &t.columns,
                day_of: t.day_of.as_deref(),
                files: t.files.clone(),
                load_id: m.line.load_id,
                sha256: &m.line.sha256,
                source: &m.line.source,
                also: rows_table.then_some(&record as &iceberg::Also<'_>),
                again: m.again,
            };
            let appended =
                iceberg::append(&self.store, &self.root, self.catalog.iceberg(), &append)?;
            if let iceberg::Appended::Loaded(id) = appended {
                // A SQL catalog's ledger has this load's row, `running`: it is not a load.
                if let Catalog::Sql(sql, ledger) = &self.catalog {
                    sql.with(|c| ledger.forget(c, m.line.load_id))?;
                }
                // No snapshot names this load's parts (when the first table yields): they go
                // (their names were this load's alone, see `Lake::claim`).
                if i == 0 && m.claimed {
                    for (_, rel) in &m.renames {
                        self.store.delete(rel)?;
                        self.release(rel);
                    }
                }
                return Ok(Some(id));
            }
        }
        match self.catalog {
            Catalog::Sql(..) => {}
            // Appended unless a run before this one got so far.
            _ if self.ledger()?.iter().any(|l| l.load_id == m.line.load_id) => {}
            _ => self.append(&m.line)?,
        }
        for (_, rel) in &m.renames {
            self.release(rel);
        }
        Ok(None)
    }

    /// The damage of a load whose manifest names a part that is neither in its folder nor in
    /// place (checked before any part is moved).
    fn lost_part(&self, m: &Manifest, dir: &Path) -> Option<Error> {
        let to = m.renames.iter().find_map(|(from, to)| {
            let to = self.root.join(to);
            (!dir.join(part_file(from)).exists() && !to.exists()).then_some(to)
        })?;
        Some(Error::io(
            &to,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "load {} of {} is damaged: this part is neither in place nor in {}",
                    m.line.load_id,
                    crate::text::visible(&m.line.source),
                    dir.display()
                ),
            ),
        ))
    }

    /// Removes a load's folder, under `tmp.lock` so that no scan sees it half gone.
    pub(super) fn discard(&self, dir: &Path) -> Result<()> {
        let _scan = Locked::take(&self.meta().join("tmp.lock"), true)?;
        remove_dir(dir)
    }
}
