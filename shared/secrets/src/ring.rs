//! Key rings: the keys a sealed value may have been made with, so a secret can be
//! rotated without downtime.
//!
//! A value (a paging cursor, a sign-in proof, a code hash) is always sealed with the
//! **current** key and opened with the current key, then each older one still
//! accepted. After a rotation the previous key keeps opening what it sealed until
//! those values expire; after the next rotation it drops off the ring and its values
//! fail. Where the keys come from is a [`SecretSource`]: Secrets Manager's
//! `AWSCURRENT`/`AWSPREVIOUS` stages on AWS, files in the data directory locally.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The key material of one secret version. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMaterial(Vec<u8>);

impl KeyMaterial {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        KeyMaterial(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMaterial(..)")
    }
}

/// The current key and the older keys still accepted when opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRing {
    current: KeyMaterial,
    accepted: Vec<KeyMaterial>,
}

impl KeyRing {
    /// A ring of one key (nothing rotated yet).
    pub fn single(current: KeyMaterial) -> Self {
        KeyRing {
            current,
            accepted: Vec::new(),
        }
    }

    /// `current` seals; `accepted` (previous first) only open. Repeats of a key are
    /// dropped, so a secret that was never rotated is tried once, not twice.
    pub fn new(current: KeyMaterial, accepted: impl IntoIterator<Item = KeyMaterial>) -> Self {
        let mut ring = KeyRing::single(current);
        for key in accepted {
            if key != ring.current && !ring.accepted.contains(&key) {
                ring.accepted.push(key);
            }
        }
        ring
    }

    /// The key new values are sealed with.
    pub fn current(&self) -> &KeyMaterial {
        &self.current
    }

    /// Every key a value may be opened with, current first.
    pub fn keys(&self) -> impl Iterator<Item = &KeyMaterial> {
        std::iter::once(&self.current).chain(&self.accepted)
    }

    /// Builds one derived key per ring key (current first) with `derive`, failing on the
    /// first key it refuses (e.g. one too short).
    pub fn derive<K, E>(&self, derive: impl Fn(&[u8]) -> Result<K, E>) -> Result<Vec<K>, E> {
        self.keys().map(|k| derive(k.as_bytes())).collect()
    }
}

