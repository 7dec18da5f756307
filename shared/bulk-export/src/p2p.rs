//! What another health plan receives of a matched member (CMS-0057-F 42 CFR
//! 422.121(b), Da Vinci PDex payer-to-payer): the one rule that both the bulk
//! `$davinci-data-export` slices ([`crate::worker`]) and the single-member
//! `$everything` apply, so the two can never disagree.
//!
//! [`shared_form`] takes one stored resource of the member and answers what is sent:
//!
//! * **Patient** as stored;
//! * **Coverage** without `costToBeneficiary` (the member's cost-sharing);
//! * **claims** (`ExplanationOfBenefit`, `use` ≠ `preauthorization`) with a date of
//!   service (billable period end, else start, else `created`) within the last five
//!   years (PDex §pdex-130; and on or after 2016-01-01), as CARIN Basis
//!   (non-financial) EOBs ([`crate::basis`]): the rule excludes provider remittances
//!   and enrollee cost-sharing;
//! * **prior authorizations** (PDex Prior Authorization, `use = preauthorization`) as
//!   stored, unless the review **denied** them (HCR01 `A3`, "Not Certified", in the
//!   header's PDex `reviewAction`), they are for **drugs** (an NDC `productOrService`
//!   or a `pharmacy` claim type: CMS-0057-F leaves drugs out), their date of service is
//!   older than five years, or (PDex: "current/active prior authorizations and those
//!   that changed status within the last year") they are neither pending
//!   (`outcome = queued`) nor in force today (`preAuthRefPeriod.end` not past) nor
//!   changed (`meta.lastUpdated`) within the last year;
//! * anything else: nothing.
//!
//! Under a `#sensitive` consent ([`ConsentPolicy::Sensitive`]) a resource the plan's
//! [`SensitivePolicy`] flags is left out whatever its type, checked on the stored
//! resource before anything is removed from it.
//!
//! [`provenance`] is the PDex Provenance sent with each resource: this plan as the
//! transmitter, the time of the request.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::basis::{non_financial_eob, within_service_window};
use crate::sensitive::SensitivePolicy;
use fhir::ResourceType;
use fhir::systems::{NDC, PDEX_REVIEW_ACTION, PDEX_REVIEW_ACTION_CODE};

/// PDex's `exportType` for payer-to-payer bulk exchange (required by
/// `$davinci-data-export` here).
pub const EXPORT_TYPE: &str = "hl7.fhir.us.davinci-pdex#payertopayer";
/// Years of data PDex requires (§pdex-130).
pub const YEARS: i32 = 5;
/// PDex Provenance profile.
pub const PROVENANCE_PROFILE: &str =
    "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/pdex-provenance";
/// The HCR01 action of a denial ("Not Certified").
const DENIED: &str = "A3";

/// What the member allowed (the HRex Consent's `policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentPolicy {
    /// `#regular`: all data.
    Regular,
    /// `#sensitive`: only data that is not sensitive.
    Sensitive,
}

impl ConsentPolicy {
    pub fn code(self) -> &'static str {
        match self {
            ConsentPolicy::Regular => "regular",
            ConsentPolicy::Sensitive => "sensitive",
        }
    }

    /// From [`ConsentPolicy::code`].
    pub fn from_code(code: &str) -> Option<ConsentPolicy> {
        match code {
            "regular" => Some(ConsentPolicy::Regular),
            "sensitive" => Some(ConsentPolicy::Sensitive),
            _ => None,
        }
    }
}

/// The dates a request is judged by, fixed when it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// `YYYY-MM-DD`: today.
    pub today: String,
    /// `YYYY-MM-DD`: five years before today (the earliest date of service sent).
    pub service_from: String,
    /// `YYYY-MM-DD`: a year before today (the earliest status change of a prior
    /// authorization that is no longer in force).
    pub changed_from: String,
}

