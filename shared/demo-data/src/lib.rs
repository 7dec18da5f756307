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
//!
//! The same demo also exists as X12 ([`x12::files`]): the enrolment (834), the
//! non-pharmacy claims (837P/I/D) and their payment (835). Ids are the ones the X12
//! path gives ([`edi_fhir::ids`]), so a resource the X12 files produce has the id it
//! has here; what X12 cannot carry is [`DemoData::fhir_only`].

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
pub mod roster;
pub mod x12;

use std::collections::{BTreeSet, HashMap};

use fhir::ResourceType;
use serde_json::Value;

use crate::member::Member;
use crate::plan::PlannedClaim;
use crate::rng::Rng;

/// The plan the demo is written for: its payer id (X12 N1*PR, NM1*PR, and part of
/// every member, coverage and claim id) and its name.
pub const PAYER_ID: &str = "999996666";
pub const PAYER_NAME: &str = "Demo Health Plan";

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
    let updated = MEMBER_UPDATED.instant(9 * 3600);
    let planned = plan(config);
    for (m, claims) in &planned {
        resources.extend(member::resources(m, &updated));
        for claim in claims {
            let eob = eob::render(claim, m);
            resources.push((ResourceType::ExplanationOfBenefit, claim.id.clone(), eob));
        }
    }
    let members = planned.into_iter().map(|(m, _)| m.identity).collect();
    DemoData { resources, members }
}

/// Every member with their claim history: what both the FHIR and the X12 form render.
pub(crate) fn plan(config: &DemoConfig) -> Vec<(Member, Vec<PlannedClaim>)> {
    (0..config.members)
        .map(|index| {
            // One stream per member: more members or EOBs never change earlier members.
            let mut rng = Rng::stream(config.seed, index as u64);
            let m = member::member(index, &mut rng);
            let claims = plan::plan_claims(&m, config.eobs_per_member, &mut rng);
            (m, claims)
        })
        .collect()
}

impl DemoData {
    /// What the demo's X12 files cannot carry, to be loaded as FHIR beside them: the
    /// RelatedPersons (no X12 transaction names the subscriber of a dependent's policy
    /// as a person of their own) and the pharmacy EOBs (pharmacy claims travel as
    /// NCPDP, not X12), with every resource they reference, in generation order.
    ///
    /// Some of the referenced resources are also made by the X12 files (the Patient,
    /// the Coverage, the plan, providers): write these only where absent, so that
    /// what the X12 path made stays.
    pub fn fhir_only(&self) -> Vec<(ResourceType, String, Value)> {
        let position: HashMap<String, usize> = self
            .resources
            .iter()
            .enumerate()
            .map(|(i, (t, id, _))| (format!("{t}/{id}"), i))
            .collect();
        let mut wanted: BTreeSet<usize> = BTreeSet::new();
        let mut pending: Vec<usize> = self
            .resources
            .iter()
            .enumerate()
            .filter(|(_, (t, _, r))| {
                *t == ResourceType::RelatedPerson
                    || (*t == ResourceType::ExplanationOfBenefit
                        && r["type"]["coding"][0]["code"] == "pharmacy")
            })
            .map(|(i, _)| i)
            .collect();
        while let Some(i) = pending.pop() {
            if !wanted.insert(i) {
                continue;
            }
            let mut references = Vec::new();
            if let Some((_, _, resource)) = self.resources.get(i) {
                collect_references(resource, &mut references);
            }
            pending.extend(references.iter().filter_map(|r| position.get(r)));
        }
        wanted
            .into_iter()
            .filter_map(|i| self.resources.get(i).cloned())
            .collect()
    }
}

/// Every `reference` string inside a resource.
fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, v) in fields {
                match (key.as_str(), v) {
                    ("reference", Value::String(r)) => out.push(r.clone()),
                    _ => collect_references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
