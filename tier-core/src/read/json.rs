//! Reading the members of one JSON object whose bytes the scanner has already delimited.
//!
//! Values are borrowed from the record where they can be; strings are unescaped only when they
//! hold escapes. `NaN`, `Infinity` and `-Infinity` are read (real exports contain them).

use std::borrow::Cow;

/// A member value of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as its JSON text.
    Number(&'a str),
    /// `NaN`, `Infinity` or `-Infinity`.
    NonFinite(&'a str),
    /// A string, unescaped.
    String(Cow<'a, str>),
    /// An object or array, as its JSON text.
    Nested(&'a str),
}

/// The input is not sound JSON at this byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError(pub usize);

/// Iterates over the members of an object at the start of `bytes`. Strings are checked to be
/// UTF-8 as they are read (everything outside strings must be ASCII to be JSON at all).
pub struct Members<'a> {
    b: &'a [u8],
    i: usize,
    first: bool,
    done: bool,
}

impl<'a> Members<'a> {
    /// Starts reading the object at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Members {
            b: bytes,
            i: 0,
            first: true,
            done: false,
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), SyntaxError> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(SyntaxError(self.i))
        }
    }

    /// The next member, `None` after the last.
    pub fn next_member(&mut self) -> Result<Option<(Cow<'a, str>, JsonValue<'a>)>, SyntaxError> {
        if self.done {
            return Ok(None);
        }
        if self.first {
            self.expect(b'{')?;
            self.first = false;
            self.ws();
            if self.b.get(self.i) == Some(&b'}') {
                self.i += 1;
                self.done = true;
                return Ok(None);
            }
        } else {
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.done = true;
                    return Ok(None);
                }
                _ => return Err(SyntaxError(self.i)),
            }
        }
        self.expect(b'"')?;
        let key = self.string()?;
        self.expect(b':')?;
        let value = self.value()?;
        Ok(Some((key, value)))
    }

    /// Reads the rest of the object; returns the offset just past its closing brace.
    pub fn end(&mut self) -> Result<usize, SyntaxError> {
        while self.next_member()?.is_some() {}
        Ok(self.i)
    }

    /// Checks that nothing but white space follows the object.
    #[cfg(test)]
    fn finish(&mut self) -> Result<(), SyntaxError> {
        self.end()?;
        self.ws();
        if self.i == self.b.len() {
            Ok(())
        } else {
            Err(SyntaxError(self.i))
        }
    }

    fn text(&self, start: usize, end: usize) -> Result<&'a str, SyntaxError> {
        let bytes = &self.b[start..end];
        if bytes.is_ascii() {
            // SAFETY: ASCII is valid UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
        std::str::from_utf8(bytes).map_err(|e| SyntaxError(start + e.valid_up_to()))
    }

    fn value(&mut self) -> Result<JsonValue<'a>, SyntaxError> {
        self.ws();
        let start = self.i;
        let c = *self.b.get(self.i).ok_or(SyntaxError(self.i))?;
        match c {
            b'"' => {
                self.i += 1;
                Ok(JsonValue::String(self.string()?))
            }
            b'{' | b'[' => {
                self.skip_nested()?;
                Ok(JsonValue::Nested(self.text(start, self.i)?))
            }
            b'-' | b'0'..=b'9' => {
                if self.b[self.i..].starts_with(b"-Infinity") {
                    self.i += 9;
                    return Ok(JsonValue::NonFinite("-Infinity"));
                }
                self.number()?;
                Ok(JsonValue::Number(self.text(start, self.i)?))
            }
            _ => {
                for (lit, v) in [
                    ("null", JsonValue::Null),
                    ("true", JsonValue::Bool(true)),
                    ("false", JsonValue::Bool(false)),
                    ("NaN", JsonValue::NonFinite("NaN")),
                    ("Infinity", JsonValue::NonFinite("Infinity")),
                ] {
                    if self.b[self.i..].starts_with(lit.as_bytes()) {
                        self.i += lit.len();
                        return Ok(v);
                    }
                }
                Err(SyntaxError(self.i))
            }
        }
    }

    fn number(&mut self) -> Result<(), SyntaxError> {
        let b = self.b;
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return Err(SyntaxError(i)),
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let s = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == s {
                return Err(SyntaxError(i));
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            let s = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == s {
                return Err(SyntaxError(i));
            }
        }
        self.i = i;
        Ok(())
    }

    /// Reads a string whose opening quote is consumed.
    fn string(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        let start = self.i;
        let n = memchr::memchr2(b'"', b'\\', &self.b[start..]).ok_or(SyntaxError(start))?;
        let plain = &self.b[start..start + n];
        if let Some(p) = plain.iter().position(|&c| c < 0x20) {
            return Err(SyntaxError(start + p));
        }
        if self.b[start + n] == b'"' {
            self.i = start + n + 1;
            return Ok(Cow::Borrowed(self.text(start, start + n)?));
        }
        let mut out = String::with_capacity(n + 16);
        out.push_str(self.text(start, start + n)?);
        self.i = start + n;
        loop {
            let c = *self.b.get(self.i).ok_or(SyntaxError(self.i))?;
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    let e = *self.b.get(self.i + 1).ok_or(SyntaxError(self.i))?;
                    self.i += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let ch = if (0xD800..0xDC00).contains(&hi) {
                                if !self.b[self.i..].starts_with(b"\\u") {
                                    return Err(SyntaxError(self.i));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(SyntaxError(self.i));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(ch).ok_or(SyntaxError(self.i))?);
                        }
                        _ => return Err(SyntaxError(self.i - 1)),
                    }
                }
                c if c < 0x20 => return Err(SyntaxError(self.i)),
                _ => {
                    let rest = &self.b[self.i..];
                    let n = memchr::memchr2(b'"', b'\\', rest).ok_or(SyntaxError(self.i))?;
                    if let Some(p) = rest[..n].iter().position(|&c| c < 0x20) {
                        return Err(SyntaxError(self.i + p));
                    }
                    out.push_str(self.text(self.i, self.i + n)?);
                    self.i += n;
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let h = self.b.get(self.i..self.i + 4).ok_or(SyntaxError(self.i))?;
        let s = std::str::from_utf8(h).map_err(|_| SyntaxError(self.i))?;
        let v = u32::from_str_radix(s, 16).map_err(|_| SyntaxError(self.i))?;
        self.i += 4;
        Ok(v)
    }

    /// Skips an object or array, checking its syntax.
    fn skip_nested(&mut self) -> Result<(), SyntaxError> {
        let mut stack = Vec::new();
        loop {
            self.ws();
            match self.b.get(self.i) {
                Some(&c @ (b'{' | b'[')) => {
                    // The enclosing record is one level; the scanner allows this many in all.
                    if stack.len() + 1 >= super::scan::MAX_DEPTH {
                        return Err(SyntaxError(self.i));
                    }
                    stack.push(c);
                    self.i += 1;
                    self.ws();
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.b.get(self.i) == Some(&close) {
                        self.i += 1;
                        stack.pop();
                    } else if c == b'{' {
                        self.expect(b'"')?;
                        self.string()?;
                        self.expect(b':')?;
                        continue;
                    } else {
                        continue;
                    }
                }
                _ => {
                    self.value()?;
                }
            }
            // After a value inside the containers.
            loop {
                let Some(&top) = stack.last() else {
                    return Ok(());
                };
                self.ws();
                match self.b.get(self.i) {
                    Some(b',') => {
                        self.i += 1;
                        if top == b'{' {
                            self.expect(b'"')?;
                            self.string()?;
                            self.expect(b':')?;
                        }
                        break;
                    }
                    Some(b'}') if top == b'{' => {
                        self.i += 1;
                        stack.pop();
                    }
                    Some(b']') if top == b'[' => {
                        self.i += 1;
                        stack.pop();
                    }
                    _ => return Err(SyntaxError(self.i)),
                }
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &str) -> Result<Vec<(String, JsonValue<'_>)>, SyntaxError> {
        let mut m = Members::new(s.as_bytes());
        let mut out = Vec::new();
        while let Some((k, v)) = m.next_member()? {
            out.push((k.into_owned(), v));
        }
        m.finish()?;
        Ok(out)
    }

    #[test]
    fn reads_members() {
        let got = members(
            r#"{"a":"x\"y\u00e9\ud83d\ude00","b":-1.5e3,"c":null,"d":[1,{"e":[]}],"f":NaN,"g":-Infinity,"h":true}"#,
        )
        .unwrap();
        assert_eq!(got[0].1, JsonValue::String("x\"yé😀".into()));
        assert_eq!(got[1].1, JsonValue::Number("-1.5e3"));
        assert_eq!(got[2].1, JsonValue::Null);
        assert_eq!(got[3].1, JsonValue::Nested(r#"[1,{"e":[]}]"#));
        assert_eq!(got[4].1, JsonValue::NonFinite("NaN"));
        assert_eq!(got[5].1, JsonValue::NonFinite("-Infinity"));
        assert_eq!(got[6].1, JsonValue::Bool(true));
        assert!(members("{}").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":"\ud800"}"#,
            r#"{"a":1} x"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1"#,
        ] {
            assert!(members(bad).is_err(), "{bad}");
        }
    }

    fn jsonb(text: &str) -> Result<String, JsonbError> {
        let mut out = String::new();
        write_jsonb(&mut out, &JsonValue::Nested(text)).map(|_| out)
    }

    #[test]
    fn numbers_numeric_cannot_hold_are_told_apart() {
        let digits = |n: usize| "1".repeat(n);
        let fits = [
            "1e131071".to_string(),
            "9.99e131071".into(),
            "1e-16383".into(),
            "0.1e-16382".into(),
            "0e200000".into(),
            "-0.000".into(),
            digits(131_072),
            format!("0.{}", digits(16_383)),
            format!("0.{}e1", digits(16_384)),
            format!("{}e-16383", digits(20)),
        ];
        for n in &fits {
            assert!(numeric_fits(n), "{}", &n[..n.len().min(40)]);
        }
        let overflows = [
            "1e131072".to_string(),
            "10e131071".into(),
            "1e-16384".into(),
            "0.1e-16383".into(),
            "1e99999999999".into(),
            "0e2000000000".into(),
            digits(131_073),
            format!("0.{}", digits(16_384)),
            format!("-{}.5", digits(131_073)),
        ];
        for n in &overflows {
            assert!(!numeric_fits(n), "{}", &n[..n.len().min(40)]);
        }
        assert_eq!(
            jsonb(r#"{"a":[1,{"b":1e131072}]}"#),
            Err(JsonbError::Numeric)
        );
    }

    #[test]
    fn jsonb_text_keeps_every_number_exactly() {
        let nums = [
            "123456789012345678901234567890",
            "18446744073709551616",
            "-9223372036854775809",
            "3.141592653589793238462643383279",
            "0.1000000000000000055511151231257827",
            "1e999",
            "1E-400",
            "-0",
            "-0.0",
        ];
        for n in nums {
            assert_eq!(
                jsonb(&format!("[{n}, {{\"k\": [{n}]}}]")).unwrap(),
                format!("[{n},{{\"k\":[{n}]}}]")
            );
        }
        assert_eq!(
            jsonb(r#"{"x":[NaN,-Infinity,2]}"#).unwrap(),
            r#"{"x":["NaN","-Infinity",2]}"#
        );
        assert_eq!(
            jsonb(r#"{"b":1,"a":{"d":1,"c":2},"b":3}"#).unwrap(),
            r#"{"a":{"c":2,"d":1},"b":3}"#
        );
        assert_eq!(
            jsonb(r#"["q\"\\\n\u0001é"]"#).unwrap(),
            r#"["q\"\\\n\u0001é"]"#
        );
        assert_eq!(jsonb(r#"{"a":"\u0000"}"#), Err(JsonbError::Nul));
        assert_eq!(jsonb(r#"{"\u0000":1}"#), Err(JsonbError::Nul));
        assert_eq!(jsonb("[]").unwrap(), "[]");
        assert_eq!(jsonb("{}").unwrap(), "{}");
    }
}

#[cfg(test)]
mod examples {
    #[test]
    fn write_jsonb_keeps_numbers_exactly() {
        use super::{write_jsonb, JsonValue};
        let mut out = String::new();
        write_jsonb(
            &mut out,
            &JsonValue::Nested(r#"{"b":[NaN, 1e999], "a":123456789012345678901234567890}"#),
        )
        .unwrap();
        assert_eq!(
            out,
            r#"{"a":123456789012345678901234567890,"b":["NaN",1e999]}"#
        );
    }

    #[test]
    fn numeric_fits_postgres_limits() {
        use super::numeric_fits;
        assert!(numeric_fits("123456789012345678901234567890") && numeric_fits("1e131071"));
        assert!(!numeric_fits("1e131072") && !numeric_fits("1e-16384") && numeric_fits("1e-16383"));
    }
}
