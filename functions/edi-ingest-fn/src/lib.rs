//! The EDI bucket's Lambda functions, apart from `main` so that tests drive them
//! with real S3 events against moto: `edi-ingest` (X12 under `inbound/`, into the
//! FHIR table), `directory-load` (provider directory files under `directory/`,
//! into the directory's own table) and `attribution-load` (provider attribution
//! lists under `attribution/`, into the FHIR table). One [`Handler`] serves all
//! three, over an [`ObjectLoader`]; the ledger, reports, tagging and retry rules are
//! the same.
//!
//! The X12 path in detail:
//!
//! For each record of an S3 ObjectCreated event: decode the key (S3 sends it
//! form-URL-encoded: `+` is a space, then `%XX`), ignore keys outside `inbound/`,
//! and run the [`Ingestor`] on the object: streamed from S3 into a temporary file
//! in `/tmp` (never into memory as a whole), judged, applied one transaction set at
//! a time; report and 999 to `reports/<key>.json` and `reports/<key>.999`, the
//! object tagged `status=processed|rejected`.
//!
//! Errors: a retryable failure (throttling that outlasted the SDK's retries, a file
//! another invocation is still processing, the network) fails the invocation with
//! `errorType` `Retryable`, so Lambda retries it (twice, for asynchronous S3
//! invocations) and then hands the event to the OnFailure destination (the SQS
//! dead-letter queue). A failure no retry can fix is `NonRetryable`. An object
//! deleted before we read it is logged and skipped.
//!
//! Retries: the SDK clients use the standard retry mode with up to
//! [`SDK_MAX_ATTEMPTS`] attempts and exponential backoff with jitter, which is what
//! absorbs DynamoDB throttling (ProvisionedThroughputExceeded, ThrottlingException;
//! TransactionConflict is not retried here but surfaces as a conflict that
//! `update_with` retries) and S3 503 SlowDown. What outlasts those retries fails the
//! invocation as Retryable.

use std::future::Future;
use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use directory_load::{LoadConfig, ObjectLoadConfig, PlanIdentity, load_object};
use edi_fhir::{MappingConfig, NetworkStatus};
use edi_ingest::whole_file::WholeFileLimits;
use edi_ingest::{IngestConfig, IngestError, IngestOutcome, Ingestor, ObjectError};
use fhir_store::{KeyValueStore, ResourceStore};
use lambda_adapter::{ConfigError, optional, parsed, required};
use lambda_runtime::Diagnostic;
use s3_objects::S3Objects;
use store_dynamodb::DynamoStore;

/// Only keys under this prefix are ingested as X12; reports go elsewhere, so they
/// never trigger a function again.
pub const INBOUND_PREFIX: &str = "inbound/";
/// Provider directory files (roster CSV, FHIR NDJSON) for the directory load.
pub const DIRECTORY_PREFIX: &str = "directory/";
/// Provider attribution lists (CSV, NDJSON Group) for the Provider Access API.
pub const ATTRIBUTION_PREFIX: &str = "attribution/";

/// SDK attempts per call (the first plus retries) before an error surfaces.
pub const SDK_MAX_ATTEMPTS: u32 = 8;

/// What the function reads from its environment (set by template.yaml).
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// `TABLE_NAME`.
    pub table_name: String,
    pub ingest: IngestConfig,
}

