//! A table's files for readers: its snapshot's data files (the current one, or another by id),
//! for `tier load <table folder>` and walks of a lake.

use super::*;

/// A URI the table's metadata names, where it is now: a lake directory that was moved keeps
/// its files below the table's folder, while its metadata names them at the old place
/// (Iceberg's paths are absolute). Other URIs are as they are.
pub(super) fn relocated(store: &Store, table: &str, meta: &TableMetadata, uri: &str) -> String {
    let now = store.uri(table);
    let then = meta.location.trim_end_matches('/');
    match uri.strip_prefix(then) {
        Some(rest) if rest.starts_with('/') && then != now.trim_end_matches('/') => {
            format!("{}{rest}", now.trim_end_matches('/'))
        }
        _ => uri.to_string(),
    }
}

/// The bytes of a file a metadata file names by URI (in this store or anywhere local).
pub(super) fn read_uri(store: &Store, uri: &str) -> Result<Vec<u8>> {
    let missing = || {
        Error::io(
            uri,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "a file the table's metadata names is missing",
            ),
        )
    };
    if let Some(rel) = store.rel(uri) {
        return store.read(rel)?.ok_or_else(missing);
    }
    if let Location::Object(url) = Location::parse(uri.as_ref())? {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut crate::read::object::open(&url)?, &mut out)
            .map_err(|e| Error::io(uri, e))?;
        return Ok(out);
    }
    let path = Store::local_path(uri);
    std::fs::read(&path).map_err(|e| Error::io(&path, e))
}

/// The data files of a table's snapshot (the current one when `snapshot` is `None`), as paths
/// or `s3://` URLs for readers.
pub fn data_files(
    store: &Store,
    catalog: &dyn Catalog,
    table: &str,
    snapshot: Option<i64>,
) -> Result<Vec<std::path::PathBuf>> {
    let Some((rel, meta)) = current(store, catalog, table)? else {
        return Err(Error::io(
            store.uri(table),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no Iceberg table here"),
        ));
    };
    let chosen = match snapshot {
        Some(id) => Some(
            meta.snapshots
                .iter()
                .find(|s| s.snapshot_id == id)
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "{}: the table has no snapshot {id} (its snapshots: {})",
                        store.uri(&rel),
                        meta.snapshots
                            .iter()
                            .map(|s| s.snapshot_id.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
        ),
        None => meta.current(),
    };
    let Some(snap) = chosen else {
        return Ok(Vec::new());
    };
    let here = |uri: &str| relocated(store, table, &meta, uri);
    let list = read_uri(store, &here(&snap.manifest_list))?;
    let mut files = Vec::new();
    for m in manifest::read_list(&list, &snap.manifest_list)? {
        if m.content != 0 {
            return Err(Error::io(
                &m.path,
                std::io::Error::other("the table has delete files, which tier does not read"),
            ));
        }
        let bytes = read_uri(store, &here(&m.path))?;
        files.extend(
            manifest::read_live_files(&bytes, &m.path)?
                .iter()
                .map(|f| here(f)),
        );
    }
    files.sort();
    Ok(files.iter().map(|f| Store::local_path(f)).collect())
}

/// When `path` (a folder or an `s3://` prefix) is an Iceberg table with a `version-hint.text`
/// catalog, the data files of its current snapshot (or of `snapshot`); `None` when it is no
/// such table.
pub fn table_files(
    path: &std::path::Path,
    snapshot: Option<i64>,
) -> Result<Option<Vec<std::path::PathBuf>>> {
    let text = path.to_string_lossy();
    let trimmed = std::path::Path::new(text.trim_end_matches('/'));
    let (Some(parent), Some(name)) = (trimmed.parent(), trimmed.file_name()) else {
        return Ok(None);
    };
    let name = name.to_string_lossy();
    let is_url = Location::is_object(path);
    if !is_url && !trimmed.join("metadata").is_dir() {
        return Ok(None);
    }
    let parent = if parent.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        parent
    };
    if is_url && parent.as_os_str() == "s3:" {
        return Ok(None); // a whole bucket
    }
    let store = Store::of(parent)?;
    if Hint.current(&store, &name)?.is_none() {
        return Ok(None);
    }
    data_files(&store, &Hint, &name, snapshot).map(Some)
}
