//! The chunked parallel path: the reader thread cutting chunks at object lines, the workers
//! processing them, the batches handed on in order, and the sequential path for the rest of an
//! input whose values run past a chunk.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::read::Records;
use crate::schema::validate;
use crate::schema::Dataset;

use super::*;

pub(crate) const CHUNK_BYTES: usize = 1 << 20;
pub(crate) const BATCH_RECORDS: u64 = 8192;

/// A piece of the input, cut where a line starts with `{` (unless `cut_at_object` is false).
pub(crate) struct Chunk {
    /// The piece is `data[..len]`; the bytes after it are of no meaning, kept so that the
    /// buffer's next reading need not zero them first.
    data: Vec<u8>,
    len: usize,
    base: u64,
    last: bool,
    cut_at_object: bool,
}

/// A chunk's batch, and where its records stopped if a value runs on past its end.
pub(crate) struct Done {
    batch: Processed,
    chunk: Chunk,
    stopped_at: Option<usize>,
}

impl Done {
    /// The chunk's piece of the input.
    fn into_piece(self) -> Vec<u8> {
        let mut data = self.chunk.data;
        data.truncate(self.chunk.len);
        data
    }
}

/// Where the `{` of the last line of `data` that starts with `{` (after blanks) stands.
pub(crate) fn last_object_line(data: &[u8]) -> Option<usize> {
    let mut end = data.len();
    while let Some(nl) = memchr::memrchr(b'\n', &data[..end]) {
        let mut j = nl + 1;
        while j < data.len() && matches!(data[j], b' ' | b'\t' | b'\r') {
            j += 1;
        }
        if j < data.len() && data[j] == b'{' {
            return Some(j);
        }
        end = nl;
    }
    None
}

pub(crate) fn process_chunk(
    path: &Path,
    dataset: &Dataset,
    max: usize,
    mut chunk: Chunk,
    payload: Vec<u8>,
    enc: &dyn Encode,
) -> Done {
    let mut batch = Processed {
        payload,
        ..Processed::new(enc)
    };
    if !chunk.last && !chunk.cut_at_object {
        return Done {
            batch,
            chunk,
            stopped_at: Some(0),
        };
    }
    let len = chunk.len;
    let base = chunk.base;
    let mut data = std::mem::take(&mut chunk.data);
    // The next chunk starts with the `{` of a line that starts with it: the scanner sees it, so
    // every value and every resynchronisation ends where it would in the whole input.
    let end = len + !chunk.last as usize;
    if data.len() < end {
        data.resize(end, 0);
    }
    if !chunk.last {
        data[len] = b'{';
    }
    let mut pos = 0;
    let mut stopped_at = None;
    loop {
        while pos < end && matches!(data[pos], b' ' | b'\t' | b'\r' | b'\n' | b'[' | b']' | b',') {
            pos += 1;
        }
        if pos >= len {
            break; // the sentinel, or the end of the input
        }
        // The usual case, in one pass: a sound object, read and validated at once.
        if data[pos] == b'{' {
            let index = batch.records;
            if let Some((n, outcome)) = validate::validate_prefix(
                dataset,
                index,
                &data[pos..end],
                max,
                &mut batch.unknown,
                &mut batch.order,
            ) {
                batch.push(outcome, &data[pos..pos + n], enc);
                pos += n;
                continue;
            }
        }
        // Anything else is cut exactly as the sequential reader cuts it.
        data.truncate(end);
        let mut records = Records::from_bytes(path, data, base, pos, max);
        if let Ok(Some(rec)) = records.next_record() {
            let runs_on = !chunk.last && (rec.end - base) as usize > len;
            if runs_on {
                stopped_at = Some(pos); // a value that goes on into the next chunk
            } else {
                batch.add(dataset, rec, enc);
            }
        }
        pos = (records.position() - base) as usize;
        data = records.into_bytes();
        if stopped_at.is_some() {
            break;
        }
    }
    chunk.data = data;
    Done {
        batch,
        chunk,
        stopped_at,
    }
}

