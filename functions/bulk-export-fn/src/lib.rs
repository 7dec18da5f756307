//! The Provider Access API on Lambda: the wiring of `bulk-api` ([`BulkApiFunction`])
//! and `bulk-worker` ([`BulkWorkerFunction`]), apart from their `main`s so that tests
//! drive them against moto with the real SDK.
//!
//! * **bulk-api** (API Gateway): every route for backend (system-token) clients.
//!   Payer-to-Payer's paths (`POST /Patient/$member-match`,
//!   `GET /Patient/{id}/$everything`, `/Group/{id}/$davinci-data-export`:
//!   `payer_to_payer::api::serves_path`) go to
//!   `payer_to_payer::api`, every other one to `bulk_export::api`, over the table
//!   (DynamoDB), the export bucket (S3) and the work queue (SQS). One function for
//!   both, because they are one audience (other systems with backend tokens), share
//!   the token verifier, the job records and the `/bulk-status` and `/bulk-files`
//!   routes, and so that a Group operation is never split between two functions by
//!   its name. Backend tokens are minted by our own authorization server, so the
//!   issuer and audience are the FHIR base URL and the keys are its
//!   `/.well-known/jwks.json`.
//! * **bulk-worker** (SQS, `ReportBatchItemFailures`): each message is one slice
//!   ([`bulk_export::WorkItem`]); the slices of a batch run concurrently, and a failed
//!   one is reported alone, so SQS redelivers only it. A slice that fails on its
//!   [`bulk_export::job::MAX_ATTEMPTS`]th delivery (the queue's `maxReceiveCount`) also
//!   marks its job failed, so the client's status poll ends; the message then goes to
//!   the dead-letter queue, whose alarm fires.
//!
//! Environment: `TABLE_NAME`, `EXPORT_BUCKET`, `WORK_QUEUE_URL` (both: the worker
//! queues the next page of an every-member slice),
//! `EXPORT_RETENTION_DAYS` (bulk-api, default 1; the bucket's lifecycle rule uses the
//! same parameter), `FHIR_BASE_URL` (optional, see `lambda_adapter::BaseUrl`),
//! `FAILED_MATCHES_PER_HOUR` (both, default 20) and [`SENSITIVE_CODES_SECRET_VAR`]
//! (bulk-api: the plan's sensitive-code list).

pub mod p2p;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use bulk_export::api::{BulkConfig, ProviderAccessApi};
use bulk_export::job::{self, MAX_ATTEMPTS};
use bulk_export::worker::JobRunner;
use bulk_export::{ExportFiles, WorkQueue};
use bulk_export_aws::{S3ExportFiles, SqsWorkQueue, decode_work_item};
use fhir_api::{ApiError, JsonFlavour, error_response};
use lambda_adapter::{BaseUrl, ConfigError, from_lambda, parsed, required, to_lambda};
use lambda_http::{Body, Request, Response};
use payer_to_payer::budget::FailureBudget;
use payer_to_payer::bulk_match::BulkMatchRunner;
use payer_to_payer::{MemberMatchApi, MemberMatchConfig, SensitivePolicy};
use secrets::SecretSource;
use smart_auth::{AuthError, HttpJwks, TokenVerifier, VerifierConfig};
use store_dynamodb::DynamoStore;

/// The bulk API on AWS.
pub type AwsBulkApi = ProviderAccessApi<DynamoStore>;
/// Payer-to-Payer's `$member-match` and `$everything` on AWS.
pub type AwsMemberMatchApi = MemberMatchApi<DynamoStore>;

/// Both handlers for one base URL, over one token verifier.
pub struct BackendApis {
    pub bulk: AwsBulkApi,
    pub payer_to_payer: AwsMemberMatchApi,
}

impl BackendApis {
    /// Both over `adapters` and `queue`, trusting `verifier`'s backend tokens.
    pub fn new(
        adapters: &Adapters,
        queue: Arc<dyn WorkQueue>,
        verifier: Arc<TokenVerifier>,
        base_url: &str,
        retention: Duration,
        rules: MemberMatchConfig,
    ) -> BackendApis {
        BackendApis {
            bulk: ProviderAccessApi::new(
                Arc::clone(&adapters.store),
                Arc::clone(&verifier),
                Arc::clone(&adapters.files),
                Arc::clone(&queue),
                BulkConfig {
                    base_url: base_url.to_owned(),
                    retention,
                },
            ),
            payer_to_payer: MemberMatchApi::new(
                Arc::clone(&adapters.store),
                verifier,
                queue,
                MemberMatchConfig {
                    base_url: base_url.to_owned(),
                    retention,
                    ..rules
                },
            ),
        }
    }

    /// Answers one request: Payer-to-Payer's paths there, the rest to the bulk API.
    pub async fn handle(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> http::Response<bytes::Bytes> {
        if payer_to_payer::api::serves_path(request.uri().path()) {
            self.payer_to_payer.handle(request).await
        } else {
            self.bulk.handle(request).await
        }
    }
}

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The plan's sensitive-code list could not be read or is not a list: the
    /// function refuses to start rather than share under another list.
    #[error("the sensitive-code list ({SENSITIVE_CODES_SECRET_VAR}): {0}")]
    SensitiveCodes(String),
}

