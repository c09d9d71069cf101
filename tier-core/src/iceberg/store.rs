//! Where an Iceberg table's files live: a directory, or a prefix of a bucket. Paths are relative
//! to the lake's root (`events/metadata/v3.metadata.json`).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::read::object::{Bucket, Url};
use crate::read::Location;

/// A lake's root, local or in a bucket.
pub enum Store {
    /// A directory (its absolute path).
    Dir(PathBuf),
    /// A prefix of a bucket.
    Bucket(Url, Bucket),
}

impl Store {
    /// The store of a lake root: a directory (made absolute) or an `s3://` URL.
    pub fn of(root: &Path) -> Result<Store> {
        if let Location::Object(url) = Location::parse(root)? {
            let bucket = Bucket::of(&url)?;
            return Ok(Store::Bucket(url, bucket));
        }
        let abs = std::path::absolute(root).map_err(|e| Error::io(root, e))?;
        Ok(Store::Dir(abs))
    }

    /// The URI of a path below the root, as Iceberg metadata names files (`file:///…`, `s3://…`).
    pub fn uri(&self, rel: &str) -> String {
        match self {
            Store::Dir(root) => format!("file://{}", root.join(rel).display()),
            Store::Bucket(url, _) => url.join(rel).to_string(),
        }
    }

    /// The path below the root of a URI this store made (`None` for one elsewhere).
    pub fn rel<'a>(&self, uri: &'a str) -> Option<&'a str> {
        let base = self.uri("");
        let base = base.trim_end_matches('/');
        uri.strip_prefix(base)?.strip_prefix('/')
    }

    /// A path (or URL) readers open for a URI of a data file.
    pub fn local_path(uri: &str) -> PathBuf {
        PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri))
    }

    fn path(&self, rel: &str) -> PathBuf {
        match self {
            Store::Dir(root) => root.join(rel),
            Store::Bucket(url, _) => url.join(rel).to_path(),
        }
    }

    /// The bytes at `rel`, or `None` when there is nothing there.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Store::Dir(root) => match fs::read(root.join(rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io(root.join(rel), e)),
            },
            Store::Bucket(url, bucket) => bucket.get(&url.join(rel).key),
        }
    }

    /// Whether something is at `rel`.
    pub fn exists(&self, rel: &str) -> Result<bool> {
        match self {
            Store::Dir(root) => Ok(root.join(rel).exists()),
            Store::Bucket(url, bucket) => Ok(bucket.size(&url.join(rel).key)?.is_some()),
        }
    }

    /// Writes `bytes` at `rel` whole (replacing what was there), synced to disk.
    pub fn write(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        match self {
            Store::Dir(_) => {
                let tmp = self.staged(rel, &bytes)?;
                let to = self.path(rel);
                fs::rename(&tmp, &to).map_err(|e| Error::io(&to, e))
            }
            Store::Bucket(url, bucket) => bucket.put(&url.join(rel).key, bytes),
        }
    }

    /// Creates `rel` holding `bytes` only if nothing is there: `false` when another writer
    /// made it first. The file appears whole or not at all.
    pub fn create(&self, rel: &str, bytes: Vec<u8>) -> Result<bool> {
        match self {
            Store::Dir(_) => {
                let tmp = self.staged(rel, &bytes)?;
                let to = self.path(rel);
                // A hard link fails when the name is taken: the atomic "create if absent".
                let made = fs::hard_link(&tmp, &to);
                let _ = fs::remove_file(&tmp);
                match made {
                    Ok(()) => {
                        if let Some(dir) = to.parent() {
                            File::open(dir)
                                .and_then(|d| d.sync_all())
                                .map_err(|e| Error::io(dir, e))?;
                        }
                        Ok(true)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(Error::io(&to, e)),
                }
            }
            Store::Bucket(url, bucket) => bucket.create(&url.join(rel).key, bytes),
        }
    }

    /// Removes `rel`; nothing there is fine.
    pub fn delete(&self, rel: &str) -> Result<()> {
        match self {
            Store::Dir(root) => match fs::remove_file(root.join(rel)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io(root.join(rel), e))
                }
                _ => Ok(()),
            },
            Store::Bucket(url, bucket) => bucket.delete(&url.join(rel).key),
        }
    }

    /// The names of the files directly in folder `rel` (for a directory; a bucket lists the
    /// prefix).
    pub fn names(&self, rel: &str) -> Result<Vec<String>> {
        match self {
            Store::Dir(root) => match fs::read_dir(root.join(rel)) {
                Ok(entries) => Ok(entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(Error::io(root.join(rel), e)),
            },
            Store::Bucket(url, bucket) => {
                let prefix = url.join(rel).key;
                Ok(bucket
                    .list(&prefix)?
                    .into_iter()
                    .filter_map(|(k, _)| {
                        let name = k.strip_prefix(&prefix)?.trim_start_matches('/');
                        (!name.contains('/')).then(|| name.to_string())
                    })
                    .collect())
            }
        }
    }

    /// `bytes` written and synced beside `rel` under a name of its own.
    fn staged(&self, rel: &str, bytes: &[u8]) -> Result<PathBuf> {
        let to = self.path(rel);
        let dir = to.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            to.file_name().unwrap_or_default().to_string_lossy(),
            super::unique()
        ));
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        Ok(tmp)
    }
}
