//! Raw records to validated rows or rejects, by the rules of a dataset's definition.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use crate::read::json::{self, JsonValue, JsonbError, Members};
use crate::read::{RawKind, RawRecord};
use crate::schema::row::{Row, Value};
use crate::schema::timestamp::{parse_date, Timestamp};
use crate::schema::{Column, ColumnType, Dataset};

/// Why a record is not loaded. Its `Display` is the stable reason code of the reports and
/// rejects tables (`malformed_json`, `out_of_range:currently_humidity`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Not sound JSON, or invalid UTF-8.
    MalformedJson,
    /// A top-level value that is not an object.
    NotAnObject,
    /// Larger than the record size limit.
    RecordTooLarge,
    /// A required column absent, null or empty.
    MissingField(String),
    /// A value of the wrong JSON type, a fraction or an overflow for an integer column.
    InvalidType(String),
    /// A string that is not a timestamp (or date).
    InvalidTimestamp(String),
    /// `NaN` or an infinity for a column.
    NonFinite(String),
    /// A number outside the column's bounds.
    OutOfRange(String),
    /// A text outside the column's allowed values, or a string PostgreSQL cannot store (NUL).
    InvalidValue(String),
    /// A key already present with other values.
    ConflictingDuplicate,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, column) = match self {
            RejectReason::MalformedJson => ("malformed_json", None),
            RejectReason::NotAnObject => ("not_an_object", None),
            RejectReason::RecordTooLarge => ("record_too_large", None),
            RejectReason::ConflictingDuplicate => ("conflicting_duplicate", None),
            RejectReason::MissingField(c) => ("missing_field", Some(c)),
            RejectReason::InvalidType(c) => ("invalid_type", Some(c)),
            RejectReason::InvalidTimestamp(c) => ("invalid_timestamp", Some(c)),
            RejectReason::NonFinite(c) => ("non_finite", Some(c)),
            RejectReason::OutOfRange(c) => ("out_of_range", Some(c)),
            RejectReason::InvalidValue(c) => ("invalid_value", Some(c)),
        };
        match column {
            Some(c) => write!(f, "{code}:{c}"),
            None => f.write_str(code),
        }
    }
}

impl std::str::FromStr for RejectReason {
    type Err = String;

    /// Reads a reason code back (`out_of_range:currently_humidity`), as the rejects tables and
    /// the lake's rejects parts hold them.
    fn from_str(s: &str) -> Result<Self, String> {
        let (code, column) = match s.split_once(':') {
            Some((code, column)) => (code, Some(column.to_string())),
            None => (s, None),
        };
        Ok(match (code, column) {
            ("malformed_json", None) => RejectReason::MalformedJson,
            ("not_an_object", None) => RejectReason::NotAnObject,
            ("record_too_large", None) => RejectReason::RecordTooLarge,
            ("conflicting_duplicate", None) => RejectReason::ConflictingDuplicate,
            ("missing_field", Some(c)) => RejectReason::MissingField(c),
            ("invalid_type", Some(c)) => RejectReason::InvalidType(c),
            ("invalid_timestamp", Some(c)) => RejectReason::InvalidTimestamp(c),
            ("non_finite", Some(c)) => RejectReason::NonFinite(c),
            ("out_of_range", Some(c)) => RejectReason::OutOfRange(c),
            ("invalid_value", Some(c)) => RejectReason::InvalidValue(c),
            _ => return Err(format!("`{s}` is not a reject reason")),
        })
    }
}

impl serde::Serialize for RejectReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A record that is not loaded, with its reason and its raw text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reject {
    /// The record's 0-based position in its input.
    #[serde(rename = "record_index")]
    pub index: u64,
    /// Why it was not loaded.
    pub reason: RejectReason,
    /// The record as it stood in the input (lossily decoded; NUL bytes replaced).
    pub raw: String,
}

/// Counts of keys outside the schema, by key as written in the input.
pub type UnknownFields = HashMap<String, u64>;

/// The columns that the keys of the records read so far named, by position in the record:
/// exports write every record's keys in one order, so each key is first compared with the one
/// the last record had in its place, and is scanned and looked up only when it differs.
#[derive(Debug, Default, Clone)]
pub struct KeyOrder(Vec<Option<usize>>);