/// The secret that holds the plan's sensitive-code list: `default` (the documented
/// list) until the plan puts its reviewed JSON there. A secret rather than an
/// environment variable because a list outgrows the 4 KB of a function's environment,
/// and because Secrets Manager keeps every version with who put it (CloudTrail), the
/// record a privacy officer wants of what was kept back when.
pub const SENSITIVE_CODES_SECRET_VAR: &str = "SENSITIVE_CODES_SECRET";

/// Each requesting plan's failed `$member-match`es an hour before 429
/// (`FailedMatchesPerHour`), for the API and for `$bulk-member-match` chunks alike.
fn failure_budget() -> Result<FailureBudget, ConfigError> {
    Ok(parsed::<i64>("FAILED_MATCHES_PER_HOUR")?
        .filter(|n| *n > 0)
        .map_or_else(FailureBudget::default, |per_hour| FailureBudget {
            per_hour,
        }))
}

/// Payer-to-Payer's answering rules at cold start: `budget`, and the sensitive-code
/// list in the secret `sensitive_codes_secret` (none: the default list, for stacks
/// deployed before the secret existed).
pub async fn member_match_rules(
    aws: &aws_config::SdkConfig,
    budget: FailureBudget,
    sensitive_codes_secret: Option<String>,
) -> Result<MemberMatchConfig, StartError> {
    let sensitive = match sensitive_codes_secret {
        None => SensitivePolicy::default(),
        Some(secret_id) => {
            let source = secrets_manager::SecretsManagerSource::new(
                aws_sdk_secretsmanager::Client::new(aws),
                secret_id,
            );
            let ring = source
                .key_ring()
                .await
                .map_err(|e| StartError::SensitiveCodes(e.to_string()))?;
            let text = String::from_utf8_lossy(ring.current().as_bytes()).into_owned();
            SensitivePolicy::configured(&text)
                .map_err(|e| StartError::SensitiveCodes(e.to_string()))?
        }
    };
    Ok(MemberMatchConfig::with_rules(budget.per_hour, sensitive))
}

/// The AWS clients both functions use, from one SDK configuration.
#[derive(Clone)]
pub struct Adapters {
    pub store: Arc<DynamoStore>,
    pub files: Arc<dyn ExportFiles>,
}

impl Adapters {
    pub fn new(aws: &aws_config::SdkConfig, table: String, bucket: String) -> Adapters {
        Adapters {
            store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), table)),
            files: Arc::new(S3ExportFiles::new(s3_objects::client_for(aws), bucket)),
        }
    }
}

/// `bulk-api`: one [`AwsBulkApi`] per base URL (more than one only without
/// `FHIR_BASE_URL`, when each API Gateway domain is its own issuer).
pub struct BulkApiFunction {
    base_url: BaseUrl,
    adapters: Adapters,
    queue: Arc<dyn WorkQueue>,
    retention: Duration,
    rules: MemberMatchConfig,
    apis: Mutex<HashMap<String, Arc<BackendApis>>>,
}

impl BulkApiFunction {
    /// The cold start: environment and SDK clients.
    pub async fn from_env() -> Result<Self, StartError> {
        let table = required("TABLE_NAME")?;
        let bucket = required("EXPORT_BUCKET")?;
        let queue_url = required("WORK_QUEUE_URL")?;
        let days: u64 = parsed("EXPORT_RETENTION_DAYS")?.unwrap_or(1);
        let aws = aws_config::load_from_env().await;
        let rules = member_match_rules(
            &aws,
            failure_budget()?,
            lambda_adapter::optional(SENSITIVE_CODES_SECRET_VAR),
        )
        .await?;
        Ok(BulkApiFunction::new(
            BaseUrl::from_env(),
            Adapters::new(&aws, table, bucket),
            Arc::new(SqsWorkQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url)),
            Duration::from_secs(days.max(1) * 86_400),
        )
        .with_rules(rules))
    }

    /// Payer-to-Payer's answering rules (the default ones otherwise).
    pub fn with_rules(mut self, rules: MemberMatchConfig) -> BulkApiFunction {
        self.rules = rules;
        self
    }

    pub fn new(
        base_url: BaseUrl,
        adapters: Adapters,
        queue: Arc<dyn WorkQueue>,
        retention: Duration,
    ) -> BulkApiFunction {
        BulkApiFunction {
            base_url,
            adapters,
            queue,
            retention,
            rules: MemberMatchConfig::default(),
            apis: Mutex::new(HashMap::new()),
        }
    }

    /// Answers one request; failures are OperationOutcomes, never a failed invocation.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let base_url = self.base_url.for_request(&request);
        match self.api_for(&base_url) {
            Ok(api) => to_lambda(api.handle(from_lambda(request)).await),
            Err(error) => to_lambda(error_response(
                &ApiError::Internal(error.to_string()),
                JsonFlavour::Fhir,
            )),
        }
    }

    fn api_for(&self, base_url: &str) -> Result<Arc<BackendApis>, AuthError> {
        let mut apis = self.apis.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(api) = apis.get(base_url) {
            return Ok(Arc::clone(api));
        }
        let jwks = HttpJwks::new(format!("{base_url}/.well-known/jwks.json"))?;
        let verifier = TokenVerifier::new(VerifierConfig::new(
            base_url.to_owned(),
            base_url.to_owned(),
            Arc::new(jwks),
        ));
        let api = Arc::new(BackendApis::new(
            &self.adapters,
            Arc::clone(&self.queue),
            Arc::new(verifier),
            base_url,
            self.retention,
            self.rules.clone(),
        ));
        apis.insert(base_url.to_owned(), Arc::clone(&api));
        Ok(api)
    }
}

