//! Bytes to raw records: opening inputs (files, gzip, standard input) and cutting the byte
//! stream into top-level JSON values, whatever the layout.
//!
//! The reader knows nothing of schemas or databases: it yields each top-level value as a
//! [`RawRecord`] whose [`RawKind`] says whether it is an object to validate or already a reject.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::scan::{Resync, Scanner, Step};
use crate::error::{Error, Result};

/// The default largest record, in bytes (1 MiB).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// How much of a record over the size limit is kept as its raw text (64 KiB).
pub const TOO_LARGE_KEPT_BYTES: usize = 64 << 10;

const READ_CHUNK: usize = 1 << 20;

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

/// An opened input: a file, a gzip file, or standard input (`-`), with a running count of the
/// bytes read and, if asked for, their SHA-256.
pub struct Input {
    path: PathBuf,
    reader: Box<dyn Read + Send>,
    counter: Arc<Progress>,
    hasher: Option<Arc<Mutex<Sha256>>>,
}

/// Bytes read so far from an input, as stored (before gzip decompression).
#[derive(Debug, Default)]
pub struct Progress {
    bytes: AtomicU64,
}

impl Progress {
    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

struct Tap<R> {
    inner: R,
    counter: Arc<Progress>,
    hasher: Option<Arc<Mutex<Sha256>>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.bytes.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(h) = &self.hasher {
            h.lock()
                .unwrap_or_else(|e| e.into_inner())
                .update(&buf[..n]);
        }
        Ok(n)
    }
}

/// A gzip decoder whose failures are reported as invalid data.
struct Gunzip<R>(flate2::bufread::MultiGzDecoder<R>);

impl<R: BufRead> Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::Interrupted => e,
            _ => io::Error::new(
                io::ErrorKind::InvalidData,
                format!("broken gzip stream: {e}"),
            ),
        })
    }
}

impl Input {
    /// Opens `path` (`-` is standard input). Gzip is recognised by its magic bytes.
    /// With `hash`, the SHA-256 of the bytes as stored is computed while reading.
    pub fn open(path: &Path, hash: bool) -> Result<Input> {
        let raw: Box<dyn Read + Send> = if path == Path::new("-") {
            Box::new(io::stdin())
        } else if super::object::is_url(path) {
            Box::new(super::object::open(path)?)
        } else {
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            if meta.is_dir() {
                return Err(Error::io(
                    path,
                    io::Error::new(io::ErrorKind::InvalidInput, "is a directory"),
                ));
            }
            Box::new(File::open(path).map_err(|e| Error::io(path, e))?)
        };
        Self::from_reader(path, raw, hash)
    }

    /// Wraps any reader as an input named `path`.
    pub fn from_reader(path: &Path, raw: Box<dyn Read + Send>, hash: bool) -> Result<Input> {
        let counter = Arc::new(Progress::default());
        let hasher = hash.then(|| Arc::new(Mutex::new(Sha256::new())));
        let tap = Tap {
            inner: raw,
            counter: counter.clone(),
            hasher: hasher.clone(),
        };
        let mut buffered = BufReader::with_capacity(256 << 10, tap);
        let head = buffered.fill_buf().map_err(|e| Error::io(path, e))?;
        let reader: Box<dyn Read + Send> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(Gunzip(flate2::bufread::MultiGzDecoder::new(buffered)))
        } else {
            Box::new(buffered)
        };
        Ok(Input {
            path: path.to_path_buf(),
            reader,
            counter,
            hasher,
        })
    }

    /// The path the input was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle on the count of bytes read, for progress display.
    pub fn progress(&self) -> Arc<Progress> {
        self.counter.clone()
    }

    /// The SHA-256 (hex) of the bytes read so far, if hashing was asked for.
    pub fn sha256_handle(&self) -> Option<Sha256Handle> {
        self.hasher.clone().map(Sha256Handle)
    }

    /// Turns the input into a record reader.
    pub fn records(self, max_record_bytes: usize) -> Records {
        Records::new(self, max_record_bytes)
    }
}

/// A handle to read the SHA-256 of an input once it has been read to its end.
#[derive(Clone)]
pub struct Sha256Handle(Arc<Mutex<Sha256>>);

impl Sha256Handle {
    /// The hex digest of the bytes read so far.
    pub fn hex(&self) -> String {
        let h = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        hex(&h.finalize())
    }
}

