//! 835 → the adjudication of each claim (CLP): a remittance contribution to
//! the EOB of the claim key (payer, payee NPI/TIN, CLP01), or a `Cancel` for
//! a reversal (CLP02 = 22). See the crate docs for the identity and ordering
//! rules and [`crate::merge`] for how the contribution folds in.

use fhir::ResourceType;
use x12::{Loop, Period, Segment, TransactionSet};

use crate::adjudication::{Adjudicated, network_status, payment_type, read_cas};
use crate::changes::Changes;
use crate::claim::group_date;
use crate::ids;
use crate::kind::{ClaimKind, X12ClaimKind};
use crate::model::{
    CareTeam, Concept, Eob, InfoValue, Insurance, Item, Meta, Payee, Payment, PlainIdentifier,
    Quantity, Ref, SupportingInfo, concept, concept_text, money, period, plain_reference,
    reference, related_prior, serviced, uc_identifier,
};
use crate::parties::{self, Party};
use crate::read::{self, Errors, amount, bounds, number, required};
use crate::{MapResult, MappingConfig};
use fhir::systems::{
    C4BB_CARE_TEAM_ROLE, DATA_ABSENT_REASON, MS_DRG, NUBC_REVENUE, NUBC_TYPE_OF_BILL, PAYEE_TYPE,
    PLAN_CLAIM_ID, PLAN_CLAIM_KEY, PLAN_PAYMENT_TRACE,
};

/// Facts from the 835 header shared by every claim in it.
struct Header {
    payment_date: Option<String>,
    trace: String,
    provider_key: String,
    payee: Option<Ref<'static>>,
    payee_org: Option<String>,
}

pub fn map(set: &TransactionSet<'_>, config: &MappingConfig, out: &mut Changes<'_>) -> MapResult {
    let mut errors = Errors::default();
    let (payer_id, payer) = parties::payer_org(config);
    out.merge(ResourceType::Organization, payer_id, payer);
    let header = header(set, out, &mut errors);
    let mut claims = 0;
    let mut reversed: Vec<(String, String)> = Vec::new();
    for clp_loop in set.loops("2100") {
        claims += 1;
        let Some(clp) = clp_loop.trigger() else {
            continue;
        };
        let Some(pcn) = required(clp, 1, "the patient control number (CLP01)", &mut errors) else {
            continue;
        };
        let id = ids::eob(&config.payer_id, &header.provider_key, pcn);
        match clp.element(2) {
            Some("22") => {
                let icn = clp.element(7).unwrap_or("unknown");
                reversed.push((pcn.to_owned(), icn.to_owned()));
                out.cancel(id, crate::merge::reversal_reason(icn, &header.trace));
            }
            // Predetermination (25) and "not our claim" (23) are not EOBs.
            Some("23" | "25") => {}
            _ => {
                let prior = reversed
                    .iter()
                    .find(|(p, icn)| p == pcn && Some(icn.as_str()) != clp.element(7))
                    .map(|(_, icn)| icn.clone());
                let eob = claim_eob(
                    config,
                    &header,
                    &id,
                    &clp_loop,
                    clp,
                    prior.as_deref(),
                    out,
                    &mut errors,
                );
                out.merge_typed(ResourceType::ExplanationOfBenefit, id.clone(), &eob);
            }
        }
    }
    if errors.0.is_empty() {
        Ok(claims)
    } else {
        Err(errors.0)
    }
}

fn header(set: &TransactionSet<'_>, out: &mut Changes<'_>, errors: &mut Errors) -> Header {
    let root = set.root();
    let payment_date = root
        .segment("BPR")
        .and_then(|b| read::date(b, 16, errors))
        .or_else(|| {
            root.segment_with("DTM", "405")
                .and_then(|d| read::date(d, 2, errors))
        })
        .or_else(|| group_date(&set.group().date));
    let trace = root
        .segment_with("TRN", "1")
        .and_then(|t| t.element(2))
        .unwrap_or("unknown")
        .to_owned();
    let payee_loop = root.child("1000B");
    let n1 = payee_loop.and_then(|l| l.trigger());
    let npi = n1
        .filter(|n| n.element(3) == Some("XX"))
        .and_then(|n| n.element(4));
    let tin = n1
        .filter(|n| n.element(3) == Some("FI"))
        .and_then(|n| n.element(4))
        .or_else(|| {
            payee_loop
                .and_then(|l| l.segment_with("REF", "TJ"))
                .and_then(|r| r.element(2))
        });
    let provider_key = match (npi, tin, n1.and_then(|n| n.element(2))) {
        (Some(npi), _, _) => format!("npi:{npi}"),
        (None, Some(tin), _) => format!("tin:{tin}"),
        (None, None, name) => format!("name:{}", name.unwrap_or("")),
    };
    let (payee, payee_org) = match n1 {
        Some(n1) => {
            let party = Party {
                entity_type: Some("2"),
                family: n1.element(2),
                id_qualifier: npi.map(|_| "XX"),
                id: npi,
                ..Party::default()
            };
            let (id, value) = parties::provider_org(&party, tin);
            out.merge(ResourceType::Organization, id.clone(), value);
            let display = n1.element(2).map(str::to_owned);
            (
                Some(reference(ResourceType::Organization, id.clone(), display)),
                Some(id),
            )
        }
        None => (None, None),
    };
    Header {
        payment_date,
        trace,
        provider_key,
        payee,
        payee_org,
    }
}

