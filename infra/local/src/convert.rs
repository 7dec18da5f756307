//! `patient-access convert FILE [--bundle] [-o OUT]`: the resources an X12 file converts
//! to, touching no store, in memory that does not grow with the file, on every core.
//!
//! The shape of a run:
//! - one thread reads the file and cuts it into transaction sets
//!   ([`edi_fhir::SetReader`]);
//! - [`workers`] threads each map a whole set ([`edi_fhir::map_set_streaming`]) and
//!   write its resources into 1 MiB blocks;
//! - the calling thread writes the blocks to the output in file order.
//!
//! Sets are independent (ids come from the claim, not from a counter), so mapping them
//! side by side changes nothing in the output but its speed: a file's bytes come out
//! the same on one worker as on four (tested). Memory is bounded by the blocks a set
//! that is not yet first in line may hold ([`IN_FLIGHT_BYTES`], shared by the
//! workers), not by the file or by a set's size: a worker ahead of the line waits when
//! its blocks are full.
//!
//! A set's resources are written as they are mapped, before its verdict: the output
//! is never left for anyone to read unless the whole file was accepted (see
//! [`convert`]), so there is nothing to take back.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

use edi_fhir::{Change, MappingConfig, TransactionSetResult};
use edi_ingest::Report;

use crate::RunnerError;
use crate::edi::local_mapping;

/// How `convert` writes the resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertFormat {
    /// One resource a line (the form bulk FHIR tools read).
    Ndjson,
    /// One FHIR `collection` Bundle.
    Bundle,
}

/// One block of output: big writes for the kernel, small next to the output.
pub const BLOCK: usize = 1 << 20;
/// Output held by sets waiting for their turn, all workers together.
pub const IN_FLIGHT_BYTES: usize = 32 << 20;
/// Workers past this gain nothing: the writing thread and the disk become the limit.
const MAX_WORKERS: usize = 4;

/// The mapping threads for this machine: one per core, at most [`MAX_WORKERS`].
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, MAX_WORKERS)
}

/// glibc's malloc raises its mmap threshold to the largest block freed so far, so once
/// a set's multi-megabyte buffers (its X12 copy, its parse) are freed, the next ones
/// come from the workers' arenas and stay there: peak RSS on the 100 MB benchmark file
/// was 105 MB with two workers, 76 MB with the threshold fixed, at the same speed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_big_buffers_out_of_the_arenas() {
    // SAFETY: mallopt only sets one of malloc's tunables; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 512 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_big_buffers_out_of_the_arenas() {}

/// Converts `path` into `output` (stdout when `None`).
///
/// A file with any rejected part writes no resources: it prints the report (on
/// stdout) and fails. An envelope error (a wrong count in GE or IEA, a missing
/// trailer) shows only at the end of the file, after good sets were converted, so
/// output that cannot be taken back is never started before the whole file's verdict:
/// - to a file (`--output`): one pass, into `OUT.partial`, renamed to `OUT` when
///   the whole file is accepted and deleted otherwise;
/// - to stdout or a device (`-o /dev/null`): a verdict pass first (parse and map, no
///   JSON, as the ingest pipeline's first pass), then the converting pass only for
///   an accepted file.
///
/// The file is not `fsync`ed, as `cp`, `gzip` or `jq > OUT` do not: the rename makes
/// `OUT` all or nothing if this process dies, and a plan that needs it on the disk
/// through a power cut runs `sync`.
pub fn convert(
    path: &Path,
    format: ConvertFormat,
    output: Option<&Path>,
) -> Result<(), RunnerError> {
    keep_big_buffers_out_of_the_arenas();
    let open = || std::fs::File::open(path).map_err(|e| RunnerError::io(path, e));
    let mapping = local_mapping();
    match output {
        Some(out) if !is_device_or_pipe(out) => {
            let partial = partial_path(out);
            let file = std::fs::File::create(&partial).map_err(|e| RunnerError::io(&partial, e))?;
            let written = write_resources(path, open()?, &mapping, format, file, workers());
            match written {
                Ok((report, _)) if accepted(&report) => {
                    std::fs::rename(&partial, out).map_err(|e| RunnerError::io(out, e))?;
                    print_warnings(&report);
                    Ok(())
                }
                Ok((report, _)) => {
                    let _ = std::fs::remove_file(&partial);
                    rejected(path, &report)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    Err(e)
                }
            }
        }
        // `-o /dev/null` or a named pipe: written in place (renaming onto a device
        // would replace it), so, as for stdout, after a verdict pass.
        Some(out) => {
            let device = std::fs::OpenOptions::new()
                .write(true)
                .open(out)
                .map_err(|e| RunnerError::io(out, e))?;
            convert_to_stream(path, format, &mapping, device)
        }
        None => convert_to_stream(path, format, &mapping, std::io::stdout().lock()),
    }
}

