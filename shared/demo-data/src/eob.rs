//! Renders a [`PlannedClaim`] as a C4BB ExplanationOfBenefit. One builder serves all
//! five profiles; what differs per type is asked of [`ClaimKind`].

use fhir::ResourceType;
use serde_json::{Map, Value, json};

use crate::amounts::Amounts;
use crate::directory::PAYER;
use crate::elements::{
    Code, coding, concept, concept_text, meta, money, period, quantity, quantity_unit, reference,
    reference_display, typed_identifier,
};
use crate::kind::{ClaimKind, DemoClaimKind, Slice};
use crate::member::Member;
use crate::plan::{Payee, PlannedClaim, PlannedLine};
use fhir::systems::{
    ADJUDICATION, C4BB_ADJUDICATION, C4BB_ADJUDICATION_DISCRIMINATOR, C4BB_IDENTIFIER_TYPE,
    C4BB_PAYEE_TYPE, C4BB_PAYER_ADJUDICATION_STATUS, C4BB_PROCEDURE_TYPE, C4BB_SUPPORTING_INFO,
    C4BB_SURFACE, CARC, DIAGNOSIS_TYPE_HL7, NCPDP_BRAND_GENERIC, NCPDP_COMPOUND, PAYEE_TYPE,
    PLAN_CLAIM_ID, POA, TOOTH,
};

const UNIQUE_CLAIM_ID: Code = Code::new(C4BB_IDENTIFIER_TYPE, "uc", "Unique Claim ID");

/// A CARIN adjudication amount category and where its value lives in [`Amounts`].
type AmountCategory = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Amounts) -> i64,
);

/// The amount categories every line and the totals carry, in a fixed order, with the
/// accessor for each. `paidtopatient` and `paidbypatient` appear only when non-zero.
const AMOUNT_CATEGORIES: &[AmountCategory] = &[
    (ADJUDICATION, "submitted", "Submitted Amount", |a| {
        a.submitted
    }),
    (C4BB_ADJUDICATION, "discount", "Discount", |a| a.discount),
    (C4BB_ADJUDICATION, "noncovered", "Noncovered", |a| {
        a.noncovered
    }),
    (ADJUDICATION, "eligible", "Eligible Amount", |a| a.eligible),
    (ADJUDICATION, "deductible", "Deductible", |a| a.deductible),
    (C4BB_ADJUDICATION, "coinsurance", "Co-insurance", |a| {
        a.coinsurance
    }),
    (ADJUDICATION, "copay", "CoPay", |a| a.copay),
    (ADJUDICATION, "benefit", "Benefit Amount", |a| a.benefit),
    (
        C4BB_ADJUDICATION,
        "memberliability",
        "Member liability",
        |a| a.member_liability,
    ),
    (
        C4BB_ADJUDICATION,
        "paidtoprovider",
        "Paid to provider",
        |a| a.paid_to_provider,
    ),
];
const OPTIONAL_AMOUNT_CATEGORIES: &[AmountCategory] = &[
    (C4BB_ADJUDICATION, "paidtopatient", "Paid to patient", |a| {
        a.paid_to_patient
    }),
    (C4BB_ADJUDICATION, "paidbypatient", "Paid by patient", |a| {
        a.paid_by_patient
    }),
];

/// `category` + `amount` pairs for one line or for the totals.
fn amount_entries(a: &Amounts) -> Vec<Value> {
    let always = AMOUNT_CATEGORIES.iter();
    let optional = OPTIONAL_AMOUNT_CATEGORIES
        .iter()
        .filter(|(.., get)| get(a) != 0);
    always
        .chain(optional)
        .map(|(system, code, display, get)| {
            json!({ "category": concept(Code::new(system, code, display)), "amount": money(get(a)) })
        })
        .collect()
}

fn adjustment_reason(carc: &'static str, display: &'static str, cents: i64) -> Value {
    json!({
        "category": concept(Code::new(C4BB_ADJUDICATION_DISCRIMINATOR, "adjustmentreason", "Adjustment Reason")),
        "reason": concept(Code::new(CARC, carc, display)),
        "amount": money(cents),
    })
}

fn network_status(discriminator: &'static str, display: &'static str, in_network: bool) -> Value {
    let status = if in_network {
        Code::new(C4BB_PAYER_ADJUDICATION_STATUS, "innetwork", "In Network")
    } else {
        Code::new(
            C4BB_PAYER_ADJUDICATION_STATUS,
            "outofnetwork",
            "Out Of Network",
        )
    };
    json!({
        "category": concept(Code::new(C4BB_ADJUDICATION_DISCRIMINATOR, discriminator, display)),
        "reason": concept(status),
    })
}

