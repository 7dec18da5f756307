//! [`ObjectStore`] on Amazon S3: the ingest Lambda's way to read an uploaded file,
//! write its report and 999, and tag it.
//!
//! * `get` refuses an object over the size cap from its `Content-Length` before
//!   downloading, then streams the body chunk by chunk into a [`Spool`] (an unnamed
//!   temporary file in the Lambda's ephemeral storage, `/tmp`) and stops at the cap,
//!   so a lying length cannot make it read more. Memory holds one chunk, whatever
//!   the object's size; the pipeline then reads the local copy twice (a verdict
//!   pass, an apply pass).
//!
//!   Why one GET and a local copy rather than two streamed GETs of the same
//!   `VersionId`: the apply pass consumes its input at the pace of DynamoDB writes,
//!   minutes for a large file, and a GET body read that slowly is easily cut by the
//!   network or S3's idle timeouts, after half a file is applied; a second download
//!   also doubles the transfer, and an object deleted (or, without versioning,
//!   overwritten) between the passes would fail or change the run. `/tmp` is local,
//!   fast, up to 10 GiB, and the spool is freed as soon as the run ends, even when
//!   it crashes. The price is ephemeral storage at least as large as the size cap
//!   (template.yaml sizes both).
//! * `dispose` tags the object `status=processed|rejected` (PutObjectTagging) rather
//!   than copying it to another prefix and deleting it: with versioning on, a copy
//!   and delete would leave a delete marker and a second copy of every file, and the
//!   tag is enough for lifecycle rules and for people to filter by. Tagging replaces
//!   the object's tag set and fires no ObjectCreated event, so it cannot re-trigger
//!   the function. It tags the key's current version: if the key was re-uploaded
//!   between our read and the tag, the newer version is tagged with this status
//!   until its own event (new ETag, so not a duplicate) processes and re-tags it.
//! * Local endpoints (moto) need path-style addressing: build the client with
//!   [`client_for`].

use std::path::PathBuf;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};
use edi_ingest::{Disposition, FileIdentity, ObjectError, ObjectStore, Spool, StoredObject};

/// The tag key `dispose` sets.
pub const STATUS_TAG: &str = "status";

/// One bucket of S3 as an [`ObjectStore`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: Client,
    bucket: String,
    /// Where objects are spooled; `None`: the system's temporary directory.
    spool_dir: Option<PathBuf>,
}

impl S3Objects {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Objects {
            client,
            bucket: bucket.into(),
            spool_dir: None,
        }
    }

    /// Spools objects into `dir` instead of the system's temporary directory
    /// (`TMPDIR`, else `/tmp`).
    pub fn with_spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    fn label(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn error<E>(&self, operation: &str, key: &str, e: SdkError<E>) -> ObjectError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        ObjectError::Backend(format!(
            "{operation} {}: {}",
            self.label(key),
            DisplayErrorContext(e)
        ))
    }
}

/// An S3 client from a loaded SDK config, with path-style addressing when an
/// endpoint override (`AWS_ENDPOINT_URL`, e.g. moto) is set: virtual-hosted style
/// would need `bucket.localhost` to resolve.
pub fn client_for(config: &aws_config::SdkConfig) -> Client {
    let local = config.endpoint_url().is_some();
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(local)
        .build();
    Client::from_conf(s3_config)
}

impl ObjectStore for S3Objects {
    async fn get(&self, key: &str, max_bytes: usize) -> Result<StoredObject, ObjectError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(service) if service.is_no_such_key() => ObjectError::NotFound(self.label(key)),
                _ => self.error("GetObject", key, e),
            })?;
        let too_large = |size: u64| ObjectError::TooLarge {
            label: self.label(key),
            size,
            max: max_bytes,
        };
        let declared = output
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        if declared > max_bytes as u64 {
            return Err(too_large(declared));
        }
        let etag = output.e_tag().unwrap_or_default().to_owned();
        let mut body = output.body;
        let mut spool = match &self.spool_dir {
            Some(dir) => Spool::new_in(dir, self.label(key), max_bytes).await?,
            None => Spool::new(self.label(key), max_bytes).await?,
        };
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| ObjectError::Backend(format!("reading {}: {e}", self.label(key))))?
        {
            spool.write(&chunk).await?;
        }
        tracing::debug!(object = %self.label(key), bytes = spool.written(), "spooled");
        spool
            .finish(FileIdentity::s3(&self.bucket, key, &etag))
            .await
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &'static str,
    ) -> Result<(), ObjectError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("PutObject", key, e))
    }

    async fn dispose(&self, key: &str, disposition: Disposition) -> Result<(), ObjectError> {
        let tag = Tag::builder()
            .key(STATUS_TAG)
            .value(disposition.as_str())
            .build()
            .map_err(|e| ObjectError::Backend(e.to_string()))?;
        let tagging = Tagging::builder()
            .tag_set(tag)
            .build()
            .map_err(|e| ObjectError::Backend(e.to_string()))?;
        self.client
            .put_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .tagging(tagging)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("PutObjectTagging", key, e))
    }
}
