//! Raw records to validated rows or rejects, by the rules of SPEC §3.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::json::{self, JsonValue, Members};
use crate::reader::{RawKind, RawRecord};
use crate::row::{Row, Value};
use crate::schema::{Column, Dataset, Kind};
use crate::timestamp::Timestamp;

/// A record that is not loaded, with its stable reason code and its raw text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reject {
    /// The record's 0-based position in its input.
    #[serde(rename = "record_index")]
    pub index: u64,
    /// The reason code, e.g. `malformed_json` or `out_of_range:currently_humidity`.
    pub reason: String,
    /// The record as it stood in the input (lossily decoded; NUL bytes replaced).
    pub raw: String,
}

/// Counts of keys outside the schema, by key as written in the input.
pub type UnknownFields = HashMap<String, u64>;

const MAX_COLUMNS: usize = 16;

impl Reject {
    fn at(index: u64, bytes: &[u8], reason: impl Into<String>) -> Reject {
        Reject {
            index,
            reason: reason.into(),
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

/// Validates one raw record of `dataset`. Keys outside the schema are counted in `unknown`.
///
/// ```
/// use tier_core::reader::{RawKind, RawRecord};
/// use tier_core::{validate, Dataset};
/// let rec = RawRecord {
///     index: 0,
///     offset: 0,
///     end: 0,
///     kind: RawKind::Object,
///     bytes: br#"{"weather_data.city":"Oslo","weather_data.date_time":"2019-06-04 14:05:13","weather_data.currently_humidity":1.5}"#,
/// };
/// let reject = validate::validate(Dataset::Weather, &rec, &mut Default::default()).unwrap_err();
/// assert_eq!(reject.reason, "out_of_range:currently_humidity");
/// ```
pub fn validate<'a>(
    dataset: Dataset,
    rec: &RawRecord<'a>,
    unknown: &mut UnknownFields,
) -> Result<Row<'a>, Reject> {
    let reason = match rec.kind {
        RawKind::Object => "malformed_json",
        RawKind::NotObject => "not_an_object",
        RawKind::Malformed => "malformed_json",
        RawKind::TooLarge => "record_too_large",
    };
    if rec.kind == RawKind::Object {
        if let Some((n, outcome)) =
            validate_prefix(dataset, rec.index, rec.bytes, usize::MAX, unknown)
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
/// in `unknown` only then.
pub fn validate_prefix<'a>(
    dataset: Dataset,
    index: u64,
    bytes: &'a [u8],
    max: usize,
    unknown: &mut UnknownFields,
) -> Option<(usize, Result<Row<'a>, Reject>)> {
    let columns = dataset.columns();
    let prefix = dataset.key_prefix();
    let mut slots: [Option<JsonValue<'a>>; MAX_COLUMNS] = Default::default();
    let mut extras: Vec<(Cow<'a, str>, JsonValue<'a>)> = Vec::new();
    let mut members = Members::new(bytes);
    while let Some((key, value)) = members.next_member().ok()? {
        let name = key.strip_prefix(prefix).unwrap_or(&key);
        match dataset.column_index(name) {
            Some(i) => slots[i] = Some(value),
            None => extras.push((key, value)),
        }
    }
    let n = members.end().ok()?;
    if n > max {
        return None;
    }
    for (key, _) in &extras {
        match unknown.get_mut(key.as_ref()) {
            Some(c) => *c += 1,
            None => {
                unknown.insert(key.to_string(), 1);
            }
        }
    }
    let raw = &bytes[..n];
    let reject = |reason: String| Reject::at(index, raw, reason);
    let mut values = Vec::with_capacity(columns.len());
    for (col, slot) in columns.iter().zip(slots.iter_mut()) {
        match convert(col, slot.take()) {
            Ok(v) => values.push(v),
            Err(code) => return Some((n, Err(reject(format!("{code}:{}", col.name))))),
        }
    }
    let extra = if extras.is_empty() {
        None
    } else {
        let mut map = serde_json::Map::new();
        for (k, v) in &extras {
            match json::to_serde(v) {
                Ok(v) => map.insert(k.to_string(), v),
                Err(_) => return Some((n, Err(reject("malformed_json".into())))),
            };
        }
        let text = serde_json::Value::Object(map).to_string();
        if text.contains("\\u0000") {
            return Some((n, Err(reject("invalid_value:_extra".into()))));
        }
        Some(text)
    };
    Some((
        n,
        Ok(Row {
            index,
            values,
            extra,
        }),
    ))
}

/// Converts one member value to a column value, or names the rule it breaks.
fn convert<'a>(col: &Column, v: Option<JsonValue<'a>>) -> Result<Value<'a>, &'static str> {
    let v = match v {
        None | Some(JsonValue::Null) => None,
        Some(JsonValue::String(s))
            if s.is_empty()
                && matches!(
                    col.kind,
                    Kind::Timestamp | Kind::Float { .. } | Kind::SmallInt
                ) =>
        {
            None
        }
        Some(v) => Some(v),
    };
    let Some(v) = v else {
        return if col.required {
            Err("missing_field")
        } else {
            Ok(Value::Null)
        };
    };
    if let JsonValue::NonFinite(_) = v {
        return Err("non_finite");
    }
    match col.kind {
        Kind::Text => match v {
            JsonValue::String(s) if s.is_empty() && col.required => Err("missing_field"),
            // Only an escape (`\u0000`) can put a NUL into a string: look only at unescaped ones.
            JsonValue::String(Cow::Owned(s)) if s.contains('\0') => Err("invalid_value"),
            JsonValue::String(s) => Ok(Value::Text(s)),
            JsonValue::Number(n) => Ok(Value::Text(Cow::Borrowed(n))),
            _ => Err("invalid_type"),
        },
        Kind::OneOf(allowed) => match v {
            JsonValue::String(s) if allowed.contains(&s.as_ref()) => Ok(Value::Text(s)),
            JsonValue::String(_) | JsonValue::Number(_) => Err("invalid_value"),
            _ => Err("invalid_type"),
        },
        Kind::Timestamp => match v {
            JsonValue::String(s) => Timestamp::parse(&s)
                .map(Value::Timestamp)
                .ok_or("invalid_timestamp"),
            _ => Err("invalid_type"),
        },
        Kind::Float { min, max } => {
            let f = number(&v)?;
            if f.is_nan() {
                Err("non_finite")
            } else if f < min || f > max {
                Err("out_of_range")
            } else {
                Ok(Value::Float(f))
            }
        }
        Kind::SmallInt => {
            let f = number(&v)?;
            if f.is_nan() || f.is_infinite() {
                return Err("non_finite");
            }
            if f.fract() != 0.0 || f < i16::MIN as f64 || f > i16::MAX as f64 {
                return Err("invalid_type");
            }
            Ok(Value::SmallInt(f as i16))
        }
    }
}

/// A number from a JSON number or a numeric string.
fn number(v: &JsonValue<'_>) -> Result<f64, &'static str> {
    match v {
        JsonValue::Number(n) => n.parse::<f64>().map_err(|_| "invalid_type"),
        JsonValue::String(s) => s.trim().parse::<f64>().map_err(|_| "invalid_type"),
        _ => Err("invalid_type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(dataset: Dataset, json: &str) -> Result<Row<'_>, String> {
        let rec = RawRecord {
            index: 7,
            offset: 0,
            end: 0,
            kind: RawKind::Object,
            bytes: json.as_bytes(),
        };
        validate(dataset, &rec, &mut UnknownFields::new()).map_err(|r| r.reason)
    }

    const TE: &str = r#""segment_tracks.anonymous_id":"A","segment_tracks.event_name":"E","segment_tracks.received_time":"2019-05-13 14:23:46""#;
    const W: &str = r#""weather_data.city":"Oslo","weather_data.date_time":"2019-06-04 14:05:13""#;

    fn te(extra: &str) -> String {
        format!("{{{TE}{extra}}}")
    }
    fn w(extra: &str) -> String {
        format!("{{{W}{extra}}}")
    }

    #[test]
    fn good_records() {
        let j = te(
            r#","segment_tracks.properties_rating":"4","segment_tracks.context_os_version":12.2"#,
        );
        let row = check(Dataset::TrackEvents, &j).unwrap();
        assert_eq!(row.index, 7);
        assert_eq!(row.values[15], Value::SmallInt(4));
        assert_eq!(row.values[7], Value::Text("12.2".into()));
        assert_eq!(row.extra, None);
        let j = r#"{"anonymous_id":"A","event_name":"E","received_time":"2019-05-13T14:23:46Z","sent_time":"","x":{"y":NaN}}"#;
        let row = check(Dataset::TrackEvents, j).unwrap();
        assert_eq!(row.values[4], Value::Null);
        assert_eq!(row.extra.as_deref(), Some(r#"{"x":{"y":"NaN"}}"#));
        let j = w(
            r#","weather_data.currently_humidity":"0.5","weather_data.currently_temperature":-3"#,
        );
        let row = check(Dataset::Weather, &j).unwrap();
        assert_eq!(row.values[4], Value::Float(0.5));
        assert_eq!(row.values[2], Value::Float(-3.0));
    }

    #[test]
    fn every_reason() {
        let cases: &[(Dataset, String, &str)] = &[
            (Dataset::TrackEvents, r#"{"segment_tracks.event_name":"E"}"#.into(), "missing_field:anonymous_id"),
            (Dataset::TrackEvents, te(r#","segment_tracks.anonymous_id":"""#), "missing_field:anonymous_id"),
            (Dataset::TrackEvents, te(r#","segment_tracks.event_name":null"#), "missing_field:event_name"),
            (Dataset::TrackEvents, te(r#","segment_tracks.received_time":"""#), "missing_field:received_time"),
            (Dataset::TrackEvents, te(r#","segment_tracks.received_time":"13/05/2019""#), "invalid_timestamp:received_time"),
            (Dataset::TrackEvents, te(r#","segment_tracks.sent_time":17"#), "invalid_type:sent_time"),
            (Dataset::TrackEvents, te(r#","segment_tracks.properties_rating":4.5"#), "invalid_type:properties_rating"),
            (Dataset::TrackEvents, te(r#","segment_tracks.properties_rating":"five""#), "invalid_type:properties_rating"),
            (Dataset::TrackEvents, te(r#","segment_tracks.properties_rating":70000"#), "invalid_type:properties_rating"),
            (Dataset::TrackEvents, te(r#","segment_tracks.properties_rating":NaN"#), "non_finite:properties_rating"),
            (Dataset::TrackEvents, te(r#","segment_tracks.context_os_name":true"#), "invalid_type:context_os_name"),
            (Dataset::TrackEvents, te(r#","segment_tracks.context_os_name":"a\u0000b""#), "invalid_value:context_os_name"),
            (Dataset::Weather, w(r#","weather_data.currently_temperature":Infinity"#), "non_finite:currently_temperature"),
            (Dataset::Weather, w(r#","weather_data.currently_temperature":"NaN""#), "non_finite:currently_temperature"),
            (Dataset::Weather, w(r#","weather_data.currently_temperature":61"#), "out_of_range:currently_temperature"),
            (Dataset::Weather, w(r#","weather_data.currently_windspeed":-0.1"#), "out_of_range:currently_windspeed"),
            (Dataset::Weather, w(r#","weather_data.currently_humidity":"wet""#), "invalid_type:currently_humidity"),
            (Dataset::Weather, w(r#","weather_data.currently_preciptype":"hail""#), "invalid_value:currently_preciptype"),
            (Dataset::Weather, r#"{"weather_data.date_time":"2019-06-04 14:05:13"}"#.into(), "missing_field:city"),
            // First failing column in table order wins.
            (Dataset::Weather, r#"{"weather_data.currently_humidity":9,"weather_data.city":"X","weather_data.date_time":"bad"}"#.into(), "invalid_timestamp:date_time"),
            (Dataset::Weather, w(r#","x":"\u0000""#), "invalid_value:_extra"),
            (Dataset::Weather, "{\"a\":\"tab\there\"}".into(), "malformed_json"),
        ];
        for (d, j, want) in cases {
            assert_eq!(check(*d, j).unwrap_err(), *want, "{j}");
        }
        let bad_utf8 = RawRecord {
            index: 0,
            offset: 0,
            end: 0,
            kind: RawKind::Object,
            bytes: b"{\"a\":\"\xff\"}",
        };
        let r = validate(Dataset::Weather, &bad_utf8, &mut UnknownFields::new()).unwrap_err();
        assert_eq!(r.reason, "malformed_json");
        assert_eq!(r.raw, "{\"a\":\"\u{FFFD}\"}");
    }

    #[test]
    fn unknown_fields_are_counted_and_kept() {
        let mut unknown = UnknownFields::new();
        let j = w(r#","weather_data.currently_ozone":301.2"#);
        let rec = RawRecord {
            index: 0,
            offset: 0,
            end: 0,
            kind: RawKind::Object,
            bytes: j.as_bytes(),
        };
        let row = validate(Dataset::Weather, &rec, &mut unknown).unwrap();
        validate(Dataset::Weather, &rec, &mut unknown).unwrap();
        assert_eq!(unknown["weather_data.currently_ozone"], 2);
        assert_eq!(
            row.extra.as_deref(),
            Some(r#"{"weather_data.currently_ozone":301.2}"#)
        );
    }
}
