//! The CloudFront edge in front of the API (template.yaml, `EdgeProtection`).
//!
//! An HTTP API cannot carry a WAF web ACL, so the ACL sits on a CloudFront distribution
//! in front of it. API Gateway's own `execute-api` domain still answers, though, and a
//! request sent there has skipped the WAF. So CloudFront adds two headers on its way to
//! the origin:
//!
//! * [`ORIGIN_VERIFY_HEADER`]: a secret (`OriginVerifySecret`), which [`EdgeGuard`]
//!   requires and removes before any handler sees the request;
//! * [`FORWARDED_HOST_HEADER`]: the host the client used (a CloudFront Function copies
//!   `Host`, which API Gateway needs for itself), so links and token audiences name the
//!   distribution's domain, not the bypass;
//! * [`VIEWER_ADDRESS_HEADER`]: the client's IP address (the same function copies it:
//!   behind CloudFront, API Gateway's `sourceIp` is an edge server's), which sign-in
//!   throttles by ([`client_address`]).
//!
//! Both are trusted only on a request that also carried the secret; a client's own
//! values are overwritten at the edge.
//!
//! The secret rotates like the others: the guard accepts the current and the previous
//! version, so the stack update that gives CloudFront the new value (SECURITY.md) has
//! no window of refused requests.

use std::sync::RwLock;
use std::time::Instant;

use http::HeaderMap;
use secrets::{KeyRefresher, KeyRing, SecretSource, SourceError};

/// The environment variable naming the origin-verify secret; empty or unset turns the
/// guard off (no edge in front, or local runs).
pub const ORIGIN_VERIFY_SECRET_VAR: &str = "ORIGIN_VERIFY_SECRET_ARN";
/// The header CloudFront adds with the secret's value.
pub const ORIGIN_VERIFY_HEADER: &str = "x-origin-verify";
/// The header the edge's viewer-request function sets to the client's `Host`.
pub const FORWARDED_HOST_HEADER: &str = "x-forwarded-host";
/// The header the edge's viewer-request function sets to the client's IP address.
pub const VIEWER_ADDRESS_HEADER: &str = "x-viewer-address";

/// The client's IP address as the edge saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerAddress(pub String);

/// The caller's network address, never a header the caller sets: the edge's
/// [`ViewerAddress`] behind CloudFront, otherwise API Gateway's `sourceIp`.
pub fn client_address(request: &lambda_http::Request) -> Option<String> {
    use lambda_http::RequestExt;
    if let Some(ViewerAddress(address)) = request.extensions().get::<ViewerAddress>() {
        return Some(address.clone());
    }
    match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
            context.http.source_ip.clone()
        }
        _ => None,
    }
}

/// The public host of a request that came through the edge, for [`crate::BaseUrl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicHost(pub String);

/// Why a request is refused: it did not come through the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request did not come through the API's public address")]
pub struct NotThroughEdge;

/// Admits only requests that came through the edge, when an edge is configured.
pub struct EdgeGuard<S> {
    keys: Option<Keys<S>>,
}

struct Keys<S> {
    refresher: KeyRefresher<S>,
    ring: RwLock<KeyRing>,
}

impl<S: SecretSource> EdgeGuard<S> {
    /// No edge: every request is admitted and links use API Gateway's domain.
    pub fn off() -> Self {
        EdgeGuard { keys: None }
    }

    /// The guard for the secret `source` reads (none: [`EdgeGuard::off`]). Reads it
    /// once now, the cold start, and again every few minutes.
    pub async fn load(source: Option<S>) -> Result<Self, SourceError> {
        let Some(source) = source else {
            return Ok(EdgeGuard::off());
        };
        let (refresher, ring) = KeyRefresher::load(source, secrets::ring::DEFAULT_REFRESH).await?;
        Ok(EdgeGuard {
            keys: Some(Keys {
                refresher,
                ring: RwLock::new(ring),
            }),
        })
    }

    /// Admits `headers` or refuses them. An admitted request loses the secret header
    /// and, from the edge, gains its [`PublicHost`] in `extensions`.
    pub async fn admit(
        &self,
        headers: &mut HeaderMap,
        extensions: &mut http::Extensions,
    ) -> Result<(), NotThroughEdge> {
        let Some(keys) = &self.keys else {
            return Ok(());
        };
        if let Some(fresh) = keys.refresher.refresh_if_due(Instant::now()).await {
            *keys.ring.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        }
        let verdict = {
            let ring = keys.ring.read().unwrap_or_else(|e| e.into_inner());
            verdict(&ring, headers)
        };
        headers.remove(ORIGIN_VERIFY_HEADER);
        extensions.insert(verdict?);
        if let Some(address) = headers
            .get(VIEWER_ADDRESS_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<std::net::IpAddr>().ok())
        {
            extensions.insert(ViewerAddress(address.to_string()));
        }
        Ok(())
    }
}

