//! The directory's answers to GET, kept in memory for as long as a shared cache may
//! keep them anyway (`Cache-Control: public, max-age`), and only while the directory
//! is the one they were computed from; and the store reads behind them
//! ([`crate::reads`]), kept on the same terms, for searches that are new as a whole.
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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fhir_api::ApiError;
use fhir_store::KeyValueStore;

use crate::reads::ReadCache;

/// The generation as last read, and how many times this process changed the
/// directory (so a read that began before a change does not undo it).
#[derive(Default)]
struct HeldGeneration {
    read: Option<(u64, Instant)>,
    changes: u64,
}

/// How often a serving process reads the directory's generation: a load applied by
/// another process (the ingest function on AWS) shows within it.
pub const SERVING_RECHECK: Duration = Duration::from_secs(1);

/// A GET answer: the body and its ETag.
pub(crate) type Answer = (Bytes, Option<String>);

pub struct ResponseCache {
    answers: moka::future::Cache<String, Answer>,
    reads: ReadCache,
    /// The generation last read from the store, and when.
    generation: Mutex<HeldGeneration>,
    /// How long that reading is trusted; zero reads the store on every request.
    recheck_after: Duration,
}

impl ResponseCache {
    /// At most `max_bytes` in all, each entry for at most `ttl`: a quarter for whole
    /// answers, the rest for the reads behind them (records are most of it, and one
    /// record serves many answers).
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        let answers = moka::future::Cache::builder()
            .max_capacity(max_bytes / 4)
            .weigher(|key: &String, answer: &Answer| {
                let size = key.len() + answer.0.len() + 64;
                u32::try_from(size).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .build();
        ResponseCache {
            answers,
            reads: ReadCache::new(max_bytes - max_bytes / 4, ttl),
            generation: Mutex::new(HeldGeneration::default()),
            recheck_after: Duration::ZERO,
        }
    }

    /// The cache as the local server and the Lambda function run it: answers and
    /// reads kept for [`crate::CACHE_MAX_AGE`], the generation read again at most
    /// every [`SERVING_RECHECK`] (see [`Self::with_generation_recheck`]).
    pub fn serving(max_bytes: u64) -> Self {
        Self::new(max_bytes, crate::CACHE_MAX_AGE).with_generation_recheck(SERVING_RECHECK)
    }

    /// The same, reading the directory's generation from the store at most once per
    /// `every` rather than on every request, so a load shows up to `every` later
    /// (unless the process that applied it says so: [`Self::directory_changed`]).
    /// Why: with the answers and reads in memory, that one read was most of what a
    /// request cost (a hop to redb's blocking pool locally, a GetItem per request
    /// on AWS); CMS asks for a directory current within 30 days.
    pub fn with_generation_recheck(mut self, every: Duration) -> Self {
        self.recheck_after = every;
        self
    }

    /// A load was applied by this process: the next request reads the generation.
    pub fn directory_changed(&self) {
        if let Ok(mut held) = self.generation.lock() {
            held.read = None;
            held.changes += 1;
        }
    }

    /// The directory's generation, which keys everything cached; `None` when the
    /// store cannot say which directory it holds (then nothing is cached).
    pub(crate) async fn generation<S: KeyValueStore>(&self, store: &S) -> Option<u64> {
        let changes = {
            let held = self.generation.lock().ok()?;
            if let Some((generation, read_at)) = held.read
                && read_at.elapsed() < self.recheck_after
            {
                return Some(generation);
            }
            held.changes
        };
        let generation = directory_load::generation(store).await.ok()?;
        if let Ok(mut held) = self.generation.lock()
            && held.changes == changes
        {
            held.read = Some((generation, Instant::now()));
        }
        Some(generation)
    }

    pub(crate) fn reads(&self) -> &ReadCache {
        &self.reads
    }

    /// The answer to `url` for the directory at `generation`: from memory, or
    /// computed by `compute` (once, however many ask at the same time). Errors are
    /// not kept.
    pub(crate) async fn get_or_compute<F>(
        &self,
        generation: u64,
        url: &str,
        compute: F,
    ) -> Result<Answer, ApiError>
    where
        F: Future<Output = Result<Answer, ApiError>>,
    {
        self.answers
            .try_get_with(format!("{generation}|{url}"), compute)
            .await
            .map_err(|error: Arc<ApiError>| error.as_ref().clone())
    }
}
