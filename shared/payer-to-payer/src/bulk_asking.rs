//! The asking side's PDex payer-to-payer **bulk** exchange, as this plan's own
//! answering side serves it ([`crate::bulk_match`], [`crate::data_export`]):
//!
//! 1. `POST /Group/$bulk-member-match` with one `MemberBundle` (the member's
//!    demographics, the old card, the HRex Consent): 202 and a status URL, polled until
//!    200 with the three Groups. The member in the matched Group gives the Group id to
//!    export and the member's Patient id there; in the not-matched Group, the request
//!    ends `not-matched`; in the consent-constrained Group, it ends `not-matched` too,
//!    saying the other plan cannot honour the consent sent.
//! 2. `GET /Group/{id}/$davinci-data-export?exportType=hl7.fhir.us.davinci-pdex#payertopayer&_type=…`
//!    with `Prefer: respond-async`: 202 and a status URL, polled (honouring
//!    `Retry-After`, at most [`Pace::max_wait`] at a time) until 200 with the Bulk Data
//!    manifest.
//! 3. Each output file is downloaded (with the token when the manifest says
//!    `requiresAccessToken`) and imported **line by line as it arrives**
//!    ([`Lines`]: NDJSON split on newlines, at most [`MAX_LINE_BYTES`] a line), each
//!    resource checked ([`crate::import::Checked::check_one`]) before it is converted,
//!    and written [`crate::asking::WRITE_CONCURRENCY`] at a time every
//!    [`CONVERT_CHUNK`] resources. Memory holds one chunk, not the member's history.
//!
//! **Resuming.** Where the run is, is saved in the request ([`Progress`]) after each
//! step: the match's status URL, then the matched Group and the member's id there,
//! then the export's status URL, then each output file once it is wholly imported. A
//! run picked up again (a crash lets the lease lapse; a failed try waits for its retry;
//! an export still running when this run's [`Pace::poll_budget`] is spent waits a
//! little) continues the same match and export, and skips the files already imported.
//! A file cut off midway is imported again from its start: ids are namespaced and each
//! write a conditional put of the same id, so nothing is duplicated. If the other plan
//! no longer knows a saved job (404/410, or a failed job), the run starts over once.
//!
//! **What is asked for.** `_type=Patient,Coverage,ExplanationOfBenefit`: the Patient
//! to check the answer is about the matched member (it is not stored), the Coverages
//! and the claims (and prior authorizations, which are EOBs). Not Provenance: this plan
//! writes its own for each resource it receives, naming the other plan and the
//! original resource, and stores none of the other plan's ([`crate::import`]), so
//! downloading them would only double the transfer. The token's scopes
//! ([`crate::remote`]) cover these three types.

use std::time::Duration;

use bytes::Bytes;
use fhir_store::{KeyValueStore, ResourceStore, StoreError};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::asking::{
    ExchangeRequest, OtherPayer, OtherPlan, Outcome, Poll, Progress, RemoteError,
    member_match_parameters, save_progress, store_received,
};
use crate::import::{self, Checked, Imported};

/// The `_type` of the export asked for (see the module docs).
pub const EXPORT_TYPES: &str = "Patient,Coverage,ExplanationOfBenefit";
/// PDex's export type for payer-to-payer.
pub const EXPORT_TYPE: &str = "hl7.fhir.us.davinci-pdex#payertopayer";
/// One NDJSON line (one resource), at most: a claim is a few kilobytes; a longer line
/// is a wrong answer, refused before it fills memory.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;
/// Resources converted before they are written: bounds what one file holds in memory.
pub const CONVERT_CHUNK: usize = 500;
/// An exchange whose match or export has not finished a day after it started is
/// given up and started over (the other plan's job is stuck, or its files expired).
pub const EXCHANGE_DEADLINE_SECS: i64 = 24 * 3600;

/// How long a run waits for the other plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Time one run spends waiting on status URLs, in all; past it the request waits
    /// for its next run (the lease and the scheduled function's 15 minutes bound a run).
    pub poll_budget: Duration,
    /// The longest single wait, whatever `Retry-After` says.
    pub max_wait: Duration,
    /// The wait when the other plan gives no `Retry-After`.
    pub default_wait: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            poll_budget: Duration::from_secs(5 * 60),
            max_wait: Duration::from_secs(60),
            default_wait: Duration::from_secs(5),
        }
    }
}

