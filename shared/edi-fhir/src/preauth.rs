//! 278 (005010X217) → Da Vinci PDex Prior Authorization: one
//! ExplanationOfBenefit with `use = preauthorization` per patient event
//! (2000E), plus the Patient, Coverage, Practitioner and Organization
//! resources it names, with the ids the 837 and 834 give them.
//!
//! # Identity
//!
//! A prior authorization is known by its certification number (HCR02) within
//! the UMO that issued it (2010A NM109):
//! `id = "eob-pa-" + hex(sha256(UMO ␟ "cert" ␟ HCR02))[..32]`. A later
//! response for the same certification (pended → approved, approved →
//! cancelled) is the same resource, so its change is a new version. A
//! request (BHT02 = 13) has no certification number yet; it is keyed by the
//! requester's patient event trace (2000E TRN02 with its originator TRN03)
//! and reads as a pended authorization. The response that answers it
//! echoes that trace (TRN01 = 2): it writes the decision under the
//! certification number and cancels the request's pended record (a cancel
//! of a record that was never ingested changes nothing), so a member sees
//! the decision once, and the request, closed, in its history.
//!
//! # Mapping
//!
//! - `outcome` and the PDex `reviewAction` extension come from HCR01: on each
//!   item's decision entry (the service's own HCR, else the event's), and on
//!   one header entry for the whole review. A1 certified in total, A2
//!   certified partial, A3 not certified, A4 pended, A6 modified, C
//!   cancelled (`status = cancelled`), CT contact payer, NA no action
//!   required.
//! - HCR03 (code source 886) is the `denialreason` adjudication slice and the
//!   reviewAction `reasonCode`.
//! - `preAuthRef` is HCR02; `preAuthRefPeriod` the event's DTP*AAH (or its
//!   certification effective DTP*007 / expiration DTP*036).
//! - items come from 2000F: SV1/SV2/SV3 (+TOO) for the service and the
//!   requested quantity, HSD for the quantity the UMO certified (the
//!   `allowedunits` slice when certified: A1, A2, A6), DTP*472 for the
//!   service dates, TRN for the item trace number.
//! - diagnoses from HI; the requester (2010B) is `provider`; event (2010EA)
//!   and service (2010FA) providers are the care team.
//! - MSG text goes to `processNote`.
//!
//! Drug prior authorizations are out of scope: pharmacy benefits are
//! authorized over NCPDP SCRIPT ePA, not the 278, and CMS-0057-F leaves drugs
//! out of the Patient Access prior authorization data.

use fhir::ResourceType;
use serde_json::{Value, json};
use x12::{ElementPos, ErrorKind, Loop, Period, Segment, TransactionSet, X12Error};

use crate::changes::Changes;
use crate::claim::{hi_diagnoses, product, tooth};
use crate::json::{concept, concept_text, money, object, opt, reference};
use crate::kind::DiagnosisRole;
use crate::parties::{self, MemberFacts, Party};
use crate::read::{self, Errors, amount, dotted_icd, iso, number};
use crate::write::ToJson;
use crate::{MapResult, MappingConfig, ids};
use fhir::systems::{
    ADJUDICATION, C4BB_CARE_TEAM_ROLE, CLAIM_TYPE, DATA_ABSENT_REASON, DIAGNOSIS_TYPE_HL7,
    NUBC_REVENUE, PAS_ITEM_PREAUTH_PERIOD, PAS_ITEM_TRACE_NUMBER, PDEX_ADJUDICATION_DISCRIMINATOR,
    PDEX_LEVEL_OF_SERVICE, PDEX_PRIOR_AUTHORIZATION, PDEX_REVIEW_ACTION, PDEX_REVIEW_ACTION_CODE,
    PLAN_PREAUTH_NUMBER, PLAN_PREAUTH_TRACE, X12_ACTION_CODE, X12_LEVEL_OF_SERVICE,
    X12_REVIEW_DECISION_REASON, X12_SERVICE_TYPE,
};

