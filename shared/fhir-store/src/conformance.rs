//! The conformance suite: the behaviour every [`ResourceStore`] and [`KeyValueStore`]
//! adapter must show.
//!
//! Each check is a named `pub async fn` taking the store under test, so an adapter's
//! test file can run them one test per rule (failures then name the rule). Every check
//! uses ids (and look-up terms) no other check uses, so all of them may share one
//! store, also concurrently. Checks panic with a message naming the broken rule.
//!
//! Partitions that every check shares (`Type(Organization)`, the `name` look-up) are
//! checked for order over everything in them and for membership of this check's ids.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use fhir::ResourceType;
use fhir_search::SearchIndex;
use serde_json::{Value, json};

use crate::{
    KeyValueStore, KvEntry, ListPage, ListQuery, Partition, ResourceRecord, ResourceStore,
    ResourceWrite, SortKey, StoreError, WriteCondition, kv, update_with,
};

/// One `#[tokio::test]` per check, so that a failure names the broken rule.
///
/// `$with_store` is an `async fn(test_name: &str, check: impl AsyncFnOnce(&Store))`
/// of the adapter's test file: it makes a fresh store for the named test, runs
/// `check` on it and cleans up. The list of checks lives here, once, for every
/// adapter.
///
/// ```ignore
/// async fn with_store(_test: &str, check: impl AsyncFnOnce(&RedbStore)) {
///     let (_dir, store) = open();
///     check(&store).await;
/// }
/// fhir_store::conformance_tests!(with_store);
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($with_store:ident) => {
        $crate::conformance_tests!(@each $with_store;
            put_assigns_versions_and_stamps_meta,
            last_updated_strictly_increases,
            write_conditions_are_enforced,
            racing_conditional_writes_let_exactly_one_win,
            concurrent_update_with_never_loses_an_update,
            tombstones_are_readable_but_leave_every_listing,
            compartments_are_isolated,
            compartment_listing_orders_pages_and_bounds,
            an_update_moves_the_resource_to_the_newest_position,
            type_partition_lists_current_directory_resources_in_order,
            lookup_prefix_returns_current_records_by_term,
            large_incompressible_body_round_trips_byte_identical,
            large_compressible_body_round_trips_byte_identical,
            get_many_returns_existing_current_records_once_in_order,
            list_keys_returns_what_list_returns_without_the_records,
            lookup_contains_answers_each_exact_term_and_id,
            put_many_writes_each_as_put_with_its_own_condition,
            kv_insert_creates_only_when_absent,
            kv_put_get_and_delete_round_trip,
            kv_replace_needs_the_live_version,
            kv_expired_records_are_invisible_and_reinsertable,
            kv_take_is_single_use_under_concurrency,
            kv_concurrent_increments_sum_exactly,
            kv_budget_allows_the_limit_per_window_then_says_when_to_retry,
            kv_list_by_prefix_in_key_order_with_limit,
            kv_invalid_keys_and_values_are_rejected,
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn all_checks_share_one_store() {
            $with_store("all", async |store| {
                $crate::conformance::run_all(store).await;
                $crate::conformance::run_all_kv(store).await;
            })
            .await;
        }
    };
    (@each $with_store:ident; $($check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            $with_store(stringify!($check), async |store| {
                $crate::conformance::$check(store).await
            })
            .await;
        }
    )*};
}

/// Runs every check, one after the other.
pub async fn run_all<S: ResourceStore>(store: &S) {
    put_assigns_versions_and_stamps_meta(store).await;
    last_updated_strictly_increases(store).await;
    write_conditions_are_enforced(store).await;
    racing_conditional_writes_let_exactly_one_win(store).await;
    concurrent_update_with_never_loses_an_update(store).await;
    tombstones_are_readable_but_leave_every_listing(store).await;
    compartments_are_isolated(store).await;
    compartment_listing_orders_pages_and_bounds(store).await;
    an_update_moves_the_resource_to_the_newest_position(store).await;
    type_partition_lists_current_directory_resources_in_order(store).await;
    lookup_prefix_returns_current_records_by_term(store).await;
    large_incompressible_body_round_trips_byte_identical(store).await;
    large_compressible_body_round_trips_byte_identical(store).await;
    get_many_returns_existing_current_records_once_in_order(store).await;
    list_keys_returns_what_list_returns_without_the_records(store).await;
    lookup_contains_answers_each_exact_term_and_id(store).await;
    put_many_writes_each_as_put_with_its_own_condition(store).await;
}

/// Runs every key-value check, one after the other.
pub async fn run_all_kv<S: KeyValueStore>(store: &S) {
    kv_insert_creates_only_when_absent(store).await;
    kv_put_get_and_delete_round_trip(store).await;
    kv_replace_needs_the_live_version(store).await;
    kv_expired_records_are_invisible_and_reinsertable(store).await;
    kv_take_is_single_use_under_concurrency(store).await;
    kv_concurrent_increments_sum_exactly(store).await;
    kv_budget_allows_the_limit_per_window_then_says_when_to_retry(store).await;
    kv_list_by_prefix_in_key_order_with_limit(store).await;
    kv_invalid_keys_and_values_are_rejected(store).await;
}

// ---------------------------------------------------------------------------------
// Versioning
// ---------------------------------------------------------------------------------

/// `put` numbers versions 1, 2, …, stamps `id` and `meta` into the body (keeping other
/// `meta` elements), and every version stays readable through `get_version`.
pub async fn put_assigns_versions_and_stamps_meta<S: ResourceStore>(store: &S) {
    let id = unique("ver");
    let resource =
        json!({"resourceType": "Patient", "meta": {"profile": ["urn:p"]}, "active": true});
    let first = put(
        store,
        member_write(
            ResourceType::Patient,
            &id,
            &id,
            resource,
            WriteCondition::Absent,
        ),
    )
    .await;
    assert_eq!(first.version_id, 1, "the first version is 1");
    let body = parse(&first.body);
    assert_eq!(body["id"], json!(id), "put writes id into the body");
    assert_eq!(
        body["meta"]["versionId"],
        json!("1"),
        "meta.versionId is a string"
    );
    assert_eq!(
        body["meta"]["lastUpdated"],
        json!(first.last_updated.as_str())
    );
    assert_eq!(
        body["meta"]["profile"],
        json!(["urn:p"]),
        "other meta is kept"
    );

    let resource = json!({"resourceType": "Patient", "active": false});
    let second = put(
        store,
        member_write(
            ResourceType::Patient,
            &id,
            &id,
            resource,
            WriteCondition::VersionIs(1),
        ),
    )
    .await;
    assert_eq!(second.version_id, 2, "the next version is previous + 1");
    assert!(
        second.last_updated > first.last_updated,
        "lastUpdated strictly increases"
    );

    assert_eq!(
        get(store, ResourceType::Patient, &id).await,
        Some(second.clone()),
        "get returns the current version"
    );
    assert_eq!(
        vread(store, ResourceType::Patient, &id, 1).await,
        Some(first),
        "version 1 stays readable"
    );
    assert_eq!(
        vread(store, ResourceType::Patient, &id, 2).await,
        Some(second),
        "version 2 is readable"
    );
    assert_eq!(
        vread(store, ResourceType::Patient, &id, 3).await,
        None,
        "a future version is absent"
    );
    assert_eq!(
        get(store, ResourceType::Patient, &unique("none")).await,
        None,
        "a missing resource is absent"
    );
    assert_eq!(
        get(store, ResourceType::Coverage, &id).await,
        None,
        "ids are scoped by type"
    );
}

/// Even when writes land within one millisecond, each version is strictly later.
pub async fn last_updated_strictly_increases<S: ResourceStore>(store: &S) {
    let id = unique("lu");
    let mut previous: Option<ResourceRecord> = None;
    for n in 0..6 {
        let resource = json!({"resourceType": "Coverage", "status": "active", "order": n});
        let record = put(
            store,
            member_write(
                ResourceType::Coverage,
                &id,
                &id,
                resource,
                WriteCondition::Always,
            ),
        )
        .await;
        if let Some(previous) = &previous {
            assert!(
                record.last_updated > previous.last_updated,
                "version {} is not after its predecessor",
                record.version_id
            );
            assert_eq!(record.version_id, previous.version_id + 1);
        }
        previous = Some(record);
    }
}

