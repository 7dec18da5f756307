//! 837P/I/D → Patient, Coverage, Organization, Practitioner and one
//! ExplanationOfBenefit per CLM. One builder serves all four EOB profiles;
//! what differs is asked of [`ClaimKind`].

use fhir::ResourceType;
use x12::{
    Composite, ElementPos, ErrorKind, Loop, Period, Segment, TransactionKind, TransactionSet,
};

use crate::adjudication::{Adjudicated, network_status, payment_type, read_cas};
use crate::changes::Changes;
use crate::ids;
use crate::kind::{ClaimKind, DiagnosisRole, X12ClaimKind};
use crate::model::{
    AdjudicationEntry, CareTeam, Concept, Diagnosis, Eob, InfoValue, Insurance, Item, Meta, Payee,
    Payment, Procedure, Quantity, Ref, Related, SupportingInfo, concept, concept_text, money,
    period, plain_reference, reference, related_prior, serviced, uc_identifier,
};
use crate::parties::{self, MemberFacts, Party};
use crate::read::{self, Errors, amount, bounds, dotted_icd, number, required};
use crate::{MapResult, MappingConfig};
use fhir::systems::{
    C4BB_CARE_TEAM_ROLE, C4BB_PAYEE_TYPE, C4BB_PROCEDURE_TYPE, C4BB_SURFACE, CARE_TEAM_ROLE_HL7,
    CDT, CPT, DATA_ABSENT_REASON, HCPCS, ICD9_CM, ICD10_CM, ICD10_PCS, MS_DRG, NUBC_ADMIT_TYPE,
    NUBC_DISCHARGE, NUBC_POINT_OF_ORIGIN, NUBC_REVENUE, NUBC_TYPE_OF_BILL, NUCC_TAXONOMY,
    PAYEE_TYPE, PLACE_OF_SERVICE, PLAN_CLAIM_ID, PLAN_CLAIM_KEY, POA, TOOTH,
};

/// Maps an 837 set.
pub fn map(set: &TransactionSet<'_>, config: &MappingConfig, out: &mut Changes<'_>) -> MapResult {
    let mut errors = Errors::default();
    let (payer_id, payer) = parties::payer_org(config);
    out.merge(ResourceType::Organization, payer_id, payer);
    let created = set
        .root()
        .segment("BHT")
        .and_then(|bht| bht.date(4).ok().flatten())
        .map(crate::read::iso)
        .or_else(|| group_date(&set.group().date));
    let mut claims = 0;
    let mut billing = None;
    let payer_org = ids::payer_org(&config.payer_id);
    for claim in set.loops("2300") {
        claims += 1;
        let ctx = Ctx {
            set_kind: set.guide().kind,
            config,
            created: created.as_deref(),
            payer_org: &payer_org,
        };
        map_claim(&ctx, &claim, &mut billing, out, &mut errors);
    }
    if errors.0.is_empty() {
        Ok(claims)
    } else {
        Err(errors.0)
    }
}

/// GS04 (CCYYMMDD) as ISO.
pub fn group_date(gs04: &str) -> Option<String> {
    x12::Date::parse_d8(gs04).map(crate::read::iso)
}

struct Ctx<'c> {
    set_kind: TransactionKind,
    config: &'c MappingConfig,
    created: Option<&'c str>,
    /// The plan's Organization id.
    payer_org: &'c str,
}

/// One care-team member.
struct TeamMember<'c> {
    reference: Ref<'c>,
    role: (&'static str, &'static str, &'static str),
    taxonomy: Option<String>,
}

/// The billing provider of the claims under one 2000A loop (consecutive
/// claims share it, so it is read once).
struct Billing<'s> {
    /// Position in the set of the 2010AA NM1.
    at: usize,
    key: String,
    provider: Ref<'s>,
    org_id: Option<String>,
}

