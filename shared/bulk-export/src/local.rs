//! The work queue on tokio tasks, for the local runner: the same [`run_slice`] the
//! AWS workers run, over the same store, with the retry SQS would give.

use std::sync::Arc;
use std::time::Duration;

use fhir_store::{KeyValueStore, ResourceStore};
use smart_auth::BoxFuture;
use tokio::sync::{Semaphore, mpsc};

use crate::ExportError;
use crate::files::ExportFiles;
use crate::job::{self, WorkItem, WorkQueue};
use crate::worker::{JobRunner, run_item};

pub use crate::job::MAX_ATTEMPTS;

/// Runs queued slices on tokio tasks, `concurrency` at a time.
#[derive(Clone)]
pub struct LocalQueue {
    sender: mpsc::UnboundedSender<WorkItem>,
}

impl LocalQueue {
    /// Starts the dispatcher; it lives as long as the runtime.
    pub fn start<S>(store: Arc<S>, files: Arc<dyn ExportFiles>, concurrency: usize) -> LocalQueue
    where
        S: ResourceStore + KeyValueStore + 'static,
    {
        LocalQueue::start_with(store, files, concurrency, None)
    }

    /// [`LocalQueue::start`], with `runner` for the jobs that are not exports.
    pub fn start_with<S>(
        store: Arc<S>,
        files: Arc<dyn ExportFiles>,
        concurrency: usize,
        runner: Option<Arc<dyn JobRunner>>,
    ) -> LocalQueue
    where
        S: ResourceStore + KeyValueStore + 'static,
    {
        let (sender, mut receiver) = mpsc::unbounded_channel::<WorkItem>();
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        // Roster pages queue their next page here.
        let queue = LocalQueue {
            sender: sender.clone(),
        };
        tokio::spawn(async move {
            while let Some(item) = receiver.recv().await {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let store = Arc::clone(&store);
                let files = Arc::clone(&files);
                let queue = queue.clone();
                let runner = runner.clone();
                tokio::spawn(async move {
                    run_with_retry(
                        store.as_ref(),
                        files.as_ref(),
                        &queue,
                        runner.as_deref(),
                        &item,
                    )
                    .await;
                    drop(permit);
                });
            }
        });
        LocalQueue { sender }
    }
}

/// Runs one item, retrying with backoff; after [`MAX_ATTEMPTS`] the job fails (the
/// AWS twin: the message goes to the dead-letter queue and its alarm fires).
pub async fn run_with_retry<S, F, Q>(
    store: &S,
    files: &F,
    queue: &Q,
    runner: Option<&dyn JobRunner>,
    item: &WorkItem,
) where
    S: ResourceStore + KeyValueStore + ?Sized,
    F: ExportFiles + ?Sized,
    Q: WorkQueue + ?Sized,
{
    for attempt in 1..=MAX_ATTEMPTS {
        match run_item(store, files, queue, runner, item).await {
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(job_id = %item.job_id, slice = item.slice, attempt, error = %error, "export slice failed");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
    }
    if let Err(error) = job::fail(store, &item.job_id, job::SLICE_FAILED).await {
        tracing::warn!(job_id = %item.job_id, error = %error, "could not mark the export failed");
    }
}

impl WorkQueue for LocalQueue {
    fn enqueue<'a>(&'a self, items: Vec<WorkItem>) -> BoxFuture<'a, Result<(), ExportError>> {
        Box::pin(async move {
            for item in items {
                self.sender
                    .send(item)
                    .map_err(|_| ExportError::Queue("the local worker pool has stopped".into()))?;
            }
            Ok(())
        })
    }
}
