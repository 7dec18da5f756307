//! The other plan's API over HTTPS: the [`OtherPlan`] adapter.
//!
//! SMART Backend Services on the asking side: the token endpoint comes from the other
//! plan's `/.well-known/smart-configuration`; each run gets a token with a client
//! assertion signed by this plan's key ([`AssertionKey`]: RS384 or ES384, `kid` = the
//! RFC 7638 thumbprint of its public JWK, which is what the other plan registers from
//! [`AssertionKey::public_jwks`]). Then `$member-match` and `$everything`, following
//! `next` links. Each call has a timeout; statuses map to [`RemoteError`] kinds so that
//! the exchange knows what to retry.

use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use std::future::Future;

use fhir_store::{KeyValueStore, ResourceStore};
use futures_util::StreamExt;

use crate::asking::{self, ExchangeError, ExchangeRequest, OtherPayer, OtherPlan, RemoteError};

/// Each HTTP call's limit.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Pages of `$everything` followed, at most (a bound against a looping `next`).
const MAX_PAGES: usize = 1000;
/// The system scopes asked for: what `$member-match` and the member's data need.
const SCOPES: &str = "system/Patient.rs system/Coverage.rs system/ExplanationOfBenefit.rs \
                      system/Organization.rs system/Practitioner.rs";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// This plan's private key for client assertions at another plan.
pub struct AssertionKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    public: Jwk,
}

/// The key file is not an RSA or EC private key in PEM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RSA or P-384 private key in PEM: {0}")]
pub struct KeyError(String);

impl AssertionKey {
    /// An RSA (RS384) or P-384 (ES384) private key in PEM.
    pub fn from_pem(pem: &str) -> Result<AssertionKey, KeyError> {
        let (alg, key) = match EncodingKey::from_rsa_pem(pem.as_bytes()) {
            Ok(key) => (Algorithm::RS384, key),
            Err(_) => (
                Algorithm::ES384,
                EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| KeyError(e.to_string()))?,
            ),
        };
        let mut public = Jwk::from_encoding_key(&key, alg).map_err(|e| KeyError(e.to_string()))?;
        let kid = public
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| KeyError(e.to_string()))?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(AssertionKey {
            kid,
            alg,
            key,
            public,
        })
    }

    /// The public key set to register at the other plan.
    pub fn public_jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public.clone()],
        }
    }

    fn assertion(&self, client_id: &str, token_endpoint: &str) -> Result<String, RemoteError> {
        let now = fhir::clock::unix_now();
        let claims = json!({"iss": client_id, "sub": client_id, "aud": token_endpoint,
                            "iat": now, "exp": now + 300,
                            "jti": secrets::random_b64(16).map_err(|e| RemoteError::Unavailable(e.to_string()))?});
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| RemoteError::Unavailable(format!("signing the assertion: {e}")))
    }
}

/// Another plan's API, for one run (one token).
pub struct HttpOtherPlan {
    http: reqwest::Client,
    base_url: String,
    client_id: String,
    key: AssertionKey,
    token: tokio::sync::OnceCell<String>,
}

impl HttpOtherPlan {
    pub fn new(payer: &OtherPayer, key: AssertionKey) -> Result<HttpOtherPlan, RemoteError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| RemoteError::Unavailable(e.to_string()))?;
        Ok(HttpOtherPlan {
            http,
            base_url: payer.base_url.clone(),
            client_id: payer.client_id.clone(),
            key,
            token: tokio::sync::OnceCell::new(),
        })
    }

    async fn token(&self) -> Result<&str, RemoteError> {
        self.token
            .get_or_try_init(|| async {
                let discovery = self
                    .json(
                        self.http
                            .get(format!("{}/.well-known/smart-configuration", self.base_url)),
                    )
                    .await?;
                let endpoint = discovery
                    .get("token_endpoint")
                    .and_then(Value::as_str)
                    .ok_or_else(|| RemoteError::BadAnswer("no token_endpoint".into()))?
                    .to_owned();
                let assertion = self.key.assertion(&self.client_id, &endpoint)?;
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", assertion.as_str()),
                    ("scope", SCOPES),
                ];
                let body = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish();
                let answer = self
                    .json(
                        self.http
                            .post(&endpoint)
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(body),
                    )
                    .await?;
                answer
                    .get("access_token")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| RemoteError::BadAnswer("no access_token".into()))
            })
            .await
            .map(String::as_str)
    }

    /// Sends `request` and reads a JSON answer, mapping statuses to error kinds.
    async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, RemoteError> {
        let response = request
            .header("accept", "application/fhir+json, application/json")
            .send()
            .await
            .map_err(|e| RemoteError::Unavailable(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| RemoteError::Unavailable(e.without_url().to_string()))?;
        let summary = || diagnostics(&text);
        match status {
            200..=299 => serde_json::from_str(&text)
                .map_err(|e| RemoteError::BadAnswer(format!("not JSON: {e}"))),
            422 => Err(RemoteError::NotMatched(summary())),
            408 | 429 | 500..=599 => {
                Err(RemoteError::Unavailable(format!("{status}: {}", summary())))
            }
            _ => Err(RemoteError::Refused {
                status,
                text: summary(),
            }),
        }
    }
}

