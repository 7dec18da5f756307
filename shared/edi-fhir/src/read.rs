//! Typed reads of X12 elements for the mappers: dates as FHIR strings,
//! amounts as cents, and element errors that become 999 IK4s.

use x12::{Date, Decimal, ElementPos, ErrorKind, Period, Segment, X12Error};

/// Collects mapping errors for one set; the set is rejected when any exist.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<X12Error>);

impl Errors {
    /// Keeps the value or records the error.
    pub fn take<T>(&mut self, r: Result<Option<T>, X12Error>) -> Option<T> {
        match r {
            Ok(v) => v,
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    pub fn push(&mut self, e: X12Error) {
        self.0.push(e);
    }
}

/// Decimal → whole cents (half away from zero beyond two places; saturating).
pub fn cents(d: Decimal) -> i64 {
    let scale = u32::from(d.scale);
    if scale <= 2 {
        d.units.saturating_mul(10_i64.pow(2 - scale))
    } else {
        let div = 10_i64.checked_pow(scale - 2).unwrap_or(i64::MAX);
        let q = d.units / div;
        let r = d.units % div;
        if r.saturating_mul(2).abs() >= div {
            q + d.units.signum()
        } else {
            q
        }
    }
}

/// Element `n` as cents.
pub fn amount(seg: &Segment<'_>, n: usize, errors: &mut Errors) -> Option<i64> {
    errors.take(seg.decimal(n)).map(cents)
}

/// Element `n` as a plain number (quantities, units).
pub fn number(seg: &Segment<'_>, n: usize, errors: &mut Errors) -> Option<f64> {
    errors.take(seg.decimal(n)).map(Decimal::to_f64)
}

/// A DTP/DTM-style date or range at `format_at`/`format_at + 1`.
pub fn period(seg: &Segment<'_>, format_at: usize, errors: &mut Errors) -> Option<Period> {
    errors.take(seg.period(format_at))
}

/// Element `n` as a D8 date, ISO formatted.
pub fn date(seg: &Segment<'_>, n: usize, errors: &mut Errors) -> Option<String> {
    errors.take(seg.date(n)).map(iso)
}

/// `2024-01-31`: what `Date`'s `Display` writes, without the formatting
/// machinery (dates are in every item of every claim).
pub fn iso(d: Date) -> String {
    let mut s = String::with_capacity(10);
    let digit = |v: u32| char::from(b'0' + (v % 10) as u8);
    let year = u32::from(d.year);
    if year > 9999 {
        return d.to_string();
    }
    for div in [1000, 100, 10, 1] {
        s.push(digit(year / div));
    }
    s.push('-');
    s.push(digit(u32::from(d.month) / 10));
    s.push(digit(u32::from(d.month)));
    s.push('-');
    s.push(digit(u32::from(d.day) / 10));
    s.push(digit(u32::from(d.day)));
    s
}

/// A required element: its value, or an IK4 "required data element missing".
pub fn required<'a>(
    seg: &Segment<'a>,
    n: usize,
    what: &str,
    errors: &mut Errors,
) -> Option<&'a str> {
    let v = seg.element(n);
    if v.is_none() {
        errors.push(seg.error_at(
            ErrorKind::MissingElement,
            ElementPos::at(n),
            format!("{what} is required"),
        ));
    }
    v
}

/// `(start, end)` ISO strings of a period.
pub fn bounds(p: Period) -> (String, String) {
    (iso(p.start()), iso(p.end()))
}

/// ICD-9/10-CM diagnosis codes arrive without the dot (`S060X1A`); CARIN
/// examples and terminology servers use dotted codes (`S06.0X1A`): insert it
/// after the third character when there are more than three.
pub fn dotted_icd(code: &str) -> String {
    match (code.get(..3), code.get(3..)) {
        (Some(head), Some(tail)) if !tail.is_empty() && !code.contains('.') => {
            let mut s = String::with_capacity(code.len() + 1);
            s.push_str(head);
            s.push('.');
            s.push_str(tail);
            s
        }
        _ => code.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icd_10_codes_gain_their_dot() {
        assert_eq!(dotted_icd("S060X1A"), "S06.0X1A");
        assert_eq!(dotted_icd("J020"), "J02.0");
        assert_eq!(dotted_icd("R69"), "R69");
        assert_eq!(dotted_icd("I21.4"), "I21.4");
    }

    #[test]
    fn iso_dates_match_display() {
        for (year, month, day) in [(2024, 1, 31), (999, 12, 1), (1, 2, 9), (9999, 10, 10)] {
            let d = Date { year, month, day };
            assert_eq!(iso(d), d.to_string());
        }
    }

    #[test]
    fn cents_are_exact() {
        let d = |s: &str| {
            s.parse::<Decimal>()
                .unwrap_or(Decimal { units: 0, scale: 0 })
        };
        assert_eq!(cents(d("100")), 10_000);
        assert_eq!(cents(d("89.93")), 8_993);
        assert_eq!(cents(d(".5")), 50);
        assert_eq!(cents(d("-60")), -6_000);
        assert_eq!(cents(d("1.005")), 101);
    }
}
