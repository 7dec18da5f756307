//! Freshness: when the directory was last loaded, kept in the directory's own
//! key-value records so the API can say it (CMS asks for updates within 30 days).

use fhir_store::{KeyValueStore, StoreResult};
use serde::{Deserialize, Serialize};

const NAMESPACE: &str = "directory";
const KEY: &str = "status";

/// The last successful load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryStatus {
    /// `meta.lastUpdated`-style instant of the last applied file.
    pub last_loaded: String,
    /// The file's name (no content).
    pub source: String,
}

pub async fn read_status<S: KeyValueStore>(store: &S) -> StoreResult<Option<DirectoryStatus>> {
    Ok(store
        .get(NAMESPACE, KEY)
        .await?
        .and_then(|entry| serde_json::from_value(entry.value).ok()))
}

/// A number that changes whenever a load applies a file (the status record's write
/// version; 0 before the first load): what the directory API's response cache keys on.
pub async fn generation<S: KeyValueStore>(store: &S) -> StoreResult<u64> {
    Ok(store
        .get(NAMESPACE, KEY)
        .await?
        .map_or(0, |entry| entry.version))
}

pub async fn write_status<S: KeyValueStore>(
    store: &S,
    status: &DirectoryStatus,
) -> StoreResult<()> {
    let value = serde_json::to_value(status)
        .map_err(|e| fhir_store::StoreError::InvalidValue(e.to_string()))?;
    store.put(NAMESPACE, KEY, &value, None).await
}