/// The claim kind the 835 suggests (the 837 overrides it): revenue codes
/// mean institutional (inpatient by the CLP08 facility code), `AD` dental.
fn guess_kind(clp: &Segment<'_>, clp_loop: &Loop<'_, '_>) -> ClaimKind {
    let mut institutional = false;
    let mut dental = false;
    for svc in clp_loop.children_named("2110").filter_map(|l| l.trigger()) {
        match svc.component(1, 1) {
            Some("NU") => institutional = true,
            Some("AD") => dental = true,
            _ => {}
        }
        institutional |= svc.element(4).is_some();
    }
    if institutional {
        ClaimKind::institutional(clp.element(8).unwrap_or(""))
    } else if dental {
        ClaimKind::Oral
    } else {
        ClaimKind::Professional
    }
}

#[allow(clippy::too_many_arguments)]
fn claim_eob<'r, 's: 'r>(
    config: &'r MappingConfig,
    header: &'r Header,
    id: &'r str,
    clp_loop: &Loop<'s, 's>,
    clp: &Segment<'s>,
    prior: Option<&'r str>,
    out: &mut Changes<'_>,
    errors: &mut Errors,
) -> Eob<'r> {
    let kind = guess_kind(clp, clp_loop);
    let member = member_key_of(clp_loop);
    let patient_id = ids::patient(&config.payer_id, &member);
    let (items, line_totals, lines_paid) = lines(config, kind, clp_loop, errors);
    let mut totals = Adjudicated {
        submitted: amount(clp, 3, errors),
        paid: amount(clp, 4, errors),
        member_liability: amount(clp, 5, errors),
        allowed: line_totals.allowed,
        ..Adjudicated::default()
    };
    let mut claim_level = Adjudicated::default();
    for cas in clp_loop.segments_named("CAS") {
        read_cas(cas, errors, &mut claim_level.adjustments);
    }
    totals
        .adjustments
        .extend(claim_level.adjustments.iter().cloned());
    totals
        .adjustments
        .extend(line_totals.adjustments.iter().cloned());
    let paid = totals.paid.unwrap_or(0);
    let denied = clp.element(2) == Some("4");
    let payment = Payment {
        type_: payment_type(denied, lines_paid, items.len().max(1), paid),
        date: header.payment_date.as_deref().map(Into::into),
        amount: money(paid),
        identifier: Some(PlainIdentifier {
            system: PLAN_PAYMENT_TRACE,
            value: &header.trace,
        }),
    };
    let identifier = match clp.element(7) {
        Some(icn) => uc_identifier(PLAN_CLAIM_ID, icn),
        None => uc_identifier(PLAN_CLAIM_KEY, id),
    };
    let mut header_adj = Vec::new();
    if items.is_empty() {
        // No line detail: the claim amounts go in the header (CARIN).
        claim_level.submitted = totals.submitted;
        claim_level.paid = totals.paid;
        claim_level.member_liability = totals.member_liability;
        header_adj = claim_level.entries();
    }
    header_adj.push(network_status(
        "billingnetworkstatus",
        "Billing Network Status",
        config.default_network_status,
    ));
    if !kind.line_level_network_status() {
        header_adj.push(network_status(
            "benefitpaymentstatus",
            "Benefit Payment Status",
            config.default_network_status,
        ));
    }
    let (ts, tc, td) = kind.claim_type();
    let coverage = ids::coverage(&config.payer_id, &member, kind.coverage_line());
    let billable_period = billable_period(clp_loop, errors);
    let care_team = care_team(clp_loop, out);
    let supporting_info = supporting_info(kind, clp, clp_loop, errors);
    Eob {
        resource_type: "ExplanationOfBenefit",
        id,
        meta: Meta(kind.profile()),
        identifier: [identifier],
        status: "active",
        type_: concept_text(ts, tc, td, td),
        sub_type: kind.sub_type().map(|(s, c, d)| concept_text(s, c, d, d)),
        use_: "claim",
        patient: plain_reference(ResourceType::Patient, patient_id),
        billable_period,
        created: header.payment_date.as_deref().map(Into::into),
        insurer: reference(
            ResourceType::Organization,
            ids::payer_org(&config.payer_id),
            Some(config.payer_name.as_str()),
        ),
        provider: header.payee.clone(),
        related: prior.map(related_prior).into_iter().collect(),
        payee: header.payee_org.as_ref().map(|org| Payee {
            type_: concept(PAYEE_TYPE, "provider", "Provider"),
            party: plain_reference(ResourceType::Organization, org),
        }),
        outcome: "complete",
        care_team,
        supporting_info,
        diagnosis: Vec::new(),
        procedure: Vec::new(),
        insurance: [Insurance {
            focal: true,
            coverage: plain_reference(ResourceType::Coverage, coverage),
        }],
        item: items,
        adjudication: header_adj,
        total: totals.totals(),
        payment: Some(payment),
    }
}