/// An HCR01 action code: its display, the EOB outcome it gives, and whether
/// it certifies (some of) the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewAction {
    pub code: &'static str,
    pub display: &'static str,
    pub outcome: &'static str,
    pub certified: bool,
}

/// X12 element 306 as the 278 response uses it.
const ACTIONS: &[ReviewAction] = &[
    action("A1", "Certified in total", "complete", true),
    action("A2", "Certified - partial", "partial", true),
    action("A3", "Not Certified", "complete", false),
    action("A4", "Pending", "queued", false),
    action("A6", "Modified", "complete", true),
    action("C", "Cancelled", "complete", false),
    action("CT", "Contact Payer", "queued", false),
    action("NA", "No Action Required", "complete", false),
];

const fn action(
    code: &'static str,
    display: &'static str,
    outcome: &'static str,
    certified: bool,
) -> ReviewAction {
    ReviewAction {
        code,
        display,
        outcome,
        certified,
    }
}

/// The action of an HCR01 code, `None` for a code the 278 does not use.
pub fn review_action(code: &str) -> Option<&'static ReviewAction> {
    ACTIONS.iter().find(|a| a.code == code)
}

/// Maps a 278 set: one prior authorization per patient event.
pub fn map(set: &TransactionSet<'_>, config: &MappingConfig, out: &mut Changes<'_>) -> MapResult {
    let mut errors = Errors::default();
    let bht = set.root().segment("BHT");
    let request = bht.and_then(|b| b.element(2)) == Some("13");
    let created = bht.and_then(|b| read::date(b, 4, &mut errors));
    let (payer_id, payer) = parties::payer_org(config);
    out.merge(ResourceType::Organization, payer_id, payer);
    let mut events = 0;
    for event in set.loops("2000E") {
        events += 1;
        let ctx = Event {
            config,
            request,
            created: created.as_deref(),
        };
        map_event(&ctx, &event, out, &mut errors);
    }
    if errors.0.is_empty() {
        Ok(events)
    } else {
        Err(errors.0)
    }
}

struct Event<'c> {
    config: &'c MappingConfig,
    /// BHT02 = 13: a request, no decision yet.
    request: bool,
    /// BHT04.
    created: Option<&'c str>,
}

/// Where an error about a missing loop or segment points: the event's HL.
fn missing(event: &Loop<'_, '_>, what: &str) -> X12Error {
    let position = event.trigger().map(Segment::position).unwrap_or_default();
    X12Error::new(
        ErrorKind::MissingSegment,
        position,
        format!("the patient event has no {what}"),
    )
}

/// The record's key: the certification number, else the requester's trace.
enum Key<'s> {
    Certification(&'s str),
    Trace {
        number: &'s str,
        originator: &'s str,
    },
}

/// The requester's trace: TRN01 = 1 in a request, its echo TRN01 = 2 in
/// the response.
fn requester_trace<'s>(event: &Loop<'s, 's>, request: bool) -> Option<(&'s str, &'s str)> {
    let kind = if request { "1" } else { "2" };
    event
        .segment_with("TRN", kind)
        .and_then(|t| Some((t.element(2)?, t.element(3).unwrap_or(""))))
}

fn record_id(umo: &str, key: &Key<'_>) -> String {
    match key {
        Key::Certification(number) => ids::key_id("eob-pa", &[umo, "cert", number]),
        Key::Trace { number, originator } => {
            ids::key_id("eob-pa", &[umo, "trace", originator, number])
        }
    }
}

