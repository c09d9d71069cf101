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

/// The version of a metadata file: `v<N>.metadata.json`, or `<N>-<uuid>.metadata.json` as a
/// SQL catalog names them (so a table of a SQL catalog reads without it, at its latest).
fn version_of(rel: &str) -> Option<u64> {
    let name = rel.rsplit('/').next()?.strip_suffix(".metadata.json")?;
    match name.strip_prefix('v') {
        Some(n) => n.parse().ok(),
        None => name.split('-').next()?.parse().ok(),
    }
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
                let Some(latest) = names.iter().filter_map(|n| version_of(n)).max() else {
                    return Ok(None);
                };
                if let Some(name) = names
                    .iter()
                    .find(|n| !n.starts_with('v') && version_of(n) == Some(latest))
                {
                    return Ok(Some(format!("{table}/metadata/{name}")));
                }
                latest
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

/// The catalog name and namespace tier's tables are under in a SQL catalog.
pub const NAMESPACE: &str = "tier";

/// The tables of Apache Iceberg's JDBC catalog (which pyiceberg's `SqlCatalog` and Spark's
/// `JdbcCatalog` read), made if missing, and the namespace `tier` in it.
const CATALOG_DDL: &str = "\
CREATE TABLE IF NOT EXISTS iceberg_tables (
    catalog_name varchar(255) NOT NULL,
    table_namespace varchar(255) NOT NULL,
    table_name varchar(255) NOT NULL,
    metadata_location varchar(1000),
    previous_metadata_location varchar(1000),
    iceberg_type varchar(5),
    PRIMARY KEY (catalog_name, table_namespace, table_name)
);
CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
    catalog_name varchar(255) NOT NULL,
    namespace varchar(255) NOT NULL,
    property_key varchar(255) NOT NULL,
    property_value varchar(1000),
    PRIMARY KEY (catalog_name, namespace, property_key)
);
INSERT INTO iceberg_namespace_properties VALUES ('tier', 'tier', 'exists', 'true')
    ON CONFLICT DO NOTHING;";

/// Apache Iceberg's SQL (JDBC) catalog in a PostgreSQL database, catalog and namespace `tier`:
/// the next metadata file is written under a new name, then made current by a compare-and-swap
/// of `metadata_location`, in a transaction that also commits what the append asks for (tier's
/// ledger row of the load).
pub struct Sql {
    client: std::sync::Mutex<postgres::Client>,
}

impl Sql {
    /// The catalog in the database `client` is connected to (its tables made when missing).
    pub fn new(mut client: postgres::Client) -> Result<Sql> {
        let mut tx = client.transaction()?;
        // One maker at a time: concurrent CREATE TABLE IF NOT EXISTS can collide.
        tx.execute("SELECT pg_advisory_xact_lock(7415203911)", &[])?;
        tx.batch_execute(CATALOG_DDL)?;
        tx.commit()?;
        Ok(Sql {
            client: std::sync::Mutex::new(client),
        })
    }

    /// Runs `f` with the connection.
    pub fn with<T>(&self, f: impl FnOnce(&mut postgres::Client) -> Result<T>) -> Result<T> {
        let mut c = self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut c)
    }
}

impl Catalog for Sql {
    fn current(&self, store: &Store, table: &str) -> Result<Option<String>> {
        let uri: Option<Option<String>> = self.with(|c| {
            Ok(c.query_opt(
                "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = $1 \
                 AND table_namespace = $1 AND table_name = $2",
                &[&NAMESPACE, &table],
            )?
            .map(|r| r.get(0)))
        })?;
        let Some(Some(uri)) = uri else {
            return Ok(None);
        };
        match store.rel(&uri) {
            Some(rel) => Ok(Some(rel.to_string())),
            None => Err(crate::Error::Usage(format!(
                "the catalog's table {NAMESPACE}.{table} is at {uri}, not in the lake {}",
                store.uri("")
            ))),
        }
    }

    fn commit(
        &self,
        store: &Store,
        table: &str,
        old: Option<&str>,
        bytes: Vec<u8>,
        append: &Append,
    ) -> Result<bool> {
        let next = old.and_then(version_of).unwrap_or(0) + 1;
        // Named by version and load: a run finishing a killed load at the same version writes
        // over what the dead one left.
        let rel = format!("{table}/metadata/{next:05}-{}.metadata.json", append.tag());
        store.write(&rel, bytes)?;
        let (new_uri, old_uri) = (store.uri(&rel), old.map(|o| store.uri(o)));
        let swapped = self.with(|c| {
            let mut tx = c.transaction()?;
            let n = match &old_uri {
                None => tx.execute(
                    "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
                     metadata_location, iceberg_type) VALUES ($1, $1, $2, $3, 'TABLE') \
                     ON CONFLICT DO NOTHING",
                    &[&NAMESPACE, &table, &new_uri],
                )?,
                Some(old_uri) => tx.execute(
                    "UPDATE iceberg_tables SET metadata_location = $3, \
                     previous_metadata_location = $4 WHERE catalog_name = $1 \
                     AND table_namespace = $1 AND table_name = $2 AND metadata_location = $4",
                    &[&NAMESPACE, &table, &new_uri, old_uri],
                )?,
            };
            if n != 1 {
                return Ok(false);
            }
            if let Some(also) = append.also {
                also(&mut tx)?;
            }
            tx.commit()?;
            Ok(true)
        })?;
        if !swapped {
            store.delete(&rel)?;
        }
        Ok(swapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_both_namings() {
        assert_eq!(version_of("t/metadata/v12.metadata.json"), Some(12));
        assert_eq!(version_of("t/metadata/00007-1b2c.metadata.json"), Some(7));
        assert_eq!(version_of("t/metadata/snap-1-1-x.avro"), None);
        assert_eq!(version_of("t/metadata/version-hint.text"), None);
    }

    #[test]
    fn the_next_version_is_made_once_and_a_stale_hint_is_looked_past() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::of(dir.path()).unwrap();
        let append = Append {
            table: "t",
            columns: &[],
            day_of: None,
            files: Vec::new(),
            load_id: 1,
            sha256: "",
            source: "",
            also: None,
            again: false,
        };
        assert_eq!(Hint.current(&store, "t").unwrap(), None);
        assert!(Hint
            .commit(&store, "t", None, b"{}".to_vec(), &append)
            .unwrap());
        // A writer that read the same (no) version loses.
        assert!(!Hint
            .commit(&store, "t", None, b"{}".to_vec(), &append)
            .unwrap());
        let v1 = Hint.current(&store, "t").unwrap().unwrap();
        assert_eq!(v1, "t/metadata/v1.metadata.json");
        assert!(Hint
            .commit(&store, "t", Some(&v1), b"{}".to_vec(), &append)
            .unwrap());
        // A hint left behind (a writer died after its commit): the later version is current.
        std::fs::write(dir.path().join("t/metadata/version-hint.text"), "1").unwrap();
        assert_eq!(
            Hint.current(&store, "t").unwrap().as_deref(),
            Some("t/metadata/v2.metadata.json")
        );
    }
}
