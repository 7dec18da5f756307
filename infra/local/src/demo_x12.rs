//! The demo data as X12: an 834 enrolling the demo members, then 837P, 837I and 837D
//! claims for them and the 835 that pays those claims. Loading these files through
//! the ingest pipeline exercises the same path a plan's files take, end to end.
//!
//! Built from [`demo_data::generate`]'s members (names, birth dates, member ids,
//! postal codes), so the same seed gives byte-identical files. Claims are drawn
//! deterministically from small code lists; every claim gets paid in the 835.

use std::fmt::Write as _;

use demo_data::{DemoConfig, DemoMember};

use crate::edi::{LOCAL_PAYER_ID, LOCAL_PAYER_NAME};

/// The billing provider: 837 2010AA and 835 N1*PE must agree for the 835 to find
/// the claims it pays.
const BILLING_NPI: &str = "1999999984";
const BILLING_TIN: &str = "587654321";
const RENDERING_NPI: &str = "1234567893";
const DENTIST_NPI: &str = "1588667638";

/// One demo claim: which member, which flavour, when, and what was billed.
struct DemoClaim<'m> {
    member: &'m DemoMember,
    flavour: Flavour,
    /// CLM01 and CLP01.
    account: String,
    /// `CCYYMMDD`.
    date: String,
    /// (procedure or revenue code, charge in whole dollars).
    lines: Vec<(&'static str, u32)>,
    diagnosis: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Professional,
    Outpatient,
    Inpatient,
    Dental,
}

const CPT: &[(&str, u32)] = &[
    ("99213", 120),
    ("99214", 180),
    ("87880", 35),
    ("80053", 60),
    ("93000", 90),
];
const REVENUE: &[(&str, u32)] = &[("0300", 240), ("0450", 900), ("0250", 80)];
const DENTAL: &[(&str, u32)] = &[("D0120", 65), ("D1110", 110), ("D0274", 70)];
const ICD: &[&str] = &["J020", "E119", "I10", "M545", "R0789", "Z0000"];

/// The demo files in the order they are ingested: enrolment first, then claims,
/// then the remittance.
pub fn demo_files(config: &DemoConfig) -> (Vec<DemoMember>, Vec<(String, Vec<u8>)>) {
    let members = demo_data::generate(config).members;
    let claims = claims(&members, config.eobs_per_member.clamp(1, 12));
    let files = vec![
        ("demo-834.x12".to_owned(), enrolment(&members)),
        (
            "demo-837p.x12".to_owned(),
            claim_file(&claims, Flavour::Professional),
        ),
        (
            "demo-837i.x12".to_owned(),
            claim_file(&claims, Flavour::Inpatient),
        ),
        (
            "demo-837d.x12".to_owned(),
            claim_file(&claims, Flavour::Dental),
        ),
        ("demo-835.x12".to_owned(), remittance(&claims)),
    ];
    (members, files)
}

/// The Patient id a demo member gets from the X12 path.
pub fn patient_id(member: &DemoMember) -> String {
    edi_fhir::ids::patient(
        LOCAL_PAYER_ID,
        &edi_fhir::ids::MemberKey::Subscriber {
            member_id: &member.member_id,
        },
    )
}

fn claims(members: &[DemoMember], per_member: usize) -> Vec<DemoClaim<'_>> {
    let mut out = Vec::new();
    for (m, member) in members.iter().enumerate() {
        for c in 0..per_member {
            let n = m * 31 + c * 7;
            let flavour = match c % 6 {
                3 => Flavour::Outpatient,
                4 => Flavour::Dental,
                5 => Flavour::Inpatient,
                _ => Flavour::Professional,
            };
            let table = match flavour {
                Flavour::Professional => CPT,
                Flavour::Outpatient | Flavour::Inpatient => REVENUE,
                Flavour::Dental => DENTAL,
            };
            let lines = (0..1 + n % 3)
                .map(|i| table[(n + i) % table.len()])
                .collect();
            out.push(DemoClaim {
                member,
                flavour,
                account: format!("DEMO{:03}{:03}", m + 1, c + 1),
                date: format!("{}{:02}{:02}", 2020 + (c % 5), 1 + (n % 12), 1 + (n % 28)),
                lines,
                diagnosis: ICD[n % ICD.len()],
            });
        }
    }
    out
}

/// Segments with SE01 counting, one interchange with one group and one set.
struct Writer {
    out: String,
    in_set: usize,
}

impl Writer {
    fn begin(gs01: &str, st01: &str, version: &str, control: u32) -> Self {
        let mut w = Writer {
            out: String::new(),
            in_set: 0,
        };
        let _ = writeln!(
            w.out,
            "ISA*00*          *00*          *ZZ*{:<15}*ZZ*{:<15}*250115*0900*^*00501*{control:09}*0*T*:~",
            "DEMOSUBMITTER", LOCAL_PAYER_ID
        );
        let _ = writeln!(
            w.out,
            "GS*{gs01}*DEMOSUBMITTER*{LOCAL_PAYER_ID}*20250115*0900*{control}*X*{version}~"
        );
        // The 835 TR3 marks ST03 "not used"; the others require it.
        if st01 == "835" {
            w.seg("ST*835*0001");
        } else {
            w.seg(&format!("ST*{st01}*0001*{version}"));
        }
        w
    }

