//! Export slices against the embedded store: a worker that crashes mid-slice is
//! retried, and the finished export holds each resource exactly once.

use std::sync::{Arc, Mutex};

use bulk_export::job::{self, Job, JobStatus, Source, WorkItem, WorkQueue};
use bulk_export::request::{EXPORT_TYPES, ExportRequest};
use bulk_export::testing::{FailOnce, eob};
use bulk_export::worker::run_slice;
use bulk_export::{Download, ExportError, ExportFiles, LocalFiles};
use fhir::ResourceType;
use fhir_store::{ResourceStore, ResourceWrite, WriteCondition};
use serde_json::{Value, json};
use smart_auth::BoxFuture;
use store_redb::RedbStore;

const NPI: &str = "1234567893";

/// The queue of Group jobs' tests: their slices never queue anything.
struct NoQueue;

impl WorkQueue for NoQueue {
    fn enqueue<'a>(&'a self, _: Vec<WorkItem>) -> BoxFuture<'a, Result<(), ExportError>> {
        Box::pin(async { Err(ExportError::Queue("a Group slice queued work".into())) })
    }
}

/// A queue the test drains by hand: what a roster page queues for its next page.
#[derive(Default)]
struct Recorded(Mutex<Vec<WorkItem>>);

impl WorkQueue for Recorded {
    fn enqueue<'a>(&'a self, items: Vec<WorkItem>) -> BoxFuture<'a, Result<(), ExportError>> {
        self.0.lock().unwrap().extend(items);
        Box::pin(async { Ok(()) })
    }
}

async fn seed(store: &RedbStore, members: usize) {
    seed_with(store, members, 1).await;
}

/// `members` members, each with a Patient, a Coverage, `eobs` EOBs of 2024 and one of 2015.
async fn seed_with(store: &RedbStore, members: usize, eobs: usize) {
    let mut csv = String::from("provider_npi,member_id,start,end\n");
    for i in 0..members {
        let patient = format!("m{i:04}");
        csv.push_str(&format!("{NPI},{patient},2020-01-01,\n"));
        let resources = [
            (
                ResourceType::Patient,
                patient.clone(),
                json!({"resourceType": "Patient", "id": patient}),
            ),
            (
                ResourceType::Coverage,
                format!("c-{patient}"),
                json!({"resourceType": "Coverage", "status": "active", "beneficiary": {"reference": format!("Patient/{patient}")}, "payor": [{"reference": "Organization/o1"}], "costToBeneficiary": [{"valueMoney": {"value": 20}}]}),
            ),
            (
                ResourceType::ExplanationOfBenefit,
                format!("e2-{patient}"),
                eob(&patient, "2015-06-01"),
            ),
        ];
        let recent = (0..eobs).map(|n| {
            let id = if n == 0 {
                format!("e1-{patient}")
            } else {
                format!("e1-{patient}-{n}")
            };
            (
                ResourceType::ExplanationOfBenefit,
                id,
                eob(&patient, "2024-03-01"),
            )
        });
        for (t, id, body) in resources.into_iter().chain(recent) {
            store
                .put(ResourceWrite::indexed(t, id, body, WriteCondition::Always))
                .await
                .unwrap();
        }
    }
    let report = attribution::load_file(store, "a.csv", csv.as_bytes())
        .await
        .unwrap();
    assert_eq!(report.status, "accepted");
}

async fn new_job(store: &RedbStore) -> Job {
    let header = attribution::group::header(store, &format!("npi-{NPI}"))
        .await
        .unwrap()
        .unwrap();
    let job = Job {
        id: job::new_job_id().unwrap(),
        client_id: "svc-test".into(),
        source: Source::Group {
            group_id: header.id.clone(),
            version: header.version,
        },
        request: ExportRequest {
            types: EXPORT_TYPES.to_vec(),
            since: None,
            type_filters: vec![],
            provenance: false,
        },
        request_url: "http://localhost/Group/x/$export".into(),
        transaction_time: fhir::Instant::now().to_string(),
        slices: header.chunks,
        status: JobStatus::Running,
        output: vec![],
        error_files: vec![],
        failure: None,
        expires_at: fhir::clock::unix_now() + 3600,
    };
    job::create(store, &job).await.unwrap();
    job
}

#[tokio::test]
async fn an_every_member_export_pages_through_the_roster_and_writes_each_member_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("db")).unwrap();
    // 600 members: more than one page of 2 in most of the 256 roster shards.
    seed(&store, 600).await;
    member_consent::provider_access::set_opt_out(
        &store,
        "m0007",
        true,
        member_consent::provider_access::ChangedBy::Plan,
    )
    .await
    .unwrap();
    let mut job = new_job(&store).await;
    job::update(&store, &job.id, |j| {
        j.source = Source::Roster { page_size: 2 };
        j.slices = fhir_search::roster::SHARDS;
        true
    })
    .await
    .unwrap();
    job.source = Source::Roster { page_size: 2 };
    job.slices = fhir_search::roster::SHARDS;
    let files = LocalFiles::new(dir.path().join("exports"));
    let queue = Recorded::default();
    let mut pending: Vec<WorkItem> = (0..job.slices)
        .map(|slice| WorkItem::new(job.id.clone(), slice))
        .collect();
    let mut pages = 0;
    while let Some(item) = pending.pop() {
        run_slice(&store, &files, &queue, &item).await.unwrap();
        if item.page == 1 {
            // A redelivered page queues its successor again: harmless.
            run_slice(&store, &files, &queue, &item).await.unwrap();
        }
        pages += 1;
        pending.extend(queue.0.lock().unwrap().drain(..));
    }
    assert!(
        pages > 300,
        "the shards were read a page at a time ({pages} pages)"
    );
    let (done, _) = job::get(&store, &job.id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    let mut patients = std::collections::BTreeSet::new();
    for file in done.output.iter().filter(|f| f.resource_type == "Patient") {
        let Some(Download::Body(body)) = files.download(&file.key).await.unwrap() else {
            panic!("missing {}", file.key)
        };
        for line in String::from_utf8(body.to_vec()).unwrap().lines() {
            let resource: Value = serde_json::from_str(line).unwrap();
            let id = resource["id"].as_str().unwrap().to_owned();
            assert!(patients.insert(id.clone()), "Patient/{id} twice");
        }
    }
    assert_eq!(
        patients.len(),
        599,
        "every member but the one who opted out"
    );
    assert!(!patients.contains("m0007"));
}

