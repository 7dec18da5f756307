//! The other plan's API over HTTPS: the [`OtherPlan`] adapter.
//!
//! SMART Backend Services on the asking side: the token endpoint comes from the other
//! plan's `/.well-known/smart-configuration`; each run gets a token with a client
//! assertion signed by this plan's key ([`AssertionKey`]: RS384 or ES384, `kid` = the
//! RFC 7638 thumbprint of its public JWK, which is what the other plan registers from
//! [`AssertionKey::public_jwks`]). Then the calls of [`OtherPlan`]: `/metadata`; PDex's
//! bulk pair (kick-offs with `Prefer: respond-async` answering 202 and a
//! `Content-Location`, status URLs polled, output files streamed a chunk at a time);
//! or `$member-match` and `$everything`, following `next` links. The token goes only
//! to URLs under the other plan's base URL (a status URL, `next` link or file elsewhere
//! is refused as a bad answer; a redirect to another host, such as a presigned S3 URL,
//! drops it). Each call has a timeout; statuses map to [`RemoteError`] kinds so that
//! the exchange knows what to retry.

use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use std::future::Future;

use fhir_store::{KeyValueStore, ResourceStore};
use futures_util::StreamExt;

use crate::asking::{
    self, ByteStream, Capabilities, ExchangeError, ExchangeRequest, OtherPayer, OtherPlan, Poll,
    RemoteError,
};
use crate::bulk_asking::Pace;

/// Each HTTP call's limit (a file download's: between two chunks).
const TIMEOUT: Duration = Duration::from_secs(60);
/// One output file's download, at most.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Pages of `$everything` followed, at most (a bound against a looping `next`).
const MAX_PAGES: usize = 1000;
/// The system scopes asked for: what `$member-match`, `$bulk-member-match` and the
/// member's data need. The other plan checks the export's `_type`
/// ([`crate::bulk_asking::EXPORT_TYPES`]: Patient, Coverage, ExplanationOfBenefit)
/// against them, as it checks `$everything`'s types; no Provenance is asked for, so
/// none is in scope.
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
        // No overall timeout on the client: each JSON call sets [`TIMEOUT`], a download
        // [`DOWNLOAD_TIMEOUT`]; a stalled connection fails after [`TIMEOUT`] without data.
        let http = reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .read_timeout(TIMEOUT)
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
        let (status, _, text) = self.send(request).await?;
        match status {
            200..=299 => parse_json(&text),
            _ => Err(error_of(status, &text)),
        }
    }

    /// Sends `request` (JSON accepted, [`TIMEOUT`]): status, headers and body.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(u16, reqwest::header::HeaderMap, String), RemoteError> {
        let response = request
            .header("accept", "application/fhir+json, application/json")
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(unavailable)?;
        Ok((status, headers, text))
    }

    /// `url` if it is on the other plan's server (where the token may go).
    fn same_server<'u>(&self, url: &'u str, what: &str) -> Result<&'u str, RemoteError> {
        if url
            .strip_prefix(&self.base_url)
            .is_some_and(|rest| rest.starts_with('/'))
        {
            return Ok(url);
        }
        Err(RemoteError::BadAnswer(format!(
            "{what} is not on the other plan's server"
        )))
    }

    /// An asynchronous kick-off: 202 and the status URL in `Content-Location`.
    async fn kick_off(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<String, RemoteError> {
        let token = self.token().await?;
        let (status, headers, text) = self
            .send(request.bearer_auth(token).header("prefer", "respond-async"))
            .await?;
        if status != 202 {
            return Err(match status {
                200..=299 => RemoteError::BadAnswer(format!(
                    "{what} answered {status}, not 202 with a status URL"
                )),
                _ => error_of(status, &text),
            });
        }
        let location = headers
            .get(reqwest::header::CONTENT_LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RemoteError::BadAnswer(format!("{what} gave no Content-Location")))?;
        Ok(self.same_server(location, "the status URL")?.to_owned())
    }
}