/// HRex/PDex `$bulk-member-match` Parameters for one member: the parts of
/// [`member_match_parameters`] as one `MemberBundle`.
pub fn bulk_member_match_parameters(
    member: &Value,
    request: &ExchangeRequest,
    payer: &OtherPayer,
    today: &str,
) -> Value {
    let single = member_match_parameters(member, request, payer, today);
    json!({"resourceType": "Parameters",
           "parameter": [{"name": "MemberBundle", "part": single["parameter"].clone()}]})
}

/// Where the one member asked about ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkMatch {
    /// In the matched Group `group`, as `Patient/{their_patient}` there.
    Matched {
        group: String,
        their_patient: String,
    },
    NotMatched,
    ConsentConstrained,
}

/// Reads `$bulk-member-match`'s answer: the Groups by their PDex code (`match`,
/// `nomatch`, `consentconstraint`), or else by parameter name (this plan's
/// `ResourceIdentifier`/`NoMatch`/`ConsentConstraint`, or PDex's
/// `MatchedMembers`/`NonMatchedMembers`/`ConsentConstrainedMembers`).
pub fn read_bulk_match(answer: &Value) -> Result<BulkMatch, RemoteError> {
    let mut verdict = None;
    for parameter in answer
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(group) = parameter
            .get("resource")
            .filter(|g| g.get("resourceType").and_then(Value::as_str) == Some("Group"))
        else {
            continue;
        };
        let members = group
            .get("member")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if members.is_empty() {
            continue;
        }
        let code = group
            .pointer("/code/coding/0/code")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let found = match (code, name) {
            ("match", _) | ("", "ResourceIdentifier" | "MatchedMembers") => {
                let group_id = group
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|id| fhir::is_valid_id(id));
                let patient = members
                    .iter()
                    .filter_map(|m| m.pointer("/entity/reference").and_then(Value::as_str))
                    .find_map(fhir::Reference::parse)
                    .filter(|r| r.resource_type == fhir::ResourceType::Patient);
                match (group_id, patient) {
                    (Some(group), Some(patient)) => BulkMatch::Matched {
                        group: group.to_owned(),
                        their_patient: patient.id,
                    },
                    _ => {
                        return Err(RemoteError::BadAnswer(
                            "the matched Group has no id or no Patient member".into(),
                        ));
                    }
                }
            }
            ("consentconstraint", _) | ("", "ConsentConstraint" | "ConsentConstrainedMembers") => {
                BulkMatch::ConsentConstrained
            }
            ("nomatch", _) | ("", "NoMatch" | "NonMatchedMembers") => BulkMatch::NotMatched,
            _ => continue,
        };
        if verdict.replace(found).is_some() {
            return Err(RemoteError::BadAnswer(
                "the one member asked about is in more than one Group".into(),
            ));
        }
    }
    verdict.ok_or_else(|| {
        RemoteError::BadAnswer("$bulk-member-match gave the member in no Group".into())
    })
}

/// One output file of a Bulk Data manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    pub resource_type: String,
    pub url: String,
}

/// A completed export's manifest: whether the files need the token, and the files.
pub fn read_manifest(manifest: &Value) -> Result<(bool, Vec<OutputFile>), RemoteError> {
    let output = manifest
        .get("output")
        .and_then(Value::as_array)
        .ok_or_else(|| RemoteError::BadAnswer("the export's manifest has no output".into()))?;
    let files = output
        .iter()
        .map(|file| {
            let field = |name: &str| file.get(name).and_then(Value::as_str).map(str::to_owned);
            match (field("type"), field("url")) {
                (Some(resource_type), Some(url)) => Ok(OutputFile { resource_type, url }),
                _ => Err(RemoteError::BadAnswer(
                    "a manifest output without type or url".into(),
                )),
            }
        })
        .collect::<Result<_, _>>()?;
    let requires_token = manifest
        .get("requiresAccessToken")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok((requires_token, files))
}

/// NDJSON split into lines as the bytes arrive, each at most `max` bytes (without its
/// newline). Only the unfinished last line is held between chunks.
#[derive(Debug)]
pub struct Lines {
    partial: Vec<u8>,
    max: usize,
}

/// A line longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an NDJSON line longer than {0} bytes")]
pub struct LineTooLong(pub usize);

impl Lines {
    pub fn new(max: usize) -> Self {
        Lines {
            partial: Vec::new(),
            max,
        }
    }

    /// The lines `chunk` completes (a `\r` before the newline dropped).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>, LineTooLong> {
        let mut lines = Vec::new();
        let mut rest = chunk;
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            self.extend(&rest[..at])?;
            let mut line = std::mem::take(&mut self.partial);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            lines.push(line);
            rest = &rest[at + 1..];
        }
        self.extend(rest)?;
        Ok(lines)
    }

    /// The last line, when the file does not end with a newline.
    pub fn finish(self) -> Option<Vec<u8>> {
        let mut line = self.partial;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        (!line.is_empty()).then_some(line)
    }

    fn extend(&mut self, bytes: &[u8]) -> Result<(), LineTooLong> {
        if self.partial.len() + bytes.len() > self.max {
            return Err(LineTooLong(self.max));
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }
}

