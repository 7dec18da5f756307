//! `POST /Group/$bulk-member-match` (PDex payer-to-payer bulk): many members in one
//! `Parameters`, matched asynchronously on the export work queue, answered as three
//! Groups.
//!
//! 1. **Kick-off** ([`parse`], then the handler): the body is a `Parameters` with one
//!    `MemberBundle` per member, each with the parts `MemberPatient`,
//!    `CoverageToMatch`, `Consent` and optionally `CoverageToLink` (PDex
//!    `$multi-member-match` request). A bundle that lacks a part or whose parts cannot
//!    be read is a 400 naming its position; nothing is queued. The bundles are stored
//!    in chunks ([`CHUNK_MEMBERS`] at most, and under the key-value store's value size)
//!    and a `bulk_export` job is recorded with one work item per chunk; 202 with
//!    `Content-Location` = `{base}/Group/$bulk-member-match/{job}`.
//! 2. **Each chunk** ([`run_chunk`], on the export workers): for each member, in order,
//!    the HRex Consent check, the match rule ([`crate::matching`]) and the member's
//!    Payer-to-Payer opt-in, exactly as single `$member-match`:
//!    * a Consent this plan cannot honour (checked on the Consent alone, before any
//!      look-up) puts the member in the **consent-constrained** Group;
//!    * no match, several matches, or a member who has not opted in puts them in the
//!      **not matched** Group (the same answer, so it never tells who is a member);
//!    * else the member is **matched**, with the consent's policy and period end.
//!
//!    Every failure counts against the client's failed-match budget
//!    ([`crate::budget`]); once it is spent, the chunk's remaining members are not
//!    looked up and are reported not matched (the audit line says `throttled`). The
//!    chunk's result is recorded once (insert-if-absent), then counted by the job.
//! 3. **Status** (`GET {base}/Group/$bulk-member-match/{job}`, only for the client
//!    that asked): 202 + `X-Progress` + `Retry-After` while chunks run; when all are
//!    in, the matched members become a **match Group** (`bulk_export::members`, id
//!    `p2p-{job}`, which `$davinci-data-export` exports) and the answer is 200 with
//!    PDex's `Parameters`: `ResourceIdentifier` (the matched Group, PDex Member Match
//!    Group), `NoMatch` and `ConsentConstraint` (PDex Member No Match Groups), each
//!    member with the `MemberPatient` it was asked with, contained.

use std::sync::Arc;

use fhir_store::{KeyValueStore, ResourceStore};
use serde_json::{Value, json};
use smart_auth::BoxFuture;

use bulk_export::ExportError;
use bulk_export::job::{Job, WorkItem};
use bulk_export::members::{self, MatchedMember};
use bulk_export::worker::JobRunner;

use crate::budget::FailureBudget;
use crate::consent;
use crate::matching::{self, InputError, MatchOutcome, MatchRequest};

/// The path of the kick-off.
pub const PATH: &str = "/Group/$bulk-member-match";
/// The status of a job is at `{PATH}/{job}`.
pub const STATUS_PREFIX: &str = "/Group/$bulk-member-match/";
/// Members per chunk (one work item), at most.
pub const CHUNK_MEMBERS: usize = 100;
/// JSON bytes of one chunk, at most (the key-value store takes 300,000).
const CHUNK_BYTES: usize = 250_000;
/// Members in one request, at most (a 10 MB API Gateway body holds about this many).
pub const MAX_MEMBERS: usize = 5_000;
/// One member's parts, as JSON, at most.
const MAX_MEMBER_BYTES: usize = 20_000;

const REQUESTS: &str = "bulk-match-request";
const MATCH_PARAMETERS: &str =
    "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/base-ext-match-parameters";
fn results_namespace(job_id: &str) -> String {
    // `bulk-…`: the worker's role may write `K#bulk-*` records.
    format!("bulk-match-{job_id}")
}

fn chunk_key(job_id: &str, chunk: u32) -> String {
    format!("{job_id}.{chunk:06}")
}

