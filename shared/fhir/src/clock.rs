//! The wall clock in Unix seconds: what every expiry, `iat` and `exp` is compared with.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch now.
pub fn unix_now() -> i64 {
    unix_seconds(SystemTime::now())
}

/// Seconds since the Unix epoch at `t`: 0 before 1970, `i64::MAX` past the range, so a
/// broken clock never panics.
pub fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn seconds_are_counted_from_the_epoch_and_never_panic() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(90)), 90);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
        assert!(unix_now() > 1_700_000_000);
    }
}
