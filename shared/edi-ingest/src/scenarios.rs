//! The ingest scenarios every store adapter must pass, as functions generic over
//! the store (feature `scenarios`): redb runs them in this crate's tests, DynamoDB
//! and S3 on moto in `functions/edi-ingest-fn`. Each panics with a message on failure.

use std::collections::BTreeMap;
use std::sync::Arc;

use edi_fhir::{MappingConfig, NetworkStatus, SetOutcome};
use fhir::ResourceType;
use fhir_store::{KeyValueStore, ResourceStore};
use serde_json::Value;

use crate::ledger::{self, LedgerEntry};
use crate::{
    Disposition, FileIdentity, FileStatus, IngestConfig, IngestOutcome, Ingested, Ingestor,
    ObjectStore,
};

/// The plan the fixtures were written for.
pub fn mapping() -> MappingConfig {
    MappingConfig {
        payer_id: "999996666".into(),
        payer_name: "KEY INSURANCE COMPANY".into(),
        default_network_status: NetworkStatus::InNetwork,
    }
}

pub fn config() -> IngestConfig {
    let mut config = IngestConfig::new(mapping());
    config.production = false;
    config
}

/// The valid fixtures of the `x12` crate, by name.
pub const FIXTURES: &[(&str, &[u8])] = &[
    (
        "837p.x12",
        include_bytes!("../../x12/tests/fixtures/837p.x12"),
    ),
    (
        "837p_cob.x12",
        include_bytes!("../../x12/tests/fixtures/837p_cob.x12"),
    ),
    (
        "837i.x12",
        include_bytes!("../../x12/tests/fixtures/837i.x12"),
    ),
    (
        "837d.x12",
        include_bytes!("../../x12/tests/fixtures/837d.x12"),
    ),
    (
        "835.x12",
        include_bytes!("../../x12/tests/fixtures/835.x12"),
    ),
    (
        "834.x12",
        include_bytes!("../../x12/tests/fixtures/834.x12"),
    ),
    (
        "278_pended.x12",
        include_bytes!("../../x12/tests/fixtures/278_pended.x12"),
    ),
    (
        "278_approved.x12",
        include_bytes!("../../x12/tests/fixtures/278_approved.x12"),
    ),
    (
        "278_partial.x12",
        include_bytes!("../../x12/tests/fixtures/278_partial.x12"),
    ),
    (
        "278_denied.x12",
        include_bytes!("../../x12/tests/fixtures/278_denied.x12"),
    ),
    (
        "278_cancelled.x12",
        include_bytes!("../../x12/tests/fixtures/278_cancelled.x12"),
    ),
    (
        "278_request.x12",
        include_bytes!("../../x12/tests/fixtures/278_request.x12"),
    ),
    (
        "278_request_response.x12",
        include_bytes!("../../x12/tests/fixtures/278_request_response.x12"),
    ),
    (
        "278_contact_no_action.x12",
        include_bytes!("../../x12/tests/fixtures/278_contact_no_action.x12"),
    ),
];

/// One fixture by name.
fn named(name: &str) -> &'static [u8] {
    FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[][..], |(_, bytes)| *bytes)
}

/// A 278 response that pends an authorization, then the one that approves
/// it, through the pipeline: each is reported and acknowledged as a claim
/// file is (999 group HI, set 278 accepted), and the authorization is one
/// ExplanationOfBenefit with two versions.
pub async fn prior_authorization_pended_then_approved<
    S: ResourceStore + KeyValueStore + 'static,
