//! Generators of large, realistic, valid 005010 files for benchmarks, fuzz
//! seeds and tests. They are code, not data, so the repository stays small
//! and any size can be produced deterministically from a seed.
//!
//! Every file has one ISA. Like real files, big ones are split the way the
//! implementation guides recommend: at most [`MAX_PER_SET`] claims (or
//! members) per ST..SE, and a new functional group (GS..GE) every
//! [`SETS_PER_GROUP`] sets, with correct counts and unique control numbers.
//! A file of up to [`MAX_PER_SET`] claims is one ISA/GS/ST.

use crate::write::{Group, Interchange, Usage, Writer};

/// A small deterministic PRNG (xorshift64*): no dependency, stable output.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = self.below(items.len() as u64) as usize;
        items.get(i).copied().unwrap_or("")
    }

    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    fn date(&mut self) -> String {
        format!("2024{:02}{:02}", 1 + self.below(12), 1 + self.below(28))
    }
}

const LAST: &[&str] = &[
    "SMITH", "JONES", "GARCIA", "NGUYEN", "PATEL", "KIM", "OKAFOR", "MULLER",
];
const FIRST: &[&str] = &[
    "JOHN", "MARIA", "WEI", "AISHA", "OMAR", "ELENA", "SAM", "LUCY",
];
const CPT: &[&str] = &[
    "99213", "99214", "87880", "36415", "80053", "93000", "71046",
];
const ICD: &[&str] = &["J020", "E119", "I10", "M545", "R0789", "Z0000", "S060X1A"];

/// Claims (837 CLM, 835 CLP) or members (834 INS) per transaction set: the
/// 837 guides recommend at most 5,000 claims per ST..SE.
pub const MAX_PER_SET: usize = 5_000;

/// Transaction sets per functional group.
pub const SETS_PER_GROUP: usize = 10;

/// The generators' envelope: one ISA, a new group every [`SETS_PER_GROUP`] sets
/// (GS06 101, 102...), sets numbered through the file (so ST02 is unique in it).
/// The counts are [`Writer`]'s.
struct Envelope {
    w: Writer,
    gs01: &'static str,
    st01: &'static str,
    version: &'static str,
    st03: bool,
    sets: u32,
}

impl Envelope {
    fn new(gs01: &'static str, st01: &'static str, version: &'static str, st03: bool) -> Self {
        let w = Writer::new(&Interchange {
            sender_id: "SUBMITTER",
            receiver_id: "RECEIVER",
            date: "20240115",
            time: "1200",
            control_number: 101,
            usage: Usage::Test,
        });
        Self {
            w,
            gs01,
            st01,
            version,
            st03,
            sets: 0,
        }
    }

    fn seg(&mut self, s: &str) {
        self.w.segment(s);
    }

    /// Opens a set (and a group when none is open or the open one is full).
    fn begin_set(&mut self) {
        let per_group = SETS_PER_GROUP as u32;
        if self.sets.is_multiple_of(per_group) {
            self.w.begin_group(&Group {
                functional_id: self.gs01,
                sender: "SUBMITTER",
                receiver: "RECEIVER",
                date: "20240115",
                time: "1200",
                control_number: 101 + self.sets / per_group,
                version: self.version,
            });
        }
        self.sets += 1;
        let st03 = self.st03.then_some(self.version);
        self.w.begin_set(self.st01, self.sets, st03);
    }

    fn end_set(&mut self) {
        self.w.end_set();
    }

    fn end(self) -> Vec<u8> {
        self.w.finish().into_bytes()
    }
}

/// N3/N4 and a random DMG birth date and sex: a subscriber (837 2010BA) or a
/// member (834 2100A).
fn person_address_and_birth(w: &mut Envelope, rng: &mut Rng) {
    w.seg("N3*123 MAIN ST");
    w.seg("N4*MIAMI*FL*33111");
    w.seg(&format!(
        "DMG*D8*19{}0{}15*{}",
        50 + rng.below(49),
        1 + rng.below(9),
        rng.pick(&["F", "M"])
    ));
}

/// `0..n` in chunks of at most [`MAX_PER_SET`]; one (empty) chunk for `n = 0`.
fn chunks(n: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let sets = n.div_ceil(MAX_PER_SET).max(1);
    (0..sets).map(move |i| i * MAX_PER_SET..((i + 1) * MAX_PER_SET).min(n))
}

/// A file of about `mb` MB from `generator` (seed 42) and its claim (or
/// member) count: the count from a sample's bytes per claim.
pub fn of_size(generator: fn(usize, u64) -> Vec<u8>, mb: f64) -> (Vec<u8>, usize) {
    let sample = 2_000;
    let per_claim = generator(sample, 42).len() as f64 / sample as f64;
    let claims = ((mb * 1e6) / per_claim).round().max(1.0) as usize;
    (generator(claims, 42), claims)
}

