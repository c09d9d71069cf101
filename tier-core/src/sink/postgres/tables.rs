//! The tables' columns checked against what tier would create (and the additions it may make).

use super::*;

/// Compares an existing table with the columns expected of it. Returns the expected nullable
/// columns it lacks (with their SQL types) when `evolve`, and errors on any other difference:
/// a missing required column, another type or nullability, and (when `evolve`) a column the
/// definition does not have. A table that does not exist has no differences.
pub(super) fn check_columns(
    tx: &mut Transaction<'_>,
    schema: &str,
    table: &str,
    expected: &[(&str, &str, bool)],
    evolve: bool,
) -> Result<Vec<(String, String)>> {
    // The catalog itself, not `information_schema.columns`: the same names and types for
    // tier's columns, in a fraction of a millisecond instead of a few (the view joins a dozen
    // catalogs and checks privileges row by row), which a load of a small file pays each time.
    let rows = tx.query(
        "SELECT a.attname::text, format_type(a.atttypid, NULL), NOT a.attnotnull \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
        &[&schema, &table],
    )?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let found: BTreeMap<String, (String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    for (name, ty, required) in expected {
        match found.get(*name) {
            None if evolve && !required => {
                missing.push((name.to_string(), ddl::sql_type(ty).to_string()))
            }
            None => problems.push(format!("column {name} is missing")),
            Some((t, _)) if t != ty => problems.push(format!("column {name} is {t}, not {ty}")),
            Some((_, nullable)) if evolve && nullable == required => problems.push(format!(
                "column {name} is {}, the definition says {}",
                if *nullable { "nullable" } else { "not null" },
                if *required {
                    "required"
                } else {
                    "not required"
                },
            )),
            Some(_) => {}
        }
    }
    if evolve {
        for name in found.keys() {
            if !expected.iter().any(|(n, _, _)| n == name) {
                problems.push(format!("column {name} is not in the definition"));
            }
        }
    }
    if problems.is_empty() {
        Ok(missing)
    } else {
        Err(Error::IncompatibleTable {
            table: format!("{schema}.{table}"),
            detail: problems.join(", "),
        })
    }
}
