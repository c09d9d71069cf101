//! A lake in object storage (`--lake s3://bucket/prefix`), with the layout, ledger and part
//! names of a lake directory. Each load is made in a local lake of its own (a temporary
//! directory holding a copy of the bucket's ledger, so re-runs are skipped as at home); its
//! parts are then uploaded under their final names (each object appears whole or not at all),
//! its snapshots committed and its ledger lines appended to the bucket's `_tier/loads.jsonl`. A load stopped between
//! the two leaves parts without a ledger line; its re-run writes the same names again.
//!
//! Its tables are Iceberg tables in the bucket: parts are uploaded before the snapshot that
//! names them is committed there.
//!
//! Many processes can load into one bucket's lake at once: load ids are handed out by
//! `_tier/next_load_id` and ledger lines appended, both by conditional writes that lose no
//! update (see [`Bucket::update`]).

use std::path::Path;

use super::Lake;
use crate::error::Result;
use crate::pipeline::Observer;
use crate::read::object::{Bucket, Url};
use crate::report::FileReport;
use crate::sink::LoadOptions;

/// The ledger's key below the lake's prefix.
const LEDGER: &str = "_tier/loads.jsonl";

/// The next load id's key below the lake's prefix.
const NEXT_LOAD_ID: &str = "_tier/next_load_id";

/// A lake at an `s3://` URL that files are loaded into.
pub struct RemoteLake {
    url: Url,
    bucket: Bucket,
    opts: LoadOptions,
}

impl RemoteLake {
    /// The lake at `url` (nothing is written until a load).
    pub fn open(url: &Url, opts: LoadOptions) -> Result<RemoteLake> {
        Ok(RemoteLake {
            bucket: Bucket::of(url)?,
            url: url.clone(),
            opts,
        })
    }

    /// The ledger's lines, as the bucket holds them. A prefix with no ledger is no lake (a
    /// missing bucket is said to be missing).
    pub fn ledger(&self) -> Result<Vec<crate::sink::ledger::LedgerLine>> {
        let key = self.url.join(LEDGER).key;
        if self.bucket.get(&key)?.is_none() {
            self.bucket.list(&self.url.key)?;
            return Err(crate::Error::io(
                self.url.to_path(),
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no lake here (no _tier/loads.jsonl)",
                ),
            ));
        }
        let local = self.local()?;
        super::read_ledger(&local.path().join(LEDGER))
    }

    /// A local lake holding the bucket's ledger as it is now.
    fn local(&self) -> Result<tempfile::TempDir> {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
        let meta = dir.path().join("_tier");
        std::fs::create_dir_all(&meta).map_err(|e| crate::Error::io(&meta, e))?;
        if let Some(text) = self.bucket.get(&self.url.join(LEDGER).key)? {
            let path = meta.join("loads.jsonl");
            std::fs::write(&path, text).map_err(|e| crate::Error::io(&path, e))?;
        }
        Ok(dir)
    }

    /// Loads one file into the lake, as [`Lake::load_file`] does into a directory.
    pub fn load_file(&mut self, path: &Path, observer: &dyn Observer) -> Result<FileReport> {
        let local = self.local()?;
        let mut lake = Lake::open(local.path(), self.opts.clone())?;
        // Parts are uploaded, and the Iceberg tables committed, in the bucket.
        lake.store = crate::iceberg::Store::Bucket(self.url.clone(), self.bucket.clone());
        if self.opts.catalog_url.is_some() {
            // The ledger and the load ids are the catalog database's.
            return lake.load_file(path, observer);
        }
        let ledger = lake.ledger()?;
        let before = ledger.len();
        // This load's id, reserved in the bucket so no other process hands it out, and given
        // to the local lake (which takes the larger of it and its ledger's next).
        let after_ledger = ledger.iter().map(|l| l.load_id + 1).max().unwrap_or(1);
        let mut id = after_ledger;
        self.bucket
            .update(&self.url.join(NEXT_LOAD_ID).key, |current| {
                let stored = current
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .unwrap_or(1);
                id = stored.max(after_ledger);
                Ok(format!("{}\n", id + 1).into_bytes())
            })?;
        let next = local.path().join(NEXT_LOAD_ID);
        std::fs::write(&next, format!("{id}\n")).map_err(|e| crate::Error::io(&next, e))?;
        let outcome = lake.load_file(path, observer);
        let new: Vec<_> = lake.ledger()?.into_iter().skip(before).collect();
        if !new.is_empty() {
            let mut lines = Vec::new();
            for line in &new {
                let json = serde_json::to_string(line)
                    .map_err(|e| crate::Error::io(path, std::io::Error::other(e)))?;
                lines.extend_from_slice(json.as_bytes());
                lines.push(b'\n');
            }
            self.bucket.update(&self.url.join(LEDGER).key, |current| {
                let mut text = current.unwrap_or_default().to_vec();
                if !text.is_empty() && !text.ends_with(b"\n") {
                    text.push(b'\n');
                }
                text.extend_from_slice(&lines);
                Ok(text)
            })?;
        }
        outcome
    }
}
