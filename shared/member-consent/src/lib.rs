//! A member's grants to third-party apps, stored as FHIR `Consent` resources.
//!
//! One grant is one `Consent` in the member's compartment, `Consent.id` = the grant id.
//! Its lifecycle is:
//!
//! ```text
//!  create_pending ──▶ proposed ──activate──▶ active ──revoke──▶ inactive
//!  record_rejected ─▶ rejected                  └──(expiry)──▶ no longer usable
//! ```
//!
//! Who calls what:
//! - the authorization server: [`grants::create_pending`] when the member approves on
//!   the consent page, [`grants::record_rejected`] when they deny, [`grants::revoke`]
//!   from `/revoke`, the connected-apps page, refresh-token reuse and app disabling;
//! - the Cognito Verify trigger (consent challenge): [`grants::activate`], which checks
//!   that the grant belongs to this member and app and is still pending;
//! - Pre Token Generation and `/token`: [`grants::active_for`];
//! - the FHIR handlers: [`grants::is_active`] on every request (they cache the answer
//!   for at most 60 s).
//!
//! Storing grants as FHIR resources means the member reads their own consent records
//! through the ordinary FHIR API (`GET /Consent?patient=…` with `patient/Consent.rs`),
//! and every state change is a new version, so the version history is the audit trail
//! of the grant. Nothing here logs member data.

pub mod grants;
pub mod member_setting;
pub mod payer_to_payer;
pub mod provider_access;

pub use grants::{Grant, GrantError, GrantStatus, NewGrant};
pub use member_setting::{ChangedBy, Sharing};
