//! Typed values a mapper needs: D8 dates, RD8 ranges and decimals.
//!
//! Amounts are kept exact with a tiny fixed-point type instead of `f64`
//! (money must not round) or a big-decimal crate (X12 R elements have at most
//! 18 significant digits, which fit an `i64`).

use std::fmt;
use std::str::FromStr;

/// A calendar date from a D8 (`CCYYMMDD`) element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Four-digit year.
    pub year: u16,
    /// 1–12.
    pub month: u8,
    /// 1–31, valid for the month.
    pub day: u8,
}

impl Date {
    /// Parses `CCYYMMDD`, rejecting impossible dates such as `20002316`.
    pub fn parse_d8(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let year = s.get(0..4)?.parse().ok()?;
        let month = s.get(4..6)?.parse().ok()?;
        let day = s.get(6..8)?.parse().ok()?;
        let date = Self { year, month, day };
        (day >= 1 && day <= days_in_month(year, month)?).then_some(date)
    }
}

fn days_in_month(year: u16, month: u8) -> Option<u8> {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    Some(match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    })
}

impl fmt::Display for Date {
    /// ISO 8601 (`2024-01-31`), the form FHIR wants.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A date (D8) or an inclusive date range (RD8 `CCYYMMDD-CCYYMMDD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// D8.
    Date(Date),
    /// RD8, start then end.
    Range(Date, Date),
}

impl Period {
    /// Parses a value by its date-time format qualifier (DTP02).
    pub fn parse(format: &str, value: &str) -> Result<Self, String> {
        match format {
            "D8" => Date::parse_d8(value)
                .map(Self::Date)
                .ok_or_else(|| format!("{value:?} is not a valid CCYYMMDD date")),
            "RD8" => {
                let (a, b) = value
                    .split_once('-')
                    .ok_or_else(|| format!("{value:?} is not a CCYYMMDD-CCYYMMDD range"))?;
                match (Date::parse_d8(a), Date::parse_d8(b)) {
                    (Some(s), Some(e)) if s <= e => Ok(Self::Range(s, e)),
                    (Some(_), Some(_)) => Err(format!("range {value:?} ends before it starts")),
                    _ => Err(format!("{value:?} is not a valid CCYYMMDD-CCYYMMDD range")),
                }
            }
            other => Err(format!("date format qualifier {other:?} is not D8 or RD8")),
        }
    }

    /// First day.
    pub fn start(&self) -> Date {
        match self {
            Self::Date(d) | Self::Range(d, _) => *d,
        }
    }

    /// Last day.
    pub fn end(&self) -> Date {
        match self {
            Self::Date(d) | Self::Range(_, d) => *d,
        }
    }
}

/// An exact decimal: `units / 10^scale`. `100.00` keeps scale 2 so it prints
/// back as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// The digits as an integer, sign included.
    pub units: i64,
    /// Digits after the decimal point.
    pub scale: u8,
}

/// The text is not an X12 decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an X12 decimal")]
pub struct DecimalError;

impl FromStr for Decimal {
    type Err = DecimalError;

    /// Accepts `100`, `100.00`, `.01`, `-5.5`, `1.` (X12 R type: explicit
    /// point, optional leading minus, at most 18 digits).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let digits = int.len() + frac.len();
        let all_digits = int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit());
        if digits == 0 || digits > 18 || !all_digits {
            return Err(DecimalError);
        }
        let mut units: i64 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(i64::from(b - b'0')))
                .ok_or(DecimalError)?;
        }
        let scale = u8::try_from(frac.len()).map_err(|_| DecimalError)?;
        Ok(Self {
            units: if negative { -units } else { units },
            scale,
        })
    }
}

impl Decimal {
    /// Approximate value, for display or statistics only (not money).
    pub fn to_f64(self) -> f64 {
        self.units as f64 / 10f64.powi(i32::from(self.scale))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{abs}");
        }
        let pow = 10u64.pow(u32::from(self.scale));
        write!(
            f,
            "{sign}{}.{:0width$}",
            abs / pow,
            abs % pow,
            width = usize::from(self.scale)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            Date::parse_d8("20240229").map(|d| d.to_string()),
            Some("2024-02-29".into())
        );
        assert_eq!(Date::parse_d8("20230229"), None);
        assert_eq!(Date::parse_d8("20002316"), None);
        let p = Period::parse("RD8", "20171218-20171220");
        assert!(matches!(p, Ok(Period::Range(a, b)) if a.day == 18 && b.day == 20));
        assert!(Period::parse("RD8", "20171220-20171218").is_err());
    }

    #[test]
    fn decimals_round_trip() {
        for s in ["100", "100.00", "0.01", "-5.5", "1.0"] {
            assert_eq!(
                s.parse::<Decimal>().map(|d| d.to_string()),
                Ok(s.to_string())
            );
        }
        assert_eq!(".01".parse::<Decimal>().map(|d| d.units), Ok(1));
        assert!("1e5".parse::<Decimal>().is_err());
        assert!("".parse::<Decimal>().is_err());
        assert!("-".parse::<Decimal>().is_err());
    }
}
