//! A resumable scanner that finds where one JSON value ends and whether its syntax is sound.
//!
//! It checks the grammar (structure, literals, escapes, raw line breaks in strings) without
//! building anything; number spelling and control characters are checked again by [`crate::read::json`]
//! when the value is read.

/// What a scanner says after a slice of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The value ended; this many bytes of the slice belong to it.
    Done(usize),
    /// A syntax error at this offset of the slice.
    Error(usize),
    /// The whole slice was consumed and the value goes on.
    More,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Value,
    ArrayFirst,
    ObjectFirst,
    ObjectKey,
    Colon,
    After,
    Str { key: bool },
    Escape { key: bool },
    Unicode { key: bool, left: u8 },
    Number { len: u32 },
    Literal { lit: &'static [u8], at: u8 },
}

/// The deepest nesting of containers a record may have.
pub(crate) const MAX_DEPTH: usize = 512;

/// Scanner state carried from one slice to the next.
#[derive(Debug)]
pub(crate) struct Scanner {
    stack: Vec<u8>,
    state: State,
}

impl Scanner {
    pub(crate) fn new() -> Self {
        Scanner {
            stack: Vec::new(),
            state: State::Value,
        }
    }

    /// Ends the input: a top-level number that reached the end of the input is complete.
    pub(crate) fn finish(&self) -> bool {
        self.stack.is_empty() && matches!(self.state, State::Number { len } if len > 0)
    }

    /// A value just ended: the whole value is done when no container is open.
    #[inline]
    fn value_done(&mut self) -> bool {
        self.state = State::After;
        self.stack.is_empty()
    }

    /// Feeds the next bytes of the value.
    pub(crate) fn feed(&mut self, b: &[u8]) -> Step {
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match self.state {
                State::Str { key } => match memchr::memchr3(b'"', b'\\', b'\n', &b[i..]) {
                    None => return Step::More,
                    Some(n) => {
                        i += n;
                        match b[i] {
                            b'"' => {
                                if key {
                                    self.state = State::Colon;
                                } else if self.value_done() {
                                    return Step::Done(i + 1);
                                }
                            }
                            b'\\' => self.state = State::Escape { key },
                            _ => return Step::Error(i),
                        }
                    }
                },
                State::Escape { key } => {
                    self.state = match c {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                            State::Str { key }
                        }
                        b'u' => State::Unicode { key, left: 4 },
                        _ => return Step::Error(i),
                    }
                }
                State::Unicode { key, left } => {
                    if !c.is_ascii_hexdigit() {
                        return Step::Error(i);
                    }
                    self.state = if left == 1 {
                        State::Str { key }
                    } else {
                        State::Unicode {
                            key,
                            left: left - 1,
                        }
                    };
                }
                State::Number { len } => match c {
                    b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-' => {
                        self.state = State::Number { len: len + 1 }
                    }
                    b'I' if len == 0 => {
                        self.state = State::Literal {
                            lit: b"Infinity",
                            at: 1,
                        }
                    }
                    _ => {
                        if self.value_done() {
                            return Step::Done(i);
                        }
                        continue; // the byte is read again in state After
                    }
                },
                State::Literal { lit, at } => {
                    if c != lit[at as usize] {
                        return Step::Error(i);
                    }
                    if at as usize + 1 == lit.len() {
                        if self.value_done() {
                            return Step::Done(i + 1);
                        }
                    } else {
                        self.state = State::Literal { lit, at: at + 1 };
                    }
                }
                _ if matches!(c, b' ' | b'\t' | b'\r' | b'\n') => {}
                State::Value | State::ArrayFirst => match c {
                    b'{' | b'[' => {
                        if self.stack.len() == MAX_DEPTH {
                            return Step::Error(i);
                        }
                        self.stack.push(c);
                        self.state = if c == b'{' {
                            State::ObjectFirst
                        } else {
                            State::ArrayFirst
                        };
                    }
                    b']' if self.state == State::ArrayFirst => {
                        self.stack.pop();
                        if self.value_done() {
                            return Step::Done(i + 1);
                        }
                    }
                    b'"' => self.state = State::Str { key: false },
                    b'-' => self.state = State::Number { len: 0 },
                    b'0'..=b'9' => self.state = State::Number { len: 1 },
                    b't' => self.state = literal(b"true"),
                    b'f' => self.state = literal(b"false"),
                    b'n' => self.state = literal(b"null"),
                    b'N' => self.state = literal(b"NaN"),
                    b'I' => self.state = literal(b"Infinity"),
                    _ => return Step::Error(i),
                },
                State::ObjectFirst | State::ObjectKey => match c {
                    b'"' => self.state = State::Str { key: true },
                    b'}' if self.state == State::ObjectFirst => {
                        self.stack.pop();
                        if self.value_done() {
                            return Step::Done(i + 1);
                        }
                    }
                    _ => return Step::Error(i),
                },
                State::Colon => match c {
                    b':' => self.state = State::Value,
                    _ => return Step::Error(i),
                },
                State::After => match (c, self.stack.last()) {
                    (b',', Some(b'{')) => self.state = State::ObjectKey,
                    (b',', Some(_)) => self.state = State::Value,
                    (b'}', Some(b'{')) | (b']', Some(b'[')) => {
                        self.stack.pop();
                        if self.value_done() {
                            return Step::Done(i + 1);
                        }
                    }
                    _ => return Step::Error(i),
                },
            }
            i += 1;
        }
        Step::More
    }
}

