//! Throttling of sign-in answers per source, so that guessing is slow for whoever
//! guesses and free for everybody else (NIST SP 800-63B §5.2.2; policy in SECURITY.md).
//!
//! A *source* is where answers come from: a browser's authorization transaction, and
//! the network address it posts from. Each source gets a few free failures, then must
//! wait before its next answer is even graded, twice as long after each further
//! failure, up to [`ThrottlePolicy::max_delay_secs`]. An answer sent while its source
//! must wait is refused ungraded, so it tells the sender nothing, right or wrong. A
//! member signing in from their own browser is a different source and is not slowed by
//! anyone else's failures.
//!
//! This module is the policy only (pure, the clock passed in); the authorization
//! server keeps the records in its key-value store.

use serde::{Deserialize, Serialize};

/// What one source has done lately. Stored per source under a hash of its key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// Failed answers since the source was last forgotten.
    pub failures: u32,
    /// Unix second before which the next answer is refused ungraded.
    pub next_allowed_at: i64,
    /// Unix second of the last failure (the record is forgotten a while after it).
    pub last_failure_at: i64,
}

/// Whether an answer from a source may be graded now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Grade,
    /// Refuse it ungraded; the source may answer again at `until` (Unix seconds).
    Wait {
        until: i64,
    },
}

/// The numbers of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures a source may make before any delay (typos happen).
    pub free_failures: u32,
    /// The first delay, in seconds; each further failure doubles it.
    pub base_delay_secs: i64,
    /// The longest delay, in seconds.
    pub max_delay_secs: i64,
    /// A source that has not failed for this long starts afresh (and its record
    /// expires from the store).
    pub forget_after_secs: i64,
}

impl Default for ThrottlePolicy {
    /// 3 free failures, then 30 s, 1 min, 2 min, … up to 1 hour between graded answers;
    /// forgotten after a day without failures.
    fn default() -> Self {
        ThrottlePolicy {
            free_failures: 3,
            base_delay_secs: 30,
            max_delay_secs: 3600,
            forget_after_secs: 24 * 3600,
        }
    }
}

impl ThrottlePolicy {
    /// The wait after the `failures`-th failure.
    pub fn delay_after(&self, failures: u32) -> i64 {
        let Some(over) = failures.checked_sub(self.free_failures + 1) else {
            return 0;
        };
        // 2^over, saturating long before it could overflow.
        let factor = 1i64.checked_shl(over.min(40)).unwrap_or(i64::MAX);
        self.base_delay_secs
            .saturating_mul(factor)
            .min(self.max_delay_secs)
    }

    /// The record as it stands at `now` (a stale one is forgotten).
    fn current(&self, record: Option<SourceRecord>, now: i64) -> SourceRecord {
        match record {
            Some(r) if now - r.last_failure_at < self.forget_after_secs => r,
            _ => SourceRecord::default(),
        }
    }

    /// May an answer from this source be graded at `now`?
    pub fn check(&self, record: Option<SourceRecord>, now: i64) -> Verdict {
        let record = self.current(record, now);
        if now < record.next_allowed_at {
            Verdict::Wait {
                until: record.next_allowed_at,
            }
        } else {
            Verdict::Grade
        }
    }

    /// The record after a graded answer from this source failed at `now`.
    pub fn after_failure(&self, record: Option<SourceRecord>, now: i64) -> SourceRecord {
        let record = self.current(record, now);
        let failures = record.failures.saturating_add(1);
        SourceRecord {
            failures,
            next_allowed_at: now + self.delay_after(failures),
            last_failure_at: now,
        }
    }

    /// How long to keep a record written at `now` (Unix seconds of its expiry).
    pub fn expires_at(&self, now: i64) -> i64 {
        now + self.forget_after_secs
    }
}

/// The most answers one source can have graded within `horizon_secs`, however fast
/// it sends them: the measure of brute-force resistance SECURITY.md quotes.
pub fn graded_within(policy: &ThrottlePolicy, horizon_secs: i64) -> u32 {
    let mut record = None;
    let mut now = 0;
    let mut graded = 0;
    while now < horizon_secs {
        match policy.check(record, now) {
            Verdict::Grade => {
                graded += 1;
                record = Some(policy.after_failure(record, now));
            }
            Verdict::Wait { until } => now = until,
        }
    }
    graded
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;

    #[test]
    fn a_few_typos_cost_nothing_then_the_delay_doubles_up_to_an_hour() {
        let p = ThrottlePolicy::default();
        let delays: Vec<i64> = (1..=12).map(|n| p.delay_after(n)).collect();
        assert_eq!(
            delays,
            [0, 0, 0, 30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
        );
        assert_eq!(p.delay_after(u32::MAX), 3600);
    }

    /// An attacker who knows a member's email and sends ten guesses a minute, all day,
    /// from one browser and one address: only a few dozen guesses are graded at all,
    /// and every other one is refused ungraded, the same whether it was right or wrong.
    #[test]
    fn ten_guesses_a_minute_for_a_day_get_a_few_dozen_graded() {
        let p = ThrottlePolicy::default();
        let (mut record, mut graded, mut refused) = (None, 0u32, 0u32);
        for minute in 0..(DAY / 60) {
            for guess in 0..10 {
                let now = minute * 60 + guess * 6;
                match p.check(record, now) {
                    Verdict::Grade => {
                        graded += 1;
                        record = Some(p.after_failure(record, now));
                    }
                    Verdict::Wait { .. } => refused += 1,
                }
            }
        }
        assert_eq!(graded + refused, 14_400);
        assert!(graded <= 35, "graded {graded}");
        assert!(graded <= graded_within(&p, DAY));
        // The figure SECURITY.md quotes: the most one source can have graded in a day.
        assert_eq!(graded_within(&p, DAY), 33);
        // Date of birth (~36,500 days in a century) alone: the chance that any graded
        // guess was right is below one in a thousand, before member id and ZIP.
        assert!(f64::from(graded) / 36_500.0 < 0.001);
    }

    #[test]
    fn a_refused_answer_says_nothing_about_itself() {
        let p = ThrottlePolicy::default();
        let mut record = None;
        for n in 0..4 {
            record = Some(p.after_failure(record, n));
        }
        // Waiting: a right answer and a wrong one get the very same verdict, because
        // the verdict is decided before the answer is looked at.
        assert!(matches!(p.check(record, 10), Verdict::Wait { until: 33 }));
    }

    /// The member, from their own browser, is another source: a day of someone else's
    /// failures leaves the member's record empty, so their first answer is graded.
    #[test]
    fn the_member_is_not_slowed_by_someone_elses_failures() {
        let p = ThrottlePolicy::default();
        let mut attacker = None;
        for minute in 0..600 {
            attacker = Some(p.after_failure(attacker, minute * 60));
        }
        let member: Option<SourceRecord> = None;
        assert_eq!(p.check(member, 600 * 60), Verdict::Grade);
        assert!(matches!(p.check(attacker, 600 * 60), Verdict::Wait { .. }));
    }

    #[test]
    fn a_source_quiet_for_a_day_starts_afresh() {
        let p = ThrottlePolicy::default();
        let mut record = None;
        for n in 0..10 {
            record = Some(p.after_failure(record, n));
        }
        assert!(matches!(p.check(record, 100), Verdict::Wait { .. }));
        assert_eq!(p.check(record, 9 + DAY), Verdict::Grade);
        assert_eq!(p.after_failure(record, 9 + DAY).failures, 1);
    }
}
