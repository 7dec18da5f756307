//! Measures what a compartment page costs, to justify `spawn_blocking` for reads.
//! Prints the numbers (run with `--nocapture`); asserts only a loose ceiling.

use std::time::{Duration, Instant};

use fhir::ResourceType;
use fhir_search::SearchIndex;
use fhir_store::{ListQuery, Partition, ResourceStore, ResourceWrite, WriteCondition};
use serde_json::json;

use super::{RedbStore, list_blocking};

const PAGE: usize = 20;
const ROUNDS: u32 = 200;

#[tokio::test(flavor = "multi_thread")]
async fn a_compartment_page_of_20_small_records_takes_microseconds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path().join("timing.redb")).expect("open");
    for n in 0..PAGE {
        let index = SearchIndex {
            compartment: Some("m1".into()),
            ..SearchIndex::default()
        };
        let resource = json!({"resourceType": "Coverage", "status": "active", "subscriberId": format!("S{n:04}")});
        let write = ResourceWrite {
            resource_type: ResourceType::Coverage,
            id: format!("c{n}"),
            resource,
            index,
            deleted: false,
            condition: WriteCondition::Absent,
        };
        store.put(write).await.expect("put");
    }
    let query = ListQuery::new(
        Partition::Compartment {
            patient: "m1".into(),
            resource_type: ResourceType::Coverage,
        },
        PAGE,
    );

    let inline = average(ROUNDS, || {
        let page = list_blocking(&store.db, &query).expect("list");
        assert_eq!(page.entries.len(), PAGE);
    });
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let page = store.list(query.clone()).await.expect("list");
        assert_eq!(page.entries.len(), PAGE);
    }
    let via_spawn_blocking = started.elapsed() / ROUNDS;
    println!(
        "redb page of {PAGE} small records: inline {inline:?}, through spawn_blocking {via_spawn_blocking:?}"
    );
    assert!(
        via_spawn_blocking < Duration::from_millis(20),
        "a page took {via_spawn_blocking:?}"
    );
}

fn average(rounds: u32, mut work: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..rounds {
        work();
    }
    started.elapsed() / rounds
}