>(
    store: Arc<S>,
) {
    let ingestor = Ingestor::new(Arc::clone(&store), config());
    let mut id = None;
    for (version, name) in [(1, "278_pended.x12"), (2, "278_approved.x12")] {
        let bytes = named(name);
        let done = ingestor
            .ingest_bytes(&FileIdentity::content(name, bytes), bytes.to_vec())
            .await;
        let done = ingested(done.unwrap_or_else(|e| panic!("{name}: {e}")), name);
        assert_eq!(done.report.status, FileStatus::Accepted, "{name}");
        let set = &done.report.transaction_sets[0];
        assert_eq!(
            (
                set.transaction_type.as_str(),
                set.implementation_guide.as_str()
            ),
            ("278", "005010X217")
        );
        assert_eq!(set.claims, 1, "one patient event");
        let ack = done.ack.unwrap_or_default();
        for wanted in ["AK1*HI*", "AK2*278*0001*005010X217", "IK5*A", "AK9*A*1*1*1"] {
            assert!(ack.contains(wanted), "{name}: {wanted} not in {ack}");
        }
        let eob = edi_fhir::convert(bytes, &mapping())
            .changes()
            .find(|c| c.resource_type == ResourceType::ExplanationOfBenefit)
            .map(|c| c.id.clone())
            .unwrap_or_default();
        assert_eq!(
            id.get_or_insert_with(|| eob.clone()),
            &eob,
            "the same record"
        );
        let record =
            ResourceStore::get(store.as_ref(), ResourceType::ExplanationOfBenefit, &eob).await;
        let record = record
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("{name}: not stored"));
        assert_eq!(record.version_id, version, "{name}");
        let body: Value = serde_json::from_str(&record.body).unwrap_or(Value::Null);
        let outcome = if version == 1 { "queued" } else { "complete" };
        assert_eq!(
            (&body["use"], &body["outcome"]),
            (&Value::from("preauthorization"), &Value::from(outcome))
        );
    }
}

macro_rules! bad {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("../../x12/tests/bad/", $name)))),*]
    };
}

/// The `x12` crate's bad-input corpus.
pub const BAD: &[(&str, &[u8])] = bad!(
    "alphanumeric_terminator.x12",
    "ambiguous_delimiters.x12",
    "bad_hl_parent.x12",
    "duplicate_control_number.x12",
    "huge_element.x12",
    "invalid_utf8.x12",
    "lowercase_segment.x12",
    "mismatched_ge02.x12",
    "mismatched_iea02.x12",
    "mismatched_se02.x12",
    "mixed_delimiters.x12",
    "not_x12.x12",
    "short_isa.x12",
    "truncated.x12",
    "unknown_transaction.x12",
    "utf16.x12",
    "version_4010.x12",
    "wrong_ge_count.x12",
    "wrong_iea_count.x12",
    "wrong_se_count.x12",
);

/// The 837P fixture as a sender still on the 2009 base guide writes it: GS08
/// and ST03 say `005010X222`, before errata A1.
pub fn base_5010_837p() -> Vec<u8> {
    String::from_utf8_lossy(FIXTURES[0].1)
        .replace("005010X222A1", "005010X222")
        .into_bytes()
}

/// The 837P fixture with a GS08 that names another guide than its ST03.
pub fn gs08_disagreeing_837p() -> Vec<u8> {
    String::from_utf8_lossy(FIXTURES[0].1)
        .replacen("*X*005010X222A1~", "*X*005010X223A2~", 1)
        .into_bytes()
}

/// The 837P fixture with a second transaction set appended to its group: a copy of
/// the first with ST02/SE02 `0022`, a different claim, and a wrong SE01. The first
/// set is valid, the second is rejected with IK502 = 4.
pub fn one_good_one_bad() -> Vec<u8> {
    let text = String::from_utf8_lossy(FIXTURES[0].1).into_owned();
    let segments: Vec<&str> = text
        .split('~')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let st = segments
        .iter()
        .position(|s| s.starts_with("ST*"))
        .unwrap_or(0);
    let se = segments
        .iter()
        .position(|s| s.starts_with("SE*"))
        .unwrap_or(0);
    let mut out: Vec<String> = segments[..=se].iter().map(|s| (*s).to_owned()).collect();
    for segment in &segments[st..se] {
        let copy = match *segment {
            s if s.starts_with("ST*") => s.replacen("*0021*", "*0022*", 1),
            s if s.starts_with("CLM*") => s.replacen("CLM*", "CLM*X", 1),
            s => s.to_owned(),
        };
        out.push(copy);
    }
    out.push(format!("SE*{}*0022", se - st + 5));
    for segment in &segments[se + 1..] {
        out.push(segment.replacen("GE*1*", "GE*2*", 1));
    }
    let mut bytes = out.join("~\n").into_bytes();
    bytes.extend_from_slice(b"~\n");
    bytes
}