/// `Absent` and `VersionIs` refuse to write over the wrong state with `Conflict`.
pub async fn write_conditions_are_enforced<S: ResourceStore>(store: &S) {
    let id = unique("cond");
    let write = |condition| {
        member_write(
            ResourceType::Patient,
            &id,
            &id,
            json!({"resourceType": "Patient"}),
            condition,
        )
    };

    assert_conflict(
        store.put(write(WriteCondition::VersionIs(1))).await,
        "VersionIs on a missing resource",
    );
    put(store, write(WriteCondition::Absent)).await;
    assert_conflict(
        store.put(write(WriteCondition::Absent)).await,
        "Absent on an existing resource",
    );
    assert_conflict(
        store.put(write(WriteCondition::VersionIs(2))).await,
        "VersionIs with a future version",
    );
    assert_eq!(
        put(store, write(WriteCondition::VersionIs(1)))
            .await
            .version_id,
        2
    );
    assert_conflict(
        store.put(write(WriteCondition::VersionIs(1))).await,
        "VersionIs with a stale version",
    );
    assert_eq!(
        put(store, write(WriteCondition::Always)).await.version_id,
        3,
        "Always writes over anything"
    );
    assert_eq!(
        get(store, ResourceType::Patient, &id)
            .await
            .map(|r| r.version_id),
        Some(3),
        "refused writes left no trace"
    );
}

/// Writers racing with the same expected version: exactly one wins, the rest conflict.
pub async fn racing_conditional_writes_let_exactly_one_win<S: ResourceStore>(store: &S) {
    let id = unique("race");
    let write = |n: u32, condition| {
        member_write(
            ResourceType::Patient,
            &id,
            &id,
            json!({"resourceType": "Patient", "writer": n}),
            condition,
        )
    };
    let creates = join_all(
        (0..8)
            .map(|n| store.put(write(n, WriteCondition::Absent)))
            .collect(),
    )
    .await;
    assert_eq!(
        creates.iter().filter(|r| r.is_ok()).count(),
        1,
        "exactly one racing create wins"
    );
    creates
        .into_iter()
        .filter(Result::is_err)
        .for_each(|r| assert_conflict(r, "a losing create"));

    let updates = join_all(
        (0..8)
            .map(|n| store.put(write(n, WriteCondition::VersionIs(1))))
            .collect(),
    )
    .await;
    assert_eq!(
        updates.iter().filter(|r| r.is_ok()).count(),
        1,
        "exactly one racing update wins"
    );
    updates
        .into_iter()
        .filter(Result::is_err)
        .for_each(|r| assert_conflict(r, "a losing update"));
    assert_eq!(
        get(store, ResourceType::Patient, &id)
            .await
            .map(|r| r.version_id),
        Some(2)
    );
}

/// 8 concurrent writers × 10 read-modify-write increments: the counter ends at 80 and
/// versions 1..=81 are all readable, each holding a distinct counter value.
pub async fn concurrent_update_with_never_loses_an_update<S: ResourceStore>(store: &S) {
    const WRITERS: usize = 8;
    const INCREMENTS: u64 = 10;
    let id = unique("counter");
    let start = json!({"resourceType": "Patient", "multipleBirthInteger": 0});
    put(
        store,
        member_write(
            ResourceType::Patient,
            &id,
            &id,
            start,
            WriteCondition::Absent,
        ),
    )
    .await;

    let writer = |_: usize| async {
        for _ in 0..INCREMENTS {
            update_with(store, ResourceType::Patient, &id, |current| {
                let count = current.map_or(0, |r| {
                    parse(&r.body)["multipleBirthInteger"].as_u64().unwrap_or(0)
                });
                let resource =
                    json!({"resourceType": "Patient", "multipleBirthInteger": count + 1});
                Some(member_write(
                    ResourceType::Patient,
                    &id,
                    &id,
                    resource,
                    WriteCondition::Always,
                ))
            })
            .await
            .expect("update_with retries conflicts until it wins");
        }
    };
    join_all((0..WRITERS).map(writer).collect()).await;

    let total = WRITERS as u64 * INCREMENTS;
    let current = get(store, ResourceType::Patient, &id)
        .await
        .expect("counter exists");
    assert_eq!(
        parse(&current.body)["multipleBirthInteger"],
        json!(total),
        "no update was lost"
    );
    assert_eq!(current.version_id, total + 1);
    for version in 1..=total + 1 {
        let record = vread(store, ResourceType::Patient, &id, version)
            .await
            .expect("every version is readable");
        assert_eq!(
            parse(&record.body)["multipleBirthInteger"],
            json!(version - 1),
            "version {version} holds its own count"
        );
    }
}

// ---------------------------------------------------------------------------------
// Tombstones and partitions
// ---------------------------------------------------------------------------------

/// A deleted resource is still returned by `get` (for 410 Gone), its history stays
/// readable, but it leaves compartment, type and look-up listings until written again.
pub async fn tombstones_are_readable_but_leave_every_listing<S: ResourceStore>(store: &S) {
    let member = unique("tomb");
    let eob = unique("tomb-eob");
    let org = unique("tomb-org");
    let term = format!("{org}-name");
    let resource = json!({"resourceType": "ExplanationOfBenefit"});
    put(
        store,
        member_write(
            ResourceType::ExplanationOfBenefit,
            &eob,
            &member,
            resource.clone(),
            WriteCondition::Absent,
        ),
    )
    .await;
    put_new_organization(store, &org, &[("name", &term)]).await;
    let compartment = compartment(&member, ResourceType::ExplanationOfBenefit);
    assert_eq!(
        ids(&list_all(store, ListQuery::new(compartment.clone(), 10)).await),
        std::slice::from_ref(&eob)
    );

    let mut delete = member_write(
        ResourceType::ExplanationOfBenefit,
        &eob,
        &member,
        resource.clone(),
        WriteCondition::VersionIs(1),
    );
    delete.deleted = true;
    let tombstone = put(store, delete).await;
    let mut delete_org = directory_write(
        ResourceType::Organization,
        &org,
        &[("name", &term)],
        WriteCondition::VersionIs(1),
    );
    delete_org.deleted = true;
    put(store, delete_org).await;

    let read = get(store, ResourceType::ExplanationOfBenefit, &eob)
        .await
        .expect("a tombstone is returned by get");
    assert!(
        read.deleted && read.version_id == 2,
        "get returns the tombstone"
    );
    assert_eq!(read, tombstone);
    assert!(
        vread(store, ResourceType::ExplanationOfBenefit, &eob, 1)
            .await
            .is_some_and(|r| !r.deleted)
    );
    assert!(
        list_all(store, ListQuery::new(compartment.clone(), 10))
            .await
            .is_empty(),
        "a tombstone leaves its compartment"
    );
    assert!(
        !ids(&list_all(
            store,
            ListQuery::new(Partition::Type(ResourceType::Organization), 50)
        )
        .await)
        .contains(&org)
    );
    assert!(
        list_all(store, lookup_query("name", &term, 10))
            .await
            .is_empty(),
        "a tombstone leaves look-ups"
    );

    let revived = put(
        store,
        member_write(
            ResourceType::ExplanationOfBenefit,
            &eob,
            &member,
            resource,
            WriteCondition::VersionIs(2),
        ),
    )
    .await;
    let listed = list_all(store, ListQuery::new(compartment, 10)).await;
    assert_eq!(
        listed.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        [revived],
        "a rewritten resource is listed again"
    );
}