/// The billing provider's claim key part, reference and Organization id,
/// emitting its Organization or Practitioner the first time.
fn billing<'s>(
    claim: &Loop<'s, 's>,
    loop_2010aa: &Loop<'s, 's>,
    out: &mut Changes<'_>,
) -> Billing<'s> {
    // Billing provider: Organization (NM102 = 2) or Practitioner.
    let billing_party = Party::from_loop(loop_2010aa);
    let tin = loop_2010aa
        .segment_with("REF", "EI")
        .and_then(|r| r.element(2));
    let key = match (billing_party.npi(), tin) {
        (Some(npi), _) => format!("npi:{npi}"),
        (None, Some(tin)) => format!("tin:{tin}"),
        (None, None) => format!("name:{}", billing_party.family.unwrap_or("")),
    };
    let billing_taxonomy = claim
        .ancestor("2000A")
        .and_then(|a| a.segment_with("PRV", "BI"))
        .and_then(|p| p.element(3));
    let (provider, org_id) = if billing_party.is_person() {
        let id = parties::practitioner_id(&billing_party);
        if !out.has(ResourceType::Practitioner, &id) {
            let (id, value) = parties::practitioner(&billing_party, billing_taxonomy);
            out.merge(ResourceType::Practitioner, id, value);
        }
        (
            reference(
                ResourceType::Practitioner,
                id,
                Some(billing_party.display()),
            ),
            None,
        )
    } else {
        let id = parties::provider_org_id(&billing_party, tin);
        if !out.has(ResourceType::Organization, &id) {
            let (id, value) = parties::provider_org(&billing_party, tin);
            out.merge(ResourceType::Organization, id, value);
        }
        (
            reference(ResourceType::Organization, id.clone(), billing_party.family),
            Some(id),
        )
    };
    Billing {
        at: loop_2010aa.trigger().map_or(0, Segment::position_in_set),
        key,
        provider,
        org_id,
    }
}

/// Everything gathered about one claim before its EOB is rendered.
struct Claim<'c> {
    kind: ClaimKind,
    id: String,
    frequency: &'c str,
    patient_id: String,
    coverage_id: String,
    provider: Ref<'c>,
    provider_org_id: Option<String>,
    team: Vec<TeamMember<'c>>,
    ours: Option<Loop<'c, 'c>>,
}

fn map_claim<'s>(
    ctx: &Ctx<'_>,
    claim: &Loop<'s, 's>,
    billing_cache: &mut Option<Billing<'s>>,
    out: &mut Changes<'_>,
    errors: &mut Errors,
) {
    let Some(clm) = claim.trigger() else { return };
    let before = errors.0.len();
    let clm01 = required(clm, 1, "the patient control number (CLM01)", errors);
    let facility = clm.component(5, 1);
    let frequency = clm.component(5, 3);
    if frequency.is_none() {
        errors.push(clm.error_at(
            ErrorKind::MissingElement,
            ElementPos::component(5, 3),
            "the claim frequency (CLM05-3) is missing; a CLM05 written with the wrong component separator reads as one component, and the frequency must not be guessed",
        ));
    }
    let kind = match ctx.set_kind {
        TransactionKind::Institutional => ClaimKind::institutional(facility.unwrap_or("")),
        TransactionKind::Dental => ClaimKind::Oral,
        _ => ClaimKind::Professional,
    };
    let billing = claim.ancestor("2000A").and_then(|a| a.child("2010AA"));
    let subscriber_loop = claim.ancestor("2000B");
    let Some(billing) = billing else {
        errors.push(missing_loop(clm, "the billing provider (2010AA)"));
        return;
    };
    let Some(subscriber_name) = subscriber_loop.and_then(|s| s.child("2010BA")) else {
        errors.push(missing_loop(clm, "the subscriber (2010BA)"));
        return;
    };
    let Some((subscriber, subscriber_id)) = parties::subscriber(&subscriber_name, errors) else {
        return;
    };
    let (Some(clm01), Some(frequency)) = (clm01, frequency) else {
        return;
    };
    if errors.0.len() > before {
        return;
    }
    let config = ctx.config;
    let at = billing.trigger().map_or(0, Segment::position_in_set);
    let cached = billing_cache.as_ref().filter(|b| b.at == at);
    let billing = match cached {
        Some(b) => b,
        None => billing_cache.insert(self::billing(claim, &billing, out)),
    };
    let provider_key = billing.key.as_str();
    let (provider, provider_org_id) = (billing.provider.clone(), billing.org_id.clone());
    // Members.
    let dependent_loop = claim.ancestor("2000C");
    let dependent = dependent_loop
        .and_then(|d| d.child("2010CA"))
        .map(|l| Party::from_loop(&l));
    let relationship = match dependent_loop {
        Some(d) => d.segment("PAT").and_then(|p| p.element(1)),
        None => subscriber_loop
            .and_then(|s| s.segment("SBR"))
            .and_then(|s| s.element(2))
            .or(Some("18")),
    };
    let sbr = subscriber_loop.and_then(|s| s.segment("SBR"));
    let group = sbr
        .and_then(|s| s.element(3))
        .map(|g| (g, sbr.and_then(|s| s.element(4))));
    let (patient_id, coverage_id) = parties::emit_member(
        MemberFacts {
            subscriber_id,
            subscriber: &subscriber,
            dependent: dependent.as_ref(),
            relationship,
            group,
            line: kind.coverage_line(),
        },
        config,
        ctx.payer_org,
        out,
    );
    let ours = claim.children_named("2320").find(|cob| {
        cob.child("2330B")
            .and_then(|b| b.trigger())
            .and_then(|nm1| nm1.element(9))
            == Some(config.payer_id.as_str())
    });
    let mut c = Claim {
        kind,
        id: ids::eob(&config.payer_id, provider_key, clm01),
        frequency,
        patient_id,
        coverage_id,
        provider,
        provider_org_id,
        team: Vec::new(),
        ours,
    };
    build_team(&mut c, claim, out);
    let adjudication_date = c
        .ours
        .and_then(|o| o.child("2330B"))
        .and_then(|b| b.segment_with("DTP", "573"))
        .and_then(|d| read::period(d, 2, errors))
        .map(|p| crate::read::iso(p.start()));
    let lines = items(ctx, &mut c, claim, clm, out, errors);
    let eob = render(ctx, &c, claim, clm, lines, adjudication_date, out, errors);
    let id = c.id.clone();
    out.merge_typed(ResourceType::ExplanationOfBenefit, id.clone(), &eob);
    if frequency == "8" {
        let prior = claim
            .segment_with("REF", "F8")
            .and_then(|r| r.element(2))
            .unwrap_or("unknown");
        out.cancel(
            id,
            format!(
                "voided by 837 CLM05-3 = 8 (claim {clm01}, payer claim control number {prior})"
            ),
        );
    }
}