/// An OperationOutcome's first diagnostics, or the start of a plain body: enough for an
/// operator, never the whole body (which could echo what was sent).
fn diagnostics(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.pointer("/issue/0/diagnostics")
                .or_else(|| v.get("error_description"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| text.chars().take(200).collect())
}

impl OtherPlan for HttpOtherPlan {
    async fn member_match(&self, parameters: &Value) -> Result<String, RemoteError> {
        let token = self.token().await?;
        let answer = self
            .json(
                self.http
                    .post(format!("{}/Patient/$member-match", self.base_url))
                    .bearer_auth(token)
                    .header("content-type", "application/fhir+json")
                    .body(parameters.to_string()),
            )
            .await?;
        member_id(&answer)
    }

    async fn everything(&self, patient_id: &str) -> Result<Vec<Value>, RemoteError> {
        let token = self.token().await?;
        let mut url = format!("{}/Patient/{patient_id}/$everything", self.base_url);
        let mut resources = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.json(self.http.get(&url).bearer_auth(token)).await?;
            if page.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
                return Err(RemoteError::BadAnswer("$everything gave no Bundle".into()));
            }
            resources.extend(
                page.get("entry")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|entry| entry.get("resource").cloned()),
            );
            match next_link(&page) {
                // Only pages on the same server: a `next` elsewhere would send the token there.
                Some(next) if next.starts_with(&self.base_url) => url = next,
                Some(_) => {
                    return Err(RemoteError::BadAnswer(
                        "a next link to another server".into(),
                    ));
                }
                None => return Ok(resources),
            }
        }
        Err(RemoteError::BadAnswer(format!(
            "more than {MAX_PAGES} pages"
        )))
    }
}

/// One try of `request` with this plan's key for `payer` (`key_pem`: the PEM, or why
/// it could not be read). Without a usable key the request waits for its retry with
/// the reason, like any failure on the way to the other plan.
pub async fn run_request<S>(
    store: &S,
    payer: &OtherPayer,
    request: ExchangeRequest,
    key_pem: Result<String, String>,
    now: i64,
) -> Result<ExchangeRequest, ExchangeError>
where
    S: ResourceStore + KeyValueStore,
{
    let plan = key_pem
        .and_then(|pem| AssertionKey::from_pem(&pem).map_err(|e| e.to_string()))
        .and_then(|key| HttpOtherPlan::new(payer, key).map_err(|e| e.to_string()));
    match plan {
        Ok(plan) => asking::run(store, store, &plan, payer, request, now).await,
        Err(reason) => asking::run(store, store, &NoKey(reason), payer, request, now).await,
    }
}

/// The scheduled run: up to `batch` requests due, `concurrency` at a time, each with
/// the key `key_for` reads for its payer (a file locally, Secrets Manager on AWS).
/// Returns the requests as they stand afterwards.
pub async fn run_due<S, F, Fut>(
    store: &S,
    now: i64,
    batch: usize,
    concurrency: usize,
    key_for: F,
) -> Result<Vec<ExchangeRequest>, ExchangeError>
where
    S: ResourceStore + KeyValueStore,
    F: Fn(&OtherPayer) -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let due = asking::due(store, now, batch).await?;
    let key_for = &key_for;
    let runs = futures_util::stream::iter(due).map(|request| async move {
        let Some(payer) = asking::payer(store, &request.payer).await? else {
            tracing::warn!(payer = %request.payer, "payer-to-payer: the payer was removed");
            return Ok(request);
        };
        let key = key_for(&payer).await;
        run_request(store, &payer, request, key, now).await
    });
    runs.buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The other plan as seen without a usable key of ours: every call is unavailable.
struct NoKey(String);

impl OtherPlan for NoKey {
    async fn member_match(&self, _: &Value) -> Result<String, RemoteError> {
        Err(RemoteError::Unavailable(format!(
            "this plan's key: {}",
            self.0
        )))
    }

    async fn everything(&self, _: &str) -> Result<Vec<Value>, RemoteError> {
        Err(RemoteError::Unavailable(format!(
            "this plan's key: {}",
            self.0
        )))
    }
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle
        .get("link")?
        .as_array()?
        .iter()
        .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))?
        .get("url")?
        .as_str()
        .map(str::to_owned)
}

/// The other plan's Patient id from HRex's answer: `MemberId`'s reference.
fn member_id(answer: &Value) -> Result<String, RemoteError> {
    answer
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("name").and_then(Value::as_str) == Some("MemberId"))
        .and_then(|p| p.pointer("/valueReference/reference"))
        .and_then(Value::as_str)
        .and_then(fhir::Reference::parse)
        .filter(|r| r.resource_type == fhir::ResourceType::Patient)
        .map(|r| r.id)
        .ok_or_else(|| {
            RemoteError::BadAnswer("the match gave no MemberId (a Patient reference)".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_id_is_read_from_hrex_parameters() {
        let answer = json!({"resourceType": "Parameters", "parameter": [
            {"name": "MemberIdentifier", "valueIdentifier": {"value": "MB-1"}},
            {"name": "MemberId", "valueReference": {"reference": "Patient/old-9"}}]});
        assert_eq!(member_id(&answer), Ok("old-9".into()));
        let without = json!({"resourceType": "Parameters", "parameter": [
            {"name": "MemberIdentifier", "valueIdentifier": {"value": "MB-1"}}]});
        assert!(matches!(
            member_id(&without),
            Err(RemoteError::BadAnswer(_))
        ));
    }

    #[test]
    fn an_error_answer_is_summarised_not_echoed() {
        let outcome = json!({"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "processing", "diagnostics": "No match"}]});
        assert_eq!(diagnostics(&outcome.to_string()), "No match");
        assert_eq!(diagnostics(&"x".repeat(1000)).len(), 200);
    }
}