fn map_event<'s>(
    ctx: &Event<'_>,
    event: &Loop<'s, 's>,
    out: &mut Changes<'_>,
    errors: &mut Errors,
) {
    let before = errors.0.len();
    let umo = event.ancestor("2000A").and_then(|a| a.child("2010A"));
    let umo_id = umo.and_then(|l| l.trigger()).and_then(|nm1| nm1.element(9));
    let Some(umo_id) = umo_id else {
        errors.push(missing(event, "UMO identifier (2010A NM109)"));
        return;
    };
    let Some(subscriber_loop) = event.ancestor("2000C").and_then(|c| c.child("2010C")) else {
        errors.push(missing(event, "subscriber (2010C)"));
        return;
    };
    let Some((subscriber, subscriber_id)) = parties::subscriber(&subscriber_loop, errors) else {
        return;
    };
    let hcr = event.segment("HCR");
    let decision = match hcr {
        Some(h) => decision_of(h, errors),
        None if ctx.request => None,
        None => {
            errors.push(missing(event, "decision (HCR) in a response (BHT02 = 11)"));
            return;
        }
    };
    let certification = hcr.and_then(|h| h.element(2));
    let trace = requester_trace(event, ctx.request);
    let key = match (certification, trace) {
        (Some(number), _) => Key::Certification(number),
        (None, Some((number, originator))) => Key::Trace { number, originator },
        (None, None) => {
            errors.push(missing(
                event,
                "certification number (HCR02) nor requester trace (TRN) to identify it by",
            ));
            return;
        }
    };
    if errors.0.len() > before {
        return;
    }
    let id = record_id(umo_id, &key);

    // Members: the ids the 834 and 837 give them.
    let dependent_loop = event.ancestor("2000D");
    let dependent = dependent_loop
        .and_then(|d| d.child("2010D"))
        .map(|l| Party::from_loop(&l));
    let relationship = match dependent_loop {
        Some(d) => d
            .child("2010D")
            .and_then(|l| l.segment("INS"))
            .and_then(|i| i.element(2)),
        None => Some("18"),
    };
    let services: Vec<Loop<'s, 's>> = event.children_named("2000F").collect();
    let oral = services.iter().any(|s| s.segment("SV3").is_some());
    let payer_org = ids::payer_org(&ctx.config.payer_id);
    let (patient_id, coverage_id) = parties::emit_member(
        MemberFacts {
            subscriber_id,
            subscriber: &subscriber,
            dependent: dependent.as_ref(),
            relationship,
            group: None,
            line: if oral { "dental" } else { "medical" },
        },
        ctx.config,
        &payer_org,
        out,
    );

    // Providers: the requester, then the event's and each service's.
    let requester = event
        .ancestor("2000B")
        .and_then(|b| b.child("2010B"))
        .map(|l| provider(&l, out));
    let Some(requester) = requester else {
        errors.push(missing(event, "requester (2010B)"));
        return;
    };
    let mut team = Vec::new();
    for l in event.children_named("2010EA") {
        let member = provider(&l, out);
        team.push((member, role(&l)));
    }
    let mut item_teams = Vec::new();
    for service in &services {
        let at = service.child("2010FA").map(|l| {
            let member = provider(&l, out);
            let same = team.iter().position(|(m, _)| *m == member);
            match same {
                Some(i) => i + 1,
                None => {
                    team.push((member, role(&l)));
                    team.len()
                }
            }
        });
        item_teams.push(at);
    }

    let kind = claim_type(event, &services);
    let items: Vec<Value> = services
        .iter()
        .zip(&item_teams)
        .enumerate()
        .map(|(i, (s, team_at))| item(ctx, i + 1, s, event, decision, *team_at, errors))
        .collect();
    let cert_period = certification_period(event, errors);
    let trace_identifier =
        trace.map(|(number, _)| json!({ "system": PLAN_PREAUTH_TRACE, "value": number }));
    let identifiers: Vec<Value> = certification
        .map(|c| json!({ "system": PLAN_PREAUTH_NUMBER, "value": c }))
        .into_iter()
        .chain(trace_identifier)
        .collect();
    let (status, outcome) = match decision {
        Some(d) if d.action.code == "C" => ("cancelled", d.action.outcome),
        Some(d) => ("active", d.action.outcome),
        None => ("active", "queued"),
    };
    let header_adjudication: Vec<Value> = decision
        .map(|d| {
            let charges: Option<i64> = services
                .iter()
                .filter_map(|s| charge(s, errors))
                .reduce(|a, b| a + b);
            decision_entries(d, charges, None)
        })
        .unwrap_or_default();
    let notes: Vec<Value> = std::iter::once(event)
        .chain(services.iter())
        .flat_map(|l| l.segments_named("MSG"))
        .filter_map(|m| m.element(1))
        .enumerate()
        .map(|(i, text)| json!({ "number": i + 1, "type": "display", "text": text }))
        .collect();
    let level_of_service: Vec<Value> = event
        .segment("UM")
        .and_then(|um| um.element(6))
        .map(|code| {
            json!({
                "url": PDEX_LEVEL_OF_SERVICE,
                "valueCodeableConcept": concept(X12_LEVEL_OF_SERVICE, code, ""),
            })
        })
        .into_iter()
        .collect();
    let eob = object([
        ("resourceType", Value::from("ExplanationOfBenefit")),
        ("id", Value::from(id.as_str())),
        ("meta", json!({ "profile": [PDEX_PRIOR_AUTHORIZATION] })),
        ("extension", Value::Array(level_of_service)),
        ("identifier", Value::Array(identifiers)),
        ("status", Value::from(status)),
        ("type", concept_text(CLAIM_TYPE, kind.0, kind.1, kind.1)),
        ("use", Value::from("preauthorization")),
        (
            "patient",
            reference(ResourceType::Patient, &patient_id, None),
        ),
        ("billablePeriod", cert_period.clone()),
        ("created", opt(ctx.created)),
        (
            "insurer",
            reference(
                ResourceType::Organization,
                &payer_org,
                Some(ctx.config.payer_name.as_str()),
            ),
        ),
        ("provider", requester.reference.clone()),
        ("outcome", Value::from(outcome)),
        (
            "preAuthRef",
            Value::Array(certification.map(Value::from).into_iter().collect()),
        ),
        (
            "preAuthRefPeriod",
            Value::Array(
                std::iter::once(cert_period)
                    .filter(|p| !p.is_null())
                    .collect(),
            ),
        ),
        ("careTeam", care_team(&team)),
        ("diagnosis", Value::Array(diagnoses(event))),
        (
            "insurance",
            json!([{
                "focal": true,
                "coverage": reference(ResourceType::Coverage, &coverage_id, None),
            }]),
        ),
        ("item", Value::Array(items)),
        ("adjudication", Value::Array(header_adjudication)),
        ("processNote", Value::Array(notes)),
    ]);
    out.merge(ResourceType::ExplanationOfBenefit, id.clone(), eob);
    // The response to a request closes the request's pended record.
    if let (Key::Certification(number), Some((trace, originator))) = (&key, trace) {
        let placeholder = record_id(
            umo_id,
            &Key::Trace {
                number: trace,
                originator,
            },
        );
        if placeholder != id {
            out.cancel(
                placeholder,
                format!("answered by certification {number} (278 HCR02)"),
            );
        }
    }
}

