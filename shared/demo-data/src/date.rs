//! Calendar dates without a date crate: the generator only needs to add days, read the
//! year and print `YYYY-MM-DD`, and keeping the dependency list to `fhir` and
//! `serde_json` keeps this crate cheap to build into every test binary.

use std::fmt;

/// A proleptic Gregorian date, stored as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Date {
    days: i64,
}

impl Date {
    /// Days-from-civil (H. Hinnant's algorithm).
    pub(crate) const fn ymd(year: i64, month: i64, day: i64) -> Date {
        let y = if month <= 2 { year - 1 } else { year };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Date {
            days: era * 146_097 + doe - 719_468,
        }
    }

    pub(crate) const fn plus(self, days: i64) -> Date {
        Date {
            days: self.days + days,
        }
    }

    pub(crate) const fn days_until(self, later: Date) -> i64 {
        later.days - self.days
    }

    pub(crate) fn year(self) -> i64 {
        self.civil().0
    }

    /// Civil-from-days (H. Hinnant's algorithm): (year, month, day).
    fn civil(self) -> (i64, i64, i64) {
        let z = self.days + 719_468;
        let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }

    /// A FHIR `dateTime` on this date, `seconds` after midnight UTC.
    pub(crate) fn at(self, seconds: i64) -> String {
        let s = seconds.rem_euclid(86_400);
        format!("{self}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
    }

    /// A FHIR `instant` in the fixed-width UTC form the store writes (`…T09:30:00.000Z`).
    pub(crate) fn instant(self, seconds: i64) -> String {
        let s = seconds.rem_euclid(86_400);
        format!(
            "{self}T{:02}:{:02}:{:02}.000Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.civil();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_leap_days_and_year_ends() {
        assert_eq!(Date::ymd(1970, 1, 1).to_string(), "1970-01-01");
        assert_eq!(Date::ymd(2020, 2, 28).plus(1).to_string(), "2020-02-29");
        assert_eq!(Date::ymd(2020, 2, 29).plus(1).to_string(), "2020-03-01");
        assert_eq!(Date::ymd(2025, 12, 31).plus(1).to_string(), "2026-01-01");
        assert_eq!(Date::ymd(2019, 1, 1).days_until(Date::ymd(2020, 1, 1)), 365);
        assert_eq!(Date::ymd(2024, 7, 4).year(), 2024);
    }

    #[test]
    fn formats_date_times_and_instants() {
        let d = Date::ymd(2021, 3, 4);
        assert_eq!(d.at(3600 + 120 + 3), "2021-03-04T01:02:03Z");
        assert_eq!(d.instant(0), "2021-03-04T00:00:00.000Z");
    }
}