/// Claim flavour for the shared 837 generator.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Professional,
    Institutional,
    Dental,
}

/// A 837P (005010X222A1) with `claims` claims of 1–4 service lines.
pub fn generate_837p(claims: usize, seed: u64) -> Vec<u8> {
    generate_837(claims, seed, Flavour::Professional)
}

/// A 837I (005010X223A2) with `claims` claims of 1–4 revenue lines.
pub fn generate_837i(claims: usize, seed: u64) -> Vec<u8> {
    generate_837(claims, seed, Flavour::Institutional)
}

/// A 837D (005010X224A2) with `claims` claims of 1–4 dental lines.
pub fn generate_837d(claims: usize, seed: u64) -> Vec<u8> {
    generate_837(claims, seed, Flavour::Dental)
}

fn generate_837(claims: usize, seed: u64, flavour: Flavour) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let version = match flavour {
        Flavour::Professional => "005010X222A1",
        Flavour::Institutional => "005010X223A2",
        Flavour::Dental => "005010X224A2",
    };
    let mut w = Envelope::new("HC", "837", version, true);
    for set in chunks(claims) {
        w.begin_set();
        w.seg("BHT*0019*00*0123*20240115*1200*CH");
        w.seg("NM1*41*2*PREMIER BILLING SERVICE*****46*TGJ23");
        w.seg("PER*IC*JERRY*TE*3055552222");
        w.seg("NM1*40*2*KEY INSURANCE COMPANY*****46*66783JJT");
        w.seg("HL*1**20*1");
        w.seg("PRV*BI*PXC*203BF0100Y");
        w.seg("NM1*85*2*BEN KILDARE SERVICE*****XX*9876543210");
        w.seg("N3*234 SEAWAY ST");
        w.seg("N4*MIAMI*FL*33111");
        w.seg("REF*EI*587654321");
        let mut hl = 1;
        for c in set {
            hl += 1;
            let subscriber_hl = hl;
            let dependent = rng.below(4) == 0;
            w.seg(&format!(
                "HL*{subscriber_hl}*1*22*{}",
                if dependent { 1 } else { 0 }
            ));
            w.seg(&format!(
                "SBR*P*{}*GRP{}******CI",
                if dependent { "" } else { "18" },
                rng.digits(5)
            ));
            let (last, first) = (rng.pick(LAST), rng.pick(FIRST));
            w.seg(&format!("NM1*IL*1*{last}*{first}****MI*M{}", rng.digits(9)));
            person_address_and_birth(&mut w, &mut rng);
            w.seg("NM1*PR*2*KEY INSURANCE COMPANY*****PI*999996666");
            if dependent {
                hl += 1;
                w.seg(&format!("HL*{hl}*{subscriber_hl}*23*0"));
                w.seg("PAT*19");
                w.seg(&format!("NM1*QC*1*{last}*{}", rng.pick(FIRST)));
                w.seg("N3*123 MAIN ST");
                w.seg("N4*MIAMI*FL*33111");
                w.seg("DMG*D8*20150301*F");
            }
            write_claim(&mut w, &mut rng, c, flavour);
        }
        w.end_set();
    }
    w.end()
}

fn write_claim(w: &mut Envelope, rng: &mut Rng, c: usize, flavour: Flavour) {
    let lines = 1 + rng.below(4) as usize;
    let charges: Vec<u64> = (0..lines).map(|_| 20 + rng.below(300)).collect();
    let total: u64 = charges.iter().sum();
    let clm05 = match flavour {
        Flavour::Institutional => "11:A:1",
        _ => "11:B:1",
    };
    w.seg(&format!("CLM*PCN{c:07}*{total}***{clm05}*Y*A*Y*Y"));
    let date = rng.date();
    match flavour {
        Flavour::Institutional => {
            w.seg(&format!("DTP*434*RD8*{date}-{date}"));
            w.seg("CL1*1*7*01");
            w.seg(&format!("HI*ABK:{}", rng.pick(ICD)));
            w.seg("NM1*71*1*WELBY*MARCUS****XX*1234567893");
        }
        Flavour::Dental => {
            w.seg(&format!("DTP*472*D8*{date}"));
            w.seg("NM1*82*1*GRIN*PEARL****XX*1234567893");
        }
        Flavour::Professional => {
            w.seg(&format!("HI*ABK:{}*ABF:{}", rng.pick(ICD), rng.pick(ICD)));
            w.seg("NM1*82*1*KILDARE*BEN****XX*1234567893");
            w.seg("PRV*PE*PXC*207Q00000X");
        }
    }
    for (i, charge) in charges.iter().enumerate() {
        w.seg(&format!("LX*{}", i + 1));
        match flavour {
            Flavour::Professional => {
                w.seg(&format!("SV1*HC:{}*{charge}*UN*1***1", rng.pick(CPT)));
                w.seg(&format!("DTP*472*D8*{date}"));
            }
            Flavour::Institutional => {
                w.seg(&format!("SV2*0300*HC:{}*{charge}*UN*1", rng.pick(CPT)));
                w.seg(&format!("DTP*472*D8*{date}"));
            }
            Flavour::Dental => {
                w.seg(&format!("SV3*AD:D{}*{charge}****1", 1000 + rng.below(8000)));
                w.seg(&format!("TOO*JP*{}*M:O", 1 + rng.below(32)));
            }
        }
        w.seg(&format!("REF*6R*{c}-{}", i + 1));
    }
}