impl FunctionConfig {
    /// `TABLE_NAME`, `PAYER_ID`, `PAYER_NAME` (required); `DEFAULT_NETWORK_STATUS`
    /// (`in-network`|`out-of-network`, default in-network), `MAX_FILE_BYTES`
    /// (default 1 GiB; objects are spooled to `/tmp`, so the function's ephemeral
    /// storage must exceed it; memory does not depend on it), `LEDGER_STALE_SECONDS`
    /// (default 960: longer than the function's timeout), `X12_USAGE` (`P` or `T`
    /// for our 999s, default `P`).
    pub fn from_env() -> Result<Self, ConfigError> {
        let mapping = MappingConfig {
            payer_id: required("PAYER_ID")?,
            payer_name: required("PAYER_NAME")?,
            default_network_status: match optional("DEFAULT_NETWORK_STATUS").as_deref() {
                None | Some("in-network") => NetworkStatus::InNetwork,
                Some("out-of-network") => NetworkStatus::OutOfNetwork,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "DEFAULT_NETWORK_STATUS",
                        reason: format!("{other:?} is not in-network or out-of-network"),
                    });
                }
            },
        };
        let mut ingest = IngestConfig::new(mapping);
        if let Some(max) = parsed::<usize>("MAX_FILE_BYTES")? {
            ingest.max_file_bytes = max;
        }
        if let Some(stale) = parsed::<u64>("LEDGER_STALE_SECONDS")? {
            ingest.stale_after_secs = i64::try_from(stale).unwrap_or(i64::MAX);
        }
        ingest.production = optional("X12_USAGE").as_deref() != Some("T");
        Ok(FunctionConfig {
            table_name: required("TABLE_NAME")?,
            ingest,
        })
    }
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("record {index}: {reason}")]
    BadRecord { index: usize, reason: String },
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl HandlerError {
    pub fn is_retryable(&self) -> bool {
        match self {
            HandlerError::BadRecord { .. } => false,
            HandlerError::Ingest(e) => e.is_retryable(),
        }
    }
}

impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Diagnostic {
        let error_type = if e.is_retryable() {
            "Retryable"
        } else {
            "NonRetryable"
        };
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// What one invocation did, per record (for tests and the function's result).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordResult {
    pub key: String,
    /// `processed`, `rejected`, `already-processed`, `skipped` (not under the
    /// loader's prefix) or `gone` (deleted before it was read).
    pub result: String,
}

/// What the EDI bucket's objects under one prefix are loaded by: X12 files under
/// `inbound/` ([`Ingestor`]), provider directory files under `directory/`
/// ([`DirectoryLoader`]). Both run under the same ledger, report and retry rules.
pub trait ObjectLoader: Send + Sync {
    /// Keys under this prefix are this loader's; the rest are skipped.
    fn prefix(&self) -> &'static str;

    /// Loads one object; `Ok` is the record's result (`processed`, `rejected`,
    /// `already-processed`).
    fn load(
        &self,
        objects: &S3Objects,
        key: &str,
    ) -> impl Future<Output = Result<String, IngestError>> + Send;
}

impl<S: ResourceStore + KeyValueStore + 'static> ObjectLoader for Ingestor<S> {
    fn prefix(&self) -> &'static str {
        INBOUND_PREFIX
    }

    async fn load(&self, objects: &S3Objects, key: &str) -> Result<String, IngestError> {
        Ok(match self.ingest_object(objects, key).await? {
            IngestOutcome::AlreadyDone { .. } => "already-processed".to_owned(),
            outcome => outcome.disposition().as_str().to_owned(),
        })
    }
}

/// Provider directory files (`directory/*.csv`, `*.ndjson`) into the directory's own
/// table, through `directory_load::load_object`.
pub struct DirectoryLoader<S> {
    store: Arc<S>,
    config: ObjectLoadConfig,
}

impl<S> DirectoryLoader<S> {
    pub fn new(store: Arc<S>, config: ObjectLoadConfig) -> Self {
        DirectoryLoader { store, config }
    }
}

impl<S: ResourceStore + KeyValueStore + 'static> ObjectLoader for DirectoryLoader<S> {
    fn prefix(&self) -> &'static str {
        DIRECTORY_PREFIX
    }

    async fn load(&self, objects: &S3Objects, key: &str) -> Result<String, IngestError> {
        // Boxed, as below: the whole-file loader's futures nest deep enough to overflow
        // rustc's layout depth in the binaries; one allocation per file.
        let outcome =
            Box::pin(load_object(self.store.as_ref(), objects, key, &self.config)).await?;
        Ok(outcome.result().to_owned())
    }
}