/// A member's listing never contains another member's resources, nor another type's;
/// moving a resource to another compartment removes it from the first.
pub async fn compartments_are_isolated<S: ResourceStore>(store: &S) {
    let (alice, bob) = (unique("alice"), unique("bob"));
    let mut expected_alice = Vec::new();
    for n in 0..3 {
        let (a, b) = (format!("{alice}-eob{n}"), format!("{bob}-eob{n}"));
        put(
            store,
            member_write(
                ResourceType::ExplanationOfBenefit,
                &a,
                &alice,
                eob_body(),
                WriteCondition::Absent,
            ),
        )
        .await;
        put(
            store,
            member_write(
                ResourceType::ExplanationOfBenefit,
                &b,
                &bob,
                eob_body(),
                WriteCondition::Absent,
            ),
        )
        .await;
        expected_alice.push(a);
    }
    let coverage = format!("{alice}-cov");
    put(
        store,
        member_write(
            ResourceType::Coverage,
            &coverage,
            &alice,
            json!({"resourceType": "Coverage"}),
            WriteCondition::Absent,
        ),
    )
    .await;

    let alice_eobs = ids(&list_all(
        store,
        ListQuery::new(compartment(&alice, ResourceType::ExplanationOfBenefit), 2),
    )
    .await);
    assert_eq!(
        sorted(alice_eobs),
        expected_alice,
        "alice sees exactly her EOBs"
    );
    let bob_eobs = list_all(
        store,
        ListQuery::new(compartment(&bob, ResourceType::ExplanationOfBenefit), 10),
    )
    .await;
    assert!(
        bob_eobs
            .iter()
            .all(|(_, r)| r.index.compartment.as_deref() == Some(bob.as_str())),
        "bob never sees alice's"
    );
    assert_eq!(bob_eobs.len(), 3);
    assert_eq!(
        ids(&list_all(
            store,
            ListQuery::new(compartment(&alice, ResourceType::Coverage), 10)
        )
        .await),
        [coverage]
    );

    let moved = format!("{alice}-eob0");
    put(
        store,
        member_write(
            ResourceType::ExplanationOfBenefit,
            &moved,
            &bob,
            eob_body(),
            WriteCondition::VersionIs(1),
        ),
    )
    .await;
    let alice_eobs = ids(&list_all(
        store,
        ListQuery::new(compartment(&alice, ResourceType::ExplanationOfBenefit), 10),
    )
    .await);
    assert!(
        !alice_eobs.contains(&moved),
        "a moved resource leaves its old compartment"
    );
    let bob_eobs = ids(&list_all(
        store,
        ListQuery::new(compartment(&bob, ResourceType::ExplanationOfBenefit), 10),
    )
    .await);
    assert!(bob_eobs.contains(&moved), "and joins its new one");
}

/// Compartment listings are ordered by (lastUpdated, id), page with `limit`/`after`/
/// `more`, reverse with `descending`, and honour `[from, to)` on lastUpdated.
pub async fn compartment_listing_orders_pages_and_bounds<S: ResourceStore>(store: &S) {
    let member = unique("order");
    let mut records = Vec::new();
    for n in 0..5 {
        let id = format!("{member}-{n}");
        records.push(
            put(
                store,
                member_write(
                    ResourceType::ExplanationOfBenefit,
                    &id,
                    &member,
                    eob_body(),
                    WriteCondition::Absent,
                ),
            )
            .await,
        );
    }
    records.sort_by(|a, b| (&a.last_updated, &a.id).cmp(&(&b.last_updated, &b.id)));
    let partition = compartment(&member, ResourceType::ExplanationOfBenefit);

    let everything = list(store, ListQuery::new(partition.clone(), 10)).await;
    assert!(
        !everything.more,
        "a page holding the whole partition says no more follow"
    );
    assert_eq!(
        everything
            .entries
            .iter()
            .map(|(_, r)| r.clone())
            .collect::<Vec<_>>(),
        records,
        "ascending by (lastUpdated, id)"
    );

    let pages = pages(store, ListQuery::new(partition.clone(), 2)).await;
    assert_eq!(
        pages.iter().map(|p| p.entries.len()).collect::<Vec<_>>(),
        [2, 2, 1],
        "limit caps each page"
    );
    assert_eq!(
        pages.iter().map(|p| p.more).collect::<Vec<_>>(),
        [true, true, false],
        "more says whether more follow"
    );
    let paged: Vec<ResourceRecord> = pages
        .into_iter()
        .flat_map(|p| p.entries)
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        paged, records,
        "after resumes strictly after the last entry"
    );

    let mut descending = ListQuery::new(partition.clone(), 2);
    descending.descending = true;
    let reversed: Vec<ResourceRecord> = list_all(store, descending)
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        reversed,
        records.iter().rev().cloned().collect::<Vec<_>>(),
        "descending reverses the order, also across pages"
    );

    let (from, to) = (
        records[1].last_updated.clone(),
        records[3].last_updated.clone(),
    );
    let in_bounds: Vec<String> = records
        .iter()
        .filter(|r| r.last_updated >= from && r.last_updated < to)
        .map(|r| r.id.clone())
        .collect();
    for descending in [false, true] {
        let mut bounded = ListQuery::new(partition.clone(), 1);
        bounded.last_updated_from = Some(from.clone());
        bounded.last_updated_to = Some(to.clone());
        bounded.descending = descending;
        let mut got = ids(&list_all(store, bounded).await);
        if descending {
            got.reverse();
        }
        assert_eq!(
            got, in_bounds,
            "lastUpdated bounds are [from, to) (descending: {descending})"
        );
    }
    let mut empty = ListQuery::new(partition, 10);
    empty.last_updated_from = Some(to.clone());
    empty.last_updated_to = Some(from);
    assert!(
        list(store, empty).await.entries.is_empty(),
        "an inverted range is empty"
    );
}

/// A new version leaves its old position: the resource appears once, at the end.
pub async fn an_update_moves_the_resource_to_the_newest_position<S: ResourceStore>(store: &S) {
    let member = unique("move");
    let first = format!("{member}-a");
    let second = format!("{member}-b");
    put(
        store,
        member_write(
            ResourceType::Coverage,
            &first,
            &member,
            json!({"resourceType": "Coverage"}),
            WriteCondition::Absent,
        ),
    )
    .await;
    put(
        store,
        member_write(
            ResourceType::Coverage,
            &second,
            &member,
            json!({"resourceType": "Coverage"}),
            WriteCondition::Absent,
        ),
    )
    .await;
    // `meta.lastUpdated` has millisecond precision and ties sort by id: let the clock
    // move past the second write so "newer" is unambiguous.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let updated = put(
        store,
        member_write(
            ResourceType::Coverage,
            &first,
            &member,
            json!({"resourceType": "Coverage"}),
            WriteCondition::VersionIs(1),
        ),
    )
    .await;
    let listed = list_all(
        store,
        ListQuery::new(compartment(&member, ResourceType::Coverage), 10),
    )
    .await;
    assert_eq!(
        ids(&listed),
        [second, first],
        "the updated resource moved to the newest position, once"
    );
    assert_eq!(listed[1].1, updated, "listings return the current version");
}

/// Directory resources (no compartment) are listed in their type partition, ordered by
/// (lastUpdated, id), with the same paging and bounds.
pub async fn type_partition_lists_current_directory_resources_in_order<S: ResourceStore>(
    store: &S,
) {
    let tag = unique("dir");
    let mut mine = Vec::new();
    for n in 0..3 {
        let id = format!("{tag}-{n}");
        mine.push(
            put(
                store,
                directory_write(ResourceType::Practitioner, &id, &[], WriteCondition::Absent),
            )
            .await,
        );
    }
    let mut query = ListQuery::new(Partition::Type(ResourceType::Practitioner), 7);
    query.last_updated_from = Some(mine[0].last_updated.clone());
    let listed = list_all(store, query.clone()).await;
    assert!(
        is_strictly_increasing(&listed),
        "type partitions are ordered by their sort keys"
    );
    assert!(
        listed
            .iter()
            .all(|(_, r)| r.last_updated >= mine[0].last_updated && r.index.compartment.is_none())
    );
    let listed_mine: Vec<ResourceRecord> = listed
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.id.starts_with(&tag))
        .collect();
    assert_eq!(
        listed_mine, mine,
        "all of this check's practitioners, in write order"
    );

    query.descending = true;
    let descending = list_all(store, query).await;
    assert!(
        descending.windows(2).all(|w| w[0].0 > w[1].0),
        "descending type listings are reversed"
    );
}

