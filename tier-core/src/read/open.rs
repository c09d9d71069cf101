//! Opening an input: a file, standard input or an object, gzip found by its magic bytes, the
//! bytes counted and hashed (SHA-256) as they are read.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::Location;
use crate::error::{Error, Result};

use super::*;

/// An opened input: a file, a gzip file, or standard input (`-`), with a running count of the
/// bytes read and, if asked for, their SHA-256.
pub struct Input {
    pub(crate) path: PathBuf,
    pub(crate) reader: Box<dyn Read + Send>,
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

pub(crate) struct Tap<R> {
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
pub(crate) struct Gunzip<R>(flate2::bufread::MultiGzDecoder<R>);

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
        let raw: Box<dyn Read + Send> = match Location::parse(path)? {
            Location::Stdin => Box::new(io::stdin()),
            Location::Object(url) => Box::new(super::object::open(&url)?),
            Location::Local(_) => {
                let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
                if meta.is_dir() {
                    return Err(Error::io(
                        path,
                        io::Error::new(io::ErrorKind::InvalidInput, "is a directory"),
                    ));
                }
                Box::new(File::open(path).map_err(|e| Error::io(path, e))?)
            }
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
pub(crate) fn each_chunk(path: &Path, mut each: impl FnMut(&[u8])) -> Result<u64> {
    let mut f: Box<dyn Read> = match Location::parse(path)? {
        Location::Object(url) => Box::new(super::object::open(&url)?),
        _ => Box::new(File::open(path).map_err(|e| Error::io(path, e))?),
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

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The size of an input as stored: a file's, or an object's.
pub fn input_size(path: &Path) -> Result<u64> {
    if let Location::Object(url) = Location::parse(path)? {
        return super::object::size(&url);
    }
    Ok(std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len())
}

/// Whether a path names a Parquet file (a lake part).
pub fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// The SHA-256 and size of an input taken before it is read, where that is worth a reading of
/// its own: a Parquet part (read by seeking, not hashed on the way), and an input that
/// `looks_loaded` by its name and size, so that a re-run is skipped without reading it twice.
/// `size` is the input's as stored (`None` for standard input: never hashed first). `None` for
/// standard input and for an input hashed as it is read.
pub fn hash_first(
    path: &Path,
    size: Option<u64>,
    looks_loaded: impl FnOnce(&str, u64) -> Result<bool>,
) -> Result<Option<(String, u64)>> {
    let Some(size) = size else {
        return Ok(None);
    };
    if is_parquet(path) {
        return sha256_file(path).map(Some);
    }
    if looks_loaded(&path.display().to_string(), size)? {
        sha256_file(path).map(Some)
    } else {
        Ok(None)
    }
}