fn missing_loop(clm: &Segment<'_>, what: &str) -> x12::X12Error {
    x12::X12Error::new(
        ErrorKind::UnexpectedSegment,
        clm.position(),
        format!("the claim has no {what}"),
    )
}

/// Renders the EOB from the claim (its care team built) and its lines.
/// Header fields in CARIN order.
#[allow(clippy::too_many_arguments)]
fn render<'r, 's: 'r>(
    ctx: &'r Ctx<'_>,
    c: &'r Claim<'s>,
    claim: &Loop<'s, 's>,
    clm: &Segment<'s>,
    (items, line_totals, lines_paid): (Vec<Item<'s>>, Adjudicated, usize),
    adjudication_date: Option<String>,
    out: &mut Changes<'_>,
    errors: &mut Errors,
) -> Eob<'r> {
    let config = ctx.config;
    let ours_icn = c
        .ours
        .and_then(|o| o.child("2330B"))
        .and_then(|b| b.segment_with("REF", "F8"))
        .and_then(|r| r.element(2));
    let identifier = match ours_icn {
        Some(icn) => uc_identifier(PLAN_CLAIM_ID, icn),
        None => uc_identifier(PLAN_CLAIM_KEY, &c.id),
    };
    let line_count = items.len();
    let mut totals = header_amounts(c, claim, clm, errors);
    let lines_have_amounts = line_totals.paid.is_some() || !line_totals.adjustments.is_empty();
    if c.ours.is_some() && totals.paid.is_none() {
        totals.paid = line_totals.paid;
    }
    if lines_have_amounts {
        // 2320 CAS repeats what 2430 already says in most files: with line
        // adjudication, the lines are the detail the totals sum.
        totals.adjustments = line_totals.adjustments.clone();
        totals.allowed_units = None;
    }
    if totals.prior_payer_paid.is_none() {
        totals.prior_payer_paid = line_totals.prior_payer_paid;
    }
    let payment = c.ours.map(|_| {
        let paid = totals.paid.unwrap_or(0);
        Payment {
            type_: payment_type(false, lines_paid, line_count, paid),
            date: adjudication_date.clone().map(Into::into),
            amount: money(paid),
            identifier: None,
        }
    });
    let (sub_type, claim_type) = (c.kind.sub_type(), c.kind.claim_type());
    let related: Vec<Related<'r>> = match c.frequency {
        "7" => claim
            .segment_with("REF", "F8")
            .and_then(|r| r.element(2))
            .map(related_prior)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    let created = adjudication_date
        .map(Into::into)
        .or(ctx.created.map(Into::into));
    let billable_period = billable_period(c.kind, claim, errors);
    let supporting_info = supporting_info(c, claim, clm, out, errors);
    let diagnosis = diagnoses(c.kind, claim);
    let procedure = procedures(claim, errors);
    Eob {
        resource_type: "ExplanationOfBenefit",
        id: &c.id,
        meta: Meta(c.kind.profile()),
        identifier: [identifier],
        status: "active",
        type_: concept_text(claim_type.0, claim_type.1, claim_type.2, claim_type.2),
        sub_type: sub_type.map(|s| concept_text(s.0, s.1, s.2, s.2)),
        use_: "claim",
        patient: plain_reference(ResourceType::Patient, &c.patient_id),
        billable_period,
        created,
        insurer: reference(
            ResourceType::Organization,
            ctx.payer_org,
            Some(config.payer_name.as_str()),
        ),
        provider: Some(c.provider.clone()),
        related,
        payee: Some(payee(c, clm)),
        outcome: "complete",
        care_team: care_team(&c.team),
        supporting_info,
        diagnosis,
        procedure,
        insurance: [Insurance {
            focal: true,
            coverage: plain_reference(ResourceType::Coverage, &c.coverage_id),
        }],
        item: items,
        adjudication: header_adjudication(c.kind, config),
        total: totals.totals(),
        payment,
    }
}