/// One HCR: its action, the certification number and the reason.
#[derive(Debug, Clone, Copy)]
struct Decision<'s> {
    action: &'static ReviewAction,
    number: Option<&'s str>,
    reason: Option<&'s str>,
}

fn decision_of<'s>(hcr: &Segment<'s>, errors: &mut Errors) -> Option<Decision<'s>> {
    let code = hcr.element(1).unwrap_or("");
    let Some(action) = review_action(code) else {
        errors.push(hcr.error_at(
            ErrorKind::InvalidCodeValue,
            ElementPos::at(1),
            format!("HCR01 action code {code:?} is not one of A1, A2, A3, A4, A6, C, CT, NA"),
        ));
        return None;
    };
    Some(Decision {
        action,
        number: hcr.element(2),
        reason: hcr.element(3),
    })
}

/// A provider named by an NM1 loop: its reference (Practitioner for a
/// person, Organization otherwise), emitting the resource once per set.
struct Provider {
    reference: Value,
    id: String,
}

impl PartialEq for Provider {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

fn provider(l: &Loop<'_, '_>, out: &mut Changes<'_>) -> Provider {
    let party = Party::from_loop(l);
    let taxonomy = l.segment_with("PRV", "PE").and_then(|p| p.element(3));
    let (resource_type, id, display) = parties::emit_provider(&party, taxonomy, out);
    Provider {
        reference: reference(resource_type, &id, Some(&display)),
        id,
    }
}

/// NM101 of a 2010EA/2010FA provider → CARIN care team role.
fn role(l: &Loop<'_, '_>) -> (&'static str, &'static str) {
    match l.trigger().and_then(|nm1| nm1.element(1)) {
        Some("71") => ("attending", "Attending"),
        Some("72") => ("operating", "Operating"),
        Some("DN" | "P3" | "DK") => ("referring", "Referring"),
        Some("SJ") => ("rendering", "Rendering provider"),
        Some("QB") => ("purchasedservice", "Purchased Service"),
        _ => ("performing", "Performing provider"),
    }
}

fn care_team(team: &[(Provider, (&'static str, &'static str))]) -> Value {
    Value::Array(
        team.iter()
            .enumerate()
            .map(|(i, (p, (code, display)))| {
                json!({
                    "sequence": i + 1,
                    "provider": p.reference,
                    "role": concept(C4BB_CARE_TEAM_ROLE, code, display),
                })
            })
            .collect(),
    )
}

/// Claim type: oral with SV3, institutional for an admission review (UM01
/// AR), SV2 or CL1, professional otherwise.
fn claim_type(event: &Loop<'_, '_>, services: &[Loop<'_, '_>]) -> (&'static str, &'static str) {
    let has = |id: &str| services.iter().any(|s| s.segment(id).is_some());
    if has("SV3") {
        ("oral", "Oral")
    } else if has("SV2")
        || event.segment("CL1").is_some()
        || event.segment("UM").and_then(|um| um.element(1)) == Some("AR")
    {
        ("institutional", "Institutional")
    } else {
        ("professional", "Professional")
    }
}

/// The certified period: DTP*AAH, or the certification effective (007) and
/// expiration (036) dates.
fn certification_period(l: &Loop<'_, '_>, errors: &mut Errors) -> Value {
    let dtp = |q: &str, errors: &mut Errors| {
        l.segment_with("DTP", q)
            .and_then(|d| read::period(d, 2, errors))
    };
    let bounds = |p: Option<Period>| p.map(|p| (iso(p.start()), iso(p.end())));
    let (start, end) = match bounds(dtp("AAH", errors)) {
        Some((start, end)) => (Some(start), Some(end)),
        None => (
            bounds(dtp("007", errors)).map(|b| b.0),
            bounds(dtp("036", errors)).map(|b| b.1),
        ),
    };
    if start.is_none() && end.is_none() {
        return Value::Null;
    }
    crate::json::period(start.as_deref(), end.as_deref())
}

/// HI diagnoses with an HL7 diagnosis type.
fn diagnoses(event: &Loop<'_, '_>) -> Vec<Value> {
    hi_diagnoses(event)
        .enumerate()
        .map(|(i, (role, system, code, _))| {
            let (type_code, type_display) = match role {
                DiagnosisRole::Principal => ("principal", "Principal Diagnosis"),
                DiagnosisRole::Admitting => ("admitting", "Admitting Diagnosis"),
                _ => ("clinical", "Clinical Diagnosis"),
            };
            json!({
                "sequence": i + 1,
                "diagnosisCodeableConcept": concept(system, &dotted_icd(code), ""),
                "type": [concept(DIAGNOSIS_TYPE_HL7, type_code, type_display)],
            })
        })
        .collect()
}

/// The service segment and the element numbers of its charge and quantity.
fn service_line<'s>(service: &Loop<'s, 's>) -> Option<(&'s Segment<'s>, usize, usize, usize)> {
    // (segment, procedure composite, charge, quantity)
    [("SV1", 1, 2, 4), ("SV2", 2, 3, 5), ("SV3", 1, 2, 6)]
        .into_iter()
        .find_map(|(id, code, charge, qty)| service.segment(id).map(|s| (s, code, charge, qty)))
}

