//! The work queue on SQS.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use bulk_export::{ExportError, WorkItem, WorkQueue};
use futures_util::stream::{self, TryStreamExt};
use smart_auth::BoxFuture;

/// SendMessageBatch takes at most ten entries.
pub const BATCH: usize = 10;
/// Sends of one batch, the first included, before kick-off gives up.
const ATTEMPTS: u32 = 5;
/// Batches in flight at once: a 1 M-member Group is 2,000 items, 200 batches.
const CONCURRENT_BATCHES: usize = 8;

/// The message body of a work item (JSON).
pub fn encode_work_item(item: &WorkItem) -> Result<String, ExportError> {
    serde_json::to_string(item).map_err(|e| ExportError::Queue(e.to_string()))
}

/// A work item from a message body.
pub fn decode_work_item(body: &str) -> Result<WorkItem, ExportError> {
    serde_json::from_str(body).map_err(|e| ExportError::Queue(format!("not a work item: {e}")))
}

/// Work items as messages of one queue.
#[derive(Debug, Clone)]
pub struct SqsWorkQueue {
    client: Client,
    queue_url: String,
}

impl SqsWorkQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> SqsWorkQueue {
        SqsWorkQueue {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Sends one batch; entries SQS refuses (throttled, internal error) are sent
    /// again with backoff. A duplicate send is harmless: slices are idempotent.
    async fn send_batch(&self, items: &[WorkItem]) -> Result<(), ExportError> {
        let mut pending: Vec<(String, String)> = items
            .iter()
            .enumerate()
            .map(|(i, item)| Ok((i.to_string(), encode_work_item(item)?)))
            .collect::<Result<_, ExportError>>()?;
        for attempt in 1..=ATTEMPTS {
            let entries = pending
                .iter()
                .map(|(id, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(body)
                        .build()
                        .map_err(|e| ExportError::Queue(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let failed: Vec<String> = match self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => output.failed().iter().map(|f| f.id().to_owned()).collect(),
                Err(error) => {
                    tracing::warn!(attempt, error = %DisplayErrorContext(&error), "SendMessageBatch failed");
                    pending.iter().map(|(id, _)| id.clone()).collect()
                }
            };
            pending.retain(|(id, _)| failed.contains(id));
            if pending.is_empty() {
                return Ok(());
            }
            tracing::warn!(
                attempt,
                failed = pending.len(),
                "work items not queued; retrying"
            );
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        Err(ExportError::Queue(format!(
            "{} work items could not be queued after {ATTEMPTS} attempts",
            pending.len()
        )))
    }
}

impl WorkQueue for SqsWorkQueue {
    fn enqueue<'a>(&'a self, items: Vec<WorkItem>) -> BoxFuture<'a, Result<(), ExportError>> {
        Box::pin(async move {
            stream::iter(items.chunks(BATCH).map(Ok))
                .try_for_each_concurrent(CONCURRENT_BATCHES, |batch| self.send_batch(batch))
                .await
        })
    }
}