/// Whether `out` exists and is not a regular file (a device such as `/dev/null`, a
/// FIFO).
fn is_device_or_pipe(out: &Path) -> bool {
    std::fs::metadata(out).is_ok_and(|meta| !meta.is_file() && !meta.is_dir())
}

/// Converts into output that cannot be taken back: the converting pass runs only
/// after a verdict pass has accepted the whole file.
fn convert_to_stream<W: Write>(
    path: &Path,
    format: ConvertFormat,
    mapping: &MappingConfig,
    sink: W,
) -> Result<(), RunnerError> {
    let open = || std::fs::File::open(path).map_err(|e| RunnerError::io(path, e));
    let report = verdicts(path, open()?, mapping);
    if !accepted(&report) {
        return rejected(path, &report);
    }
    let (report, _) = write_resources(path, open()?, mapping, format, sink, workers())?;
    print_warnings(&report);
    Ok(())
}

fn partial_path(out: &Path) -> std::path::PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

fn accepted(report: &Report) -> bool {
    report.totals.sets_rejected == 0 && report.status != edi_ingest::FileStatus::Rejected
}

fn rejected(path: &Path, report: &Report) -> Result<(), RunnerError> {
    print!("{}", report.to_json());
    Err(RunnerError::Rejected(path.display().to_string()))
}

/// Warnings (a base guide id, GS08 and ST03 disagreeing) of an accepted file,
/// on stderr: stdout may be the resources.
fn print_warnings(report: &Report) {
    for set in &report.transaction_sets {
        for w in &set.warnings {
            eprintln!(
                "warning: set {} ({}) {} {}: {}",
                set.control_number,
                set.transaction_type,
                w.segment_id.as_deref().unwrap_or("?"),
                w.element.as_deref().unwrap_or(""),
                w.message
            );
        }
    }
}

/// The report of a verdict-only pass.
fn verdicts(path: &Path, input: impl Read, mapping: &MappingConfig) -> Report {
    let mut sets = Vec::new();
    let summary = edi_fhir::verdicts(input, mapping, |set| sets.push(set.clone()));
    Report::new(
        &path.display().to_string(),
        &summary.into_conversion(sets),
        &[],
    )
}

/// What a worker sends of its set, in order: blocks of output, then the verdict.
enum Piece {
    Output(Vec<u8>),
    Verdict(Box<TransactionSetResult>),
}

/// A set handed to a worker, with where its pieces go.
type Job = (x12::OwnedSet, SyncSender<Piece>);