/// Claim-level amounts: CLM02 submitted; the plan's 2320 (AMT*D paid,
/// AMT*EAF member liability, AMT*A8 non-covered, CAS); other payers' AMT*D
/// as prior payer paid.
fn header_amounts(
    c: &Claim<'_>,
    claim: &Loop<'_, '_>,
    clm: &Segment<'_>,
    errors: &mut Errors,
) -> Adjudicated {
    let mut totals = Adjudicated {
        submitted: amount(clm, 2, errors),
        ..Adjudicated::default()
    };
    for cob in claim.children_named("2320") {
        let is_ours = c.ours.is_some_and(|o| {
            o.trigger().map(Segment::position_in_set) == cob.trigger().map(Segment::position_in_set)
        });
        if is_ours {
            continue;
        }
        // Another payer's payment on this claim.
        if let Some(p) = cob
            .segment_with("AMT", "D")
            .and_then(|a| amount(a, 2, errors))
        {
            totals.prior_payer_paid = Some(totals.prior_payer_paid.unwrap_or(0) + p);
        }
    }
    if let Some(ours) = c.ours {
        for seg in ours.segments() {
            match (seg.id(), seg.element(1)) {
                ("AMT", Some("D")) => totals.paid = amount(seg, 2, errors),
                ("AMT", Some("EAF")) => totals.member_liability = amount(seg, 2, errors),
                ("AMT", Some("A8")) => totals.noncovered = amount(seg, 2, errors),
                ("CAS", _) => read_cas(seg, errors, &mut totals.adjustments),
                _ => {}
            }
        }
    }
    totals
}

fn billable_period(
    kind: ClaimKind,
    claim: &Loop<'_, '_>,
    errors: &mut Errors,
) -> Option<crate::model::Period> {
    let statement = claim
        .segment_with("DTP", "434")
        .and_then(|d| read::period(d, 2, errors));
    let claim_service = claim
        .segment_with("DTP", "472")
        .and_then(|d| read::period(d, 2, errors));
    let from_lines = || {
        let mut range: Option<(x12::Date, x12::Date)> = None;
        for line in claim.children_named("2400") {
            if let Some(p) = line
                .segment_with("DTP", "472")
                .and_then(|d| d.period(2).ok().flatten())
            {
                range = Some(match range {
                    None => (p.start(), p.end()),
                    Some((s, e)) => (s.min(p.start()), e.max(p.end())),
                });
            }
        }
        range.map(|(s, e)| Period::Range(s, e))
    };
    let chosen = if kind.is_institutional() {
        statement.or(claim_service).or_else(from_lines)
    } else {
        claim_service.or_else(from_lines).or(statement)
    };
    chosen.and_then(|p| {
        let (s, e) = bounds(p);
        period(Some(s), Some(e))
    })
}

fn payee<'r>(c: &'r Claim<'_>, clm: &Segment<'_>) -> Payee<'r> {
    // CLM08 = Y: benefits assigned to the provider.
    match (&c.provider_org_id, clm.element(8)) {
        (Some(org), Some("Y")) => Payee {
            type_: concept(PAYEE_TYPE, "provider", "Provider"),
            party: plain_reference(ResourceType::Organization, org),
        },
        _ => Payee {
            type_: concept(C4BB_PAYEE_TYPE, "beneficiary", "Beneficiary"),
            party: plain_reference(ResourceType::Patient, &c.patient_id),
        },
    }
}

/// NM101 → care-team role.
fn role_of(kind: ClaimKind, nm101: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match (nm101, kind.is_institutional()) {
        ("82", _) => Some((C4BB_CARE_TEAM_ROLE, "rendering", "Rendering provider")),
        ("71", true) => Some((C4BB_CARE_TEAM_ROLE, "attending", "Attending")),
        ("72", true) => Some((C4BB_CARE_TEAM_ROLE, "operating", "Operating")),
        ("ZZ", true) => Some((C4BB_CARE_TEAM_ROLE, "otheroperating", "Other Operating")),
        ("DN", _) => Some((C4BB_CARE_TEAM_ROLE, "referring", "Referring")),
        ("P3", _) => Some((CARE_TEAM_ROLE_HL7, "primary", "Primary provider")),
        ("DQ", false) => Some((CARE_TEAM_ROLE_HL7, "supervisor", "Supervising Provider")),
        _ => None,
    }
}

