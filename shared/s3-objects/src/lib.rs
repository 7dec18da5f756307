//! [`ObjectStore`] on Amazon S3: the ingest Lambda's way to read an uploaded file,
//! write its report and 999, and tag it.
//!
//! * `get` refuses an object over the size cap from its `Content-Length` before
//!   downloading, then reads the body chunk by chunk and stops at the cap, so a lying
//!   length cannot make it read more.
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

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};
use edi_ingest::{Disposition, FileIdentity, ObjectError, ObjectStore, StoredObject};

/// The tag key `dispose` sets.
pub const STATUS_TAG: &str = "status";

/// One bucket of S3 as an [`ObjectStore`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: Client,
    bucket: String,
}

impl S3Objects {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Objects {
            client,
            bucket: bucket.into(),
        }
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
        let bytes = read_capped(output.body, max_bytes)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge(n) => too_large(n),
                ReadError::Stream(reason) => {
                    ObjectError::Backend(format!("reading {}: {reason}", self.label(key)))
                }
            })?;
        let identity = FileIdentity::s3(&self.bucket, key, &etag);
        Ok(StoredObject { bytes, identity })
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

enum ReadError {
    TooLarge(u64),
    Stream(String),
}

/// Reads a body, stopping as soon as it passes `max_bytes`.
async fn read_capped(mut body: ByteStream, max_bytes: usize) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| ReadError::Stream(e.to_string()))?
    {
        if bytes.len() + chunk.len() > max_bytes {
            return Err(ReadError::TooLarge((bytes.len() + chunk.len()) as u64));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
