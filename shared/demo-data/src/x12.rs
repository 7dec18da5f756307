//! The demo as the X12 005010 files a plan's systems would send: an 834 enrolling
//! every member, the 837P, 837I and 837D of their planned non-pharmacy claims, and
//! the 835 paying them. Loading these through the ingest pipeline gives resources
//! with the ids [`crate::generate`] names, because both sides take them from
//! [`edi_fhir::ids`].
//!
//! Built from the same plan as the FHIR form (members, directory, claims with their
//! codes, care teams and priced lines), so the same config gives byte-identical files.
//! What X12 does not say stays with the FHIR form ([`crate::DemoData::fhir_only`] and
//! the plan's mapping settings):
//!
//! - pharmacy claims (NCPDP, not X12) and the subscriber of a dependent's policy as a
//!   person (RelatedPerson). Every demo member has a member id of their own, which a
//!   5010 837 sends as the subscriber, so in X12 every member is a subscriber;
//! - in- or out-of-network (an X12 claim does not carry it: the plan's default
//!   applies); an out-of-network claim shows as benefits not assigned (CLM08 = N);
//! - an adjusted claim is resubmitted under a new patient control number with
//!   CLM05-3 = 7 and the original's claim number (REF*F8); the 835 that pays it
//!   reverses the original (CLP02 = 22), which cancels the original's EOB.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use x12::write::{self, Group, Usage, Writer};

use crate::date::Date;
use crate::directory::Organization;
use crate::kind::ClaimKind;
use crate::member::{COVERAGE_START, GROUP_NAME, Member};
use crate::plan::{Payee, PlannedClaim, PlannedLine};
use crate::{DemoConfig, PAYER_ID, PAYER_NAME};
use fhir::systems::{CDT, DATA_ABSENT_REASON, ICD10_CM};

/// When the files were made (ISA, GS, BGN, BHT): after the last demo claim was paid.
const FILE_DATE: Date = Date::ymd(2026, 11, 2);
const SUBMITTER: &str = "DEMOSUBMITTER";
const SUBMITTER_PHONE: &str = "6145550100";

/// The demo's X12 files in the order they are ingested: enrolment first, then the
/// claims, then their payment. `(file name, bytes)`.
pub fn files(config: &DemoConfig) -> Vec<(String, Vec<u8>)> {
    let planned = crate::plan(config);
    let claims: Vec<(&Member, &PlannedClaim)> = planned
        .iter()
        .flat_map(|(m, claims)| {
            claims
                .iter()
                .filter(|c| c.kind != ClaimKind::Pharmacy)
                .map(move |c| (m, c))
        })
        .collect();
    let by_number: HashMap<&str, &PlannedClaim> = claims
        .iter()
        .map(|(_, c)| (c.control_number.as_str(), *c))
        .collect();
    let members: Vec<&Member> = planned.iter().map(|(m, _)| m).collect();
    vec![
        ("demo-834.x12".to_owned(), enrolment(&members)),
        (
            "demo-837p.x12".to_owned(),
            claim_file(&claims, &by_number, Family::Professional),
        ),
        (
            "demo-837i.x12".to_owned(),
            claim_file(&claims, &by_number, Family::Institutional),
        ),
        (
            "demo-837d.x12".to_owned(),
            claim_file(&claims, &by_number, Family::Dental),
        ),
        ("demo-835.x12".to_owned(), remittance(&claims, &by_number)),
    ]
}

/// One interchange with one functional group of one or more transaction sets; the
/// envelope and its counts are [`Writer`]'s.
struct Interchange {
    w: Writer,
    st01: &'static str,
    version: &'static str,
    sets: u32,
}

impl Interchange {
    fn new(gs01: &str, st01: &'static str, version: &'static str, control: u32) -> Self {
        let date = d8(FILE_DATE);
        let mut w = Writer::new(&write::Interchange {
            sender_id: SUBMITTER,
            receiver_id: PAYER_ID,
            date: &date,
            time: "0900",
            control_number: control,
            usage: Usage::Test,
        });
        w.begin_group(&Group {
            functional_id: gs01,
            sender: SUBMITTER,
            receiver: PAYER_ID,
            date: &date,
            time: "0900",
            control_number: control,
            version,
        });
        Interchange {
            w,
            st01,
            version,
            sets: 0,
        }
    }