/// Look-up partitions return, for each entry whose term starts with the prefix, the
/// resource's current record, ordered by (term, id); a resource appears once per term.
pub async fn lookup_prefix_returns_current_records_by_term<S: ResourceStore>(store: &S) {
    let tag = unique("lk");
    let term = |suffix: &str| format!("{tag}{suffix}");
    let (one, two, three) = (format!("{tag}-1"), format!("{tag}-2"), format!("{tag}-3"));
    put_new_organization(
        store,
        &one,
        &[("name", &term("smith")), ("name", &term("smithson"))],
    )
    .await;
    put_new_organization(store, &two, &[("name", &term("smyth"))]).await;
    put_new_organization(
        store,
        &three,
        &[
            ("name", &term("jones")),
            ("address-city", &term("smithville")),
        ],
    )
    .await;

    assert_eq!(
        ids(&list_all(
            store,
            lookup_query("name", &crate::keys::exact_term_prefix(&term("smith")), 10)
        )
        .await),
        std::slice::from_ref(&one),
        "an exact-term prefix lists that term only, not smithson"
    );
    let found = list_all(store, lookup_query("name", &term("sm"), 10)).await;
    assert_eq!(
        ids(&found),
        [one.clone(), one.clone(), two.clone()],
        "ordered by (term, id), once per matching term"
    );
    assert!(is_strictly_increasing(&found));
    assert_eq!(
        ids(&list_all(store, lookup_query("name", &term("smith"), 1)).await),
        [one.clone(), one.clone()]
    );
    assert_eq!(
        ids(&list_all(store, lookup_query("address-city", &term("smith"), 10)).await),
        std::slice::from_ref(&three),
        "params are separate"
    );
    assert!(
        list_all(store, lookup_query("name", &term("x"), 10))
            .await
            .is_empty()
    );

    let mut descending = lookup_query("name", &term("sm"), 2);
    descending.descending = true;
    assert_eq!(
        ids(&list_all(store, descending).await),
        [two.clone(), one.clone(), one.clone()],
        "descending by term"
    );

    let updated = put(
        store,
        directory_write(
            ResourceType::Organization,
            &one,
            &[("name", &term("smithers"))],
            WriteCondition::VersionIs(1),
        ),
    )
    .await;
    let found = list_all(store, lookup_query("name", &term("smith"), 10)).await;
    assert_eq!(
        found.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        [updated],
        "removed terms leave, current records return"
    );
    assert_eq!(
        ids(&list_all(store, lookup_query("name", &term("jo"), 10)).await),
        [three]
    );
}

// ---------------------------------------------------------------------------------
// Size and batch reads
// ---------------------------------------------------------------------------------

/// A ~2 MB body that does not compress is stored (over DynamoDB's 400 KB item limit)
/// and read back byte-identical by get, vread and list.
pub async fn large_incompressible_body_round_trips_byte_identical<S: ResourceStore>(store: &S) {
    let noise = random_text(2 * 1024 * 1024, 0x5eed_1234);
    let resource = json!({"resourceType": "ExplanationOfBenefit", "text": {"status": "generated", "div": noise}});
    assert_large_round_trip(store, "big-noise", resource).await;
}

/// A ~5 MB EOB-like body (compresses well) round-trips byte-identical.
pub async fn large_compressible_body_round_trips_byte_identical<S: ResourceStore>(store: &S) {
    assert_large_round_trip(store, "big-eob", large_eob(5 * 1024 * 1024)).await;
}

async fn assert_large_round_trip<S: ResourceStore>(store: &S, label: &str, resource: Value) {
    let id = unique(label);
    let written = put(
        store,
        member_write(
            ResourceType::ExplanationOfBenefit,
            &id,
            &id,
            resource.clone(),
            WriteCondition::Absent,
        ),
    )
    .await;
    let read = get(store, ResourceType::ExplanationOfBenefit, &id)
        .await
        .expect("large resource is stored");
    assert!(
        read.body == written.body,
        "get returns the large body byte-identical"
    );
    let mut expected = resource.clone();
    expected["id"] = json!(id);
    expected["meta"] = json!({"versionId": "1", "lastUpdated": written.last_updated.as_str()});
    assert!(
        parse(&read.body) == expected,
        "the large body is the resource as written"
    );

    let second = put(
        store,
        member_write(
            ResourceType::ExplanationOfBenefit,
            &id,
            &id,
            resource,
            WriteCondition::VersionIs(1),
        ),
    )
    .await;
    let first = vread(store, ResourceType::ExplanationOfBenefit, &id, 1)
        .await
        .expect("version 1");
    assert!(
        first == written,
        "an earlier large version stays byte-identical"
    );
    let listed = list_all(
        store,
        ListQuery::new(compartment(&id, ResourceType::ExplanationOfBenefit), 5),
    )
    .await;
    assert!(
        listed.len() == 1 && listed[0].1 == second,
        "listings return the large current body"
    );
    let many = store
        .get_many(&[(ResourceType::ExplanationOfBenefit, id.clone())])
        .await
        .expect("get_many");
    assert!(many == [second], "get_many returns the large current body");
}

