//! DDL: the target tables, their rejects tables and the `tier_loads` ledger.

use crate::schema::{ColumnType, Dataset};

/// Quotes an SQL identifier (`"` doubled), so no name can inject SQL.
///
/// ```
/// assert_eq!(tier_core::db::ddl::quote_ident(r#"a"b"#), r#""a""b""#);
/// ```
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL schema name tier accepts (see [`check_schema_name`]), checked once where it is
/// made: the command line parses it, Python converts it, and what holds one need not check it.
///
/// ```
/// use tier_core::db::ddl::SchemaName;
/// let s: SchemaName = "analytics".parse().unwrap();
/// assert_eq!(format!("{s}.events"), "analytics.events");
/// assert!("pg_catalog".parse::<SchemaName>().is_err());
/// assert_eq!(SchemaName::default().as_str(), "public");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaName(String);

impl SchemaName {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SchemaName {
    fn default() -> Self {
        SchemaName("public".into())
    }
}

impl std::str::FromStr for SchemaName {
    type Err = crate::Error;
    fn from_str(name: &str) -> crate::Result<SchemaName> {
        check_schema_name(name)?;
        Ok(SchemaName(name.to_string()))
    }
}

impl std::ops::Deref for SchemaName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SchemaName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a PostgreSQL schema name given by a user: letters, digits, `_` and `$`, not starting
/// with a digit or `$`, at most 63 bytes. (It is quoted wherever it is used all the same.)
///
/// ```
/// use tier_core::db::ddl::check_schema_name;
/// assert!(check_schema_name("analytics_2024").is_ok());
/// assert!(check_schema_name("x\"; DROP TABLE t; --").is_err());
/// ```
pub fn check_schema_name(name: &str) -> crate::Result<()> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && name.len() <= 63;
    if ok && name.to_ascii_lowercase().starts_with("pg_") {
        return Err(crate::Error::Usage(format!(
            "schema name `{name}`: names beginning with pg_ are reserved by PostgreSQL"
        )));
    }
    if ok {
        Ok(())
    } else {
        Err(crate::Error::Usage(format!(
            "schema name `{}` must be letters, digits, `_` or `$` (not first), at most 63 bytes",
            crate::text::visible(name)
        )))
    }
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// The name of a dataset's rejects table.
pub fn rejects_table(dataset: &Dataset) -> String {
    format!("{}_rejects", dataset.table)
}

/// Name of the ledger table.
pub const LEDGER: &str = crate::schema::LEDGER_TABLE;

/// Every column of a target table with its PostgreSQL type as the catalog names it
/// (`format_type`), and whether it is `not null`.
pub fn target_columns(dataset: &Dataset) -> Vec<(&str, &'static str, bool)> {
    let mut cols: Vec<_> = dataset
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.ty.catalog_name(), c.required))
        .collect();
    cols.push(("_extra", "jsonb", false));
    cols.push(("_load_id", "bigint", true));
    cols.push(("_record_index", "bigint", true));
    cols.push(("_row_hash", "bytea", true));
    cols
}

/// The columns of a rejects table.
pub const REJECT_COLUMNS: [(&str, &str, bool); 4] = [
    ("_load_id", "bigint", true),
    ("_record_index", "bigint", true),
    ("reason", "text", true),
    ("raw", "text", true),
];

/// The columns of the ledger.
pub const LEDGER_COLUMNS: [(&str, &str, bool); 14] = [
    ("load_id", "bigint", true),
    ("dataset", "text", true),
    ("target_table", "text", true),
    ("source", "text", true),
    ("sha256", "text", true),
    ("bytes", "bigint", false),
    ("records", "bigint", false),
    ("loaded", "bigint", false),
    ("duplicates", "bigint", false),
    ("rejected", "bigint", false),
    ("status", "text", true),
    ("started_at", "timestamp with time zone", true),
    ("finished_at", "timestamp with time zone", false),
    ("error", "text", false),
];

/// The DDL type of a type as the catalog names it.
pub fn sql_type(info: &str) -> &str {
    match info {
        "timestamp with time zone" => "timestamptz",
        other => other,
    }
}

