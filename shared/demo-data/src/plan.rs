//! Plans a member's claim history: every random choice about a claim is made here and
//! recorded in a [`PlannedClaim`]; rendering it to FHIR JSON is then a pure function.
//! Keeping the two apart is what lets a replacement claim be a re-priced copy of the
//! claim it replaces.

use std::collections::BTreeMap;

use crate::amounts::{Amounts, PaidTo, Pricing, dollars};
use crate::catalog::{Line, Scenario};
use crate::date::Date;
use crate::directory::{self, Organization, Practitioner};
use crate::elements::Code;
use crate::kind::{ClaimKind, CostShare, DemoClaimKind, Role};
use crate::member::Member;
use crate::rng::Rng;
use fhir::systems::{
    C4BB_RELATED_CLAIM, NCPDP_DAW, NCPDP_RX_ORIGIN, NUBC_ADMIT_TYPE, NUBC_DISCHARGE,
    NUBC_POINT_OF_ORIGIN, NUBC_TYPE_OF_BILL, RELATED_CLAIM_HL7,
};

/// Claims are dated between these days, so date searches find data in every year.
const FIRST_SERVICE: Date = Date::ymd(2019, 1, 1);
const LAST_SERVICE: Date = Date::ymd(2026, 8, 31);
/// A plain PPO in-network annual deductible.
const ANNUAL_DEDUCTIBLE: i64 = dollars(750);

/// Who the plan pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payee {
    /// The billing provider (in-network claims, all pharmacy claims).
    Provider,
    /// The member, who paid an out-of-network provider and is reimbursed.
    Beneficiary,
    /// The subscriber of a dependent's policy (a RelatedPerson), reimbursed likewise.
    Subscriber,
}

#[derive(Debug, Clone)]
pub(crate) struct PlannedLine {
    pub line: &'static Line,
    pub pricing: Pricing,
    pub amounts: Amounts,
}

/// Coded facts of the claim form; each EOB type publishes the ones its profile has.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub type_of_bill: Code,
    pub admission_type: Code,
    pub point_of_origin: Code,
    pub discharge_status: Code,
    pub daw: Code,
    pub rx_origin: Code,
    pub refill_number: i64,
    pub refills_authorized: i64,
    pub patient_account_number: String,
}

/// A `related` entry: the claim number of the EOB before or after this one.
#[derive(Debug, Clone)]
pub(crate) struct Related {
    pub relationship: Code,
    pub control_number: String,
}

#[derive(Debug, Clone)]
pub(crate) struct PlannedClaim {
    pub id: String,
    pub control_number: String,
    pub kind: ClaimKind,
    pub scenario: &'static Scenario,
    pub start: Date,
    pub end: Date,
    pub received: Date,
    pub created: Date,
    pub created_seconds: i64,
    pub last_updated: String,
    pub provider: &'static Organization,
    pub team: Vec<(Role, &'static Practitioner)>,
    pub in_network: bool,
    pub payee: Payee,
    pub lines: Vec<PlannedLine>,
    pub facts: Facts,
    pub related: Vec<Related>,
}

/// What the generator decides before pricing: the type, the day, and whether this is
/// the claim we force out of network so that member payees appear in every history.
struct Draft {
    kind: ClaimKind,
    start: Date,
    force_out_of_network: bool,
}

/// Remaining deductible per calendar year, consumed in service-date order.
#[derive(Default)]
struct DeductibleLedger {
    remaining: BTreeMap<i64, i64>,
}

impl DeductibleLedger {
    fn remaining(&self, year: i64) -> i64 {
        self.remaining
            .get(&year)
            .copied()
            .unwrap_or(ANNUAL_DEDUCTIBLE)
    }