    fn begin_set(&mut self) {
        self.sets += 1;
        // The 835 TR3 marks ST03 "not used"; the others require it.
        let st03 = (self.st01 != "835").then_some(self.version);
        self.w.begin_set(self.st01, self.sets, st03);
    }

    fn seg(&mut self, segment: impl AsRef<str>) {
        self.w.segment(segment.as_ref());
    }

    fn end_set(&mut self) {
        self.w.end_set();
    }

    fn finish(self) -> Vec<u8> {
        self.w.finish().into_bytes()
    }
}

/// X12 text: none of our delimiters.
fn text(value: &str) -> String {
    value
        .chars()
        .filter(|c| !matches!(c, '*' | '~' | ':' | '^'))
        .collect()
}

/// `CCYYMMDD`.
fn d8(date: Date) -> String {
    date.to_string().replace('-', "")
}

/// Cents as an X12 decimal: no trailing zeros after the point, none at all for whole
/// amounts.
fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let (whole, part) = (cents.abs() / 100, cents.abs() % 100);
    match part {
        0 => format!("{sign}{whole}"),
        p if p % 10 == 0 => format!("{sign}{whole}.{}", p / 10),
        p => format!("{sign}{whole}.{p:02}"),
    }
}

fn digits(value: &str) -> String {
    value.chars().filter(char::is_ascii_digit).collect()
}

/// ICD-10-CM codes go without the dot in X12.
fn undotted(code: &str) -> String {
    code.replace('.', "")
}

fn gender(m: &Member) -> &'static str {
    match m.gender {
        "female" => "F",
        "male" => "M",
        _ => "U",
    }
}

/// NM1*IL, with the member id when `with_id` (the 834 carries it in REF*0F).
fn member_segments(w: &mut Interchange, m: &Member, with_id: bool) {
    let id = &m.identity;
    let name = format!("NM1*IL*1*{}*{}", text(&id.family), text(&id.given));
    if with_id {
        w.seg(format!("{name}****MI*{}", text(&id.member_id)));
    } else {
        w.seg(name);
    }
}

fn member_address(w: &mut Interchange, m: &Member) {
    w.seg(format!("N3*{}", text(&m.street)));
    w.seg(format!(
        "N4*{}*{}*{}",
        text(m.city),
        text(m.state),
        text(&m.identity.postal_code)
    ));
    w.seg(format!(
        "DMG*D8*{}*{}",
        digits(&m.identity.birth_date),
        gender(m)
    ));
}

fn enrolment(members: &[&Member]) -> Vec<u8> {
    let mut w = Interchange::new("BE", "834", "005010X220A1", 1);
    w.begin_set();
    w.seg(format!("BGN*00*DEMO0001*{}*0900****2", d8(FILE_DATE)));
    w.seg("REF*38*DEMOPOLICY");
    w.seg(format!("N1*P5*{}*FI*123456789", text(GROUP_NAME)));
    w.seg(format!("N1*IN*{}*FI*{PAYER_ID}", text(PAYER_NAME)));
    let start = d8(COVERAGE_START);
    for m in members {
        w.seg("INS*Y*18*021*28*A***FT");
        w.seg(format!("REF*0F*{}", text(&m.identity.member_id)));
        w.seg(format!("REF*1L*{}", m.group_number()));
        w.seg(format!("DTP*356*D8*{start}"));
        member_segments(&mut w, m, false);
        // The email sign-in sends its one-time code to.
        w.seg(format!(
            "PER*IP**EM*{}*HP*614{}",
            text(&m.identity.email),
            digits(&m.phone())
        ));
        member_address(&mut w, m);
        for (line, name) in [("HLT", "PPO"), ("DEN", "Dental")] {
            w.seg(format!("HD*021**{line}*{} {name}*EMP", text(PAYER_NAME)));
            w.seg(format!("DTP*348*D8*{start}"));
        }
    }
    w.end_set();
    w.finish()
}

/// The 837 guides: professional, institutional (inpatient and outpatient), dental.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Professional,
    Institutional,
    Dental,
}

