//! CAS / AMT / SVD / SVC amounts → CARIN adjudication categories (reference
//! §2.4; CARIN defines the categories but no CAS crosswalk, so this table is
//! our documented decision):
//!
//! | X12 | category |
//! |---|---|
//! | SV102/SV203/SV302/SVC02/CLP03/CLM02 | `submitted` |
//! | SVD02 / SVC03 / AMT*D / CLP04 (the plan's) | `paidtoprovider` |
//! | PR-1 / PR-2 / PR-3 | `deductible` / `coinsurance` / `copay` |
//! | sum of PR (or CLP05, AMT*EAF) | `memberliability` |
//! | CO-45, CO-42 | `discount` |
//! | other CO / PI / OA / CR | `noncovered` |
//! | OA-23, another payer's SVD02 / AMT*D | `priorpayerpaid` |
//! | AMT*B6, else submitted − discount − noncovered | `eligible` |
//! | SVD05 / SVC05 | `allowedunits` (a value) |
//! | every CAS triplet | an `adjustmentreason` entry: CARC code, `text` = "CO-45", amount |

use x12::Segment;

use crate::NetworkStatus;
use crate::model::{AdjudicationEntry, Concept, concept, concept_text, money};
use crate::read::{Errors, amount};
use fhir::systems::{
    ADJUDICATION, C4BB_ADJUDICATION, C4BB_ADJUDICATION_DISCRIMINATOR,
    C4BB_PAYER_ADJUDICATION_STATUS, CARC,
};

/// One CAS triplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    pub group: String,
    pub reason: String,
    pub cents: i64,
}

/// Reads every triplet of a CAS segment (CAS02/03 … CAS17/18).
pub fn read_cas(seg: &Segment<'_>, errors: &mut Errors, out: &mut Vec<Adjustment>) {
    let group = seg.element(1).unwrap_or("");
    for t in 0..6 {
        let at = 2 + 3 * t;
        let Some(reason) = seg.element(at) else {
            continue;
        };
        let cents = amount(seg, at + 1, errors).unwrap_or(0);
        out.push(Adjustment {
            group: group.to_owned(),
            reason: reason.to_owned(),
            cents,
        });
    }
}

/// What a line, or the claim as a whole, was charged and paid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Adjudicated {
    pub submitted: Option<i64>,
    pub paid: Option<i64>,
    pub prior_payer_paid: Option<i64>,
    /// AMT*B6 (835 allowed) when sent.
    pub allowed: Option<i64>,
    /// CLP05 / AMT*EAF when sent; else the sum of PR.
    pub member_liability: Option<i64>,
    /// AMT*A8 (837 2320 non-covered).
    pub noncovered: Option<i64>,
    pub adjustments: Vec<Adjustment>,
    pub allowed_units: Option<f64>,
}