/// A 835 (005010X221A1) paying `claims` claims of 1–3 service lines.
pub fn generate_835(claims: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut w = Envelope::new("HP", "835", "005010X221A1", false);
    for (n, set) in chunks(claims).enumerate() {
        // The claims come first: BPR, at the top of the set, carries their total.
        let mut body = Vec::new();
        let mut seg = |s: &str| body.push(s.to_owned());
        let mut paid_total: u64 = 0;
        for c in set {
            let lines = 1 + rng.below(3) as usize;
            let charges: Vec<u64> = (0..lines).map(|_| 40 + rng.below(300)).collect();
            let charge: u64 = charges.iter().sum();
            let paid: u64 = charges.iter().map(|x| x * 8 / 10).sum();
            paid_total += paid;
            let date = rng.date();
            seg(&format!(
                "CLP*PCN{c:07}*1*{charge}*{paid}*0*12*{}*11*1",
                rng.digits(12)
            ));
            seg(&format!(
                "NM1*QC*1*{}*{}****MI*M{}",
                rng.pick(LAST),
                rng.pick(FIRST),
                rng.digits(9)
            ));
            seg(&format!("DTM*232*{date}"));
            for (i, line) in charges.iter().enumerate() {
                let line_paid = line * 8 / 10;
                seg(&format!("SVC*HC:{}*{line}*{line_paid}**1", rng.pick(CPT)));
                seg(&format!("DTM*472*{date}"));
                seg(&format!("CAS*CO*45*{}", line - line_paid));
                seg(&format!("REF*6R*{c}-{}", i + 1));
                seg(&format!("AMT*B6*{line_paid}"));
            }
        }
        w.begin_set();
        w.seg(&format!("BPR*I*{paid_total}*C*ACH*CCP*01*999999992*DA*123456*1512345678**01*999988880*DA*98765*20240120"));
        // One payment (trace number) per set.
        w.seg(&format!("TRN*1*{}*1512345678", 12345 + n));
        w.seg("DTM*405*20240119");
        w.seg("N1*PR*KEY INSURANCE COMPANY");
        w.seg("N3*1 INSURANCE WAY");
        w.seg("N4*CHICAGO*IL*60601");
        w.seg("PER*BL*CLAIMS*TE*8005551212");
        w.seg("N1*PE*BEN KILDARE SERVICE*XX*9876543210");
        w.seg("REF*TJ*587654321");
        w.seg("LX*1");
        for s in &body {
            w.seg(s);
        }
        w.end_set();
    }
    w.end()
}

/// A 834 (005010X220A1) with `members` members, each with one or two
/// coverages.
pub fn generate_834(members: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut w = Envelope::new("BE", "834", "005010X220A1", true);
    for set in chunks(members) {
        w.begin_set();
        w.seg("BGN*00*12456*20240115*1200****2");
        w.seg("REF*38*POLICY0001");
        w.seg("DTP*007*D8*20240101");
        w.seg("N1*P5*ACME EMPLOYER*FI*123456789");
        w.seg("N1*IN*KEY INSURANCE COMPANY*FI*999888777");
        for m in set {
            let subscriber = m % 3 == 0;
            let id = rng.digits(9);
            if subscriber {
                w.seg("INS*Y*18*021*28*A***FT");
            } else {
                w.seg("INS*N*19*021*28*A");
            }
            w.seg(&format!("REF*0F*{id}"));
            w.seg("DTP*356*D8*20240101");
            w.seg(&format!(
                "NM1*IL*1*{}*{}****34*{}",
                rng.pick(LAST),
                rng.pick(FIRST),
                rng.digits(9)
            ));
            person_address_and_birth(&mut w, &mut rng);
            for line in ["HLT", "DEN"].iter().take(1 + rng.below(2) as usize) {
                w.seg(&format!("HD*021**{line}*PLAN {line}*FAM"));
                w.seg("DTP*348*D8*20240101");
            }
        }
        w.end_set();
    }
    w.end()
}

