//! FHIR dates as ranges, and the R4 date-prefix semantics.
//!
//! FHIR compares dates as *ranges*: `2019-11` means all of November 2019, a
//! `Period` is its start through its end, and a search value is the implicit range
//! of its precision (<https://hl7.org/fhir/R4/search.html#date>). Everything here is
//! in unix milliseconds with half-open `[start, end)` ranges; `None` is an open end.

use time::{Date, Month};

/// One day in milliseconds: the minimum `ap` tolerance.
const DAY_MS: i64 = 86_400_000;

/// A half-open range `[start, end)` of unix milliseconds; `None` means unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl DateRange {
    pub fn new(start: Option<i64>, end: Option<i64>) -> Self {
        DateRange { start, end }
    }

    /// The exact millisecond of a stored instant such as `meta.lastUpdated`.
    pub fn instant(millis: i64) -> Self {
        DateRange::new(Some(millis), Some(millis.saturating_add(1)))
    }

    fn lo(&self) -> i64 {
        self.start.unwrap_or(i64::MIN)
    }

    fn hi(&self) -> i64 {
        self.end.unwrap_or(i64::MAX)
    }

    /// True when the range holds at least one millisecond.
    pub fn is_valid(&self) -> bool {
        self.lo() < self.hi()
    }

    fn contains(&self, other: &DateRange) -> bool {
        self.lo() <= other.lo() && other.hi() <= self.hi()
    }

    fn overlaps(&self, other: &DateRange) -> bool {
        self.lo() < other.hi() && other.lo() < self.hi()
    }
}

/// The nine R4 date comparators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

impl Prefix {
    pub const ALL: [Prefix; 9] = [
        Prefix::Eq,
        Prefix::Ne,
        Prefix::Gt,
        Prefix::Lt,
        Prefix::Ge,
        Prefix::Le,
        Prefix::Sa,
        Prefix::Eb,
        Prefix::Ap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Prefix::Eq => "eq",
            Prefix::Ne => "ne",
            Prefix::Gt => "gt",
            Prefix::Lt => "lt",
            Prefix::Ge => "ge",
            Prefix::Le => "le",
            Prefix::Sa => "sa",
            Prefix::Eb => "eb",
            Prefix::Ap => "ap",
        }
    }

    /// Splits an optional two-letter prefix off a search value (`ge2019` → `Ge`,
    /// `2019`). Without one the comparator is `eq`.
    pub fn split(value: &str) -> (Prefix, &str) {
        Prefix::ALL
            .into_iter()
            .find_map(|p| value.strip_prefix(p.as_str()).map(|rest| (p, rest)))
            .unwrap_or((Prefix::Eq, value))
    }
}

/// A parsed date criterion value: comparator plus the search range. For `ap` the
/// range has already been widened by the tolerance, so matching needs no clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTest {
    pub prefix: Prefix,
    pub range: DateRange,
}

impl DateTest {
    /// Builds a test, widening the range for `ap` by 10% of its distance from
    /// `now_ms`, and at least one day (the spec's recommendation for dates).
    pub fn new(prefix: Prefix, range: DateRange, now_ms: i64) -> Self {
        let range = if prefix == Prefix::Ap {
            widen_for_ap(range, now_ms)
        } else {
            range
        };
        DateTest { prefix, range }
    }

    /// R4 semantics for one target value (search range S, target range T):
    /// - `eq`: S fully contains T; `ne`: it does not.
    /// - `gt`: the range above S overlaps T (T ends after S ends); `lt` mirrors it.
    /// - `ge` = `gt` or `eq`; `le` = `lt` or `eq`.
    /// - `sa`: T starts at or after the end of S; `eb`: T ends at or before the start of S.
    /// - `ap`: the widened S overlaps T.
    pub fn matches(&self, target: &DateRange) -> bool {
        let s = &self.range;
        match self.prefix {
            Prefix::Eq => s.contains(target),
            Prefix::Ne => !s.contains(target),
            Prefix::Gt => target.hi() > s.hi(),
            Prefix::Lt => target.lo() < s.lo(),
            Prefix::Ge => target.hi() > s.hi() || s.contains(target),
            Prefix::Le => target.lo() < s.lo() || s.contains(target),
            Prefix::Sa => target.lo() >= s.hi(),
            Prefix::Eb => target.hi() <= s.lo(),
            Prefix::Ap => s.overlaps(target),
        }
    }

    /// The conservative `[from, to)` of stored *instants* (1 ms ranges) this test can
    /// match; `None` where it cannot narrow. Used for storage planning only.
    pub fn instant_bounds(&self) -> (Option<i64>, Option<i64>) {
        let s = &self.range;
        match self.prefix {
            Prefix::Eq | Prefix::Ap => (s.start, s.end),
            Prefix::Gt | Prefix::Sa => (s.end, None),
            Prefix::Ge => (s.start, None),
            Prefix::Lt | Prefix::Eb => (None, s.start),
            Prefix::Le => (None, s.end),
            Prefix::Ne => (None, None),
        }
    }
}