/// How a step ended short of the import.
enum Stop {
    /// The run ends with this outcome (progress as saved).
    Outcome(Outcome),
    /// The other plan no longer knows a saved job: start over.
    Gone(String),
}

impl From<RemoteError> for Stop {
    fn from(error: RemoteError) -> Self {
        Stop::Outcome(Outcome::Failed(error))
    }
}

/// Who takes part in one run: this plan's stores, the other plan's API and record.
pub(crate) struct Parties<'a, S: ?Sized, K: ?Sized, P> {
    pub store: &'a S,
    pub kv: &'a K,
    pub plan: &'a P,
    pub payer: &'a OtherPayer,
}

impl<S: ?Sized, K: ?Sized, P> Clone for Parties<'_, S, K, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: ?Sized, K: ?Sized, P> Copy for Parties<'_, S, K, P> {}

/// The bulk exchange for `request` (its [`Progress`] saved in `kv` as it goes).
pub(crate) async fn exchange<S, K, P>(
    parties: Parties<'_, S, K, P>,
    request: &mut ExchangeRequest,
    member: &Value,
    now: i64,
    pace: &Pace,
) -> Result<Outcome, StoreError>
where
    S: ResourceStore + ?Sized,
    K: KeyValueStore + ?Sized,
    P: OtherPlan,
{
    let Parties { kv, payer, .. } = parties;
    let polling_until = tokio::time::Instant::now() + pace.poll_budget;
    let mut restarted = false;
    loop {
        let mut progress = request
            .progress
            .clone()
            .unwrap_or_else(|| Progress::new(now));
        if now.saturating_sub(progress.started_at) > EXCHANGE_DEADLINE_SECS {
            request.progress = None;
            return Ok(Outcome::Failed(RemoteError::Unavailable(
                "the other plan's match or export did not finish within a day; starting over"
                    .into(),
            )));
        }
        let result = steps(parties, request, &mut progress, member, pace, polling_until).await?;
        match result {
            Ok(received) => return Ok(Outcome::Received(received)),
            Err(Stop::Outcome(outcome)) => return Ok(outcome),
            Err(Stop::Gone(why)) if !restarted => {
                tracing::info!(
                    event = "p2p.exchange_restarted",
                    payer = %payer.name,
                    reason = %why,
                    "the other plan no longer knows the saved job; starting over"
                );
                restarted = true;
                request.progress = Some(Progress::new(now));
                save_progress(kv, request).await?;
            }
            Err(Stop::Gone(why)) => {
                request.progress = None;
                return Ok(Outcome::Failed(RemoteError::Unavailable(why)));
            }
        }
    }
}