#[tokio::test]
async fn a_slice_that_crashes_mid_way_is_retried_and_each_resource_is_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("db")).unwrap();
    seed(&store, 1_200).await; // three slices of up to 500 members
    let job = new_job(&store).await;
    assert_eq!(job.slices, 3);
    // The second part of the first slice fails.
    let files = Arc::new(FailOnce::new(
        LocalFiles::new(dir.path().join("exports")),
        |_: &str, n| n == 1,
    ));
    for slice in 0..job.slices {
        let item = WorkItem::new(job.id.clone(), slice);
        if slice == 0 {
            assert!(
                run_slice(&store, files.as_ref(), &NoQueue, &item)
                    .await
                    .is_err(),
                "the crash"
            );
            let (stored, _) = job::get(&store, &job.id).await.unwrap().unwrap();
            assert_eq!(
                stored.status,
                JobStatus::Running,
                "a crashed slice does not finish the job"
            );
        }
        // The retry (SQS redelivers; locally run_with_retry), and a duplicate delivery.
        run_slice(&store, files.as_ref(), &NoQueue, &item)
            .await
            .unwrap();
        run_slice(&store, files.as_ref(), &NoQueue, &item)
            .await
            .unwrap();
    }
    let (done, _) = job::get(&store, &job.id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    let mut seen = std::collections::BTreeSet::new();
    let mut counted = 0;
    for file in &done.output {
        let Some(Download::Body(body)) = files.download(&file.key).await.unwrap() else {
            panic!("missing {}", file.key)
        };
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(text.lines().count() as u64, file.count);
        for line in text.lines() {
            let resource: Value = serde_json::from_str(line).unwrap();
            assert!(
                resource.get("costToBeneficiary").is_none() && resource.get("payment").is_none()
            );
            let key = format!("{}/{}", resource["resourceType"], resource["id"]);
            assert!(seen.insert(key.clone()), "{key} twice");
            counted += 1;
        }
    }
    // 1,200 Patients, 1,200 Coverages, 1,200 EOBs from 2024 (those from 2015 are out).
    assert_eq!(counted, 3_600);
    assert_eq!(
        seen.iter()
            .filter(|k| k.starts_with("ExplanationOfBenefit/e2-"))
            .count(),
        0
    );
}

/// The benchmark the README names: `BULK_BENCH_MEMBERS` members (default 10,000) with
/// `BULK_BENCH_EOBS` EOBs each (default 20), exported slice by slice, 4 at a time.
/// Run: `BULK_BENCH_MEMBERS=10000 cargo test --release -p bulk-export --test slices -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: minutes of seeding"]
async fn export_benchmark() {
    let members: usize = std::env::var("BULK_BENCH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let eobs: usize = std::env::var("BULK_BENCH_EOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open(dir.path().join("db")).unwrap());
    seed_with(&store, members, eobs).await;
    let job = new_job(&store).await;
    let files = Arc::new(LocalFiles::new(dir.path().join("exports")));
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut totals = bulk_export::worker::SliceTiming::default();
    for slice in 0..job.slices {
        if tasks.len() >= 4
            && let Some(done) = tasks.join_next().await
        {
            add(&mut totals, done.unwrap());
        }
        let (store, files, item) = (
            Arc::clone(&store),
            Arc::clone(&files),
            WorkItem::new(job.id.clone(), slice),
        );
        tasks.spawn(async move {
            run_slice(store.as_ref(), files.as_ref(), &NoQueue, &item)
                .await
                .unwrap()
        });
    }
    while let Some(done) = tasks.join_next().await {
        add(&mut totals, done.unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    let (done, _) = job::get(store.as_ref(), &job.id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    let peak_kb: u64 = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0);
    println!(
        "bulk export: {members} members, {} resources, {:.1} MB NDJSON in {seconds:.2} s: {:.1} MB/s, {:.0} resources/s, peak RSS {} MB; \
         store reads {:.2} s vs transform+serialise {:.2} s (ratio {:.2}), file writes {:.2} s (summed over 4 workers)",
        totals.resources,
        totals.bytes as f64 / 1e6,
        totals.bytes as f64 / 1e6 / seconds,
        totals.resources as f64 / seconds,
        peak_kb / 1024,
        totals.read.as_secs_f64(),
        totals.transform.as_secs_f64(),
        totals.read.as_secs_f64() / totals.transform.as_secs_f64().max(1e-9),
        totals.write.as_secs_f64(),
    );
}

fn add(totals: &mut bulk_export::worker::SliceTiming, t: bulk_export::worker::SliceTiming) {
    totals.read += t.read;
    totals.transform += t.transform;
    totals.write += t.write;
    totals.resources += t.resources;
    totals.bytes += t.bytes;
}
