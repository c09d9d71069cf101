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

/// A member read by [`Members::next_member_as`]: its key (`None` when it is the one expected)
/// and its value.
pub type MemberAs<'a> = (Option<Cow<'a, str>>, JsonValue<'a>);

/// The input is not sound JSON at this byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError(pub usize);

/// Iterates over the members of an object at the start of `bytes`. Strings are checked to be
/// UTF-8 as they are read (everything outside strings must be ASCII to be JSON at all).
pub struct Members<'a> {
    pub(super) b: &'a [u8],
    pub(super) i: usize,
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

    pub(super) fn ws(&mut self) {
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
        // Without an expected key, every key is read: `None` only past the last member.
        let Some((key, value)) = self.next_member_as(None)? else {
            return Ok(None);
        };
        Ok(key.map(|key| (key, value)))
    }

    /// The next member, `None` after the last, its key compared first with `expected` (the key
    /// as written, which must hold no `"`, `\\` or control character): a key that is written
    /// exactly so is returned as `None`, without being scanned.
    pub fn next_member_as(
        &mut self,
        expected: Option<&[u8]>,
    ) -> Result<Option<MemberAs<'a>>, SyntaxError> {
        if !self.open_member()? {
            return Ok(None);
        }
        self.expect(b'"')?;
        let key = match expected {
            Some(e) if self.is_written(e) => {
                self.i += e.len() + 1;
                None
            }
            _ => Some(self.string()?),
        };
        self.expect(b':')?;
        let value = self.value()?;
        Ok(Some((key, value)))
    }

    /// Whether the string whose opening quote is consumed is `key` and ends there.
    #[inline]
    fn is_written(&self, key: &[u8]) -> bool {
        let end = self.i + key.len();
        self.b.get(end) == Some(&b'"') && same_bytes(&self.b[self.i..end], key)
    }

    /// Steps over the separator before a member; false past the object's closing brace.
    fn open_member(&mut self) -> Result<bool, SyntaxError> {
        if self.done {
            return Ok(false);
        }
        if self.first {
            self.expect(b'{')?;
            self.first = false;
            self.ws();
            if self.b.get(self.i) == Some(&b'}') {
                self.i += 1;
                self.done = true;
                return Ok(false);
            }
        } else {
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    self.done = true;
                    return Ok(false);
                }
                _ => return Err(SyntaxError(self.i)),
            }
        }
        Ok(true)
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

    pub(super) fn value(&mut self) -> Result<JsonValue<'a>, SyntaxError> {
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
        let (end, ascii) = plain_run(self.b, start);
        match self.b.get(end) {
            Some(b'"') => {
                self.i = end + 1;
                return Ok(Cow::Borrowed(if ascii {
                    // SAFETY: ASCII is valid UTF-8.
                    unsafe { std::str::from_utf8_unchecked(&self.b[start..end]) }
                } else {
                    self.text(start, end)?
                }));
            }
            Some(b'\\') => {}
            _ => return Err(SyntaxError(end)),
        }
        let n = end - start;
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
                    let (end, _) = plain_run(self.b, self.i);
                    if !matches!(self.b.get(end), Some(b'"' | b'\\')) {
                        return Err(SyntaxError(end));
                    }
                    let n = end - self.i;
                    out.push_str(self.text(self.i, end)?);
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

#[cfg(test)]
use super::jsonb::numeric_fits;
/// Where the plain run of string bytes from `i` ends (at a `"`, a `\\`, a control character or
/// the end of `b`), and whether the run is ASCII: one pass, eight bytes at a time.
#[inline]
fn plain_run(b: &[u8], mut i: usize) -> (usize, bool) {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut high = 0u64;
    while let Some(word) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let quote = x ^ (LO * u64::from(b'"'));
        let slash = x ^ (LO * u64::from(b'\\'));
        // A byte's high bit set where it is zero (quote, slash) or below 0x20; exact for the
        // lowest such byte, which is all that is looked at.
        let stop = (quote.wrapping_sub(LO) & !quote
            | slash.wrapping_sub(LO) & !slash
            | x.wrapping_sub(LO * 0x20) & !x)
            & HI;
        if stop != 0 {
            let k = stop.trailing_zeros() as usize / 8;
            let before = if k == 0 { 0 } else { u64::MAX >> (64 - 8 * k) };
            return (i + k, (high | x & before) & HI == 0);
        }
        high |= x;
        i += 8;
    }
    let mut ascii = high & HI == 0;
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        ascii &= c < 0x80;
        i += 1;
    }
    (i, ascii)
}

/// Whether two byte strings of one length are equal, eight bytes at a time: column names are
/// short, and a call to `memcmp` for each key of each record costs more than the comparison.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], i: usize| u64::from_ne_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut i = 0;
    while i + 8 < n {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    word(a, n - 8) == word(b, n - 8)
}

pub use super::jsonb::{write_jsonb, write_object, JsonbError};

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
