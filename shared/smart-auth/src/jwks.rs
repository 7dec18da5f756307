//! Where the verifier gets the issuer's public keys.
//!
//! The source is fixed by configuration. Nothing in a token (`jku`, `x5u`, `jwk`) can
//! point the verifier somewhere else (member-auth.md §5.3 step 3, §8.A.6).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use tokio::sync::RwLock;

use crate::error::AuthError;

/// A boxed, sendable future, so [`JwksSource`] stays object-safe (`Arc<dyn JwksSource>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A provider of the issuer's JSON Web Key Set.
pub trait JwksSource: Send + Sync {
    /// Fetches the current key set. Failures are [`AuthError::KeysUnavailable`].
    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, AuthError>>;
}

/// An in-process key set, for the local runner and tests.
///
/// [`StaticJwks::replace`] lets the local runner (or a test) rotate keys at runtime.
#[derive(Debug, Clone, Default)]
pub struct StaticJwks {
    keys: Arc<RwLock<JwkSet>>,
}

impl StaticJwks {
    pub fn new(keys: JwkSet) -> StaticJwks {
        StaticJwks {
            keys: Arc::new(RwLock::new(keys)),
        }
    }

    /// Swaps the published key set; the verifier sees it on its next (re)fetch.
    pub async fn replace(&self, keys: JwkSet) {
        *self.keys.write().await = keys;
    }
}

impl JwksSource for StaticJwks {
    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, AuthError>> {
        Box::pin(async move { Ok(self.keys.read().await.clone()) })
    }
}

/// Fetches the key set over HTTPS from one pinned URL.
///
/// Short timeouts and a body cap keep a slow or hostile endpoint from stalling a Lambda
/// invocation or filling its memory. Redirects are not followed, so the URL really is
/// pinned. Plain `http` is accepted only for loopback hosts (a local authorization
/// server), where there is no network to intercept.
#[derive(Debug, Clone)]
pub struct HttpJwks {
    url: String,
    client: reqwest::Client,
}

impl HttpJwks {
    /// The largest key set body we read. Real sets are a few KB.
    pub const MAX_BODY_BYTES: usize = 64 * 1024;
    /// Whole-request timeout.
    pub const TIMEOUT: Duration = Duration::from_secs(3);

    pub fn new(url: impl Into<String>) -> Result<HttpJwks, AuthError> {
        let url = url.into();
        if !is_allowed_url(&url) {
            return Err(AuthError::KeysUnavailable(
                "JWKS URL must be https (or http on loopback)".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(Self::TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::KeysUnavailable(format!("HTTP client: {e}")))?;
        Ok(HttpJwks { url, client })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn fetch_set(&self) -> Result<JwkSet, AuthError> {
        let unavailable = |what: &str| AuthError::KeysUnavailable(what.to_owned());
        let mut response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|_| unavailable("request failed"))?;
        if !response.status().is_success() {
            return Err(AuthError::KeysUnavailable(format!(
                "status {}",
                response.status().as_u16()
            )));
        }
        if response
            .content_length()
            .is_some_and(|n| n > Self::MAX_BODY_BYTES as u64)
        {
            return Err(unavailable("body too large"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| unavailable("body read failed"))?
        {
            if body.len() + chunk.len() > Self::MAX_BODY_BYTES {
                return Err(unavailable("body too large"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|_| unavailable("body is not a JWK set"))
    }
}

impl JwksSource for HttpJwks {
    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, AuthError>> {
        Box::pin(self.fetch_set())
    }
}

fn is_allowed_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return url.len() > "https://".len();
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_urls() {
        assert!(HttpJwks::new("https://auth.example.org/.well-known/jwks.json").is_ok());
        assert!(HttpJwks::new("http://127.0.0.1:8080/.well-known/jwks.json").is_ok());
        assert!(HttpJwks::new("http://localhost/jwks").is_ok());
        assert!(HttpJwks::new("http://[::1]:9000/jwks").is_ok());
        for bad in [
            "http://auth.example.org/jwks",
            "http://localhost.evil.example/jwks",
            "http://127.0.0.1.evil.example/jwks",
            "http://evil.example/?x=localhost",
            "ftp://localhost/jwks",
            "https://",
            "file:///etc/passwd",
        ] {
            assert!(HttpJwks::new(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_keys_unavailable() {
        // Port 9 (discard) on loopback: connection refused, quickly.
        let jwks = HttpJwks::new("http://127.0.0.1:9/jwks").unwrap();
        let err = jwks.fetch().await.unwrap_err();
        assert!(err.is_server_fault());
    }

    /// Serves one canned HTTP response on loopback and returns the URL.
    async fn serve_once(status: &str, body: Vec<u8>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status = status.to_owned();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 2048];
            let _ = socket.read(&mut request).await;
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
            let _ = socket.shutdown().await;
        });
        format!("http://127.0.0.1:{}/.well-known/jwks.json", addr.port())
    }

    #[tokio::test]
    async fn fetches_and_parses_a_key_set_over_http() {
        let body = br#"{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"AQAB","e":"AQAB"}]}"#;
        let url = serve_once("200 OK", body.to_vec()).await;
        let set = HttpJwks::new(url).unwrap().fetch().await.unwrap();
        assert_eq!(set.keys.len(), 1);
        assert!(set.find("k1").is_some());
    }

    #[tokio::test]
    async fn oversized_error_and_garbage_responses_are_keys_unavailable() {
        let huge = format!(
            r#"{{"keys":[],"pad":"{}"}}"#,
            "x".repeat(HttpJwks::MAX_BODY_BYTES)
        );
        for (status, body) in [
            ("200 OK", huge.into_bytes()),
            ("500 Internal Server Error", br#"{"keys":[]}"#.to_vec()),
            ("302 Found", Vec::new()),
            ("200 OK", b"<html>not json</html>".to_vec()),
        ] {
            let url = serve_once(status, body).await;
            let err = HttpJwks::new(url).unwrap().fetch().await.unwrap_err();
            assert!(err.is_server_fault(), "{status}");
        }
    }

    #[tokio::test]
    async fn static_source_can_be_replaced() {
        let source = StaticJwks::default();
        assert!(source.fetch().await.unwrap().keys.is_empty());
        let set: JwkSet =
            serde_json::from_str(r#"{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"}]}"#)
                .unwrap();
        source.replace(set.clone()).await;
        assert_eq!(source.fetch().await.unwrap(), set);
    }
}
