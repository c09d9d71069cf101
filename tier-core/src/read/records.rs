//! Record framing: a byte stream cut into top-level JSON values ([`RawRecord`]), whatever
//! the layout, with the size limit and resynchronisation after damage.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::scan::{Resync, Scanner, Step};
use crate::error::{Error, Result};

use super::*;

/// The default largest record, in bytes (1 MiB).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// How much of a record over the size limit is kept as its raw text (64 KiB).
pub const TOO_LARGE_KEPT_BYTES: usize = 64 << 10;

pub(crate) const READ_CHUNK: usize = 1 << 20;

/// What the reader made of one top-level value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    /// A syntactically sound JSON object, to be validated.
    Object,
    /// A sound JSON value that is not an object (`not_an_object`).
    NotObject,
    /// Bytes that are not sound JSON, up to the next line starting with `{` (`malformed_json`).
    Malformed,
    /// A value over the size limit; only its first 64 KiB are kept (`record_too_large`).
    TooLarge,
}

/// One top-level value of an input, with its 0-based position in the input.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// Position of the record in its input, from 0.
    pub index: u64,
    /// Byte offset of the record's start in the (decompressed) input.
    pub offset: u64,
    /// Byte offset just past the record's last byte in the input.
    pub end: u64,
    /// What the reader made of it.
    pub kind: RawKind,
    /// The record's bytes (for [`RawKind::TooLarge`], the first 64 KiB).
    pub bytes: &'a [u8],
}

/// Cuts an input into [`RawRecord`]s, in bounded memory.
///
/// ```
/// use tier_core::{Input, RawKind};
/// let data = b"[{\"a\":1},\n{\"a\":2},\n42,\n{\"a\":\n";
/// let input = Input::from_reader("mem".as_ref(), Box::new(&data[..]), false).unwrap();
/// let mut records = input.records(1 << 20);
/// let mut kinds = Vec::new();
/// while let Some(r) = records.next_record().unwrap() {
///     kinds.push(r.kind);
/// }
/// assert_eq!(kinds, [RawKind::Object, RawKind::Object, RawKind::NotObject, RawKind::Malformed]);
/// ```
pub struct Records {
    path: PathBuf,
    source: Option<Box<dyn Read + Send>>,
    /// Stream offset of `buf[0]`.
    base: u64,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    started: bool,
    index: u64,
    max: usize,
    large: Vec<u8>,
}

pub(crate) enum Mode {
    Scan(Scanner),
    Resync(Resync),
}

pub(crate) enum End {
    Value(usize),
    Resync(usize),
    Eof,
}

impl Records {
    pub(crate) fn new(input: Input, max_record_bytes: usize) -> Self {
        Records {
            path: input.path,
            source: Some(input.reader),
            base: 0,
            buf: vec![0; 2 * READ_CHUNK],
            pos: 0,
            end: 0,
            eof: false,
            started: false,
            index: 0,
            max: max_record_bytes.max(1),
            large: Vec::new(),
        }
    }

    /// Records of bytes already in memory, from `data[pos]`, in the middle of an input (no BOM
    /// is looked for). `base` is the stream offset of `data[0]`.
    pub(crate) fn from_bytes(
        path: &Path,
        data: Vec<u8>,
        base: u64,
        pos: usize,
        max_record_bytes: usize,
    ) -> Self {
        Records {
            path: path.to_path_buf(),
            source: None,
            base,
            pos,
            end: data.len(),
            buf: data,
            eof: true,
            started: true,
            index: 0,
            max: max_record_bytes.max(1),
            large: Vec::new(),
        }
    }

    /// Records of a reader, from the middle of an input (no BOM is looked for).
    pub(crate) fn from_reader_mid_stream(
        path: &Path,
        reader: Box<dyn Read + Send>,
        base: u64,
        max_record_bytes: usize,
    ) -> Self {
        Records {
            path: path.to_path_buf(),
            source: Some(reader),
            base,
            buf: vec![0; 2 * READ_CHUNK],
            pos: 0,
            end: 0,
            eof: false,
            started: true,
            index: 0,
            max: max_record_bytes.max(1),
            large: Vec::new(),
        }
    }

    /// The size limit of a record.
    pub(crate) fn max_record_bytes(&self) -> usize {
        self.max
    }