impl Family {
    fn of(kind: ClaimKind) -> Option<Family> {
        match kind {
            ClaimKind::Professional => Some(Family::Professional),
            ClaimKind::Inpatient | ClaimKind::Outpatient => Some(Family::Institutional),
            ClaimKind::Oral => Some(Family::Dental),
            ClaimKind::Pharmacy => None,
        }
    }

    fn version_and_control(self) -> (&'static str, u32) {
        match self {
            Family::Professional => ("005010X222A1", 2),
            Family::Institutional => ("005010X223A2", 3),
            Family::Dental => ("005010X224A2", 4),
        }
    }
}

/// The claim this one replaces, when it is an adjustment.
fn replaced<'c>(
    claim: &PlannedClaim,
    by_number: &HashMap<&str, &'c PlannedClaim>,
) -> Option<&'c PlannedClaim> {
    claim
        .related
        .iter()
        .find(|r| r.relationship.code == "prior")
        .and_then(|r| by_number.get(r.control_number.as_str()).copied())
}

/// UB-04 facility type code (the type of bill without its leading 0 and frequency):
/// `11` inpatient, `13` outpatient; office claims take place of service `11`.
fn facility_code(claim: &PlannedClaim) -> &'static str {
    match claim.kind {
        ClaimKind::Outpatient => "13",
        _ => "11",
    }
}

/// The billing provider's N3 and N4 (whose ZIP the 837 TR3s want with all nine
/// digits).
fn provider_address(w: &mut Interchange, o: &Organization) {
    w.seg(format!("N3*{}", text(o.street)));
    w.seg(format!(
        "N4*{}*{}*{}0001",
        text(o.city),
        text(o.state),
        digits(o.postal_code)
    ));
}

/// One 837 of the claims of a family, grouped under their billing providers.
fn claim_file(
    claims: &[(&Member, &PlannedClaim)],
    by_number: &HashMap<&str, &PlannedClaim>,
    family: Family,
) -> Vec<u8> {
    let (version, control) = family.version_and_control();
    let mut w = Interchange::new("HC", "837", version, control);
    w.begin_set();
    w.seg(format!(
        "BHT*0019*00*DEMO{control}*{}*0900*CH",
        d8(FILE_DATE)
    ));
    w.seg(format!("NM1*41*2*Demo Billing Service*****46*{SUBMITTER}"));
    w.seg(format!("PER*IC*Billing Office*TE*{SUBMITTER_PHONE}"));
    w.seg(format!("NM1*40*2*{}*****46*{PAYER_ID}", text(PAYER_NAME)));
    let mut by_provider: BTreeMap<String, Vec<(&Member, &PlannedClaim)>> = BTreeMap::new();
    for (m, c) in claims {
        if Family::of(c.kind) == Some(family) {
            by_provider
                .entry(c.provider.npi())
                .or_default()
                .push((m, c));
        }
    }
    let mut hl = 0;
    for (npi, provider_claims) in &by_provider {
        let Some((_, first)) = provider_claims.first() else {
            continue;
        };
        let provider = first.provider;
        hl += 1;
        let parent = hl;
        w.seg(format!("HL*{parent}**20*1"));
        w.seg(format!("NM1*85*2*{}*****XX*{npi}", text(provider.name)));
        provider_address(&mut w, provider);
        w.seg(format!("REF*EI*{}", text(provider.tin)));
        for (m, c) in provider_claims {
            hl += 1;
            w.seg(format!("HL*{hl}*{parent}*22*0"));
            w.seg(format!("SBR*P*18*{}******CI", m.group_number()));
            member_segments(&mut w, m, true);
            member_address(&mut w, m);
            w.seg(format!("NM1*PR*2*{}*****PI*{PAYER_ID}", text(PAYER_NAME)));
            write_claim(&mut w, m, c, replaced(c, by_number), family);
        }
    }
    w.end_set();
    w.finish()
}

fn team<'c>(claim: &'c PlannedClaim, role: &str) -> Option<&'c crate::directory::Practitioner> {
    claim
        .team
        .iter()
        .find(|(r, _)| r.code.code == role)
        .map(|(_, p)| *p)
}