/// `get_many` returns current records (tombstones included, flagged) for the keys that
/// exist, each distinct key once, in first-occurrence order; it handles more keys than
/// one DynamoDB BatchGetItem takes (100).
pub async fn get_many_returns_existing_current_records_once_in_order<S: ResourceStore>(store: &S) {
    let tag = unique("many");
    let mut expected = Vec::new();
    let mut keys = Vec::new();
    for n in 0..120 {
        let (resource_type, id) = (ResourceType::Coverage, format!("{tag}-{n}"));
        let record = put(
            store,
            member_write(
                resource_type,
                &id,
                &tag,
                json!({"resourceType": "Coverage", "n": n}),
                WriteCondition::Absent,
            ),
        )
        .await;
        keys.push((resource_type, id.clone()));
        if n % 10 == 0 {
            keys.push((ResourceType::Coverage, format!("{tag}-missing-{n}")));
            keys.push((ResourceType::Patient, id));
        }
        expected.push(record);
    }
    let updated = put(
        store,
        member_write(
            ResourceType::Coverage,
            &format!("{tag}-7"),
            &tag,
            json!({"resourceType": "Coverage"}),
            WriteCondition::VersionIs(1),
        ),
    )
    .await;
    expected[7] = updated;
    let mut tombstone = member_write(
        ResourceType::Coverage,
        &format!("{tag}-8"),
        &tag,
        json!({"resourceType": "Coverage"}),
        WriteCondition::VersionIs(1),
    );
    tombstone.deleted = true;
    expected[8] = put(store, tombstone).await;
    keys.push((ResourceType::Coverage, format!("{tag}-3")));
    keys.push((ResourceType::Coverage, format!("{tag}-0")));

    let found = store.get_many(&keys).await.expect("get_many");
    assert_eq!(
        found.len(),
        expected.len(),
        "missing keys are left out, duplicates returned once"
    );
    assert!(
        found == expected,
        "current versions (tombstones flagged), in first-occurrence order"
    );
    assert!(
        store
            .get_many(&[])
            .await
            .expect("empty get_many")
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------
// Keys only, and batch writes
// ---------------------------------------------------------------------------------

/// `list_keys` answers each query with the positions and ids `list` gives for it
/// (look-up and type partitions, bounds, `after`, descending, `more`), in the
/// order of the queries; a removed term and a tombstone leave it.
pub async fn list_keys_returns_what_list_returns_without_the_records<S: ResourceStore>(store: &S) {
    let tag = unique("keys");
    let term = |suffix: &str| format!("{tag}{suffix}");
    let ids: Vec<String> = (0..7).map(|n| format!("{tag}-{n}")).collect();
    for (n, id) in ids.iter().enumerate() {
        let mut terms = vec![("name", term("a"))];
        if n % 2 == 0 {
            terms.push(("name", term("ab")));
        }
        if n == 3 {
            terms.push(("address-city", term("a")));
        }
        let terms: Vec<(&str, &str)> = terms.iter().map(|(p, t)| (*p, t.as_str())).collect();
        put_new_organization(store, id, &terms).await;
    }
    delete_organization(store, &ids[6], 1).await;
    put(
        store,
        directory_write(
            ResourceType::Organization,
            &ids[5],
            &[("name", &term("z"))],
            WriteCondition::VersionIs(1),
        ),
    )
    .await;

    let mut queries = vec![
        lookup_query("name", &term("a"), 2),
        lookup_query("name", &crate::keys::exact_term_prefix(&term("a")), 100),
        lookup_query("address-city", &term(""), 10),
        lookup_query("name", &term("nothing"), 10),
    ];
    let mut descending = lookup_query("name", &term("a"), 3);
    descending.descending = true;
    queries.push(descending);
    let first = list(store, lookup_query("name", &term("a"), 3)).await;
    let mut resumed = lookup_query("name", &term("a"), 3);
    resumed.after = first.entries.last().map(|(k, _)| k.clone());
    queries.push(resumed);
    queries.push(ListQuery::new(
        Partition::Type(ResourceType::Organization),
        5,
    ));

    let pages = store.list_keys(queries.clone()).await.expect("list_keys");
    assert_eq!(pages.len(), queries.len(), "one page per query, in order");
    for (query, page) in queries.into_iter().zip(&pages) {
        let full = list(store, query.clone()).await;
        let expected: Vec<(SortKey, String)> = full
            .entries
            .iter()
            .map(|(k, r)| (k.clone(), r.id.clone()))
            .collect();
        assert_eq!(
            page.entries, expected,
            "the keys of list's page for {query:?}"
        );
        assert_eq!(page.more, full.more, "more as list says for {query:?}");
    }
    let exact: Vec<&str> = pages[1].entries.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(
        exact,
        [&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]].map(String::as_str),
        "the exact term only, by id; the replaced term and the tombstone left"
    );
    assert!(
        store
            .list_keys(Vec::new())
            .await
            .expect("no queries")
            .is_empty()
    );
}

/// `lookup_contains` says, per (term, id), whether that current resource has exactly
/// that term under the parameter: not a longer term, not another parameter, not a
/// removed term or a tombstone; more probes than one BatchGetItem takes.
pub async fn lookup_contains_answers_each_exact_term_and_id<S: ResourceStore>(store: &S) {
    let tag = unique("has");
    let term = |suffix: &str| format!("{tag}{suffix}");
    let (one, two, three) = (format!("{tag}-1"), format!("{tag}-2"), format!("{tag}-3"));
    put_new_organization(
        store,
        &one,
        &[("name", &term("smith")), ("address-city", &term("x"))],
    )
    .await;
    put_new_organization(store, &two, &[("name", &term("smithson"))]).await;
    put_new_organization(store, &three, &[("name", &term("smith"))]).await;
    delete_organization(store, &three, 1).await;

    let mut probes = vec![
        (term("smith"), one.clone()),
        (term("smith"), two.clone()),
        (term("smithson"), two.clone()),
        (term("smi"), one.clone()),
        (term("x"), one.clone()),
        (term("smith"), three.clone()),
        (term("smith"), one.clone()),
    ];
    let expected = [true, false, true, false, false, false, true];
    for n in 0..150 {
        probes.push((term("smith"), format!("{tag}-absent-{n}")));
    }
    let found = store
        .lookup_contains(ResourceType::Organization, "name", &probes)
        .await
        .expect("lookup_contains");
    assert_eq!(found.len(), probes.len(), "one answer per probe");
    assert_eq!(
        found[..expected.len()],
        expected,
        "exact term, this parameter, current"
    );
    assert!(found[expected.len()..].iter().all(|f| !f));
    assert!(
        store
            .lookup_contains(
                ResourceType::Organization,
                "address-city",
                &[(term("x"), one)]
            )
            .await
            .expect("lookup_contains")
            == [true]
    );
}

/// `put_many` writes each resource as `put` would (versions, meta, look-up entries,
/// every version readable) and checks each condition on its own: a failed one is
/// that write's Conflict and changes nothing, the others happen.
pub async fn put_many_writes_each_as_put_with_its_own_condition<S: ResourceStore>(store: &S) {
    let tag = unique("pm");
    let term = format!("{tag}t");
    let names: Vec<String> = (0..30).map(|n| format!("{tag}-{n}")).collect();
    let first = put_new_organization(store, &names[0], &[("name", &term)]).await;
    let mut writes: Vec<ResourceWrite> = names
        .iter()
        .map(|id| {
            directory_write(
                ResourceType::Organization,
                id,
                &[("name", &term)],
                WriteCondition::Absent,
            )
        })
        .collect();
    writes[0].condition = WriteCondition::VersionIs(1);
    writes[1].condition = WriteCondition::VersionIs(1);
    let outcomes = store.put_many(writes).await.expect("put_many");
    assert_eq!(outcomes.len(), names.len(), "one outcome per write");
    let written: Vec<ResourceRecord> = outcomes
        .into_iter()
        .enumerate()
        .filter_map(|(n, outcome)| match (n, outcome) {
            (1, outcome) => {
                assert_conflict(outcome, "a write over a version that does not exist");
                None
            }
            (_, Ok(record)) => Some(record),
            (n, Err(e)) => panic!("write {n} failed: {e}"),
        })
        .collect();
    assert_eq!(
        written[0].version_id, 2,
        "the next version of the existing one"
    );
    assert!(written[0].last_updated > first.last_updated);
    assert!(written[1..].iter().all(|r| r.version_id == 1));
    assert_eq!(
        get(store, ResourceType::Organization, &names[1]).await,
        None,
        "the conflicting write changed nothing"
    );
    for record in &written {
        assert_eq!(
            get(store, ResourceType::Organization, &record.id)
                .await
                .as_ref(),
            Some(record),
            "the current version is what put_many returned"
        );
        let body = parse(&record.body);
        assert_eq!(body["id"], record.id.as_str());
        assert_eq!(body["meta"]["versionId"], record.version_id.to_string());
    }
    assert_eq!(
        vread(store, ResourceType::Organization, &names[0], 1).await,
        Some(first),
        "earlier versions stay readable"
    );
    let listed = list_all(
        store,
        lookup_query("name", &crate::keys::exact_term_prefix(&term), 100),
    )
    .await;
    assert_eq!(
        sorted(ids(&listed)),
        sorted(written.iter().map(|r| r.id.clone()).collect()),
        "look-up entries written with each"
    );
    assert!(store.put_many(Vec::new()).await.expect("empty").is_empty());
}

// ---------------------------------------------------------------------------------
// Key-value records
// ---------------------------------------------------------------------------------

/// `insert` creates a record only where no live one is: the first insert wins, later
/// ones (also racing ones) return false and change nothing; namespaces are separate.
pub async fn kv_insert_creates_only_when_absent<S: KeyValueStore>(store: &S) {
    let ns = unique("kv-ins");
    let first = json!({"client": "app-1", "scope": ["patient/*.read"]});
    assert!(kv_insert(store, &ns, "code-1", &first, None).await);
    assert!(
        !kv_insert(store, &ns, "code-1", &json!({"client": "other"}), None).await,
        "a second insert of a live key returns false"
    );
    assert_eq!(
        kv_get(store, &ns, "code-1").await,
        Some(entry(first, 1, None)),
        "the losing insert changed nothing; a new record is version 1"
    );
    assert_eq!(
        kv_get(store, &unique("kv-ins-other"), "code-1").await,
        None,
        "namespaces are separate"
    );

    let values: Vec<Value> = (0..8).map(|n| json!({"writer": n})).collect();
    let racing = join_all(
        values
            .iter()
            .map(|value| store.insert(&ns, "race", value, None))
            .collect(),
    )
    .await;
    let winners: Vec<usize> = racing
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Ok(true)))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one racing insert wins: {racing:?}"
    );
    assert!(racing.iter().all(Result::is_ok), "losers are not errors");
    assert_eq!(
        kv_get(store, &ns, "race").await.map(|e| e.value),
        Some(json!({"writer": winners[0]})),
        "the record is the winner's"
    );
}

