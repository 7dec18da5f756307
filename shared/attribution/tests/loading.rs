//! Loading attribution lists: replace as a whole, idempotent, all or nothing.

use attribution::group::{self, NPI_SYSTEM};
use attribution::load_file;
use member_consent::provider_access::is_opted_out;
use store_redb::RedbStore;

const NPI: &str = "1234567893";

fn store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("db")).unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_load_replaces_the_providers_group_as_a_whole_and_a_reload_changes_nothing() {
    let (_dir, store) = store();
    let first =
        format!("provider_npi,member_id,start,end\n{NPI},p1,2024-01-01,\n{NPI},p2,2024-01-01,\n");
    let report = load_file(&store, "a.csv", first.as_bytes()).await.unwrap();
    assert_eq!(report.status, "accepted");
    assert_eq!(report.groups[0].version, 1);
    let again = load_file(&store, "a.csv", first.as_bytes()).await.unwrap();
    assert!(
        again.groups[0].unchanged,
        "the same list again is no new version"
    );

    let second = format!("provider_npi,member_id,start,end\n{NPI},p3,2025-01-01,2025-12-31\n");
    let report = load_file(&store, "b.csv", second.as_bytes()).await.unwrap();
    assert_eq!(report.groups[0].version, 2);
    let id = group::find_by_identifier(&store, NPI_SYSTEM, NPI)
        .await
        .unwrap()
        .unwrap();
    let header = group::header(&store, &id).await.unwrap().unwrap();
    let members = group::members(&store, &header).await.unwrap();
    let patients: Vec<&str> = members.iter().map(|m| m.patient.as_str()).collect();
    assert_eq!(patients, vec!["p3"], "p1 and p2 are no longer attributed");
}

#[tokio::test]
async fn a_file_with_any_bad_line_writes_nothing() {
    let (_dir, store) = store();
    let csv = format!(
        "provider_npi,member_id,start,end,opt_out\n{NPI},p1,2024-01-01,,Y\n{NPI},p2,yesterday,,\n"
    );
    let report = load_file(&store, "bad.csv", csv.as_bytes()).await.unwrap();
    assert_eq!(report.status, "rejected");
    assert_eq!(report.problems[0].line, 3);
    assert!(
        group::find_by_identifier(&store, NPI_SYSTEM, NPI)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !is_opted_out(&store, "p1").await.unwrap(),
        "the opt-out column was not applied either"
    );
}

#[tokio::test]
async fn large_lists_are_stored_in_chunks_and_the_opt_out_column_is_applied() {
    let (_dir, store) = store();
    let mut csv = String::from("provider_tin,member_id,start,end,opt_out\n");
    for i in 0..1_234 {
        csv.push_str(&format!(
            "123456789,m{i},2020-01-01,,{}\n",
            if i == 7 { "Y" } else { "" }
        ));
    }
    let report = load_file(&store, "big.csv", csv.as_bytes()).await.unwrap();
    assert_eq!(report.opted_out, 1);
    let header = group::header(&store, "tin-123456789")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(header.member_count, 1_234);
    assert_eq!(header.chunks, 3);
    assert!(header.visible_to(&[], &["123456789".into()]));
    assert!(!header.visible_to(&[NPI.into()], &[]));
    assert!(is_opted_out(&store, "m7").await.unwrap());
    let resource = header.to_resource(&group::members(&store, &header).await.unwrap());
    assert_eq!(resource["member"].as_array().unwrap().len(), 1_234);
}