impl KeyOrder {
    /// The column the `at`th key named last time.
    #[inline]
    fn guess(&self, at: usize) -> Option<usize> {
        *self.0.get(at)?
    }

    /// The `at`th key names `column` (`None`: no column).
    #[inline]
    fn saw(&mut self, at: usize, column: Option<usize>) {
        match self.0.get_mut(at) {
            Some(c) => *c = column,
            // Positions come one by one from 0.
            None => self.0.push(column),
        }
    }
}

impl Reject {
    fn at(index: u64, bytes: &[u8], reason: RejectReason) -> Reject {
        Reject {
            index,
            reason,
            raw: raw_text(bytes),
        }
    }
}

/// The raw bytes of a record as text that PostgreSQL accepts: invalid UTF-8 and NUL bytes
/// become U+FFFD.
pub fn raw_text(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s.into_owned()
    }
}

/// Validates one raw record of `dataset`. Keys outside the schema are counted in `unknown`;
/// `order` remembers the order of the keys of the records read with it (pass the same one for
/// the records of one input).
///
/// ```
/// use tier_core::{validate, RawKind, RawRecord};
/// let weather = tier_core::Registry::builtin().get("weather").unwrap();
/// let rec = RawRecord {
///     index: 0,
///     offset: 0,
///     end: 0,
///     kind: RawKind::Object,
///     bytes: br#"{"weather_data.city":"Oslo","weather_data.date_time":"2019-06-04 14:05:13","weather_data.currently_humidity":1.5}"#,
/// };
/// let reject = validate(&weather, &rec, &mut Default::default(), &mut Default::default());
/// let reject = reject.unwrap_err();
/// assert_eq!(reject.reason.to_string(), "out_of_range:currently_humidity");
/// ```
pub fn validate<'a>(
    dataset: &Dataset,
    rec: &RawRecord<'a>,
    unknown: &mut UnknownFields,
    order: &mut KeyOrder,
) -> Result<Row<'a>, Reject> {
    let reason = match rec.kind {
        RawKind::Object | RawKind::Malformed => RejectReason::MalformedJson,
        RawKind::NotObject => RejectReason::NotAnObject,
        RawKind::TooLarge => RejectReason::RecordTooLarge,
    };
    if rec.kind == RawKind::Object {
        if let Some((n, outcome)) =
            validate_prefix(dataset, rec.index, rec.bytes, usize::MAX, unknown, order)
        {
            if rec.bytes[n..]
                .iter()
                .all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
            {
                return outcome;
            }
        }
    }
    Err(Reject::at(rec.index, rec.bytes, reason))
}