fn unavailable(error: reqwest::Error) -> RemoteError {
    RemoteError::Unavailable(error.without_url().to_string())
}

fn parse_json(text: &str) -> Result<Value, RemoteError> {
    serde_json::from_str(text).map_err(|e| RemoteError::BadAnswer(format!("not JSON: {e}")))
}

/// An error status as the kind the exchange acts on.
fn error_of(status: u16, text: &str) -> RemoteError {
    let summary = diagnostics(text);
    match status {
        422 => RemoteError::NotMatched(summary),
        408 | 429 | 500..=599 => RemoteError::Unavailable(format!("{status}: {summary}")),
        _ => RemoteError::Refused {
            status,
            text: summary,
        },
    }
}

/// `Retry-After` in seconds (an HTTP date is taken as "soon").
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Whether a CapabilityStatement lists an operation, by name (`bulk-member-match`,
/// with or without `$`) or by its definition's canonical URL.
fn lists_operation(capability: &Value, name: &str) -> bool {
    let rests = capability.get("rest").and_then(Value::as_array);
    let mut operations = rests.into_iter().flatten().flat_map(|rest| {
        let system = rest.get("operation").and_then(Value::as_array);
        let typed = rest
            .get("resource")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("operation").and_then(Value::as_array));
        system.into_iter().chain(typed).flatten()
    });
    operations.any(|operation| {
        let named = operation
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.trim_start_matches('$') == name);
        let defined = operation
            .get("definition")
            .and_then(Value::as_str)
            .is_some_and(|d| d.trim_end_matches('/').ends_with(&format!("/{name}")));
        named || defined
    })
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
    async fn capabilities(&self) -> Result<Capabilities, RemoteError> {
        let (status, _, text) = self
            .send(self.http.get(format!("{}/metadata", self.base_url)))
            .await?;
        let capability = match status {
            200..=299 => parse_json(&text).unwrap_or(Value::Null),
            408 | 429 | 500..=599 => return Err(error_of(status, &text)),
            // No readable CapabilityStatement: the single-member operations.
            _ => Value::Null,
        };
        Ok(Capabilities {
            bulk: lists_operation(&capability, "bulk-member-match")
                && lists_operation(&capability, "davinci-data-export"),
        })
    }

    async fn bulk_member_match(&self, parameters: &Value) -> Result<String, RemoteError> {
        self.kick_off(
            self.http
                .post(format!("{}/Group/$bulk-member-match", self.base_url))
                .header("content-type", "application/fhir+json")
                .body(parameters.to_string()),
            "$bulk-member-match",
        )
        .await
    }

    async fn data_export(&self, group: &str, types: &str) -> Result<String, RemoteError> {
        if !fhir::is_valid_id(group) {
            return Err(RemoteError::BadAnswer("the matched Group's id".into()));
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("exportType", crate::bulk_asking::EXPORT_TYPE)
            .append_pair("_type", types)
            .finish();
        self.kick_off(
            self.http.get(format!(
                "{}/Group/{group}/$davinci-data-export?{query}",
                self.base_url
            )),
            "$davinci-data-export",
        )
        .await
    }

    async fn poll(&self, status_url: &str) -> Result<Poll, RemoteError> {
        let url = self.same_server(status_url, "the status URL")?;
        let token = self.token().await?;
        let (status, headers, text) = self.send(self.http.get(url).bearer_auth(token)).await?;
        match status {
            202 | 429 => Ok(Poll::Running {
                retry_after: retry_after(&headers),
            }),
            200 => parse_json(&text).map(Poll::Done),
            404 | 410 => Ok(Poll::Gone(format!("{status}: {}", diagnostics(&text)))),
            // Bulk Data: a job that failed answers an error with an OperationOutcome.
            500..=599 if text.contains("OperationOutcome") => {
                Ok(Poll::Gone(format!("{status}: {}", diagnostics(&text))))
            }
            _ => Err(error_of(status, &text)),
        }
    }

    async fn download<'a>(
        &'a self,
        url: &'a str,
        with_token: bool,
    ) -> Result<ByteStream<'a>, RemoteError> {
        let url = if with_token {
            self.same_server(url, "an output file that needs the token")?
        } else {
            url
        };
        let mut request = self
            .http
            .get(url)
            .header("accept", "application/fhir+ndjson")
            .timeout(DOWNLOAD_TIMEOUT);
        if with_token {
            request = request.bearer_auth(self.token().await?);
        }
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status().as_u16();
        if !(200..=299).contains(&status) {
            let text = response.text().await.unwrap_or_default();
            return Err(error_of(status, &text));
        }
        let chunks = futures_util::stream::unfold(Some(response), |response| async move {
            let mut response = response?;
            match response.chunk().await {
                Ok(Some(bytes)) => Some((Ok(bytes), Some(response))),
                Ok(None) => None,
                Err(error) => Some((Err(unavailable(error)), None)),
            }
        });
        Ok(Box::pin(chunks))
    }

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
/// it could not be read), waiting for the other plan at `pace`. Without a usable key
/// the request waits for its retry with the reason, like any failure on the way to the
/// other plan.
pub async fn run_request<S>(
    store: &S,
    payer: &OtherPayer,
    request: ExchangeRequest,
    key_pem: Result<String, String>,
    now: i64,
    pace: &Pace,
) -> Result<ExchangeRequest, ExchangeError>
where
    S: ResourceStore + KeyValueStore,
{
    let plan = key_pem
        .and_then(|pem| AssertionKey::from_pem(&pem).map_err(|e| e.to_string()))
        .and_then(|key| HttpOtherPlan::new(payer, key).map_err(|e| e.to_string()));
    match plan {
        Ok(plan) => asking::run_with(store, store, &plan, payer, request, now, pace).await,
        Err(reason) => {
            asking::run_with(store, store, &NoKey(reason), payer, request, now, pace).await
        }
    }
}