/// Provider attribution lists (`attribution/*.csv`, `*.ndjson`) into the FHIR table,
/// where the Provider Access API reads them, through `attribution::load_object`.
pub struct AttributionLoader<S> {
    store: Arc<S>,
    limits: WholeFileLimits,
}

impl<S> AttributionLoader<S> {
    pub fn new(store: Arc<S>, limits: WholeFileLimits) -> Self {
        AttributionLoader { store, limits }
    }
}

impl<S: ResourceStore + KeyValueStore + 'static> ObjectLoader for AttributionLoader<S> {
    fn prefix(&self) -> &'static str {
        ATTRIBUTION_PREFIX
    }

    async fn load(&self, objects: &S3Objects, key: &str) -> Result<String, IngestError> {
        let load = attribution::load_object(self.store.as_ref(), objects, key, self.limits);
        let outcome = Box::pin(load).await?;
        Ok(outcome.result().to_owned())
    }
}

/// The handler: a loader and the S3 client.
pub struct Handler<L> {
    loader: L,
    s3: aws_sdk_s3::Client,
}

/// The X12 ingest function on AWS: the handler over the DynamoDB table.
pub type IngestFunction = Handler<Ingestor<DynamoStore>>;
/// The directory load function on AWS: the handler over the directory's table.
pub type DirectoryLoadFunction = Handler<DirectoryLoader<DynamoStore>>;
/// The attribution load function on AWS: the handler over the FHIR table.
pub type AttributionLoadFunction = Handler<AttributionLoader<DynamoStore>>;

/// The SDK configuration both functions use: standard retries, [`SDK_MAX_ATTEMPTS`].
async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS))
        .load()
        .await
}

impl IngestFunction {
    /// The cold start: environment, and the SDK clients with their retry policy.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = FunctionConfig::from_env()?;
        let sdk = sdk_config().await;
        let store = Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            config.table_name,
        ));
        Ok(Handler::new(
            store,
            config.ingest,
            s3_objects::client_for(&sdk),
        ))
    }
}

impl DirectoryLoadFunction {
    /// The cold start. `DIRECTORY_TABLE_NAME`, `PAYER_ID`, `PAYER_NAME` (required:
    /// the plan owns the networks a roster names); `STALE_AFTER_DAYS` (default 30),
    /// `MAX_FILE_BYTES` (default 64 MiB: a directory file is parsed whole, so this
    /// bounds memory), `LEDGER_STALE_SECONDS` (default 960, above the timeout).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let payer_id = required("PAYER_ID")?;
        let config = ObjectLoadConfig {
            load: LoadConfig {
                plan: PlanIdentity {
                    organization_id: edi_fhir::ids::payer_org(&payer_id),
                    name: required("PAYER_NAME")?,
                },
                stale_after_days: parsed::<u32>("STALE_AFTER_DAYS")?.unwrap_or(30),
            },
            max_file_bytes: parsed::<usize>("MAX_FILE_BYTES")?.unwrap_or(64 * 1024 * 1024),
            stale_after_secs: parsed::<i64>("LEDGER_STALE_SECONDS")?.unwrap_or(960),
        };
        let table = required("DIRECTORY_TABLE_NAME")?;
        let sdk = sdk_config().await;
        let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
        Ok(Handler::with_loader(
            DirectoryLoader::new(store, config),
            s3_objects::client_for(&sdk),
        ))
    }
}

impl AttributionLoadFunction {
    /// The cold start. `TABLE_NAME` (required); `MAX_FILE_BYTES` (default 256 MiB,
    /// about 5 million member rows: a list is parsed whole, so this bounds memory),
    /// `LEDGER_STALE_SECONDS` (default 960, above the timeout).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let limits = WholeFileLimits {
            max_file_bytes: parsed::<usize>("MAX_FILE_BYTES")?.unwrap_or(256 * 1024 * 1024),
            stale_after_secs: parsed::<i64>("LEDGER_STALE_SECONDS")?.unwrap_or(960),
        };
        let table = required("TABLE_NAME")?;
        let sdk = sdk_config().await;
        let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
        Ok(Handler::with_loader(
            AttributionLoader::new(store, limits),
            s3_objects::client_for(&sdk),
        ))
    }
}