fn widen_for_ap(range: DateRange, now_ms: i64) -> DateRange {
    let anchor = range.start.or(range.end).unwrap_or(now_ms);
    let margin = (i128::from(anchor) - i128::from(now_ms)).abs() / 10;
    let margin = i64::try_from(margin).unwrap_or(i64::MAX).max(DAY_MS);
    DateRange::new(
        range.start.map(|s| s.saturating_sub(margin)),
        range.end.map(|e| e.saturating_add(margin)),
    )
}

/// Parses a FHIR `date`, `dateTime` or `instant` into the range its precision
/// implies: `2019` is the whole year, `2019-11-01` the whole day,
/// `2019-11-01T10:00:00Z` one second, `…:00.123Z` one millisecond. A missing
/// timezone is read as UTC. A space where the offset's `+` belongs is accepted,
/// because an unencoded `+` in a query string arrives as a space.
pub fn parse_range(text: &str) -> Option<DateRange> {
    let bytes = text.as_bytes();
    if !text.is_ascii() || bytes.len() < 4 {
        return None;
    }
    let year = digits(bytes, 0, 4)?;
    if year == 0 {
        return None;
    }
    match bytes.len() {
        4 => Some(calendar_range(year, 1, 1, Step::Year)?),
        7 => {
            expect_byte(bytes, 4, b'-')?;
            Some(calendar_range(year, digits(bytes, 5, 2)?, 1, Step::Month)?)
        }
        10 => {
            expect_byte(bytes, 4, b'-')?;
            expect_byte(bytes, 7, b'-')?;
            Some(calendar_range(
                year,
                digits(bytes, 5, 2)?,
                digits(bytes, 8, 2)?,
                Step::Day,
            )?)
        }
        _ => parse_date_time(bytes, year),
    }
}

#[derive(Clone, Copy)]
enum Step {
    Year,
    Month,
    Day,
}

fn calendar_range(year: u32, month: u32, day: u32, step: Step) -> Option<DateRange> {
    let start = day_start_ms(year, month, day)?;
    let end = match step {
        Step::Year => day_start_ms(year + 1, 1, 1)?,
        Step::Month if month == 12 => day_start_ms(year + 1, 1, 1)?,
        Step::Month => day_start_ms(year, month + 1, 1)?,
        Step::Day => start + DAY_MS,
    };
    Some(DateRange::new(Some(start), Some(end)))
}

/// `YYYY-MM-DDThh:mm[:ss[.fff…]][Z|±hh:mm| hh:mm]`.
fn parse_date_time(b: &[u8], year: u32) -> Option<DateRange> {
    expect_byte(b, 4, b'-')?;
    expect_byte(b, 7, b'-')?;
    expect_byte(b, 10, b'T')?;
    expect_byte(b, 13, b':')?;
    let day = day_start_ms(year, digits(b, 5, 2)?, digits(b, 8, 2)?)?;
    let (hour, minute) = (digits(b, 11, 2)?, digits(b, 14, 2)?);
    if hour > 23 || minute > 59 {
        return None;
    }
    let mut at = 16;
    let mut width = 60_000;
    let mut second = 0;
    let mut millis = 0;
    if b.get(at) == Some(&b':') {
        second = digits(b, at + 1, 2)?;
        if second > 59 {
            return None;
        }
        at += 3;
        width = 1_000;
        if b.get(at) == Some(&b'.') {
            let (frac, used) = fraction(&b[at + 1..])?;
            millis = frac.0;
            width = frac.1;
            at += 1 + used;
        }
    }
    let offset = parse_offset(&b[at..])?;
    let start = day
        + i64::from(hour) * 3_600_000
        + i64::from(minute) * 60_000
        + i64::from(second) * 1_000
        + millis
        - offset;
    Some(DateRange::new(Some(start), Some(start + width)))
}

/// Reads fraction digits: ((millis, precision width in ms), digits used).
fn fraction(b: &[u8]) -> Option<((i64, i64), usize)> {
    let used = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if used == 0 {
        return None;
    }
    let mut millis = 0;
    for (i, c) in b[..used.min(3)].iter().enumerate() {
        millis += i64::from(c - b'0') * [100, 10, 1][i];
    }
    let width = match used {
        1 => 100,
        2 => 10,
        _ => 1,
    };
    Some(((millis, width), used))
}