/// A larger file for the crash test: many claims, so half of them is a real prefix.
pub fn many_claims() -> Vec<u8> {
    x12::generate::generate_837p(40, 7)
}

/// One interchange with several large transaction sets, for the streaming tests:
/// `sets` generated 837Ps of `claims` claims each (different seeds; the claim
/// numbers repeat, so later sets update earlier sets' claims) in one functional
/// group, then an 835 of `claims` claims and an 834 of `claims` members, each in a
/// group of its own. The 837Ps' subscribers take turns among seven member ids, so
/// a member recurs all through a set (written in several batches of it). With
/// `bad_set = Some(i)`, the `i`-th 837P has a wrong SE01, so it alone is rejected.
pub fn several_large_sets(sets: usize, claims: usize, bad_set: Option<usize>) -> Vec<u8> {
    let groups: Vec<Vec<Vec<u8>>> = vec![
        (0..sets)
            .map(|i| x12::generate::generate_837p(claims, 100 + i as u64))
            .collect(),
        vec![x12::generate::generate_835(claims, 7)],
        vec![x12::generate::generate_834(claims, 8)],
    ];
    let mut out: Vec<String> = Vec::new();
    let mut isa = None;
    let mut control = 0;
    let mut group_count = 0;
    let mut subscribers = 0;
    for (g, files) in groups.iter().enumerate() {
        let gs06 = 201 + g;
        let mut gs = None;
        let mut body = Vec::new();
        for file in files.iter() {
            let text = String::from_utf8_lossy(file).into_owned();
            let segments: Vec<&str> = text
                .split('~')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            control += 1;
            let number = format!("{control:04}");
            for segment in segments {
                let mut fields: Vec<String> = segment.split('*').map(str::to_owned).collect();
                match fields.first().map(String::as_str) {
                    Some("ISA") => {
                        isa.get_or_insert_with(|| segment.to_owned());
                    }
                    Some("GS") => {
                        if let Some(f) = fields.get_mut(6) {
                            *f = gs06.to_string();
                        }
                        gs.get_or_insert_with(|| fields.join("*"));
                    }
                    Some("ST") => {
                        if let Some(f) = fields.get_mut(2) {
                            f.clone_from(&number);
                        }
                        body.push(fields.join("*"));
                    }
                    Some("SE") => {
                        if let Some(f) = fields.get_mut(2) {
                            f.clone_from(&number);
                        }
                        if g == 0
                            && bad_set == Some(control - 1)
                            && let Some(f) = fields.get_mut(1)
                        {
                            *f = "2".to_owned();
                        }
                        body.push(fields.join("*"));
                    }
                    Some("NM1") if g == 0 && fields.get(1).map(String::as_str) == Some("IL") => {
                        subscribers += 1;
                        if let Some(f) = fields.get_mut(9) {
                            *f = format!("M{:09}", subscribers % 7);
                        }
                        body.push(fields.join("*"));
                    }
                    Some("GE" | "IEA") | None => {}
                    Some(_) => body.push(segment.to_owned()),
                }
            }
        }
        if let Some(gs) = gs {
            group_count += 1;
            out.push(gs);
            out.append(&mut body);
            out.push(format!("GE*{}*{gs06}", files.len()));
        }
    }
    let isa = isa.unwrap_or_default();
    let isa13 = isa.split('*').nth(13).unwrap_or("000000101").to_owned();
    out.insert(0, isa);
    out.push(format!("IEA*{group_count}*{isa13}"));
    let mut bytes = out.join("~\n").into_bytes();
    bytes.extend_from_slice(b"~\n");
    bytes
}

/// Every resource a file's accepted sets touch, as stored now (without `meta`).
pub async fn snapshot<S: ResourceStore>(
    store: &S,
    bytes: &[u8],
) -> BTreeMap<(ResourceType, String), Value> {
    let conversion = edi_fhir::convert(bytes, &mapping());
    let mut out = BTreeMap::new();
    for change in conversion
        .transaction_sets
        .iter()
        .flat_map(accepted_changes)
    {
        let key = (change.resource_type, change.id.clone());
        if out.contains_key(&key) {
            continue;
        }
        let record = store
            .get(key.0, &key.1)
            .await
            .unwrap_or_else(|e| panic!("get {key:?}: {e}"));
        if let Some(record) = record {
            let mut body: Value = serde_json::from_str(&record.body).unwrap_or(Value::Null);
            if let Some(map) = body.as_object_mut() {
                map.remove("meta");
            }
            out.insert(key, body);
        }
    }
    out
}

