//! Proposing a definition from a sample of records (`tier schema infer`).

use std::path::Path;

use crate::error::Result;
use crate::read::json::{JsonValue, Members};
use crate::read::{Input, RawKind, DEFAULT_MAX_RECORD_BYTES};
use crate::schema::timestamp::{parse_date, Timestamp};
use crate::schema::{valid_name, ColumnType, Definition};

/// The default number of records read.
pub const DEFAULT_SAMPLE: usize = 10_000;

/// What the values of one key have looked like so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Nothing,
    Bool,
    Int,
    Float,
    Date,
    Timestamp,
    Json,
    Text,
}

impl Seen {
    /// The kind of one value (`None` for null or an empty string, which say nothing).
    fn of(v: &JsonValue<'_>) -> Option<Seen> {
        Some(match v {
            JsonValue::Null => return None,
            JsonValue::String(s) if s.is_empty() => return None,
            JsonValue::Bool(_) => Seen::Bool,
            JsonValue::Number(n) if n.parse::<i64>().is_ok() => Seen::Int,
            JsonValue::Number(n) if n.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
                Seen::Text // a whole number beyond 64 bits: kept exactly as text
            }
            JsonValue::Number(_) | JsonValue::NonFinite(_) => Seen::Float,
            JsonValue::String(s) if parse_date(s).is_some() => Seen::Date,
            JsonValue::String(s) if Timestamp::parse(s).is_some() => Seen::Timestamp,
            JsonValue::String(_) => Seen::Text,
            JsonValue::Nested(_) => Seen::Json,
        })
    }

    /// The kind that holds both.
    fn join(self, other: Seen) -> Seen {
        use Seen::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Nothing, x) | (x, Nothing) => x,
            (Int, Float) | (Float, Int) => Float,
            (Date, Timestamp) | (Timestamp, Date) => Timestamp,
            (Json, Text) | (Text, Json) => Text,
            (Json, _) | (_, Json) => Json,
            _ => Text,
        }
    }

    fn column_type(self) -> ColumnType {
        match self {
            Seen::Bool => ColumnType::Boolean,
            Seen::Int => ColumnType::BigInt,
            Seen::Float => ColumnType::Double,
            Seen::Date => ColumnType::Date,
            Seen::Timestamp => ColumnType::Timestamptz,
            Seen::Json => ColumnType::Jsonb,
            Seen::Nothing | Seen::Text => ColumnType::Text,
        }
    }
}

struct Key {
    key: String,
    seen: Seen,
    /// Records where it was present, not null and not empty.
    filled: usize,
}

/// Reads up to `sample` records of `path` and proposes a definition as TOML text: `bigint` for
/// whole numbers, `double` once a fraction appears, `boolean`, `timestamptz` or `date` for
/// strings that all parse as such, `jsonb` for objects and arrays, `text` otherwise; `required`
/// where a key was always present and non-empty; the common key prefix as `prefix`. The text is
/// a valid definition (checked before it is returned) that loads the file.
///
/// ```
/// let dir = std::env::temp_dir().join("tier-doc-infer");
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("rides.json");
/// std::fs::write(&path, "{\"r.id\":\"a\",\"r.km\":1}\n{\"r.id\":\"b\",\"r.km\":2.5,\"r.at\":\"2019-06-04 14:05:13\"}\n").unwrap();
/// let toml = tier_core::infer(&path, None, 100).unwrap();
/// let def = tier_core::Definition::from_toml_str(&toml, "inferred").unwrap();
/// assert_eq!(def.name, "rides");
/// assert_eq!(def.prefix.as_deref(), Some("r."));
/// assert_eq!(def.columns[1].ty, tier_core::ColumnType::Double);
/// assert!(def.columns[0].required && !def.columns[2].required);
/// ```
pub fn infer(path: &Path, name: Option<&str>, sample: usize) -> Result<String> {
    infer_from(Input::open(path, false)?, path, name, sample)
}

