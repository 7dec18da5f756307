//! X12 on the laptop: `convert` (no store), `ingest` (files into the local store) and
//! the inbox that `serve` watches, all through the same `edi-ingest` pipeline the
//! Lambda runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use edi_fhir::{MappingConfig, NetworkStatus};
use edi_ingest::{FileIdentity, FolderObjects, IngestConfig, IngestOutcome, Ingestor, Report};
use fhir_store::{KeyValueStore, ResourceStore};

use crate::RunnerError;
use crate::background_writer::BackgroundWriter;

/// The plan the local runner plays (the demo's plan): its payer id decides which
/// adjudication in an 837 counts, and the demo X12 is written for it.
pub const LOCAL_PAYER_ID: &str = demo_data::PAYER_ID;
pub const LOCAL_PAYER_NAME: &str = demo_data::PAYER_NAME;
/// The folder under the data directory that `serve` watches.
pub const INBOX: &str = "inbox";
/// How often the inbox is looked at.
const POLL: Duration = Duration::from_secs(1);

pub fn local_mapping() -> MappingConfig {
    MappingConfig {
        payer_id: LOCAL_PAYER_ID.to_owned(),
        payer_name: LOCAL_PAYER_NAME.to_owned(),
        default_network_status: NetworkStatus::InNetwork,
    }
}

pub fn local_ingest_config() -> IngestConfig {
    let mut config = IngestConfig::new(local_mapping());
    config.production = false;
    config
}

