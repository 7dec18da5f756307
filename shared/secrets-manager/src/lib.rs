//! Reads a configured secret from AWS Secrets Manager as a [`KeyRing`].
//!
//! The functions' environment carries only the secret's ARN; the value is fetched at
//! cold start and re-read every few minutes ([`secrets::KeyRefresher`]), so it never
//! appears in `GetFunctionConfiguration` or the console, and a rotation needs no
//! redeploy.
//!
//! The ring is the version staged `AWSCURRENT` (seals) and, when there is one, the
//! version staged `AWSPREVIOUS` (still opens). `PutSecretValue` moves the stages
//! itself: the new value becomes `AWSCURRENT` and the old one `AWSPREVIOUS`.
//! (Rotation procedure: SECURITY.md.)

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use secrets::{KeyMaterial, KeyRing, SecretSource, SourceError};

/// The secret `secret_id` at cold start: the refresher a function keeps (asking it
/// `refresh_if_due` on each request) and the ring to build its sealer from.
pub async fn load(
    client: Client,
    secret_id: impl Into<String>,
) -> Result<(secrets::KeyRefresher<SecretsManagerSource>, KeyRing), SourceError> {
    secrets::KeyRefresher::load(
        SecretsManagerSource::new(client, secret_id),
        secrets::ring::DEFAULT_REFRESH,
    )
    .await
}

/// The secret named by the environment variable `var`, or `None` when it is unset or
/// empty (an optional secret, such as the edge's origin-verify secret).
pub async fn named_in_env(var: &str) -> Option<SecretsManagerSource> {
    let secret_id = std::env::var(var).ok().filter(|id| !id.trim().is_empty())?;
    let aws = aws_config::load_from_env().await;
    Some(SecretsManagerSource::new(Client::new(&aws), secret_id))
}

/// Secrets Manager's stage of the version in use.
pub const CURRENT_STAGE: &str = "AWSCURRENT";
/// Secrets Manager's stage of the version replaced by the last rotation.
pub const PREVIOUS_STAGE: &str = "AWSPREVIOUS";

/// One secret in Secrets Manager, by ARN or name.
#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: Client,
    secret_id: String,
}

impl SecretsManagerSource {
    pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
        SecretsManagerSource {
            client,
            secret_id: secret_id.into(),
        }
    }

    /// The value staged `stage`; `Ok(None)` when no version carries that stage (a
    /// secret never rotated has no `AWSPREVIOUS`).
    async fn version(&self, stage: &str) -> Result<Option<KeyMaterial>, SourceError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) => {
                return match error.into_service_error() {
                    GetSecretValueError::ResourceNotFoundException(_) if stage != CURRENT_STAGE => {
                        Ok(None)
                    }
                    // The error names the secret and the failure, never a value.
                    other => Err(SourceError(format!(
                        "{} ({stage}): {other}",
                        self.secret_id
                    ))),
                };
            }
        };
        let bytes = match (output.secret_string, output.secret_binary) {
            (Some(text), _) => text.into_bytes(),
            (None, Some(blob)) => blob.into_inner(),
            (None, None) => {
                return Err(SourceError(format!(
                    "{} ({stage}) has no value",
                    self.secret_id
                )));
            }
        };
        Ok(Some(KeyMaterial::new(bytes)))
    }
}

impl SecretSource for SecretsManagerSource {
    async fn key_ring(&self) -> Result<KeyRing, SourceError> {
        let current = self
            .version(CURRENT_STAGE)
            .await?
            .ok_or_else(|| SourceError(format!("{} has no current version", self.secret_id)))?;
        let previous = self.version(PREVIOUS_STAGE).await?;
        Ok(KeyRing::new(current, previous))
    }
}