/// The category of an adjustment, or `None` when it only shows as a reason.
fn category_of(a: &Adjustment) -> Option<Category> {
    match (a.group.as_str(), a.reason.as_str()) {
        ("PR", "1") => Some(Category::Deductible),
        ("PR", "2") => Some(Category::Coinsurance),
        ("PR", "3") => Some(Category::Copay),
        ("PR", _) => None,
        ("OA", "23") => Some(Category::PriorPayerPaid),
        ("CO", "45" | "42") => Some(Category::Discount),
        _ => Some(Category::Noncovered),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Submitted,
    Discount,
    Noncovered,
    Eligible,
    Deductible,
    Coinsurance,
    Copay,
    MemberLiability,
    PriorPayerPaid,
    PaidToProvider,
}

/// Running sums per category.
#[derive(Default)]
struct Sums([Option<i64>; 10]);

impl Sums {
    fn add(&mut self, c: Category, v: i64) {
        if let Some(slot) = self.0.get_mut(c as usize) {
            *slot = Some(slot.unwrap_or(0).saturating_add(v));
        }
    }

    fn get(&self, c: Category) -> Option<i64> {
        self.0.get(c as usize).copied().flatten()
    }
}

impl Category {
    const ORDER: [Category; 10] = [
        Category::Submitted,
        Category::Discount,
        Category::Noncovered,
        Category::Eligible,
        Category::Deductible,
        Category::Coinsurance,
        Category::Copay,
        Category::MemberLiability,
        Category::PriorPayerPaid,
        Category::PaidToProvider,
    ];

    const fn code(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Category::Submitted => (ADJUDICATION, "submitted", "Submitted Amount"),
            Category::Discount => (C4BB_ADJUDICATION, "discount", "Discount"),
            Category::Noncovered => (C4BB_ADJUDICATION, "noncovered", "Noncovered"),
            Category::Eligible => (ADJUDICATION, "eligible", "Eligible Amount"),
            Category::Deductible => (ADJUDICATION, "deductible", "Deductible"),
            Category::Coinsurance => (C4BB_ADJUDICATION, "coinsurance", "Co-insurance"),
            Category::Copay => (ADJUDICATION, "copay", "CoPay"),
            Category::MemberLiability => (C4BB_ADJUDICATION, "memberliability", "Member liability"),
            Category::PriorPayerPaid => (C4BB_ADJUDICATION, "priorpayerpaid", "Prior payer paid"),
            Category::PaidToProvider => (C4BB_ADJUDICATION, "paidtoprovider", "Paid to provider"),
        }
    }
}

impl Adjudicated {
    /// Amount per category, in the fixed order; absent categories omitted.
    fn amounts(&self) -> Vec<(Category, i64)> {
        let mut sums = Sums::default();
        if let Some(s) = self.submitted {
            sums.add(Category::Submitted, s);
        }
        let mut pr = None::<i64>;
        for a in &self.adjustments {
            if a.group == "PR" {
                pr = Some(pr.unwrap_or(0).saturating_add(a.cents));
            }
            if let Some(c) = category_of(a) {
                sums.add(c, a.cents);
            }
        }
        if let Some(n) = self.noncovered {
            sums.add(Category::Noncovered, n);
        }
        if let Some(p) = self.prior_payer_paid {
            sums.add(Category::PriorPayerPaid, p);
        }
        if let Some(m) = self.member_liability.or(pr) {
            sums.add(Category::MemberLiability, m);
        }
        if let Some(p) = self.paid {
            sums.add(Category::PaidToProvider, p);
        }
        // CARIN: eligible = submitted - noncovered - discount, when adjudicated.
        let adjudicated = self.paid.is_some() || !self.adjustments.is_empty();
        let eligible = self.allowed.or_else(|| {
            let submitted = sums.get(Category::Submitted)?;
            adjudicated.then(|| {
                submitted
                    - sums.get(Category::Discount).unwrap_or(0)
                    - sums.get(Category::Noncovered).unwrap_or(0)
            })
        });
        if let Some(e) = eligible {
            sums.add(Category::Eligible, e);
        }
        Category::ORDER
            .iter()
            .filter_map(|c| sums.get(*c).map(|v| (*c, v)))
            .collect()
    }

