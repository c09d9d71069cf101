//! Where a table's current metadata file is named, and how the next one becomes current.

use super::{Append, Store};
use crate::error::Result;

/// A catalog: names a table's current metadata file and swaps it for the next atomically.
pub trait Catalog: Send {
    /// The current metadata file of the table in folder `table`, below the lake's root.
    fn current(&self, store: &Store, table: &str) -> Result<Option<String>>;

    /// Makes `bytes` the table's next metadata if `old` is still its current one: `false` when
    /// another writer committed first.
    fn commit(
        &self,
        store: &Store,
        table: &str,
        old: Option<&str>,
        bytes: Vec<u8>,
        append: &Append,
    ) -> Result<bool>;
}

/// The catalog of a lake without a database: `metadata/v<N>.metadata.json` files, the next
/// one created only if absent, and `metadata/version-hint.text` naming the latest (a reader
/// also looks past it, as a hint written late may lag).
pub struct Hint;

fn version_of(rel: &str) -> Option<u64> {
    let name = rel.rsplit('/').next()?;
    name.strip_prefix('v')?
        .strip_suffix(".metadata.json")?
        .parse()
        .ok()
}

impl Catalog for Hint {
    fn current(&self, store: &Store, table: &str) -> Result<Option<String>> {
        let at = |n: u64| format!("{table}/metadata/v{n}.metadata.json");
        let hint = store
            .read(&format!("{table}/metadata/version-hint.text"))?
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.trim().parse::<u64>().ok());
        let mut n = match hint {
            Some(n) if store.exists(&at(n))? => n,
            // No hint (or a stale one): the highest version present.
            _ => {
                let names = store.names(&format!("{table}/metadata"))?;
                match names.iter().filter_map(|n| version_of(n)).max() {
                    Some(n) => n,
                    None => return Ok(None),
                }
            }
        };
        while store.exists(&at(n + 1))? {
            n += 1;
        }
        Ok(Some(at(n)))
    }

    fn commit(
        &self,
        store: &Store,
        table: &str,
        old: Option<&str>,
        bytes: Vec<u8>,
        _append: &Append,
    ) -> Result<bool> {
        let next = old.and_then(version_of).unwrap_or(0) + 1;
        let rel = format!("{table}/metadata/v{next}.metadata.json");
        if !store.create(&rel, bytes)? {
            return Ok(false);
        }
        store.write(
            &format!("{table}/metadata/version-hint.text"),
            next.to_string().into_bytes(),
        )?;
        Ok(true)
    }
}