    /// Gives the buffer of an in-memory reader back.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// The stream offset up to which records have been returned.
    pub fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The input's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Puts the raw bytes that follow in `out` from `at` on (a BOM at the start of the input
    /// removed): what is buffered, else one read straight into `out`. Returns how many; 0 at
    /// the end. For cutting the input into chunks: `out` past `at` holds bytes of no meaning,
    /// kept from an earlier use of the buffer, which are read over without being zeroed first
    /// (`out` only grows, zeroed, where it is too short).
    pub(crate) fn read_into(&mut self, out: &mut Vec<u8>, at: usize) -> Result<usize> {
        if !self.started {
            self.head()?;
            if self.buf[self.pos..self.end].starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.pos += 3;
            }
            self.started = true;
        }
        if self.pos < self.end {
            let n = self.end - self.pos;
            room(out, at + n);
            out[at..at + n].copy_from_slice(&self.buf[self.pos..self.end]);
            self.base += self.end as u64;
            self.pos = 0;
            self.end = 0;
            return Ok(n);
        }
        let Some(source) = self.source.as_mut().filter(|_| !self.eof) else {
            return Ok(0);
        };
        room(out, at + READ_CHUNK);
        let n = loop {
            match source.read(&mut out[at..at + READ_CHUNK]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        };
        self.base += n as u64;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// The first bytes of the input (up to about 1 MiB), without consuming them.
    pub fn head(&mut self) -> Result<&[u8]> {
        while !self.eof && self.end - self.pos < READ_CHUNK {
            if !self.fill()? {
                break;
            }
        }
        Ok(&self.buf[self.pos..self.end])
    }

    /// Reads more bytes; `false` at the end of the input. Keeps `buf[pos..end]`.
    fn fill(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && (self.buf.len() - self.end < READ_CHUNK) {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.base += self.pos as u64;
            self.pos = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK / 4 {
            let len = self.buf.len() * 2;
            self.buf.resize(len, 0);
        }
        let Some(source) = self.source.as_mut() else {
            self.eof = true;
            return Ok(false);
        };
        loop {
            match source.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
    }

    /// The next record, or `None` at the end of the input. Only I/O (including a broken gzip
    /// stream) is an error; bad bytes are records of a reject kind.
    pub fn next_record(&mut self) -> Result<Option<RawRecord<'_>>> {
        // Skip what may stand between top-level values.
        loop {
            if !self.started && self.end - self.pos >= 3 {
                self.started = true;
                if self.buf[self.pos..].starts_with(&[0xEF, 0xBB, 0xBF]) {
                    self.pos += 3;
                }
            }
            while self.pos < self.end
                && matches!(
                    self.buf[self.pos],
                    b' ' | b'\t' | b'\r' | b'\n' | b'[' | b']' | b','
                )
            {
                self.pos += 1;
            }
            if self.pos < self.end && (self.started || self.eof) {
                break;
            }
            if !self.fill()? {
                if self.pos >= self.end {
                    return Ok(None);
                }
                self.started = true;
            }
        }

        let first = self.buf[self.pos];
        let offset = self.position();
        let mut mode = Mode::Scan(Scanner::new());
        let mut rel = 0usize;
        let mut large = false;
        self.large.clear();
        let end = loop {
            let avail = &self.buf[self.pos + rel..self.end];
            let found = match &mut mode {
                Mode::Scan(sc) => match sc.feed(avail) {
                    Step::Done(n) => Some(End::Value(rel + n)),
                    Step::Error(n) => {
                        mode = Mode::Resync(Resync::default());
                        rel = if large { rel + n } else { 1 };
                        continue;
                    }
                    Step::More => None,
                },
                Mode::Resync(rs) => rs.find(avail).map(|n| End::Resync(rel + n)),
            };
            if let Some(end) = found {
                break end;
            }
            rel = self.end - self.pos;
            if !large && rel > self.max {
                large = true;
                let keep = TOO_LARGE_KEPT_BYTES.min(rel);
                self.large
                    .extend_from_slice(&self.buf[self.pos..self.pos + keep]);
            }
            if large {
                self.pos = self.end;
                rel = 0;
            }
            if !self.fill()? {
                break match &mode {
                    Mode::Scan(sc) if sc.finish() => End::Value(self.end - self.pos),
                    _ => End::Eof,
                };
            }
        };

        let (len, malformed) = match end {
            End::Value(n) => (n, false),
            End::Resync(n) => (n, true),
            End::Eof => (self.end - self.pos, true),
        };
        let start = self.pos;
        self.pos += len;
        let index = self.index;
        self.index += 1;
        if large || len > self.max {
            if !large {
                self.large
                    .extend_from_slice(&self.buf[start..start + TOO_LARGE_KEPT_BYTES.min(len)]);
            }
            return Ok(Some(RawRecord {
                index,
                offset,
                end: self.position(),
                kind: RawKind::TooLarge,
                bytes: &self.large,
            }));
        }
        let mut bytes = &self.buf[start..start + len];
        let kind = if malformed {
            while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n' | b','] = bytes {
                bytes = rest;
            }
            RawKind::Malformed
        } else if first == b'{' {
            RawKind::Object
        } else {
            RawKind::NotObject
        };
        Ok(Some(RawRecord {
            index,
            offset,
            end: self.base + self.pos as u64,
            kind,
            bytes,
        }))
    }
}

/// Makes `out` at least `len` bytes long, the new bytes zeroed.
fn room(out: &mut Vec<u8>, len: usize) {
    if out.len() < len {
        out.resize(len, 0);
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