/// Buffers handed back for reuse: fresh large buffers cost page faults on every chunk.
#[derive(Default)]
pub(crate) struct Pool(Mutex<Vec<Vec<u8>>>);

impl Pool {
    /// An empty buffer of at least `capacity` bytes.
    fn take(&self, capacity: usize) -> Vec<u8> {
        let mut v = self.reuse();
        v.clear();
        v.reserve(capacity);
        v
    }

    /// A buffer as it was given back: its bytes (of no meaning now) are read over, not zeroed.
    fn reuse(&self) -> Vec<u8> {
        let pool = &mut self.0.lock().unwrap_or_else(|e| e.into_inner());
        pool.pop().unwrap_or_default()
    }

    fn give(&self, v: Vec<u8>) {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 32 {
            pool.push(v);
        }
    }
}

/// Reads the input and cuts it into chunks for the workers.
pub(crate) fn cut_chunks(
    records: &mut Records,
    chunk_bytes: usize,
    pool: &Pool,
    send: &mut dyn FnMut(Chunk) -> bool,
) -> Result<()> {
    // `pending[..filled]` is read and not yet sent.
    let mut pending = pool.reuse();
    let mut filled = 0;
    let mut base = 0u64;
    let mut eof = false;
    loop {
        while !eof && filled < chunk_bytes {
            let n = records.read_into(&mut pending, filled)?;
            filled += n;
            eof = n == 0;
        }
        if eof {
            send(Chunk {
                data: pending,
                len: filled,
                base,
                last: true,
                cut_at_object: true,
            });
            return Ok(());
        }
        let (cut, at_object) = match last_object_line(&pending[..filled]) {
            Some(c) if c > 0 => (c, true),
            // No line starts with `{` in a long stretch: cut anywhere, the rest goes the
            // sequential way.
            _ if filled >= 8 * chunk_bytes => (filled, false),
            _ => {
                let n = records.read_into(&mut pending, filled)?;
                filled += n;
                eof = n == 0;
                continue;
            }
        };
        let mut rest = pool.reuse();
        if rest.len() < filled - cut {
            rest.resize(filled - cut, 0);
        }
        rest[..filled - cut].copy_from_slice(&pending[cut..filled]);
        let chunk = Chunk {
            data: std::mem::replace(&mut pending, rest),
            len: cut,
            base,
            last: false,
            cut_at_object: at_object,
        };
        filled -= cut;
        base += cut as u64;
        if !send(chunk) {
            return Ok(());
        }
    }
}

pub(crate) type NextBytes = Box<dyn FnMut() -> Option<Result<Vec<u8>>> + Send>;

/// The bytes of the input from a given point: a first piece, then the chunks still to come.
pub(crate) struct Rest {
    first: std::io::Cursor<Vec<u8>>,
    next: NextBytes,
    error: Arc<Mutex<Option<Error>>>,
}

impl Read for Rest {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.first.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            match (self.next)() {
                None => return Ok(0),
                Some(Ok(data)) => self.first = std::io::Cursor::new(data),
                Some(Err(e)) => {
                    let msg = e.to_string();
                    *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    return Err(std::io::Error::other(msg));
                }
            }
        }
    }
}

pub(crate) type Job = (Chunk, SyncSender<Done>);