/// NM1 of a practitioner in a 2310 loop, with PRV when a taxonomy qualifier is given.
fn practitioner(
    w: &mut Interchange,
    nm101: &str,
    who: &crate::directory::Practitioner,
    prv01: Option<&str>,
) {
    w.seg(format!(
        "NM1*{nm101}*1*{}*{}****XX*{}",
        text(who.family),
        text(who.given),
        who.npi()
    ));
    if let Some(prv01) = prv01 {
        w.seg(format!("PRV*{prv01}*PXC*{}", who.taxonomy.code));
    }
}

/// The HI segments: one for 837P and 837D, one per kind of code for 837I, in the
/// order the TR3 lists them.
fn diagnoses(w: &mut Interchange, claim: &PlannedClaim) {
    let codes: Vec<String> = claim
        .scenario
        .diagnoses
        .iter()
        .filter(|c| c.system == ICD10_CM)
        .map(|c| undotted(c.code))
        .collect();
    let Some((principal, others)) = codes.split_first() else {
        return;
    };
    let inpatient = claim.kind == ClaimKind::Inpatient;
    if !matches!(claim.kind, ClaimKind::Inpatient | ClaimKind::Outpatient) {
        // 837P and 837D: one HI with the principal code first.
        let list: Vec<String> = std::iter::once(format!("ABK:{principal}"))
            .chain(others.iter().map(|c| format!("ABF:{c}")))
            .take(12)
            .collect();
        w.seg(format!("HI*{}", list.join("*")));
        return;
    }
    // Present on admission (HI component 9), inpatient only.
    let poa = if inpatient { ":::::::Y" } else { "" };
    w.seg(format!("HI*ABK:{principal}{poa}"));
    match claim.kind {
        ClaimKind::Inpatient => w.seg(format!("HI*ABJ:{principal}")),
        ClaimKind::Outpatient => w.seg(format!("HI*APR:{principal}")),
        _ => {}
    }
    if inpatient && let Some(drg) = claim.scenario.drg {
        w.seg(format!("HI*DR:{}", drg.code));
    }
    if !others.is_empty() {
        let list: Vec<String> = others
            .iter()
            .take(12)
            .map(|c| format!("ABF:{c}{poa}"))
            .collect();
        w.seg(format!("HI*{}", list.join("*")));
    }
    if inpatient && let Some((first, rest)) = claim.scenario.procedures.split_first() {
        let date = d8(claim.start);
        w.seg(format!("HI*BBR:{}:D8:{date}", first.code));
        if !rest.is_empty() {
            let list: Vec<String> = rest
                .iter()
                .take(12)
                .map(|p| format!("BBQ:{}:D8:{date}", p.code))
                .collect();
            w.seg(format!("HI*{}", list.join("*")));
        }
    }
}