fn literal(lit: &'static [u8]) -> State {
    State::Literal { lit, at: 1 }
}

/// Finds the next line whose first non-blank byte is `{`, across slices.
#[derive(Debug, Default)]
pub(crate) struct Resync {
    at_line_start: bool,
}

impl Resync {
    /// Offset of that `{` in `b`, if it is there.
    pub(crate) fn find(&mut self, b: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < b.len() {
            if self.at_line_start {
                match b[i] {
                    b'{' => return Some(i),
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    _ => self.at_line_start = false,
                }
                i += 1;
            } else {
                match memchr::memchr(b'\n', &b[i..]) {
                    Some(n) => {
                        i += n + 1;
                        self.at_line_start = true;
                    }
                    None => return None,
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> Step {
        Scanner::new().feed(s.as_bytes())
    }

    #[test]
    fn values_end_where_they_should() {
        assert_eq!(scan(r#"{"a":1},"#), Step::Done(7));
        assert_eq!(
            scan(r#"{"a":[1,{"b":"}"}],"c":-Infinity} x"#),
            Step::Done(33)
        );
        assert_eq!(scan(r#"{"a":"x\"y"}"#), Step::Done(12));
        assert_eq!(scan("42,"), Step::Done(2));
        assert_eq!(scan("\"s\" "), Step::Done(3));
        assert_eq!(scan("[]"), Step::Done(2));
        assert_eq!(scan("{ }"), Step::Done(3));
        assert_eq!(scan("{\"a\":NaN}"), Step::Done(9));
    }

    #[test]
    fn errors_and_partial_input() {
        assert_eq!(scan(r#"{"a":1,}"#), Step::Error(7));
        assert_eq!(scan(r#"{"a" 1}"#), Step::Error(5));
        assert_eq!(scan("{\"a\":\"x\ny\"}"), Step::Error(7));
        assert_eq!(scan(r#"{"a":tru}"#), Step::Error(8));
        assert_eq!(scan(r#"{"a":"\q"}"#), Step::Error(7));
        assert_eq!(scan(r#"{"a":1"#), Step::More);
        assert_eq!(scan("x"), Step::Error(0));
        let mut s = Scanner::new();
        assert_eq!(s.feed(br#"{"a":"he"#), Step::More);
        assert_eq!(s.feed(br#"llo"}"#), Step::Done(5));
        let mut n = Scanner::new();
        assert_eq!(n.feed(b"12"), Step::More);
        assert!(n.finish());
    }

    #[test]
    fn resync_finds_object_lines() {
        let mut r = Resync::default();
        assert_eq!(r.find(b"{bad\n  x\n \t{ok"), Some(11));
        let mut r = Resync::default();
        assert_eq!(r.find(b"{bad\n  "), None);
        assert_eq!(r.find(b" {"), Some(1));
    }
}