impl Window {
    /// The window of a request made at `now` (unix seconds, UTC).
    pub fn at(now: i64) -> Window {
        let today = time::OffsetDateTime::from_unix_timestamp(now)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .date();
        let years_back = |years: i32| {
            let year = today.year() - years;
            // 29 February falls back to the 28th in a year without it.
            today
                .replace_year(year)
                .or_else(|_| today.replace_day(28).and_then(|d| d.replace_year(year)))
                .unwrap_or(today)
        };
        Window {
            today: date_text(today),
            service_from: date_text(years_back(YEARS)),
            changed_from: date_text(years_back(1)),
        }
    }

    /// The instant five years back, as a `_since` floor: PDex has a `_since` earlier
    /// than that overridden to it.
    pub fn since_floor(&self) -> String {
        format!("{}T00:00:00Z", self.service_from)
    }
}

fn date_text(date: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The resource as another plan receives it, or `None` when it is not sent.
pub fn shared_form(
    resource_type: ResourceType,
    mut resource: Value,
    policy: ConsentPolicy,
    sensitive: &SensitivePolicy,
    window: &Window,
) -> Option<Value> {
    if policy == ConsentPolicy::Sensitive && sensitive.is_sensitive(&resource) {
        return None;
    }
    match resource_type {
        ResourceType::Patient => Some(resource),
        ResourceType::Coverage => {
            if let Some(object) = resource.as_object_mut() {
                object.remove("costToBeneficiary");
            }
            Some(resource)
        }
        ResourceType::ExplanationOfBenefit => {
            let recent = service_date(&resource).is_some_and(|d| d >= window.service_from.as_str())
                && within_service_window(&resource);
            if !recent {
                return None;
            }
            if is_prior_authorization(&resource) {
                prior_authorization_shared(&resource, window).then_some(resource)
            } else {
                Some(non_financial_eob(resource))
            }
        }
        _ => None,
    }
}

/// The date of service: billable period end, else start, else `created` (the date
/// part).
fn service_date(eob: &Value) -> Option<&str> {
    ["/billablePeriod/end", "/billablePeriod/start", "/created"]
        .iter()
        .find_map(|p| eob.pointer(p).and_then(Value::as_str))
        .map(|d| d.get(..10).unwrap_or(d))
}

pub fn is_prior_authorization(eob: &Value) -> bool {
    eob.get("use").and_then(Value::as_str) == Some("preauthorization")
}

/// Whether a prior authorization is one PDex has sent to another plan.
fn prior_authorization_shared(pa: &Value, window: &Window) -> bool {
    if is_denied(pa) || is_drug(pa) {
        return false;
    }
    let pending = pa.get("outcome").and_then(Value::as_str) == Some("queued");
    // `preAuthRefPeriod` is a list in R4 (one period per `preAuthRef`), as the 278
    // mapper writes it: in force when any of them has not ended.
    let in_force = pa
        .get("preAuthRefPeriod")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|period| period.get("end").and_then(Value::as_str))
        .any(|end| end.get(..10).unwrap_or(end) >= window.today.as_str());
    let changed = pa
        .pointer("/meta/lastUpdated")
        .and_then(Value::as_str)
        .is_some_and(|at| at.get(..10).unwrap_or(at) >= window.changed_from.as_str());
    pending || in_force || changed
}

