//! `p2p-requests`: this plan as the new payer on AWS. EventBridge Scheduler invokes it
//! every 15 minutes; it runs the Payer-to-Payer requests due
//! ([`payer_to_payer::remote::run_due`]: at most [`BATCH`], [`CONCURRENCY`] at a time,
//! each leased so an overlapping run never takes it too; with another plan that serves
//! PDex's bulk pair, `$bulk-member-match` then `$davinci-data-export`, its files
//! streamed into the table, and a match or export still running after [`POLL_BUDGET`]
//! continued by a later run), and answers with what each became. Requests wait in the table, so nothing is lost when an invocation fails:
//! the lease ends and the next one picks them up.
//!
//! Each other plan's `key` names a Secrets Manager secret holding this plan's PEM
//! private key for that plan (the role may read `{stack}/payer-keys/*` only), read at
//! each run so a rotated key is used at once.
//!
//! Environment: `TABLE_NAME`.

use std::sync::Arc;

use aws_sdk_secretsmanager::Client as SecretsClient;
use lambda_adapter::{ConfigError, required};
use payer_to_payer::asking::{OtherPayer, RequestState};
use payer_to_payer::bulk_asking::Pace;
use payer_to_payer::remote;
use serde_json::{Value, json};
use store_dynamodb::DynamoStore;

/// Requests one invocation takes: each waits at most [`POLL_BUDGET`] for the other
/// plan's match and export (then the next run continues it from its saved progress)
/// plus its calls and downloads, so five rounds of [`CONCURRENCY`] fit the function's
/// 15 minutes.
pub const BATCH: usize = 40;
/// Requests run at once: other plans' servers, not this one, set the pace.
pub const CONCURRENCY: usize = 8;
/// Time one request spends waiting on the other plan's status URLs in one invocation.
pub const POLL_BUDGET: std::time::Duration = std::time::Duration::from_secs(90);

/// The scheduled function.
pub struct P2pRequestsFunction {
    store: Arc<DynamoStore>,
    secrets: SecretsClient,
}

/// Why a scheduled run failed as a whole (the table could not be read or written):
/// Lambda retries the invocation, and its errors alarm fires.
#[derive(Debug, thiserror::Error)]
#[error("payer-to-payer run: {0}")]
pub struct RunError(String);

impl From<RunError> for lambda_runtime::Diagnostic {
    fn from(error: RunError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "PayerToPayerRunFailed".into(),
            error_message: error.0,
        }
    }
}

impl P2pRequestsFunction {
    /// The cold start.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let table = required("TABLE_NAME")?;
        let aws = aws_config::load_from_env().await;
        Ok(Self::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
            SecretsClient::new(&aws),
        ))
    }

    pub fn new(store: DynamoStore, secrets: SecretsClient) -> Self {
        P2pRequestsFunction {
            store: Arc::new(store),
            secrets,
        }
    }

    /// One scheduled run at `now` (unix seconds): a summary of what each request
    /// became (counts by state; ids stay in the table, not in the invocation result).
    pub async fn run(&self, now: i64) -> Result<Value, RunError> {
        let key_for = |payer: &OtherPayer| self.key_pem(payer.key.clone());
        let pace = Pace {
            poll_budget: POLL_BUDGET,
            ..Pace::default()
        };
        let requests =
            remote::run_due(self.store.as_ref(), now, BATCH, CONCURRENCY, key_for, &pace)
                .await
                .map_err(|e| RunError(e.to_string()))?;
        let count = |state: RequestState| requests.iter().filter(|r| r.state == state).count();
        Ok(json!({
            "ran": requests.len(),
            "done": count(RequestState::Done),
            "waiting": count(RequestState::Waiting),
            "not_matched": count(RequestState::NotMatched),
            "not_opted_in": count(RequestState::NotOptedIn),
            "failed": count(RequestState::Failed),
        }))
    }

    async fn key_pem(&self, secret_id: String) -> Result<String, String> {
        let output = self
            .secrets
            .get_secret_value()
            .secret_id(&secret_id)
            .send()
            .await
            .map_err(|e| format!("{secret_id}: {}", e.into_service_error()))?;
        output
            .secret_string
            .ok_or_else(|| format!("{secret_id} holds no text"))
    }
}