fn write_claim(
    w: &mut Interchange,
    m: &Member,
    claim: &PlannedClaim,
    original: Option<&PlannedClaim>,
    family: Family,
) {
    let total: i64 = claim.lines.iter().map(|l| l.amounts.submitted).sum();
    let frequency = if original.is_some() { "7" } else { "1" };
    // Benefits assigned to the provider (CLM08), unless the plan pays the member.
    let assigned = if claim.payee == Payee::Provider {
        "Y"
    } else {
        "N"
    };
    let pcn = text(&claim.facts.patient_account_number);
    let (start, end) = (d8(claim.start), d8(claim.end));
    match family {
        Family::Professional | Family::Dental => w.seg(format!(
            "CLM*{pcn}*{}***11:B:{frequency}*Y*A*{assigned}*Y",
            money(total)
        )),
        Family::Institutional => {
            w.seg(format!(
                "CLM*{pcn}*{}***{}:A:{frequency}**A*{assigned}*Y",
                money(total),
                facility_code(claim)
            ));
            if claim.kind == ClaimKind::Inpatient {
                w.seg("DTP*096*TM*1100");
            }
            w.seg(format!("DTP*434*RD8*{start}-{end}"));
            if claim.kind == ClaimKind::Inpatient {
                w.seg(format!("DTP*435*DT*{start}0800"));
            }
            let f = &claim.facts;
            w.seg(format!(
                "CL1*{}*{}*{}",
                f.admission_type.code, f.point_of_origin.code, f.discharge_status.code
            ));
        }
    }
    if let Some(original) = original {
        w.seg(format!("REF*F8*{}", original.control_number));
    }
    w.seg(format!("REF*EA*{}", text(&m.medical_record_number)));
    diagnoses(w, claim);
    match family {
        Family::Professional => {
            if let Some(who) = team(claim, "referring") {
                practitioner(w, "DN", who, None);
            }
            if let Some(who) = team(claim, "primary") {
                practitioner(w, "P3", who, None);
            }
            // No service facility loop (2310C): the TR3 wants it only where the
            // service was not at the billing provider's address.
            if let Some(who) = team(claim, "rendering") {
                practitioner(w, "82", who, Some("PE"));
            }
        }
        Family::Dental => {
            if let Some(who) = team(claim, "rendering") {
                practitioner(w, "82", who, Some("PE"));
            }
        }
        Family::Institutional => {
            if let Some(who) = team(claim, "attending") {
                practitioner(w, "71", who, Some("AT"));
            }
            if let Some(who) = team(claim, "operating") {
                practitioner(w, "72", who, None);
            }
            if let Some(who) = team(claim, "referring") {
                practitioner(w, "DN", who, None);
            }
        }
    }
    let pointer = if claim.scenario.diagnoses.is_empty() {
        ""
    } else {
        "1"
    };
    for (i, line) in claim.lines.iter().enumerate() {
        let n = i + 1;
        let l = line.line;
        let charge = money(line.amounts.submitted);
        w.seg(format!("LX*{n}"));
        match family {
            Family::Professional => w.seg(format!(
                "SV1*HC:{}*{charge}*UN*{}***{pointer}",
                l.service.code, l.units
            )),
            Family::Institutional => {
                let revenue = l.revenue.map(|r| r.code).unwrap_or("0001");
                let hcpcs = if l.service.system == DATA_ABSENT_REASON {
                    String::new()
                } else {
                    format!("HC:{}", l.service.code)
                };
                w.seg(format!("SV2*{revenue}*{hcpcs}*{charge}*UN*{}", l.units));
            }
            Family::Dental => {
                w.seg(format!("SV3*AD:{}*{charge}****{}", l.service.code, l.units));
                if let Some(tooth) = l.tooth {
                    let surfaces = l.surfaces.join(":");
                    if surfaces.is_empty() {
                        w.seg(format!("TOO*JP*{tooth}"));
                    } else {
                        w.seg(format!("TOO*JP*{tooth}*{surfaces}"));
                    }
                }
            }
        }
        if claim.kind == ClaimKind::Inpatient {
            w.seg(format!("DTP*472*RD8*{start}-{end}"));
        } else {
            w.seg(format!("DTP*472*D8*{start}"));
        }
        w.seg(format!("REF*6R*{n}"));
    }
}

/// The 835s: one payment per billing provider and day, in date order, so an
/// original claim is paid before the payment that reverses it.
fn remittance(
    claims: &[(&Member, &PlannedClaim)],
    by_number: &HashMap<&str, &PlannedClaim>,
) -> Vec<u8> {
    let mut payments: BTreeMap<(String, String), Vec<(&Member, &PlannedClaim)>> = BTreeMap::new();
    for (m, c) in claims {
        payments
            .entry((d8(c.created), c.provider.npi()))
            .or_default()
            .push((m, c));
    }
    let mut w = Interchange::new("HP", "835", "005010X221A1", 5);
    for ((date, npi), paid_claims) in &payments {
        let Some((_, first)) = paid_claims.first() else {
            continue;
        };
        let provider = first.provider;
        let total: i64 = paid_claims
            .iter()
            .map(|(_, c)| {
                let reversed = replaced(c, by_number).map_or(0, benefit);
                benefit(c) - reversed
            })
            .sum();
        w.begin_set();
        if total > 0 {
            w.seg(format!(
                "BPR*I*{}*C*ACH*CCP*01*999999992*DA*123456*1512345678**01*999988880*DA*98765*{date}",
                money(total)
            ));
        } else {
            w.seg(format!("BPR*H*0*C*NON************{date}"));
        }
        w.seg(format!("TRN*1*DEMO{date}{npi}*1512345678"));
        w.seg(format!("DTM*405*{date}"));
        w.seg(format!("N1*PR*{}*XV*{PAYER_ID}", text(PAYER_NAME)));
        w.seg("N3*100 Plan Way");
        w.seg("N4*Columbus*OH*43215");
        w.seg("PER*BL*Claims*TE*8005551212");
        w.seg(format!("N1*PE*{}*XX*{npi}", text(provider.name)));
        w.seg(format!("REF*TJ*{}", text(provider.tin)));
        w.seg("LX*1");
        for (m, c) in paid_claims {
            if let Some(original) = replaced(c, by_number) {
                reversal(&mut w, m, original);
            }
            payment(&mut w, m, c, replaced(c, by_number).is_some());
        }
        w.end_set();
    }
    w.finish()
}

