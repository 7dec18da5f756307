//! Where export files go: the [`ExportFiles`] port, and its local adapter on disk.
//!
//! On AWS the adapter is S3 (multipart upload, a lifecycle rule for retention, and a
//! short-lived presigned URL behind the token check for downloads).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use smart_auth::BoxFuture;

/// A file store failure.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FilesError(pub String);

/// How a download is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Download {
    /// The file itself.
    Body(Bytes),
    /// A short-lived URL to fetch it from (S3 presigned), after the token was checked.
    Redirect(String),
}

/// The export file store. Keys look like `{job}/{Type}-{slice:06}-{seq:03}.ndjson`.
pub trait ExportFiles: Send + Sync {
    /// Writes (or overwrites) one part.
    fn put<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), FilesError>>;
    /// The part, or `None` when it does not exist (expired, cancelled).
    fn download<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Download>, FilesError>>;
    /// Deletes every part of a job.
    fn delete_job<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<(), FilesError>>;
}

/// Files under a directory (the local runner: `DIR/exports/`).
#[derive(Debug, Clone)]
pub struct LocalFiles {
    root: PathBuf,
}

impl LocalFiles {
    pub fn new(root: impl Into<PathBuf>) -> LocalFiles {
        LocalFiles { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, FilesError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

/// Keys are built by this crate from job ids and type names; anything else (an empty
/// segment, a `..`, an absolute path) is refused, so a key can never leave its root
/// (a directory, a bucket's job prefix) and a job id never names a whole store.
pub fn check_key(key: &str) -> Result<(), FilesError> {
    let ok = !key.is_empty()
        && key.split('/').all(|part| {
            !part.is_empty()
                && part != ".."
                && part != "."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    if ok {
        Ok(())
    } else {
        Err(FilesError(format!("invalid export file key {key:?}")))
    }
}

fn io(path: &Path, e: std::io::Error) -> FilesError {
    FilesError(format!("{}: {e}", path.display()))
}

impl ExportFiles for LocalFiles {
    fn put<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), FilesError>> {
        Box::pin(async move {
            let path = self.path(key)?;
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| io(parent, e))?;
            }
            // Write beside, then rename: a reader never sees half a part.
            let temp = path.with_extension("tmp");
            tokio::fs::write(&temp, &body)
                .await
                .map_err(|e| io(&temp, e))?;
            tokio::fs::rename(&temp, &path)
                .await
                .map_err(|e| io(&path, e))
        })
    }

    fn download<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Download>, FilesError>> {
        Box::pin(async move {
            let path = self.path(key)?;
            match tokio::fs::read(&path).await {
                Ok(bytes) => Ok(Some(Download::Body(Bytes::from(bytes)))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io(&path, e)),
            }
        })
    }

    fn delete_job<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<(), FilesError>> {
        Box::pin(async move {
            let path = self.path(job_id)?;
            // A worker still finishing a slice of the cancelled job may create a file
            // while the folder is being removed (ENOTEMPTY): remove again.
            let mut attempts = 0;
            loop {
                attempts += 1;
                match tokio::fs::remove_dir_all(&path).await {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempts < 5 => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    Err(e) => return Err(io(&path, e)),
                }
            }
        })
    }
}