/// One member as asked: the parts, checked for shape.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberBundle {
    pub patient: Value,
    pub coverage: Value,
    pub consent: Value,
}

/// A request that cannot be taken (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkInputError {
    #[error("the body must be a FHIR Parameters resource with MemberBundle parameters")]
    NotParameters,
    #[error("no MemberBundle was given")]
    Empty,
    #[error("more than {MAX_MEMBERS} members in one request; split it")]
    TooMany,
    #[error("MemberBundle {index}: {problem}")]
    Member { index: usize, problem: String },
}

/// The members of a `$bulk-member-match` body, each checked as `$member-match` would
/// check it (so a chunk never meets a bundle it cannot read).
pub fn parse(body: &[u8]) -> Result<Vec<MemberBundle>, BulkInputError> {
    let parameters: Value =
        serde_json::from_slice(body).map_err(|_| BulkInputError::NotParameters)?;
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(BulkInputError::NotParameters);
    }
    let list = parameters
        .get("parameter")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if list
        .iter()
        .any(|p| p.get("name").and_then(Value::as_str) != Some("MemberBundle"))
    {
        return Err(BulkInputError::NotParameters);
    }
    if list.is_empty() {
        return Err(BulkInputError::Empty);
    }
    if list.len() > MAX_MEMBERS {
        return Err(BulkInputError::TooMany);
    }
    list.iter()
        .enumerate()
        .map(|(index, bundle)| {
            member(bundle).map_err(|e| BulkInputError::Member {
                index,
                problem: e.to_string(),
            })
        })
        .collect()
}

fn member(bundle: &Value) -> Result<MemberBundle, InputError> {
    let parts = bundle
        .get("part")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let one = |name: &'static str, kind: &'static str| -> Result<Value, InputError> {
        let mut found = parts
            .iter()
            .filter(|p| p.get("name").and_then(Value::as_str) == Some(name));
        match (found.next(), found.next()) {
            (Some(p), None) => {
                let resource = p.get("resource").ok_or(InputError::Missing(name))?;
                if resource.get("resourceType").and_then(Value::as_str) != Some(kind) {
                    return Err(InputError::Invalid(
                        "MemberPatient, CoverageToMatch and Consent must be a Patient, a Coverage and a Consent",
                    ));
                }
                Ok(resource.clone())
            }
            _ => Err(InputError::Missing(name)),
        }
    };
    let member = MemberBundle {
        patient: one("MemberPatient", "Patient")?,
        coverage: one("CoverageToMatch", "Coverage")?,
        consent: one("Consent", "Consent")?,
    };
    // The rule's own input checks, now rather than in a chunk.
    MatchRequest::new(&member.patient, &member.coverage)?;
    let size = member.patient.to_string().len()
        + member.coverage.to_string().len()
        + member.consent.to_string().len();
    if size > MAX_MEMBER_BYTES {
        return Err(InputError::Invalid("a member's parts are too large"));
    }
    Ok(member)
}

/// Splits the members into chunks that each fit one key-value record.
pub fn chunks(members: &[MemberBundle]) -> Vec<Vec<Value>> {
    let mut out: Vec<Vec<Value>> = Vec::new();
    let mut bytes = 0;
    for m in members {
        let value = json!({"patient": m.patient, "coverage": m.coverage, "consent": m.consent});
        let size = value.to_string().len();
        let start_new = out
            .last()
            .is_none_or(|c| c.len() >= CHUNK_MEMBERS || bytes + size > CHUNK_BYTES);
        if start_new {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(last) = out.last_mut() {
            last.push(value);
        }
    }
    out
}

/// Stores a job's request chunks (before the job is queued).
pub async fn store_chunks<K: KeyValueStore + ?Sized>(
    kv: &K,
    job_id: &str,
    chunks: &[Vec<Value>],
    expires_at: i64,
) -> Result<(), ExportError> {
    for (n, chunk) in chunks.iter().enumerate() {
        let n = u32::try_from(n).map_err(|e| ExportError::Corrupt(e.to_string()))?;
        kv.put(
            REQUESTS,
            &chunk_key(job_id, n),
            &Value::Array(chunk.clone()),
            Some(expires_at),
        )
        .await?;
    }
    Ok(())
}

async fn request_chunk<K: KeyValueStore + ?Sized>(
    kv: &K,
    job_id: &str,
    chunk: u32,
) -> Result<Vec<MemberBundle>, ExportError> {
    let Some(entry) = kv.get(REQUESTS, &chunk_key(job_id, chunk)).await? else {
        return Err(ExportError::Corrupt(
            "the request's members are gone".into(),
        ));
    };
    Ok(entry
        .value
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| MemberBundle {
            patient: m["patient"].clone(),
            coverage: m["coverage"].clone(),
            consent: m["consent"].clone(),
        })
        .collect())
}

