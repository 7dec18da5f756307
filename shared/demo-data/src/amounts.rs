//! Adjudicated amounts for one claim line, in cents.
//!
//! One pure function prices a line from its inputs, so the CARIN arithmetic holds by
//! construction and a replacement claim can be re-priced with the same rules:
//! eligible = submitted − noncovered − discount;
//! member liability = deductible + coinsurance + copay + noncovered;
//! benefit (what the plan pays) = eligible − deductible − coinsurance − copay.

/// Whole dollars in cents, so tables read in dollars while sums stay exact.
pub(crate) const fn dollars(amount: i64) -> i64 {
    amount * 100
}

/// Who receives the plan's payment, which decides paidtoprovider vs paidtopatient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaidTo {
    Provider,
    Member,
}

/// The inputs that decide a line's adjudication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pricing {
    pub submitted: i64,
    pub covered: bool,
    /// Contractual reduction, percent of the submitted charge.
    pub discount_pct: i64,
    /// At most this much copay and deductible apply (clamped to what is eligible).
    pub copay: i64,
    pub deductible: i64,
    pub coinsurance_pct: i64,
    /// The member paid their share at the point of sale (pharmacy counters).
    pub paid_at_sale: bool,
    pub paid_to: PaidTo,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Amounts {
    pub submitted: i64,
    pub noncovered: i64,
    pub discount: i64,
    pub eligible: i64,
    pub deductible: i64,
    pub coinsurance: i64,
    pub copay: i64,
    pub benefit: i64,
    pub member_liability: i64,
    pub paid_to_provider: i64,
    pub paid_to_patient: i64,
    pub paid_by_patient: i64,
}

impl Pricing {
    pub(crate) fn price(&self) -> Amounts {
        let submitted = self.submitted;
        if !self.covered {
            return Amounts {
                submitted,
                noncovered: submitted,
                member_liability: submitted,
                ..Amounts::default()
            };
        }
        let discount = submitted * self.discount_pct / 100;
        let eligible = submitted - discount;
        let copay = self.copay.clamp(0, eligible);
        let deductible = self.deductible.clamp(0, eligible - copay);
        let coinsurance = (eligible - copay - deductible) * self.coinsurance_pct / 100;
        let benefit = eligible - copay - deductible - coinsurance;
        let member_liability = deductible + coinsurance + copay;
        let (paid_to_provider, paid_to_patient) = match self.paid_to {
            PaidTo::Provider => (benefit, 0),
            PaidTo::Member => (0, benefit),
        };
        Amounts {
            submitted,
            noncovered: 0,
            discount,
            eligible,
            deductible,
            coinsurance,
            copay,
            benefit,
            member_liability,
            paid_to_provider,
            paid_to_patient,
            paid_by_patient: if self.paid_at_sale {
                member_liability
            } else {
                0
            },
        }
    }
}

impl Amounts {
    /// Field-wise sum, for the EOB totals.
    pub(crate) fn plus(self, o: Amounts) -> Amounts {
        Amounts {
            submitted: self.submitted + o.submitted,
            noncovered: self.noncovered + o.noncovered,
            discount: self.discount + o.discount,
            eligible: self.eligible + o.eligible,
            deductible: self.deductible + o.deductible,
            coinsurance: self.coinsurance + o.coinsurance,
            copay: self.copay + o.copay,
            benefit: self.benefit + o.benefit,
            member_liability: self.member_liability + o.member_liability,
            paid_to_provider: self.paid_to_provider + o.paid_to_provider,
            paid_to_patient: self.paid_to_patient + o.paid_to_patient,
            paid_by_patient: self.paid_by_patient + o.paid_by_patient,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing() -> Pricing {
        Pricing {
            submitted: dollars(100),
            covered: true,
            discount_pct: 30,
            copay: dollars(25),
            deductible: dollars(10),
            coinsurance_pct: 20,
            paid_at_sale: false,
            paid_to: PaidTo::Provider,
        }
    }

    #[test]
    fn carin_arithmetic_holds_for_a_covered_line() {
        let a = pricing().price();
        assert_eq!(a.eligible, a.submitted - a.noncovered - a.discount);
        assert_eq!(
            a.member_liability,
            a.deductible + a.coinsurance + a.copay + a.noncovered
        );
        assert_eq!(a.benefit + a.member_liability + a.discount, a.submitted);
        assert_eq!(
            (a.eligible, a.copay, a.deductible, a.coinsurance, a.benefit),
            (
                dollars(70),
                dollars(25),
                dollars(10),
                dollars(7),
                dollars(28)
            )
        );
    }

    #[test]
    fn a_noncovered_line_is_all_member_liability_and_cost_sharing_is_clamped() {
        let denied = Pricing {
            covered: false,
            ..pricing()
        }
        .price();
        assert_eq!(
            (denied.noncovered, denied.member_liability, denied.benefit),
            (dollars(100), dollars(100), 0)
        );
        let small = Pricing {
            submitted: dollars(20),
            ..pricing()
        }
        .price();
        assert_eq!(
            (small.copay, small.deductible, small.benefit),
            (dollars(14), 0, 0)
        );
    }
}