async fn steps<S, K, P>(
    parties: Parties<'_, S, K, P>,
    request: &mut ExchangeRequest,
    progress: &mut Progress,
    member: &Value,
    pace: &Pace,
    polling_until: tokio::time::Instant,
) -> Result<Result<usize, Stop>, StoreError>
where
    S: ResourceStore + ?Sized,
    K: KeyValueStore + ?Sized,
    P: OtherPlan,
{
    let Parties {
        store,
        kv,
        plan,
        payer,
    } = parties;
    // 1. The match.
    let (group, their_patient) = match (&progress.group, &progress.their_patient) {
        (Some(group), Some(patient)) => (group.clone(), patient.clone()),
        _ => {
            let status_url = match &progress.match_status {
                Some(url) => url.clone(),
                None => {
                    let today = progress.received_at();
                    let today = today.get(..10).unwrap_or_default();
                    let parameters = bulk_member_match_parameters(member, request, payer, today);
                    let url = match plan.bulk_member_match(&parameters).await {
                        Ok(url) => url,
                        Err(error) => return Ok(Err(error.into())),
                    };
                    progress.match_status = Some(url.clone());
                    request.progress = Some(progress.clone());
                    save_progress(kv, request).await?;
                    url
                }
            };
            let answer = match poll(plan, &status_url, pace, polling_until).await {
                Ok(answer) => answer,
                Err(stop) => return Ok(Err(stop)),
            };
            match read_bulk_match(&answer) {
                Ok(BulkMatch::Matched {
                    group,
                    their_patient,
                }) => {
                    progress.group = Some(group.clone());
                    progress.their_patient = Some(their_patient.clone());
                    request.progress = Some(progress.clone());
                    save_progress(kv, request).await?;
                    (group, their_patient)
                }
                Ok(BulkMatch::NotMatched) => {
                    return Ok(Err(RemoteError::NotMatched(
                        "the other plan's $bulk-member-match put the member in its not-matched Group".into(),
                    )
                    .into()));
                }
                Ok(BulkMatch::ConsentConstrained) => {
                    return Ok(Err(RemoteError::NotMatched(
                        "consent-constrained: the other plan cannot honour the consent sent with the request".into(),
                    )
                    .into()));
                }
                Err(error) => return Ok(Err(error.into())),
            }
        }
    };

    // 2. The export.
    let status_url = match &progress.export_status {
        Some(url) => url.clone(),
        None => {
            let url = match plan.data_export(&group, EXPORT_TYPES).await {
                Ok(url) => url,
                // The Group expired at the other plan: match again.
                Err(RemoteError::Refused { status: 404, text }) => {
                    return Ok(Err(Stop::Gone(format!("the matched Group: {text}"))));
                }
                Err(error) => return Ok(Err(error.into())),
            };
            progress.export_status = Some(url.clone());
            request.progress = Some(progress.clone());
            save_progress(kv, request).await?;
            url
        }
    };
    let manifest = match poll(plan, &status_url, pace, polling_until).await {
        Ok(manifest) => manifest,
        Err(stop) => return Ok(Err(stop)),
    };
    let (requires_token, files) = match read_manifest(&manifest) {
        Ok(read) => read,
        Err(error) => return Ok(Err(error.into())),
    };

    // 3. The files, each imported as it streams; the finished ones skipped.
    let source = payer.source();
    let member_id = request.patient.clone();
    let checked = Checked::for_member(&source, &member_id, their_patient);
    let received_at = progress.received_at();
    for file in files {
        if progress.imported_files.contains(&file.url) || file.resource_type == "Provenance" {
            continue;
        }
        let count = match import_file(
            store,
            plan,
            &file,
            requires_token,
            &checked,
            &received_at,
            progress.received,
        )
        .await?
        {
            Ok(count) => count,
            Err(error) => return Ok(Err(error.into())),
        };
        progress.imported_files.push(file.url);
        progress.received += count;
        request.progress = Some(progress.clone());
        save_progress(kv, request).await?;
    }
    Ok(Ok(progress.received))
}

