//! The lake's ledger: `_tier/loads.jsonl` (one line a load, appended and synced; in a bucket,
//! appended by a conditional put), or with a SQL catalog its database's `tier_loads`; load ids
//! and the look-ups of earlier loads.

use super::*;

/// The ledger's lines of the lake at `root`: a directory, or an `s3://` URL. Reads only:
/// nothing is created, and loads an earlier run left unfinished are left for the next load.
pub fn ledger_of(root: &Path) -> Result<Vec<LedgerLine>> {
    if let Location::Object(url) = Location::parse(root)? {
        let bucket = Bucket::of(&url)?;
        let Some(text) = bucket.get(&url.join(LEDGER).key)? else {
            bucket.list(&url.key)?; // a missing bucket is said to be missing
            return Err(Error::io(
                url.to_path(),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no lake here (no _tier/loads.jsonl)",
                ),
            ));
        };
        return Ok(parse_ledger(&text));
    }
    if !root.join("_tier").is_dir() {
        return Err(Error::io(
            root,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no lake here (no _tier folder)",
            ),
        ));
    }
    read_ledger(&root.join("_tier").join("loads.jsonl"))
}

/// The ledger's key below a bucket lake's prefix.
const LEDGER: &str = "_tier/loads.jsonl";

/// The next load id's key below a bucket lake's prefix.
const NEXT_LOAD_ID: &str = "_tier/next_load_id";

/// The lines of a ledger file (none when it does not exist).
pub(super) fn read_ledger(path: &Path) -> Result<Vec<LedgerLine>> {
    match fs::read(path) {
        Ok(text) => Ok(parse_ledger(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The lines of a ledger's text. A line cut short by a crash is not a load.
fn parse_ledger(text: &[u8]) -> Vec<LedgerLine> {
    text.split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<LedgerLine>(line).ok())
        .collect()
}

/// A load's ledger line, as its report says.
pub(super) fn ledger_line(report: &FileReport, started_at: SystemTime) -> LedgerLine {
    let table = report.table.as_deref().unwrap_or_default();
    LedgerLine {
        load_id: report.load_id.unwrap_or_default(),
        dataset: report.dataset.clone(),
        target_table: table.strip_prefix("lake:").unwrap_or(table).to_string(),
        source: report.path.clone(),
        sha256: report.sha256.clone(),
        bytes: report.bytes,
        records: report.records,
        loaded: report.loaded,
        duplicates: report.duplicates,
        rejected: report.rejected,
        status: report.status.as_str().into(),
        started_at: stamp(started_at),
        finished_at: stamp(SystemTime::now()),
        parts: report.parts.clone(),
        error: report.error.clone(),
    }
}

impl Lake {
    /// The ledger's lines (with a SQL catalog, its database's loads into lake tables).
    pub fn ledger(&self) -> Result<Vec<LedgerLine>> {
        match &self.catalog {
            Catalog::Files => read_ledger(&self.ledger_path()),
            Catalog::Bucket(url, bucket) => {
                let text = bucket.get(&url.join(LEDGER).key)?;
                Ok(parse_ledger(&text.unwrap_or_default()))
            }
            Catalog::Sql(sql, ledger) => {
                let mut lines = sql.with(|c| ledger.list(c, None, i64::MAX))?;
                lines.retain_mut(|l| match l.target_table.strip_prefix("lake:") {
                    Some(t) => {
                        l.target_table = t.to_string();
                        true
                    }
                    None => false,
                });
                lines.reverse();
                Ok(lines)
            }
        }
    }

    /// Records a load's line: appended to the ledger file, or written into its row.
    pub(super) fn append(&self, line: &LedgerLine) -> Result<()> {
        match &self.catalog {
            Catalog::Files => self.append_file(line),
            Catalog::Bucket(url, bucket) => {
                let mut json =
                    serde_json::to_vec(line).map_err(|e| Error::io(url.to_path(), e.into()))?;
                json.push(b'\n');
                bucket.update(&url.join(LEDGER).key, |current| {
                    let mut text = current.unwrap_or_default().to_vec();
                    if !text.is_empty() && !text.ends_with(b"\n") {
                        text.push(b'\n');
                    }
                    text.extend_from_slice(&json);
                    Ok(text)
                })
            }
            Catalog::Sql(sql, ledger) => sql.with(|c| ledger.record_line(c, line)),
        }
    }

    /// Appends a line to the ledger file and syncs it to disk.
    pub(super) fn append_file(&self, line: &LedgerLine) -> Result<()> {
        let path = self.ledger_path();
        let _lock = Locked::take(&self.meta().join("ledger.lock"), true)?;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let text = serde_json::to_string(line).map_err(|e| Error::io(&path, e.into()))?;
        f.write_all(format!("{text}\n").as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io(&path))
    }

    /// A new load id: one more than any given out before in this lake (with a SQL catalog,
    /// the id of a `running` row opened for it).
    pub(super) fn new_load(&self, dataset: &str, table: &str, source: &str) -> Result<i64> {
        match &self.catalog {
            Catalog::Files => self.next_load_id(),
            Catalog::Bucket(url, bucket) => {
                // Past every id the ledger holds and every id handed out before.
                let after_ledger = self.ledger()?.iter().map(|l| l.load_id + 1).max();
                let mut id = 0;
                bucket.update(&url.join(NEXT_LOAD_ID).key, |current| {
                    let stored = current
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .unwrap_or(1);
                    id = stored.max(after_ledger.unwrap_or(1));
                    Ok(format!("{}\n", id + 1).into_bytes())
                })?;
                Ok(id)
            }
            Catalog::Sql(sql, ledger) => {
                let table = format!("lake:{table}");
                sql.with(|c| ledger.start(c, dataset, &table, source, ""))
            }
        }
    }

    pub(super) fn next_load_id(&self) -> Result<i64> {
        let path = self.meta().join("next_load_id");
        let lock = Locked::take(&self.meta().join("ledger.lock"), true)?;
        let from_file = fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(1);
        let from_ledger = self
            .ledger()?
            .iter()
            .map(|l| l.load_id + 1)
            .max()
            .unwrap_or(1);
        let id = from_file.max(from_ledger);
        let mut f = File::create(&path).map_err(io(&path))?;
        f.write_all(format!("{}\n", id + 1).as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io(&path))?;
        drop(lock);
        Ok(id)
    }

    /// The last succeeded load of this content into `table`, if any.
    pub(super) fn succeeded_load(&self, sha256: &str, table: &str) -> Result<Option<i64>> {
        if let Catalog::Sql(sql, ledger) = &self.catalog {
            let table = format!("lake:{table}");
            return sql.with(|c| ledger.succeeded(c, sha256, &table));
        }
        Ok(self
            .ledger()?
            .iter()
            .rev()
            .find(|l| l.sha256 == sha256 && l.target_table == table && l.status == "succeeded")
            .map(|l| l.load_id))
    }

    /// Whether a file of this name and size was loaded into the lake before (then it is worth
    /// hashing first): one query of the catalog's ledger, or a look through the ledger file.
    pub(super) fn has_loaded(&self, source: &str, bytes: u64) -> Result<bool> {
        if let Catalog::Sql(sql, ledger) = &self.catalog {
            return sql.with(|c| ledger.looks_loaded(c, source, bytes));
        }
        Ok(self
            .ledger()?
            .iter()
            .any(|l| l.source == source && l.bytes == bytes && l.status == "succeeded"))
    }
}