/// The offset in milliseconds east of UTC; empty (no timezone) means UTC.
fn parse_offset(b: &[u8]) -> Option<i64> {
    match b {
        [] | [b'Z'] => Some(0),
        [sign @ (b'+' | b'-' | b' '), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let (h, m) = (digits(rest, 0, 2)?, digits(rest, 3, 2)?);
            if h > 14 || m > 59 {
                return None;
            }
            let ms = i64::from(h) * 3_600_000 + i64::from(m) * 60_000;
            Some(if *sign == b'-' { -ms } else { ms })
        }
        _ => None,
    }
}

fn day_start_ms(year: u32, month: u32, day: u32) -> Option<i64> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let days = i64::from(date.to_julian_day()) - 2_440_588;
    Some(days * DAY_MS)
}

fn digits(b: &[u8], at: usize, len: usize) -> Option<u32> {
    let slice = b.get(at..at + len)?;
    slice.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn expect_byte(b: &[u8], at: usize, want: u8) -> Option<()> {
    (b.get(at) == Some(&want)).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        fhir::Instant::parse(text).unwrap().unix_millis()
    }

    fn range(text: &str) -> DateRange {
        parse_range(text).unwrap()
    }

    #[test]
    fn a_year_is_the_whole_year() {
        let r = range("2019");
        assert_eq!(r.start, Some(ms("2019-01-01T00:00:00Z")));
        assert_eq!(r.end, Some(ms("2020-01-01T00:00:00Z")));
    }

    #[test]
    fn a_month_is_the_whole_month_including_december() {
        let r = range("2019-12");
        assert_eq!(r.start, Some(ms("2019-12-01T00:00:00Z")));
        assert_eq!(r.end, Some(ms("2020-01-01T00:00:00Z")));
        assert_eq!(range("2020-02").end, Some(ms("2020-03-01T00:00:00Z")));
    }

    #[test]
    fn a_day_is_the_whole_day() {
        let r = range("2020-02-29");
        assert_eq!(r.start, Some(ms("2020-02-29T00:00:00Z")));
        assert_eq!(r.end, Some(ms("2020-03-01T00:00:00Z")));
    }

    #[test]
    fn date_times_take_the_precision_of_their_seconds_or_fraction() {
        let r = range("2019-11-01T10:00:00Z");
        assert_eq!(
            (r.start, r.end),
            (
                Some(ms("2019-11-01T10:00:00Z")),
                Some(ms("2019-11-01T10:00:01Z"))
            )
        );
        let f = range("2019-11-01T10:00:00.5Z");
        assert_eq!(f.end.unwrap() - f.start.unwrap(), 100);
        let m = range("2019-11-01T10:00:00.123456Z");
        assert_eq!(m.start, Some(ms("2019-11-01T10:00:00.123Z")));
        assert_eq!(m.end.unwrap() - m.start.unwrap(), 1);
        let minutes = range("2019-11-01T10:00");
        assert_eq!(minutes.end.unwrap() - minutes.start.unwrap(), 60_000);
    }

    #[test]
    fn offsets_are_applied_and_a_space_stands_for_plus() {
        assert_eq!(
            range("2019-11-01T02:00:00+02:00").start,
            Some(ms("2019-11-01T00:00:00Z"))
        );
        assert_eq!(
            range("2019-11-01T00:00:00-05:00").start,
            Some(ms("2019-11-01T05:00:00Z"))
        );
        assert_eq!(
            range("2019-11-01T00:00:00 00:00"),
            range("2019-11-01T00:00:00+00:00")
        );
        assert_eq!(range("2019-11-01T00:00:00"), range("2019-11-01T00:00:00Z"));
    }

    #[test]
    fn malformed_dates_are_rejected() {
        for bad in [
            "",
            "notadate",
            "19",
            "2019-1",
            "2019-13",
            "2019-02-30",
            "2019-11-01T",
            "2019-11-01T25:00:00Z",
            "2019-11-01T10:00:00+1:00",
            "2019-11-01T10:00:00.Z",
            "0000",
            "2019-11-01T10:00:61Z",
            "2019-11-01T10:00:00+15:00",
            "2019/11/01",
            "２０１９",
            "2019-11-01T10:00:00Zjunk",
        ] {
            assert_eq!(parse_range(bad), None, "{bad}");
        }
    }

    /// Search value `2019-11-02` (one day) against target ranges, for every prefix.
    /// Columns: eq ne gt lt ge le sa eb ap (ap is ±1 day here: "now" is the day itself).
    #[test]
    fn prefix_table_for_one_day_search_value() {
        let day = |d: &str| range(d);
        let period = |a: &str, b: &str| DateRange::new(range(a).start, range(b).end);
        let open_from = |a: &str| DateRange::new(range(a).start, None);
        let open_until = |b: &str| DateRange::new(None, range(b).end);
        let cases: Vec<(&str, DateRange, [bool; 9])> = vec![
            //                                          eq     ne     gt     lt     ge     le     sa     eb     ap
            (
                "same day",
                day("2019-11-02"),
                [true, false, false, false, true, true, false, false, true],
            ),
            (
                "an instant inside",
                range("2019-11-02T10:00:00Z"),
                [true, false, false, false, true, true, false, false, true],
            ),
            (
                "day before",
                day("2019-11-01"),
                [false, true, false, true, false, true, false, true, true],
            ),
            (
                "day after",
                day("2019-11-03"),
                [false, true, true, false, true, false, true, false, true],
            ),
            (
                "week before",
                day("2019-10-20"),
                [false, true, false, true, false, true, false, true, false],
            ),
            (
                "week after",
                day("2019-11-20"),
                [false, true, true, false, true, false, true, false, false],
            ),
            (
                "period around",
                period("2019-11-01", "2019-11-05"),
                [false, true, true, true, true, true, false, false, true],
            ),
            (
                "period ending on it",
                period("2019-10-01", "2019-11-02"),
                [false, true, false, true, false, true, false, false, true],
            ),
            (
                "period starting on it",
                period("2019-11-02", "2019-12-01"),
                [false, true, true, false, true, false, false, false, true],
            ),
            (
                "open from before",
                open_from("2019-10-01"),
                [false, true, true, true, true, true, false, false, true],
            ),
            (
                "open until after",
                open_until("2019-12-01"),
                [false, true, true, true, true, true, false, false, true],
            ),
            (
                "open from after",
                open_from("2019-11-03"),
                [false, true, true, false, true, false, true, false, true],
            ),
            (
                "open until before",
                open_until("2019-11-01"),
                [false, true, false, true, false, true, false, true, true],
            ),
        ];
        let now = range("2019-11-02").start.unwrap();
        for (label, target, expected) in cases {
            for (prefix, want) in Prefix::ALL.into_iter().zip(expected) {
                let test = DateTest::new(prefix, range("2019-11-02"), now);
                assert_eq!(test.matches(&target), want, "{} {label}", prefix.as_str());
            }
        }
    }

    /// The R4 definitions, checked over a grid of ranges: ge = gt or eq, le = lt or
    /// eq, ne = not eq, sa implies gt, eb implies lt, eq implies ap, and sa/eb never
    /// overlap the search range.
    #[test]
    fn prefix_relations_hold_over_a_grid_of_ranges() {
        let points: Vec<Option<i64>> = std::iter::once(None)
            .chain((0..6).map(|i| Some(i * DAY_MS)))
            .collect();
        let ranges: Vec<DateRange> = points
            .iter()
            .flat_map(|s| points.iter().map(move |e| DateRange::new(*s, *e)))
            .filter(DateRange::is_valid)
            .collect();
        let finite: Vec<&DateRange> = ranges
            .iter()
            .filter(|r| r.start.is_some() && r.end.is_some())
            .collect();
        for search in finite {
            let t = |p| DateTest::new(p, *search, 0);
            for target in &ranges {
                let m = |p| t(p).matches(target);
                assert_eq!(m(Prefix::Ge), m(Prefix::Gt) || m(Prefix::Eq));
                assert_eq!(m(Prefix::Le), m(Prefix::Lt) || m(Prefix::Eq));
                assert_eq!(m(Prefix::Ne), !m(Prefix::Eq));
                assert!(!m(Prefix::Sa) || m(Prefix::Gt));
                assert!(!m(Prefix::Eb) || m(Prefix::Lt));
                assert!(!m(Prefix::Eq) || m(Prefix::Ap));
                assert!(!(m(Prefix::Sa) || m(Prefix::Eb)) || !search.overlaps(target));
            }
        }
    }

    #[test]
    fn ap_tolerance_is_a_tenth_of_the_distance_from_now_and_at_least_a_day() {
        let now = range("2020-01-01").start.unwrap();
        let ten_years_ago = DateTest::new(Prefix::Ap, range("2010-01-01"), now);
        assert!(
            ten_years_ago.matches(&range("2009-01-05")),
            "within ~1 year of 2010"
        );
        assert!(!ten_years_ago.matches(&range("2008-06-01")));
        let today = DateTest::new(Prefix::Ap, range("2020-01-01"), now);
        assert!(today.matches(&range("2020-01-02")));
        assert!(!today.matches(&range("2020-01-03")));
    }

    #[test]
    fn prefixes_split_off_and_default_to_eq() {
        assert_eq!(Prefix::split("ge2019"), (Prefix::Ge, "2019"));
        assert_eq!(Prefix::split("2019"), (Prefix::Eq, "2019"));
        assert_eq!(Prefix::split("ap2019-01"), (Prefix::Ap, "2019-01"));
    }
}