/// The scheduled run: up to `batch` requests due, `concurrency` at a time, each with
/// the key `key_for` reads for its payer (a file locally, Secrets Manager on AWS), and
/// each waiting for its other plan at `pace`. Returns the requests as they stand
/// afterwards.
pub async fn run_due<S, F, Fut>(
    store: &S,
    now: i64,
    batch: usize,
    concurrency: usize,
    key_for: F,
    pace: &Pace,
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
        run_request(store, &payer, request, key, now, pace).await
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
    async fn capabilities(&self) -> Result<Capabilities, RemoteError> {
        Err(RemoteError::Unavailable(format!(
            "this plan's key: {}",
            self.0
        )))
    }

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
    fn the_bulk_exchange_is_used_only_when_the_capability_statement_lists_both_operations() {
        let ours = json!({"resourceType": "CapabilityStatement", "rest": [{"mode": "server",
            "operation": [
                {"name": "member-match", "definition": "http://hl7.org/fhir/us/davinci-hrex/OperationDefinition/member-match"},
                {"name": "bulk-member-match", "definition": "http://hl7.org/fhir/us/davinci-pdex/OperationDefinition/bulk-member-match"},
                {"name": "davinci-data-export", "definition": "http://hl7.org/fhir/us/davinci-pdex/OperationDefinition/davinci-data-export"}]}]});
        assert!(lists_operation(&ours, "bulk-member-match"));
        assert!(lists_operation(&ours, "davinci-data-export"));
        let on_group = json!({"rest": [{"resource": [{"type": "Group", "operation": [
            {"name": "$davinci-data-export", "definition": "x"}]}]}]});
        assert!(lists_operation(&on_group, "davinci-data-export"));
        assert!(!lists_operation(&on_group, "bulk-member-match"));
        assert!(!lists_operation(&Value::Null, "bulk-member-match"));
    }

    #[test]
    fn an_error_answer_is_summarised_not_echoed() {
        let outcome = json!({"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "processing", "diagnostics": "No match"}]});
        assert_eq!(diagnostics(&outcome.to_string()), "No match");
        assert_eq!(diagnostics(&"x".repeat(1000)).len(), 200);
    }
}
