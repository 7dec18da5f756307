//! Authorization core for the Patient Access API.
//!
//! Every FHIR handler (and later the authorization server) uses this crate to answer
//! three questions, in order:
//!
//! 1. **Who is calling?** [`TokenVerifier::verify`] turns an `Authorization: Bearer`
//!    header into a [`Principal`], or an [`AuthError`] that is always a `401`.
//! 2. **May they see this?** [`may_access`] applies the scope check and the explicit
//!    patient-compartment rule to one resource type and owner, answering
//!    [`Access::Allowed`], [`Access::NotFound`] (out of compartment, indistinguishable
//!    from missing) or [`Access::Forbidden`] (scope missing, `403`).
//! 3. **Is this paging link theirs?** [`CursorSealer`] seals and opens `next` cursors
//!    bound to app, member, type and query.
//!
//! [`LocalIssuer`] mints tokens for the local runner and tests with a key kept on disk.
//!
//! The crate knows nothing of Lambda, HTTP frameworks or the AWS SDK: inputs are
//! header strings, ids and clocks, outputs are plain values and typed errors. Nothing
//! here logs token contents or member data.

mod claims;
mod cursor;
mod error;
mod jwks;
mod local_issuer;
mod policy;
mod principal;
pub mod random;
mod scopes;
mod verify;

pub use claims::{AccessClaims, TOKEN_USE_ACCESS};
pub use cursor::{
    Cursor, CursorBinding, CursorError, CursorSealer, MAX_CURSOR_TOKEN_LEN, MIN_SECRET_LEN,
};
pub use error::AuthError;
pub use jwks::{BoxFuture, HttpJwks, JwksSource, StaticJwks};
pub use local_issuer::{
    IssuerError, KEY_FILE_NAME, LocalIssuer, TokenSigner, mint_with, sign_jwt_with,
};
pub use policy::{Access, may_access};
pub use principal::Principal;
pub use scopes::{Interaction, ScopeSet};
pub use verify::{MAX_AUTHORIZATION_HEADER_BYTES, MAX_LEEWAY, TokenVerifier, VerifierConfig};

/// Re-exported so callers can name key sets without depending on jsonwebtoken directly.
pub use jsonwebtoken::jwk::JwkSet;
