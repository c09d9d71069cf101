//! JSON values written back as text the way PostgreSQL's `jsonb` keeps them: numbers exactly
//! as they stand (when `numeric` holds them), keys sorted with the last of a repeated key kept,
//! non-finite numbers as strings; `_extra` and `json` columns are written so.

use std::borrow::Cow;

use super::json::{JsonValue, Members, SyntaxError};

/// Why a value cannot be written as `jsonb` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonbError {
    /// The nested text is not sound JSON.
    Syntax(SyntaxError),
    /// A string or key holds U+0000, which PostgreSQL's `jsonb` cannot store.
    Nul,
    /// A number PostgreSQL's `numeric` (which `jsonb` keeps numbers in) cannot hold.
    Numeric,
}

impl From<SyntaxError> for JsonbError {
    fn from(e: SyntaxError) -> Self {
        JsonbError::Syntax(e)
    }
}

/// Writes a value as JSON text for a `jsonb` column or `_extra`. Numbers are written exactly as
/// they stand in the input (`jsonb` keeps them as exact decimals); `NaN`, `Infinity` and
/// `-Infinity`, which JSON has no number for, become strings; objects are written with their
/// keys sorted and, where a key repeats, its last value (as `jsonb` keeps them), so equal
/// values give equal text.
pub fn write_jsonb(out: &mut String, v: &JsonValue<'_>) -> Result<(), JsonbError> {
    match v {
        JsonValue::Null => out.push_str("null"),
        JsonValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        JsonValue::Number(n) if numeric_fits(n) => out.push_str(n),
        JsonValue::Number(_) => return Err(JsonbError::Numeric),
        JsonValue::NonFinite(n) => write_string(out, n)?,
        JsonValue::String(s) => write_string(out, s)?,
        JsonValue::Nested(text) => {
            let mut m = Members::new(text.as_bytes());
            if text.starts_with('{') {
                let mut members = Vec::new();
                while let Some(kv) = m.next_member()? {
                    members.push(kv);
                }
                write_object(out, &mut members)?;
            } else {
                m.i = 1;
                out.push('[');
                m.ws();
                if m.b.get(m.i) != Some(&b']') {
                    loop {
                        let v = m.value()?;
                        write_jsonb(out, &v)?;
                        m.ws();
                        match m.b.get(m.i) {
                            Some(b',') => {
                                m.i += 1;
                                out.push(',');
                            }
                            Some(b']') => break,
                            _ => return Err(SyntaxError(m.i).into()),
                        }
                    }
                }
                out.push(']');
            }
        }
    }
    Ok(())
}

/// Whether PostgreSQL's `numeric` holds the JSON number `n`: at most 131,072 digits before the
/// decimal point and 16,383 after it, once the exponent is applied.
pub fn numeric_fits(n: &str) -> bool {
    // Digits after the point at most the length; before it, fewer than that.
    const MAX_SCALE: i64 = 16_383;
    const MAX_WEIGHT: i64 = 131_071;
    let b = n.as_bytes();
    if b.len() as i64 <= MAX_SCALE && !b.iter().any(|&c| c == b'e' || c == b'E') {
        return true;
    }
    let (mantissa, exponent) = match n.find(['e', 'E']) {
        Some(i) => (&n[..i], &n[i + 1..]),
        None => (n, "0"),
    };
    let digits = exponent
        .trim_start_matches(['+', '-'])
        .trim_start_matches('0');
    // PostgreSQL refuses exponents past about a billion, whatever the digits.
    if digits.len() > 10 {
        return false;
    }
    let mut exp = match digits {
        "" => 0,
        d => match d.parse::<i64>() {
            Ok(e) => e,
            Err(_) => return false,
        },
    };
    if exp > i64::from(i32::MAX / 2) {
        return false;
    }
    if exponent.starts_with('-') {
        exp = -exp;
    }
    let mantissa = mantissa.trim_start_matches('-');
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (frac.len() as i64 - exp).max(0) > MAX_SCALE {
        return false;
    }
    // The decimal weight of the first significant digit.
    let int_sig = int.trim_start_matches('0');
    let weight = if !int_sig.is_empty() {
        int_sig.len() as i64 - 1
    } else {
        match frac.bytes().position(|c| c != b'0') {
            Some(zeros) => -(zeros as i64) - 1,
            None => return true, // zero
        }
    };
    weight + exp <= MAX_WEIGHT
}

/// Writes members as a JSON object: keys sorted, the last value of a repeated key kept.
pub fn write_object(
    out: &mut String,
    members: &mut [(Cow<'_, str>, JsonValue<'_>)],
) -> Result<(), JsonbError> {
    // A stable sort keeps repeated keys in input order: the last of each run wins.
    members.sort_by(|a, b| a.0.cmp(&b.0));
    out.push('{');
    let mut first = true;
    for (i, (k, v)) in members.iter().enumerate() {
        if members.get(i + 1).is_some_and(|next| next.0 == *k) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_string(out, k)?;
        out.push(':');
        write_jsonb(out, v)?;
    }
    out.push('}');
    Ok(())
}

/// Writes a JSON string literal.
fn write_string(out: &mut String, s: &str) -> Result<(), JsonbError> {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0 => return Err(JsonbError::Nul),
            0x01..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
    Ok(())
}