    /// Item (or header) adjudication entries: amounts, CARC reasons, units.
    pub fn entries(&self) -> Vec<AdjudicationEntry<'static>> {
        let mut out: Vec<AdjudicationEntry<'static>> = self
            .amounts()
            .into_iter()
            .map(|(c, v)| amount_entry(c, v))
            .collect();
        for a in &self.adjustments {
            out.push(reason_entry(a));
        }
        if let Some(units) = self.allowed_units {
            out.push(AdjudicationEntry {
                category: concept(
                    C4BB_ADJUDICATION_DISCRIMINATOR,
                    "allowedunits",
                    "allowed units",
                ),
                reason: None,
                amount: None,
                value: Some(units),
            });
        }
        out
    }

    /// EOB.total entries (amount categories only).
    pub fn totals(&self) -> Vec<AdjudicationEntry<'static>> {
        self.amounts()
            .into_iter()
            .map(|(c, v)| amount_entry(c, v))
            .collect()
    }

    /// Adds a line's amounts into claim totals.
    pub fn add(&mut self, other: &Adjudicated) {
        let sum = |a: Option<i64>, b: Option<i64>| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
        self.submitted = sum(self.submitted, other.submitted);
        self.paid = sum(self.paid, other.paid);
        self.prior_payer_paid = sum(self.prior_payer_paid, other.prior_payer_paid);
        self.allowed = sum(self.allowed, other.allowed);
        self.member_liability = sum(self.member_liability, other.member_liability);
        self.noncovered = sum(self.noncovered, other.noncovered);
        self.adjustments.extend(other.adjustments.iter().cloned());
    }
}

fn amount_entry(c: Category, cents: i64) -> AdjudicationEntry<'static> {
    let (system, code, display) = c.code();
    AdjudicationEntry {
        category: concept(system, code, display),
        reason: None,
        amount: Some(money(cents)),
        value: None,
    }
}

fn reason_entry(a: &Adjustment) -> AdjudicationEntry<'static> {
    let text = format!("{}-{}", a.group, a.reason);
    AdjudicationEntry {
        category: concept(
            C4BB_ADJUDICATION_DISCRIMINATOR,
            "adjustmentreason",
            "Adjustment Reason",
        ),
        reason: Some(concept_text(CARC, a.reason.clone(), "", text)),
        amount: Some(money(a.cents)),
        value: None,
    }
}

/// A network status entry (`benefitpaymentstatus`, `billingnetworkstatus`).
pub fn network_status(
    discriminator: &'static str,
    display: &'static str,
    status: NetworkStatus,
) -> AdjudicationEntry<'static> {
    let (code, label) = match status {
        NetworkStatus::InNetwork => ("innetwork", "In Network"),
        NetworkStatus::OutOfNetwork => ("outofnetwork", "Out Of Network"),
    };
    AdjudicationEntry {
        category: concept(C4BB_ADJUDICATION_DISCRIMINATOR, discriminator, display),
        reason: Some(concept(C4BB_PAYER_ADJUDICATION_STATUS, code, label)),
        amount: None,
        value: None,
    }
}

/// `payment.type`: paid, partiallypaid or denied.
pub fn payment_type(denied: bool, lines_paid: usize, lines: usize, paid: i64) -> Concept<'static> {
    let (code, display) = if denied || (paid <= 0 && lines_paid == 0) {
        ("denied", "Denied")
    } else if lines_paid < lines {
        ("partiallypaid", "Partially Paid")
    } else {
        ("paid", "Paid")
    };
    concept(C4BB_PAYER_ADJUDICATION_STATUS, code, display)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adj(group: &str, reason: &str, cents: i64) -> Adjustment {
        Adjustment {
            group: group.into(),
            reason: reason.into(),
            cents,
        }
    }

    #[test]
    fn cas_groups_and_reasons_become_carin_categories() {
        let a = Adjudicated {
            submitted: Some(10_000),
            paid: Some(6_400),
            adjustments: vec![adj("CO", "45", 2_000), adj("PR", "2", 1_600)],
            ..Adjudicated::default()
        };
        let codes: Vec<(String, i64)> = a
            .amounts()
            .into_iter()
            .map(|(c, v)| (c.code().1.to_owned(), v))
            .collect();
        let expect = [
            ("submitted", 10_000),
            ("discount", 2_000),
            ("eligible", 8_000),
            ("coinsurance", 1_600),
            ("memberliability", 1_600),
            ("paidtoprovider", 6_400),
        ];
        let expect: Vec<(String, i64)> =
            expect.iter().map(|(c, v)| ((*c).to_owned(), *v)).collect();
        assert_eq!(codes, expect);
        assert_eq!(a.entries().len(), 6 + 2);
    }
}
