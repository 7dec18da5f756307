//! The day an access counts on: the calendar day in US Eastern time.
//!
//! CMS asks for calendar-year counts and a plan is US-based, so a day is a US civil
//! day, not a UTC one. We take Eastern time (America/New_York, with the US daylight
//! saving rules in force since 2007): an app that syncs at 8 pm Pacific on 31 December
//! counts in that year (it is 11 pm in New York, but already 1 January in UTC).
//! One fixed zone keeps the rule simple to state and to check; the zone is not a
//! setting, so two runs of the report can never disagree.

use std::fmt;

use time::{Date, Duration, Month, OffsetDateTime};

/// One calendar day in US Eastern time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(Date);

impl Day {
    /// The Eastern-time day of an instant given in unix milliseconds; `None` only for
    /// instants outside the years 1–9999.
    pub fn of_unix_millis(unix_ms: i64) -> Option<Day> {
        let utc = OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000)).ok()?;
        let offset_hours = if is_eastern_daylight_time(utc) { 4 } else { 5 };
        let local = utc.checked_sub(Duration::hours(offset_hours))?;
        Some(Day(local.date()))
    }

    /// `YYYY-MM-DD HH:MM ET`: an instant as the member reads it, in the zone days use.
    pub fn eastern_time_label(unix_ms: i64) -> Option<String> {
        let utc = OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000)).ok()?;
        let offset_hours = if is_eastern_daylight_time(utc) { 4 } else { 5 };
        let local = utc.checked_sub(Duration::hours(offset_hours))?;
        Some(format!(
            "{} {:02}:{:02} ET",
            Day(local.date()),
            local.hour(),
            local.minute()
        ))
    }

    pub fn from_ymd(year: i32, month: u8, day: u8) -> Option<Day> {
        let month = Month::try_from(month).ok()?;
        Date::from_calendar_date(year, month, day).ok().map(Day)
    }

    /// Parses `YYYY-MM-DD`, the form [`Day`] displays as.
    pub fn parse(text: &str) -> Option<Day> {
        let mut parts = text.splitn(3, '-');
        let year = parts.next()?;
        let month = parts.next()?;
        let day = parts.next()?;
        if year.len() != 4 || month.len() != 2 || day.len() != 2 {
            return None;
        }
        Day::from_ymd(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)
    }

    pub fn year(self) -> i32 {
        self.0.year()
    }

    /// The day `days` days earlier (saturating at the calendar's start).
    pub fn minus_days(self, days: i64) -> Day {
        Day(self
            .0
            .checked_sub(Duration::days(days))
            .unwrap_or(Date::MIN))
    }

    /// The first instant (unix seconds) of 1 January of `year`, Eastern time.
    pub fn start_of_year_unix(year: i32) -> Option<i64> {
        let midnight = Date::from_calendar_date(year, Month::January, 1).ok()?;
        // 1 January is always standard time (UTC−5).
        Some(midnight.midnight().assume_utc().unix_timestamp() + 5 * 3600)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }
}

/// US daylight saving time (since 2007): from the second Sunday of March at 2:00 EST
/// (07:00 UTC) to the first Sunday of November at 2:00 EDT (06:00 UTC). Both ends
/// lie far from the new year, so the UTC year is the local year here.
fn is_eastern_daylight_time(utc: OffsetDateTime) -> bool {
    let year = utc.year();
    let (Some(start), Some(end)) = (
        nth_sunday(year, Month::March, 2),
        nth_sunday(year, Month::November, 1),
    ) else {
        return false;
    };
    let start = start.midnight().assume_utc() + Duration::hours(7);
    let end = end.midnight().assume_utc() + Duration::hours(6);
    utc >= start && utc < end
}

fn nth_sunday(year: i32, month: Month, n: u8) -> Option<Date> {
    let first = Date::from_calendar_date(year, month, 1).ok()?;
    let to_sunday = (7 - first.weekday().number_days_from_sunday()) % 7;
    Date::from_calendar_date(year, month, 1 + to_sunday + 7 * (n - 1)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_ms(text: &str) -> i64 {
        let parsed =
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
        parsed.unix_timestamp() * 1000
    }

    fn day_of(text: &str) -> String {
        Day::of_unix_millis(utc_ms(text)).unwrap().to_string()
    }

    #[test]
    fn new_years_eve_evening_in_the_us_counts_in_the_old_year() {
        // 04:30 UTC on 1 January is 23:30 EST on 31 December.
        assert_eq!(day_of("2027-01-01T04:30:00Z"), "2026-12-31");
        // Midnight Eastern is 05:00 UTC.
        assert_eq!(day_of("2027-01-01T04:59:59Z"), "2026-12-31");
        assert_eq!(day_of("2027-01-01T05:00:00Z"), "2027-01-01");
    }

    #[test]
    fn instants_are_shown_in_eastern_time() {
        let label = Day::eastern_time_label(utc_ms("2027-01-01T04:30:00Z"));
        assert_eq!(label.as_deref(), Some("2026-12-31 23:30 ET"));
    }

    #[test]
    fn summer_days_change_at_04_utc() {
        assert_eq!(day_of("2026-07-04T03:59:59Z"), "2026-07-03");
        assert_eq!(day_of("2026-07-04T04:00:00Z"), "2026-07-04");
    }

    #[test]
    fn daylight_saving_starts_and_ends_on_the_us_sundays() {
        // 2026: DST from Sunday 8 March 07:00 UTC to Sunday 1 November 06:00 UTC.
        assert_eq!(day_of("2026-03-08T04:30:00Z"), "2026-03-07"); // EST, 23:30
        assert_eq!(day_of("2026-03-09T04:30:00Z"), "2026-03-09"); // EDT, 00:30
        assert_eq!(day_of("2026-11-01T04:30:00Z"), "2026-11-01"); // EDT, 00:30
        assert_eq!(day_of("2026-11-02T04:30:00Z"), "2026-11-01"); // EST, 23:30
    }

    #[test]
    fn days_print_and_parse_as_iso_dates() {
        let day = Day::from_ymd(2026, 2, 3).unwrap();
        assert_eq!(day.to_string(), "2026-02-03");
        assert_eq!(Day::parse("2026-02-03"), Some(day));
        for bad in ["2026-2-3", "2026-02-30", "x", "2026-02-03-04", ""] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
        assert_eq!(day.minus_days(34).to_string(), "2025-12-31");
    }

    #[test]
    fn the_eastern_year_starts_at_five_utc() {
        assert_eq!(
            Day::start_of_year_unix(2027),
            Some(utc_ms("2027-01-01T05:00:00Z") / 1000)
        );
    }
}
