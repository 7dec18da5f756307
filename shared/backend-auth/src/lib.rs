//! SMART Backend Services (SMART App Launch 2.x, `client-confidential-asymmetric`).
//!
//! A provider organisation's (or another plan's) system registers once with its public
//! keys ([`clients`]), then gets short-lived access tokens with a signed JWT instead of
//! a secret ([`grant::client_credentials`]):
//!
//! 1. the assertion's header is checked before any key is looked up: RS384 or ES384
//!    only (so `none` and HS256-with-the-public-key cannot get through), a `kid`, and
//!    no header that points at other keys (`jku`, `x5u`, `jwk`, `x5c`, `crit`);
//! 2. `iss` = `sub` = a registered, enabled backend client;
//! 3. the key comes from that client's own JWKS, inline or from its `jwks_uri`, cached
//!    with a bounded refetch on an unknown `kid` ([`keys::ClientKeyCache`]);
//! 4. `aud` = our token endpoint, `exp` at most five minutes ahead, and the `jti` never
//!    seen before while the assertion lives (kept in the key-value store until `exp`,
//!    by an atomic insert-if-absent);
//! 5. the requested `system/` scopes lie within the registration ([`scopes`]).
//!
//! The token ([`token::SystemClaims`]) carries `token_use` = `system`, so the member
//! API's verifier (which requires `access`) refuses it, and [`token::verify_system`]
//! refuses member tokens. The crate knows nothing of HTTP frameworks, Lambda or AWS.

pub mod clients;
mod error;
pub mod grant;
pub mod keys;
pub mod scopes;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;

pub use clients::{BackendClient, NewBackendClient};
pub use error::BackendAuthError;
pub use grant::{GrantRequest, TokenResponse, client_credentials};
pub use keys::{ClientKeyCache, HttpKeyFetcher, KeyFetcher};
pub use scopes::SystemScopes;
pub use token::{SystemClaims, SystemPrincipal, TOKEN_USE_SYSTEM, verify_system};

/// The signing algorithms we accept on client assertions (SMART Backend Services:
/// servers SHALL support RS384 and ES384).
pub const ASSERTION_ALGORITHMS: &[&str] = &["RS384", "ES384"];
/// The `client_assertion_type` of a JWT bearer assertion (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest an assertion may live from now: SMART says `exp` no more than five
/// minutes in the future.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: i64 = 30;