/// NM1*QC is the patient; NM1*IL, when sent, the (different) insured. No
/// Patient change is emitted: an 835 names the patient without saying
/// whether NM1*QC's id is their own or the subscriber's, so enrolment (834)
/// and claims (837) stay the authority.
fn member_key_of<'a>(clp_loop: &Loop<'a, 'a>) -> ids::MemberKey<'a> {
    let qc = clp_loop.segment_with("NM1", "QC").map(Party::from_nm1);
    let il = clp_loop.segment_with("NM1", "IL").map(Party::from_nm1);
    match (qc, il) {
        (Some(qc), Some(il)) if il.member_id().is_some() && il.member_id() != qc.member_id() => {
            parties::member_key(il.member_id().unwrap_or(""), Some(&qc))
        }
        (Some(qc), _) => parties::member_key(qc.member_id().unwrap_or(""), None),
        (None, Some(il)) => parties::member_key(il.member_id().unwrap_or(""), None),
        (None, None) => parties::member_key("", None),
    }
}

fn care_team<'s>(clp_loop: &Loop<'s, 's>, out: &mut Changes<'_>) -> Vec<CareTeam<'s>> {
    let Some(nm1) = clp_loop.segment_with("NM1", "82") else {
        return Vec::new();
    };
    let party = Party::from_nm1(nm1);
    let provider = if party.is_person() {
        let (id, value) = parties::practitioner(&party, None);
        out.merge(ResourceType::Practitioner, id.clone(), value);
        reference(ResourceType::Practitioner, id, Some(party.display()))
    } else {
        let (id, value) = parties::provider_org(&party, None);
        out.merge(ResourceType::Organization, id.clone(), value);
        reference(ResourceType::Organization, id, party.family)
    };
    vec![CareTeam {
        sequence: 1,
        provider,
        role: concept(C4BB_CARE_TEAM_ROLE, "rendering", "Rendering provider"),
        qualification: None,
    }]
}

fn supporting_info<'s>(
    kind: ClaimKind,
    clp: &Segment<'s>,
    clp_loop: &Loop<'s, 's>,
    errors: &mut Errors,
) -> Vec<SupportingInfo<'s>> {
    let mut list: Vec<(&'static str, &'static str, InfoValue<'s>)> = Vec::new();
    if let Some(d) = clp_loop
        .segment_with("DTM", "050")
        .and_then(|d| read::date(d, 2, errors))
    {
        list.push((
            "clmrecvddate",
            "Claim Received Date",
            InfoValue::TimingDate(d),
        ));
    }
    if kind.is_institutional()
        && let (Some(facility), Some(freq)) = (clp.element(8), clp.element(9))
    {
        let tob = format!("0{facility}{freq}");
        list.push((
            "typeofbill",
            "Type of Bill",
            InfoValue::Code(concept(NUBC_TYPE_OF_BILL, tob, "")),
        ));
    }
    if kind == ClaimKind::Inpatient
        && let Some(drg) = clp.element(11)
    {
        list.push(("drg", "DRG", InfoValue::Code(concept(MS_DRG, drg, ""))));
    }
    if let Some(pcn) = clp.element(1) {
        list.push((
            "patientaccountnumber",
            "Patient Account Number",
            InfoValue::String(pcn),
        ));
    }
    crate::model::supporting_info(list)
}

