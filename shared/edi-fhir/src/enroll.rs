//! 834 → Patient and one Coverage per member × HD coverage line.
//!
//! Maintenance (INS03, overridden per line by HD01): 021 add, 001 change,
//! 030 audit and 025 reinstate write the coverage as `active` (a dated
//! record without an end reopens the period, see [`crate::merge`]); 024
//! terminate sets `period.end` from DTP*349 (else the member's DTP*357) and
//! makes the coverage `cancelled` only when the termination is retroactive
//! to its start (it never took effect) or undated; an ended coverage
//! otherwise stays `active` with its end date, which is how members see
//! their coverage history.

use fhir::ResourceType;
use serde_json::json;
use x12::{Loop, TransactionSet};

use crate::changes::Changes;
use crate::ids;
use crate::model::{self, Patient, Telecom};
use crate::parties::{self, CoverageFacts, Party};
use crate::read::{self, Errors};
use crate::{MapResult, MappingConfig};

pub fn map(set: &TransactionSet<'_>, config: &MappingConfig, out: &mut Changes<'_>) -> MapResult {
    let mut errors = Errors::default();
    let (payer_id, payer) = parties::payer_org(config);
    out.merge(ResourceType::Organization, payer_id, payer);
    let sponsor = sponsor(set, out);
    let mut members = 0;
    let payer_org = ids::payer_org(&config.payer_id);
    for member in set.loops("2000") {
        members += 1;
        map_member(
            config,
            &payer_org,
            &member,
            sponsor.as_deref(),
            out,
            &mut errors,
        );
    }
    if errors.0.is_empty() {
        Ok(members)
    } else {
        Err(errors.0)
    }
}

/// N1*P5 (the employer), as an Organization keyed by its FEIN.
fn sponsor(set: &TransactionSet<'_>, out: &mut Changes<'_>) -> Option<String> {
    let n1 = set.root().child("1000A")?.trigger()?;
    let tin = n1.element(4).filter(|_| n1.element(3) == Some("FI"));
    let party = Party {
        entity_type: Some("2"),
        family: n1.element(2),
        ..Party::default()
    };
    let (id, mut value) = parties::provider_org(&party, tin);
    if let Some(t) = value.get_mut("type") {
        *t = json!([crate::json::concept(
            fhir::systems::ORGANIZATION_TYPE,
            "bus",
            "Non-Healthcare Business or Corporation"
        )]);
    }
    out.merge(ResourceType::Organization, id.clone(), value);
    Some(id)
}

/// HD03 insurance line → our coverage line.
fn coverage_line(hd03: Option<&str>) -> &'static str {
    match hd03 {
        Some("DEN") => "dental",
        Some("VIS") => "vision",
        Some("PDG") => "pharmacy",
        _ => "medical",
    }
}

fn map_member(
    config: &MappingConfig,
    payer_org: &str,
    member: &Loop<'_, '_>,
    sponsor: Option<&str>,
    out: &mut Changes<'_>,
    errors: &mut Errors,
) {
    let Some(ins) = member.trigger() else { return };
    let Some(ref0f) = member.segment_with("REF", "0F") else {
        errors.push(ins.error_at(
            x12::ErrorKind::MissingElement,
            x12::ElementPos::at(1),
            "the member has no subscriber identifier (REF*0F)",
        ));
        return;
    };
    let Some(subscriber_id) = read::required(ref0f, 2, "the subscriber identifier (REF02)", errors)
    else {
        return;
    };
    let Some(name_loop) = member.child("2100A") else {
        errors.push(ins.error_at(
            x12::ErrorKind::MissingElement,
            x12::ElementPos::at(1),
            "the member has no name (2100A NM1*IL)",
        ));
        return;
    };
    let person = Party::from_loop(&name_loop);
    let is_subscriber = ins.element(1) == Some("Y");
    let key = parties::member_key(subscriber_id, (!is_subscriber).then_some(&person));
    let patient_id = ids::patient(&config.payer_id, &key);
    let subscriber_patient =
        ids::patient(&config.payer_id, &parties::member_key(subscriber_id, None));
    let mut patient = parties::patient(&patient_id, subscriber_id, &person);
    add_telecom_and_death(&mut patient, &name_loop, ins, errors);
    out.merge_typed(ResourceType::Patient, patient_id.clone(), &patient);
    let member_start = member
        .segment_with("DTP", "356")
        .and_then(|d| read::period(d, 2, errors))
        .map(|p| crate::read::iso(p.start()));
    let member_end = member
        .segment_with("DTP", "357")
        .and_then(|d| read::period(d, 2, errors))
        .map(|p| crate::read::iso(p.start()));
    let group = member.segment_with("REF", "1L").and_then(|r| r.element(2));
    for hd_loop in member.children_named("2300") {
        let Some(hd) = hd_loop.trigger() else {
            continue;
        };
        let maintenance = hd.element(1).or(ins.element(3));
        let start = hd_loop
            .segment_with("DTP", "348")
            .and_then(|d| read::period(d, 2, errors))
            .map(|p| crate::read::iso(p.start()));
        let end = hd_loop
            .segment_with("DTP", "349")
            .and_then(|d| read::period(d, 2, errors))
            .map(|p| crate::read::iso(p.start()));
        let terminate = maintenance == Some("024") || ins.element(3) == Some("024");
        let (start, end) = if terminate {
            (start, end.or_else(|| member_end.clone()))
        } else {
            (start.or_else(|| member_start.clone()), end)
        };
        let status = match (terminate, &start, &end) {
            (true, _, None) => "cancelled",
            (true, Some(s), Some(e)) if e < s => "cancelled",
            _ => "active",
        };
        let line = coverage_line(hd.element(3));
        let coverage_id = ids::coverage(&config.payer_id, &key, line);
        let plan = hd.element(3).map(|code| (code, hd.element(4)));
        let coverage = parties::coverage(
            CoverageFacts {
                id: &coverage_id,
                subscriber_id,
                subscriber_patient: &subscriber_patient,
                beneficiary: &patient_id,
                relationship: ins.element(2),
                group: group.map(|g| (g, None)),
                plan,
                period: model::period(start, end),
                status: Some(status),
                policy_holder: sponsor,
                payer_org,
            },
            config,
        );
        out.merge_typed(ResourceType::Coverage, coverage_id.clone(), &coverage);
    }
}

/// PER*IP phone numbers and INS11/INS12 date of death.
fn add_telecom_and_death<'a>(
    patient: &mut Patient<'a>,
    name_loop: &Loop<'_, 'a>,
    ins: &x12::Segment<'_>,
    errors: &mut Errors,
) {
    if let Some(per) = name_loop.segment_with("PER", "IP") {
        patient.telecom = [(3, 4), (5, 6), (7, 8)]
            .into_iter()
            .filter_map(|(q, v)| {
                let system = match per.element(q)? {
                    "HP" | "WP" | "TE" | "CP" => "phone",
                    "EM" => "email",
                    "FX" => "fax",
                    _ => return None,
                };
                let use_ = match per.element(q)? {
                    "WP" => "work",
                    "CP" => "mobile",
                    _ => "home",
                };
                Some(Telecom {
                    system,
                    value: per.element(v),
                    use_,
                })
            })
            .collect();
    }
    if ins.element(11) == Some("D8")
        && let Some(death) = read::date(ins, 12, errors)
    {
        patient.deceased_date_time = Some(death);
    }
}
