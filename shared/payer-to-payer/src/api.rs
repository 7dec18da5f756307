//! `POST /Patient/$member-match` (HRex 1.x, type level) over plain `http` types.
//!
//! In order, each step answering before the next runs:
//! 1. a backend token (`token_use` = `system`), else 401;
//! 2. a client registered as a payer (`apps register --backend --payer`), else 403;
//! 3. the client's failed-match budget ([`crate::budget`]), else 429 + `Retry-After`;
//! 4. a `Parameters` body with one `MemberPatient`, one `CoverageToMatch`, one
//!    `Consent` (and optionally `CoverageToLink`), else 400;
//! 5. the Consent ([`crate::consent`]), else 422 naming what is wrong with it;
//! 6. the match rule ([`crate::matching`]) and the member's Payer-to-Payer opt-in:
//!    no match, several matches, or not opted in all answer the **same** 422 text,
//!    so an answer never tells whether someone is a member.
//!
//! Every failure from step 5 on counts against the client's budget. Each call is
//! audited with the client, token id, outcome and status, never member data.
//!
//! A match also lets the same client read that member with
//! `GET /Patient/{id}/$everything` ([`crate::everything`]) for a week, within the
//! consent's policy, while the member stays opted in.

use std::sync::Arc;

use bytes::Bytes;
use fhir_api::{ApiError, JsonFlavour, error_response};
use fhir_store::{KeyValueStore, ResourceStore};
use http::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use smart_auth::TokenVerifier;

use backend_auth::{SystemPrincipal, verify_system};

use crate::budget::FailureBudget;
use crate::consent::{self, ConsentPolicy};
use crate::matching::{self, InputError, MatchOutcome, MatchRequest};
use crate::sensitive::SensitivePolicy;

pub const MEMBER_MATCH_PATH: &str = "/Patient/$member-match";

/// The one answer for no match, several matches and a member who has not opted in.
pub const NO_UNIQUE_MEMBER: &str = "no unique member could be matched, with a consent this plan can honour, from the demographics, coverage and consent given";

/// Whether the path is ours (the local runner routes on this).
pub fn serves_path(path: &str) -> bool {
    path == MEMBER_MATCH_PATH || crate::everything::patient_of(path).is_some()
}

/// Settings.
#[derive(Debug, Clone, Default)]
pub struct MemberMatchConfig {
    pub budget: FailureBudget,
    /// What a `#sensitive` consent keeps back.
    pub sensitive: SensitivePolicy,
    /// The FHIR base URL (no trailing slash), for `fullUrl`s.
    pub base_url: String,
}

/// The handler over the store and the backend-token verifier.
pub struct MemberMatchApi<S> {
    store: Arc<S>,
    verifier: Arc<TokenVerifier>,
    config: MemberMatchConfig,
}

/// How a call ended, for the audit log and the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Matched,
    Refused(&'static str),
}