/// Adds a care-team member for an NM1 loop; returns its sequence.
fn team_member<'s>(c: &mut Claim<'s>, l: &Loop<'s, 's>, out: &mut Changes<'_>) -> Option<usize> {
    let nm1 = l.trigger()?;
    let role = role_of(c.kind, nm1.element(1)?)?;
    let party = Party::from_loop(l);
    let taxonomy = l
        .segment("PRV")
        .and_then(|p| p.element(3))
        .map(str::to_owned);
    let (resource_type, id, display) = parties::emit_provider(&party, taxonomy.as_deref(), out);
    let reference = reference(resource_type, id, Some(display));
    if let Some(i) = c
        .team
        .iter()
        .position(|m| m.reference == reference && m.role == role)
    {
        return Some(i + 1);
    }
    c.team.push(TeamMember {
        reference,
        role,
        taxonomy,
    });
    Some(c.team.len())
}

fn build_team<'s>(c: &mut Claim<'s>, claim: &Loop<'s, 's>, out: &mut Changes<'_>) {
    for l in claim.children() {
        if l.id().starts_with("231") {
            team_member(c, &l, out);
        }
    }
}

fn care_team<'r>(team: &'r [TeamMember<'_>]) -> Vec<CareTeam<'r>> {
    team.iter()
        .enumerate()
        .map(|(i, m)| {
            let qualification = match (&m.taxonomy, m.role.1) {
                (Some(t), "rendering" | "attending" | "operating") => {
                    Some(concept(NUCC_TAXONOMY, t.as_str(), ""))
                }
                _ => None,
            };
            CareTeam {
                sequence: i + 1,
                provider: m.reference.clone(),
                role: concept(m.role.0, m.role.1, m.role.2),
                qualification,
            }
        })
        .collect()
}

fn supporting_info<'s>(
    c: &Claim<'s>,
    claim: &Loop<'s, 's>,
    clm: &Segment<'s>,
    out: &mut Changes<'_>,
    errors: &mut Errors,
) -> Vec<SupportingInfo<'s>> {
    let mut list: Vec<(&'static str, &'static str, InfoValue<'s>)> = Vec::new();
    if let Some(d) = claim
        .segment_with("DTP", "050")
        .and_then(|d| read::period(d, 2, errors))
    {
        list.push((
            "clmrecvddate",
            "Claim Received Date",
            InfoValue::TimingDate(crate::read::iso(d.start())),
        ));
    }
    if c.kind.is_institutional() {
        if let (Some(facility), Some(freq)) = (clm.component(5, 1), clm.component(5, 3)) {
            let tob = format!("0{facility}{freq}");
            list.push((
                "typeofbill",
                "Type of Bill",
                InfoValue::Code(concept(NUBC_TYPE_OF_BILL, tob, "")),
            ));
        }
        if let Some(admit) = claim
            .segment_with("DTP", "435")
            .and_then(|d| d.element(3))
            .and_then(|v| x12::Date::parse_d8(v.get(..8).unwrap_or(v)))
        {
            let start = crate::read::iso(admit);
            let end = (c.kind == ClaimKind::Inpatient)
                .then(|| {
                    claim
                        .segment_with("DTP", "434")
                        .and_then(|d| d.period(2).ok().flatten())
                        .map(|p| crate::read::iso(p.end()))
                })
                .flatten();
            list.push((
                "admissionperiod",
                "Admission Period",
                InfoValue::TimingPeriod(period(Some(start), end)),
            ));
        }
        if let Some(cl1) = claim.segment("CL1") {
            let codes = [
                (1, "admtype", "Admission Type", NUBC_ADMIT_TYPE),
                (2, "pointoforigin", "Point Of Origin", NUBC_POINT_OF_ORIGIN),
                (3, "discharge-status", "Discharge Status", NUBC_DISCHARGE),
            ];
            for (n, code, display, system) in codes {
                if let Some(v) = cl1.element(n) {
                    list.push((code, display, InfoValue::Code(concept(system, v, ""))));
                }
            }
        }
        for hi in claim.segments_named("HI") {
            if hi.component(1, 1) == Some("DR")
                && let Some(drg) = hi.component(1, 2)
            {
                list.push(("drg", "DRG", InfoValue::Code(concept(MS_DRG, drg, ""))));
            }
        }
    }
    if let Some(mrn) = claim.segment_with("REF", "EA").and_then(|r| r.element(2)) {
        list.push((
            "medicalrecordnumber",
            "Medical Record Number",
            InfoValue::String(mrn),
        ));
    }
    if let Some(pcn) = clm.element(1) {
        list.push((
            "patientaccountnumber",
            "Patient Account Number",
            InfoValue::String(pcn),
        ));
    }
    if let Some(facility) = claim
        .children()
        .find(|l| l.trigger().is_some_and(|t| t.is("NM1", "77")))
    {
        let party = Party::from_loop(&facility);
        let id = parties::provider_org_id(&party, None);
        if !out.has(ResourceType::Organization, &id) {
            let (id, value) = parties::provider_org(&party, None);
            out.merge(ResourceType::Organization, id, value);
        }
        list.push((
            "servicefacility",
            "Service Facility",
            InfoValue::Reference(reference(ResourceType::Organization, id, party.family)),
        ));
    }
    crate::model::supporting_info(list)
}