/// Validates the object at the start of `bytes`, whatever follows it. `None` when it is not
/// sound JSON or spans more than `max` bytes (the caller then frames it the careful way);
/// else how many bytes it spans, and its row or reject. Keys outside the schema are counted
/// in `unknown` only then; `order` is as for [`validate`].
pub fn validate_prefix<'a>(
    dataset: &Dataset,
    index: u64,
    bytes: &'a [u8],
    max: usize,
    unknown: &mut UnknownFields,
    order: &mut KeyOrder,
) -> Option<(usize, Result<Row<'a>, Reject>)> {
    // The values are gathered on the stack, in an array no larger than needed (clearing it is
    // part of every record's cost).
    let n = dataset.columns.len();
    macro_rules! on_stack {
        ($($size:literal),*) => {
            $(if n <= $size {
                let mut slots: [Option<JsonValue<'a>>; $size] = Default::default();
                return with_slots(dataset, index, bytes, max, unknown, order, &mut slots[..n]);
            })*
        };
    }
    on_stack!(16, 32);
    let mut slots = vec![None; n];
    with_slots(dataset, index, bytes, max, unknown, order, &mut slots)
}

fn with_slots<'a>(
    dataset: &Dataset,
    index: u64,
    bytes: &'a [u8],
    max: usize,
    unknown: &mut UnknownFields,
    order: &mut KeyOrder,
    slots: &mut [Option<JsonValue<'a>>],
) -> Option<(usize, Result<Row<'a>, Reject>)> {
    let columns = &dataset.columns;
    let mut extras: Vec<(Cow<'a, str>, JsonValue<'a>)> = Vec::new();
    let mut members = Members::new(bytes);
    for at in 0.. {
        let guess = order.guess(at);
        let expected = guess.and_then(|i| dataset.written_key(i));
        let Some((key, value)) = members.next_member_as(expected).ok()? else {
            break;
        };
        let column = match key {
            None => guess,
            Some(key) => match dataset.column_index(dataset.strip_key_prefix(&key)) {
                Some(i) => Some(i),
                None => {
                    extras.push((key, value));
                    order.saw(at, None);
                    continue;
                }
            },
        };
        if let Some(i) = column {
            slots[i] = Some(value);
        }
        order.saw(at, column);
    }
    let n = members.end().ok()?;
    if n > max {
        return None;
    }
    let raw = &bytes[..n];
    let reject = |reason: RejectReason| Some((n, Err(Reject::at(index, raw, reason))));
    let mut values = Vec::with_capacity(columns.len());
    for (col, slot) in columns.iter().zip(slots.iter_mut()) {
        match convert(col, slot.take()) {
            Ok(v) => values.push(v),
            Err(code) => return reject(code.reason(&col.name)),
        }
    }
    let extra = if extras.is_empty() {
        None
    } else {
        let mut text = String::new();
        match json::write_object(&mut text, &mut extras) {
            Ok(()) => Some(text),
            Err(JsonbError::Syntax(_)) => return reject(RejectReason::MalformedJson),
            Err(JsonbError::Nul) => return reject(RejectReason::InvalidValue("_extra".into())),
            Err(JsonbError::Numeric) => return reject(RejectReason::OutOfRange("_extra".into())),
        }
    };
    // Kept in `_extra`: counted for the records that pass only.
    for (key, _) in &extras {
        match unknown.get_mut(key.as_ref()) {
            Some(c) => *c += 1,
            None => {
                unknown.insert(key.to_string(), 1);
            }
        }
    }
    Some((
        n,
        Ok(Row {
            index,
            values,
            extra,
        }),
    ))
}

/// The rule a value breaks, before it is tied to its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    MissingField,
    InvalidType,
    InvalidTimestamp,
    NonFinite,
    OutOfRange,
    InvalidValue,
}

impl Code {
    fn reason(self, column: &str) -> RejectReason {
        let c = column.to_string();
        match self {
            Code::MissingField => RejectReason::MissingField(c),
            Code::InvalidType => RejectReason::InvalidType(c),
            Code::InvalidTimestamp => RejectReason::InvalidTimestamp(c),
            Code::NonFinite => RejectReason::NonFinite(c),
            Code::OutOfRange => RejectReason::OutOfRange(c),
            Code::InvalidValue => RejectReason::InvalidValue(c),
        }
    }
}