impl<S: ResourceStore + KeyValueStore + 'static> MemberMatchApi<S> {
    pub fn new(store: Arc<S>, verifier: Arc<TokenVerifier>, config: MemberMatchConfig) -> Self {
        MemberMatchApi {
            store,
            verifier,
            config,
        }
    }

    /// Answers one request; never fails (errors are OperationOutcomes).
    pub async fn handle(&self, request: Request<Bytes>) -> Response<Bytes> {
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let who = match verify_system(&self.verifier, header).await {
            Ok(p) => p,
            Err(error) => {
                tracing::info!(target: "audit", reason = %error, event = "member_match.token_rejected", "backend token rejected");
                return error_response(
                    &ApiError::Unauthorized {
                        www_authenticate: error.www_authenticate(),
                    },
                    JsonFlavour::Fhir,
                );
            }
        };
        if let Some(patient_id) = crate::everything::patient_of(request.uri().path()) {
            let result = self.everything(&who, &request, patient_id).await;
            let status = match &result {
                Ok(r) => r.status().as_u16(),
                Err(e) => e.status().as_u16(),
            };
            tracing::info!(target: "audit", client_id = %who.client_id, token_id = %who.token_id, status, event = "member_match.everything", "payer-to-payer everything");
            return result.unwrap_or_else(|error| error_response(&error, JsonFlavour::Fhir));
        }
        let (result, outcome) = self.answer(&who, &request).await;
        let status = match &result {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.status().as_u16(),
        };
        let outcome = match outcome {
            Some(Outcome::Matched) => "matched",
            Some(Outcome::Refused(why)) => why,
            None => "not-attempted",
        };
        tracing::info!(target: "audit", client_id = %who.client_id, token_id = %who.token_id, outcome, status, event = "member_match.request", "member match");
        result.unwrap_or_else(|error| error_response(&error, JsonFlavour::Fhir))
    }

    async fn answer(
        &self,
        who: &SystemPrincipal,
        request: &Request<Bytes>,
    ) -> (Result<Response<Bytes>, ApiError>, Option<Outcome>) {
        if request.method() != Method::POST {
            let error = ApiError::MethodNotAllowed {
                method: request.method().to_string(),
                allow: "POST",
            };
            return (Err(error), None);
        }
        if !who.payer {
            let error = ApiError::Forbidden(
                "only another health plan's system registered as a payer may call $member-match"
                    .into(),
            );
            return (Err(error), None);
        }
        let now = fhir::clock::unix_now();
        match self
            .config
            .budget
            .exhausted(self.store.as_ref(), &who.client_id, now)
            .await
        {
            Ok(None) => {}
            Ok(Some(retry_after_secs)) => {
                let error = ApiError::TooManyRequests {
                    message:
                        "too many unsuccessful member matches from this client; try again later"
                            .into(),
                    retry_after_secs,
                };
                return (Err(error), Some(Outcome::Refused("throttled")));
            }
            Err(e) => return (Err(e.into()), None),
        }
        let parsed = match parse(request.body()) {
            Ok(parsed) => parsed,
            Err(e) => return (Err(ApiError::BadRequest(e.to_string())), None),
        };
        let result = self.decide(&parsed, now).await;
        let outcome = match &result {
            Ok(_) => Outcome::Matched,
            Err(Refusal::Consent(_)) => Outcome::Refused("consent"),
            Err(Refusal::NoUniqueMember(why)) => Outcome::Refused(why),
            Err(Refusal::Store(e)) => return (Err(ApiError::Internal(e.clone())), None),
        };
        if let Outcome::Refused(_) = outcome
            && let Err(e) = self
                .config
                .budget
                .record_failure(self.store.as_ref(), &who.client_id, now)
                .await
        {
            return (Err(e.into()), Some(outcome));
        }
        if let Ok((patient_id, _, policy)) = &result
            && let Err(e) = crate::everything::record_link(
                self.store.as_ref(),
                &who.client_id,
                patient_id,
                *policy,
                now,
            )
            .await
        {
            return (Err(e.into()), Some(outcome));
        }
        let response = match result {
            Ok((patient_id, member_identifier, policy)) => {
                tracing::info!(target: "audit", client_id = %who.client_id, policy = policy.code(), event = "member_match.matched", "member matched");
                Ok(parameters_response(&patient_id, member_identifier))
            }
            Err(Refusal::Consent(why)) => Err(ApiError::Unprocessable(format!(
                "the consent cannot be honoured: {why}"
            ))),
            Err(_) => Err(ApiError::Unprocessable(NO_UNIQUE_MEMBER.into())),
        };
        (response, Some(outcome))
    }

    /// `GET /Patient/{id}/$everything`: 404 unless this client matched the member
    /// and the member is still opted in.
    async fn everything(
        &self,
        who: &SystemPrincipal,
        request: &Request<Bytes>,
        patient_id: &str,
    ) -> Result<Response<Bytes>, ApiError> {
        if request.method() != Method::GET {
            return Err(ApiError::MethodNotAllowed {
                method: request.method().to_string(),
                allow: "GET",
            });
        }
        if !who.payer {
            return Err(ApiError::Forbidden(
                "only another health plan's system registered as a payer may call $everything"
                    .into(),
            ));
        }
        let unknown = || ApiError::NotFound(format!("Patient/{patient_id}"));
        let policy = crate::everything::link(self.store.as_ref(), &who.client_id, patient_id)
            .await?
            .ok_or_else(unknown)?;
        let opted_in = member_consent::payer_to_payer::is_opted_in(self.store.as_ref(), patient_id)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        if !opted_in {
            return Err(unknown());
        }
        let bundle = crate::everything::bundle(
            self.store.as_ref(),
            patient_id,
            policy,
            &self.config.sensitive,
            self.config.base_url.trim_end_matches('/'),
            fhir::clock::unix_now(),
        )
        .await?;
        Ok(fhir_response(&bundle))
    }

    async fn decide(
        &self,
        parsed: &Parsed,
        now: i64,
    ) -> Result<(String, Value, ConsentPolicy), Refusal> {
        let policy = consent::check(
            &parsed.consent,
            parsed.member_patient_id.as_deref(),
            now.saturating_mul(1000),
        )
        .map_err(Refusal::Consent)?;
        let found = matching::find(self.store.as_ref(), &parsed.request)
            .await
            .map_err(|e| Refusal::Store(e.to_string()))?;
        let (patient_id, member_identifier) = match found {
            MatchOutcome::Unique {
                patient_id,
                member_identifier,
            } => (patient_id, member_identifier),
            MatchOutcome::NoMatch => return Err(Refusal::NoUniqueMember("no-match")),
            MatchOutcome::Several => return Err(Refusal::NoUniqueMember("several")),
        };
        let opted_in =
            member_consent::payer_to_payer::is_opted_in(self.store.as_ref(), &patient_id)
                .await
                .map_err(|e| Refusal::Store(e.to_string()))?;
        if !opted_in {
            return Err(Refusal::NoUniqueMember("not-opted-in"));
        }
        Ok((patient_id, member_identifier, policy))
    }
}

