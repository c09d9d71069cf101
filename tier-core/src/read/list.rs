//! The inputs of the paths given: directories and prefixes walked, globs, lake tables taken at
//! their snapshot.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use std::time::SystemTime;

use super::object::{Bucket, Url};
use super::Location;
use crate::error::{Error, Result};

/// Folders that stand for other files, told by the caller (`read/` knows no table format): a
/// lake's Iceberg table stands for its snapshot's data files. `None` for any other path.
pub type Tables<'a> = &'a dyn Fn(&Path) -> Result<Option<Vec<PathBuf>>>;

/// Lists the inputs of the given paths, as [`crate::expand_inputs`] says, with `tables` telling
/// the folders that stand for other files.
pub(crate) fn expand(
    paths: &[PathBuf],
    globs: &[String],
    tables: Tables<'_>,
) -> Result<Vec<PathBuf>> {
    let patterns = patterns(globs)?;
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
            continue;
        }
        if let Some(files) = tables(p)? {
            out.extend(files);
            continue;
        }
        if let Location::Object(url) = Location::parse(p)? {
            let folder = p.to_string_lossy().ends_with('/');
            out.extend(object_expand(&url, folder, |rel| {
                wanted(rel) && matches_globs(&patterns, rel, rel)
            })?);
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            list_dir(p, &mut found, tables)?;
            found.retain(|f| matches_globs(&patterns, f.strip_prefix(p).unwrap_or(f), f));
            if found.is_empty() {
                return Err(Error::NoInputs(p.clone()));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// A file (or object) of a listing: its path, size and when it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The path (or `s3://` URL).
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: std::time::SystemTime,
}

/// The inputs under a directory or an `s3://` prefix, as [`crate::expand_inputs`] finds them, with
/// their sizes and modification times; an empty directory is no error (an inbox waiting for
/// files). A file gone between the listing and its look is left out.
pub fn list_inputs(source: &Path, globs: &[String], tables: Tables<'_>) -> Result<Vec<Listed>> {
    if let Location::Object(url) = Location::parse(source)? {
        let patterns = patterns(globs)?;
        let listed = object_listing(&url, |rel| {
            wanted(rel) && matches_globs(&patterns, rel, rel)
        })?;
        return Ok(listed
            .into_iter()
            .map(|(path, size, modified)| Listed {
                path,
                size,
                modified,
            })
            .collect());
    }
    let files = match expand(&[source.to_path_buf()], globs, tables) {
        Ok(files) => files,
        Err(Error::NoInputs(_)) => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(files
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some(Listed {
                size: meta.len(),
                modified: meta.modified().ok()?,
                path,
            })
        })
        .collect())
}

pub(crate) fn patterns(globs: &[String]) -> Result<Vec<glob::Pattern>> {
    globs
        .iter()
        .map(|g| glob::Pattern::new(g).map_err(|e| Error::Usage(format!("glob `{g}`: {e}"))))
        .collect()
}

/// Whether a file whose path below its directory is `rel` is kept by the globs (all when none).
pub(crate) fn matches_globs(patterns: &[glob::Pattern], rel: &Path, full: &Path) -> bool {
    let name = full.file_name().map(Path::new).unwrap_or(rel);
    patterns.is_empty()
        || patterns
            .iter()
            .any(|g| g.matches_path(rel) || g.matches_path(name))
}

/// Whether a folder of a walk is entered: not hidden, not a lake's `_tier`. (A lake's
/// `<table>_rejects` folders are: their parts load into the rejects tables.)
pub(crate) fn entered(name: &str) -> bool {
    !name.starts_with('.') && name != "_tier"
}

/// Whether a file is an input: not hidden, with an input's ending (in any case: `.JSON` too),
/// and not an Iceberg table's metadata file.
pub(crate) fn is_input(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !name.starts_with('.')
        && !name.ends_with(".metadata.json")
        && [".json", ".json.gz", ".jsonl", ".ndjson", ".parquet"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// Whether a walk keeps a file at this path below its start (object keys are walked so too).
pub(crate) fn wanted(rel: &Path) -> bool {
    let mut parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    let Some(name) = parts.pop() else {
        return false;
    };
    is_input(name) && parts.iter().all(|p| entered(p))
}

/// Walks `dir` into `found`. Links to folders are followed, but a folder is entered once
/// (known by device and inode): a link back up, or a second way to the same folder, adds nothing.
pub(crate) fn list_dir(dir: &Path, found: &mut Vec<PathBuf>, tables: Tables<'_>) -> Result<()> {
    let mut seen = HashSet::new();
    list_dir_once(dir, found, &mut seen, tables)
}

pub(crate) fn list_dir_once(
    dir: &Path,
    found: &mut Vec<PathBuf>,
    seen: &mut HashSet<(u64, u64)>,
    tables: Tables<'_>,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    if !seen.insert((meta.dev(), meta.ino())) {
        log::debug!("{}: entered before (a link); passed over", dir.display());
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for f in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let os_name = f.file_name().unwrap_or_default();
        let name = os_name.to_string_lossy();
        if f.is_dir() {
            if !entered(&name) {
                continue;
            }
            // A lake's table: the files of its current snapshot, not every file in its folder.
            match tables(&f)? {
                Some(files) => found.extend(files),
                None => list_dir_once(&f, found, seen, tables)?,
            }
        } else if is_input(&name) {
            if os_name.to_str().is_none() {
                log::warn!(
                    "{}: the name is not UTF-8; loaded, and shown with U+FFFD in its place",
                    f.display()
                );
            }
            found.push(f);
        }
    }
    Ok(())
}

/// The objects under a URL (as a folder) that `wanted` keeps, by their keys relative to it,
/// with their sizes and when they were last written; none is no error (an empty inbox).
fn object_listing(
    url: &Url,
    wanted: impl Fn(&Path) -> bool,
) -> Result<Vec<(PathBuf, u64, SystemTime)>> {
    let bucket = Bucket::of(url)?;
    Ok(bucket
        .list_modified(&url.key)?
        .into_iter()
        .filter(|(key, _, _)| {
            let rel = key
                .strip_prefix(&url.key)
                .unwrap_or(key)
                .trim_start_matches('/');
            wanted(Path::new(rel))
        })
        .map(|(key, size, modified)| {
            let path = Url {
                bucket: url.bucket.clone(),
                key,
            }
            .to_path();
            (path, size, modified)
        })
        .collect())
}

/// The objects a URL names: the object itself when there is one at its key, else every object
/// under it (as a folder) that `wanted` keeps, by its key relative to the URL; sorted. A
/// `folder` (named with a trailing `/`) is never taken for an object.
fn object_expand(url: &Url, folder: bool, wanted: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let bucket = Bucket::of(url)?;
    if !url.key.is_empty() && !folder && bucket.size(&url.key)?.is_some() {
        return Ok(vec![url.to_path()]);
    }
    let listed = bucket.list(&url.key)?;
    if listed.is_empty() {
        return Err(Error::io(
            url.to_path(),
            io::Error::new(io::ErrorKind::NotFound, "no such object, nor any under it"),
        ));
    }
    let found: Vec<PathBuf> = listed
        .into_iter()
        .filter(|(key, _)| {
            let rel = key
                .strip_prefix(&url.key)
                .unwrap_or(key)
                .trim_start_matches('/');
            wanted(Path::new(rel))
        })
        .map(|(key, _)| {
            Url {
                bucket: url.bucket.clone(),
                key,
            }
            .to_path()
        })
        .collect();
    if found.is_empty() {
        return Err(Error::NoInputs(url.to_path()));
    }
    Ok(found)
}
