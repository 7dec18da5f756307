//! The object-store port the pipeline reads files from and writes reports to: S3 in
//! AWS (crate `s3-objects`), a local folder for the runner ([`FolderObjects`]).

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::identity::FileIdentity;
use crate::ledger::Disposition;

/// A file read in full, with the identity its ledger record is keyed by.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub bytes: Vec<u8>,
    pub identity: FileIdentity,
}

/// Why an object operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The object is gone (deleted after its event was sent). Not worth retrying.
    #[error("{0} does not exist")]
    NotFound(String),
    /// Over the size limit: refused before reading it.
    #[error("{label} is {size} bytes, over the limit of {max} bytes")]
    TooLarge {
        label: String,
        size: u64,
        max: usize,
    },
    /// Anything else (network, permissions, throttling after retries): retryable.
    #[error("object store: {0}")]
    Backend(String),
}

/// Read a file, write its outputs, and mark it processed or rejected.
pub trait ObjectStore: Send + Sync {
    /// The object's bytes, refused with [`ObjectError::TooLarge`] when over `max_bytes`.
    fn get(
        &self,
        key: &str,
        max_bytes: usize,
    ) -> impl Future<Output = Result<StoredObject, ObjectError>> + Send;

    /// Writes (or overwrites) an object.
    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &'static str,
    ) -> impl Future<Output = Result<(), ObjectError>> + Send;

    /// Marks the source object as processed or rejected: S3 tags it (`status=…`), a
    /// folder moves it into `processed/` or `rejected/`.
    fn dispose(
        &self,
        key: &str,
        disposition: Disposition,
    ) -> impl Future<Output = Result<(), ObjectError>> + Send;

    /// Where the output with `extension` (`json`, `999`) for `key` goes. Default:
    /// `reports/<key>.<extension>`, outside `inbound/`, so it triggers nothing.
    fn output_key(&self, key: &str, _disposition: Disposition, extension: &str) -> String {
        format!("reports/{key}.{extension}")
    }
}

/// A folder as an object store: keys are relative paths under `root`. This is how
/// `patient-access serve` watches `DATA/inbox/` the way S3 triggers the Lambda.
///
/// Disposal moves `inbox/x.x12` to `processed/x.x12` (or `rejected/`), and the
/// report and 999 go next to it (`processed/x.x12.json`, `processed/x.x12.999`).
/// Identity is the content's SHA-256, so the same bytes dropped in twice are
/// processed once.
#[derive(Debug, Clone)]
pub struct FolderObjects {
    root: PathBuf,
}

impl FolderObjects {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FolderObjects { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, ObjectError> {
        let relative = Path::new(key);
        let safe = relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !safe {
            return Err(ObjectError::NotFound(key.to_owned()));
        }
        Ok(self.root.join(relative))
    }

    fn disposed_key(key: &str, disposition: Disposition) -> String {
        let name = Path::new(key)
            .file_name()
            .map_or_else(|| key.to_owned(), |n| n.to_string_lossy().into_owned());
        format!("{}/{name}", disposition.as_str())
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> ObjectError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ObjectError::NotFound(path.display().to_string())
    } else {
        ObjectError::Backend(format!("{}: {e}", path.display()))
    }
}

impl ObjectStore for FolderObjects {
    async fn get(&self, key: &str, max_bytes: usize) -> Result<StoredObject, ObjectError> {
        let path = self.path(key)?;
        let size = tokio::fs::metadata(&path)
            .await
            .map_err(|e| io_error(&path, &e))?
            .len();
        if size > max_bytes as u64 {
            return Err(ObjectError::TooLarge {
                label: path.display().to_string(),
                size,
                max: max_bytes,
            });
        }
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| io_error(&path, &e))?;
        let identity = FileIdentity::content(path.display().to_string(), &bytes);
        Ok(StoredObject { bytes, identity })
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        _content_type: &'static str,
    ) -> Result<(), ObjectError> {
        let path = self.path(key)?;
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_error(parent, &e))?;
        }
        // Write then rename: a reader never sees half a report.
        let temp = path.with_extension("partial");
        tokio::fs::write(&temp, body)
            .await
            .map_err(|e| io_error(&temp, &e))?;
        tokio::fs::rename(&temp, &path)
            .await
            .map_err(|e| io_error(&path, &e))
    }

    async fn dispose(&self, key: &str, disposition: Disposition) -> Result<(), ObjectError> {
        let from = self.path(key)?;
        let to = self.path(&Self::disposed_key(key, disposition))?;
        if let Some(parent) = to.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_error(parent, &e))?;
        }
        tokio::fs::rename(&from, &to)
            .await
            .map_err(|e| io_error(&from, &e))
    }

    fn output_key(&self, key: &str, disposition: Disposition, extension: &str) -> String {
        format!("{}.{extension}", Self::disposed_key(key, disposition))
    }
}