pub(crate) fn run_chunked(
    mut records: Records,
    dataset: &Dataset,
    workers: usize,
    enc: &dyn Encode,
    sink: &mut dyn FnMut(&Processed) -> Result<()>,
    chunk_bytes: usize,
) -> Result<()> {
    let workers = workers.max(1);
    let path: PathBuf = records.path().to_path_buf();
    let max_record_bytes = records.max_record_bytes();
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers * 2);
    let job_rx = Mutex::new(job_rx);
    let (order_tx, order_rx) = mpsc::sync_channel::<Result<Receiver<Done>>>(workers * 3);
    let chunks = Arc::new(Pool::default());
    let payloads = Arc::new(Pool::default());
    std::thread::scope(|scope| {
        let job_rx = &job_rx;
        let path = &path;
        let (chunks_r, payloads_w) = (&chunks, &payloads);
        for _ in 0..workers {
            scope.spawn(move || loop {
                let job = job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((chunk, reply)) = job else { break };
                let payload = payloads_w.take(chunk.len + chunk.len / 4);
                let _ = reply.send(process_chunk(
                    path,
                    dataset,
                    max_record_bytes,
                    chunk,
                    payload,
                    enc,
                ));
            });
        }
        scope.spawn(move || {
            let mut send = |chunk: Chunk| -> bool {
                let (tx, rx) = mpsc::sync_channel(1);
                order_tx.send(Ok(rx)).is_ok() && job_tx.send((chunk, tx)).is_ok()
            };
            if let Err(e) = cut_chunks(&mut records, chunk_bytes, chunks_r, &mut send) {
                let _ = order_tx.send(Err(e));
            }
        });
        let owned_path = path.to_path_buf();
        let next = move || -> Option<Result<Done>> {
            let step = order_rx.recv().ok()?;
            Some(step.and_then(|rx| {
                rx.recv().map_err(|_| {
                    Error::io(
                        &owned_path,
                        std::io::Error::other("a validation worker stopped"),
                    )
                })
            }))
        };
        let pools = (chunks.clone(), payloads.clone());
        consume(path, dataset, max_record_bytes, enc, sink, next, pools)
    })
}

/// Hands the workers' batches to `sink` in order; goes the sequential way from a chunk whose
/// last value runs on into the next.
pub(crate) fn consume(
    path: &Path,
    dataset: &Dataset,
    max: usize,
    enc: &dyn Encode,
    sink: &mut dyn FnMut(&Processed) -> Result<()>,
    mut next: impl FnMut() -> Option<Result<Done>> + Send + 'static,
    (chunks, payloads): (Arc<Pool>, Arc<Pool>),
) -> Result<()> {
    let mut base = 0u64;
    while let Some(done) = next() {
        let Done {
            mut batch,
            chunk,
            stopped_at,
        } = done?;
        batch.finish(base);
        base += batch.records;
        sink(&batch)?;
        payloads.give(std::mem::take(&mut batch.payload));
        let Some(at) = stopped_at else {
            chunks.give(chunk.data);
            continue;
        };
        let offset = chunk.base + at as u64;
        let first = chunk.data[at..chunk.len].to_vec();
        let error = Arc::new(Mutex::new(None));
        let rest = Rest {
            first: std::io::Cursor::new(first),
            next: Box::new(move || next().map(|d| d.map(Done::into_piece))),
            error: error.clone(),
        };
        let result = sequential(path, dataset, max, enc, sink, Box::new(rest), offset, base);
        let stored = error.lock().unwrap_or_else(|e| e.into_inner()).take();
        return match stored {
            Some(e) => Err(e),
            None => result,
        };
    }
    Ok(())
}

/// The sequential way: records one by one from `reader`, in batches.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sequential(
    path: &Path,
    dataset: &Dataset,
    max: usize,
    enc: &dyn Encode,
    sink: &mut dyn FnMut(&Processed) -> Result<()>,
    reader: Box<dyn Read + Send>,
    offset: u64,
    mut base: u64,
) -> Result<()> {
    let mut records = Records::from_reader_mid_stream(path, reader, offset, max);
    let mut batch = Processed::new(enc);
    while let Some(rec) = records.next_record()? {
        batch.add(dataset, rec, enc);
        if batch.records >= BATCH_RECORDS {
            let mut full = std::mem::replace(&mut batch, Processed::new(enc));
            full.finish(base);
            base += full.records;
            sink(&full)?;
        }
    }
    batch.finish(base);
    sink(&batch)
}

#[cfg(test)]
#[path = "parallel_tests.rs"]
mod tests;