/// HCR01 decisions the 278 generator cycles through (with HCR03 where the
/// service is not certified).
const DECISIONS: &[&str] = &["A1", "A1", "A2", "A3*T1", "A4", "A6"];

/// A 278 response (005010X217) file with `events` prior authorizations, one
/// patient event per ST..SE as a utilization-management system sends them,
/// each with one to three services (SV1 + HSD) and its own decisions.
pub fn generate_278(events: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut w = Envelope::new("HI", "278", "005010X217", true);
    for n in 0..events {
        w.begin_set();
        w.seg(&format!("BHT*0007*11*UM{n:08}*20240115*1200"));
        w.seg("HL*1**20*1");
        w.seg("NM1*X3*2*KEY INSURANCE COMPANY*****PI*999996666");
        w.seg("HL*2*1*21*1");
        w.seg(&format!(
            "NM1*1P*2*CLINIC {}*****XX*1{}",
            rng.pick(LAST),
            rng.digits(9)
        ));
        w.seg("HL*3*2*22*1");
        w.seg(&format!(
            "NM1*IL*1*{}*{}****MI*{}",
            rng.pick(LAST),
            rng.pick(FIRST),
            rng.digits(9)
        ));
        w.seg(&format!(
            "DMG*D8*19{}0{}15*F",
            50 + rng.below(49),
            1 + rng.below(9)
        ));
        w.seg("HL*4*3*EV*1");
        w.seg(&format!("TRN*2*RQ{n:08}*1987654321"));
        w.seg("UM*HS*I*AE*11:B**E");
        let decision = rng.pick(DECISIONS);
        w.seg(&format!(
            "HCR*{}*AUTH{n:08}",
            decision.replace("*T1", "**T1")
        ));
        w.seg("DTP*AAH*RD8*20240201-20240430");
        w.seg(&format!("HI*ABK:{}", rng.pick(ICD)));
        w.seg(&format!(
            "NM1*SJ*1*{}*{}****XX*1{}",
            rng.pick(LAST),
            rng.pick(FIRST),
            rng.digits(9)
        ));
        let services = 1 + rng.below(3);
        for k in 0..services {
            let quantity = 1 + rng.below(20);
            w.seg(&format!("HL*{}*4*SS*0", 5 + k));
            w.seg(&format!("TRN*2*RQ{n:08}-{k}*1987654321"));
            let own = rng.pick(DECISIONS).replace("*T1", "**T1");
            w.seg(&format!("HCR*{own}"));
            w.seg(&format!(
                "SV1*HC:{}*{}*UN*{quantity}",
                rng.pick(CPT),
                40 * quantity
            ));
            w.seg(&format!("HSD*VS*{quantity}***34*3"));
        }
        w.end_set();
    }
    w.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_valid() {
        for bytes in [
            generate_837p(50, 1),
            generate_837i(50, 2),
            generate_837d(50, 3),
            generate_835(50, 4),
            generate_834(50, 5),
            generate_278(50, 6),
        ] {
            let parsed = crate::read(&bytes);
            let Ok(parsed) = parsed else {
                panic!("not X12: {parsed:?}");
            };
            assert!(parsed.envelope.is_clean(), "{:?}", parsed.envelope);
            for set in &parsed.sets {
                if let Err(e) = set {
                    panic!("{e}");
                }
            }
        }
    }

    #[test]
    fn big_files_split_into_sets_and_groups() {
        let claims = MAX_PER_SET * SETS_PER_GROUP + 1;
        for bytes in [
            generate_837p(claims, 1),
            generate_835(claims, 2),
            generate_834(claims, 3),
        ] {
            let parsed = crate::read(&bytes);
            let Ok(parsed) = parsed else {
                panic!("not X12: {parsed:?}");
            };
            assert!(parsed.envelope.is_clean(), "{:?}", parsed.envelope);
            assert_eq!(parsed.sets.len(), SETS_PER_GROUP + 1);
            assert!(parsed.sets.iter().all(Result::is_ok));
            let groups = bytes.windows(4).filter(|w| w == b"~\nGS").count();
            assert_eq!(groups, 2);
        }
    }

    #[test]
    fn same_seed_same_bytes() {
        assert_eq!(generate_837p(10, 9), generate_837p(10, 9));
        assert_ne!(generate_837p(10, 9), generate_837p(10, 10));
    }
}