fn columns_sql(cols: &[(&str, &str, bool)]) -> String {
    cols.iter()
        .map(|(n, t, req)| {
            format!(
                "    {} {}{}",
                quote_ident(n),
                sql_type(t),
                if *req { " NOT NULL" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(",\n")
}

/// The ledger's index by source: a re-run's look-up, and a watcher's, of many files at once.
pub const LEDGER_SOURCE_INDEX: &str = "tier_loads_source_idx";

/// The DDL of the ledger in `schema`.
pub fn ledger_ddl(schema: &str) -> String {
    let t = qualified(schema, LEDGER);
    format!(
        "CREATE TABLE IF NOT EXISTS {t} (\n    \"load_id\" bigserial PRIMARY KEY,\n{}\n);\n\
         CREATE INDEX IF NOT EXISTS {} ON {t} (\"sha256\", \"target_table\");\n\
         CREATE INDEX IF NOT EXISTS {} ON {t} (\"source\");\n",
        columns_sql(&LEDGER_COLUMNS[1..]).replace(
            "\"started_at\" timestamptz NOT NULL",
            "\"started_at\" timestamptz NOT NULL DEFAULT now()"
        ),
        quote_ident("tier_loads_sha256_idx"),
        quote_ident(LEDGER_SOURCE_INDEX),
    )
}

/// The DDL of a dataset's target table (with its unique index) and rejects table in `schema`.
pub fn table_ddl(dataset: &Dataset, schema: &str) -> String {
    let name = &dataset.table;
    let t = qualified(schema, name);
    let rejects = rejects_table(dataset);
    format!(
        "CREATE TABLE IF NOT EXISTS {t} (\n{}\n);\n\
         {};\n\
         CREATE TABLE IF NOT EXISTS {} (\n{}\n);\n\
         CREATE INDEX IF NOT EXISTS {} ON {} (\"_load_id\");\n",
        columns_sql(&target_columns(dataset)),
        key_index_ddl(dataset, schema),
        qualified(schema, &rejects),
        columns_sql(&REJECT_COLUMNS),
        quote_ident(&format!("{rejects}_load_idx")),
        qualified(schema, &rejects),
    )
}

/// The DDL of everything tier creates for `datasets` in `schema`: the ledger first.
///
/// ```
/// let reg = tier_core::Registry::builtin();
/// let ddl = tier_core::db::ddl::full_ddl(reg.all(), "public");
/// assert!(ddl.contains("\"tier_loads\""));
/// assert!(ddl.contains("\"track_events_rejects\""));
/// ```
pub fn full_ddl(datasets: &[Dataset], schema: &str) -> String {
    let mut s = format!("CREATE SCHEMA IF NOT EXISTS {};\n", quote_ident(schema));
    s.push_str(&ledger_ddl(schema));
    for d in datasets {
        s.push_str(&table_ddl(d, schema));
    }
    s
}

/// The columns of a dataset's unique key: its natural key, else a required time column (the
/// `partition_by` column, or the first required `timestamptz` or `date`) and the hash of all
/// columns (rows equal in all columns are duplicates). The index leads with time — a natural
/// key's time columns come first — so insertions land nearly in order (exports are in time
/// order) and its sort compares integers before text.
pub fn unique_key(dataset: &Dataset) -> Vec<&str> {
    let is_time = |name: &str| {
        dataset
            .columns
            .iter()
            .any(|c| c.name == name && matches!(c.ty, ColumnType::Timestamptz | ColumnType::Date))
    };
    if let Some(key) = &dataset.key {
        let mut key: Vec<&str> = key.iter().map(String::as_str).collect();
        key.sort_by_key(|k| !is_time(k));
        return key;
    }
    let time = |c: &&crate::schema::Column| {
        c.required && matches!(c.ty, ColumnType::Timestamptz | ColumnType::Date)
    };
    let lead = dataset
        .partition_by
        .as_deref()
        .and_then(|p| dataset.columns.iter().find(|c| c.name == p))
        .filter(time)
        .or_else(|| dataset.columns.iter().find(time));
    lead.map(|c| c.name.as_str())
        .into_iter()
        .chain(["_row_hash"])
        .collect()
}

/// The name of a dataset's unique index.
pub fn key_index(dataset: &Dataset) -> String {
    format!("{}_key", dataset.table)
}

/// `CREATE UNIQUE INDEX IF NOT EXISTS` of a dataset's unique key.
pub fn key_index_ddl(dataset: &Dataset, schema: &str) -> String {
    format!(
        "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})",
        quote_ident(&key_index(dataset)),
        qualified(schema, &dataset.table),
        column_list(&unique_key(dataset)),
    )
}

/// Quoted, comma-separated column names.
pub fn column_list(cols: &[&str]) -> String {
    cols.iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The temporary staging table of a merge: the target's columns, then `_raw` when conflicts
/// must be reported with their raw text; nothing constrained.
pub fn stage_ddl(dataset: &Dataset, with_raw: bool) -> String {
    let mut cols: Vec<String> = target_columns(dataset)
        .iter()
        .map(|(n, t, _)| format!("{} {}", quote_ident(n), sql_type(t)))
        .collect();
    if with_raw {
        cols.push("\"_raw\" text".into());
    }
    format!(
        "CREATE TEMP TABLE tier_stage ({}) ON COMMIT DROP",
        cols.join(", ")
    )
}
