//! Export files on S3.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use bulk_export::files::check_key;
use bulk_export::{Download, ExportFiles, FilesError};
use bytes::Bytes;
use smart_auth::BoxFuture;

/// S3's minimum size of every part of a multipart upload but the last: a body up to
/// this size is one PutObject (a multipart upload could only have one part anyway).
pub const MULTIPART_THRESHOLD: usize = 5 * 1024 * 1024;
/// The size of each uploaded part but the last.
pub const PART_SIZE: usize = MULTIPART_THRESHOLD;
/// How long a presigned download URL works: long enough to start the download, short
/// enough that a leaked URL is soon useless (the token check happened before it).
pub const DOWNLOAD_URL_LIFETIME: Duration = Duration::from_secs(300);

const CONTENT_TYPE: &str = "application/fhir+ndjson";

/// Export files in one bucket, keyed `{job}/{Type}-{slice}-{seq}.ndjson`.
#[derive(Debug, Clone)]
pub struct S3ExportFiles {
    client: Client,
    bucket: String,
}

impl S3ExportFiles {
    /// Build the client with `s3_objects::client_for` so a local endpoint (moto) gets
    /// path-style addressing.
    pub fn new(client: Client, bucket: impl Into<String>) -> S3ExportFiles {
        S3ExportFiles {
            client,
            bucket: bucket.into(),
        }
    }

    fn error<E>(&self, operation: &str, key: &str, e: SdkError<E>) -> FilesError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        FilesError(format!(
            "{operation} s3://{}/{key}: {}",
            self.bucket,
            DisplayErrorContext(e)
        ))
    }

    async fn put_simple(&self, key: &str, body: Bytes) -> Result<(), FilesError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(CONTENT_TYPE)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("PutObject", key, e))
    }

    /// A multipart upload; any failure aborts it, so no invisible parts linger (the
    /// bucket's lifecycle rule also aborts incomplete uploads after a day).
    async fn put_multipart(&self, key: &str, body: Bytes) -> Result<(), FilesError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(CONTENT_TYPE)
            .send()
            .await
            .map_err(|e| self.error("CreateMultipartUpload", key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| FilesError(format!("CreateMultipartUpload {key}: no upload id")))?
            .to_owned();
        match self.upload_parts(key, &upload_id, body).await {
            Ok(()) => Ok(()),
            Err(error) => {
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    tracing::warn!(key, error = %DisplayErrorContext(abort), "AbortMultipartUpload failed");
                }
                Err(error)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        body: Bytes,
    ) -> Result<(), FilesError> {
        let mut completed = Vec::new();
        let mut offset = 0;
        let mut number = 1;
        while offset < body.len() {
            let end = (offset + PART_SIZE).min(body.len());
            let part = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(body.slice(offset..end)))
                .send()
                .await
                .map_err(|e| self.error("UploadPart", key, e))?;
            completed.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_owned))
                    .build(),
            );
            offset = end;
            number += 1;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(completed))
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("CompleteMultipartUpload", key, e))
    }

    async fn exists(&self, key: &str) -> Result<bool, FilesError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(self.error("HeadObject", key, e)),
        }
    }
}

impl ExportFiles for S3ExportFiles {
    fn put<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), FilesError>> {
        Box::pin(async move {
            check_key(key)?;
            if body.len() > MULTIPART_THRESHOLD {
                self.put_multipart(key, body).await
            } else {
                self.put_simple(key, body).await
            }
        })
    }

    fn download<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Download>, FilesError>> {
        Box::pin(async move {
            check_key(key)?;
            // A presigned URL is made without asking S3; check first, so an expired or
            // cancelled file is a 404 from us rather than an S3 error page.
            if !self.exists(key).await? {
                return Ok(None);
            }
            let config = PresigningConfig::expires_in(DOWNLOAD_URL_LIFETIME)
                .map_err(|e| FilesError(format!("presigning: {e}")))?;
            let presigned = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .response_content_type(CONTENT_TYPE)
                .presigned(config)
                .await
                .map_err(|e| self.error("presign GetObject", key, e))?;
            Ok(Some(Download::Redirect(presigned.uri().to_owned())))
        })
    }

    fn delete_job<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<(), FilesError>> {
        Box::pin(async move {
            // One segment only: an empty or nested id must never widen the prefix.
            check_key(job_id)?;
            if job_id.contains('/') {
                return Err(FilesError(format!("invalid job id {job_id:?}")));
            }
            let prefix = format!("{job_id}/");
            let mut token = None;
            loop {
                let page = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(&prefix)
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| self.error("ListObjectsV2", &prefix, e))?;
                // A page holds at most 1,000 keys, DeleteObjects' own limit.
                let objects = page
                    .contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .map(|key| ObjectIdentifier::builder().key(key).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| FilesError(e.to_string()))?;
                if !objects.is_empty() {
                    let delete = Delete::builder()
                        .set_objects(Some(objects))
                        .quiet(true)
                        .build()
                        .map_err(|e| FilesError(e.to_string()))?;
                    let deleted = self
                        .client
                        .delete_objects()
                        .bucket(&self.bucket)
                        .delete(delete)
                        .send()
                        .await
                        .map_err(|e| self.error("DeleteObjects", &prefix, e))?;
                    if let Some(failed) = deleted.errors().first() {
                        return Err(FilesError(format!(
                            "DeleteObjects s3://{}/{}: {} of the keys failed, e.g. {}",
                            self.bucket,
                            prefix,
                            deleted.errors().len(),
                            failed.code().unwrap_or("error")
                        )));
                    }
                }
                match page.next_continuation_token() {
                    Some(next) if page.is_truncated() == Some(true) => {
                        token = Some(next.to_owned());
                    }
                    _ => return Ok(()),
                }
            }
        })
    }
}