/// Opens with each key in turn (current first) and returns the first success. When no
/// key opens it, the error is the current key's: that is the one the value should
/// have been sealed with.
pub fn open_with_any<K, T, E>(
    keys: &[K],
    mut open: impl FnMut(&K) -> Result<T, E>,
    no_keys: E,
) -> Result<T, E> {
    let mut first_error = None;
    for key in keys {
        match open(key) {
            Ok(value) => return Ok(value),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    Err(first_error.unwrap_or(no_keys))
}

/// The secret store could not give the keys. The text is for logs (it names the
/// secret, never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret source: {0}")]
pub struct SourceError(pub String);

/// Where a secret's key ring comes from (the port; adapters: Secrets Manager on AWS,
/// the data directory locally).
pub trait SecretSource: Send + Sync {
    fn key_ring(&self) -> impl Future<Output = Result<KeyRing, SourceError>> + Send;
}

/// How often a warm function re-reads its secrets, so a rotation reaches every
/// instance within this interval without a redeploy.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// When the next refresh of a cached key ring is due. Claiming a refresh moves the due
/// time forward at once, so concurrent requests do not all call the secret store, and
/// a failed refresh is retried only an interval later (the cached keys stay in use).
#[derive(Debug)]
pub struct RefreshSchedule {
    every: Duration,
    next: Mutex<Instant>,
}

impl RefreshSchedule {
    /// The keys were just loaded at `now`.
    pub fn new(every: Duration, now: Instant) -> Self {
        RefreshSchedule {
            every,
            next: Mutex::new(now + every),
        }
    }

    /// Whether the caller should refresh now; `true` at most once per interval.
    pub fn claim(&self, now: Instant) -> bool {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        if now < *next {
            return false;
        }
        *next = now + self.every;
        true
    }
}

/// Keeps a cached key ring fresh: [`KeyRefresher::refresh_if_due`] returns a new ring
/// once per interval, which the caller installs in its sealer.
pub struct KeyRefresher<S> {
    source: S,
    schedule: RefreshSchedule,
}

impl<S: SecretSource> KeyRefresher<S> {
    /// Loads the ring (the cold start) and schedules the next refresh.
    pub async fn load(source: S, every: Duration) -> Result<(Self, KeyRing), SourceError> {
        let ring = source.key_ring().await?;
        let schedule = RefreshSchedule::new(every, Instant::now());
        Ok((KeyRefresher { source, schedule }, ring))
    }

    /// A freshly read ring when a refresh is due and the read worked; `None` otherwise
    /// (a failed read is logged and the keys in use stay, fail-safe for availability:
    /// they were valid a moment ago).
    pub async fn refresh_if_due(&self, now: Instant) -> Option<KeyRing> {
        if !self.schedule.claim(now) {
            return None;
        }
        match self.source.key_ring().await {
            Ok(ring) => Some(ring),
            Err(error) => {
                tracing::warn!(%error, "secret refresh failed; keeping the cached keys");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> KeyMaterial {
        KeyMaterial::new(vec![b; 32])
    }

    #[test]
    fn the_ring_seals_with_current_and_opens_with_current_then_previous() {
        let ring = KeyRing::new(key(2), [key(1)]);
        assert_eq!(ring.current(), &key(2));
        assert_eq!(ring.keys().cloned().collect::<Vec<_>>(), [key(2), key(1)]);
    }

    #[test]
    fn a_secret_never_rotated_is_tried_once() {
        let ring = KeyRing::new(key(1), [key(1), key(1)]);
        assert_eq!(ring.keys().count(), 1);
        assert!(!format!("{ring:?}").contains("1, 1"));
    }

    #[test]
    fn opening_falls_back_to_the_previous_key_and_reports_the_current_keys_error() {
        let keys = [2u8, 1];
        let opened_by = |sealed_with: u8| {
            open_with_any(
                &keys,
                |k| {
                    if *k == sealed_with {
                        Ok(*k)
                    } else {
                        Err(format!("not {k}"))
                    }
                },
                "no keys".to_owned(),
            )
        };
        assert_eq!(opened_by(2), Ok(2));
        assert_eq!(opened_by(1), Ok(1));
        assert_eq!(opened_by(0), Err("not 2".to_owned()));
        let none: [u8; 0] = [];
        assert_eq!(
            open_with_any(&none, |_| Ok::<u8, &str>(0), "no keys"),
            Err("no keys")
        );
    }

    #[test]
    fn derive_fails_on_the_first_refused_key() {
        let ring = KeyRing::new(key(2), [KeyMaterial::new(vec![1; 3])]);
        let derived = ring.derive(|k| {
            if k.len() >= 32 {
                Ok(k[0])
            } else {
                Err(k.len())
            }
        });
        assert_eq!(derived, Err(3));
    }

    #[test]
    fn a_refresh_is_claimed_once_per_interval() {
        let start = Instant::now();
        let schedule = RefreshSchedule::new(Duration::from_secs(300), start);
        assert!(!schedule.claim(start + Duration::from_secs(299)));
        assert!(schedule.claim(start + Duration::from_secs(300)));
        // Claimed: the next request in the same instant does not refresh again.
        assert!(!schedule.claim(start + Duration::from_secs(300)));
        assert!(schedule.claim(start + Duration::from_secs(600)));
    }

    struct Rotating(Mutex<Vec<KeyRing>>);

    impl SecretSource for Rotating {
        async fn key_ring(&self) -> Result<KeyRing, SourceError> {
            let mut rings = self.0.lock().unwrap_or_else(|e| e.into_inner());
            rings.pop().ok_or_else(|| SourceError("unavailable".into()))
        }
    }

    #[tokio::test]
    async fn the_refresher_hands_out_a_new_ring_when_due_and_keeps_the_old_one_on_failure() {
        let source = Rotating(Mutex::new(vec![
            KeyRing::new(key(2), [key(1)]),
            KeyRing::single(key(1)),
        ]));
        let (refresher, ring) = KeyRefresher::load(source, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ring, KeyRing::single(key(1)));
        let now = Instant::now();
        assert_eq!(refresher.refresh_if_due(now).await, None);
        let later = now + Duration::from_secs(61);
        assert_eq!(
            refresher.refresh_if_due(later).await,
            Some(KeyRing::new(key(2), [key(1)]))
        );
        // The source now fails: nothing to install, the caller keeps its keys.
        assert_eq!(
            refresher
                .refresh_if_due(later + Duration::from_secs(61))
                .await,
            None
        );
    }
}