fn charge(service: &Loop<'_, '_>, errors: &mut Errors) -> Option<i64> {
    let (seg, _, at, _) = service_line(service)?;
    amount(seg, at, errors).filter(|c| *c > 0)
}

fn to_value(t: &impl ToJson) -> Value {
    let mut s = String::new();
    t.write_json(&mut s);
    serde_json::from_str(&s).unwrap_or(Value::Null)
}

/// One item per 2000F service.
fn item(
    ctx: &Event<'_>,
    sequence: usize,
    service: &Loop<'_, '_>,
    event: &Loop<'_, '_>,
    event_decision: Option<Decision<'_>>,
    team_at: Option<usize>,
    errors: &mut Errors,
) -> Value {
    let line = service_line(service);
    let (product_or_service, modifiers) = match line {
        Some((seg, at, _, _)) => {
            let (p, m) = product(seg, at);
            (to_value(&p), m.iter().map(to_value).collect())
        }
        None => (
            concept(DATA_ABSENT_REASON, "not-applicable", "Not Applicable"),
            Vec::new(),
        ),
    };
    let revenue = line
        .filter(|(seg, ..)| seg.id() == "SV2")
        .and_then(|(seg, ..)| seg.element(1))
        .map_or(Value::Null, |r| concept(NUBC_REVENUE, r, ""));
    // The service line says what was asked; in a response HSD says what
    // the UMO certified (in a request, what is asked for over time).
    let requested = line.and_then(|(seg, _, _, at)| number(seg, at, errors));
    let hsd = service.segment("HSD");
    let delivery = hsd.and_then(|h| number(h, 2, errors));
    let unit = hsd
        .filter(|_| requested.is_none())
        .and_then(|h| h.element(1))
        .and_then(quantity_unit);
    let quantity = requested.or(delivery);
    let certified = delivery.or(requested);
    let category = service
        .segment("UM")
        .or_else(|| event.segment("UM"))
        .and_then(|um| um.element(3))
        .map_or(Value::Null, |code| concept(X12_SERVICE_TYPE, code, ""));
    let serviced = service
        .segment_with("DTP", "472")
        .and_then(|d| read::period(d, 2, errors));
    let (serviced_date, serviced_period) = crate::model::serviced(serviced);
    let mut extensions = Vec::new();
    if let Some(trn) = service.segment("TRN").and_then(|t| t.element(2)) {
        extensions.push(json!({
            "url": PAS_ITEM_TRACE_NUMBER,
            "valueIdentifier": { "system": PLAN_PREAUTH_TRACE, "value": trn },
        }));
    }
    let own_period = certification_period(service, errors);
    if !own_period.is_null() {
        extensions.push(json!({ "url": PAS_ITEM_PREAUTH_PERIOD, "valuePeriod": own_period }));
    }
    let (body_site, sub_site) = tooth(service);
    let own = match service.segment("HCR") {
        Some(h) => decision_of(h, errors),
        None => None,
    };
    let adjudication = match own.or(event_decision) {
        // A service without a decision of its own shares the event's, but
        // not its certification number or reason.
        Some(d) => {
            let d = match own {
                Some(_) => d,
                None => Decision {
                    number: None,
                    reason: None,
                    ..d
                },
            };
            let allowed = certified.filter(|_| d.action.certified);
            decision_entries(d, line.and_then(|_| charge(service, errors)), allowed)
        }
        None if ctx.request => charge(service, errors)
            .map(|c| {
                vec![json!({
                    "category": concept(ADJUDICATION, "submitted", "Submitted Amount"),
                    "amount": money(c),
                })]
            })
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let quantity = quantity.map_or(Value::Null, |value| {
        let mut q = serde_json::Map::new();
        q.insert("value".into(), json!(value));
        if let Some(unit) = unit {
            q.insert("unit".into(), Value::from(unit));
        }
        Value::Object(q)
    });
    object([
        ("extension", Value::Array(extensions)),
        ("sequence", Value::from(sequence)),
        (
            "careTeamSequence",
            team_at.map_or(Value::Null, |t| json!([t])),
        ),
        ("revenue", revenue),
        ("category", category),
        ("productOrService", product_or_service),
        ("modifier", Value::Array(modifiers)),
        ("servicedDate", opt(serviced_date.as_deref())),
        (
            "servicedPeriod",
            serviced_period.as_ref().map_or(Value::Null, to_value),
        ),
        ("quantity", quantity),
        ("bodySite", body_site.as_ref().map_or(Value::Null, to_value)),
        (
            "subSite",
            Value::Array(sub_site.iter().map(to_value).collect()),
        ),
        ("adjudication", Value::Array(adjudication)),
    ])
}

/// HSD01 quantity qualifier → a unit a member can read.
fn quantity_unit(qualifier: &str) -> Option<&'static str> {
    Some(match qualifier {
        "VS" => "visits",
        "DY" => "days",
        "HS" => "hours",
        "MN" => "months",
        "FL" => "units",
        "WK" => "weeks",
        _ => return None,
    })
}

