use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A FHIR `instant` normalised to UTC with millisecond precision,
/// e.g. `2026-11-24T09:30:00.123Z`.
///
/// The text form has a fixed width, so instants sort correctly as strings. Storage
/// keys rely on that to order resources by `meta.lastUpdated`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Instant(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a FHIR instant (expected e.g. 2026-01-31T12:00:00Z)")]
pub struct InstantError;

impl Instant {
    pub fn now() -> Instant {
        Instant::from_datetime(OffsetDateTime::now_utc())
    }

    pub fn from_unix_millis(millis: i64) -> Option<Instant> {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()?;
        Some(Instant::from_datetime(dt))
    }

    fn from_datetime(dt: OffsetDateTime) -> Instant {
        let dt = dt.to_offset(UtcOffset::UTC);
        Instant(format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        ))
    }

    /// Parses any RFC 3339 instant (any offset, any fraction) and normalises it.
    pub fn parse(text: &str) -> Result<Instant, InstantError> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(Instant::from_datetime)
            .map_err(|_| InstantError)
    }

    pub fn unix_millis(&self) -> i64 {
        OffsetDateTime::parse(&self.0, &Rfc3339)
            .map(|dt| (dt.unix_timestamp_nanos() / 1_000_000) as i64)
            .unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The smallest instant strictly after this one; used to keep versions ordered when
    /// two writes land in the same millisecond.
    pub fn next_millisecond(&self) -> Instant {
        Instant::from_unix_millis(self.unix_millis() + 1).unwrap_or_else(|| self.clone())
    }
}

impl TryFrom<String> for Instant {
    type Error = InstantError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Instant::parse(&value)
    }
}

impl From<Instant> for String {
    fn from(value: Instant) -> Self {
        value.0
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_offsets_and_precision_to_utc_millis() {
        let i = Instant::parse("2026-01-31T12:00:00+02:00").unwrap();
        assert_eq!(i.as_str(), "2026-01-31T10:00:00.000Z");
        let j = Instant::parse("2026-01-31T10:00:00.123456Z").unwrap();
        assert_eq!(j.as_str(), "2026-01-31T10:00:00.123Z");
        assert!(i < j);
    }

    #[test]
    fn rejects_dates_without_time() {
        assert_eq!(Instant::parse("2026-01-31"), Err(InstantError));
    }

    #[test]
    fn millis_round_trip() {
        let i = Instant::parse("2020-02-29T23:59:59.999Z").unwrap();
        assert_eq!(Instant::from_unix_millis(i.unix_millis()), Some(i.clone()));
        assert_eq!(i.next_millisecond().as_str(), "2020-03-01T00:00:00.000Z");
    }
}