/// Where one member ended up (PDex's three result Groups).
pub use bulk_export::members::Verdict;

/// One chunk's result, recorded once.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChunkResult {
    /// Per member of the chunk, in order.
    pub verdicts: Vec<Verdict>,
    /// The matched ones, in order.
    pub matched: Vec<MatchedMember>,
}

/// Matches one chunk of `job` (run by the export workers); records its result.
pub async fn run_chunk<S>(
    store: &S,
    budget: &FailureBudget,
    job: &Job,
    item: &WorkItem,
) -> Result<(), ExportError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
{
    let namespace = results_namespace(&job.id);
    let key = format!("{:06}", item.slice);
    if KeyValueStore::get(store, &namespace, &key).await?.is_some() {
        return Ok(()); // a redelivery after the result was recorded
    }
    let members = request_chunk(store, &job.id, item.slice).await?;
    let now = fhir::clock::unix_now();
    let mut result = ChunkResult::default();
    let mut outcomes = [0usize; 4];
    for member in &members {
        let verdict = if budget
            .exhausted(store, &job.client_id, now)
            .await?
            .is_some()
        {
            outcomes[3] += 1;
            Verdict::NoMatch
        } else {
            let verdict = decide(store, member, now, &mut result.matched).await?;
            if verdict != Verdict::Matched {
                budget.record_failure(store, &job.client_id, now).await?;
            }
            verdict
        };
        outcomes[match verdict {
            Verdict::Matched => 0,
            Verdict::NoMatch => 1,
            Verdict::ConsentConstraint => 2,
        }] += 1;
        result.verdicts.push(verdict);
    }
    let value = serde_json::to_value(&result).map_err(|e| ExportError::Corrupt(e.to_string()))?;
    store
        .insert(&namespace, &key, &value, Some(job.expires_at))
        .await?;
    tracing::info!(target: "audit", job_id = %job.id, client_id = %job.client_id, slice = item.slice, matched = outcomes[0], not_matched = outcomes[1], consent_constrained = outcomes[2], throttled = outcomes[3], event = "member_match.bulk_chunk", "bulk member match chunk");
    Ok(())
}

async fn decide<S>(
    store: &S,
    member: &MemberBundle,
    now: i64,
    matched: &mut Vec<MatchedMember>,
) -> Result<Verdict, ExportError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
{
    let member_id = member.patient.get("id").and_then(Value::as_str);
    let Ok(policy) = consent::check(&member.consent, member_id, now.saturating_mul(1000)) else {
        return Ok(Verdict::ConsentConstraint);
    };
    let Ok(request) = MatchRequest::new(&member.patient, &member.coverage) else {
        return Ok(Verdict::NoMatch);
    };
    let MatchOutcome::Unique { patient_id, .. } = matching::find(store, &request).await? else {
        return Ok(Verdict::NoMatch);
    };
    if !member_consent::payer_to_payer::is_opted_in(store, &patient_id).await? {
        return Ok(Verdict::NoMatch);
    }
    matched.push(MatchedMember {
        patient: patient_id,
        policy,
        consent_end: member
            .consent
            .pointer("/provision/period/end")
            .and_then(Value::as_str)
            .map(str::to_owned),
    });
    Ok(Verdict::Matched)
}