/// Reads a whole input once for its SHA-256: its progress (the bytes read) and its digest, as an
/// input opened with hashing would give them after its last record (for inputs read otherwise,
/// as Parquet files are).
pub fn hash_input(path: &Path) -> Result<(Arc<Progress>, Sha256Handle)> {
    let mut h = Sha256::new();
    let total = each_chunk(path, |b| h.update(b))?;
    let progress = Arc::new(Progress::default());
    progress.bytes.store(total, Ordering::Relaxed);
    Ok((progress, Sha256Handle(Arc::new(Mutex::new(h)))))
}

/// The SHA-256 (hex) and size of a file, read in one pass.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut h = Sha256::new();
    let total = each_chunk(path, |b| h.update(b))?;
    Ok((hex(&h.finalize()), total))
}

/// Reads a file or object through to its end, a chunk at a time; returns its size.
fn each_chunk(path: &Path, mut each: impl FnMut(&[u8])) -> Result<u64> {
    let mut f: Box<dyn Read> = if super::object::is_url(path) {
        Box::new(super::object::open(path)?)
    } else {
        Box::new(File::open(path).map_err(|e| Error::io(path, e))?)
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        each(&buf[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Cuts an input into [`RawRecord`]s, in bounded memory.
///
/// ```
/// use tier_core::read::{Input, RawKind};
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

enum Mode {
    Scan(Scanner),
    Resync(Resync),
}

enum End {
    Value(usize),
    Resync(usize),
    Eof,
}

impl Records {
    fn new(input: Input, max_record_bytes: usize) -> Self {
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

    /// Appends the raw bytes that follow to `out` (a BOM at the start of the input removed):
    /// what is buffered, else one read straight into `out`. Returns how many; 0 at the end.
    /// For cutting the input into chunks.
    pub(crate) fn read_into(&mut self, out: &mut Vec<u8>) -> Result<usize> {
        if !self.started {
            self.head()?;
            if self.buf[self.pos..self.end].starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.pos += 3;
            }
            self.started = true;
        }
        if self.pos < self.end {
            out.extend_from_slice(&self.buf[self.pos..self.end]);
            let n = self.end - self.pos;
            self.base += self.end as u64;
            self.pos = 0;
            self.end = 0;
            return Ok(n);
        }
        let Some(source) = self.source.as_mut().filter(|_| !self.eof) else {
            return Ok(0);
        };
        let len = out.len();
        out.resize(len + READ_CHUNK, 0);
        let n = loop {
            match source.read(&mut out[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    out.truncate(len);
                    return Err(Error::io(&self.path, e));
                }
            }
        };
        out.truncate(len + n);
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

/// Lists the inputs of the given paths: files as they are; a directory (or an `s3://` prefix)
/// expands, at any depth,
/// to its `*.json`, `*.json.gz`, `*.jsonl`, `*.ndjson` and `*.parquet` files (hidden files and
/// folders, and a lake's `_tier` folder, passed over), sorted. `globs`, when
/// given, keep only the files of directories whose name or path below the directory matches
/// one of them (`*.json`, `2024-*/**`).
pub fn expand_inputs(paths: &[PathBuf], globs: &[String]) -> Result<Vec<PathBuf>> {
    expand_inputs_at(paths, globs, None)
}

/// Lists the inputs of the given paths as [`expand_inputs`] does; a path that is an Iceberg
/// table (a lake's table folder) stands for the data files of its current snapshot, or of
/// snapshot `snapshot` when given (then every path must be a table).
pub fn expand_inputs_at(
    paths: &[PathBuf],
    globs: &[String],
    snapshot: Option<i64>,
) -> Result<Vec<PathBuf>> {
    let patterns = patterns(globs)?;
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
            continue;
        }
        if let Some(files) = crate::iceberg::table_files(p, snapshot)? {
            out.extend(files);
            continue;
        }
        if snapshot.is_some() {
            return Err(Error::Usage(format!(
                "{}: --snapshot names a snapshot of an Iceberg table, and this is none",
                p.display()
            )));
        }
        if super::object::is_url(p) {
            out.extend(super::object::expand(p, |rel| {
                wanted(rel) && matches_globs(&patterns, rel, rel)
            })?);
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            list_dir(p, &mut found)?;
            found.retain(|f| matches_globs(&patterns, f.strip_prefix(p).unwrap_or(f), f));
            if found.is_empty() {
                return Err(Error::NoInputs(p.clone()));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// A file (or object) of a listing: its path, size and when it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The path (or `s3://` URL).
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: std::time::SystemTime,
}

/// The inputs under a directory or an `s3://` prefix, as [`expand_inputs`] finds them, with
/// their sizes and modification times; an empty directory is no error (an inbox waiting for
/// files). A file gone between the listing and its look is left out.
pub fn list_inputs(source: &Path, globs: &[String]) -> Result<Vec<Listed>> {
    if super::object::is_url(source) {
        let mut url = source.to_string_lossy().into_owned();
        if !url.ends_with('/') {
            url.push('/');
        }
        let patterns = patterns(globs)?;
        let listed = super::object::listing(Path::new(&url), |rel| {
            wanted(rel) && matches_globs(&patterns, rel, rel)
        })?;
        return Ok(listed
            .into_iter()
            .map(|(path, size, modified)| Listed {
                path,
                size,
                modified,
            })
            .collect());
    }
    let files = match expand_inputs(&[source.to_path_buf()], globs) {
        Ok(files) => files,
        Err(Error::NoInputs(_)) => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(files
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some(Listed {
                size: meta.len(),
                modified: meta.modified().ok()?,
                path,
            })
        })
        .collect())
}

fn patterns(globs: &[String]) -> Result<Vec<glob::Pattern>> {
    globs
        .iter()
        .map(|g| glob::Pattern::new(g).map_err(|e| Error::Usage(format!("glob `{g}`: {e}"))))
        .collect()
}

/// Whether a file whose path below its directory is `rel` is kept by the globs (all when none).
fn matches_globs(patterns: &[glob::Pattern], rel: &Path, full: &Path) -> bool {
    let name = full.file_name().map(Path::new).unwrap_or(rel);
    patterns.is_empty()
        || patterns
            .iter()
            .any(|g| g.matches_path(rel) || g.matches_path(name))
}

/// Whether a folder of a walk is entered: not hidden, not a lake's `_tier`. (A lake's
/// `<table>_rejects` folders are: their parts load into the rejects tables.)
fn entered(name: &str) -> bool {
    !name.starts_with('.') && name != "_tier"
}

/// Whether a file is an input: not hidden, with an input's ending (in any case: `.JSON` too),
/// and not an Iceberg table's metadata file.
fn is_input(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    !name.starts_with('.')
        && !name.ends_with(".metadata.json")
        && [".json", ".json.gz", ".jsonl", ".ndjson", ".parquet"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// Whether a walk keeps a file at this path below its start (object keys are walked so too).
fn wanted(rel: &Path) -> bool {
    let mut parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    let Some(name) = parts.pop() else {
        return false;
    };
    is_input(name) && parts.iter().all(|p| entered(p))
}

/// Walks `dir` into `found`. Links to folders are followed, but a folder is entered once
/// (known by device and inode): a link back up, or a second way to the same folder, adds nothing.
fn list_dir(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let mut seen = HashSet::new();
    list_dir_once(dir, found, &mut seen)
}

fn list_dir_once(
    dir: &Path,
    found: &mut Vec<PathBuf>,
    seen: &mut HashSet<(u64, u64)>,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    if !seen.insert((meta.dev(), meta.ino())) {
        log::debug!("{}: entered before (a link); passed over", dir.display());
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for f in entries.filter_map(|e| e.ok()).map(|e| e.path()) {
        let os_name = f.file_name().unwrap_or_default();
        let name = os_name.to_string_lossy();
        if f.is_dir() {
            if !entered(&name) {
                continue;
            }
            // A lake's table: the files of its current snapshot, not every file in its folder.
            match crate::iceberg::table_files(&f, None)? {
                Some(files) => found.extend(files),
                None => list_dir_once(&f, found, seen)?,
            }
        } else if is_input(&name) {
            if os_name.to_str().is_none() {
                log::warn!(
                    "{}: the name is not UTF-8; loaded, and shown with U+FFFD in its place",
                    f.display()
                );
            }
            found.push(f);
        }
    }
    Ok(())
}

/// The size of an input as stored: a file's, or an object's.
pub fn input_size(path: &Path) -> Result<u64> {
    if super::object::is_url(path) {
        return super::object::size(path);
    }
    Ok(std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], max: usize) -> Vec<(RawKind, String)> {
        let input =
            Input::from_reader("t".as_ref(), Box::new(io::Cursor::new(data.to_vec())), true)
                .unwrap();
        let mut r = input.records(max);
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            assert_eq!(rec.index as usize, out.len());
            out.push((rec.kind, String::from_utf8_lossy(rec.bytes).into_owned()));
        }
        out
    }

    fn kinds(data: &[u8]) -> Vec<RawKind> {
        read_all(data, DEFAULT_MAX_RECORD_BYTES)
            .into_iter()
            .map(|r| r.0)
            .collect()
    }

    use RawKind::*;

    #[test]
    fn layouts() {
        let one = br#"{"a":1}"#;
        for data in [
            &b"[{\"a\":1},\n{\"b\":2}"[..],
            b"[{\"a\":1},\n{\"b\":2}]\n",
            b"{\"a\":1}\n{\"b\":2}\n",
            b"{\"a\":1}{\"b\":2}",
            b"{\r\n  \"a\": 1\r\n}\r\n{\r\n  \"b\": 2\r\n}",
            b"\xEF\xBB\xBF[ {\"a\":1} , {\"b\":2} ]",
        ] {
            assert_eq!(
                kinds(data),
                [Object, Object],
                "{}",
                String::from_utf8_lossy(data)
            );
        }
        assert_eq!(read_all(one, 100)[0].1, r#"{"a":1}"#);
        assert!(kinds(b"").is_empty());
        assert!(kinds(b"[\n]\n").is_empty());
    }

    #[test]
    fn gzip_is_detected() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"[{\"a\":1},\n{\"b\":2},\n").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(kinds(&gz), [Object, Object]);
    }

    #[test]
    fn resynchronises_after_errors() {
        let data = b"{\"a\":1,,\"b\":2},\n{\"ok\":1},\n{\"a\":\"unterminated,\n{\"ok\":2}\n";
        let got = read_all(data, DEFAULT_MAX_RECORD_BYTES);
        assert_eq!(
            got.iter().map(|r| r.0).collect::<Vec<_>>(),
            [Malformed, Object, Malformed, Object]
        );
        assert_eq!(got[0].1, "{\"a\":1,,\"b\":2}");
        assert_eq!(got[2].1, "{\"a\":\"unterminated");
        // A missing closing brace does not swallow the next record.
        assert_eq!(kinds(b"{\"a\":1,\n{\"b\":2}\n"), [Malformed, Object]);
        // Junk between records is one malformed record up to the next object line.
        assert_eq!(
            kinds(b"{\"a\":1}\nxyz abc\nmore\n{\"b\":2}"),
            [Object, Malformed, Object]
        );
        // EOF inside a value.
        assert_eq!(kinds(b"{\"a\":1}\n{\"b\":"), [Object, Malformed]);
    }

    #[test]
    fn non_objects() {
        assert_eq!(kinds(b"42\n\"s\"\ntrue\nnull\n-1.5"), [NotObject; 5]);
        assert_eq!(kinds(b"[[1],{\"a\":1}]"), [NotObject, Object]);
    }

    #[test]
    fn too_large_records_keep_a_prefix_and_reading_goes_on() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(300_000));
        let data = format!("{big},\n{{\"b\":1}}\n{big}");
        let got = read_all(data.as_bytes(), 100_000);
        assert_eq!(
            got.iter().map(|r| r.0).collect::<Vec<_>>(),
            [TooLarge, Object, TooLarge]
        );
        assert_eq!(got[0].1.len(), TOO_LARGE_KEPT_BYTES);
        // Over the limit and broken: still one record.
        let broken = format!("{{\"a\":\"{}\n{{\"b\":1}}\n", "y".repeat(300_000));
        let got = read_all(broken.as_bytes(), 100_000);
        assert_eq!(
            got.iter().map(|r| r.0).collect::<Vec<_>>(),
            [TooLarge, Object]
        );
    }

    #[test]
    fn records_across_buffer_refills() {
        let mut data = Vec::new();
        for i in 0..50_000 {
            data.extend_from_slice(
                format!("{{\"n\":{i},\"pad\":\"{}\"}},\n", "p".repeat(i % 97)).as_bytes(),
            );
        }
        let got = read_all(&data, DEFAULT_MAX_RECORD_BYTES);
        assert_eq!(got.len(), 50_000);
        assert!(got.iter().all(|r| r.0 == Object));
        assert!(got[49_999].1.starts_with("{\"n\":49999,"));
    }
}