/// The adjudication entries of one decision: the decision itself (category
/// `submitted`, with the charge when the request gave one) carrying the
/// reviewAction extension; `allowedunits` when certified; `denialreason`
/// with HCR03.
fn decision_entries(d: Decision<'_>, charge: Option<i64>, allowed: Option<f64>) -> Vec<Value> {
    let mut review = vec![json!({
        "url": PDEX_REVIEW_ACTION_CODE,
        "valueCodeableConcept": concept(X12_ACTION_CODE, d.action.code, d.action.display),
    })];
    if let Some(n) = d.number {
        review.push(json!({ "url": "number", "valueString": n }));
    }
    if let Some(r) = d.reason {
        review.push(json!({
            "url": "reasonCode",
            "valueCodeableConcept": concept(X12_REVIEW_DECISION_REASON, r, ""),
        }));
    }
    let mut entries = vec![object([
        (
            "extension",
            json!([{ "url": PDEX_REVIEW_ACTION, "extension": review }]),
        ),
        (
            "category",
            concept(ADJUDICATION, "submitted", "Submitted Amount"),
        ),
        ("amount", charge.map_or(Value::Null, money)),
    ])];
    if let Some(units) = allowed {
        entries.push(json!({
            "category": concept(PDEX_ADJUDICATION_DISCRIMINATOR, "allowedunits", "allowed units"),
            "value": units,
        }));
    }
    if let Some(r) = d.reason {
        entries.push(json!({
            "category": concept(PDEX_ADJUDICATION_DISCRIMINATOR, "denialreason", "Denial Reason"),
            "reason": concept(X12_REVIEW_DECISION_REASON, r, ""),
        }));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hcr01_action_has_its_outcome() {
        let outcome = |c: &str| review_action(c).map(|a| (a.outcome, a.certified));
        assert_eq!(outcome("A1"), Some(("complete", true)));
        assert_eq!(outcome("A2"), Some(("partial", true)));
        assert_eq!(outcome("A3"), Some(("complete", false)));
        assert_eq!(outcome("A4"), Some(("queued", false)));
        assert_eq!(outcome("A6"), Some(("complete", true)));
        assert_eq!(outcome("C"), Some(("complete", false)));
        assert_eq!(outcome("CT"), Some(("queued", false)));
        assert_eq!(outcome("NA"), Some(("complete", false)));
        assert_eq!(outcome("A5"), None);
    }
}