/// The finished job's answer: creates the matched Group (once: its id follows from
/// the job's) and returns PDex's `Parameters`. `None` while a chunk is missing.
pub async fn answer<S>(store: &S, job: &Job) -> Result<Option<Value>, ExportError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
{
    let namespace = results_namespace(&job.id);
    let mut matched = Vec::new();
    let mut by_verdict: [Vec<Value>; 3] = Default::default();
    let mut position = 0usize;
    for slice in 0..job.slices {
        let Some(entry) = KeyValueStore::get(store, &namespace, &format!("{slice:06}")).await?
        else {
            return Ok(None);
        };
        let result: ChunkResult =
            serde_json::from_value(entry.value).map_err(|e| ExportError::Corrupt(e.to_string()))?;
        let asked = request_chunk(store, &job.id, slice).await?;
        let mut matched_here = result.matched.iter();
        for (member, verdict) in asked.iter().zip(&result.verdicts) {
            let contained_id = format!("m{position}");
            position += 1;
            let mut patient = member.patient.clone();
            patient["id"] = json!(contained_id);
            let entity = match verdict {
                Verdict::Matched => {
                    let Some(m) = matched_here.next() else {
                        continue;
                    };
                    json!({"reference": format!("Patient/{}", m.patient),
                           "extension": [{"url": MATCH_PARAMETERS, "valueReference": {"reference": format!("#{contained_id}")}}]})
                }
                _ => json!({"reference": format!("#{contained_id}"),
                            "extension": [{"url": MATCH_PARAMETERS, "valueReference": {"reference": format!("#{contained_id}")}}]}),
            };
            let slot = match verdict {
                Verdict::Matched => 0,
                Verdict::NoMatch => 1,
                Verdict::ConsentConstraint => 2,
            };
            by_verdict[slot].push(json!({"patient": patient, "member": {"entity": entity}}));
        }
        matched.extend(result.matched);
    }
    let group_id = format!("{}{}", members::ID_PREFIX, job.id);
    if members::get(store, &group_id).await?.is_none() {
        members::create_with_id(
            store,
            &group_id,
            &job.client_id,
            &matched,
            fhir::clock::unix_now(),
        )
        .await?;
    }
    let [matched_entries, no_match, constrained] = by_verdict;
    Ok(Some(json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "ResourceIdentifier", "resource": group_resource(&group_id, Verdict::Matched, matched_entries)},
            {"name": "NoMatch", "resource": group_resource(&format!("{group_id}-nomatch"), Verdict::NoMatch, no_match)},
            {"name": "ConsentConstraint", "resource": group_resource(&format!("{group_id}-consent"), Verdict::ConsentConstraint, constrained)},
        ]
    })))
}

pub use bulk_export::members::group_resource;

/// `GET /Group/{id}` of a match Group: its members as `Patient` references (the
/// submitted demographics are in the `$bulk-member-match` answer only).
pub async fn match_group_resource<K: KeyValueStore + ?Sized>(
    kv: &K,
    group: &members::MatchGroup,
) -> Result<Value, ExportError> {
    let entries = members::members(kv, group)
        .await?
        .into_iter()
        .map(|m| json!({"member": {"entity": {"reference": format!("Patient/{}", m.patient)}}}))
        .collect();
    Ok(group_resource(&group.id, Verdict::Matched, entries))
}

/// Runs `$bulk-member-match` chunks for the export workers (locally the tokio queue,
/// on AWS `bulk-worker`), over `store`, spending the clients' failed-match budgets.
pub struct BulkMatchRunner<S> {
    store: Arc<S>,
    budget: FailureBudget,
}

impl<S> BulkMatchRunner<S> {
    pub fn new(store: Arc<S>, budget: FailureBudget) -> Self {
        BulkMatchRunner { store, budget }
    }
}

