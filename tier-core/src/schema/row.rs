//! Validated rows: one typed value per column of their dataset.

use std::borrow::Cow;

use crate::schema::timestamp::Timestamp;

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
    /// `integer`.
    Integer(i32),
    /// `bigint`.
    BigInt(i64),
    /// `boolean`.
    Bool(bool),
    /// `date`, as days since 1970-01-01.
    Date(i32),
    /// `jsonb`, as JSON text (numbers exactly as written).
    Json(Cow<'a, str>),
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
            Value::Integer(i) => Value::Integer(i),
            Value::BigInt(i) => Value::BigInt(i),
            Value::Bool(b) => Value::Bool(b),
            Value::Date(d) => Value::Date(d),
            Value::Json(s) => Value::Json(Cow::Owned(s.into_owned())),
        }
    }
}

/// A record that passed validation: one value per column of its dataset, in table order, plus
/// the keys outside the schema as a JSON object text (`_extra`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    /// The record's 0-based position in its input.
    pub index: u64,
    /// The values, in the order of its dataset's columns.
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