/// `put` creates or replaces (bumping the version, setting or clearing the expiry),
/// values of every JSON kind round-trip exactly (up to the size limit), and `delete`
/// removes the record, after which numbering restarts.
pub async fn kv_put_get_and_delete_round_trip<S: KeyValueStore>(store: &S) {
    let ns = unique("kv-put");
    let later = kv::unix_now() + 3600;
    let values = [
        json!({"nested": {"list": [1, -2, 3.25, "é€😀", null, true]}, "big": u64::MAX}),
        json!("a string"),
        json!(42),
        json!(-7),
        json!(1.5),
        json!(null),
        json!(["x", {"y": false}]),
        json!("x".repeat(kv::MAX_VALUE_BYTES - 2)),
    ];
    for (n, value) in values.iter().enumerate() {
        let key = format!("value-{n}");
        kv_put(store, &ns, &key, value, Some(later)).await;
        assert_eq!(
            kv_get(store, &ns, &key).await,
            Some(entry(value.clone(), 1, Some(later))),
            "value {n} round-trips with its expiry"
        );
    }

    kv_put(store, &ns, "k", &json!({"n": 1}), Some(later)).await;
    kv_put(store, &ns, "k", &json!({"n": 2}), None).await;
    assert_eq!(
        kv_get(store, &ns, "k").await,
        Some(entry(json!({"n": 2}), 2, None)),
        "put replaces the value, bumps the version and clears the expiry"
    );
    kv_put(store, &ns, "k", &json!(5), Some(later)).await;
    assert_eq!(
        kv_get(store, &ns, "k").await,
        Some(entry(json!(5), 3, Some(later)))
    );

    kv_delete(store, &ns, "k").await;
    assert_eq!(kv_get(store, &ns, "k").await, None, "delete removes");
    kv_delete(store, &ns, "k").await;
    kv_delete(store, &ns, "never-written").await;
    kv_put(store, &ns, "k", &json!("again"), None).await;
    assert_eq!(
        kv_get(store, &ns, "k").await.map(|e| e.version),
        Some(1),
        "a record written after a delete starts again at version 1"
    );
}

/// `replace` writes only over the live record's current version: a stale, future or
/// absent version returns false, and of racing replacers exactly one wins.
pub async fn kv_replace_needs_the_live_version<S: KeyValueStore>(store: &S) {
    let ns = unique("kv-rep");
    let later = kv::unix_now() + 3600;
    assert!(
        !kv_replace(store, &ns, "handle", 1, &json!("x"), None).await,
        "replace of an absent record returns false"
    );
    assert!(kv_insert(store, &ns, "handle", &json!({"gen": 1}), None).await);
    assert!(
        !kv_replace(store, &ns, "handle", 2, &json!({"gen": 9}), None).await,
        "a future version returns false"
    );
    assert!(kv_replace(store, &ns, "handle", 1, &json!({"gen": 2}), Some(later)).await);
    assert_eq!(
        kv_get(store, &ns, "handle").await,
        Some(entry(json!({"gen": 2}), 2, Some(later))),
        "replace writes value and expiry and bumps the version"
    );
    assert!(
        !kv_replace(store, &ns, "handle", 1, &json!({"gen": 9}), None).await,
        "a stale version returns false"
    );

    let values: Vec<Value> = (0..8).map(|n| json!({"gen": 3, "writer": n})).collect();
    let racing = join_all(
        values
            .iter()
            .map(|value| store.replace(&ns, "handle", 2, value, None))
            .collect(),
    )
    .await;
    assert_eq!(
        racing.iter().filter(|r| matches!(r, Ok(true))).count(),
        1,
        "exactly one racing replace wins: {racing:?}"
    );
    assert!(racing.iter().all(Result::is_ok), "losers are not errors");
    let current = kv_get(store, &ns, "handle").await.expect("record");
    assert_eq!((current.version, &current.value["gen"]), (3, &json!(3)));
}

/// An expired record reads as absent for `get`, `take`, `replace` and `list` (before
/// any sweeper ran), may be inserted again, and restarts a counter; a record also
/// expires on its own while stored.
pub async fn kv_expired_records_are_invisible_and_reinsertable<S: KeyValueStore>(store: &S) {
    let ns = unique("kv-exp");
    let now = kv::unix_now();
    kv_put(store, &ns, "dead", &json!("old"), Some(now - 10)).await;
    kv_put(store, &ns, "live", &json!("kept"), Some(now + 3600)).await;
    assert_eq!(kv_get(store, &ns, "dead").await, None, "get hides it");
    assert_eq!(kv_take(store, &ns, "dead").await, None, "take hides it");
    assert!(
        !kv_replace(store, &ns, "dead", 1, &json!("new"), None).await,
        "replace does not write over it"
    );
    assert_eq!(
        kv_keys(&kv_list(store, &ns, "", 10).await),
        ["live"],
        "list hides it"
    );

    assert!(
        kv_insert(store, &ns, "dead", &json!("reborn"), Some(now + 3600)).await,
        "an expired record may be inserted again"
    );
    let reborn = kv_get(store, &ns, "dead").await.expect("reinserted");
    assert_eq!(reborn.value, json!("reborn"));
    assert_eq!(
        reborn.version, 2,
        "numbering continues over a stored expired record"
    );

    kv_put(store, &ns, "attempts", &json!(41), Some(now - 1)).await;
    assert_eq!(
        kv_increment(store, &ns, "attempts", 1, Some(now + 900)).await,
        1,
        "an expired counter restarts from 0"
    );
    assert_eq!(
        kv_get(store, &ns, "attempts")
            .await
            .and_then(|e| e.expires_at),
        Some(now + 900),
        "and takes the new expiry"
    );

    let soon = kv::unix_now() + 2;
    assert!(kv_insert(store, &ns, "soon", &json!("brief"), Some(soon)).await);
    assert!(
        kv_get(store, &ns, "soon").await.is_some(),
        "live until it expires"
    );
    while kv::unix_now() < soon {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        kv_get(store, &ns, "soon").await,
        None,
        "it expired in place"
    );
    assert_eq!(kv_take(store, &ns, "soon").await, None);
    assert_eq!(
        kv_keys(&kv_list(store, &ns, "so", 10).await),
        Vec::<String>::new()
    );
}

/// Of 16 concurrent `take`s of one record exactly one gets it, with its value; the key
/// is then absent and may be inserted again.
pub async fn kv_take_is_single_use_under_concurrency<S: KeyValueStore>(store: &S) {
    let ns = unique("kv-take");
    let code = json!({"client_id": "app", "code_challenge": "abc"});
    let expires = kv::unix_now() + 60;
    assert!(kv_insert(store, &ns, "code", &code, Some(expires)).await);
    let takes = join_all((0..16).map(|_| store.take(&ns, "code")).collect()).await;
    let taken: Vec<KvEntry> = takes
        .into_iter()
        .filter_map(|r| r.unwrap_or_else(|e| panic!("take failed: {e}")))
        .collect();
    assert_eq!(
        taken,
        [entry(code.clone(), 1, Some(expires))],
        "exactly one concurrent take gets the record"
    );
    assert_eq!(kv_get(store, &ns, "code").await, None, "take deletes");
    assert_eq!(
        kv_take(store, &ns, "code").await,
        None,
        "a second take gets nothing"
    );
    assert_eq!(kv_take(store, &ns, "missing").await, None);
    assert!(
        kv_insert(store, &ns, "code", &code, None).await,
        "a taken key may be inserted again"
    );
}

/// A budget of 3 per minute: three uses pass, the fourth is told to come back when
/// the window ends; another subject has its own count; the next window starts afresh.
pub async fn kv_budget_allows_the_limit_per_window_then_says_when_to_retry<S: KeyValueStore>(
    store: &S,
) {
    use crate::budget::{Budget, Spend, spend};
    let ns = &unique("kv-budget");
    let budget = Budget {
        limit: 3,
        window_secs: 60,
    };
    let now = kv::unix_now();
    let start = now - now.rem_euclid(60);
    let at = start + 45;
    for _ in 0..3 {
        assert_eq!(
            spend(store, ns, "app-1", budget, at).await.ok(),
            Some(Spend::Allowed)
        );
    }
    assert_eq!(
        spend(store, ns, "app-1", budget, at).await.ok(),
        Some(Spend::Exhausted {
            retry_after_secs: 15
        })
    );
    assert_eq!(
        spend(store, ns, "app-2", budget, at).await.ok(),
        Some(Spend::Allowed),
        "one client's spending is not another's"
    );
    assert_eq!(
        spend(store, ns, "app-1", budget, start + 60).await.ok(),
        Some(Spend::Allowed),
        "the next window starts afresh"
    );
    assert!(
        spend(store, ns, "bad\u{1}id", budget, at).await.is_err(),
        "a subject the store cannot key is an error, not a free pass"
    );
}

