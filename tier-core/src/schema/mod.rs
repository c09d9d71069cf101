//! Datasets as data: definitions, the registry that holds them, detection, inference and the
//! validation of records by a definition's rules.

pub mod arrow;
mod definition;
pub mod infer;
pub mod row;
pub mod timestamp;
pub mod validate;

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use definition::{valid_name, Column, ColumnType, Definition, LINEAGE_COLUMNS};

use crate::error::{Error, Result};
use crate::read::json::same_bytes;

/// The ledger's table, a name no dataset's table may take.
pub(crate) const LEDGER_TABLE: &str = "tier_loads";

/// A dataset: a checked [`Definition`], shared cheaply between threads, with what validation
/// looks up for every key of every record kept compact.
#[derive(Clone)]
pub struct Dataset(Arc<Compiled>);

struct Compiled {
    definition: Definition,
    /// The column names, in table order.
    names: Box<[Box<str>]>,
    /// Column indexes ordered by name length: those of length `n` are
    /// `by_len[len_start[n]..len_start[n + 1]]` (most keys are then found with one comparison).
    by_len: Box<[usize]>,
    len_start: Box<[usize]>,
    /// Each column's key as a record writes it (prefix and name), where JSON writes it without
    /// escapes.
    written: Box<[Option<Box<[u8]>>]>,
}

impl PartialEq for Dataset {
    fn eq(&self, other: &Dataset) -> bool {
        self.0.definition == other.0.definition
    }
}

impl Deref for Dataset {
    type Target = Definition;
    fn deref(&self) -> &Definition {
        &self.0.definition
    }
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dataset({})", self.name)
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl From<Definition> for Dataset {
    fn from(definition: Definition) -> Self {
        let names: Box<[Box<str>]> = definition
            .columns
            .iter()
            .map(|c| c.name.as_str().into())
            .collect();
        let mut by_len: Vec<usize> = (0..names.len()).collect();
        by_len.sort_by_key(|&i| names[i].len());
        let longest = names.iter().map(|n| n.len()).max().unwrap_or(0);
        let len_start = (0..=longest + 1)
            .map(|n| by_len.partition_point(|&i| names[i].len() < n))
            .collect();
        let prefix = definition.prefix.as_deref().unwrap_or("");
        let written = names
            .iter()
            .map(|n| {
                let key = format!("{prefix}{n}").into_bytes();
                let plain = key.iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\');
                plain.then(|| key.into())
            })
            .collect();
        Dataset(Arc::new(Compiled {
            definition,
            names,
            by_len: by_len.into(),
            len_start,
            written,
        }))
    }
}

impl Dataset {
    /// Position of a column by name.
    #[inline]
    pub fn column_index(&self, name: &str) -> Option<usize> {
        // The hot path asks this for every key of every record: only names of the same length
        // are compared.
        let c = &*self.0;
        let n = name.len();
        let range = *c.len_start.get(n)?..*c.len_start.get(n + 1)?;
        c.by_len[range]
            .iter()
            .copied()
            .find(|&i| same_bytes(c.names[i].as_bytes(), name.as_bytes()))
    }

    /// The key of column `i` as records write it (with the prefix), unless JSON would escape it.
    #[inline]
    pub fn written_key(&self, i: usize) -> Option<&[u8]> {
        self.0.written.get(i)?.as_deref()
    }

    /// A key without the dataset's prefix (the key itself when it has none).
    #[inline]
    pub fn strip_key_prefix<'k>(&self, key: &'k str) -> &'k str {
        let prefix = self.key_prefix();
        match key.get(..prefix.len()) {
            Some(head) if same_bytes(head.as_bytes(), prefix.as_bytes()) => &key[prefix.len()..],
            _ => key,
        }
    }

    /// The key prefix, or `""`.
    pub fn key_prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or("")
    }
}

/// The built-in definitions, compiled in.
const BUILTINS: [&str; 2] = [
    include_str!("builtin/track_events.toml"),
    include_str!("builtin/weather.toml"),
];

/// The datasets tier knows: the built-ins, then the user's definitions (a user definition with
/// a built-in's name replaces it).
#[derive(Clone, Debug)]
pub struct Registry {
    datasets: Vec<Dataset>,
}

/// The variable that names definition files or directories, separated by `:`.
pub const DATASETS_VAR: &str = "TIER_DATASETS";

impl Registry {
    /// The built-in datasets only.
    pub fn builtin() -> Registry {
        let datasets = BUILTINS
            .iter()
            .map(|text| {
                Definition::from_toml_str(text, "built-in definition")
                    .expect("the built-in definitions are valid")
                    .into()
            })
            .collect();
        Registry { datasets }
    }