/// HI qualifier → diagnosis role and ICD version (10 = AB*, 9 = B*).
fn diagnosis_role(qualifier: &str) -> Option<(DiagnosisRole, bool)> {
    Some(match qualifier {
        "ABK" => (DiagnosisRole::Principal, true),
        "BK" => (DiagnosisRole::Principal, false),
        "ABF" => (DiagnosisRole::Other, true),
        "BF" => (DiagnosisRole::Other, false),
        "ABJ" => (DiagnosisRole::Admitting, true),
        "BJ" => (DiagnosisRole::Admitting, false),
        "APR" => (DiagnosisRole::ReasonForVisit, true),
        "PR" => (DiagnosisRole::ReasonForVisit, false),
        "ABN" => (DiagnosisRole::ExternalCause, true),
        "BN" => (DiagnosisRole::ExternalCause, false),
        _ => return None,
    })
}

/// The diagnosis codes of a loop's HI segments, in order: their role, ICD
/// system (10 for AB* qualifiers, 9 for B*), code, and composite (for the
/// POA indicator). Procedure, DRG and other HI qualifiers are skipped.
pub(crate) fn hi_diagnoses<'l, 's>(
    l: &'l Loop<'s, 's>,
) -> impl Iterator<Item = (DiagnosisRole, &'static str, &'s str, Composite<'s>)> + 'l {
    l.segments_named("HI").flat_map(|hi| {
        (1..=12)
            .map_while(move |n| hi.composite(n))
            .filter_map(|composite| {
                let (role, icd10) = diagnosis_role(composite.component(1)?)?;
                let code = composite.component(2)?;
                let system = if icd10 { ICD10_CM } else { ICD9_CM };
                Some((role, system, code, composite))
            })
    })
}

/// Diagnoses in HI order; `sequence` is the position among diagnosis codes,
/// which is what SV107 pointers count.
fn diagnoses<'s>(kind: ClaimKind, claim: &Loop<'s, 's>) -> Vec<Diagnosis<'s>> {
    hi_diagnoses(claim)
        .enumerate()
        .map(|(i, (role, system, code, composite))| {
            let (ts, tc, td) = kind.diagnosis_type(role);
            let poa = composite
                .component(9)
                .filter(|_| kind.is_institutional())
                .map(|p| concept(POA, p, ""));
            Diagnosis {
                sequence: i + 1,
                diagnosis_codeable_concept: concept(system, dotted_icd(code), ""),
                type_: [concept(ts, tc, td)],
                on_admission: poa,
            }
        })
        .collect()
}

/// ICD-10-PCS (BBR/BBQ) or ICD-9 (BR/BQ) procedures with their dates.
fn procedures<'s>(claim: &Loop<'s, 's>, errors: &mut Errors) -> Vec<Procedure<'s>> {
    let mut out = Vec::new();
    for hi in claim.segments_named("HI") {
        for n in 1..=12 {
            let Some(composite) = hi.composite(n) else {
                break;
            };
            let (Some(q), Some(code)) = (composite.component(1), composite.component(2)) else {
                continue;
            };
            let (principal, system) = match q {
                "BBR" | "CAH" => (true, ICD10_PCS),
                "BR" => (true, ICD9_CM),
                "BBQ" => (false, ICD10_PCS),
                "BQ" => (false, ICD9_CM),
                _ => continue,
            };
            let date = match (composite.component(3), composite.component(4)) {
                (Some("D8"), Some(d)) => match x12::Date::parse_d8(d) {
                    Some(d) => Some(crate::read::iso(d)),
                    None => {
                        errors.push(hi.error_at(
                            ErrorKind::InvalidDate,
                            ElementPos::component(n, 4),
                            format!("procedure date {d} is not a calendar date"),
                        ));
                        None
                    }
                },
                _ => None,
            };
            let (tc, td) = if principal {
                ("principal", "Principal")
            } else {
                ("other", "Other")
            };
            out.push(Procedure {
                sequence: out.len() + 1,
                type_: [concept(C4BB_PROCEDURE_TYPE, tc, td)],
                date,
                procedure_codeable_concept: concept(system, code, ""),
            });
        }
    }
    out
}

/// CPT when five digits or four digits + F/T/U; HCPCS otherwise.
pub(crate) fn procedure_system(qualifier: Option<&str>, code: &str) -> &'static str {
    if qualifier == Some("AD") {
        return CDT;
    }
    let b = code.as_bytes();
    let cpt = b.len() == 5
        && b.iter().take(4).all(u8::is_ascii_digit)
        && b.get(4)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'F' | b'T' | b'U'));
    if cpt { CPT } else { HCPCS }
}

