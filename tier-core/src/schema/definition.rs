//! Dataset definitions: TOML text to a checked [`Definition`].

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};

/// The SQL type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// `text`; a JSON number is kept as its JSON text.
    Text,
    /// `smallint`.
    SmallInt,
    /// `integer`.
    Integer,
    /// `bigint`.
    BigInt,
    /// `double precision`.
    Double,
    /// `boolean`: JSON `true` / `false` only.
    Boolean,
    /// `timestamptz`; naive values are UTC.
    Timestamptz,
    /// `date`: `YYYY-MM-DD`.
    Date,
    /// `jsonb`: any JSON value, kept whole.
    Jsonb,
}

impl ColumnType {
    /// Every type, in the order the definition format lists them.
    pub const ALL: [ColumnType; 9] = [
        ColumnType::Text,
        ColumnType::SmallInt,
        ColumnType::Integer,
        ColumnType::BigInt,
        ColumnType::Double,
        ColumnType::Boolean,
        ColumnType::Timestamptz,
        ColumnType::Date,
        ColumnType::Jsonb,
    ];

    /// The name in a definition (`double`, `timestamptz`, …).
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::SmallInt => "smallint",
            ColumnType::Integer => "integer",
            ColumnType::BigInt => "bigint",
            ColumnType::Double => "double",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamptz => "timestamptz",
            ColumnType::Date => "date",
            ColumnType::Jsonb => "jsonb",
        }
    }

    /// The type in DDL.
    pub fn sql(self) -> &'static str {
        match self {
            ColumnType::Double => "double precision",
            other => other.name(),
        }
    }

    /// The type as PostgreSQL's catalog names it (`format_type`, and
    /// `information_schema.columns.data_type` alike).
    pub fn catalog_name(self) -> &'static str {
        match self {
            ColumnType::Timestamptz => "timestamp with time zone",
            other => other.sql(),
        }
    }

    /// Whether bounds (`min`, `max`) apply.
    pub fn is_number(self) -> bool {
        matches!(
            self,
            ColumnType::SmallInt | ColumnType::Integer | ColumnType::BigInt | ColumnType::Double
        )
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ColumnType {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ColumnType::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ColumnType::ALL.iter().map(|t| t.name()).collect();
                format!("unknown type `{s}` (expected one of {})", names.join(", "))
            })
    }
}

/// A column of a dataset: the source key without the prefix, its type and its rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name (also the source key, after the prefix).
    pub name: String,
    /// SQL type.
    pub ty: ColumnType,
    /// `not null`: absent, null or empty gives `missing_field:<column>`.
    pub required: bool,
    /// Smallest value allowed (numbers), else `out_of_range:<column>`.
    pub min: Option<f64>,
    /// Largest value allowed (numbers), else `out_of_range:<column>`.
    pub max: Option<f64>,
    /// Allowed values (text), else `invalid_value:<column>`.
    pub values: Option<Vec<String>>,
}

/// A dataset definition, checked: every name valid, every reference to an existing column.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// Dataset name (`[a-z_][a-z0-9_]*`).
    pub name: String,
    /// Key prefix in the source (stripped; used for detection).
    pub prefix: Option<String>,
    /// Target table (default: the name).
    pub table: String,
    /// Glob on the file name, for detection without a prefix.
    pub file_pattern: Option<String>,
    /// Natural key: the same key with other values is a `conflicting_duplicate`.
    pub key: Option<Vec<String>>,
    /// The `timestamptz` or `date` column whose UTC day partitions the lake.
    pub partition_by: Option<String>,
    /// The columns, in table order (the order rules are checked in).
    pub columns: Vec<Column>,
    /// The TOML text it was read from.
    pub source: String,
    /// Where it was read from (a path, or `built-in`).
    pub origin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    name: Spanned<String>,
    prefix: Option<String>,
    table: Option<Spanned<String>>,
    file_pattern: Option<Spanned<String>>,
    key: Option<Spanned<Vec<String>>>,
    partition_by: Option<Spanned<String>>,
    #[serde(default)]
    columns: Vec<RawColumn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: Spanned<String>,
    #[serde(rename = "type")]
    ty: Spanned<String>,
    #[serde(default)]
    required: bool,
    min: Option<Spanned<f64>>,
    max: Option<Spanned<f64>>,
    values: Option<Spanned<Vec<String>>>,
}

