//! Each backend client's public keys: inline in the registration, or fetched from its
//! `jwks_uri` and cached.
//!
//! A fetched set is reused for [`ClientKeyCache::TTL`]. An unknown `kid` (the client
//! rotated its keys) triggers at most one refetch per client per
//! [`ClientKeyCache::REFETCH_INTERVAL`], so a stream of assertions with made-up key ids
//! cannot make us hammer the client's server (or anyone's: the URL is the registered
//! one, never something from the assertion).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use smart_auth::{AuthError, BoxFuture, HttpJwks, JwksSource};
use tokio::sync::Mutex;

use crate::BackendAuthError;
use crate::clients::BackendClient;

/// Fetches a client's key set from its registered URL.
pub trait KeyFetcher: Send + Sync {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<JwkSet, AuthError>>;
}

/// The HTTPS fetcher (timeouts, size cap, no redirects: `smart_auth::HttpJwks`).
#[derive(Debug, Default, Clone, Copy)]
pub struct HttpKeyFetcher;

impl KeyFetcher for HttpKeyFetcher {
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<JwkSet, AuthError>> {
        Box::pin(async move { HttpJwks::new(url)?.fetch().await })
    }
}

struct Cached {
    set: JwkSet,
    fetched_at: Instant,
}

/// Per-client cache of fetched key sets.
pub struct ClientKeyCache {
    fetcher: Arc<dyn KeyFetcher>,
    cached: Mutex<HashMap<String, Cached>>,
}

impl ClientKeyCache {
    /// How long a fetched set is used without asking again.
    pub const TTL: Duration = Duration::from_secs(300);
    /// The shortest time between two fetches for one client.
    pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
    /// Clients we remember; beyond that the cache starts afresh (a bound on memory).
    const MAX_CLIENTS: usize = 10_000;

    pub fn new(fetcher: Arc<dyn KeyFetcher>) -> ClientKeyCache {
        ClientKeyCache {
            fetcher,
            cached: Mutex::new(HashMap::new()),
        }
    }

    /// The decoding key for `kid` of `client`, usable with `alg`.
    pub async fn key_for(
        &self,
        client: &BackendClient,
        kid: &str,
        alg: Algorithm,
    ) -> Result<DecodingKey, BackendAuthError> {
        let unknown = BackendAuthError::InvalidClient("no registered key has this kid");
        if let Some(set) = &client.jwks {
            return find(set, kid, alg).ok_or(unknown);
        }
        let Some(url) = &client.jwks_uri else {
            return Err(unknown);
        };
        let mut cached = self.cached.lock().await;
        let fresh = |c: &Cached| c.fetched_at.elapsed() < Self::TTL;
        if let Some(entry) = cached.get(&client.client_id).filter(|c| fresh(c))
            && let Some(key) = find(&entry.set, kid, alg)
        {
            return Ok(key);
        }
        let may_fetch = cached
            .get(&client.client_id)
            .is_none_or(|c| !fresh(c) || c.fetched_at.elapsed() >= Self::REFETCH_INTERVAL);
        if !may_fetch {
            return Err(unknown);
        }
        let set = self.fetcher.fetch(url).await.map_err(|e| {
            tracing::warn!(client_id = %client.client_id, error = %e, "backend client JWKS fetch failed");
            BackendAuthError::InvalidClient("the client's key set could not be fetched")
        })?;
        let key = find(&set, kid, alg);
        if cached.len() >= Self::MAX_CLIENTS {
            cached.clear();
        }
        cached.insert(
            client.client_id.clone(),
            Cached {
                set,
                fetched_at: Instant::now(),
            },
        );
        key.ok_or(unknown)
    }
}

/// The key with this `kid` whose type fits `alg` (RSA for RS384, P-384 for ES384), not
/// marked for encryption, and not declaring a different algorithm.
fn find(set: &JwkSet, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
    set.keys
        .iter()
        .filter(|k| k.common.key_id.as_deref() == Some(kid))
        .find(|k| fits(k, alg))
        .and_then(|k| DecodingKey::from_jwk(k).ok())
}

fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return false;
    }
    let declared_ok = matches!(
        (jwk.common.key_algorithm, alg),
        (None, _)
            | (Some(KeyAlgorithm::RS384), Algorithm::RS384)
            | (Some(KeyAlgorithm::ES384), Algorithm::ES384)
    );
    let type_ok = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS384) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        _ => false,
    };
    declared_ok && type_ok
}
