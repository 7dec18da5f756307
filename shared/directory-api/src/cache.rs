//! The directory's answers to GET, kept in memory for as long as a shared cache may
//! keep them anyway (`Cache-Control: public, max-age`), and only while the directory
//! is the one they were computed from.
//!
//! Why: the directory is public, the same for every caller, and changes only when a
//! file is loaded, while the same few searches (an app's "find a cardiologist near
//! me", Inferno's test kit) come again and again. A search reads tens to hundreds of
//! records; a cached answer is one hash look-up. Keys carry the directory's
//! *generation* (the load status record's version, [`directory_load::generation`]),
//! read with every request (one key Get, far cheaper than a search), so an applied
//! load retires every earlier answer at once, not after `max-age`. Concurrent misses
//! of one key compute it once (a popular search after a load, or at start, would
//! otherwise be computed by every waiting connection at the same time).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fhir_api::ApiError;
use fhir_store::KeyValueStore;

/// A GET answer: the body and its ETag.
pub(crate) type Answer = (Bytes, Option<String>);

pub struct ResponseCache {
    answers: moka::future::Cache<String, Answer>,
}

impl ResponseCache {
    /// At most `max_bytes` of answers, each for at most `ttl`.
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        let answers = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, answer: &Answer| {
                let size = key.len() + answer.0.len() + 64;
                u32::try_from(size).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .build();
        ResponseCache { answers }
    }

    /// The answer to `url` for the directory as it is now: from memory, or computed
    /// by `compute` (once, however many ask at the same time). Errors are not kept.
    /// When the store cannot say which directory it holds, nothing is cached.
    pub(crate) async fn get_or_compute<S, F>(
        &self,
        store: &S,
        url: &str,
        compute: F,
    ) -> Result<Answer, ApiError>
    where
        S: KeyValueStore,
        F: Future<Output = Result<Answer, ApiError>>,
    {
        let Ok(generation) = directory_load::generation(store).await else {
            return compute.await;
        };
        self.answers
            .try_get_with(format!("{generation}|{url}"), compute)
            .await
            .map_err(|error: Arc<ApiError>| error.as_ref().clone())
    }
}
