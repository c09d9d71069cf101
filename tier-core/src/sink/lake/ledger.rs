//! The lake's ledger: `_tier/loads.jsonl` (one line a load, appended and synced), or with a
//! SQL catalog its database's `tier_loads`; load ids and the look-ups of earlier loads.

use super::*;

/// The ledger's lines of the lake at `root`: a directory, or an `s3://` URL. Reads only:
/// nothing is created, and loads an earlier run left unfinished are left for the next load.
pub fn ledger_of(root: &Path) -> Result<Vec<LedgerLine>> {
    if let Location::Object(url) = Location::parse(root)? {
        return remote::RemoteLake::open(&url, LoadOptions::default())?.ledger();
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

/// The lines of a ledger file (none when it does not exist).
pub(super) fn read_ledger(path: &Path) -> Result<Vec<LedgerLine>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        // A line cut short by a crash is not a load.
        if let Ok(l) = serde_json::from_str::<LedgerLine>(&line) {
            out.push(l);
        }
    }
    Ok(out)
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
