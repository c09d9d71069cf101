//! Validated rows: the generic form the loader writes, and the typed structs of each dataset.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::schema::Dataset;
use crate::timestamp::Timestamp;

/// A typed column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// SQL `NULL`.
    Null,
    /// `text`.
    Text(Cow<'a, str>),
    /// `timestamptz`.
    Timestamp(Timestamp),
    /// `double precision`.
    Float(f64),
    /// `smallint`.
    SmallInt(i16),
}

impl Value<'_> {
    /// The value with every borrow turned into an owned string.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Text(s) => Value::Text(Cow::Owned(s.into_owned())),
            Value::Timestamp(t) => Value::Timestamp(t),
            Value::Float(f) => Value::Float(f),
            Value::SmallInt(i) => Value::SmallInt(i),
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s.to_string()),
            _ => None,
        }
    }

    fn timestamp(&self) -> Option<Timestamp> {
        match self {
            Value::Timestamp(t) => Some(*t),
            _ => None,
        }
    }

    fn float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// A record that passed validation: one value per column of its dataset, in table order, plus
/// the keys outside the schema as a JSON object text (`_extra`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    /// The record's 0-based position in its input.
    pub index: u64,
    /// The values, in the order of [`Dataset::columns`].
    pub values: Vec<Value<'a>>,
    /// Keys outside the schema as a JSON object text; `None` when there are none.
    pub extra: Option<String>,
}

impl Row<'_> {
    /// The row with every borrow turned into an owned string.
    pub fn into_owned(self) -> Row<'static> {
        Row {
            index: self.index,
            values: self.values.into_iter().map(Value::into_owned).collect(),
            extra: self.extra,
        }
    }
}

/// A row of `track_events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct TrackEvent {
    pub anonymous_id: String,
    pub event_name: String,
    pub original_timestamp_time: Option<Timestamp>,
    pub received_time: Timestamp,
    pub sent_time: Option<Timestamp>,
    pub context_timezone: Option<String>,
    pub context_os_name: Option<String>,
    pub context_os_version: Option<String>,
    pub context_device_type: Option<String>,
    pub context_device_model: Option<String>,
    pub context_device_manufacturer: Option<String>,
    pub context_device_id: Option<String>,
    pub context_app_name: Option<String>,
    pub context_app_version: Option<String>,
    pub context_app_build: Option<String>,
    pub properties_rating: Option<i16>,
}

/// A row of `weather`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Weather {
    pub city: String,
    pub date_time: Timestamp,
    pub currently_temperature: Option<f64>,
    pub currently_apparenttemperature: Option<f64>,
    pub currently_humidity: Option<f64>,
    pub currently_precipprobability: Option<f64>,
    pub currently_precipintensity: Option<f64>,
    pub currently_visibility: Option<f64>,
    pub currently_windspeed: Option<f64>,
    pub currently_preciptype: Option<String>,
}

/// A row of either dataset, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TypedRow {
    /// A `track_events` row.
    TrackEvent(TrackEvent),
    /// A `weather` row.
    Weather(Weather),
}

impl TypedRow {
    /// Builds the typed row of a validated [`Row`] of `dataset`. `None` if the row does not
    /// have that dataset's shape (it always does when it came from the validator).
    pub fn from_row(dataset: Dataset, row: &Row<'_>) -> Option<TypedRow> {
        let v = &row.values;
        let text = |i: usize| v.get(i).and_then(Value::text);
        let ts = |i: usize| v.get(i).and_then(Value::timestamp);
        let float = |i: usize| v.get(i).and_then(Value::float);
        Some(match dataset {
            Dataset::TrackEvents => TypedRow::TrackEvent(TrackEvent {
                anonymous_id: text(0)?,
                event_name: text(1)?,
                original_timestamp_time: ts(2),
                received_time: ts(3)?,
                sent_time: ts(4),
                context_timezone: text(5),
                context_os_name: text(6),
                context_os_version: text(7),
                context_device_type: text(8),
                context_device_model: text(9),
                context_device_manufacturer: text(10),
                context_device_id: text(11),
                context_app_name: text(12),
                context_app_version: text(13),
                context_app_build: text(14),
                properties_rating: match v.get(15)? {
                    Value::SmallInt(i) => Some(*i),
                    _ => None,
                },
            }),
            Dataset::Weather => TypedRow::Weather(Weather {
                city: text(0)?,
                date_time: ts(1)?,
                currently_temperature: float(2),
                currently_apparenttemperature: float(3),
                currently_humidity: float(4),
                currently_precipprobability: float(5),
                currently_precipintensity: float(6),
                currently_visibility: float(7),
                currently_windspeed: float(8),
                currently_preciptype: text(9),
            }),
        })
    }
}
