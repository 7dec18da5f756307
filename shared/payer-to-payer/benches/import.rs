//! Payer-to-Payer import throughput: another plan's answer of `P2P_BENCH_RESOURCES`
//! resources (default 100,000: one member's Patient and Coverage, the rest claims,
//! each with four references) through [`payer_to_payer::import::import`] (validation,
//! namespaced ids, rewritten references, a Provenance each) and then into the embedded
//! store (`asking::store_received`: a conditional write per resource and per
//! Provenance, search index included).
//!
//! `cargo bench -p payer-to-payer --bench import`
//!
//! Prints resources/s of each step and the peak RSS (Linux `VmHWM`).

use std::time::Instant;

use payer_to_payer::asking;
use payer_to_payer::import::{self, Source};
use serde_json::{Value, json};

fn answer(resources: usize) -> Vec<Value> {
    let mut answer = vec![
        json!({"resourceType": "Patient", "id": "p9", "name": [{"family": "Núñez", "given": ["Ana"]}],
               "birthDate": "1985-04-12", "gender": "female"}),
        json!({"resourceType": "Coverage", "id": "c1", "status": "active",
               "beneficiary": {"reference": "Patient/p9"}, "payor": [{"reference": "Organization/o1"}]}),
    ];
    answer.extend((2..resources).map(|i| {
        json!({"resourceType": "ExplanationOfBenefit", "id": format!("eob-{i}"), "status": "active",
               "use": "claim", "outcome": "complete", "created": "2025-06-01",
               "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
               "patient": {"reference": "Patient/p9"},
               "insurer": {"reference": "Organization/o1"},
               "provider": {"reference": "Practitioner/pr1"},
               "insurance": [{"focal": true, "coverage": {"reference": "Coverage/c1"}}],
               "billablePeriod": {"start": "2025-06-01", "end": "2025-06-01"},
               "diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {"coding": [
                   {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]}}]})
    }));
    answer
}

fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("P2P_BENCH_RESOURCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let source = Source {
        name: "oldplan".into(),
        base_url: "https://fhir.old.example/r4".into(),
        payer_id: "OLD01".into(),
    };
    let answer = answer(count);

    // The pure part alone: check the whole answer, then convert every resource (each
    // dropped at once, as a run writes it and moves on).
    let started = Instant::now();
    let checked = match import::check(&answer, &source, "m1") {
        Ok(checked) => checked,
        Err(error) => panic!("the generated answer is valid: {error}"),
    };
    let converted: usize = answer
        .iter()
        .map(|resource| checked.convert(resource, "2027-01-08T10:00:00Z").len())
        .sum();
    let convert_secs = started.elapsed().as_secs_f64();

    // What a run does: check, then convert and write one resource at a time.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = store_redb::RedbStore::open(dir.path().join("store.redb")).expect("redb");
    let started = Instant::now();
    let received = asking::import_and_store(&store, &answer, &source, "m1", "2027-01-08T10:00:00Z")
        .await
        .expect("writes")
        .expect("a valid answer");
    let store_secs = started.elapsed().as_secs_f64();

    println!(
        "p2p import of {count} received resources: check + convert {:.0} resources/s \
         ({converted} writes prepared in {convert_secs:.2} s); into redb {:.0} resources/s \
         ({received} resources and as many Provenance in {store_secs:.1} s); peak RSS {}",
        count as f64 / convert_secs,
        count as f64 / store_secs,
        peak_mb().map_or("n/a".into(), |mb| format!("{mb:.0} MB")),
    );
}
