//! The parallel path from raw records to validated, encoded batches: one thread cuts the input
//! into records, workers validate and encode them, and the caller receives the batches in input
//! order. Memory stays bounded: only a few batches are in flight at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::reader::{RawKind, RawRecord, Records};
use crate::row::Row;
use crate::schema::Dataset;
use crate::validate::{self, Reject, UnknownFields};

const BATCH_BYTES: usize = 1 << 20;
const BATCH_RECORDS: usize = 8192;

/// What a pipeline does with each validated row and each reject, on a worker thread.
pub trait Encode: Sync {
    /// Encodes a valid row (and the raw bytes it came from) into the batch's payload.
    fn row(&self, row: &Row<'_>, raw: &[u8], out: &mut Vec<u8>);
    /// Encodes a reject into the batch's reject payload.
    fn reject(&self, reject: &Reject, out: &mut Vec<u8>);
    /// Whether batches keep their rejects (for writing them elsewhere).
    fn keep_rejects(&self) -> bool {
        false
    }
}

/// An encoder that writes nothing (validation only).
pub struct NoPayload {
    /// Whether to keep the rejects in each batch.
    pub keep_rejects: bool,
}

impl Encode for NoPayload {
    fn row(&self, _: &Row<'_>, _: &[u8], _: &mut Vec<u8>) {}
    fn reject(&self, _: &Reject, _: &mut Vec<u8>) {}
    fn keep_rejects(&self) -> bool {
        self.keep_rejects
    }
}

/// One batch of records, validated and encoded.
#[derive(Debug, Default)]
pub struct Processed {
    /// Records in the batch.
    pub records: u64,
    /// Records that passed validation.
    pub valid: u64,
    /// Rejects by reason.
    pub reasons: BTreeMap<String, u64>,
    /// Keys outside the schema, by key.
    pub unknown: UnknownFields,
    /// The rejects themselves, if the encoder keeps them.
    pub rejects: Vec<Reject>,
    /// The encoded valid rows.
    pub payload: Vec<u8>,
    /// The encoded rejects.
    pub reject_payload: Vec<u8>,
}

impl Processed {
    /// Adds another batch's counts (not its payload or rejects) to this one.
    pub fn absorb(&mut self, other: &Processed) {
        self.records += other.records;
        self.valid += other.valid;
        for (k, v) in &other.reasons {
            *self.reasons.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.unknown {
            *self.unknown.entry(k.clone()).or_default() += v;
        }
    }

    /// Rejected records in the batch.
    pub fn rejected(&self) -> u64 {
        self.records - self.valid
    }
}

struct Batch {
    data: Vec<u8>,
    items: Vec<(u64, RawKind, usize, usize)>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            data: Vec::with_capacity(BATCH_BYTES + (64 << 10)),
            items: Vec::with_capacity(BATCH_RECORDS),
        }
    }
}

fn process(dataset: Dataset, batch: &Batch, enc: &dyn Encode) -> Processed {
    let mut out = Processed {
        payload: Vec::with_capacity(batch.data.len() + batch.data.len() / 4),
        ..Default::default()
    };
    let mut unknown = HashMap::new();
    for &(index, kind, start, end) in &batch.items {
        let rec = RawRecord {
            index,
            kind,
            bytes: &batch.data[start..end],
        };
        out.records += 1;
        match validate::validate(dataset, &rec, &mut unknown) {
            Ok(row) => {
                out.valid += 1;
                enc.row(&row, rec.bytes, &mut out.payload);
            }
            Err(reject) => {
                enc.reject(&reject, &mut out.reject_payload);
                match out.reasons.get_mut(&reject.reason) {
                    Some(n) => *n += 1,
                    None => {
                        out.reasons.insert(reject.reason.clone(), 1);
                    }
                }
                if enc.keep_rejects() {
                    out.rejects.push(reject);
                }
            }
        }
    }
    out.unknown = unknown;
    out
}

type Job = (Batch, SyncSender<Processed>);

/// Runs `records` through validation and `enc` on `workers` threads, handing each processed
/// batch to `sink` in input order. Stops at the first error of the input or of `sink`.
pub fn run(
    mut records: Records,
    dataset: Dataset,
    workers: usize,
    enc: &dyn Encode,
    sink: &mut dyn FnMut(Processed) -> Result<()>,
) -> Result<()> {
    let workers = workers.max(1);
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(workers * 2);
    let job_rx = Mutex::new(job_rx);
    let (order_tx, order_rx) = mpsc::sync_channel::<Result<Receiver<Processed>>>(workers * 3);
    std::thread::scope(|scope| {
        let job_rx = &job_rx;
        for _ in 0..workers {
            scope.spawn(move || loop {
                let job = job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                let Ok((batch, reply)) = job else { break };
                let _ = reply.send(process(dataset, &batch, enc));
            });
        }
        scope.spawn(move || {
            let send = |batch: Batch| -> bool {
                let (tx, rx) = mpsc::sync_channel(1);
                order_tx.send(Ok(rx)).is_ok() && job_tx.send((batch, tx)).is_ok()
            };
            let mut batch = Batch::new();
            loop {
                match records.next_record() {
                    Ok(Some(rec)) => {
                        let start = batch.data.len();
                        batch.data.extend_from_slice(rec.bytes);
                        batch
                            .items
                            .push((rec.index, rec.kind, start, batch.data.len()));
                        let full =
                            batch.data.len() >= BATCH_BYTES || batch.items.len() >= BATCH_RECORDS;
                        if full && !send(std::mem::replace(&mut batch, Batch::new())) {
                            return;
                        }
                    }
                    Ok(None) => {
                        if !batch.items.is_empty() {
                            send(batch);
                        }
                        return;
                    }
                    Err(e) => {
                        let _ = order_tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        let mut result = Ok(());
        for next in order_rx.iter() {
            let step = next.and_then(|rx| {
                rx.recv()
                    .map_err(|_| Error::Usage("a validation worker stopped".into()))
            });
            if let Err(e) = step.and_then(&mut *sink) {
                result = Err(e);
                break;
            }
        }
        drop(order_rx);
        result
    })
}