/// A line's adjudication: the amounts, the CARC reasons behind reductions, and the
/// network status where the profile keeps it on the line.
fn line_adjudication(claim: &PlannedClaim, line: &PlannedLine) -> Vec<Value> {
    let a = &line.amounts;
    let mut entries = amount_entries(a);
    if a.discount > 0 {
        entries.push(adjustment_reason(
            "45",
            "Charge exceeds fee schedule/maximum allowable or contracted/legislated fee arrangement.",
            a.discount,
        ));
    }
    if a.noncovered > 0 {
        entries.push(adjustment_reason(
            "96",
            "Non-covered charge(s).",
            a.noncovered,
        ));
    }
    if claim.kind.line_level_network_status() {
        entries.push(network_status(
            "benefitpaymentstatus",
            "Benefit Payment Status",
            claim.in_network,
        ));
    }
    entries
}

/// Header adjudication: only statuses, never amounts, since the amounts sit on lines.
fn header_adjudication(claim: &PlannedClaim) -> Vec<Value> {
    let mut entries = vec![network_status(
        "billingnetworkstatus",
        "Billing Network Status",
        claim.in_network,
    )];
    if !claim.kind.line_level_network_status() {
        entries.push(network_status(
            "benefitpaymentstatus",
            "Benefit Payment Status",
            claim.in_network,
        ));
    }
    entries
}

fn totals(claim: &PlannedClaim) -> Amounts {
    claim
        .lines
        .iter()
        .fold(Amounts::default(), |sum, l| sum.plus(l.amounts))
}

fn payment(claim: &PlannedClaim, total: &Amounts) -> Value {
    let covered = claim
        .lines
        .iter()
        .filter(|l| l.amounts.noncovered == 0)
        .count();
    let (code, display) = match covered {
        0 => ("denied", "Denied"),
        n if n < claim.lines.len() => ("partiallypaid", "Partially Paid"),
        _ => ("paid", "Paid"),
    };
    json!({
        "type": concept(Code::new(C4BB_PAYER_ADJUDICATION_STATUS, code, display)),
        "date": claim.created.to_string(),
        "amount": money(total.benefit),
    })
}

fn payee(claim: &PlannedClaim, member: &Member) -> Value {
    let (kind, party) = match (claim.payee, &member.subscriber) {
        (Payee::Beneficiary, _) | (Payee::Subscriber, None) => (
            Code::new(C4BB_PAYEE_TYPE, "beneficiary", "Beneficiary"),
            reference(ResourceType::Patient, &member.identity.patient_id),
        ),
        (Payee::Subscriber, Some(s)) => (
            Code::new(PAYEE_TYPE, "subscriber", "Subscriber"),
            reference(ResourceType::RelatedPerson, &s.related_person_id),
        ),
        (Payee::Provider, _) => (
            Code::new(PAYEE_TYPE, "provider", "Provider"),
            reference(ResourceType::Organization, &claim.provider.id()),
        ),
    };
    json!({ "type": concept(kind), "party": party })
}

fn care_team(claim: &PlannedClaim) -> Vec<Value> {
    claim
        .team
        .iter()
        .enumerate()
        .map(|(i, (role, who))| {
            let mut member = json!({
                "sequence": i + 1,
                "provider": reference_display(ResourceType::Practitioner, &who.id(), &format!("{} {}", who.given, who.family)),
                "role": concept(role.code),
            });
            if role.code.code == "rendering" {
                member["qualification"] = concept(who.taxonomy);
            }
            member
        })
        .collect()
}

