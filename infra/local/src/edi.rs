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
    std::fs::read(path).map_err(|e| RunnerError::io(path, e))
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
    std::fs::create_dir_all(&inbox).map_err(|e| RunnerError::io(&inbox, e))?;
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
        std::fs::copy(path, &staging).map_err(|e| RunnerError::io(&staging, e))?;
        std::fs::rename(&staging, &dropped).map_err(|e| RunnerError::io(&dropped, e))?;
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
