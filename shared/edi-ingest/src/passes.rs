//! The two streaming passes over a file, each reading it from the start as a
//! `std::io::Read` on the blocking thread pool:
//!
//! 1. **verdicts** ([`verdicts`]): every transaction set's verdict (accepted with its
//!    claim count, or rejected with its problems) and the envelope's, from
//!    `edi_fhir::verdicts`, which maps each set without serialising a change. That is all the report and the 999 need, and it is
//!    known before anything is written: the interchange trailer comes last, and an
//!    envelope error must leave the store untouched.
//! 2. **apply** ([`apply`]), only when the envelope does not reject everything and
//!    some set is accepted: the conversion runs again and hands each accepted set's
//!    changes, as `edi_fhir::stream_changes` maps them, through a bounded channel (`blocking_send`) to the
//!    async writer, which applies them in batches through [`crate::apply`].
//!
//! Memory is what `stream_changes` holds for one transaction set (its bytes and
//! parse, and up to `edi_fhir::STREAMING_BUFFER_BYTES` of its changes, which it
//! buffers to map a set once when they fit) plus at most about two batches of
//! changes (one in the channel, one being written) plus the ids of the current
//! set's resources (to count each once) plus one verdict per set for the report.
//! It does not grow with the file.
//!
//! Both passes hash what they read. The verdict pass must read the bytes the object
//! store stored (when it knows their SHA-256), the apply pass the bytes the verdict
//! pass judged: a file that changed in between fails the run (retryably) instead of
//! being applied under another file's verdict. The apply pass also checks each
//! set's verdict against the first pass's before handing out its changes.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use edi_fhir::{Change, Event, FileConversion, MappingConfig, SetOutcome, TransactionSetResult};
use fhir_store::{ResourceStore, StoreError};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::apply::{SetTally, apply_batch};
use crate::objects::ObjectReader;
use crate::report::WriteCounts;