    fn seg(&mut self, segment: &str) {
        self.out.push_str(segment);
        self.out.push_str("~\n");
        self.in_set += 1;
    }

    fn end(mut self, control: u32) -> Vec<u8> {
        let count = self.in_set + 1;
        self.seg(&format!("SE*{count}*0001"));
        let _ = write!(self.out, "GE*1*{control}~\nIEA*1*{control:09}~\n");
        self.out.into_bytes()
    }
}

/// X12 text: upper case, none of our delimiters.
fn x12(value: &str) -> String {
    value
        .chars()
        .filter(|c| !matches!(c, '*' | '~' | ':' | '^'))
        .collect::<String>()
        .to_uppercase()
}

fn birth(member: &DemoMember) -> String {
    member.birth_date.replace('-', "")
}

fn enrolment(members: &[DemoMember]) -> Vec<u8> {
    let mut w = Writer::begin("BE", "834", "005010X220A1", 1);
    w.seg("BGN*00*DEMO0001*20250115*0900****2");
    w.seg("REF*38*DEMOPOLICY");
    w.seg("N1*P5*DEMO EMPLOYER*FI*123456789");
    w.seg(&format!("N1*IN*{LOCAL_PAYER_NAME}*FI*{LOCAL_PAYER_ID}"));
    for member in members {
        w.seg("INS*Y*18*021*28*A***FT");
        w.seg(&format!("REF*0F*{}", x12(&member.member_id)));
        w.seg("DTP*356*D8*20190101");
        w.seg(&format!(
            "NM1*IL*1*{}*{}",
            x12(&member.family),
            x12(&member.given)
        ));
        // The email sign-in sends its one-time code to.
        w.seg(&format!(
            "PER*IP**EM*{}",
            member.email.replace(['*', '~', '^'], "")
        ));
        w.seg("N3*100 MAIN ST");
        w.seg(&format!("N4*COLUMBUS*OH*{}", x12(&member.postal_code)));
        w.seg(&format!("DMG*D8*{}*U", birth(member)));
        for line in ["HLT", "DEN"] {
            w.seg(&format!("HD*021**{line}*DEMO PLAN {line}*EMP"));
            w.seg("DTP*348*D8*20190101");
        }
    }
    w.end(1)
}