/// Whether `s` is a valid dataset, table or column name: `[a-z_][a-z0-9_]*`, at most 63 bytes
/// (PostgreSQL's limit).
pub fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}

/// PostgreSQL's system columns: no table may have a column of these names.
const SYSTEM_COLUMNS: [&str; 7] = ["tableoid", "xmin", "cmin", "xmax", "cmax", "ctid", "oid"];

/// Column names tier adds to every table.
pub const LINEAGE_COLUMNS: [&str; 4] = ["_extra", "_load_id", "_record_index", "_row_hash"];

impl Definition {
    /// Parses and checks a definition. `origin` names where it came from in error messages.
    ///
    /// ```
    /// use tier_core::Definition;
    /// let d = Definition::from_toml_str(
    ///     "name = \"rides\"\n[[columns]]\nname = \"ride_id\"\ntype = \"text\"\nrequired = true\n",
    ///     "rides.toml",
    /// ).unwrap();
    /// assert_eq!(d.table, "rides");
    /// let err = Definition::from_toml_str("name = \"x\"\n[[columns]]\nname = \"a\"\ntype = \"texte\"\n", "x.toml");
    /// assert!(err.unwrap_err().to_string().contains("x.toml:4"));
    /// ```
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Definition> {
        let fail = |span: Option<Range<usize>>, message: String| Error::Definition {
            origin: origin.to_string(),
            line: span.map(|s| line_of(text, s.start)),
            message,
        };
        let raw: RawDefinition = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_string();
            fail(e.span(), message)
        })?;
        let name = raw.name.get_ref().clone();
        if !valid_name(&name) {
            return Err(fail(
                Some(raw.name.span()),
                format!("name `{name}` must match [a-z_][a-z0-9_]*"),
            ));
        }
        let table = table_of(&raw, &name, &fail)?;
        if let Some(p) = &raw.file_pattern {
            glob::Pattern::new(p.get_ref()).map_err(|e| {
                fail(
                    Some(p.span()),
                    format!("file_pattern `{}`: {e}", p.get_ref()),
                )
            })?;
        }
        if raw.columns.is_empty() {
            return Err(fail(
                None,
                "a definition needs at least one [[columns]]".into(),
            ));
        }
        let mut columns: Vec<Column> = Vec::with_capacity(raw.columns.len());
        for c in &raw.columns {
            let column = column_of(c, &columns, &fail)?;
            columns.push(column);
        }
        check_key_and_partition(&raw, &columns, &fail)?;
        Ok(Definition {
            name,
            prefix: raw.prefix.filter(|p| !p.is_empty()),
            table,
            file_pattern: raw.file_pattern.map(|p| p.into_inner()),
            key: raw.key.map(|k| k.into_inner()),
            partition_by: raw.partition_by.map(|p| p.into_inner()),
            columns,
            source: text.to_string(),
            origin: origin.to_string(),
        })
    }

    /// Reads and checks a definition file.
    pub fn from_path(path: &Path) -> Result<Definition> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Definition {
            origin: path.display().to_string(),
            line: None,
            message: e.to_string(),
        })?;
        Definition::from_toml_str(&text, &path.display().to_string())
    }
}