    fn consume(&mut self, year: i64, amount: i64) {
        let left = self.remaining(year) - amount;
        self.remaining.insert(year, left.max(0));
    }
}

/// A claim type by weight; the first five claims of a member are one of each type so
/// that every member's history exercises every CARIN profile.
fn draw_kind(n: usize, rng: &mut Rng) -> ClaimKind {
    if let Some(kind) = ClaimKind::ALL.get(n) {
        return *kind;
    }
    let total: u64 = ClaimKind::ALL.iter().map(|k| k.weight()).sum();
    let mut ticket = rng.below(total);
    for kind in ClaimKind::ALL {
        if ticket < kind.weight() {
            return kind;
        }
        ticket -= kind.weight();
    }
    ClaimKind::Professional
}

fn drafts(originals: usize, rng: &mut Rng) -> Vec<Draft> {
    let span = FIRST_SERVICE.days_until(LAST_SERVICE);
    let mut drafts: Vec<Draft> = (0..originals)
        .map(|n| Draft {
            kind: draw_kind(n, rng),
            start: FIRST_SERVICE.plus(rng.range(0, span)),
            force_out_of_network: n == 2,
        })
        .collect();
    drafts.sort_by_key(|d| d.start);
    drafts
}

fn code(
    system: &'static str,
    options: &'static [(&'static str, &'static str)],
    rng: &mut Rng,
) -> Code {
    let (code, display) = *rng.pick(options);
    Code::new(system, code, display)
}

fn draw_facts(kind: ClaimKind, brand: bool, rng: &mut Rng) -> Facts {
    let type_of_bill = if kind == ClaimKind::Inpatient {
        Code::new(
            NUBC_TYPE_OF_BILL,
            "0111",
            "Hospital Inpatient (Part A) - Admit through discharge claim",
        )
    } else {
        Code::new(
            NUBC_TYPE_OF_BILL,
            "0131",
            "Hospital Outpatient - Admit through discharge claim",
        )
    };
    let daw = if brand {
        Code::new(NCPDP_DAW, "1", "Substitution not allowed by prescriber")
    } else {
        Code::new(NCPDP_DAW, "0", "No product selection indicated")
    };
    let refill_number = rng.range(0, 5);
    Facts {
        type_of_bill,
        admission_type: code(
            NUBC_ADMIT_TYPE,
            &[("1", "Emergency"), ("2", "Urgent"), ("3", "Elective")],
            rng,
        ),
        point_of_origin: code(
            NUBC_POINT_OF_ORIGIN,
            &[
                ("1", "Non-Health Care Facility Point of Origin"),
                ("2", "Clinic or Physician's Office"),
            ],
            rng,
        ),
        discharge_status: Code::new(
            NUBC_DISCHARGE,
            "01",
            "Discharged to home or self care (routine discharge)",
        ),
        daw,
        rx_origin: code(
            NCPDP_RX_ORIGIN,
            &[("1", "Written"), ("2", "Telephone"), ("3", "Electronic")],
            rng,
        ),
        refill_number,
        refills_authorized: refill_number + rng.range(0, 5),
        patient_account_number: format!("PA{}", rng.digits(9)),
    }
}

fn draw_team(kind: ClaimKind, rng: &mut Rng) -> Vec<(Role, &'static Practitioner)> {
    let mut team = Vec::new();
    for role in kind.care_team() {
        if role.always || rng.chance(50) {
            let pool: Vec<&Practitioner> = directory::practitioners(role.dentist).collect();
            team.push((*role, *rng.pick(&pool)));
        }
    }
    team
}

/// Prices one line of a new claim, drawing the charge and the contract discount.
fn plan_line(
    line: &'static Line,
    first: bool,
    share: CostShare,
    ctx: (bool, PaidTo, bool),
    deductible_left: i64,
    rng: &mut Rng,
) -> PlannedLine {
    let (in_network, paid_to, pharmacy) = ctx;
    let free_preventive = line.preventive && in_network;
    let discount_pct = match (in_network, pharmacy) {
        (true, true) => rng.range(10, 25),
        (true, false) => rng.range(25, 50),
        (false, _) => rng.range(0, 10),
    };
    let pricing = Pricing {
        submitted: line.charge * rng.range(90, 125) / 100,
        covered: free_preventive || !rng.chance(5),
        discount_pct,
        copay: if first && !free_preventive {
            share.copay
        } else {
            0
        },
        deductible: if share.deductible_applies && !free_preventive {
            deductible_left
        } else {
            0
        },
        coinsurance_pct: match (free_preventive, in_network) {
            (true, _) => 0,
            (false, true) => share.coinsurance_in,
            (false, false) => share.coinsurance_out,
        },
        paid_at_sale: pharmacy,
        paid_to,
    };
    PlannedLine {
        line,
        pricing,
        amounts: pricing.price(),
    }
}

fn payee_for(member: &Member, kind: ClaimKind, in_network: bool) -> Payee {
    match (
        in_network || kind == ClaimKind::Pharmacy,
        member.subscriber.is_some(),
    ) {
        (true, _) => Payee::Provider,
        (false, true) => Payee::Subscriber,
        (false, false) => Payee::Beneficiary,
    }
}

/// Claim numbers: year of processing, member, sequence and a check-like tail; unique
/// per data set by construction.
fn control_number(created: Date, member: &Member, seq: usize, rng: &mut Rng) -> String {
    format!(
        "{}{:05}{:03}{}",
        created.year(),
        member.index + 1,
        seq,
        rng.digits(3)
    )
}

fn plan_one(
    member: &Member,
    seq: usize,
    draft: &Draft,
    ledger: &mut DeductibleLedger,
    rng: &mut Rng,
) -> PlannedClaim {
    let kind = draft.kind;
    let scenario = rng.pick(kind.scenarios());
    let brand = scenario.rx.is_some_and(|rx| rx.brand);
    let end = draft.start.plus(scenario.stay_nights);
    let received = end.plus(rng.range(1, 21));
    let created = received.plus(rng.range(2, 25));
    let created_seconds = rng.range(6 * 3600, 20 * 3600);
    let in_network = !draft.force_out_of_network && !rng.chance(12);
    let payee = payee_for(member, kind, in_network);
    let paid_to = if payee == Payee::Provider {
        PaidTo::Provider
    } else {
        PaidTo::Member
    };
    let providers: Vec<&Organization> = directory::providers(kind.billing_role()).collect();
    let provider = *rng.pick(&providers);
    let team = draw_team(kind, rng);
    let share = kind.cost_share(brand);
    let year = draft.start.year();
    let mut lines = Vec::with_capacity(scenario.lines.len());
    for (i, line) in scenario.lines.iter().enumerate() {
        let ctx = (in_network, paid_to, kind == ClaimKind::Pharmacy);
        let planned = plan_line(line, i == 0, share, ctx, ledger.remaining(year), rng);
        ledger.consume(year, planned.amounts.deductible);
        lines.push(planned);
    }
    let control_number = control_number(created, member, seq, rng);
    let facts = draw_facts(kind, brand, rng);
    PlannedClaim {
        id: claim_id(kind, member, seq, provider, &facts.patient_account_number),
        control_number,
        kind,
        scenario,
        start: draft.start,
        end,
        received,
        created,
        created_seconds,
        last_updated: created.instant(created_seconds),
        provider,
        team,
        in_network,
        payee,
        lines,
        facts,
        related: Vec::new(),
    }
}

/// The EOB id. Claims the demo sends as X12 get the id the X12 path gives them (the
/// claim key: plan payer id, billing NPI, patient control number); pharmacy claims,
/// which come from NCPDP rather than X12, keep a readable id of their own.
fn claim_id(
    kind: ClaimKind,
    member: &Member,
    seq: usize,
    provider: &Organization,
    patient_account_number: &str,
) -> String {
    if kind == ClaimKind::Pharmacy {
        format!("eob-{}-{seq:03}", member.tag)
    } else {
        edi_fhir::ids::eob(
            crate::PAYER_ID,
            &format!("npi:{}", provider.npi()),
            patient_account_number,
        )
    }
}

/// The adjusted claim that replaces `original`: a line denied before is now allowed on
/// appeal, and the others are re-priced at a corrected contract rate. Cost sharing
/// already taken stays as it was, so the yearly deductible is not consumed twice.
fn replacement(
    original: &PlannedClaim,
    member: &Member,
    seq: usize,
    rng: &mut Rng,
) -> PlannedClaim {
    let mut r = original.clone();
    // The provider resubmits under a new patient control number, so the corrected
    // claim is a claim of its own (and, in X12, the payer reverses the original).
    r.facts.patient_account_number = format!("PA{}", rng.digits(9));
    r.id = claim_id(
        r.kind,
        member,
        seq,
        r.provider,
        &r.facts.patient_account_number,
    );
    r.received = original.created.plus(rng.range(10, 60));
    r.created = r.received.plus(rng.range(2, 10));
    r.created_seconds = rng.range(6 * 3600, 20 * 3600);
    r.last_updated = r.created.instant(r.created_seconds);
    r.control_number = control_number(r.created, member, seq, rng);
    for l in &mut r.lines {
        if l.pricing.covered {
            l.pricing.discount_pct = (l.pricing.discount_pct - 3).max(0);
            l.pricing.deductible = l.amounts.deductible;
            l.pricing.copay = l.amounts.copay;
        } else {
            l.pricing.covered = true;
            l.pricing.deductible = 0;
        }
        l.amounts = l.pricing.price();
    }
    r.related = vec![Related {
        relationship: Code::new(RELATED_CLAIM_HL7, "prior", "Prior Claim"),
        control_number: original.control_number.clone(),
    }];
    r
}

/// A member's whole history, `count` EOBs: originals in service-date order, then one
/// replacement for about every twelfth claim, each linked both ways to its original.
pub(crate) fn plan_claims(member: &Member, count: usize, rng: &mut Rng) -> Vec<PlannedClaim> {
    let replacements = count / 12;
    let originals = count - replacements;
    let mut ledger = DeductibleLedger::default();
    let mut claims: Vec<PlannedClaim> = drafts(originals, rng)
        .iter()
        .enumerate()
        .map(|(i, d)| plan_one(member, i + 1, d, &mut ledger, rng))
        .collect();
    for k in 0..replacements {
        let target = (2 * k + 1) * originals / (2 * replacements);
        let seq = claims.len() + 1;
        let Some(original) = claims.get_mut(target) else {
            continue;
        };
        let newer = replacement(original, member, seq, rng);
        original.related.push(Related {
            relationship: Code::new(C4BB_RELATED_CLAIM, "replacedby", "Replaced by claim number"),
            control_number: newer.control_number.clone(),
        });
        original.last_updated.clone_from(&newer.last_updated);
        claims.push(newer);
    }
    claims
}