/// Polls `status_url` until it answers, within the run's budget.
async fn poll<P: OtherPlan>(
    plan: &P,
    status_url: &str,
    pace: &Pace,
    polling_until: tokio::time::Instant,
) -> Result<Value, Stop> {
    loop {
        match plan.poll(status_url).await? {
            Poll::Done(answer) => return Ok(answer),
            Poll::Gone(why) => return Err(Stop::Gone(why)),
            Poll::Running { retry_after } => {
                let wait = retry_after.unwrap_or(pace.default_wait).min(pace.max_wait);
                if tokio::time::Instant::now() + wait > polling_until {
                    let secs = i64::try_from(wait.as_secs()).unwrap_or(60).max(60);
                    return Err(Stop::Outcome(Outcome::StillRunning(secs)));
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Downloads one output file and imports it line by line; the received resources
/// written (Provenance not counted), or why the file was refused (what it held before
/// the bad line is written: each resource was checked on its own).
async fn import_file<S, P>(
    store: &S,
    plan: &P,
    file: &OutputFile,
    requires_token: bool,
    checked: &Checked<'_>,
    received_at: &str,
    received_before: usize,
) -> Result<Result<usize, RemoteError>, StoreError>
where
    S: ResourceStore + ?Sized,
    P: OtherPlan,
{
    let mut stream = match plan.download(&file.url, requires_token).await {
        Ok(stream) => stream,
        Err(error) => return Ok(Err(error)),
    };
    let source_name = checked.source().name.as_str();
    let mut lines = Lines::new(MAX_LINE_BYTES);
    let mut batch: Vec<Imported> = Vec::new();
    let mut received = 0;
    let mut line_number = 0usize;
    loop {
        let chunk: Option<Result<Bytes, RemoteError>> = stream.next().await;
        let complete = match chunk {
            Some(Ok(chunk)) => match lines.push(&chunk) {
                Ok(complete) => complete,
                Err(error) => return Ok(Err(bad_line(file, line_number + 1, &error))),
            },
            Some(Err(error)) => return Ok(Err(error)),
            None => break,
        };
        for line in complete {
            line_number += 1;
            if let Err(error) = take_line(&line, checked, received_at, &mut batch) {
                return Ok(Err(bad_line(file, line_number, &error)));
            }
        }
        if received_before + line_number > import::MAX_RESOURCES {
            return Ok(Err(RemoteError::BadAnswer(
                import::ImportError::TooLarge.to_string(),
            )));
        }
        // Two writes (the resource, its Provenance) per resource.
        if batch.len() >= CONVERT_CHUNK * 2 {
            received += store_received(store, std::mem::take(&mut batch), source_name).await?;
        }
    }
    if let Some(line) = lines.finish() {
        line_number += 1;
        if let Err(error) = take_line(&line, checked, received_at, &mut batch) {
            return Ok(Err(bad_line(file, line_number, &error)));
        }
    }
    received += store_received(store, batch, source_name).await?;
    Ok(Ok(received))
}

fn bad_line(file: &OutputFile, line: usize, error: &dyn std::fmt::Display) -> RemoteError {
    RemoteError::BadAnswer(format!("{} file, line {line}: {error}", file.resource_type))
}

/// Checks and converts one NDJSON line into `batch` (blank lines skipped).
fn take_line(
    line: &[u8],
    checked: &Checked<'_>,
    received_at: &str,
    batch: &mut Vec<Imported>,
) -> Result<(), String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let resource: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    checked.check_one(&resource).map_err(str::to_owned)?;
    batch.extend(checked.convert(&resource, received_at));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_is_split_on_newlines_across_chunks_and_a_runaway_line_is_refused() {
        let mut lines = Lines::new(16);
        assert_eq!(
            lines.push(b"{\"a\":1}\n{\"b\"").unwrap(),
            vec![b"{\"a\":1}".to_vec()]
        );
        assert_eq!(
            lines.push(b":2}\r\n\n{\"c\":3}").unwrap(),
            vec![b"{\"b\":2}".to_vec(), Vec::new()]
        );
        assert_eq!(lines.finish(), Some(b"{\"c\":3}".to_vec()));
        let mut long = Lines::new(16);
        assert_eq!(long.push(&[b'x'; 10]).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(long.push(&[b'x'; 10]), Err(LineTooLong(16)));
    }

    fn group(code: &str, members: Value) -> Value {
        json!({"resourceType": "Group", "id": format!("g-{code}"),
               "code": {"coding": [{"code": code}]}, "member": members})
    }

    #[test]
    fn the_bulk_match_answer_says_which_group_the_member_is_in() {
        let matched = json!({"resourceType": "Parameters", "parameter": [
            {"name": "ResourceIdentifier", "resource": group("match",
                json!([{"entity": {"reference": "Patient/old-9"}}]))},
            {"name": "NoMatch", "resource": {"resourceType": "Group", "id": "n",
                "code": {"coding": [{"code": "nomatch"}]}}}]});
        assert_eq!(
            read_bulk_match(&matched),
            Ok(BulkMatch::Matched {
                group: "g-match".into(),
                their_patient: "old-9".into()
            })
        );
        let no_match = json!({"resourceType": "Parameters", "parameter": [
            {"name": "NoMatch", "resource": group("nomatch", json!([{"entity": {"reference": "#m0"}}]))}]});
        assert_eq!(read_bulk_match(&no_match), Ok(BulkMatch::NotMatched));
        let constrained = json!({"resourceType": "Parameters", "parameter": [
            {"name": "ConsentConstrainedMembers", "resource": {"resourceType": "Group", "id": "c",
                "member": [{"entity": {"reference": "#m0"}}]}}]});
        assert_eq!(
            read_bulk_match(&constrained),
            Ok(BulkMatch::ConsentConstrained)
        );
        assert!(read_bulk_match(&json!({"resourceType": "Parameters"})).is_err());
    }

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use fhir::ResourceType;
    use fhir_store::{ListQuery, Partition, ResourceWrite, WriteCondition};

    use crate::asking::{self, LEASE_SECS, RequestState, Terms};

    const MATCH_STATUS: &str = "https://fhir.old.example/Group/$bulk-member-match/j1";
    const EXPORT_STATUS: &str = "https://fhir.old.example/bulk-status/x1";
    const COVERAGE_FILE: &str = "https://fhir.old.example/bulk-files/x1/Coverage-0.ndjson";
    const CLAIMS_FILE: &str =
        "https://fhir.old.example/bulk-files/x1/ExplanationOfBenefit-0.ndjson";
    /// Claims in the other plan's export: more than one chunk of writes.
    const CLAIMS: usize = 600;

    /// The old plan, serving PDex's bulk pair. Its first download of the claims file
    /// stops for good after `cut_after` lines (the process then dies: the test drops
    /// the run), and it says when it stopped.
    struct OldPlan {
        cut_after: Option<usize>,
        stopped: Arc<tokio::sync::Notify>,
        match_kick_offs: AtomicUsize,
        export_kick_offs: AtomicUsize,
        match_polls: AtomicUsize,
        downloads: std::sync::Mutex<Vec<String>>,
    }

    impl OldPlan {
        fn new(cut_after: Option<usize>) -> Self {
            OldPlan {
                cut_after,
                stopped: Arc::new(tokio::sync::Notify::new()),
                match_kick_offs: AtomicUsize::new(0),
                export_kick_offs: AtomicUsize::new(0),
                match_polls: AtomicUsize::new(0),
                downloads: std::sync::Mutex::new(Vec::new()),
            }
        }

        fn downloads_of(&self, url: &str) -> usize {
            self.downloads
                .lock()
                .map(|d| d.iter().filter(|u| *u == url).count())
                .unwrap_or(0)
        }
    }

    fn claims_ndjson() -> Vec<u8> {
        (0..CLAIMS)
            .map(|n| {
                format!(
                    "{}\n",
                    json!({"resourceType": "ExplanationOfBenefit", "id": format!("e{n}"),
                           "patient": {"reference": "Patient/old-9"},
                           "insurance": [{"coverage": {"reference": "Coverage/c1"}}]})
                )
            })
            .collect::<String>()
            .into_bytes()
    }

    impl OtherPlan for OldPlan {
        async fn capabilities(&self) -> Result<asking::Capabilities, RemoteError> {
            Ok(asking::Capabilities { bulk: true })
        }

        async fn member_match(&self, _: &Value) -> Result<String, RemoteError> {
            panic!("a plan with the bulk pair is asked in bulk")
        }

        async fn everything(&self, _: &str) -> Result<Vec<Value>, RemoteError> {
            panic!("a plan with the bulk pair is asked in bulk")
        }

        async fn bulk_member_match(&self, parameters: &Value) -> Result<String, RemoteError> {
            assert_eq!(parameters["parameter"][0]["name"], "MemberBundle");
            self.match_kick_offs.fetch_add(1, Ordering::SeqCst);
            Ok(MATCH_STATUS.into())
        }

        async fn data_export(&self, group: &str, types: &str) -> Result<String, RemoteError> {
            assert_eq!((group, types), ("p2p-j1", EXPORT_TYPES));
            self.export_kick_offs.fetch_add(1, Ordering::SeqCst);
            Ok(EXPORT_STATUS.into())
        }

        async fn poll(&self, url: &str) -> Result<Poll, RemoteError> {
            match url {
                MATCH_STATUS if self.match_polls.fetch_add(1, Ordering::SeqCst) == 0 => {
                    Ok(Poll::Running {
                        retry_after: Some(Duration::from_millis(1)),
                    })
                }
                MATCH_STATUS => Ok(Poll::Done(
                    json!({"resourceType": "Parameters", "parameter": [
                    {"name": "ResourceIdentifier", "resource": {"resourceType": "Group", "id": "p2p-j1",
                        "code": {"coding": [{"code": "match"}]},
                        "member": [{"entity": {"reference": "Patient/old-9"}}]}}]}),
                )),
                EXPORT_STATUS => Ok(Poll::Done(json!({"requiresAccessToken": true, "output": [
                    {"type": "Patient", "url": "https://fhir.old.example/bulk-files/x1/Patient-0.ndjson"},
                    {"type": "Coverage", "url": COVERAGE_FILE},
                    {"type": "ExplanationOfBenefit", "url": CLAIMS_FILE}]}))),
                _ => Ok(Poll::Gone("404".into())),
            }
        }

        async fn download<'a>(
            &'a self,
            url: &'a str,
            with_token: bool,
        ) -> Result<asking::ByteStream<'a>, RemoteError> {
            assert!(with_token, "the manifest asks for the token");
            let first = self.downloads_of(url) == 0;
            if let Ok(mut downloads) = self.downloads.lock() {
                downloads.push(url.to_owned());
            }
            let body = match url {
                CLAIMS_FILE => claims_ndjson(),
                COVERAGE_FILE => format!(
                    "{}\n",
                    json!({"resourceType": "Coverage", "id": "c1", "beneficiary": {"reference": "Patient/old-9"}})
                )
                .into_bytes(),
                _ => format!("{}\n", json!({"resourceType": "Patient", "id": "old-9"})).into_bytes(),
            };
            // Chunks that end mid-line, as a network's do.
            let mut chunks: Vec<Result<Bytes, RemoteError>> = body
                .chunks(1000)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            match self.cut_after {
                Some(lines) if url == CLAIMS_FILE && first => {
                    let cut: usize = body
                        .split_inclusive(|b| *b == b'\n')
                        .take(lines)
                        .map(<[u8]>::len)
                        .sum();
                    chunks = vec![Ok(Bytes::copy_from_slice(&body[..cut + 10]))];
                    let stopped = Arc::clone(&self.stopped);
                    let hang = futures_util::stream::once(async move {
                        stopped.notify_one();
                        futures_util::future::pending::<Result<Bytes, RemoteError>>().await
                    });
                    Ok(Box::pin(futures_util::stream::iter(chunks).chain(hang)))
                }
                _ => Ok(Box::pin(futures_util::stream::iter(chunks))),
            }
        }
    }

    fn store() -> (tempfile::TempDir, store_redb::RedbStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = store_redb::RedbStore::open(dir.path().join("s.redb")).unwrap();
        (dir, store)
    }

    async fn opted_in_member(store: &store_redb::RedbStore) {
        member_consent::Sharing::PayerToPayer
            .set(store, "m1", true, member_consent::ChangedBy::Plan)
            .await
            .unwrap();
        ResourceStore::put(
            store,
            ResourceWrite::indexed(
                ResourceType::Patient,
                "m1",
                json!({"resourceType": "Patient", "id": "m1", "birthDate": "1985-04-12",
                       "gender": "female", "name": [{"family": "Núñez", "given": ["Ana"]}]}),
                WriteCondition::Always,
            ),
        )
        .await
        .unwrap();
    }

    fn old_plan_payer() -> OtherPayer {
        OtherPayer {
            name: "oldplan".into(),
            base_url: "https://fhir.old.example".into(),
            payer_id: "OLD01".into(),
            client_id: "c".into(),
            key: "k".into(),
        }
    }

    async fn claims_of_m1(store: &store_redb::RedbStore) -> Vec<String> {
        let partition = Partition::Compartment {
            patient: "m1".into(),
            resource_type: ResourceType::ExplanationOfBenefit,
        };
        ResourceStore::list(store, ListQuery::new(partition, 10_000))
            .await
            .unwrap()
            .entries
            .into_iter()
            .map(|(_, record)| record.id)
            .collect()
    }

    fn quick() -> Pace {
        Pace {
            poll_budget: Duration::from_secs(5),
            max_wait: Duration::from_millis(5),
            default_wait: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn a_run_that_dies_mid_download_is_continued_by_the_next_run_without_duplicates() {
        let (_dir, store) = store();
        opted_in_member(&store).await;
        let payer = old_plan_payer();
        let terms = Terms {
            old_member_id: "SUB-7001".into(),
            all_data: false,
            concurrent: false,
        };
        asking::request(&store, "m1", "oldplan", terms, 1000)
            .await
            .unwrap();

        // The first run: the match, the export, the Coverage file, then the claims
        // file stops after 700 lines and the process dies (the run is dropped).
        let old_plan = OldPlan::new(Some(550));
        let taken = asking::due(&store, 1000, 10).await.unwrap();
        assert_eq!(taken.len(), 1);
        let pace = quick();
        let first = asking::run_with(
            &store,
            &store,
            &old_plan,
            &payer,
            taken[0].clone(),
            1000,
            &pace,
        );
        tokio::select! {
            ended = first => panic!("the run should hang mid-file: {ended:?}"),
            () = old_plan.stopped.notified() => {}
        }
        let written = claims_of_m1(&store).await.len();
        assert!(
            (1..CLAIMS).contains(&written),
            "part of the claims file was written before the crash: {written}"
        );
        let saved = asking::get_request(&store, "m1", "oldplan")
            .await
            .unwrap()
            .unwrap();
        let progress = saved.progress.clone().expect("the run's progress is saved");
        assert_eq!(progress.export_status.as_deref(), Some(EXPORT_STATUS));
        assert!(progress.imported_files.contains(&COVERAGE_FILE.to_owned()));
        assert!(!progress.imported_files.contains(&CLAIMS_FILE.to_owned()));

        // The lease lapses; the next scheduled run takes the request and continues
        // the same export: no new match, no new export, the Coverage file not again.
        assert!(asking::due(&store, 1001, 10).await.unwrap().is_empty());
        let retaken = asking::due(&store, 1000 + LEASE_SECS + 1, 10)
            .await
            .unwrap();
        assert_eq!(retaken.len(), 1, "the crashed run's request comes back");
        let resumed = OldPlan::new(None);
        let done = asking::run_with(
            &store,
            &store,
            &resumed,
            &payer,
            retaken[0].clone(),
            1000 + LEASE_SECS + 1,
            &quick(),
        )
        .await
        .unwrap();
        assert_eq!(done.state, RequestState::Done, "{done:?}");
        assert_eq!(
            done.received,
            CLAIMS + 1,
            "every claim and the Coverage, once"
        );
        assert_eq!(done.progress, None);
        assert_eq!(resumed.match_kick_offs.load(Ordering::SeqCst), 0);
        assert_eq!(resumed.export_kick_offs.load(Ordering::SeqCst), 0);
        assert_eq!(resumed.downloads_of(COVERAGE_FILE), 0);
        assert_eq!(resumed.downloads_of(CLAIMS_FILE), 1);
        let mut claims = claims_of_m1(&store).await;
        claims.sort();
        claims.dedup();
        assert_eq!(claims.len(), CLAIMS, "no claim twice");
        assert!(claims.contains(&"oldplan.e0".to_owned()));
        assert!(claims.contains(&format!("oldplan.e{}", CLAIMS - 1)));
    }

    /// A plan with the bulk pair whose `$bulk-member-match` status always answers
    /// `poll()`.
    struct Polled(fn() -> Poll);

    impl OtherPlan for Polled {
        async fn capabilities(&self) -> Result<asking::Capabilities, RemoteError> {
            Ok(asking::Capabilities { bulk: true })
        }
        async fn member_match(&self, _: &Value) -> Result<String, RemoteError> {
            unreachable!("the bulk pair is used")
        }
        async fn everything(&self, _: &str) -> Result<Vec<Value>, RemoteError> {
            unreachable!("the bulk pair is used")
        }
        async fn bulk_member_match(&self, _: &Value) -> Result<String, RemoteError> {
            Ok(MATCH_STATUS.into())
        }
        async fn poll(&self, _: &str) -> Result<Poll, RemoteError> {
            Ok((self.0)())
        }
    }

    /// The opted-in member's request of the old plan, `#sensitive`, not concurrent.
    async fn asked(store: &store_redb::RedbStore) -> ExchangeRequest {
        opted_in_member(store).await;
        let terms = Terms {
            old_member_id: "SUB-7001".into(),
            all_data: false,
            concurrent: false,
        };
        asking::request(store, "m1", "oldplan", terms, 1000)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_member_in_the_consent_constrained_group_ends_not_matched_saying_why() {
        let constrained = Polled(|| {
            Poll::Done(json!({"resourceType": "Parameters", "parameter": [
                {"name": "ConsentConstraint", "resource": {"resourceType": "Group", "id": "c",
                    "code": {"coding": [{"code": "consentconstraint"}]},
                    "member": [{"entity": {"reference": "#m0"}}]}}]}))
        });
        let (_dir, store) = store();
        let asked = asked(&store).await;
        let after = asking::run_with(
            &store,
            &store,
            &constrained,
            &old_plan_payer(),
            asked,
            1000,
            &quick(),
        )
        .await
        .unwrap();
        assert_eq!(after.state, RequestState::NotMatched);
        assert!(
            after
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("consent-constrained")),
            "{after:?}"
        );
    }

    #[tokio::test]
    async fn an_export_still_running_when_the_runs_budget_is_spent_waits_without_spending_a_try() {
        let slow = Polled(|| Poll::Running {
            retry_after: Some(Duration::from_secs(120)),
        });
        let (_dir, store) = store();
        let asked = asked(&store).await;
        let pace = Pace {
            poll_budget: Duration::from_millis(50),
            ..quick()
        };
        let after = asking::run_with(&store, &store, &slow, &old_plan_payer(), asked, 1000, &pace)
            .await
            .unwrap();
        assert_eq!(after.state, RequestState::Waiting);
        assert_eq!(after.attempts, 0, "the other plan is working, not failing");
        assert_eq!(after.next_attempt_at, 1060);
        assert_eq!(
            after.progress.and_then(|p| p.match_status).as_deref(),
            Some(MATCH_STATUS),
            "the next run polls the same match"
        );
    }

    #[test]
    fn the_manifest_gives_the_files_and_whether_they_need_the_token() {
        let manifest = json!({"requiresAccessToken": true, "output": [
            {"type": "Coverage", "url": "https://old.example/bulk-files/j/Coverage-0.ndjson", "count": 1}]});
        let (token, files) = read_manifest(&manifest).unwrap();
        assert!(token);
        assert_eq!(files[0].resource_type, "Coverage");
        assert!(read_manifest(&json!({})).is_err());
    }
}