/// The definition files of a path: the file itself, or a directory's `*.toml` files, sorted.
pub fn definition_files(path: &Path) -> Result<Vec<PathBuf>> {
    let unreadable = |e: std::io::Error| Error::Definition {
        origin: path.display().to_string(),
        line: None,
        message: e.to_string(),
    };
    if !path.is_dir() {
        std::fs::metadata(path).map_err(unreadable)?;
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(unreadable)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Makes an error of a definition: where in its text (a byte span), and what.
type Fail<'a> = &'a dyn Fn(Option<Range<usize>>, String) -> Error;

/// The table of a definition named `name`, checked: a name PostgreSQL keeps whole, with its
/// `<table>_rejects`, and none of the tables tier makes for something else.
fn table_of(raw: &RawDefinition, name: &str, fail: Fail<'_>) -> Result<String> {
    let table = match &raw.table {
        Some(t) if !valid_name(t.get_ref()) => {
            return Err(fail(
                Some(t.span()),
                format!("table `{}` must match [a-z_][a-z0-9_]*", t.get_ref()),
            ))
        }
        Some(t) => t.get_ref().clone(),
        None => name.to_string(),
    };
    let table_span = raw.table.as_ref().map_or(raw.name.span(), |t| t.span());
    let clash = if table.len() + "_rejects".len() > 63 {
        Some("is too long: its rejects table's name would pass PostgreSQL's 63 bytes (55 at most)")
    } else if table == super::LEDGER_TABLE {
        Some("is the ledger's name")
    } else if table.ends_with("_rejects") {
        Some("ends with _rejects, as the rejects tables do")
    } else {
        None
    };
    if let Some(why) = clash {
        return Err(fail(Some(table_span), format!("table `{table}` {why}")));
    }
    Ok(table)
}

/// A column of a definition, checked, after the columns `before` it.
fn column_of(c: &RawColumn, before: &[Column], fail: Fail<'_>) -> Result<Column> {
    let cname = c.name.get_ref();
    let at = Some(c.name.span());
    if !valid_name(cname) || LINEAGE_COLUMNS.contains(&cname.as_str()) {
        return Err(fail(
            at,
            format!(
                "column name `{cname}` must match [a-z_][a-z0-9_]* and not be one of {}",
                LINEAGE_COLUMNS.join(", ")
            ),
        ));
    }
    if SYSTEM_COLUMNS.contains(&cname.as_str()) {
        return Err(fail(
            at,
            format!("column name `{cname}` is one of PostgreSQL's system columns"),
        ));
    }
    if before.iter().any(|x| &x.name == cname) {
        return Err(fail(at, format!("column `{cname}` is defined twice")));
    }
    let ty: ColumnType =
        c.ty.get_ref()
            .parse()
            .map_err(|m| fail(Some(c.ty.span()), format!("column `{cname}`: {m}")))?;
    for bound in [&c.min, &c.max].into_iter().flatten() {
        if !ty.is_number() {
            return Err(fail(
                Some(bound.span()),
                format!("column `{cname}`: min and max apply only to numbers, not {ty}"),
            ));
        }
        if bound.get_ref().is_nan() {
            return Err(fail(
                Some(bound.span()),
                format!("column `{cname}`: a bound cannot be nan"),
            ));
        }
    }
    if let (Some(lo), Some(hi)) = (&c.min, &c.max) {
        if lo.get_ref() > hi.get_ref() {
            return Err(fail(
                Some(hi.span()),
                format!("column `{cname}`: min is above max"),
            ));
        }
    }
    if let Some(v) = &c.values {
        if ty != ColumnType::Text {
            return Err(fail(
                Some(v.span()),
                format!("column `{cname}`: values apply only to text, not {ty}"),
            ));
        }
    }
    Ok(Column {
        name: cname.clone(),
        ty,
        required: c.required,
        min: c.min.as_ref().map(|s| *s.get_ref()),
        max: c.max.as_ref().map(|s| *s.get_ref()),
        values: c.values.as_ref().map(|s| s.get_ref().clone()),
    })
}

/// Checks a definition's key and partition column against its columns.
fn check_key_and_partition(raw: &RawDefinition, columns: &[Column], fail: Fail<'_>) -> Result<()> {
    let find = |n: &str| columns.iter().find(|c| c.name == n);
    if let Some(key) = &raw.key {
        if key.get_ref().is_empty() {
            return Err(fail(Some(key.span()), "key names no column".into()));
        }
        for k in key.get_ref() {
            match find(k) {
                None => {
                    return Err(fail(
                        Some(key.span()),
                        format!("key names `{k}`, which is not a column"),
                    ))
                }
                Some(c) if !c.required || c.ty == ColumnType::Jsonb => {
                    return Err(fail(
                        Some(key.span()),
                        format!("key column `{k}` must be required and not jsonb"),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    if let Some(p) = &raw.partition_by {
        match find(p.get_ref()) {
            Some(c) if matches!(c.ty, ColumnType::Timestamptz | ColumnType::Date) => {}
            Some(c) => {
                return Err(fail(
                    Some(p.span()),
                    format!(
                        "partition_by `{}` is {}, not timestamptz or date",
                        c.name, c.ty
                    ),
                ))
            }
            None => {
                return Err(fail(
                    Some(p.span()),
                    format!(
                        "partition_by names `{}`, which is not a column",
                        p.get_ref()
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
#[path = "definition_tests.rs"]
mod tests;