/// Converts `input` into `sink` on `workers` mapping threads and returns the file's
/// report with the sink, flushed. Once a set is rejected nothing more is written (the
/// caller throws the output away); the pass still runs to the end for the report.
pub fn write_resources<W: Write>(
    file: &Path,
    input: impl Read + Send,
    mapping: &MappingConfig,
    format: ConvertFormat,
    sink: W,
    workers: usize,
) -> Result<(Report, W), RunnerError> {
    let workers = workers.max(1);
    let blocks_per_set = (IN_FLIGHT_BYTES / BLOCK / workers).max(2);
    let (spare_blocks, returned_blocks) = channel::<Vec<u8>>();
    let returned_blocks = Mutex::new(returned_blocks);
    let (jobs, job_queue) = sync_channel::<Job>(workers);
    let job_queue = Mutex::new(job_queue);
    let (summary, sets, out) = std::thread::scope(|scope| {
        // Each set's pieces, in file order: what the writing side reads next.
        let (line_up, in_line) = sync_channel::<Receiver<Piece>>(workers);
        let reader = scope.spawn(move || {
            let mut sets = edi_fhir::SetReader::new(input);
            for owned in sets.by_ref() {
                let (pieces, set_in_line) = sync_channel(blocks_per_set);
                if line_up.send(set_in_line).is_err() || jobs.send((owned, pieces)).is_err() {
                    break;
                }
            }
            sets.finish()
        });
        for _ in 0..workers {
            let (job_queue, returned_blocks) = (&job_queue, &returned_blocks);
            scope.spawn(move || {
                while let Some((owned, pieces)) = next(job_queue) {
                    convert_set(&owned, mapping, format, &pieces, returned_blocks);
                }
            });
        }
        let mut out = OrderedOutput::new(sink, format);
        let mut sets = Vec::new();
        let mut any_rejected = false;
        for set in in_line {
            for piece in set {
                match piece {
                    Piece::Output(block) => {
                        if !any_rejected {
                            out.write(&block);
                        }
                        // The workers may be gone; then the block is simply dropped.
                        let _ = spare_blocks.send(block);
                    }
                    Piece::Verdict(result) => {
                        any_rejected |= is_rejected(&result);
                        sets.push(*result);
                    }
                }
            }
        }
        (reader.join(), sets, out)
    });
    let summary =
        summary.map_err(|_| RunnerError::Invalid("the X12 reading thread stopped".into()))?;
    let report = Report::new(
        &file.display().to_string(),
        &summary.into_conversion(sets),
        &[],
    );
    let sink = out
        .finish()
        .map_err(|e| RunnerError::Invalid(format!("writing the output: {e}")))?;
    Ok((report, sink))
}

fn is_rejected(set: &TransactionSetResult) -> bool {
    matches!(set.outcome, edi_fhir::SetOutcome::Rejected { .. })
}

/// The next job, or `None` when the reader is done.
fn next<T>(queue: &Mutex<Receiver<T>>) -> Option<T> {
    queue.lock().ok()?.recv().ok()
}

/// One set on a worker: its resources in blocks, then its verdict.
fn convert_set(
    owned: &x12::OwnedSet,
    mapping: &MappingConfig,
    format: ConvertFormat,
    pieces: &SyncSender<Piece>,
    spare_blocks: &Mutex<Receiver<Vec<u8>>>,
) {
    let blocks = Blocks {
        block: spare_block(spare_blocks),
        pieces,
        spare_blocks,
    };
    let mut writer = ResourceWriter::new(blocks, format);
    let verdict = edi_fhir::map_set_streaming(owned, mapping, &mut |change| writer.change(change));
    // A send fails only when the writing side is gone, and then nobody is listening.
    let _ = writer.finish();
    let _ = pieces.send(Piece::Verdict(Box::new(verdict)));
}

/// A written block back for reuse (a fresh 1 MiB block is 256 page faults), or a new
/// one.
fn spare_block(spare_blocks: &Mutex<Receiver<Vec<u8>>>) -> Vec<u8> {
    let spare = spare_blocks.lock().ok().and_then(|r| r.try_recv().ok());
    match spare {
        Some(mut block) => {
            block.clear();
            block
        }
        None => Vec::with_capacity(BLOCK),
    }
}

/// A set's output, cut into blocks and sent to the writing side.
struct Blocks<'a> {
    block: Vec<u8>,
    pieces: &'a SyncSender<Piece>,
    spare_blocks: &'a Mutex<Receiver<Vec<u8>>>,
}

impl Write for Blocks<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.block.len() + bytes.len() > BLOCK && !self.block.is_empty() {
            self.flush()?;
        }
        self.block.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let next = spare_block(self.spare_blocks);
        let full = std::mem::replace(&mut self.block, next);
        self.pieces
            .send(Piece::Output(full))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

/// The writing side: the sets' blocks in order, inside a Bundle's frame when asked.
/// Workers write every Bundle entry as `,\n{"resource":…}`; the first one's comma
/// becomes the Bundle's opening here.
struct OrderedOutput<W: Write> {
    out: W,
    format: ConvertFormat,
    started: bool,
    /// The first write error: later blocks are not written, the run goes on for
    /// the report.
    error: Option<std::io::Error>,
}

impl<W: Write> OrderedOutput<W> {
    fn new(out: W, format: ConvertFormat) -> Self {
        Self {
            out,
            format,
            started: false,
            error: None,
        }
    }