/// One 837 of the claims of a flavour family (institutional covers inpatient and
/// outpatient).
fn claim_file(claims: &[DemoClaim<'_>], family: Flavour) -> Vec<u8> {
    let (version, control) = match family {
        Flavour::Professional => ("005010X222A1", 2),
        Flavour::Dental => ("005010X224A2", 4),
        Flavour::Inpatient | Flavour::Outpatient => ("005010X223A2", 3),
    };
    let mut w = Writer::begin("HC", "837", version, control);
    w.seg("BHT*0019*00*DEMO*20250115*0900*CH");
    w.seg("NM1*41*2*DEMO BILLING*****46*DEMOSUBMITTER");
    w.seg("PER*IC*BILLING OFFICE*TE*6145550100");
    w.seg(&format!(
        "NM1*40*2*{LOCAL_PAYER_NAME}*****46*{LOCAL_PAYER_ID}"
    ));
    w.seg("HL*1**20*1");
    w.seg(&format!(
        "NM1*85*2*DEMO HEALTH PARTNERS*****XX*{BILLING_NPI}"
    ));
    w.seg("N3*500 HOSPITAL DR");
    w.seg("N4*COLUMBUS*OH*432151234");
    w.seg(&format!("REF*EI*{BILLING_TIN}"));
    let mut hl = 1;
    let same_family = |f: Flavour| match family {
        Flavour::Inpatient | Flavour::Outpatient => {
            matches!(f, Flavour::Inpatient | Flavour::Outpatient)
        }
        other => f == other,
    };
    for claim in claims.iter().filter(|c| same_family(c.flavour)) {
        hl += 1;
        let m = claim.member;
        w.seg(&format!("HL*{hl}*1*22*0"));
        w.seg("SBR*P*18*DEMOGROUP******CI");
        w.seg(&format!(
            "NM1*IL*1*{}*{}****MI*{}",
            x12(&m.family),
            x12(&m.given),
            x12(&m.member_id)
        ));
        w.seg("N3*100 MAIN ST");
        w.seg(&format!("N4*COLUMBUS*OH*{}", x12(&m.postal_code)));
        w.seg(&format!("DMG*D8*{}*U", birth(m)));
        w.seg(&format!(
            "NM1*PR*2*{LOCAL_PAYER_NAME}*****PI*{LOCAL_PAYER_ID}"
        ));
        write_claim(&mut w, claim);
    }
    w.end(control)
}

fn write_claim(w: &mut Writer, claim: &DemoClaim<'_>) {
    let total: u32 = claim.lines.iter().map(|(_, charge)| charge).sum();
    let clm05 = match claim.flavour {
        Flavour::Inpatient => "11:A:1",
        Flavour::Outpatient => "13:A:1",
        Flavour::Professional | Flavour::Dental => "11:B:1",
    };
    // CLM06 (provider signature) is used in 837P/837D only.
    let signature = match claim.flavour {
        Flavour::Inpatient | Flavour::Outpatient => "",
        Flavour::Professional | Flavour::Dental => "Y",
    };
    w.seg(&format!(
        "CLM*{}*{total}***{clm05}*{signature}*A*Y*Y",
        claim.account
    ));
    let date = &claim.date;
    match claim.flavour {
        Flavour::Inpatient | Flavour::Outpatient => {
            w.seg(&format!("DTP*434*RD8*{date}-{date}"));
            w.seg("CL1*1*7*01");
            w.seg(&format!("HI*ABK:{}", claim.diagnosis));
            w.seg(&format!("NM1*71*1*WELBY*MARCUS****XX*{RENDERING_NPI}"));
        }
        Flavour::Dental => {
            w.seg(&format!("DTP*472*D8*{date}"));
            w.seg(&format!("NM1*82*1*GRIN*PEARL****XX*{DENTIST_NPI}"));
        }
        Flavour::Professional => {
            w.seg(&format!("HI*ABK:{}", claim.diagnosis));
            w.seg(&format!("NM1*82*1*KILDARE*BEN****XX*{RENDERING_NPI}"));
            w.seg("PRV*PE*PXC*207Q00000X");
        }
    }
    for (i, (code, charge)) in claim.lines.iter().enumerate() {
        w.seg(&format!("LX*{}", i + 1));
        match claim.flavour {
            Flavour::Professional => w.seg(&format!("SV1*HC:{code}*{charge}*UN*1***1")),
            Flavour::Inpatient | Flavour::Outpatient => {
                w.seg(&format!("SV2*{code}**{charge}*UN*1"))
            }
            Flavour::Dental => w.seg(&format!("SV3*AD:{code}*{charge}****1")),
        }
        if claim.flavour != Flavour::Inpatient {
            w.seg(&format!("DTP*472*D8*{date}"));
        }
        w.seg(&format!("REF*6R*{}-{}", claim.account, i + 1));
    }
}

/// The 835 that pays every demo claim at 80%, the rest contractual adjustment.
fn remittance(claims: &[DemoClaim<'_>]) -> Vec<u8> {
    let mut body = Writer {
        out: String::new(),
        in_set: 0,
    };
    let mut paid_total = 0;
    for (n, claim) in claims.iter().enumerate() {
        let charge: u32 = claim.lines.iter().map(|(_, c)| c).sum();
        let paid: u32 = claim.lines.iter().map(|(_, c)| c * 8 / 10).sum();
        paid_total += paid;
        let kind = match claim.flavour {
            Flavour::Inpatient => "11",
            Flavour::Outpatient => "13",
            Flavour::Professional | Flavour::Dental => "11",
        };
        let m = claim.member;
        body.seg(&format!(
            "CLP*{}*1*{charge}*{paid}*0*12*ICN{:010}*{kind}*1",
            claim.account,
            n + 1
        ));
        body.seg(&format!(
            "NM1*QC*1*{}*{}****MI*{}",
            x12(&m.family),
            x12(&m.given),
            x12(&m.member_id)
        ));
        body.seg(&format!("DTM*232*{}", claim.date));
        for (i, (code, line)) in claim.lines.iter().enumerate() {
            let line_paid = line * 8 / 10;
            let qualifier = match claim.flavour {
                Flavour::Inpatient | Flavour::Outpatient => format!("NU:{code}"),
                Flavour::Dental => format!("AD:{code}"),
                Flavour::Professional => format!("HC:{code}"),
            };
            body.seg(&format!("SVC*{qualifier}*{line}*{line_paid}**1"));
            body.seg(&format!("DTM*472*{}", claim.date));
            body.seg(&format!("CAS*CO*45*{}", line - line_paid));
            body.seg(&format!("REF*6R*{}-{}", claim.account, i + 1));
            body.seg(&format!("AMT*B6*{line_paid}"));
        }
    }
    let mut w = Writer::begin("HP", "835", "005010X221A1", 5);
    w.seg(&format!(
        "BPR*I*{paid_total}*C*ACH*CCP*01*999999992*DA*123456*1512345678**01*999988880*DA*98765*20250120"
    ));
    w.seg("TRN*1*DEMO835*1512345678");
    w.seg("DTM*405*20250119");
    w.seg(&format!("N1*PR*{LOCAL_PAYER_NAME}*XV*{LOCAL_PAYER_ID}"));
    w.seg("N3*1 INSURANCE WAY");
    w.seg("N4*COLUMBUS*OH*43215");
    w.seg("PER*BL*CLAIMS*TE*8005551212");
    w.seg(&format!("N1*PE*DEMO HEALTH PARTNERS*XX*{BILLING_NPI}"));
    w.seg(&format!("REF*TJ*{BILLING_TIN}"));
    w.seg("LX*1");
    w.out.push_str(&body.out);
    w.in_set += body.in_set;
    w.end(5)
}
