//! Deterministic synthetic CARIN Blue Button 2.x data.
//!
//! The local runner loads it on first start, tests use it as fixtures and benchmarks
//! use it as load. Same [`DemoConfig`] → byte-identical resources, on any machine,
//! because all randomness comes from a seeded in-crate PRNG and the directory is fixed.
//!
//! What a member gets: a C4BB-Patient, a C4BB-Coverage with our plan (and for every
//! fifth member a second Coverage with another carrier, shown as non-focal insurance),
//! a C4BB-RelatedPerson for dependents (the subscriber, who is also the payee of their
//! out-of-network claims), and `eobs_per_member` EOBs across all five CARIN EOB
//! profiles, about one in twelve of them adjusted claims linked `prior`/`replacedby`.
//! Organizations and Practitioners are shared by all members.

mod amounts;
mod catalog;
mod date;
mod directory;
mod elements;
mod eob;
mod kind;
mod member;
mod plan;
mod rng;
mod systems;

use fhir::ResourceType;
use serde_json::Value;

use crate::rng::Rng;

/// How much data to generate and from which seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    pub members: usize,
    /// EOBs per member. The first five are one of each CARIN type; from 12 on, about
    /// one in twelve is an adjustment of an earlier claim.
    pub eobs_per_member: usize,
    pub seed: u64,
}

impl Default for DemoConfig {
    /// Five members with three years' worth of claims each: small enough to load in
    /// milliseconds, large enough that every search parameter finds something.
    fn default() -> Self {
        DemoConfig {
            members: 5,
            eobs_per_member: 36,
            seed: 20_190_101,
        }
    }
}

/// The identity facts a sign-in step checks against what the member types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoMember {
    pub patient_id: String,
    pub member_id: String,
    pub family: String,
    pub given: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    pub email: String,
    pub postal_code: String,
}

/// Everything generated: resources as `(type, id, JSON)` and the members' identities.
#[derive(Debug, Clone)]
pub struct DemoData {
    pub resources: Vec<(ResourceType, String, Value)>,
    pub members: Vec<DemoMember>,
}

/// When member and coverage resources were last updated: fixed, for reproducibility.
const MEMBER_UPDATED: date::Date = date::Date::ymd(2025, 1, 15);

/// Generates the data set. Directory first, then each member's resources and EOBs.
pub fn generate(config: &DemoConfig) -> DemoData {
    let mut resources = directory::resources();
    let mut members = Vec::with_capacity(config.members);
    let updated = MEMBER_UPDATED.instant(9 * 3600);
    for index in 0..config.members {
        // One stream per member: more members or EOBs never change earlier members.
        let mut rng = Rng::stream(config.seed, index as u64);
        let m = member::member(index, &mut rng);
        resources.extend(member::resources(&m, &updated));
        for claim in plan::plan_claims(&m, config.eobs_per_member, &mut rng) {
            let eob = eob::render(&claim, &m);
            resources.push((ResourceType::ExplanationOfBenefit, claim.id, eob));
        }
        members.push(m.identity);
    }
    DemoData { resources, members }
}

#[cfg(test)]
mod tests;