/// Current version of every resource the file touches.
pub async fn versions<S: ResourceStore>(
    store: &S,
    bytes: &[u8],
) -> BTreeMap<(ResourceType, String), u64> {
    let conversion = edi_fhir::convert(bytes, &mapping());
    let mut out = BTreeMap::new();
    for change in conversion
        .transaction_sets
        .iter()
        .flat_map(accepted_changes)
    {
        let key = (change.resource_type, change.id.clone());
        if let Ok(Some(record)) = store.get(key.0, &key.1).await {
            out.insert(key, record.version_id);
        }
    }
    out
}

fn accepted_changes(set: &edi_fhir::TransactionSetResult) -> &[edi_fhir::Change] {
    match &set.outcome {
        SetOutcome::Accepted { changes, .. } => changes,
        SetOutcome::Rejected { .. } => &[],
    }
}

fn ingested(outcome: IngestOutcome, what: &str) -> Ingested {
    match outcome {
        IngestOutcome::Ingested(done) => *done,
        IngestOutcome::AlreadyDone { .. } => {
            panic!("{what}: expected a fresh ingest, the ledger said done")
        }
    }
}

/// Every fixture ingests as accepted; ingesting it again is a no-op (no new
/// versions), reported as already done.
pub async fn every_fixture_twice_is_a_no_op<S: ResourceStore + KeyValueStore + 'static>(
    store: Arc<S>,
) {
    let ingestor = Ingestor::new(Arc::clone(&store), config());
    for (name, bytes) in FIXTURES {
        let identity = FileIdentity::content(*name, bytes);
        let first = ingestor.ingest_bytes(&identity, bytes.to_vec()).await;
        let first = ingested(first.unwrap_or_else(|e| panic!("{name}: {e}")), name);
        assert_eq!(
            first.report.status,
            FileStatus::Accepted,
            "{name}: {}",
            first.report.to_json()
        );
        assert!(first.report.totals.claims > 0, "{name}");
        let before = versions(store.as_ref(), bytes).await;
        assert!(!before.is_empty(), "{name}: nothing stored");
        let again = ingestor.ingest_bytes(&identity, bytes.to_vec()).await;
        assert!(
            matches!(
                again,
                Ok(IngestOutcome::AlreadyDone {
                    disposition: Disposition::Processed,
                    ..
                })
            ),
            "{name}: {again:?}"
        );
        assert_eq!(
            versions(store.as_ref(), bytes).await,
            before,
            "{name}: the second ingest wrote"
        );
    }
}

/// The same object ingested twice through an object store (two S3 events for one
/// upload): the second is a no-op and writes no new versions.
pub async fn same_object_twice_is_a_no_op<S, O>(store: Arc<S>, objects: &O, key: &str, bytes: &[u8])
where
    S: ResourceStore + KeyValueStore + 'static,
    O: ObjectStore,
{
    let ingestor = Ingestor::new(Arc::clone(&store), config());
    let first = ingestor
        .ingest_object(objects, key)
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    assert_eq!(first.disposition(), Disposition::Processed, "{first:?}");
    let before = versions(store.as_ref(), bytes).await;
    let second = ingestor
        .ingest_object(objects, key)
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    assert!(
        matches!(second, IngestOutcome::AlreadyDone { .. }),
        "{second:?}"
    );
    assert_eq!(versions(store.as_ref(), bytes).await, before);
}

/// A run that crashed after applying half the changes (its claim left stale in the
/// ledger) is taken over, re-run from the start, and ends exactly where a clean run
/// on an empty store ends.
pub async fn crash_mid_file_then_rerun_matches_a_clean_run<
    S: ResourceStore + KeyValueStore + 'static,