/// `productOrService` and `modifier` from an SV101/SV202/SV301 composite.
pub(crate) fn product<'s>(seg: &Segment<'s>, n: usize) -> (Concept<'s>, Vec<Concept<'s>>) {
    let absent = || concept(DATA_ABSENT_REASON, "not-applicable", "Not Applicable");
    let Some(composite) = seg.composite(n) else {
        return (absent(), Vec::new());
    };
    let q = composite.component(1);
    let Some(code) = composite.component(2) else {
        return (absent(), Vec::new());
    };
    let system = procedure_system(q, code);
    let modifiers: Vec<Concept<'s>> = composite
        .components()
        .skip(2)
        .take(4)
        .filter(|m| !m.is_empty())
        .map(|m| concept(system, m, ""))
        .collect();
    (concept(system, code, ""), modifiers)
}

/// One line's facts by profile.
struct Line<'s> {
    charge_at: usize,
    product: (Concept<'s>, Vec<Concept<'s>>),
    revenue: Option<&'s str>,
    quantity: Option<f64>,
    location: Option<&'s str>,
    noncovered: Option<i64>,
    pointers: Vec<u64>,
}

fn read_line<'s>(
    kind: ClaimKind,
    line: &Loop<'s, 's>,
    errors: &mut Errors,
) -> Option<(Line<'s>, &'s Segment<'s>)> {
    let (id, charge_at) = match kind {
        ClaimKind::Professional => ("SV1", 2),
        ClaimKind::Oral => ("SV3", 2),
        _ => ("SV2", 3),
    };
    let seg = line.segment(id)?;
    let parsed = match kind {
        ClaimKind::Professional => Line {
            charge_at,
            product: product(seg, 1),
            revenue: None,
            quantity: number(seg, 4, errors),
            location: seg.element(5),
            noncovered: None,
            pointers: seg
                .composite(7)
                .map(|c| {
                    c.components()
                        .take(4)
                        .filter(|p| !p.is_empty())
                        .filter_map(|p| p.parse().ok())
                        .collect()
                })
                .unwrap_or_default(),
        },
        ClaimKind::Oral => Line {
            charge_at,
            product: product(seg, 1),
            revenue: None,
            quantity: number(seg, 6, errors),
            location: seg.element(3),
            noncovered: None,
            pointers: Vec::new(),
        },
        // Institutional (SV2); an 837 never carries a pharmacy claim.
        _ => Line {
            charge_at,
            product: product(seg, 2),
            revenue: seg.element(1),
            quantity: number(seg, 5, errors),
            location: None,
            noncovered: amount(seg, 7, errors),
            pointers: Vec::new(),
        },
    };
    Some((parsed, seg))
}

