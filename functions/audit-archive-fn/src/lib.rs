//! The audit archive function: a subscription filter on every function's log group
//! sends it the `audit` lines; it keeps what [`audit_archive`] allows and writes each
//! delivery as one gzipped NDJSON object into `ARCHIVE_BUCKET`.
//!
//! The bucket has Object Lock with a default retention (template parameters,
//! compliance mode by default), so nobody, root included, can delete or change an
//! archived line before it expires. S3 requires an integrity checksum on every write
//! to such a bucket: each put sends a CRC32 of the body. A failed put fails the
//! invocation; CloudWatch Logs retries the delivery, and what still fails lands in the
//! function's dead-letter queue with its log data, so nothing is lost silently.

use audit_archive::{ArchivedLine, archived_line, gzip_ndjson, object_key};
use aws_lambda_events::event::cloudwatch_logs::LogsEvent;
use aws_sdk_s3::types::ChecksumAlgorithm;

/// Why a delivery was not archived.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Config(#[from] lambda_adapter::ConfigError),
    #[error("gzip: {0}")]
    Gzip(#[from] std::io::Error),
    #[error("S3 PutObject {key}: {reason}")]
    Put { key: String, reason: String },
}

impl From<ArchiveError> for lambda_runtime::Diagnostic {
    fn from(e: ArchiveError) -> lambda_runtime::Diagnostic {
        lambda_runtime::Diagnostic {
            error_type: "ArchiveError".to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// The function: the S3 client and the bucket.
pub struct ArchiveFunction {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl ArchiveFunction {
    /// `ARCHIVE_BUCKET` from the environment, AWS settings from the runtime.
    pub async fn from_env() -> Result<ArchiveFunction, ArchiveError> {
        let bucket = lambda_adapter::required("ARCHIVE_BUCKET")?;
        let aws = aws_config::load_from_env().await;
        Ok(ArchiveFunction::new(s3_objects::client_for(&aws), bucket))
    }

    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> ArchiveFunction {
        ArchiveFunction {
            s3,
            bucket: bucket.into(),
        }
    }

    /// Archives one delivery; returns the key written, or `None` when it held no
    /// audit line (CloudWatch's `CONTROL_MESSAGE`, other output).
    pub async fn handle(&self, event: LogsEvent) -> Result<Option<String>, ArchiveError> {
        let data = &event.aws_logs.data;
        if data.message_type != "DATA_MESSAGE" {
            return Ok(None);
        }
        let lines: Vec<ArchivedLine> = data
            .log_events
            .iter()
            .filter_map(|e| archived_line(&e.message, e.timestamp, &data.log_group))
            .collect();
        let Some(first) = data.log_events.first() else {
            return Ok(None);
        };
        if lines.is_empty() {
            return Ok(None);
        }
        let Some(key) = object_key(&data.log_group, first.timestamp, &first.id) else {
            return Ok(None);
        };
        let body = gzip_ndjson(&lines)?;
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/x-ndjson")
            .content_encoding("gzip")
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(body.into())
            .send()
            .await
            .map_err(|e| ArchiveError::Put {
                key: key.clone(),
                reason: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
            })?;
        tracing::info!(lines = lines.len(), key = %key, "audit lines archived");
        Ok(Some(key))
    }
}