fn benefit(claim: &PlannedClaim) -> i64 {
    claim.lines.iter().map(|l| l.amounts.benefit).sum()
}

fn member_liability(claim: &PlannedClaim) -> i64 {
    claim.lines.iter().map(|l| l.amounts.member_liability).sum()
}

fn submitted(claim: &PlannedClaim) -> i64 {
    claim.lines.iter().map(|l| l.amounts.submitted).sum()
}

fn patient(w: &mut Interchange, m: &Member) {
    let id = &m.identity;
    w.seg(format!(
        "NM1*QC*1*{}*{}****MI*{}",
        text(&id.family),
        text(&id.given),
        text(&id.member_id)
    ));
}

/// The payer takes back what it paid on the claim an adjustment replaces.
fn reversal(w: &mut Interchange, m: &Member, original: &PlannedClaim) {
    w.seg(format!(
        "CLP*{}*22*{}*{}*{}*12*{}*{}*1",
        text(&original.facts.patient_account_number),
        money(-submitted(original)),
        money(-benefit(original)),
        money(-member_liability(original)),
        original.control_number,
        facility_code(original)
    ));
    patient(w, m);
}

fn payment(w: &mut Interchange, m: &Member, claim: &PlannedClaim, replacement: bool) {
    let denied = claim.lines.iter().all(|l| !l.pricing.covered);
    let mut clp = format!(
        "CLP*{}*{}*{}*{}*{}*12*{}*{}*{}",
        text(&claim.facts.patient_account_number),
        if denied { "4" } else { "1" },
        money(submitted(claim)),
        money(benefit(claim)),
        money(member_liability(claim)),
        claim.control_number,
        facility_code(claim),
        if replacement { "7" } else { "1" }
    );
    if claim.kind == ClaimKind::Inpatient
        && let Some(drg) = claim.scenario.drg
    {
        // CLP10 (patient status) is not used in 5010; CLP11 is the DRG.
        let _ = write!(clp, "**{}", drg.code);
    }
    w.seg(clp);
    patient(w, m);
    let who = team(claim, "rendering").or_else(|| team(claim, "attending"));
    if let Some(who) = who {
        w.seg(format!(
            "NM1*82*1*{}*{}****XX*{}",
            text(who.family),
            text(who.given),
            who.npi()
        ));
    }
    w.seg(format!("DTM*232*{}", d8(claim.start)));
    w.seg(format!("DTM*233*{}", d8(claim.end)));
    w.seg(format!("DTM*050*{}", d8(claim.received)));
    for (i, line) in claim.lines.iter().enumerate() {
        service_line(w, claim, i + 1, line);
    }
}

fn service_line(w: &mut Interchange, claim: &PlannedClaim, n: usize, line: &PlannedLine) {
    let l = line.line;
    let a = &line.amounts;
    let institutional = matches!(claim.kind, ClaimKind::Inpatient | ClaimKind::Outpatient);
    let revenue = l.revenue.map(|r| r.code).unwrap_or("0001");
    let (procedure, svc04) = if l.service.system == DATA_ABSENT_REASON {
        (format!("NU:{revenue}"), "")
    } else if l.service.system == CDT {
        (format!("AD:{}", l.service.code), "")
    } else if institutional {
        (format!("HC:{}", l.service.code), revenue)
    } else {
        (format!("HC:{}", l.service.code), "")
    };
    w.seg(format!(
        "SVC*{procedure}*{}*{}*{svc04}*{}",
        money(a.submitted),
        money(a.benefit),
        l.units
    ));
    if claim.kind == ClaimKind::Inpatient {
        w.seg(format!("DTM*150*{}", d8(claim.start)));
        w.seg(format!("DTM*151*{}", d8(claim.end)));
    } else {
        w.seg(format!("DTM*472*{}", d8(claim.start)));
    }
    cas(w, "CO", &[("45", a.discount), ("96", a.noncovered)]);
    cas(
        w,
        "PR",
        &[("1", a.deductible), ("2", a.coinsurance), ("3", a.copay)],
    );
    w.seg(format!("REF*6R*{n}"));
    if a.eligible > 0 {
        w.seg(format!("AMT*B6*{}", money(a.eligible)));
    }
}

