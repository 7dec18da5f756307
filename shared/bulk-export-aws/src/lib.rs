//! The `bulk-export` ports on AWS, for the Provider Access functions:
//!
//! * [`S3ExportFiles`]: [`bulk_export::ExportFiles`] on an S3 bucket of its own (its
//!   lifecycle rule is the retention). A part is one PutObject up to
//!   [`MULTIPART_THRESHOLD`], a multipart upload above it; a download, once the API has
//!   checked the token, is a presigned GET of a few minutes; cancelling a job deletes
//!   its prefix (ListObjectsV2 + DeleteObjects).
//! * [`SqsWorkQueue`]: [`bulk_export::WorkQueue`] on an SQS queue: SendMessageBatch in
//!   groups of ten, failed entries sent again.
//!
//! `bulk-export` itself stays free of the SDK; the functions wire these in.

mod s3;
mod sqs;

pub use s3::{DOWNLOAD_URL_LIFETIME, MULTIPART_THRESHOLD, PART_SIZE, S3ExportFiles};
pub use sqs::{BATCH, SqsWorkQueue, decode_work_item, encode_work_item};