/// 8 tasks × 10 increments: every increment returns a distinct value, the counter ends
/// at exactly 80 and keeps the expiry it started with; non-integers and overflow are
/// refused without a change.
pub async fn kv_concurrent_increments_sum_exactly<S: KeyValueStore>(store: &S) {
    const TASKS: i64 = 8;
    const INCREMENTS: i64 = 10;
    let ns = &unique("kv-ctr");
    let window = kv::unix_now() + 900;
    let task = |n: i64| async move {
        let mut seen = Vec::new();
        for _ in 0..INCREMENTS {
            // Later increments ask for a later expiry: a live counter must ignore it.
            let expires = window + n + 1;
            seen.push(kv_increment(store, ns, "user-1", 1, Some(expires)).await);
        }
        seen
    };
    assert_eq!(kv_increment(store, ns, "user-1", 0, Some(window)).await, 0);
    let mut seen: Vec<i64> = join_all((0..TASKS).map(task).collect())
        .await
        .into_iter()
        .flatten()
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=TASKS * INCREMENTS).collect::<Vec<_>>(),
        "every increment saw its own value"
    );
    assert_eq!(
        kv_get(store, ns, "user-1").await,
        Some(entry(json!(TASKS * INCREMENTS), 81, Some(window))),
        "no increment was lost, and the window kept its first expiry"
    );
    assert_eq!(kv_increment(store, ns, "user-1", -80, None).await, 0);
    assert_eq!(kv_increment(store, ns, "fresh", -3, None).await, -3);

    kv_put(store, ns, "text", &json!({"not": "a counter"}), None).await;
    assert_invalid_value(
        store.increment(ns, "text", 1, None).await,
        "increment of a non-integer",
    );
    kv_put(store, ns, "max", &json!(i64::MAX), None).await;
    assert_invalid_value(
        store.increment(ns, "max", 1, None).await,
        "increment past i64::MAX",
    );
    assert_eq!(
        kv_get(store, ns, "max").await,
        Some(entry(json!(i64::MAX), 1, None)),
        "a refused increment changes nothing"
    );
    assert_eq!(kv_increment(store, ns, "max", -1, None).await, i64::MAX - 1);
}

/// `list` returns the live records of one namespace whose key has the prefix, in key
/// (UTF-8 byte) order, at most `limit`, skipping expired records without coming up short.
pub async fn kv_list_by_prefix_in_key_order_with_limit<S: KeyValueStore>(store: &S) {
    let ns = unique("kv-list");
    let now = kv::unix_now();
    for key in [
        "app/b", "app/a", "app/é", "app/c", "app/a/x", "apq", "ap", "zzz",
    ] {
        kv_put(store, &ns, key, &json!({"key": key}), None).await;
    }
    for key in ["app/aa", "app/ab", "app/ac"] {
        kv_put(store, &ns, key, &json!("expired"), Some(now - 5)).await;
    }
    kv_put(store, &format!("{ns}x"), "app/a0", &json!("other"), None).await;

    let all = kv_list(store, &ns, "app/", 100).await;
    assert_eq!(
        kv_keys(&all),
        ["app/a", "app/a/x", "app/b", "app/c", "app/é"],
        "live keys with the prefix, in byte order, this namespace only"
    );
    assert_eq!(all[0].1, entry(json!({"key": "app/a"}), 1, None));
    assert_eq!(
        kv_keys(&kv_list(store, &ns, "app/", 3).await),
        ["app/a", "app/a/x", "app/b"],
        "the limit counts live records only"
    );
    assert_eq!(
        kv_keys(&kv_list(store, &ns, "", 100).await),
        [
            "ap", "app/a", "app/a/x", "app/b", "app/c", "app/é", "apq", "zzz"
        ]
    );
    assert_eq!(
        kv_keys(&kv_list(store, &ns, "app/a", 100).await),
        ["app/a", "app/a/x"]
    );
    assert!(kv_list(store, &ns, "app/", 0).await.is_empty());
    assert!(kv_list(store, &ns, "b", 10).await.is_empty());
    assert!(kv_list(store, &unique("kv-empty"), "", 10).await.is_empty());
}

/// Empty, over-long and separator-carrying namespaces and keys, and over-large values,
/// are refused with a typed error by every method, before anything is stored.
pub async fn kv_invalid_keys_and_values_are_rejected<S: KeyValueStore>(store: &S) {
    let ns = unique("kv-bad");
    let long = "k".repeat(kv::MAX_KEY_BYTES + 1);
    let bad = [
        (ns.as_str(), ""),
        ("", "k"),
        (ns.as_str(), long.as_str()),
        (long.as_str(), "k"),
        ("a#b", "k"),
        (ns.as_str(), "a\0b"),
        (ns.as_str(), "a\u{1}b"),
        (ns.as_str(), "line\nbreak"),
    ];
    let value = json!("v");
    for (namespace, key) in bad {
        let what = format!("{namespace:?}/{key:?}");
        assert_invalid_key(store.insert(namespace, key, &value, None).await, &what);
        assert_invalid_key(store.put(namespace, key, &value, None).await, &what);
        assert_invalid_key(store.get(namespace, key).await, &what);
        assert_invalid_key(store.replace(namespace, key, 1, &value, None).await, &what);
        assert_invalid_key(store.take(namespace, key).await, &what);
        assert_invalid_key(store.delete(namespace, key).await, &what);
        assert_invalid_key(store.increment(namespace, key, 1, None).await, &what);
    }
    assert_invalid_key(store.list("", "", 10).await, "list with an empty namespace");
    assert_invalid_key(
        store.list(&ns, "a\0", 10).await,
        "list with a control character",
    );
    assert_invalid_key(store.list(&ns, &long, 10).await, "list with a long prefix");

    let huge = json!("x".repeat(kv::MAX_VALUE_BYTES));
    assert_invalid_value(
        store.insert(&ns, "big", &huge, None).await,
        "insert of a huge value",
    );
    assert_invalid_value(
        store.put(&ns, "big", &huge, None).await,
        "put of a huge value",
    );
    assert!(kv_insert(store, &ns, "big", &value, None).await);
    assert_invalid_value(
        store.replace(&ns, "big", 1, &huge, None).await,
        "replace with a huge value",
    );
    assert_eq!(
        kv_get(store, &ns, "big").await,
        Some(entry(value.clone(), 1, None))
    );

    let widest = format!(
        "s3://bucket/{}#etag",
        "é".repeat((kv::MAX_KEY_BYTES - 17) / 2)
    );
    assert!(widest.len() <= kv::MAX_KEY_BYTES);
    kv_put(store, &ns, &widest, &value, None).await;
    assert_eq!(
        kv_get(store, &ns, &widest).await.map(|e| e.value),
        Some(value),
        "a key of up to {} bytes with `/`, `#` and non-ASCII is fine",
        kv::MAX_KEY_BYTES
    );
}

fn entry(value: Value, version: u64, expires_at: Option<i64>) -> KvEntry {
    KvEntry {
        value,
        version,
        expires_at,
    }
}

async fn kv_insert<S: KeyValueStore>(
    store: &S,
    ns: &str,
    key: &str,
    value: &Value,
    expires_at: Option<i64>,
) -> bool {
    store
        .insert(ns, key, value, expires_at)
        .await
        .unwrap_or_else(|e| panic!("insert {ns}/{key} failed: {e}"))
}

async fn kv_put<S: KeyValueStore>(
    store: &S,
    ns: &str,
    key: &str,
    value: &Value,
    expires_at: Option<i64>,
) {
    store
        .put(ns, key, value, expires_at)
        .await
        .unwrap_or_else(|e| panic!("put {ns}/{key} failed: {e}"));
}

async fn kv_get<S: KeyValueStore>(store: &S, ns: &str, key: &str) -> Option<KvEntry> {
    store
        .get(ns, key)
        .await
        .unwrap_or_else(|e| panic!("get {ns}/{key} failed: {e}"))
}

async fn kv_replace<S: KeyValueStore>(
    store: &S,
    ns: &str,
    key: &str,
    expected_version: u64,
    value: &Value,
    expires_at: Option<i64>,
) -> bool {
    store
        .replace(ns, key, expected_version, value, expires_at)
        .await
        .unwrap_or_else(|e| panic!("replace {ns}/{key} failed: {e}"))
}

async fn kv_take<S: KeyValueStore>(store: &S, ns: &str, key: &str) -> Option<KvEntry> {
    store
        .take(ns, key)
        .await
        .unwrap_or_else(|e| panic!("take {ns}/{key} failed: {e}"))
}