>(
    crashed: Arc<S>,
    clean: Arc<S>,
) {
    let bytes = many_claims();
    let identity = FileIdentity::content("many.x12", &bytes);
    let changes: Vec<edi_fhir::Change> = edi_fhir::convert(&bytes, &mapping())
        .changes()
        .cloned()
        .collect();
    assert!(changes.len() > 20, "the crash needs a real half");
    crate::apply::apply_set(crashed.as_ref(), &changes[..changes.len() / 2], 4)
        .await
        .unwrap_or_else(|e| panic!("half: {e}"));
    let stale = LedgerEntry::InProgress {
        file: identity.label().to_owned(),
        started_at: fhir_store::kv::unix_now() - 3600,
    };
    let stale = serde_json::to_value(&stale).unwrap_or(Value::Null);
    let inserted = crashed
        .insert(ledger::NAMESPACE, identity.ledger_key(), &stale, None)
        .await;
    assert!(matches!(inserted, Ok(true)), "{inserted:?}");

    let resumed = Ingestor::new(Arc::clone(&crashed), config())
        .ingest_bytes(&identity, bytes.clone())
        .await;
    let resumed = ingested(resumed.unwrap_or_else(|e| panic!("resume: {e}")), "resume");
    assert!(resumed.resumed, "the stale claim must be taken over");
    assert!(
        resumed.report.totals.resources.unchanged > 0,
        "the crashed half must be no-ops"
    );

    let clean_run = Ingestor::new(Arc::clone(&clean), config())
        .ingest_bytes(&identity, bytes.clone())
        .await;
    let clean_run = ingested(clean_run.unwrap_or_else(|e| panic!("clean: {e}")), "clean");
    assert_eq!(resumed.report.totals.claims, clean_run.report.totals.claims);
    let (a, b) = (
        snapshot(crashed.as_ref(), &bytes).await,
        snapshot(clean.as_ref(), &bytes).await,
    );
    assert_eq!(a.len(), b.len());
    assert!(
        a == b,
        "a re-run after a crash must end in the clean run's state"
    );
}

/// A fresh claim by another run makes a second ingest back off with a retryable
/// error, and leaves the claim alone.
pub async fn a_fresh_claim_is_busy<S: ResourceStore + KeyValueStore + 'static>(store: Arc<S>) {
    let bytes = FIXTURES[0].1;
    let identity = FileIdentity::content("busy.x12", bytes);
    let claim = ledger::claim(store.as_ref(), &identity, fhir_store::kv::unix_now(), 600).await;
    assert!(
        matches!(
            claim,
            Ok(ledger::Claim::Owned {
                version: 1,
                resumed: false
            })
        ),
        "{claim:?}"
    );
    let outcome = Ingestor::new(Arc::clone(&store), config())
        .ingest_bytes(&identity, bytes.to_vec())
        .await;
    match outcome {
        Err(e) => assert!(e.is_retryable(), "{e}"),
        Ok(o) => panic!("expected Busy, got {o:?}"),
    }
    assert!(
        versions(store.as_ref(), bytes).await.is_empty(),
        "a busy file must not be applied"
    );
}

/// Every bad input is reported with positioned, explained problems, and nothing
/// from a rejected set (or a rejected file) is stored.
pub async fn bad_inputs_are_rejected_and_store_nothing<
    S: ResourceStore + KeyValueStore + 'static,
