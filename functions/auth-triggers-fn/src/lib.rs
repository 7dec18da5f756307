//! The triggers function: wires the ports of `member_signin::triggers` to AWS and
//! hands each event to [`member_signin::handle_trigger`].
//!
//! * member facts: the Patient and Coverage in the FHIR table ([`StoreMemberFacts`]);
//! * counters and one-time-code hashes: the same table's key-value records;
//! * grants: `member-consent` over the same table; apps: the registry records, found
//!   from Cognito's app client id through the registry's link records;
//! * the code email: SES ([`SesCodeSender`]), the only AWS call besides DynamoDB.
//!
//! Environment: `TABLE_NAME`, `SIGNIN_SECRET_ARN` (the secret, at least 32 bytes and
//! shared with the authorization server, is read from Secrets Manager at cold start and
//! every few minutes), `CODE_FROM_ADDRESS` (a verified SES identity) and optionally
//! `FHIR_BASE_URL` (for `fhirUser`) and `MEMBER_ACCESS_WINDOW_DAYS` (days after their
//! coverage ends that former members may still sign in; unset: always).

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use lambda_adapter::{ConfigError, optional, parsed, required};
use member_signin::{
    CodeSender, ConsentGrants, KvAppCatalog, PortError, SignInSecret, StoreMemberFacts,
    TriggerConfig, TriggerPorts, handle_trigger,
};
use secrets::{KeyRefresher, SourceError};
use secrets_manager::SecretsManagerSource;
use serde_json::Value;
use store_dynamodb::DynamoStore;

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("sign-in secret: {0}")]
    Secret(#[from] member_signin::secret::WeakSecret),
    #[error("sign-in secret: {0}")]
    Source(#[from] SourceError),
}

/// Sends the one-time code with SES. The code is in the body only; nothing is logged.
pub struct SesCodeSender {
    client: aws_sdk_sesv2::Client,
    from: String,
}

impl SesCodeSender {
    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>) -> Self {
        SesCodeSender {
            client,
            from: from.into(),
        }
    }
}

fn text(data: String) -> Result<Content, PortError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| PortError(e.to_string()))
}

impl CodeSender for SesCodeSender {
    async fn send(&self, email: &str, code: &str) -> Result<(), PortError> {
        let body = format!(
            "Your sign-in code is {code}\n\nIt expires in 10 minutes. If you did not try to connect an app to your health plan, ignore this email."
        );
        let message = Message::builder()
            .subject(text("Your health plan sign-in code".to_owned())?)
            .body(Body::builder().text(text(body)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(email).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| PortError(format!("ses: {}", e.into_service_error())))
    }
}

/// The ports on AWS.
pub type AwsPorts = TriggerPorts<
    StoreMemberFacts<DynamoStore>,
    DynamoStore,
    SesCodeSender,
    ConsentGrants<DynamoStore, KvAppCatalog<DynamoStore>>,
>;

/// The triggers function: the ports, built once per cold start.
pub struct TriggersFunction {
    ports: AwsPorts,
    /// Re-reads the sign-in secret every few minutes (a rotation needs no redeploy).
    secret_keys: KeyRefresher<SecretsManagerSource>,
}

impl TriggersFunction {
    /// The cold start: environment, the sign-in secret, the DynamoDB and SES clients.
    pub async fn from_env() -> Result<Self, StartError> {
        let table = required("TABLE_NAME")?;
        let secret_arn = required("SIGNIN_SECRET_ARN")?;
        let from = required("CODE_FROM_ADDRESS")?;
        let aws = aws_config::load_from_env().await;
        let source =
            SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&aws), secret_arn);
        let (secret_keys, ring) =
            KeyRefresher::load(source, secrets::ring::DEFAULT_REFRESH).await?;
        let secret = SignInSecret::from_ring(&ring)?;
        let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table));
        let mut config = TriggerConfig::new(secret);
        config.fhir_base_url = optional("FHIR_BASE_URL");
        config.access_window_days = parsed("MEMBER_ACCESS_WINDOW_DAYS")?;
        let ports = TriggerPorts {
            members: Arc::new(StoreMemberFacts::new(Arc::clone(&store))),
            grants: Arc::new(ConsentGrants::new(
                Arc::clone(&store),
                Arc::new(KvAppCatalog::for_cognito(Arc::clone(&store))),
            )),
            sender: Arc::new(SesCodeSender::new(aws_sdk_sesv2::Client::new(&aws), from)),
            kv: store,
            config,
        };
        Ok(TriggersFunction { ports, secret_keys })
    }

    /// Handles one trigger event. An error is returned to Cognito, which fails the
    /// sign-in and reports only the error's generic text.
    pub async fn handle(&self, event: Value) -> Result<Value, lambda_adapter::Error> {
        if let Some(ring) = self.secret_keys.refresh_if_due(Instant::now()).await
            && let Err(error) = self.ports.config.secret.install(&ring)
        {
            tracing::error!(%error, "rotated sign-in secret refused; keeping the current keys");
        }
        let source = event
            .get("triggerSource")
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_owned();
        handle_trigger(event, &self.ports).await.map_err(|error| {
            // Which trigger refused, and the generic reason; never the event itself.
            tracing::warn!(trigger = %source, %error, "trigger refused");
            lambda_adapter::Error::from(error.to_string())
        })
    }
}