/// The value of one supportingInfo slice; `None` when the claim has nothing for it.
fn slice_value(
    claim: &PlannedClaim,
    member: &Member,
    slice: Slice,
) -> Option<(&'static str, &'static str, Value)> {
    let f = &claim.facts;
    let rx = claim.scenario.rx;
    let code = |c: Code| json!({ "code": concept(c) });
    let (cat, display, value) = match slice {
        Slice::ClaimReceivedDate => (
            "clmrecvddate",
            "Claim Received Date",
            json!({ "timingDate": claim.received.to_string() }),
        ),
        Slice::AdmissionPeriod => (
            "admissionperiod",
            "Admission Period",
            json!({ "timingPeriod": period(claim.start, claim.end) }),
        ),
        Slice::TypeOfBill => ("typeofbill", "Type of Bill", code(f.type_of_bill)),
        Slice::AdmissionType => ("admtype", "Admission Type", code(f.admission_type)),
        Slice::PointOfOrigin => ("pointoforigin", "Point Of Origin", code(f.point_of_origin)),
        Slice::DischargeStatus => (
            "discharge-status",
            "Discharge Status",
            code(f.discharge_status),
        ),
        Slice::Drg => {
            let drg = claim.scenario.drg?;
            // MS-DRG versions advance each federal fiscal year (v37 = FY2020).
            let version = (claim.end.year() - 1983).to_string();
            let mut c = coding(drg);
            c["version"] = json!(version);
            ("drg", "DRG", json!({ "code": { "coding": [c] } }))
        }
        Slice::MedicalRecordNumber => (
            "medicalrecordnumber",
            "Medical Record Number",
            json!({ "valueString": member.medical_record_number }),
        ),
        Slice::PatientAccountNumber => (
            "patientaccountnumber",
            "Patient Account Number",
            json!({ "valueString": f.patient_account_number }),
        ),
        Slice::ServiceFacility => (
            "servicefacility",
            "Service Facility",
            json!({ "valueReference": reference_display(ResourceType::Organization, &claim.provider.id(), claim.provider.name) }),
        ),
        Slice::DaysSupply => (
            "dayssupply",
            "Days Supply",
            json!({ "valueQuantity": quantity(rx?.days_supply) }),
        ),
        Slice::DawCode => ("dawcode", "DAW (Dispense As Written) Code", code(f.daw)),
        Slice::RefillNumber => (
            "refillnum",
            "Refill Number",
            json!({ "valueQuantity": quantity(f.refill_number) }),
        ),
        Slice::RefillsAuthorized => (
            "refillsauthorized",
            "Refills Authorized",
            json!({ "valueQuantity": quantity(f.refills_authorized) }),
        ),
        Slice::CompoundCode => (
            "compoundcode",
            "Compound Code",
            code(Code::new(NCPDP_COMPOUND, "1", "Not a Compound")),
        ),
        Slice::BrandGenericIndicator => {
            let c = if rx?.brand {
                ("1", "Brand")
            } else {
                ("2", "Generic")
            };
            (
                "brandgenericindicator",
                "Brand Generic Indicator",
                code(Code::new(NCPDP_BRAND_GENERIC, c.0, c.1)),
            )
        }
        Slice::RxOriginCode => ("rxorigincode", "Rx Origin Code", code(f.rx_origin)),
    };
    Some((cat, display, value))
}

fn supporting_info(claim: &PlannedClaim, member: &Member) -> Vec<Value> {
    claim
        .kind
        .slices()
        .iter()
        .filter_map(|s| slice_value(claim, member, *s))
        .enumerate()
        .map(|(i, (code, display, value))| {
            let mut info = Map::new();
            info.insert("sequence".into(), json!(i + 1));
            info.insert(
                "category".into(),
                concept(Code::new(C4BB_SUPPORTING_INFO, code, display)),
            );
            if let Value::Object(fields) = value {
                info.extend(fields);
            }
            Value::Object(info)
        })
        .collect()
}

fn diagnosis_entry(sequence: usize, code: Code, kind: Code, on_admission: bool) -> Value {
    let mut d = json!({ "sequence": sequence, "diagnosisCodeableConcept": concept(code), "type": [concept(kind)] });
    if on_admission {
        d["onAdmission"] = concept(Code::new(
            POA,
            "Y",
            "Diagnosis was present at time of inpatient admission",
        ));
    }
    d
}

/// Principal first; inpatient repeats the principal code as the admitting diagnosis and
/// outpatient as the patient's reason for visit (CARIN: one type per entry).
fn diagnoses(claim: &PlannedClaim) -> Vec<Value> {
    let inpatient = claim.kind == ClaimKind::Inpatient;
    let Some((principal, others)) = claim.scenario.diagnoses.split_first() else {
        return Vec::new();
    };
    let mut out = vec![diagnosis_entry(
        1,
        *principal,
        Code::new(DIAGNOSIS_TYPE_HL7, "principal", "Principal Diagnosis"),
        inpatient,
    )];
    let repeat = match claim.kind {
        ClaimKind::Inpatient => Some(Code::new(
            DIAGNOSIS_TYPE_HL7,
            "admitting",
            "Admitting Diagnosis",
        )),
        ClaimKind::Outpatient => Some(Code::new(
            fhir::systems::C4BB_DIAGNOSIS_TYPE,
            "patientreasonforvisit",
            "Patient Reason for Visit",
        )),
        _ => None,
    };
    if let Some(kind) = repeat {
        out.push(diagnosis_entry(out.len() + 1, *principal, kind, false));
    }
    for other in others {
        out.push(diagnosis_entry(
            out.len() + 1,
            *other,
            claim.kind.secondary_diagnosis_type(),
            inpatient,
        ));
    }
    out
}