/// A denial: the review of the whole request (the header's `reviewAction`) is HCR01
/// `A3`, "Not Certified".
pub fn is_denied(pa: &Value) -> bool {
    pa.get("adjudication")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|entry| {
            entry
                .get("extension")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter(|ext| ext.get("url").and_then(Value::as_str) == Some(PDEX_REVIEW_ACTION))
        .flat_map(|ext| {
            ext.get("extension")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter(|part| part.get("url").and_then(Value::as_str) == Some(PDEX_REVIEW_ACTION_CODE))
        .flat_map(|part| {
            part.pointer("/valueCodeableConcept/coding")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .any(|coding| coding.get("code").and_then(Value::as_str) == Some(DENIED))
}

/// A drug authorization: a `pharmacy` claim type, or a service coded with an NDC.
pub fn is_drug(pa: &Value) -> bool {
    let pharmacy = pa
        .pointer("/type/coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c.get("code").and_then(Value::as_str) == Some("pharmacy"));
    let ndc = pa
        .get("item")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            item.pointer("/productOrService/coding")
                .and_then(Value::as_array)
        })
        .flatten()
        .any(|c| c.get("system").and_then(Value::as_str) == Some(NDC));
    pharmacy || ndc
}

/// The PDex Provenance of one sent resource: this plan transmitted it at `recorded`
/// (the request's time); `who` is the resource's own payer (the EOB's `insurer`, the
/// Coverage's first `payor`) when it names one.
pub fn provenance(resource: &Value, recorded: &str) -> Option<Value> {
    let resource_type = resource.get("resourceType")?.as_str()?;
    let id = resource.get("id")?.as_str()?;
    let who = resource
        .get("insurer")
        .or_else(|| resource.pointer("/payor/0"))
        .filter(|r| r.get("reference").is_some())
        .cloned()
        .unwrap_or_else(|| json!({"display": "the health plan that sent this data"}));
    // One Provenance per resource: its id follows from the target's (SHA-256 of
    // `Type/id`), so a retried slice writes the same one, within FHIR's 64 characters.
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{resource_type}/{id}").as_bytes(),
    );
    let hex: String = digest.as_ref()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let provenance_id = format!("p2p-{hex}");
    Some(json!({
        "resourceType": "Provenance",
        "id": provenance_id,
        "meta": {"profile": [PROVENANCE_PROFILE]},
        "target": [{"reference": format!("{resource_type}/{id}")}],
        "recorded": recorded,
        "agent": [{
            "type": {"coding": [{
                "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type",
                "code": "transmitter",
                "display": "Transmitter"
            }]},
            "who": who
        }]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        // 2026-12-07.
        Window::at(1_796_601_600)
    }

    fn claim(date: &str) -> Value {
        json!({"resourceType": "ExplanationOfBenefit", "id": "e1", "use": "claim",
               "billablePeriod": {"start": date, "end": date},
               "insurer": {"reference": "Organization/plan"},
               "payment": {"amount": {"value": 10}}, "total": [{"amount": {"value": 10}}]})
    }

    fn prior_auth(action: &str, end: &str, last_updated: &str) -> Value {
        json!({"resourceType": "ExplanationOfBenefit", "id": "pa1", "use": "preauthorization",
               "meta": {"lastUpdated": last_updated},
               "outcome": if action == "A4" { "queued" } else { "complete" },
               "billablePeriod": {"start": "2024-01-01", "end": end},
               "preAuthRefPeriod": [{"start": "2024-01-01", "end": end}],
               "adjudication": [{"extension": [{"url": PDEX_REVIEW_ACTION, "extension": [
                   {"url": PDEX_REVIEW_ACTION_CODE, "valueCodeableConcept": {"coding": [
                       {"system": fhir::systems::X12_ACTION_CODE, "code": action}]}}]}],
                   "category": {"text": "submitted"}}]})
    }

    fn shared(resource: Value, policy: ConsentPolicy) -> Option<Value> {
        let t = resource["resourceType"].as_str().unwrap().parse().unwrap();
        shared_form(t, resource, policy, &SensitivePolicy::default(), &window())
    }

    #[test]
    fn the_window_is_five_years_of_service_and_one_year_of_status_changes() {
        let w = window();
        assert_eq!(w.today, "2026-12-07");
        assert_eq!(w.service_from, "2021-12-07");
        assert_eq!(w.changed_from, "2025-12-07");
        assert_eq!(w.since_floor(), "2021-12-07T00:00:00Z");
        // 29 February 2028: five years back is 28 February 2023.
        let leap = Window::at(1_835_395_200);
        assert_eq!(leap.today, "2028-02-29");
        assert_eq!(leap.service_from, "2023-02-28");
    }

    #[test]
    fn claims_of_the_last_five_years_go_as_non_financial_eobs_and_older_ones_not_at_all() {
        let sent = shared(claim("2022-03-01"), ConsentPolicy::Regular).unwrap();
        assert!(sent.get("payment").is_none() && sent.get("total").is_none());
        assert!(shared(claim("2021-12-06"), ConsentPolicy::Regular).is_none());
        assert!(shared(claim("2021-12-07"), ConsentPolicy::Regular).is_some());
    }

    #[test]
    fn coverage_goes_without_the_members_cost_sharing() {
        let coverage = json!({"resourceType": "Coverage", "id": "c1",
                              "costToBeneficiary": [{"valueMoney": {"value": 20}}]});
        let sent = shared(coverage, ConsentPolicy::Regular).unwrap();
        assert!(sent.get("costToBeneficiary").is_none());
    }

    #[test]
    fn denied_and_drug_prior_authorizations_stay_home() {
        let approved = prior_auth("A1", "2027-06-30", "2024-01-02T00:00:00Z");
        assert!(shared(approved.clone(), ConsentPolicy::Regular).is_some());
        let denied = prior_auth("A3", "2027-06-30", "2026-11-01T00:00:00Z");
        assert!(is_denied(&denied));
        assert!(shared(denied, ConsentPolicy::Regular).is_none());
        let mut drug = approved.clone();
        drug["item"] =
            json!([{"productOrService": {"coding": [{"system": NDC, "code": "0002-8215-01"}]}}]);
        assert!(shared(drug, ConsentPolicy::Regular).is_none());
        let mut pharmacy = approved;
        pharmacy["type"] = json!({"coding": [{"code": "pharmacy"}]});
        assert!(shared(pharmacy, ConsentPolicy::Regular).is_none());
    }

    #[test]
    fn a_prior_authorization_goes_while_pending_in_force_or_changed_within_a_year() {
        // Expired and unchanged for two years: no longer sent.
        let stale = prior_auth("A1", "2024-06-30", "2024-01-02T00:00:00Z");
        assert!(shared(stale, ConsentPolicy::Regular).is_none());
        let pending = prior_auth("A4", "2024-06-30", "2024-01-02T00:00:00Z");
        assert!(shared(pending, ConsentPolicy::Regular).is_some());
        let changed = prior_auth("A1", "2024-06-30", "2026-01-15T08:00:00Z");
        assert!(shared(changed, ConsentPolicy::Regular).is_some());
    }

    #[test]
    fn a_sensitive_consent_leaves_out_what_the_plans_list_flags_whatever_its_type() {
        let mut sud = claim("2025-05-05");
        sud["diagnosis"] = json!([{"diagnosisCodeableConcept": {"coding": [
            {"system": fhir::systems::ICD10_CM, "code": "F11.20"}]}}]);
        assert!(shared(sud.clone(), ConsentPolicy::Sensitive).is_none());
        assert!(shared(sud, ConsentPolicy::Regular).is_some());
    }

    #[test]
    fn each_sent_resource_has_a_provenance_naming_its_payer_as_transmitter() {
        let p = provenance(&claim("2025-01-01"), "2026-12-07T10:00:00Z").unwrap();
        assert_eq!(p["target"][0]["reference"], "ExplanationOfBenefit/e1");
        assert_eq!(p["agent"][0]["who"]["reference"], "Organization/plan");
        assert_eq!(p["agent"][0]["type"]["coding"][0]["code"], "transmitter");
        let again = provenance(&claim("2025-01-01"), "2026-12-08T10:00:00Z").unwrap();
        assert_eq!(
            p["id"], again["id"],
            "a retried slice writes the same Provenance"
        );
        let patient = json!({"resourceType": "Patient", "id": "e1"});
        assert_ne!(provenance(&patient, "t").unwrap()["id"], p["id"]);
        assert!(p["id"].as_str().unwrap().len() <= 64);
    }
}