fn billable_period(clp_loop: &Loop<'_, '_>, errors: &mut Errors) -> Option<crate::model::Period> {
    let start = clp_loop
        .segment_with("DTM", "232")
        .and_then(|d| read::date(d, 2, errors));
    let end = clp_loop
        .segment_with("DTM", "233")
        .and_then(|d| read::date(d, 2, errors));
    if start.is_some() || end.is_some() {
        let end = end.or_else(|| start.clone());
        return period(start, end);
    }
    let mut range: Option<(x12::Date, x12::Date)> = None;
    for line in clp_loop.children_named("2110") {
        if let Some(p) = service_period(&line) {
            range = Some(match range {
                None => (p.start(), p.end()),
                Some((s, e)) => (s.min(p.start()), e.max(p.end())),
            });
        }
    }
    range.and_then(|(s, e)| {
        let (s, e) = bounds(Period::Range(s, e));
        period(Some(s), Some(e))
    })
}

fn service_period(line: &Loop<'_, '_>) -> Option<Period> {
    if let Some(d) = line.segment_with("DTM", "472") {
        return d.element(2).and_then(x12::Date::parse_d8).map(Period::Date);
    }
    let start = line
        .segment_with("DTM", "150")
        .and_then(|d| d.element(2))
        .and_then(x12::Date::parse_d8)?;
    let end = line
        .segment_with("DTM", "151")
        .and_then(|d| d.element(2))
        .and_then(x12::Date::parse_d8)
        .unwrap_or(start);
    Some(Period::Range(start, end))
}

/// SVC lines: items keyed by REF*6R when it is a line number, else position.
fn lines<'s>(
    config: &MappingConfig,
    kind: ClaimKind,
    clp_loop: &Loop<'s, 's>,
    errors: &mut Errors,
) -> (Vec<Item<'s>>, Adjudicated, usize) {
    let mut out = Vec::new();
    let mut totals = Adjudicated::default();
    let mut paid_lines = 0;
    for (index, line) in clp_loop.children_named("2110").enumerate() {
        let Some(svc) = line.trigger() else { continue };
        let sequence = line
            .segment_with("REF", "6R")
            .and_then(|r| r.element(2))
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|s| (1..=999).contains(s))
            .unwrap_or(index as u64 + 1);
        let mut adj = Adjudicated {
            submitted: amount(svc, 2, errors),
            paid: amount(svc, 3, errors),
            allowed_units: number(svc, 5, errors),
            allowed: line
                .segment_with("AMT", "B6")
                .and_then(|a| amount(a, 2, errors)),
            ..Adjudicated::default()
        };
        for cas in line.segments_named("CAS") {
            read_cas(cas, errors, &mut adj.adjustments);
        }
        if adj.paid.unwrap_or(0) > 0 {
            paid_lines += 1;
        }
        totals.add(&adj);
        let mut entries = adj.entries();
        if kind.line_level_network_status() {
            entries.push(network_status(
                "benefitpaymentstatus",
                "Benefit Payment Status",
                config.default_network_status,
            ));
        }
        let (product, modifier, revenue) = svc_product(svc);
        let (serviced_date, serviced_period) = serviced(service_period(&line));
        let units = number(svc, 7, errors).or(adj.allowed_units);
        out.push(Item {
            sequence,
            care_team_sequence: None,
            diagnosis_sequence: Vec::new(),
            revenue,
            product_or_service: product,
            modifier,
            serviced_date,
            serviced_period,
            location_codeable_concept: None,
            quantity: units.map(|value| Quantity { value }),
            body_site: None,
            sub_site: Vec::new(),
            adjudication: entries,
        });
    }
    (out, totals, paid_lines)
}

/// SVC01 (and SVC04): product, modifiers and revenue code.
fn svc_product<'s>(svc: &Segment<'s>) -> (Concept<'s>, Vec<Concept<'s>>, Option<Concept<'s>>) {
    let q = svc.component(1, 1);
    let code = svc.component(1, 2);
    let absent = || concept(DATA_ABSENT_REASON, "not-applicable", "Not Applicable");
    let revenue = svc
        .element(4)
        .or(code.filter(|_| q == Some("NU")))
        .map(|r| concept(NUBC_REVENUE, r, ""));
    let Some(code) = code.filter(|_| q != Some("NU")) else {
        return (absent(), Vec::new(), revenue);
    };
    let system = crate::claim::procedure_system(q, code);
    let modifiers: Vec<Concept<'s>> = (3..=6)
        .filter_map(|c| svc.component(1, c))
        .map(|m| concept(system, m, ""))
        .collect();
    (concept(system, code, ""), modifiers, revenue)
}