/// Converts one member value to a column value, or names the rule it breaks.
fn convert<'a>(col: &Column, v: Option<JsonValue<'a>>) -> Result<Value<'a>, Code> {
    let v = match v {
        None | Some(JsonValue::Null) => None,
        // An empty string is null for every type but text.
        Some(JsonValue::String(s)) if s.is_empty() && col.ty != ColumnType::Text => None,
        Some(v) => Some(v),
    };
    let Some(v) = v else {
        return if col.required {
            Err(Code::MissingField)
        } else {
            Ok(Value::Null)
        };
    };
    if let JsonValue::NonFinite(_) = v {
        return Err(Code::NonFinite);
    }
    match col.ty {
        ColumnType::Text => match (&col.values, v) {
            (None, JsonValue::String(s)) if s.is_empty() && col.required => Err(Code::MissingField),
            // Only an escape (`\u0000`) can put a NUL into a string: look only at unescaped ones.
            (None, JsonValue::String(Cow::Owned(s))) if s.contains('\0') => Err(Code::InvalidValue),
            (None, JsonValue::String(s)) => Ok(Value::Text(s)),
            (None, JsonValue::Number(n)) => Ok(Value::Text(Cow::Borrowed(n))),
            (Some(allowed), JsonValue::String(s)) if allowed.iter().any(|a| *a == s) => {
                Ok(Value::Text(s))
            }
            (Some(_), JsonValue::String(_) | JsonValue::Number(_)) => Err(Code::InvalidValue),
            _ => Err(Code::InvalidType),
        },
        ColumnType::Timestamptz => match v {
            JsonValue::String(s) => Timestamp::parse(&s)
                .map(Value::Timestamp)
                .ok_or(Code::InvalidTimestamp),
            _ => Err(Code::InvalidType),
        },
        ColumnType::Date => match v {
            JsonValue::String(s) => parse_date(&s)
                .map(Value::Date)
                .ok_or(Code::InvalidTimestamp),
            _ => Err(Code::InvalidType),
        },
        ColumnType::Double => {
            let f = number(&v)?;
            if !f.is_finite() {
                Err(Code::NonFinite)
            } else if col.min.is_some_and(|m| f < m) || col.max.is_some_and(|m| f > m) {
                Err(Code::OutOfRange)
            } else {
                Ok(Value::Float(f))
            }
        }
        ColumnType::SmallInt => {
            integer(col, &v, i16::MIN as i64, i16::MAX as i64).map(|i| Value::SmallInt(i as i16))
        }
        ColumnType::Integer => {
            integer(col, &v, i32::MIN as i64, i32::MAX as i64).map(|i| Value::Integer(i as i32))
        }
        ColumnType::BigInt => integer(col, &v, i64::MIN, i64::MAX).map(Value::BigInt),
        ColumnType::Boolean => match v {
            JsonValue::Bool(b) => Ok(Value::Bool(b)),
            _ => Err(Code::InvalidType),
        },
        ColumnType::Jsonb => {
            let mut text = String::new();
            match json::write_jsonb(&mut text, &v) {
                Ok(()) => Ok(Value::Json(Cow::Owned(text))),
                Err(JsonbError::Nul) => Err(Code::InvalidValue),
                Err(JsonbError::Numeric) => Err(Code::OutOfRange),
                Err(JsonbError::Syntax(_)) => Err(Code::InvalidType),
            }
        }
    }
}

/// An integer within `lo..=hi` from a JSON number or a numeric string: a whole number written
/// with a fraction or exponent (`4.0`, `1e3`) is taken; any other fraction or an overflow is
/// `invalid_type`; then the column's bounds apply.
fn integer(col: &Column, v: &JsonValue<'_>, lo: i64, hi: i64) -> Result<i64, Code> {
    let text = match v {
        JsonValue::Number(n) => *n,
        JsonValue::String(s) => s.trim(),
        _ => return Err(Code::InvalidType),
    };
    let i = match text.parse::<i64>() {
        Ok(i) => i,
        Err(_) => {
            let f = text.parse::<f64>().map_err(|_| Code::InvalidType)?;
            if !f.is_finite() {
                // `NaN` or `Infinity` written as such; a number of many digits is an overflow.
                return Err(if text.bytes().any(|c| c.is_ascii_digit()) {
                    Code::InvalidType
                } else {
                    Code::NonFinite
                });
            }
            // 2^63 is exact as f64: anything at or past it does not fit.
            const TWO_63: f64 = 9_223_372_036_854_775_808.0;
            if f.fract() != 0.0 || !(-TWO_63..TWO_63).contains(&f) {
                return Err(Code::InvalidType);
            }
            f as i64
        }
    };
    if i < lo || i > hi {
        return Err(Code::InvalidType);
    }
    let f = i as f64;
    if col.min.is_some_and(|m| f < m) || col.max.is_some_and(|m| f > m) {
        return Err(Code::OutOfRange);
    }
    Ok(i)
}

/// A number from a JSON number or a numeric string.
fn number(v: &JsonValue<'_>) -> Result<f64, Code> {
    match v {
        JsonValue::Number(n) => n.parse::<f64>().map_err(|_| Code::InvalidType),
        JsonValue::String(s) => s.trim().parse::<f64>().map_err(|_| Code::InvalidType),
        _ => Err(Code::InvalidType),
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