/// Why a pass did not finish. The ingestor turns these into `IngestError`s.
#[derive(Debug)]
pub(crate) enum PassError {
    /// Reading the local copy failed.
    Read(io::Error),
    /// The bytes (or a set's verdict) differ from what an earlier read saw.
    Changed(&'static str),
    /// The conversion thread panicked, or was stopped because the writer failed
    /// (whose error is then the one reported).
    Panicked(String),
    /// The store failed while applying.
    Store(StoreError),
}

/// The largest batch (and channel) honoured.
const MAX_BATCH: usize = 1 << 16;

/// What the apply pass needs to know about the file.
pub(crate) struct ApplySettings {
    pub mapping: MappingConfig,
    /// Changes per batch; also the channel's capacity. At most 65 536.
    pub batch_changes: usize,
    pub write_concurrency: usize,
}

/// Pass 1: the verdicts of every set and of the envelope, as a [`FileConversion`]
/// whose accepted sets carry no changes, and the SHA-256 of the bytes read.
/// Blocking: run it on the blocking pool.
pub(crate) fn verdicts(
    source: ObjectReader,
    mapping: &MappingConfig,
    expected: Option<[u8; 32]>,
) -> Result<(FileConversion, [u8; 32]), PassError> {
    let mut reader = Tracked::new(source, None);
    let mut sets = Vec::new();
    let summary = edi_fhir::verdicts(&mut reader, mapping, |result| sets.push(result.clone()));
    let digest = reader.finish()?;
    if expected.is_some_and(|e| e != digest) {
        return Err(PassError::Changed(
            "the file changed between being opened and being converted",
        ));
    }
    Ok((summary.into_conversion(sets), digest))
}

/// What the converter thread sends the writer.
enum Message {
    /// One change of the current (accepted) set.
    Change(Change),
    /// The set with this index (in file order) is complete.
    SetEnd(usize),
}

/// Pass 2: converts again and applies every accepted set's changes, in batches, as
/// they come. `verdicts` is pass 1's result (it must not reject everything) and
/// `digest` the SHA-256 pass 1 read. Returns what applying each set did, in file
/// order (zero for sets not applied).
pub(crate) async fn apply<S: ResourceStore + ?Sized>(
    store: &S,
    source: ObjectReader,
    verdicts: &FileConversion,
    digest: [u8; 32],
    settings: ApplySettings,
) -> Result<Vec<WriteCounts>, PassError> {
    let batch_changes = settings.batch_changes.clamp(1, MAX_BATCH);
    let (tx, mut rx) = mpsc::channel::<Message>(batch_changes);
    let expected: Arc<Vec<TransactionSetResult>> = Arc::new(verdicts.transaction_sets.clone());
    let mapping = settings.mapping;
    let converter = {
        let expected = Arc::clone(&expected);
        tokio::task::spawn_blocking(move || convert_into(source, &mapping, &expected, &tx))
    };

    let mut writes = vec![WriteCounts::default(); expected.len()];
    let written = async {
        let mut batch: Vec<Change> = Vec::with_capacity(batch_changes.min(1024));
        let mut tally = SetTally::default();
        while let Some(message) = rx.recv().await {
            match message {
                Message::Change(change) => {
                    batch.push(change);
                    if batch.len() >= batch_changes {
                        flush(store, &mut batch, &mut tally, settings.write_concurrency).await?;
                    }
                }
                Message::SetEnd(index) => {
                    flush(store, &mut batch, &mut tally, settings.write_concurrency).await?;
                    if let Some(slot) = writes.get_mut(index) {
                        *slot = std::mem::take(&mut tally).counts();
                    }
                }
            }
        }
        Ok::<(), PassError>(())
    }
    .await;
    // Closing the channel stops a converter still running after a store error: its
    // next send fails, and so does its next read.
    rx.close();
    drop(rx);
    let converted = converter
        .await
        .map_err(|e| PassError::Panicked(e.to_string()));
    written?;
    let read = converted??;
    if read != digest {
        return Err(PassError::Changed(
            "the file changed between the verdict pass and the apply pass",
        ));
    }
    Ok(writes)
}

/// Applies the batch (if any) and counts it into the set's tally.
async fn flush<S: ResourceStore + ?Sized>(
    store: &S,
    batch: &mut Vec<Change>,
    tally: &mut SetTally,
    write_concurrency: usize,
) -> Result<(), PassError> {
    if !batch.is_empty() {
        let applied = apply_batch(store, batch, write_concurrency).await;
        tally.add(applied.map_err(PassError::Store)?);
        batch.clear();
    }
    Ok(())
}

/// The converter thread of pass 2: maps the file again and sends the changes of
/// every set pass 1 accepted, checking each set's verdict against pass 1's first.
/// Returns the SHA-256 of what it read.
fn convert_into(
    source: ObjectReader,
    mapping: &MappingConfig,
    expected: &[TransactionSetResult],
    tx: &mpsc::Sender<Message>,
) -> Result<[u8; 32], PassError> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut reader = Tracked::new(source, Some(Arc::clone(&stop)));
    let mut index: Option<usize> = None;
    let mut applying = false;
    let mut differs = false;
    let send = |message: Message| {
        if tx.blocking_send(message).is_err() {
            // The writer gave up (a store error): stop reading.
            stop.store(true, Ordering::Relaxed);
        }
    };
    let summary = edi_fhir::stream_changes(&mut reader, mapping, |event| {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match event {
            Event::Set(result) => {
                let i = index.map_or(0, |i| i + 1);
                index = Some(i);
                if expected.get(i) != Some(result) {
                    differs = true;
                    stop.store(true, Ordering::Relaxed);
                    return;
                }
                applying = matches!(result.outcome, SetOutcome::Accepted { .. });
            }
            Event::Change(change) if applying => send(Message::Change(change)),
            Event::Change(_) => {}
            Event::SetEnd => {
                if applying && let Some(i) = index {
                    send(Message::SetEnd(i));
                }
                applying = false;
            }
        }
    });
    let read = reader.finish();
    let changed = PassError::Changed("a transaction set's verdict differs between the two passes");
    if differs {
        return Err(changed);
    }
    // A read error (or a stop, after the writer failed) comes before the count,
    // which it explains.
    let digest = read?;
    if summary.sets != expected.len() {
        return Err(changed);
    }
    Ok(digest)
}

/// A reader that hashes everything it hands out, keeps the first I/O error (so a
/// read failure is not mistaken for a bad file), and fails every read once `stop`
/// is set (so a converter whose writer gave up ends at its next read).
struct Tracked<R> {
    inner: R,
    hasher: Sha256,
    error: Option<io::Error>,
    stop: Option<Arc<AtomicBool>>,
}

impl<R: Read> Tracked<R> {
    fn new(inner: R, stop: Option<Arc<AtomicBool>>) -> Self {
        Tracked {
            inner,
            hasher: Sha256::new(),
            error: None,
            stop,
        }
    }

    fn stopped(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// Reads whatever the conversion left unread (it stops early in a file that is
    /// not X12), so that the digest covers the whole file; then the digest, or the
    /// I/O error that interrupted a read.
    fn finish(mut self) -> Result<[u8; 32], PassError> {
        if self.error.is_none() && !self.stopped() {
            let drained = io::copy(&mut self, &mut io::sink());
            if let Err(e) = drained
                && self.error.is_none()
            {
                self.error = Some(e);
            }
        }
        if self.stopped() {
            return Err(PassError::Panicked("the conversion was stopped".to_owned()));
        }
        match self.error {
            Some(e) => Err(PassError::Read(e)),
            None => Ok(self.hasher.finalize().into()),
        }
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stopped() {
            return Err(io::Error::other("stopped"));
        }
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(buf.get(..n).unwrap_or_default());
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let shown = io::Error::new(e.kind(), e.to_string());
                self.error.get_or_insert(e);
                Err(shown)
            }
        }
    }
}