/// `bulk-worker`: runs the slices SQS delivers.
pub struct BulkWorkerFunction {
    adapters: Adapters,
    /// Where a roster page queues the next page of its slice.
    queue: Arc<dyn WorkQueue>,
    /// Payer-to-Payer's `$bulk-member-match` chunks, which come on the same queue.
    matcher: BulkMatchRunner<DynamoStore>,
}

/// The worker never fails an invocation: each message's outcome is in the response.
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
pub enum WorkerError {}

impl From<WorkerError> for lambda_runtime::Diagnostic {
    fn from(error: WorkerError) -> Self {
        match error {}
    }
}

impl BulkWorkerFunction {
    /// The cold start: environment and SDK clients.
    pub async fn from_env() -> Result<Self, StartError> {
        let table = required("TABLE_NAME")?;
        let bucket = required("EXPORT_BUCKET")?;
        let queue_url = required("WORK_QUEUE_URL")?;
        let aws = aws_config::load_from_env().await;
        Ok(BulkWorkerFunction::new(
            Adapters::new(&aws, table, bucket),
            Arc::new(SqsWorkQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url)),
            failure_budget()?,
        ))
    }

    pub fn new(
        adapters: Adapters,
        queue: Arc<dyn WorkQueue>,
        budget: FailureBudget,
    ) -> BulkWorkerFunction {
        let matcher = BulkMatchRunner::new(Arc::clone(&adapters.store), budget);
        BulkWorkerFunction {
            adapters,
            queue,
            matcher,
        }
    }

    /// Runs every slice of the batch concurrently; the ones that failed are the
    /// response's `batchItemFailures`, so SQS deletes the rest and redelivers them.
    pub async fn handle(&self, event: SqsEvent) -> Result<SqsBatchResponse, WorkerError> {
        let outcomes =
            futures_util::future::join_all(event.records.iter().map(|m| self.run(m))).await;
        let mut response = SqsBatchResponse::default();
        for (message, ok) in event.records.iter().zip(outcomes) {
            if !ok {
                response.add_failure(message.message_id.clone().unwrap_or_default());
            }
        }
        Ok(response)
    }

    /// Whether the message is done with (deleted from the queue).
    async fn run(&self, message: &SqsMessage) -> bool {
        let message_id = message.message_id.as_deref().unwrap_or_default();
        let item = match decode_work_item(message.body.as_deref().unwrap_or_default()) {
            Ok(item) => item,
            Err(error) => {
                // Not ours to drop silently: after its retries it rests in the
                // dead-letter queue, whose alarm shows it.
                tracing::error!(message_id, error = %error, "not a work item");
                return false;
            }
        };
        let store = self.adapters.store.as_ref();
        let files = self.adapters.files.as_ref();
        let matcher: &dyn JobRunner = &self.matcher;
        match bulk_export::worker::run_item(store, files, self.queue.as_ref(), Some(matcher), &item)
            .await
        {
            Ok(timing) => {
                tracing::info!(job_id = %item.job_id, slice = item.slice, resources = timing.resources, bytes = timing.bytes, "export slice done");
                true
            }
            Err(error) => {
                let attempt = receive_count(message);
                tracing::warn!(job_id = %item.job_id, slice = item.slice, attempt, error = %error, "export slice failed");
                if attempt >= MAX_ATTEMPTS
                    && let Err(error) = job::fail(store, &item.job_id, job::SLICE_FAILED).await
                {
                    tracing::warn!(job_id = %item.job_id, error = %error, "could not mark the export failed");
                }
                false
            }
        }
    }
}

/// SQS's `ApproximateReceiveCount`: this delivery's number, 1 for the first.
fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patient_export_route_reaches_the_bulk_api_with_its_literal_path() {
        // events/patient-export-kickoff.json is what API Gateway sends for the literal
        // route `GET /Patient/$export` (template.yaml, BulkApiFunction).
        let event = include_str!("../../../events/patient-export-kickoff.json");
        let request = lambda_http::request::from_str(event).expect("a valid API Gateway v2 event");
        let request = from_lambda(request);
        assert_eq!(request.uri().path(), "/Patient/$export");
        assert!(bulk_export::api::serves_path(request.uri().path()));
        assert!(!payer_to_payer::api::serves_path(request.uri().path()));
    }
}
