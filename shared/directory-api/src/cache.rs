//! The directory's answers to GET, kept in memory for as long as a shared cache may
//! keep them anyway (`Cache-Control: public, max-age`), and only while the directory
//! is the one they were computed from.
//!
//! Why: the directory is public, the same for every caller, and changes only when a
//! file is loaded, while the same few searches (an app's "find a cardiologist near
//! me", Inferno's test kit) come again and again. A search reads tens to hundreds of
//! records; a cached answer is one hash look-up. Each entry carries the directory's
//! *generation* (the load status record's version, [`directory_load::generation`]),
//! read with every request (one key Get, far cheaper than a search), so an applied
//! load retires every earlier answer at once, not after `max-age`.

use std::time::Duration;

use bytes::Bytes;
use fhir_store::KeyValueStore;

#[derive(Clone)]
struct Answer {
    generation: u64,
    body: Bytes,
    etag: Option<String>,
}

pub struct ResponseCache {
    answers: moka::sync::Cache<String, Answer>,
}

impl ResponseCache {
    /// At most `max_bytes` of answers, each for at most `ttl`.
    pub fn new(max_bytes: u64, ttl: Duration) -> Self {
        let answers = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, answer: &Answer| {
                let size = key.len() + answer.body.len() + 64;
                u32::try_from(size).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .build();
        ResponseCache { answers }
    }

    /// The directory's generation; `None` when the store cannot say (then nothing
    /// is served from or put into the cache).
    pub(crate) async fn generation<S: KeyValueStore>(&self, store: &S) -> Option<u64> {
        directory_load::generation(store).await.ok()
    }

    pub(crate) fn get(&self, key: &str, generation: u64) -> Option<(Bytes, Option<String>)> {
        self.answers
            .get(key)
            .filter(|answer| answer.generation == generation)
            .map(|answer| (answer.body, answer.etag))
    }

    pub(crate) fn insert(&self, key: String, generation: u64, body: Bytes, etag: Option<String>) {
        self.answers.insert(
            key,
            Answer {
                generation,
                body,
                etag,
            },
        );
    }
}
