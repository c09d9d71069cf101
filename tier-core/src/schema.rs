//! The two datasets, their columns and rules, and the DDL of their tables.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// One of the event streams tier loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dataset {
    /// App tracking events (`segment_tracks.*` keys), table `track_events`.
    TrackEvents,
    /// Weather observations (`weather_data.*` keys), table `weather`.
    Weather,
}

/// The SQL type of a column, with the rule its values obey.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `text`; JSON numbers are kept as their JSON text.
    Text,
    /// `text` restricted to a set of values (else `invalid_value:<column>`).
    OneOf(&'static [&'static str]),
    /// `timestamptz`; naive values are UTC.
    Timestamp,
    /// `double precision` within an inclusive range (else `out_of_range:<column>`).
    Float {
        /// Smallest value allowed.
        min: f64,
        /// Largest value allowed.
        max: f64,
    },
    /// `smallint`: an integer value (else `invalid_type:<column>`).
    SmallInt,
}

impl Kind {
    /// The PostgreSQL type name.
    pub fn sql_type(self) -> &'static str {
        match self {
            Kind::Text | Kind::OneOf(_) => "text",
            Kind::Timestamp => "timestamptz",
            Kind::Float { .. } => "double precision",
            Kind::SmallInt => "smallint",
        }
    }
}

/// A column of a target table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column {
    /// Column name: the source key without the dataset prefix.
    pub name: &'static str,
    /// Type and rule.
    pub kind: Kind,
    /// Whether the column is `not null` (absent, null or empty is `missing_field:<column>`).
    pub required: bool,
}

const fn col(name: &'static str, kind: Kind, required: bool) -> Column {
    Column {
        name,
        kind,
        required,
    }
}

const INF: f64 = f64::INFINITY;

static TRACK_EVENTS: [Column; 16] = [
    col("anonymous_id", Kind::Text, true),
    col("event_name", Kind::Text, true),
    col("original_timestamp_time", Kind::Timestamp, false),
    col("received_time", Kind::Timestamp, true),
    col("sent_time", Kind::Timestamp, false),
    col("context_timezone", Kind::Text, false),
    col("context_os_name", Kind::Text, false),
    col("context_os_version", Kind::Text, false),
    col("context_device_type", Kind::Text, false),
    col("context_device_model", Kind::Text, false),
    col("context_device_manufacturer", Kind::Text, false),
    col("context_device_id", Kind::Text, false),
    col("context_app_name", Kind::Text, false),
    col("context_app_version", Kind::Text, false),
    col("context_app_build", Kind::Text, false),
    col("properties_rating", Kind::SmallInt, false),
];

static WEATHER: [Column; 10] = [
    col("city", Kind::Text, true),
    col("date_time", Kind::Timestamp, true),
    col(
        "currently_temperature",
        Kind::Float {
            min: -90.0,
            max: 60.0,
        },
        false,
    ),
    col(
        "currently_apparenttemperature",
        Kind::Float {
            min: -100.0,
            max: 80.0,
        },
        false,
    ),
    col(
        "currently_humidity",
        Kind::Float { min: 0.0, max: 1.0 },
        false,
    ),
    col(
        "currently_precipprobability",
        Kind::Float { min: 0.0, max: 1.0 },
        false,
    ),
    col(
        "currently_precipintensity",
        Kind::Float { min: 0.0, max: INF },
        false,
    ),
    col(
        "currently_visibility",
        Kind::Float { min: 0.0, max: INF },
        false,
    ),
    col(
        "currently_windspeed",
        Kind::Float { min: 0.0, max: INF },
        false,
    ),
    col(
        "currently_preciptype",
        Kind::OneOf(&["rain", "snow", "sleet"]),
        false,
    ),
];

impl Dataset {
    /// Both datasets, in a stable order.
    pub const ALL: [Dataset; 2] = [Dataset::TrackEvents, Dataset::Weather];

    /// The dataset's name, as used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::TrackEvents => "track_events",
            Dataset::Weather => "weather",
        }
    }

    /// The prefix its source keys carry (`segment_tracks.`, `weather_data.`).
    pub fn key_prefix(self) -> &'static str {
        match self {
            Dataset::TrackEvents => "segment_tracks.",
            Dataset::Weather => "weather_data.",
        }
    }

    /// The target table's name (unqualified).
    pub fn table(self) -> &'static str {
        self.name()
    }

    /// The typed columns, in table order (which is also the order rules are checked in).
    pub fn columns(self) -> &'static [Column] {
        match self {
            Dataset::TrackEvents => &TRACK_EVENTS,
            Dataset::Weather => &WEATHER,
        }
    }

    /// The columns that identify a record when the dataset has a natural key (weather:
    /// `city, date_time`); `None` when duplicates are records equal in all columns.
    pub fn key_columns(self) -> Option<&'static [&'static str]> {
        match self {
            Dataset::TrackEvents => None,
            Dataset::Weather => Some(&["city", "date_time"]),
        }
    }

    /// Position of a column by name.
    #[inline]
    pub fn column_index(self, name: &str) -> Option<usize> {
        // Compare lengths first: most keys differ in length, and the hot path asks this for
        // every key of every record.
        self.columns()
            .iter()
            .position(|c| c.name.len() == name.len() && c.name == name)
    }

    /// Tells the dataset from a file name (`…track…` or `…weather…`).
    pub fn from_file_name(name: &str) -> Option<Dataset> {
        let lower = name.to_ascii_lowercase();
        if lower.contains("track") || lower.contains("segment") {
            Some(Dataset::TrackEvents)
        } else if lower.contains("weather") {
            Some(Dataset::Weather)
        } else {
            None
        }
    }

    /// Tells the dataset from the first bytes of a file: the first prefixed key found wins.
    pub fn from_prefixed_keys(head: &[u8]) -> Option<Dataset> {
        let find = |d: Dataset| {
            let needle = format!("\"{}", d.key_prefix());
            memchr::memmem::find(head, needle.as_bytes())
        };
        match (find(Dataset::TrackEvents), find(Dataset::Weather)) {
            (Some(a), Some(b)) if b < a => Some(Dataset::Weather),
            (Some(_), _) => Some(Dataset::TrackEvents),
            (None, Some(_)) => Some(Dataset::Weather),
            (None, None) => None,
        }
    }

    /// The `CREATE TABLE` statements for the target table and its rejects table, in `schema`.
    ///
    /// ```
    /// use tier_core::Dataset;
    /// let ddl = Dataset::Weather.ddl("public");
    /// assert!(ddl.contains("CREATE TABLE IF NOT EXISTS \"public\".\"weather\""));
    /// ```
    pub fn ddl(self, schema: &str) -> String {
        crate::ddl::table_ddl(self, schema)
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dataset {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "track_events" | "segment_tracks" => Ok(Dataset::TrackEvents),
            "weather" | "weather_data" => Ok(Dataset::Weather),
            other => Err(Error::InvalidDataset(other.to_string())),
        }
    }
}