/// One CAS of a group with its non-zero reasons (reason, amount, no quantity).
fn cas(w: &mut Interchange, group: &str, reasons: &[(&str, i64)]) {
    let triplets: Vec<String> = reasons
        .iter()
        .filter(|(_, cents)| *cents != 0)
        .map(|(reason, cents)| format!("{reason}*{}", money(*cents)))
        .collect();
    if !triplets.is_empty() {
        w.seg(format!("CAS*{group}*{}", triplets.join("**")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_written_without_trailing_zeros() {
        assert_eq!(money(12_300), "123");
        assert_eq!(money(12_350), "123.5");
        assert_eq!(money(12_305), "123.05");
        assert_eq!(money(-50), "-0.5");
        assert_eq!(money(0), "0");
    }

    #[test]
    fn every_set_counts_its_segments_and_every_member_is_enrolled() {
        let config = DemoConfig::default();
        let files = files(&config);
        assert_eq!(files.len(), 5);
        for (name, bytes) in &files {
            let text = String::from_utf8_lossy(bytes);
            let segments: Vec<&str> = text.split("~\n").filter(|s| !s.is_empty()).collect();
            let mut in_set = 0;
            for segment in &segments {
                if segment.starts_with("ST*") {
                    in_set = 0;
                }
                in_set += 1;
                if let Some(rest) = segment.strip_prefix("SE*") {
                    let count = rest.split('*').next().unwrap_or_default();
                    assert_eq!(count, in_set.to_string(), "{name}: {segment}");
                }
            }
        }
        let enrolment = String::from_utf8_lossy(&files[0].1).into_owned();
        assert_eq!(enrolment.matches("INS*Y*18").count(), config.members);
    }

    #[test]
    fn the_mapping_accepts_every_set_and_with_fhir_only_makes_every_generated_resource() {
        let config = DemoConfig::default();
        let mapping = edi_fhir::MappingConfig {
            payer_id: PAYER_ID.to_owned(),
            payer_name: PAYER_NAME.to_owned(),
            default_network_status: edi_fhir::NetworkStatus::InNetwork,
        };
        let mut made = std::collections::BTreeSet::new();
        for (name, bytes) in files(&config) {
            let conversion = edi_fhir::convert(&bytes, &mapping);
            assert!(
                !conversion.rejects_everything && conversion.file_problems.is_empty(),
                "{name}: {:?}",
                conversion.file_problems
            );
            for set in &conversion.transaction_sets {
                assert!(
                    matches!(set.outcome, edi_fhir::SetOutcome::Accepted { .. }),
                    "{name}: {set:?}"
                );
            }
            made.extend(
                conversion
                    .changes()
                    .map(|c| (c.resource_type, c.id.clone())),
            );
        }
        let data = crate::generate(&config);
        let fhir_only = data.fhir_only();
        // Members and their non-pharmacy claims come from X12 only (fhir_only names
        // them because pharmacy claims and RelatedPersons refer to them).
        for (t, id, r) in &fhir_only {
            let claim = *t == fhir::ResourceType::ExplanationOfBenefit
                && r["type"]["coding"][0]["code"] != "pharmacy";
            if claim || *t == fhir::ResourceType::Patient {
                assert!(made.contains(&(*t, id.clone())), "{t}/{id}");
            }
        }
        let direct: std::collections::BTreeSet<_> =
            fhir_only.into_iter().map(|(t, id, _)| (t, id)).collect();
        for (t, id, _) in &data.resources {
            let key = (*t, id.clone());
            assert!(
                made.contains(&key) || direct.contains(&key),
                "{t}/{id} comes from neither the X12 files nor fhir_only"
            );
        }
    }
}