impl<S: ResourceStore + KeyValueStore + 'static> JobRunner for BulkMatchRunner<S> {
    fn run<'a>(
        &'a self,
        job: &'a Job,
        item: &'a WorkItem,
    ) -> BoxFuture<'a, Result<(), ExportError>> {
        Box::pin(run_chunk(self.store.as_ref(), &self.budget, job, item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(family: &str, parts: &[&str]) -> Value {
        let mut part = Vec::new();
        for name in parts {
            let resource = match *name {
                "MemberPatient" => json!({"resourceType": "Patient", "id": "1",
                    "name": [{"family": family, "given": ["Ana"]}], "birthDate": "1985-04-12", "gender": "female"}),
                "CoverageToMatch" => json!({"resourceType": "Coverage", "subscriberId": "S1",
                    "payor": [{"identifier": {"value": "PLAN01"}}]}),
                _ => json!({"resourceType": "Consent", "status": "active"}),
            };
            part.push(json!({"name": name, "resource": resource}));
        }
        json!({"name": "MemberBundle", "part": part})
    }

    fn body(bundles: Vec<Value>) -> Vec<u8> {
        json!({"resourceType": "Parameters", "parameter": bundles})
            .to_string()
            .into_bytes()
    }

    const ALL: &[&str] = &["MemberPatient", "CoverageToMatch", "Consent"];

    #[test]
    fn each_member_bundle_needs_its_three_parts_and_a_bad_one_is_named() {
        let members = parse(&body(vec![bundle("Núñez", ALL), bundle("Lee", ALL)])).unwrap();
        assert_eq!(members.len(), 2);
        let missing = parse(&body(vec![
            bundle("Núñez", ALL),
            bundle("Lee", &["MemberPatient", "Consent"]),
        ]));
        assert!(
            matches!(&missing, Err(BulkInputError::Member { index: 1, problem }) if problem.contains("CoverageToMatch")),
            "{missing:?}"
        );
        assert_eq!(parse(&body(vec![])), Err(BulkInputError::Empty));
        assert_eq!(parse(b"{}"), Err(BulkInputError::NotParameters));
        let other = json!({"resourceType": "Parameters", "parameter": [{"name": "MemberPatient"}]});
        assert_eq!(
            parse(other.to_string().as_bytes()),
            Err(BulkInputError::NotParameters)
        );
        let too_many = vec![bundle("Núñez", ALL); MAX_MEMBERS + 1];
        assert_eq!(parse(&body(too_many)), Err(BulkInputError::TooMany));
    }

    #[test]
    fn members_are_stored_in_chunks_of_at_most_a_hundred() {
        let members = parse(&body(vec![bundle("Núñez", ALL); 250])).unwrap();
        let sizes: Vec<usize> = chunks(&members).iter().map(Vec::len).collect();
        assert_eq!(sizes, [100, 100, 50]);
    }

    /// The figure issue #13 asks for: a `$bulk-member-match` of N members (default
    /// 1,000) over redb, every member this plan's and opted in: members/s and peak RSS.
    /// Run: `P2P_BENCH_MEMBERS=1000 cargo test --release -p payer-to-payer --lib
    /// bulk_member_match_benchmark -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "benchmark: seeds a store"]
    async fn bulk_member_match_benchmark() {
        use fhir::ResourceType;
        use fhir_store::{ResourceWrite, WriteCondition};
        let n: usize = std::env::var("P2P_BENCH_MEMBERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000);
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(store_redb::RedbStore::open(dir.path().join("db")).unwrap());
        let put = |t: ResourceType, body: Value| {
            let id = body["id"].as_str().unwrap().to_owned();
            ResourceWrite::indexed(t, id, body, WriteCondition::Always)
        };
        ResourceStore::put(
            store.as_ref(),
            put(
                ResourceType::Organization,
                json!({"resourceType": "Organization", "id": "org-plan", "identifier": [{"value": "PLAN01"}]}),
            ))
            .await
            .unwrap();
        let seeding = std::time::Instant::now();
        let mut bundles = Vec::with_capacity(n);
        for i in 0..n {
            let patient = format!("bm-{i:06}");
            let family = format!("Family{i}");
            ResourceStore::put(
                store.as_ref(),
                put(ResourceType::Patient, json!({"resourceType": "Patient", "id": patient,
                    "name": [{"family": family, "given": ["Ana"]}], "birthDate": "1985-04-12", "gender": "female"})))
                .await
                .unwrap();
            ResourceStore::put(
                store.as_ref(),
                put(
                    ResourceType::Coverage,
                    json!({"resourceType": "Coverage", "id": format!("c-{patient}"),
                    "status": "active", "subscriberId": format!("SUB-{i:06}"),
                    "beneficiary": {"reference": format!("Patient/{patient}")},
                    "payor": [{"reference": "Organization/org-plan"}]}),
                ),
            )
            .await
            .unwrap();
            member_consent::payer_to_payer::set_opt_in(
                store.as_ref(),
                &patient,
                true,
                member_consent::ChangedBy::Plan,
            )
            .await
            .unwrap();
            bundles.push(json!({"name": "MemberBundle", "part": [
                {"name": "MemberPatient", "resource": {"resourceType": "Patient", "id": "1",
                    "name": [{"family": family, "given": ["Ana"]}], "birthDate": "1985-04-12", "gender": "female"}},
                {"name": "CoverageToMatch", "resource": {"resourceType": "Coverage", "subscriberId": format!("SUB-{i:06}"),
                    "payor": [{"identifier": {"value": "PLAN01"}}]}},
                {"name": "Consent", "resource": {"resourceType": "Consent", "status": "active",
                    "patient": {"reference": "Patient/1"}, "performer": [{"reference": "Patient/1"}],
                    "policy": [{"uri": format!("{}#regular", consent::POLICY_BASE)}],
                    "provision": {"type": "permit", "period": {"start": "2020-01-01", "end": "2099-12-31"}}}}
            ]}));
        }
        let seeded = seeding.elapsed();
        let body = json!({"resourceType": "Parameters", "parameter": bundles}).to_string();
        let started = std::time::Instant::now();
        let members = parse(body.as_bytes()).unwrap();
        let chunks = chunks(&members);
        let job = Job {
            id: bulk_export::job::new_job_id().unwrap(),
            client_id: "svc-bench".into(),
            source: bulk_export::job::Source::BulkMemberMatch {
                members: u32::try_from(n).unwrap(),
            },
            request: bulk_export::request::ExportRequest {
                types: Vec::new(),
                since: None,
                type_filters: Vec::new(),
                provenance: false,
            },
            request_url: String::new(),
            transaction_time: fhir::Instant::now().to_string(),
            slices: u32::try_from(chunks.len()).unwrap(),
            status: bulk_export::JobStatus::Running,
            output: Vec::new(),
            error_files: Vec::new(),
            failure: None,
            expires_at: fhir::clock::unix_now() + 3600,
        };
        let expires = job.expires_at;
        store_chunks(store.as_ref(), &job.id, &chunks, expires)
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for slice in 0..job.slices {
            let (store, job) = (Arc::clone(&store), job.clone());
            tasks.spawn(async move {
                let item = WorkItem::new(job.id.clone(), slice);
                run_chunk(store.as_ref(), &FailureBudget::default(), &job, &item)
                    .await
                    .unwrap();
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let answer = answer(store.as_ref(), &job).await.unwrap().unwrap();
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(answer["parameter"][0]["resource"]["quantity"], n);
        let peak_kb: u64 = std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        println!(
            "bulk member match: {n} members in {seconds:.2} s ({:.0} members/s; {} chunks, 4 at a time; seeding {:.1} s), peak RSS {} MB",
            n as f64 / seconds,
            job.slices,
            seeded.as_secs_f64(),
            peak_kb / 1024
        );
    }
}