>(
    store: Arc<S>,
) {
    let ingestor = Ingestor::new(Arc::clone(&store), config());
    // The one partly valid file goes last: what it applies shares ids with the others.
    let partly_valid = "duplicate_control_number.x12";
    let last = BAD.iter().filter(|(n, _)| *n == partly_valid);
    for (name, bytes) in BAD.iter().filter(|(n, _)| *n != partly_valid).chain(last) {
        let identity = FileIdentity::content(*name, bytes);
        let outcome = ingestor.ingest_bytes(&identity, bytes.to_vec()).await;
        let done = ingested(outcome.unwrap_or_else(|e| panic!("{name}: {e}")), name);
        let report = &done.report;
        let problems: Vec<&edi_fhir::Problem> = report
            .file_problems
            .iter()
            .chain(report.transaction_sets.iter().flat_map(|s| &s.problems))
            .collect();
        assert!(!problems.is_empty(), "{name}: no problem reported");
        assert!(
            problems
                .iter()
                .all(|p| !p.message.is_empty() && !p.code.is_empty()),
            "{name}"
        );
        if *name == partly_valid {
            // The first set with the number is valid and applied; the repeat is not.
            assert_eq!(report.status, FileStatus::PartiallyAccepted, "{name}");
            let repeat = &report.transaction_sets[1];
            assert!(
                !repeat.accepted && repeat.problems.iter().any(|p| p.code == "23"),
                "{name}"
            );
            continue;
        }
        assert_eq!(
            report.status,
            FileStatus::Rejected,
            "{name}: {}",
            report.to_json()
        );
        assert_eq!(report.disposition(), Disposition::Rejected, "{name}");
        assert!(
            versions(store.as_ref(), bytes).await.is_empty(),
            "{name}: something was stored"
        );
        assert_eq!(report.totals.resources, Default::default(), "{name}");
    }
}

/// A base-5010 file (and one whose GS08 disagrees with ST03) is applied like
/// its errata version, with a warning in the report and a clean 999 (a warning
/// is no IK3/IK4 error).
pub async fn base_5010_is_applied_with_a_warning<S: ResourceStore + KeyValueStore + 'static>(
    store: Arc<S>,
) {
    for (name, bytes, warned) in [
        ("base.x12", base_5010_837p(), "005010X222A1"),
        ("disagreeing.x12", gs08_disagreeing_837p(), "ST03"),
    ] {
        let identity = FileIdentity::content(name, &bytes);
        let outcome = Ingestor::new(Arc::clone(&store), config())
            .ingest_bytes(&identity, bytes)
            .await;
        let done = ingested(outcome.unwrap_or_else(|e| panic!("{name}: {e}")), name);
        let report = &done.report;
        assert_eq!(report.status, FileStatus::Accepted, "{}", report.to_json());
        let set = &report.transaction_sets[0];
        assert_eq!(set.implementation_guide, "005010X222A1");
        assert!(set.problems.is_empty(), "{}", report.to_json());
        assert!(
            set.warnings.iter().any(|w| w.message.contains(warned)),
            "{name}: {}",
            report.to_json()
        );
        let ack = done.ack.unwrap_or_default();
        assert!(
            ack.contains("IK5*A~") && ack.contains("AK9*A*1*1*1~"),
            "{ack}"
        );
        assert!(!ack.contains("IK3") && !ack.contains("IK4"), "{ack}");
    }
}

/// One good and one bad set: the good one is applied, the bad one is reported in
/// full in the report and in the 999 (IK5*R, AK9*P).
pub async fn good_set_applied_bad_set_reported<S: ResourceStore + KeyValueStore + 'static>(
    store: Arc<S>,
) -> Ingested {
    let bytes = one_good_one_bad();
    let identity = FileIdentity::content("mixed.x12", &bytes);
    let outcome = Ingestor::new(Arc::clone(&store), config())
        .ingest_bytes(&identity, bytes.clone())
        .await;
    let done = ingested(outcome.unwrap_or_else(|e| panic!("mixed: {e}")), "mixed");
    let report = &done.report;
    assert_eq!(
        report.status,
        FileStatus::PartiallyAccepted,
        "{}",
        report.to_json()
    );
    let [good, bad] = report.transaction_sets.as_slice() else {
        panic!("two sets expected: {}", report.to_json());
    };
    assert!(
        good.accepted && good.claims == 1 && good.resources.created > 0,
        "{}",
        report.to_json()
    );
    assert!(!bad.accepted, "{}", report.to_json());
    let problem = bad
        .problems
        .first()
        .unwrap_or_else(|| panic!("no problem: {}", report.to_json()));
    assert_eq!(problem.segment_id.as_deref(), Some("SE"));
    assert!(problem.segment_position.is_some() && problem.file_segment_position.is_some());
    assert_eq!(problem.code, "4");
    let ack = done.ack.clone().unwrap_or_default();
    assert!(ack.contains("AK2*837*0021*005010X222A1~\nIK5*A~"), "{ack}");
    assert!(
        ack.contains("AK2*837*0022*005010X222A1~\nIK5*R*4~"),
        "{ack}"
    );
    assert!(ack.contains("AK9*P*2*2*1~"), "{ack}");
    // Only the good set's claim is stored.
    let stored = snapshot(store.as_ref(), &bytes).await;
    let eobs: Vec<_> = stored
        .keys()
        .filter(|(t, _)| *t == ResourceType::ExplanationOfBenefit)
        .collect();
    assert_eq!(eobs.len(), 1, "{eobs:?}");
    done
}