/// Items plus line totals and the number of lines the plan paid.
fn items<'s>(
    ctx: &Ctx<'_>,
    c: &mut Claim<'s>,
    claim: &Loop<'s, 's>,
    clm: &Segment<'s>,
    out_changes: &mut Changes<'_>,
    errors: &mut Errors,
) -> (Vec<Item<'s>>, Adjudicated, usize) {
    let mut out = Vec::new();
    let mut totals = Adjudicated::default();
    let mut lines_paid = 0;
    let default_team = (!c.team.is_empty()).then_some(1);
    let claim_date = claim
        .segment_with("DTP", "472")
        .and_then(|d| d.period(2).ok().flatten());
    let config = ctx.config;
    for (index, line) in claim.children_named("2400").enumerate() {
        let Some((l, seg)) = read_line(c.kind, &line, errors) else {
            continue;
        };
        let sequence = line
            .trigger()
            .and_then(|lx| lx.element(1))
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|s| *s > 0)
            .unwrap_or(index as u64 + 1);
        let mut adj = Adjudicated {
            submitted: amount(seg, l.charge_at, errors),
            noncovered: l.noncovered,
            ..Adjudicated::default()
        };
        let paid = line_adjudication(config, &line, &mut adj, c.ours.is_some(), errors);
        if paid {
            lines_paid += 1;
        }
        totals.add(&adj);
        let mut entries = if c.ours.is_some() {
            adj.entries()
        } else {
            // A submission: only the charge (and other payers' payments).
            let submitted_only = Adjudicated {
                submitted: adj.submitted,
                prior_payer_paid: adj.prior_payer_paid,
                ..Adjudicated::default()
            };
            submitted_only.entries()
        };
        if c.kind.line_level_network_status() {
            entries.push(network_status(
                "benefitpaymentstatus",
                "Benefit Payment Status",
                config.default_network_status,
            ));
        }
        let line_team = line
            .children()
            .filter(|l| l.id().starts_with("242"))
            .filter_map(|l| team_member(c, &l, out_changes))
            .next()
            .or(default_team);
        let (serviced_date, serviced_period) = serviced(
            line.segment_with("DTP", "472")
                .and_then(|d| read::period(d, 2, errors))
                .or(claim_date),
        );
        let location = l
            .location
            .or_else(|| {
                (!c.kind.is_institutional())
                    .then(|| clm.component(5, 1))
                    .flatten()
            })
            .map(|pos| concept(PLACE_OF_SERVICE, pos, ""));
        let (body_site, sub_site) = tooth(&line);
        out.push(Item {
            sequence,
            care_team_sequence: line_team.map(|s| [s]),
            diagnosis_sequence: l.pointers,
            revenue: l.revenue.map(|r| concept(NUBC_REVENUE, r, "")),
            product_or_service: l.product.0,
            modifier: l.product.1,
            serviced_date,
            serviced_period,
            location_codeable_concept: location,
            quantity: l.quantity.map(|value| Quantity { value }),
            body_site,
            sub_site,
            adjudication: entries,
        });
    }
    (out, totals, lines_paid)
}

/// TOO*JP*tooth*surfaces → bodySite / subSite.
pub(crate) fn tooth<'s>(line: &Loop<'s, 's>) -> (Option<Concept<'s>>, Vec<Concept<'s>>) {
    let Some(too) = line.segment_with("TOO", "JP") else {
        return (None, Vec::new());
    };
    let body = too.element(2).map(|t| concept(TOOTH, t, ""));
    let surfaces: Vec<Concept<'s>> = (1..=5)
        .filter_map(|c| too.component(3, c))
        .map(|s| concept(C4BB_SURFACE, s, ""))
        .collect();
    (body, surfaces)
}

/// 2430 loops: the plan's SVD/CAS become the line's adjudication; another
/// payer's SVD02 is prior payer paid. Returns true when the plan paid the line.
fn line_adjudication(
    config: &MappingConfig,
    line: &Loop<'_, '_>,
    adj: &mut Adjudicated,
    adjudicated: bool,
    errors: &mut Errors,
) -> bool {
    let mut paid = false;
    for svd_loop in line.children_named("2430") {
        let Some(svd) = svd_loop.trigger() else {
            continue;
        };
        let amount_paid = amount(svd, 2, errors);
        if adjudicated && svd.element(1) == Some(config.payer_id.as_str()) {
            adj.paid = Some(adj.paid.unwrap_or(0) + amount_paid.unwrap_or(0));
            adj.allowed_units = number(svd, 5, errors);
            paid |= amount_paid.unwrap_or(0) > 0;
            for seg in svd_loop.segments() {
                match (seg.id(), seg.element(1)) {
                    ("CAS", _) => read_cas(seg, errors, &mut adj.adjustments),
                    ("AMT", Some("EAF")) => adj.member_liability = amount(seg, 2, errors),
                    _ => {}
                }
            }
        } else if let Some(p) = amount_paid {
            adj.prior_payer_paid = Some(adj.prior_payer_paid.unwrap_or(0) + p);
        }
    }
    paid
}

fn header_adjudication(kind: ClaimKind, config: &MappingConfig) -> Vec<AdjudicationEntry<'static>> {
    let mut entries = vec![network_status(
        "billingnetworkstatus",
        "Billing Network Status",
        config.default_network_status,
    )];
    if !kind.line_level_network_status() {
        entries.push(network_status(
            "benefitpaymentstatus",
            "Benefit Payment Status",
            config.default_network_status,
        ));
    }
    entries
}