impl<S: ResourceStore + KeyValueStore + 'static> Handler<Ingestor<S>> {
    pub fn new(store: Arc<S>, config: IngestConfig, s3: aws_sdk_s3::Client) -> Self {
        Handler::with_loader(Ingestor::new(store, config), s3)
    }
}

impl<L: ObjectLoader> Handler<L> {
    pub fn with_loader(loader: L, s3: aws_sdk_s3::Client) -> Self {
        Handler { loader, s3 }
    }

    /// Handles every record; the first failure fails the invocation after the
    /// other records had their turn (records already done are no-ops on retry).
    pub async fn handle(&self, event: S3Event) -> Result<Vec<RecordResult>, HandlerError> {
        let mut results = Vec::with_capacity(event.records.len());
        let mut first_error = None;
        for (index, record) in event.records.iter().enumerate() {
            match self.handle_record(index, record).await {
                Ok(result) => results.push(result),
                Err(e) => {
                    tracing::error!(record = index, error = %e, retryable = e.is_retryable(), "record failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(results),
        }
    }

    async fn handle_record(
        &self,
        index: usize,
        record: &S3EventRecord,
    ) -> Result<RecordResult, HandlerError> {
        let bad = |reason: &str| HandlerError::BadRecord {
            index,
            reason: reason.to_owned(),
        };
        let bucket = record
            .s3
            .bucket
            .name
            .as_deref()
            .ok_or_else(|| bad("no bucket name"))?;
        let raw_key = record
            .s3
            .object
            .key
            .as_deref()
            .ok_or_else(|| bad("no object key"))?;
        let key = decode_key(raw_key)
            .ok_or_else(|| bad("the object key is not valid UTF-8 once decoded"))?;
        let prefix = self.loader.prefix();
        if !key.starts_with(prefix) {
            tracing::info!(key = %key, prefix, "not under this function's prefix: ignored");
            return Ok(RecordResult {
                key,
                result: "skipped".into(),
            });
        }
        let objects = S3Objects::new(self.s3.clone(), bucket);
        let result = match self.loader.load(&objects, &key).await {
            Ok(result) => result,
            Err(IngestError::Objects(ObjectError::NotFound(_))) => {
                tracing::warn!(key = %key, "the object was deleted before it could be read: skipped");
                "gone".to_owned()
            }
            Err(e) => return Err(e.into()),
        };
        Ok(RecordResult { key, result })
    }
}

/// Decodes an S3 event key: `+` is a space, then `%XX` escapes. `None` when the
/// result is not UTF-8.
pub fn decode_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_plus_then_percent() {
        assert_eq!(
            decode_key("inbound/my+file+%281%29.x12").as_deref(),
            Some("inbound/my file (1).x12")
        );
        assert_eq!(
            decode_key("inbound/a%2Bb.x12").as_deref(),
            Some("inbound/a+b.x12")
        );
        assert_eq!(decode_key("inbound/%FF.x12"), None);
    }

    #[test]
    fn diagnostics_say_whether_to_retry() {
        let busy = HandlerError::Ingest(IngestError::Busy {
            file: "s3://b/k".into(),
        });
        assert_eq!(Diagnostic::from(busy).error_type, "Retryable");
        let bad = HandlerError::BadRecord {
            index: 0,
            reason: "no key".into(),
        };
        assert_eq!(Diagnostic::from(bad).error_type, "NonRetryable");
    }

    #[test]
    fn the_sample_event_parses() {
        let event: Result<S3Event, _> =
            serde_json::from_str(include_str!("../../../events/s3-put-inbound.json"));
        let event = event.unwrap_or_else(|e| panic!("events/s3-put-inbound.json: {e}"));
        let key = event.records[0]
            .s3
            .object
            .key
            .as_deref()
            .and_then(decode_key);
        assert_eq!(
            key.as_deref(),
            Some("inbound/claims 2024-01-15 (batch 1).x12")
        );
    }
}