/// The pipeline's settings with small batches, so that a large set is written in
/// many of them.
pub fn small_batches() -> IngestConfig {
    let mut config = config();
    config.batch_changes = 64;
    config
}

/// What a file stores in an empty store according to `edi_fhir::convert` alone
/// (every change folded in memory), without `meta`.
pub fn folded_in_memory(bytes: &[u8]) -> BTreeMap<(ResourceType, String), Value> {
    let conversion = edi_fhir::convert(bytes, &mapping());
    let mut folded = edi_fhir::fold(conversion.changes());
    for body in folded.values_mut() {
        if let Some(map) = body.as_object_mut() {
            map.remove("meta");
        }
    }
    folded
}

/// The 999 without its envelope (ISA, GS, GE, IEA carry dates and control numbers).
pub fn ack_body(ack: &str) -> Vec<&str> {
    ack.split('~')
        .map(str::trim)
        .filter(|s| {
            !s.is_empty()
                && !["ISA*", "GS*", "GE*", "IEA*"]
                    .iter()
                    .any(|p| s.starts_with(p))
        })
        .collect()
}

/// `bytes`, stored in `objects` as `key`, ingested through the object store in small
/// batches ([`small_batches`]) into `streamed`, and from memory in one batch per set
/// into `in_memory` (any store: the stored bodies are compared without `meta`): the two reports are the same (but for the file's name), so are
/// the 999s' bodies and the stored resources, and those are what
/// `edi_fhir::convert` folds the file to in memory. Returns the streamed run.
pub async fn streamed_object_matches_in_memory<S, T, O>(
    streamed: Arc<S>,
    in_memory: Arc<T>,
    objects: &O,
    key: &str,
    bytes: &[u8],
) -> Ingested
where
    S: ResourceStore + KeyValueStore + 'static,
    T: ResourceStore + KeyValueStore + 'static,
    O: ObjectStore,
{
    let outcome = Ingestor::new(Arc::clone(&streamed), small_batches())
        .ingest_object(objects, key)
        .await;
    let from_object = ingested(outcome.unwrap_or_else(|e| panic!("{key}: {e}")), key);
    let mut whole_sets = config();
    whole_sets.batch_changes = 1 << 16;
    let identity = FileIdentity::content("in-memory.x12", bytes);
    let outcome = Ingestor::new(Arc::clone(&in_memory), whole_sets)
        .ingest_bytes(&identity, bytes.to_vec())
        .await;
    let from_bytes = ingested(
        outcome.unwrap_or_else(|e| panic!("in memory: {e}")),
        "in memory",
    );

    let mut renamed = from_bytes.report.clone();
    renamed.file.clone_from(&from_object.report.file);
    assert!(
        from_object.report == renamed,
        "the streamed report differs from the in-memory one:\n{}\n{}",
        from_object.report.to_json(),
        renamed.to_json()
    );
    let (a, b) = (
        from_object.ack.as_deref().unwrap_or_default(),
        from_bytes.ack.as_deref().unwrap_or_default(),
    );
    assert_eq!(ack_body(a), ack_body(b));

    let expected = folded_in_memory(bytes);
    assert!(!expected.is_empty(), "{key}: nothing to store");
    let stored = snapshot(streamed.as_ref(), bytes).await;
    assert_eq!(stored.len(), expected.len(), "{key}: resource count");
    assert!(
        stored == expected,
        "{key}: the streamed store differs from the in-memory fold"
    );
    assert!(
        snapshot(in_memory.as_ref(), bytes).await == expected,
        "{key}: the in-memory store differs from the in-memory fold"
    );
    from_object
}
