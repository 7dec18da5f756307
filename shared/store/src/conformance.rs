//! The conformance suite: the behaviour every [`ResourceStore`] adapter must show.
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
    ListPage, ListQuery, Partition, ResourceRecord, ResourceStore, ResourceWrite, SortKey,
    StoreError, WriteCondition, update_with,
};

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
    put(
        store,
        directory_write(
            ResourceType::Organization,
            &org,
            &[("name", &term)],
            WriteCondition::Absent,
        ),
    )
    .await;
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
    put(
        store,
        directory_write(
            ResourceType::Organization,
            &one,
            &[("name", &term("smith")), ("name", &term("smithson"))],
            WriteCondition::Absent,
        ),
    )
    .await;
    put(
        store,
        directory_write(
            ResourceType::Organization,
            &two,
            &[("name", &term("smyth"))],
            WriteCondition::Absent,
        ),
    )
    .await;
    put(
        store,
        directory_write(
            ResourceType::Organization,
            &three,
            &[
                ("name", &term("jones")),
                ("address-city", &term("smithville")),
            ],
            WriteCondition::Absent,
        ),
    )
    .await;

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