    /// The built-ins, then the definitions under `paths` (files or directories of `*.toml`).
    pub fn with_paths(paths: &[PathBuf]) -> Result<Registry> {
        let mut reg = Registry::builtin();
        for p in paths {
            for file in definition::definition_files(p)? {
                reg.add(Definition::from_path(&file)?);
            }
        }
        Ok(reg)
    }

    /// The built-ins, then `$TIER_DATASETS`, then `paths` (so `--datasets` wins over the
    /// variable where both define a name).
    pub fn from_env(paths: &[PathBuf]) -> Result<Registry> {
        let mut all: Vec<PathBuf> = std::env::var_os(DATASETS_VAR)
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        all.extend_from_slice(paths);
        Registry::with_paths(&all)
    }

    /// Adds a definition, replacing one of the same name.
    pub fn add(&mut self, def: Definition) {
        let d = Dataset::from(def);
        match self.datasets.iter_mut().find(|x| x.name == d.name) {
            Some(slot) => *slot = d,
            None => self.datasets.push(d),
        }
    }

    /// Every dataset, built-ins first.
    pub fn all(&self) -> &[Dataset] {
        &self.datasets
    }

    /// A dataset by name.
    pub fn get(&self, name: &str) -> Result<Dataset> {
        self.datasets
            .iter()
            .find(|d| d.name == name)
            .cloned()
            .ok_or_else(|| Error::InvalidDataset {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    fn names(&self) -> Vec<&str> {
        self.datasets.iter().map(|d| d.name.as_str()).collect()
    }

    /// Tells the dataset of an input: by the key prefix found first in its first bytes, or by
    /// its file name (the first definition whose `file_pattern` matches it, else the one named
    /// as its stem). A file whose name points to one dataset while its records carry another's
    /// prefix is refused: it is most likely misnamed, and loading it would reject every record.
    pub fn detect(&self, head: &[u8], path: &Path) -> Result<Dataset> {
        let by_prefix = self
            .datasets
            .iter()
            .filter(|d| d.prefix.is_some())
            .filter_map(|d| {
                let needle = format!("\"{}", d.key_prefix());
                memchr::memmem::find(head, needle.as_bytes()).map(|at| (at, d))
            })
            .min_by_key(|(at, _)| *at)
            .map(|(_, d)| d);
        let by_name = self.by_name(path);
        match (by_prefix, by_name) {
            (Some(keys), Some(name)) if keys.name != name.name => Err(Error::Stranger {
                path: path.to_path_buf(),
                by_name: name.name.clone(),
                by_keys: keys.name.clone(),
            }),
            (Some(d), _) | (None, Some(d)) => Ok(d.clone()),
            (None, None) => Err(Error::UnknownDataset {
                path: path.to_path_buf(),
                known: self.names().join("|"),
                empty: head.iter().all(u8::is_ascii_whitespace),
            }),
        }
    }

    fn by_name(&self, path: &Path) -> Option<&Dataset> {
        let name = path.file_name()?.to_str()?;
        let opts = glob::MatchOptions {
            case_sensitive: false,
            ..Default::default()
        };
        let by_pattern = self.datasets.iter().find(|d| {
            d.file_pattern
                .as_deref()
                .is_some_and(|p| glob::Pattern::new(p).is_ok_and(|p| p.matches_with(name, opts)))
        });
        let stem = name.split('.').next().unwrap_or(name);
        by_pattern.or_else(|| self.datasets.iter().find(|d| d.name == stem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_keep_their_shape() {
        let reg = Registry::builtin();
        let te = reg.get("track_events").unwrap();
        assert_eq!(te.columns.len(), 16);
        assert_eq!(te.key_prefix(), "segment_tracks.");
        let w = reg.get("weather").unwrap();
        assert_eq!(
            w.key.as_deref(),
            Some(&["city".to_string(), "date_time".into()][..])
        );
        assert_eq!(w.columns[2].min, Some(-90.0));
        assert!(reg
            .get("rides")
            .unwrap_err()
            .to_string()
            .contains("weather"));
    }

    #[test]
    fn detection_order() {
        let reg = Registry::builtin();
        let p = Path::new("export.json");
        let head = br#"{"weather_data.city":"x","segment_tracks.a":1}"#;
        assert_eq!(reg.detect(head, p).unwrap().name, "weather");
        assert_eq!(
            reg.detect(b"{}", Path::new("My_Track_Export.json"))
                .unwrap()
                .name,
            "track_events"
        );
        assert!(reg.detect(b"{}", p).is_err());
        // Named for one dataset, holding another's records: refused.
        let e = reg
            .detect(head, Path::new("track_events_2019.json"))
            .unwrap_err();
        assert!(e.is_usage() && e.to_string().contains("weather"), "{e}");
    }
}