/// Proposes a definition as [`infer`] does, from an input already open; `path` names it (the
/// dataset's default name and the comment come from it).
///
/// ```
/// use std::path::Path;
/// let bytes = br#"{"r.id":"a","r.n":1.5}"#.to_vec();
/// let input = tier_core::Input::from_reader(Path::new("r.json"), Box::new(std::io::Cursor::new(bytes)), false).unwrap();
/// let text = tier_core::infer_from(input, Path::new("r.json"), None, 10).unwrap();
/// assert!(text.contains("prefix = \"r.\""));
/// ```
pub fn infer_from(input: Input, path: &Path, name: Option<&str>, sample: usize) -> Result<String> {
    let mut records = input.records(DEFAULT_MAX_RECORD_BYTES);
    let mut keys: Vec<Key> = Vec::new();
    let mut n = 0usize;
    while n < sample {
        let Some(rec) = records.next_record()? else {
            break;
        };
        if rec.kind != RawKind::Object {
            continue;
        }
        let mut members = Members::new(rec.bytes);
        let mut fields = Vec::new();
        let mut sound = true;
        loop {
            match members.next_member() {
                Ok(Some(kv)) => fields.push(kv),
                Ok(None) => break,
                Err(_) => {
                    sound = false;
                    break;
                }
            }
        }
        if !sound {
            continue;
        }
        n += 1;
        for (k, v) in fields {
            let i = match keys.iter().position(|x| x.key == k) {
                Some(i) => i,
                None => {
                    keys.push(Key {
                        key: k.to_string(),
                        seen: Seen::Nothing,
                        filled: 0,
                    });
                    keys.len() - 1
                }
            };
            if let Some(s) = Seen::of(&v) {
                keys[i].seen = keys[i].seen.join(s);
                keys[i].filled += 1;
            }
        }
    }
    let prefix = common_prefix(keys.iter().map(|k| k.key.as_str()));
    let name = match name {
        Some(n) => n.to_string(),
        None => name_from_path(path),
    };
    let mut out = format!(
        "# Proposed by `tier schema infer` from {n} records of {}.\n",
        crate::text::visible(
            &path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    );
    out.push_str(&format!("name = {}\n", quote(&name)));
    if !prefix.is_empty() {
        out.push_str(&format!("prefix = {}\n", quote(&prefix)));
    } else if let Some(stem) = path.file_name().and_then(|f| f.to_str()) {
        let stem = stem.split('.').next().unwrap_or(stem);
        if stem != name {
            let escaped = glob::Pattern::escape(stem);
            out.push_str(&format!(
                "file_pattern = {}\n",
                quote(&format!("{escaped}*"))
            ));
        }
    }
    let columns: Vec<(&Key, String)> = keys
        .iter()
        .map(|k| (k, k.key[prefix.len()..].to_string()))
        .collect();
    let partition = columns
        .iter()
        .find(|(k, _)| k.filled == n && matches!(k.seen, Seen::Timestamp | Seen::Date));
    if let Some((_, c)) = partition {
        out.push_str(&format!("partition_by = {}\n", quote(c)));
    }
    for (k, column) in &columns {
        if !valid_name(column) || crate::schema::LINEAGE_COLUMNS.contains(&column.as_str()) {
            out.push_str(&format!(
                "\n# key {} is not a valid column name: its values stay in _extra\n",
                quote(&k.key)
            ));
            continue;
        }
        out.push_str(&format!(
            "\n[[columns]]\nname = {}\ntype = \"{}\"\n",
            quote(column),
            k.seen.column_type()
        ));
        if n > 0 && k.filled == n {
            out.push_str("required = true\n");
        }
    }
    // What is proposed must be a definition tier takes.
    Definition::from_toml_str(&out, "the inferred definition")?;
    Ok(out)
}

/// The longest prefix common to all keys that ends with `.` (or nothing).
fn common_prefix<'a>(mut keys: impl Iterator<Item = &'a str>) -> String {
    let Some(first) = keys.next() else {
        return String::new();
    };
    let mut len = first.len();
    for k in keys {
        len = first
            .bytes()
            .zip(k.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    // Bytes are compared: the last `.` within them is a character boundary.
    match first.as_bytes()[..len].iter().rposition(|&b| b == b'.') {
        // A prefix must leave a name: never the whole of a key.
        Some(dot) if dot + 1 < first.len() => first[..=dot].to_string(),
        _ => String::new(),
    }
}

/// A dataset name from a file name: its stem, lower-case, other characters as `_`.
fn name_from_path(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file.split('.').next().unwrap_or("");
    let mut name: String = stem
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_') {
        name.insert(0, '_');
    }
    name.truncate(63);
    name
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_join_as_the_rules_say() {
        assert_eq!(Seen::Int.join(Seen::Float), Seen::Float);
        assert_eq!(Seen::Int.join(Seen::Text), Seen::Text);
        assert_eq!(Seen::Date.join(Seen::Timestamp), Seen::Timestamp);
        assert_eq!(Seen::Json.join(Seen::Int), Seen::Json);
        assert_eq!(Seen::Bool.join(Seen::Int), Seen::Text);
        assert_eq!(common_prefix(["a.b", "a.c"].into_iter()), "a.");
        assert_eq!(common_prefix(["ab", "ac"].into_iter()), "");
        assert_eq!(common_prefix(["a."].into_iter()), "");
        // Keys sharing bytes that end inside a character.
        assert_eq!(common_prefix(["x.é", "x.è"].into_iter()), "x.");
        assert_eq!(common_prefix(["用户", "用法"].into_iter()), "");
        assert_eq!(
            name_from_path(Path::new("My-Rides 2.json.gz")),
            "my_rides_2"
        );
        assert_eq!(name_from_path(Path::new("2019.json")), "_2019");
    }
}
