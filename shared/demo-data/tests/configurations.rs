//! The public API at the edges of its configuration space.

use std::collections::BTreeSet;

use demo_data::{DemoConfig, generate};
use fhir::{ResourceType, is_valid_id};

fn count(config: &DemoConfig, t: ResourceType) -> usize {
    generate(config)
        .resources
        .iter()
        .filter(|(rt, ..)| *rt == t)
        .count()
}

#[test]
fn no_members_still_yields_the_shared_directory() {
    let data = generate(&DemoConfig {
        members: 0,
        ..DemoConfig::default()
    });
    assert!(data.members.is_empty());
    let types: BTreeSet<ResourceType> = data.resources.iter().map(|(t, ..)| *t).collect();
    assert_eq!(
        types,
        BTreeSet::from([ResourceType::Organization, ResourceType::Practitioner])
    );
}

#[test]
fn the_eob_count_is_exact_for_small_and_large_histories() {
    for eobs in [0, 1, 4, 5, 11, 12, 13, 100, 250] {
        let config = DemoConfig {
            members: 2,
            eobs_per_member: eobs,
            seed: 7,
        };
        assert_eq!(
            count(&config, ResourceType::ExplanationOfBenefit),
            2 * eobs,
            "{eobs}"
        );
    }
}

#[test]
fn large_data_sets_keep_ids_valid_and_unique() {
    let data = generate(&DemoConfig {
        members: 120,
        eobs_per_member: 10,
        seed: 42,
    });
    let ids: BTreeSet<(ResourceType, &str)> = data
        .resources
        .iter()
        .map(|(t, id, _)| (*t, id.as_str()))
        .collect();
    assert_eq!(ids.len(), data.resources.len());
    assert!(ids.iter().all(|(_, id)| is_valid_id(id)));
    let member_ids: BTreeSet<&str> = data.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(member_ids.len(), 120);
}