enum Refusal {
    Consent(consent::ConsentRefusal),
    /// The audit reason; the requester sees [`NO_UNIQUE_MEMBER`] whatever it is.
    NoUniqueMember(&'static str),
    Store(String),
}

/// The request's parameters.
struct Parsed {
    request: MatchRequest,
    consent: Value,
    member_patient_id: Option<String>,
}

fn parse(body: &[u8]) -> Result<Parsed, InputError> {
    let parameters: Value = serde_json::from_slice(body).map_err(|_| InputError::NotParameters)?;
    if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(InputError::NotParameters);
    }
    let list = parameters
        .get("parameter")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let one = |name: &'static str, required: bool| -> Result<Option<&Value>, InputError> {
        let mut found = list
            .iter()
            .filter(|p| p.get("name").and_then(Value::as_str) == Some(name));
        match (found.next(), found.next()) {
            (Some(p), None) => p.get("resource").map(Some).ok_or(InputError::Missing(name)),
            (None, _) if !required => Ok(None),
            _ => Err(InputError::Missing(name)),
        }
    };
    let patient = one("MemberPatient", true)?.ok_or(InputError::Missing("MemberPatient"))?;
    let coverage = one("CoverageToMatch", true)?.ok_or(InputError::Missing("CoverageToMatch"))?;
    let consent = one("Consent", true)?.ok_or(InputError::Missing("Consent"))?;
    // Accepted and checked for shape only: this plan does not keep the requester's
    // coverage yet.
    let _link = one("CoverageToLink", false)?;
    let kinds = [
        (patient, "Patient"),
        (coverage, "Coverage"),
        (consent, "Consent"),
    ];
    if kinds
        .iter()
        .any(|(r, kind)| r.get("resourceType").and_then(Value::as_str) != Some(*kind))
    {
        return Err(InputError::Invalid(
            "MemberPatient, CoverageToMatch and Consent must be a Patient, a Coverage and a Consent",
        ));
    }
    Ok(Parsed {
        request: MatchRequest::new(patient, coverage)?,
        consent: consent.clone(),
        member_patient_id: patient.get("id").and_then(Value::as_str).map(str::to_owned),
    })
}

/// HRex's answer: `MemberIdentifier` and `MemberId`.
fn parameters_response(patient_id: &str, member_identifier: Value) -> Response<Bytes> {
    fhir_response(&json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "MemberIdentifier", "valueIdentifier": member_identifier},
            {"name": "MemberId", "valueReference": {"reference": format!("Patient/{patient_id}")}}
        ]
    }))
}

/// A 200 FHIR JSON answer that no cache keeps.
fn fhir_response(body: &Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(JsonFlavour::Fhir.content_type()),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}
