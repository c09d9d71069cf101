//! A lake in object storage (`--lake s3://bucket/prefix`), with the layout, ledger and part
//! names of a lake directory. Each load is made in a local lake of its own (a temporary
//! directory holding a copy of the bucket's ledger, so re-runs are skipped as at home); its
//! parts are then uploaded under their final names (each object appears whole or not at all)
//! and its ledger lines appended to the bucket's `_tier/loads.jsonl`. A load stopped between
//! the two leaves parts without a ledger line; its re-run writes the same names again.

use std::path::Path;
use std::sync::Mutex;

use super::Lake;
use crate::error::Result;
use crate::pipeline::Observer;
use crate::read::object::{Bucket, Url};
use crate::report::{FileReport, Status};
use crate::sink::postgres::LoadOptions;

/// The ledger's key below the lake's prefix.
const LEDGER: &str = "_tier/loads.jsonl";

/// Appends to a bucket's ledger one writer of this process at a time.
static LEDGER_WRITES: Mutex<()> = Mutex::new(());

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

    /// The ledger's lines, as the bucket holds them.
    pub fn ledger(&self) -> Result<Vec<crate::sink::ledger::LedgerLine>> {
        let local = self.local()?;
        Lake::open(local.path(), self.opts.clone())?.ledger()
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
        let before = lake.ledger()?.len();
        let outcome = lake.load_file(path, observer);
        if let Ok(report) = &outcome {
            if report.status == Status::Succeeded {
                for rel in &report.parts {
                    let key = self.url.join(rel).key;
                    self.bucket.upload(&local.path().join(rel), &key)?;
                }
            }
        }
        let new: Vec<_> = lake.ledger()?.into_iter().skip(before).collect();
        if !new.is_empty() {
            let _one = LEDGER_WRITES.lock().unwrap_or_else(|p| p.into_inner());
            let key = self.url.join(LEDGER).key;
            let mut text = self.bucket.get(&key)?.unwrap_or_default();
            if !text.is_empty() && !text.ends_with(b"\n") {
                text.push(b'\n');
            }
            for line in &new {
                let json = serde_json::to_string(line)
                    .map_err(|e| crate::Error::io(path, std::io::Error::other(e)))?;
                text.extend_from_slice(json.as_bytes());
                text.push(b'\n');
            }
            self.bucket.put(&key, text)?;
        }
        outcome
    }
}