async fn kv_delete<S: KeyValueStore>(store: &S, ns: &str, key: &str) {
    store
        .delete(ns, key)
        .await
        .unwrap_or_else(|e| panic!("delete {ns}/{key} failed: {e}"));
}

async fn kv_increment<S: KeyValueStore>(
    store: &S,
    ns: &str,
    key: &str,
    delta: i64,
    expires_at: Option<i64>,
) -> i64 {
    store
        .increment(ns, key, delta, expires_at)
        .await
        .unwrap_or_else(|e| panic!("increment {ns}/{key} failed: {e}"))
}

async fn kv_list<S: KeyValueStore>(
    store: &S,
    ns: &str,
    prefix: &str,
    limit: usize,
) -> Vec<(String, KvEntry)> {
    let listed = store
        .list(ns, prefix, limit)
        .await
        .unwrap_or_else(|e| panic!("list {ns}/{prefix}* failed: {e}"));
    assert!(listed.len() <= limit, "list never exceeds its limit");
    assert!(
        listed.windows(2).all(|w| w[0].0 < w[1].0),
        "list returns keys in strictly increasing order"
    );
    listed
}

fn kv_keys(listed: &[(String, KvEntry)]) -> Vec<String> {
    listed.iter().map(|(key, _)| key.clone()).collect()
}

fn assert_invalid_key<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::InvalidKey(_)) => {}
        other => panic!("{what} must be InvalidKey, got {other:?}"),
    }
}

fn assert_invalid_value<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::InvalidValue(_)) => {}
        other => panic!("{what} must be InvalidValue, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// An id no other check (or earlier run against the same store) uses: `label-…`.
pub fn unique(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{label}-{:x}-{:x}-{n}",
        std::process::id(),
        nanos % (1 << 60)
    )
}

fn member_write(
    resource_type: ResourceType,
    id: &str,
    patient: &str,
    resource: Value,
    condition: WriteCondition,
) -> ResourceWrite {
    let index = SearchIndex {
        compartment: Some(patient.to_owned()),
        ..SearchIndex::default()
    };
    ResourceWrite {
        resource_type,
        id: id.to_owned(),
        resource,
        index,
        deleted: false,
        condition,
    }
}

fn directory_write(
    resource_type: ResourceType,
    id: &str,
    terms: &[(&str, &str)],
    condition: WriteCondition,
) -> ResourceWrite {
    let index = SearchIndex {
        lookup_terms: terms
            .iter()
            .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
            .collect(),
        ..SearchIndex::default()
    };
    let resource = json!({"resourceType": resource_type.as_str(), "name": id});
    ResourceWrite {
        resource_type,
        id: id.to_owned(),
        resource,
        index,
        deleted: false,
        condition,
    }
}

fn compartment(patient: &str, resource_type: ResourceType) -> Partition {
    Partition::Compartment {
        patient: patient.to_owned(),
        resource_type,
    }
}

fn lookup_query(param: &str, prefix: &str, limit: usize) -> ListQuery {
    let partition = Partition::Lookup {
        resource_type: ResourceType::Organization,
        param: param.to_owned(),
        prefix: prefix.to_owned(),
    };
    ListQuery::new(partition, limit)
}

/// A new Organization with `terms` as its look-up entries.
async fn put_new_organization<S: ResourceStore>(
    store: &S,
    id: &str,
    terms: &[(&str, &str)],
) -> ResourceRecord {
    put(
        store,
        directory_write(
            ResourceType::Organization,
            id,
            terms,
            WriteCondition::Absent,
        ),
    )
    .await
}

/// Deletes the Organization `id` at `version` (its look-up entries go with it).
async fn delete_organization<S: ResourceStore>(store: &S, id: &str, version: u64) {
    let mut gone = directory_write(
        ResourceType::Organization,
        id,
        &[],
        WriteCondition::VersionIs(version),
    );
    gone.deleted = true;
    put(store, gone).await;
}

async fn put<S: ResourceStore>(store: &S, write: ResourceWrite) -> ResourceRecord {
    let what = format!("{}/{}", write.resource_type, write.id);
    match store.put(write).await {
        Ok(record) => record,
        Err(e) => panic!("put {what} failed: {e}"),
    }
}

async fn get<S: ResourceStore>(
    store: &S,
    resource_type: ResourceType,
    id: &str,
) -> Option<ResourceRecord> {
    store
        .get(resource_type, id)
        .await
        .unwrap_or_else(|e| panic!("get {resource_type}/{id} failed: {e}"))
}

async fn vread<S: ResourceStore>(
    store: &S,
    resource_type: ResourceType,
    id: &str,
    version: u64,
) -> Option<ResourceRecord> {
    store
        .get_version(resource_type, id, version)
        .await
        .unwrap_or_else(|e| panic!("get_version {resource_type}/{id}/{version} failed: {e}"))
}

async fn list<S: ResourceStore>(store: &S, query: ListQuery) -> ListPage {
    store
        .list(query.clone())
        .await
        .unwrap_or_else(|e| panic!("list {query:?} failed: {e}"))
}

/// Every page of a listing, following `after` until `more` is false.
async fn pages<S: ResourceStore>(store: &S, mut query: ListQuery) -> Vec<ListPage> {
    let mut pages = Vec::new();
    loop {
        let page = list(store, query.clone()).await;
        assert!(
            page.entries.len() <= query.limit,
            "a page never exceeds its limit"
        );
        let more = page.more;
        query.after = page
            .entries
            .last()
            .map(|(key, _)| key.clone())
            .or(query.after);
        pages.push(page);
        if !more {
            return pages;
        }
        assert!(pages.len() < 10_000, "listing does not terminate");
    }
}

async fn list_all<S: ResourceStore>(store: &S, query: ListQuery) -> Vec<(SortKey, ResourceRecord)> {
    let descending = query.descending;
    let entries: Vec<_> = pages(store, query)
        .await
        .into_iter()
        .flat_map(|p| p.entries)
        .collect();
    let ordered = if descending {
        entries.windows(2).all(|w| w[0].0 > w[1].0)
    } else {
        is_strictly_increasing(&entries)
    };
    assert!(
        ordered,
        "entries come in strict sort-key order across pages"
    );
    entries
}

fn is_strictly_increasing(entries: &[(SortKey, ResourceRecord)]) -> bool {
    entries.windows(2).all(|w| w[0].0 < w[1].0)
}

fn ids(entries: &[(SortKey, ResourceRecord)]) -> Vec<String> {
    entries.iter().map(|(_, r)| r.id.clone()).collect()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).expect("stored bodies are JSON")
}

fn assert_conflict(result: Result<ResourceRecord, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict { .. }) => {}
        other => panic!("{what} must be a Conflict, got {other:?}"),
    }
}

fn eob_body() -> Value {
    json!({"resourceType": "ExplanationOfBenefit", "status": "active", "use": "claim"})
}

/// Text from a 90-character alphabet, from a xorshift generator: deflate cannot
/// shrink it much below 6.5 bits per character.
fn random_text(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&()*+,-./:;<=>?@[]^_`{|}~ ";
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

/// An ExplanationOfBenefit with enough claim lines to reach `size` bytes of JSON.
fn large_eob(size: usize) -> Value {
    let mut items = Vec::new();
    let mut bytes = 0;
    let mut n: u64 = 0;
    while bytes < size {
        n += 1;
        let item = json!({
            "sequence": n,
            "productOrService": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": format!("{:05}", 99_000 + n % 500)}]},
            "servicedDate": format!("2026-{:02}-{:02}", 1 + n % 12, 1 + n % 28),
            "adjudication": [
                {"category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "submitted"}]},
                 "amount": {"value": (n * 37 % 100_000) as f64 / 100.0, "currency": "USD"}},
                {"category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "benefit"}]},
                 "amount": {"value": (n * 23 % 80_000) as f64 / 100.0, "currency": "USD"}}
            ]
        });
        bytes += item.to_string().len() + 1;
        items.push(item);
    }
    json!({"resourceType": "ExplanationOfBenefit", "status": "active", "use": "claim", "item": items})
}

/// Polls all futures concurrently on the current task (no `'static` bound, so checks
/// can borrow the store) and returns their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}