fn procedures(claim: &PlannedClaim) -> Vec<Value> {
    claim
        .scenario
        .procedures
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let kind = if i == 0 {
                ("principal", "Principal")
            } else {
                ("other", "Other")
            };
            json!({
                "sequence": i + 1,
                "type": [concept(Code::new(C4BB_PROCEDURE_TYPE, kind.0, kind.1))],
                "date": claim.start.at(10 * 3600),
                "procedureCodeableConcept": concept(*p),
            })
        })
        .collect()
}

fn item(claim: &PlannedClaim, sequence: usize, line: &PlannedLine) -> Value {
    let l = line.line;
    let mut item = json!({ "sequence": sequence });
    if !claim.team.is_empty() {
        item["careTeamSequence"] = json!([1]);
    }
    if !claim.scenario.diagnoses.is_empty() {
        item["diagnosisSequence"] = json!([1]);
    }
    if let Some(revenue) = l.revenue {
        item["revenue"] = concept(revenue);
    }
    item["productOrService"] = concept(l.service);
    if claim.kind == ClaimKind::Inpatient {
        item["servicedPeriod"] = period(claim.start, claim.end);
    } else {
        item["servicedDate"] = json!(claim.start.to_string());
    }
    if let Some(pos) = claim.kind.place_of_service() {
        item["locationCodeableConcept"] = concept(pos);
    }
    item["quantity"] = match claim.scenario.rx {
        Some(rx) => quantity_unit(l.units, rx.quantity_unit),
        None => quantity(l.units),
    };
    if let Some(tooth) = l.tooth {
        item["bodySite"] = concept(Code::new(TOOTH, tooth, ""));
        if !l.surfaces.is_empty() {
            let surfaces: Vec<Value> = l
                .surfaces
                .iter()
                .map(|s| concept(Code::new(C4BB_SURFACE, s, "")))
                .collect();
            item["subSite"] = json!(surfaces);
        }
    }
    item["adjudication"] = json!(line_adjudication(claim, line));
    item
}

fn insurance(member: &Member) -> Vec<Value> {
    let mut out = vec![
        json!({ "focal": true, "coverage": reference(ResourceType::Coverage, &member.coverage_id) }),
    ];
    if let Some((id, _)) = &member.secondary {
        out.push(json!({ "focal": false, "coverage": reference(ResourceType::Coverage, id) }));
    }
    out
}

fn related(claim: &PlannedClaim) -> Vec<Value> {
    claim
        .related
        .iter()
        .map(|r| {
            json!({
                "relationship": concept(r.relationship),
                "reference": typed_identifier(UNIQUE_CLAIM_ID, PLAN_CLAIM_ID, &r.control_number),
            })
        })
        .collect()
}

/// The complete ExplanationOfBenefit for one planned claim.
pub(crate) fn render(claim: &PlannedClaim, member: &Member) -> Value {
    let kind = claim.kind;
    let total = totals(claim);
    let mut eob = json!({
        "resourceType": "ExplanationOfBenefit",
        "id": claim.id,
        "meta": meta(kind.profile(), &claim.last_updated),
        "identifier": [typed_identifier(UNIQUE_CLAIM_ID, PLAN_CLAIM_ID, &claim.control_number)],
        "status": "active",
        "type": concept_text(Code::from(kind.claim_type()), kind.claim_type().2),
    });
    if let Some(sub_type) = kind.sub_type().map(Code::from) {
        eob["subType"] = concept_text(sub_type, sub_type.display);
    }
    let rest = json!({
        "use": "claim",
        "patient": reference(ResourceType::Patient, &member.identity.patient_id),
        "billablePeriod": period(claim.start, claim.end),
        "created": claim.created.at(claim.created_seconds),
        "insurer": reference_display(ResourceType::Organization, &PAYER.id(), PAYER.name),
        "provider": reference_display(ResourceType::Organization, &claim.provider.id(), claim.provider.name),
        "related": related(claim),
        "payee": payee(claim, member),
        "outcome": "complete",
        "careTeam": care_team(claim),
        "supportingInfo": supporting_info(claim, member),
        "diagnosis": diagnoses(claim),
        "procedure": procedures(claim),
        "insurance": insurance(member),
        "item": claim.lines.iter().enumerate().map(|(i, l)| item(claim, i + 1, l)).collect::<Vec<_>>(),
        "adjudication": header_adjudication(claim),
        "total": amount_entries(&total),
        "payment": payment(claim, &total),
    });
    if let (Value::Object(target), Value::Object(fields)) = (&mut eob, rest) {
        // FHIR forbids empty arrays: leave out what this claim has none of.
        target.extend(
            fields
                .into_iter()
                .filter(|(_, v)| v.as_array().is_none_or(|a| !a.is_empty())),
        );
    }
    eob
}