/// The request's public host when its origin-verify header holds a key of `ring`.
fn verdict(ring: &KeyRing, headers: &HeaderMap) -> Result<PublicHost, NotThroughEdge> {
    let presented = headers
        .get(ORIGIN_VERIFY_HEADER)
        .and_then(|value| value.to_str().ok())
        .ok_or(NotThroughEdge)?;
    // Every key is compared (no early exit), each in constant time.
    let matches = ring
        .keys()
        .map(|key| {
            std::str::from_utf8(key.as_bytes())
                .is_ok_and(|key| secrets::constant_time_eq(key, presented))
        })
        .fold(false, |any, this| any | this);
    if !matches {
        return Err(NotThroughEdge);
    }
    headers
        .get(FORWARDED_HOST_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|host| is_host(host))
        .map(|host| PublicHost(host.to_ascii_lowercase()))
        .ok_or(NotThroughEdge)
}

/// A DNS name with an optional port: what CloudFront's `Host` can be, and nothing that
/// would change a URL's meaning when put after `https://`.
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets::KeyMaterial;

    struct Fixed(KeyRing);

    impl SecretSource for Fixed {
        async fn key_ring(&self) -> Result<KeyRing, SourceError> {
            Ok(self.0.clone())
        }
    }

    fn rotated_ring() -> KeyRing {
        KeyRing::new(
            KeyMaterial::new(b"new-secret".to_vec()),
            [KeyMaterial::new(b"old-secret".to_vec())],
        )
    }

    fn headers(secret: Option<&str>, host: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(secret) = secret {
            headers.insert(ORIGIN_VERIFY_HEADER, secret.parse().unwrap());
        }
        if let Some(host) = host {
            headers.insert(FORWARDED_HOST_HEADER, host.parse().unwrap());
        }
        headers
    }

    async fn admit(secret: Option<&str>, host: Option<&str>) -> Result<PublicHost, NotThroughEdge> {
        let guard = EdgeGuard::load(Some(Fixed(rotated_ring()))).await.unwrap();
        let mut headers = headers(secret, host);
        let mut extensions = http::Extensions::new();
        guard.admit(&mut headers, &mut extensions).await?;
        assert!(
            !headers.contains_key(ORIGIN_VERIFY_HEADER),
            "no handler ever sees the secret"
        );
        Ok(extensions.get::<PublicHost>().cloned().unwrap())
    }

    #[tokio::test]
    async fn a_request_from_the_edge_is_admitted_with_its_public_host() {
        assert_eq!(
            admit(Some("new-secret"), Some("D111.cloudfront.net")).await,
            Ok(PublicHost("d111.cloudfront.net".into()))
        );
    }

    #[tokio::test]
    async fn behind_the_edge_the_client_address_is_the_viewers_not_cloudfronts() {
        let guard = EdgeGuard::load(Some(Fixed(rotated_ring()))).await.unwrap();
        let mut from_edge = headers(Some("new-secret"), Some("fhir.plan.example"));
        from_edge.insert(VIEWER_ADDRESS_HEADER, "203.0.113.7".parse().unwrap());
        let mut extensions = http::Extensions::new();
        guard.admit(&mut from_edge, &mut extensions).await.unwrap();
        let mut request = lambda_http::Request::default();
        *request.extensions_mut() = extensions;
        assert_eq!(client_address(&request).as_deref(), Some("203.0.113.7"));

        let mut forged = headers(Some("new-secret"), Some("fhir.plan.example"));
        forged.insert(VIEWER_ADDRESS_HEADER, "not-an-address".parse().unwrap());
        let mut extensions = http::Extensions::new();
        guard.admit(&mut forged, &mut extensions).await.unwrap();
        assert!(extensions.get::<ViewerAddress>().is_none());
    }

    #[tokio::test]
    async fn the_previous_secret_still_opens_during_a_rotation() {
        assert!(
            admit(Some("old-secret"), Some("fhir.plan.example"))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_request_straight_to_api_gateway_is_refused() {
        assert_eq!(
            admit(None, Some("fhir.plan.example")).await,
            Err(NotThroughEdge)
        );
        assert_eq!(
            admit(Some("guess"), Some("fhir.plan.example")).await,
            Err(NotThroughEdge)
        );
    }

    #[tokio::test]
    async fn a_forwarded_host_that_is_not_a_host_is_refused() {
        for host in [
            "evil.example/path",
            "a@evil.example",
            "",
            "evil.example evil",
        ] {
            let host = (!host.is_empty()).then_some(host);
            assert_eq!(
                admit(Some("new-secret"), host).await,
                Err(NotThroughEdge),
                "{host:?}"
            );
        }
    }

    #[tokio::test]
    async fn without_an_edge_every_request_is_admitted_unchanged() {
        let guard = EdgeGuard::<Fixed>::load(None).await.unwrap();
        let mut headers = headers(None, Some("evil.example"));
        let mut extensions = http::Extensions::new();
        assert!(guard.admit(&mut headers, &mut extensions).await.is_ok());
        assert!(
            extensions.get::<PublicHost>().is_none(),
            "a client's x-forwarded-host is not trusted without the edge"
        );
    }
}