fn read(path: &Path) -> Result<Vec<u8>, RunnerError> {
    std::fs::read(path).map_err(|source| RunnerError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RunnerError + '_ {
    move |source| RunnerError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// How `convert` writes the resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvertFormat {
    /// One resource a line (the form bulk FHIR tools read).
    Ndjson,
    /// One FHIR `collection` Bundle.
    Bundle,
}

/// `convert FILE [--bundle] [--output OUT]`: the resources an X12 file converts to,
/// streamed on the library's fast path ([`edi_fhir::stream_changes`]) through a
/// buffered writer, touching no store. Memory is one transaction set's worth
/// whatever the file's size.
///
/// A file with any rejected part writes no resources: it prints the report (on
/// stdout) and fails. Sets are judged before their resources are handed out, but an
/// envelope error (a wrong count in GE or IEA, a missing trailer) shows only at
/// the end of the file, after good sets were written. So output that cannot be
/// taken back is never started before the whole file's verdict:
/// - to a file (`--output`): one pass, into `OUT.partial`, renamed to `OUT` when
///   the whole file is accepted and deleted otherwise;
/// - to stdout or a device (`-o /dev/null`): a verdict pass first (parse and map, no
///   JSON, as the ingest pipeline's first pass), then the converting pass only for
///   an accepted file.
pub fn convert(
    path: &Path,
    format: ConvertFormat,
    output: Option<&Path>,
) -> Result<(), RunnerError> {
    let open = || std::fs::File::open(path).map_err(io_error(path));
    let mapping = local_mapping();
    match output {
        Some(out) if !is_device_or_pipe(out) => {
            let partial = partial_path(out);
            let file = std::fs::File::create(&partial).map_err(io_error(&partial))?;
            let sink = BackgroundWriter::new(file);
            let written = write_resources(path, open()?, &mapping, format, sink);
            let verdict = written.and_then(|(report, sink)| {
                sink.finish()
                    .and_then(|file| file.sync_all())
                    .map_err(io_error(&partial))?;
                Ok(report)
            });
            match verdict {
                Ok(report) if accepted(&report) => {
                    std::fs::rename(&partial, out).map_err(io_error(out))?;
                    print_warnings(&report);
                    Ok(())
                }
                Ok(report) => {
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
                .map_err(io_error(out))?;
            let sink = BackgroundWriter::new(device);
            convert_to_stream(path, format, &mapping, sink)
        }
        None => {
            let stdout = std::io::BufWriter::with_capacity(WRITE_BUFFER, std::io::stdout().lock());
            convert_to_stream(path, format, &mapping, stdout)
        }
    }
}

/// Whether `out` exists and is not a regular file (a device such as `/dev/null`, a
/// FIFO).
fn is_device_or_pipe(out: &Path) -> bool {
    std::fs::metadata(out).is_ok_and(|meta| !meta.is_file() && !meta.is_dir())
}

/// Converts into output that cannot be taken back: the converting pass runs only
/// after a verdict pass has accepted the whole file.
fn convert_to_stream<W: std::io::Write>(
    path: &Path,
    format: ConvertFormat,
    mapping: &MappingConfig,
    sink: W,
) -> Result<(), RunnerError> {
    let open = || std::fs::File::open(path).map_err(io_error(path));
    let report = verdicts(path, open()?, mapping);
    if !accepted(&report) {
        return rejected(path, &report);
    }
    let (report, _) = write_resources(path, open()?, mapping, format, sink)?;
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
fn verdicts(path: &Path, input: impl std::io::Read, mapping: &MappingConfig) -> Report {
    let mut sets = Vec::new();
    let summary = edi_fhir::verdicts(input, mapping, |set| sets.push(set.clone()));
    Report::new(
        &path.display().to_string(),
        &summary.into_conversion(sets),
        &[],
    )
}

/// The stdout buffer's size: big writes, small next to one set.
const WRITE_BUFFER: usize = 1 << 20;

/// Converts `input` into `sink` (buffered by the caller) and returns the file's report
/// with the sink, flushed.
/// Nothing of a rejected set is written (the library hands out a set's changes only
/// after its verdict), and nothing at all once a set is rejected.
fn write_resources<W: std::io::Write>(
    file: &Path,
    input: impl std::io::Read,
    mapping: &MappingConfig,
    format: ConvertFormat,
    sink: W,
) -> Result<(Report, W), RunnerError> {
    let mut out = ResourceWriter::new(sink, format);
    let mut sets = Vec::new();
    let mut any_rejected = false;
    let summary = edi_fhir::stream_changes(input, mapping, |event| match event {
        edi_fhir::Event::Set(set) => {
            any_rejected |= matches!(set.outcome, edi_fhir::SetOutcome::Rejected { .. });
            sets.push(set.clone());
        }
        edi_fhir::Event::Change(change) if !any_rejected => out.change(change),
        edi_fhir::Event::Change(_) => {}
        edi_fhir::Event::SetEnd => out.set_end(),
    });
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

/// Writes resources as NDJSON lines or as the entries of one `collection` Bundle,
/// EOBs straight from the mapper's JSON text. What it folds, within one set and so in
/// bounded memory: a Patient, Coverage or provider the set repeats unchanged (once
/// per claim that names it) is written once, completed by the merge rule, and a void
/// (the claim's merge, then its cancel) is written as one cancelled EOB. Across sets and files the merge rule needs the
/// store: an 837's EOB and the 835 that adjudicates it, in one file, are two lines
/// with one id (`ingest` merges them), and an 835 reversal of a claim is applied by
/// `ingest`, not here.
struct ResourceWriter<W: std::io::Write> {
    out: W,
    format: ConvertFormat,
    /// The last merge, held back one change so that a void's cancel folds into it.
    pending: Option<edi_fhir::Change>,
    /// Hashes of the non-EOB resources this set wrote.
    written: std::collections::HashSet<u64>,
    entries: usize,
    /// The first write error (the pass itself runs to its end for the report).
    error: Option<std::io::Error>,
}

impl<W: std::io::Write> ResourceWriter<W> {
    fn new(out: W, format: ConvertFormat) -> Self {
        Self {
            out,
            format,
            pending: None,
            written: std::collections::HashSet::new(),
            entries: 0,
            error: None,
        }
    }

    fn change(&mut self, change: edi_fhir::Change) {
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

    fn set_end(&mut self) {
        self.flush_pending();
        self.written.clear();
    }

    fn flush_pending(&mut self) {
        if let Some(merge) = self.pending.take() {
            self.write_change(&merge);
        }
    }

    fn write_change(&mut self, change: &edi_fhir::Change) {
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
        let prefix: &[u8] = match (self.format, self.entries) {
            (ConvertFormat::Ndjson, _) => b"",
            (ConvertFormat::Bundle, 0) => {
                b"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[\n{\"resource\":"
            }
            (ConvertFormat::Bundle, _) => b",\n{\"resource\":",
        };
        let suffix: &[u8] = match self.format {
            ConvertFormat::Ndjson => b"\n",
            ConvertFormat::Bundle => b"}",
        };
        let written = self
            .out
            .write_all(prefix)
            .and_then(|()| self.out.write_all(json.as_bytes()))
            .and_then(|()| self.out.write_all(suffix));
        self.entries += 1;
        if let Err(e) = written {
            self.error = Some(e);
        }
    }

    /// Closes the Bundle (an empty one has no `entry`: FHIR forbids empty arrays)
    /// and flushes.
    fn finish(mut self) -> std::io::Result<W> {
        self.flush_pending();
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.format == ConvertFormat::Bundle {
            let end: &[u8] = if self.entries == 0 {
                b"{\"resourceType\":\"Bundle\",\"type\":\"collection\"}\n"
            } else {
                b"\n]}\n"
            };
            self.out.write_all(end)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}
/// `ingest FILE…`: each file through the pipeline into the store, with a progress bar
/// and one summary line per file. Returns false when any file was rejected.
pub async fn ingest_files<S>(store: Arc<S>, files: &[PathBuf]) -> Result<bool, RunnerError>
where
    S: ResourceStore + KeyValueStore + 'static,
{
    let ingestor = Ingestor::new(store, local_ingest_config());
    let bar = indicatif::ProgressBar::new(files.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut all_accepted = true;
    for path in files {
        bar.set_message(path.display().to_string());
        let bytes = read(path)?;
        let identity = FileIdentity::content(path.display().to_string(), &bytes);
        let outcome = ingestor
            .ingest_bytes(&identity, bytes)
            .await
            .map_err(|e| RunnerError::Store(e.to_string()))?;
        all_accepted &= outcome.disposition() == edi_ingest::Disposition::Processed;
        // On stdout even when the bar is hidden (not a terminal), above the bar when not.
        let mut lines = vec![summary(&path.display().to_string(), &outcome)];
        if let IngestOutcome::Ingested(done) = &outcome {
            lines.extend(problem_lines(&done.report));
        }
        bar.suspend(|| lines.iter().for_each(|line| println!("{line}")));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(all_accepted)
}

/// One line per file: what happened and the counts.
pub fn summary(file: &str, outcome: &IngestOutcome) -> String {
    let t = outcome.totals();
    let counts = format!(
        "sets {} accepted, {} rejected; {} claims",
        t.sets_accepted, t.sets_rejected, t.claims
    );
    match outcome {
        IngestOutcome::AlreadyDone { disposition, .. } => format!(
            "{file}: already ingested ({}: {counts}), nothing done",
            disposition.as_str()
        ),
        IngestOutcome::Ingested(_) => format!(
            "{file}: {}; {counts}; resources {} created, {} updated, {} unchanged",
            outcome.disposition().as_str(),
            t.resources.created,
            t.resources.updated,
            t.resources.unchanged
        ),
    }
}

/// Every problem of a report, indented, for the terminal.
fn problem_lines(report: &Report) -> Vec<String> {
    let sets = report.transaction_sets.iter().flat_map(|s| {
        s.problems.iter().map(move |p| {
            (
                format!("set {} ({})", s.control_number, s.transaction_type),
                p,
            )
        })
    });
    report
        .file_problems
        .iter()
        .map(|p| ("file".to_owned(), p))
        .chain(sets)
        .map(|(whence, p)| {
            format!(
                "  {whence}: {} segment {} (#{} in file) {}: {} [code {}]",
                p.segment_id.as_deref().unwrap_or("?"),
                p.segment_position.map_or("-".into(), |n| n.to_string()),
                p.file_segment_position
                    .map_or("-".into(), |n| n.to_string()),
                p.element.as_deref().unwrap_or(""),
                p.message,
                p.code
            )
        })
        .collect()
}

/// Watches `DATA/inbox/` the way the S3 trigger runs the Lambda: every file that has
/// stopped growing (same size and modification time on two looks a second apart, so
/// a file still being copied in is left alone) goes through the pipeline and moves to
/// `DATA/processed/` or `DATA/rejected/`, with its report and 999 next to it.
/// Files whose names start with `.` are ignored (editors' and copiers' temporaries).
pub async fn watch_inbox<S>(store: Arc<S>, root: PathBuf)
where
    S: ResourceStore + KeyValueStore + 'static,
{
    let ingestor = Ingestor::new(store, local_ingest_config());
    let objects = FolderObjects::new(&root);
    let inbox = root.join(INBOX);
    if let Err(e) = std::fs::create_dir_all(&inbox) {
        tracing::error!(path = %inbox.display(), error = %e, "cannot create the inbox; not watching it");
        return;
    }
    let mut seen: HashMap<PathBuf, (u64, Option<std::time::SystemTime>)> = HashMap::new();
    loop {
        for name in settled_files(&inbox, &mut seen) {
            let key = format!("{INBOX}/{name}");
            match ingestor.ingest_object(&objects, &key).await {
                Ok(outcome) => tracing::info!("{}", summary(&key, &outcome)),
                Err(e) => {
                    tracing::warn!(file = %key, error = %e, "inbox file failed; it stays in the inbox")
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The names of inbox files that look the same as on the previous look.
pub(crate) fn settled_files(
    inbox: &Path,
    seen: &mut HashMap<PathBuf, (u64, Option<std::time::SystemTime>)>,
) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(inbox) else {
        return Vec::new();
    };
    let mut now = HashMap::new();
    let mut ready = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else { continue };
        if name.starts_with('.') || !meta.is_file() {
            continue;
        }
        let look = (meta.len(), meta.modified().ok());
        if seen.get(&entry.path()) == Some(&look) {
            ready.push(name);
        }
        now.insert(entry.path(), look);
    }
    *seen = now;
    ready.sort();
    ready
}

/// How long `ingest` waits for a running `serve` to take one file from the inbox.
const INBOX_WAIT: Duration = Duration::from_secs(600);

/// `ingest` while `serve` holds the store: hands each file to the running server
/// through its inbox (copied under a dot-name the watcher ignores, then renamed, so
/// it is never seen half-written), waits until the server has moved it out, and
/// prints the summary from the report it wrote. Returns false when any file was
/// rejected.
pub async fn ingest_via_inbox(root: &Path, files: &[PathBuf]) -> Result<bool, RunnerError> {
    let inbox = root.join(INBOX);
    std::fs::create_dir_all(&inbox).map_err(|source| RunnerError::Io {
        path: inbox.display().to_string(),
        source,
    })?;
    println!(
        "serve is running on {}: handing the files to its inbox",
        root.display()
    );
    let mut all_accepted = true;
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| RunnerError::Invalid(format!("{} is not a file", path.display())))?;
        let started = std::time::SystemTime::now();
        let dropped = inbox.join(&name);
        let staging = inbox.join(format!(".{name}.partial"));
        let io = |p: &Path, source| RunnerError::Io {
            path: p.display().to_string(),
            source,
        };
        std::fs::copy(path, &staging).map_err(|e| io(&staging, e))?;
        std::fs::rename(&staging, &dropped).map_err(|e| io(&dropped, e))?;
        let deadline = std::time::Instant::now() + INBOX_WAIT;
        while dropped.exists() {
            if std::time::Instant::now() > deadline {
                return Err(RunnerError::Invalid(format!(
                    "{} is still in the inbox after {INBOX_WAIT:?}: is serve stuck?",
                    dropped.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let line = match fresh_report(root, &name, started) {
            Some((report, key)) => {
                all_accepted &= report.disposition() == edi_ingest::Disposition::Processed;
                let outcome = IngestOutcome::Ingested(Box::new(edi_ingest::Ingested {
                    report,
                    ack: None,
                    resumed: false,
                }));
                format!(
                    "{} (report: {key})",
                    summary(&path.display().to_string(), &outcome)
                )
            }
            None => format!("{}: already ingested, nothing done", path.display()),
        };
        println!("{line}");
    }
    Ok(all_accepted)
}

/// The report the server wrote for `name` since `since`, with where it is.
fn fresh_report(root: &Path, name: &str, since: std::time::SystemTime) -> Option<(Report, String)> {
    ["processed", "rejected"].iter().find_map(|folder| {
        let key = format!("{folder}/{name}.json");
        let path = root.join(&key);
        let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
        if modified < since {
            return None;
        }
        let report = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        Some((report, key))
    })
}