    fn write(&mut self, block: &[u8]) {
        if self.error.is_some() || block.is_empty() {
            return;
        }
        let written = match (self.format, self.started) {
            (ConvertFormat::Bundle, false) => self
                .out
                .write_all(b"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[\n")
                .and_then(|()| {
                    self.out
                        .write_all(block.strip_prefix(b",\n").unwrap_or(block))
                }),
            _ => self.out.write_all(block),
        };
        self.started = true;
        if let Err(e) = written {
            self.error = Some(e);
        }
    }

    /// Closes the Bundle (an empty one has no `entry`: FHIR forbids empty arrays)
    /// and flushes.
    fn finish(mut self) -> std::io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.format == ConvertFormat::Bundle {
            let end: &[u8] = if self.started {
                b"\n]}\n"
            } else {
                b"{\"resourceType\":\"Bundle\",\"type\":\"collection\"}\n"
            };
            self.out.write_all(end)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes one set's resources as NDJSON lines or as Bundle entries, EOBs straight
/// from the mapper's JSON text. What it folds, within the set and so in bounded
/// memory: a Patient, Coverage or provider the set repeats unchanged (once per claim
/// that names it) is written once, completed by the merge rule, and a void (the
/// claim's merge, then its cancel) is written as one cancelled EOB. Across sets and
/// files the merge rule needs the store: an 837's EOB and the 835 that adjudicates
/// it, in one file, are two lines with one id (`ingest` merges them), and an 835
/// reversal of a claim is applied by `ingest`, not here.
struct ResourceWriter<W: Write> {
    out: W,
    format: ConvertFormat,
    /// The last merge, held back one change so that a void's cancel folds into it.
    pending: Option<Change>,
    /// Hashes of the non-EOB resources this set wrote.
    written: std::collections::HashSet<u64>,
    /// The first write error.
    error: Option<std::io::Error>,
}

impl<W: Write> ResourceWriter<W> {
    fn new(out: W, format: ConvertFormat) -> Self {
        Self {
            out,
            format,
            pending: None,
            written: std::collections::HashSet::new(),
            error: None,
        }
    }

    fn change(&mut self, change: Change) {
        match &change.action {
            edi_fhir::Action::Merge(_) => {
                self.flush_pending();
                self.pending = Some(change);
            }
            edi_fhir::Action::Cancel { .. } => {
                let Some(merge) = self.pending.take() else {
                    return;
                };
                if (merge.resource_type, &merge.id) != (change.resource_type, &change.id) {
                    self.write_change(&merge);
                    return;
                }
                let merged = edi_fhir::apply(None, &merge);
                match merged
                    .as_ref()
                    .and_then(|m| edi_fhir::apply(Some(m), &change))
                {
                    Some(cancelled) => self.write_json(&cancelled.to_string()),
                    None => self.write_change(&merge),
                }
            }
        }
    }

    fn flush_pending(&mut self) {
        if let Some(merge) = self.pending.take() {
            self.write_change(&merge);
        }
    }

    fn write_change(&mut self, change: &Change) {
        let edi_fhir::Action::Merge(resource) = &change.action else {
            return;
        };
        let json = resource.json();
        if change.resource_type == fhir::ResourceType::ExplanationOfBenefit {
            return self.write_json(json);
        }
        // The set names its Patients, Coverages and providers once per claim: write
        // each once.
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        json.hash(&mut hasher);
        if !self.written.insert(hasher.finish()) {
            return;
        }
        // As `ingest` first stores them: the merge rule completes what a claim only
        // names (a Coverage's status defaults to active).
        if let Some(resource) = edi_fhir::first_version_json(change) {
            self.write_json(&resource);
        }
    }

    fn write_json(&mut self, json: &str) {
        if self.error.is_some() {
            return;
        }
        let (prefix, suffix): (&[u8], &[u8]) = match self.format {
            ConvertFormat::Ndjson => (b"", b"\n"),
            ConvertFormat::Bundle => (b",\n{\"resource\":", b"}"),
        };
        let written = self
            .out
            .write_all(prefix)
            .and_then(|()| self.out.write_all(json.as_bytes()))
            .and_then(|()| self.out.write_all(suffix));
        if let Err(e) = written {
            self.error = Some(e);
        }
    }

    /// The set's last resource written, and the last block sent.
    fn finish(mut self) -> std::io::Result<W> {
        self.flush_pending();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        Ok(self.out)
    }
}
