//! The object-store port the pipeline reads files from and writes reports to: S3 in
//! AWS (crate `s3-objects`), a local folder for the runner ([`FolderObjects`]).
//!
//! A file is never held in memory as a whole. [`ObjectStore::get`] hands back a
//! [`StoredObject`]: a local file the pipeline reads twice as a stream (a verdict
//! pass, then an apply pass). A folder opens its file in place; a remote store
//! writes the body chunk by chunk into a [`Spool`], an unnamed temporary file.

use std::fs::File;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::identity::{ContentHash, FileIdentity};
use crate::report::Disposition;

/// Bytes read from a file at a time when hashing it in place.
const READ_CHUNK: usize = 64 * 1024;
/// Write buffer of a [`Spool`]: S3 hands out small chunks, the file gets large writes.
const SPOOL_BUFFER: usize = 1024 * 1024;

/// A file ready to be read (as often as needed) from the start, with the identity
/// its ledger record is keyed by.
#[derive(Debug)]
pub struct StoredObject {
    pub identity: FileIdentity,
    /// Bytes in the file.
    pub size: u64,
    content: Content,
}

#[derive(Debug)]
enum Content {
    /// A local file (in place, or a spool) and the SHA-256 of what was in it when
    /// it was opened: the pipeline's passes check that they read the same bytes.
    File { file: File, sha256: [u8; 32] },
    /// Bytes in memory (`Ingestor::ingest_bytes`).
    Bytes(Arc<Vec<u8>>),
}

/// What [`StoredObject::open`] reads: the file (or bytes) from the start. Owned, so
/// it can move to the blocking thread pool.
pub(crate) struct ObjectReader(ReaderKind);

enum ReaderKind {
    File(File),
    Bytes(std::io::Cursor<SharedBytes>),
}

struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            ReaderKind::File(file) => file.read(buf),
            ReaderKind::Bytes(cursor) => cursor.read(buf),
        }
    }
}

impl StoredObject {
    /// A local file (opened for reading) holding `size` bytes whose SHA-256 is
    /// `sha256`. The file's position does not matter: every read starts at 0.
    pub fn from_file(identity: FileIdentity, file: File, size: u64, sha256: [u8; 32]) -> Self {
        StoredObject {
            identity,
            size,
            content: Content::File { file, sha256 },
        }
    }

    /// Bytes already in memory.
    pub fn from_bytes(identity: FileIdentity, bytes: Vec<u8>) -> Self {
        StoredObject {
            identity,
            size: bytes.len() as u64,
            content: Content::Bytes(Arc::new(bytes)),
        }
    }

    /// A reader from the first byte. Readers of a file share its position, so use
    /// one at a time.
    pub(crate) fn open(&self) -> std::io::Result<ObjectReader> {
        Ok(ObjectReader(match &self.content {
            Content::File { file, .. } => {
                let mut file = file.try_clone()?;
                file.seek(SeekFrom::Start(0))?;
                ReaderKind::File(file)
            }
            Content::Bytes(bytes) => {
                ReaderKind::Bytes(std::io::Cursor::new(SharedBytes(Arc::clone(bytes))))
            }
        }))
    }

    /// The whole content in memory, for formats that are read at once (provider
    /// directory files, whose size the caller's `max_bytes` bounded).
    pub fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.open()?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// The SHA-256 of the content when it was stored, when known (files).
    pub(crate) fn sha256(&self) -> Option<[u8; 32]> {
        match &self.content {
            Content::File { sha256, .. } => Some(*sha256),
            Content::Bytes(_) => None,
        }
    }
}

/// Why an object operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The object is gone (deleted after its event was sent). Not worth retrying.
    #[error("{0} does not exist")]
    NotFound(String),
    /// Over the size limit: refused before (or while) reading it.
    #[error("{label} is {size} bytes, over the limit of {max} bytes")]
    TooLarge {
        label: String,
        size: u64,
        max: usize,
    },
    /// Anything else (network, permissions, throttling after retries, a full
    /// temporary disk): retryable.
    #[error("object store: {0}")]
    Backend(String),
}

/// A body streamed into an unnamed temporary file, so that memory stays bounded
/// whatever the object's size: the way a remote [`ObjectStore`] implements `get`.
///
/// The file is created with [`tempfile::tempfile_in`], which unlinks it at once
/// (`O_TMPFILE` on Linux): its space is returned when the [`StoredObject`] is
/// dropped, and also when the process dies, so a crashed or timed-out Lambda
/// invocation leaves nothing behind in `/tmp` for the next one. The size cap is
/// enforced as bytes arrive, and the SHA-256 is computed on the way.
pub struct Spool {
    label: String,
    max_bytes: usize,
    written: u64,
    hasher: Sha256,
    file: tokio::io::BufWriter<tokio::fs::File>,
}

impl Spool {
    /// A spool in the system's temporary directory (`TMPDIR`, else `/tmp`: the
    /// Lambda's ephemeral storage). `label` names the object in errors.
    pub async fn new(label: impl Into<String>, max_bytes: usize) -> Result<Spool, ObjectError> {
        Spool::new_in(std::env::temp_dir(), label, max_bytes).await
    }

    /// A spool in `dir`.
    pub async fn new_in(
        dir: impl Into<PathBuf>,
        label: impl Into<String>,
        max_bytes: usize,
    ) -> Result<Spool, ObjectError> {
        let dir = dir.into();
        let file = tokio::task::spawn_blocking(move || {
            tempfile::tempfile_in(&dir).map_err(|e| io_error(&dir, &e))
        })
        .await
        .map_err(|e| ObjectError::Backend(format!("creating a spool file: {e}")))??;
        Ok(Spool {
            label: label.into(),
            max_bytes,
            written: 0,
            hasher: Sha256::new(),
            file: tokio::io::BufWriter::with_capacity(
                SPOOL_BUFFER,
                tokio::fs::File::from_std(file),
            ),
        })
    }

    /// Appends a chunk; [`ObjectError::TooLarge`] as soon as the total passes the cap.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ObjectError> {
        let total = self.written + chunk.len() as u64;
        if total > self.max_bytes as u64 {
            return Err(ObjectError::TooLarge {
                label: self.label.clone(),
                size: total,
                max: self.max_bytes,
            });
        }
        self.hasher.update(chunk);
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| self.write_error(&e))?;
        self.written = total;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes the file and hands it over as the object `identity`.
    pub async fn finish(mut self, identity: FileIdentity) -> Result<StoredObject, ObjectError> {
        self.file.flush().await.map_err(|e| self.write_error(&e))?;
        let file = self.file.into_inner().into_std().await;
        Ok(StoredObject::from_file(
            identity,
            file,
            self.written,
            self.hasher.finalize().into(),
        ))
    }

    fn write_error(&self, e: &std::io::Error) -> ObjectError {
        ObjectError::Backend(format!(
            "spooling {} to the temporary directory: {e}",
            self.label
        ))
    }
}

/// Read a file, write its outputs, and mark it processed or rejected.
pub trait ObjectStore: Send + Sync {
    /// The object as a local file to read from (see [`Spool`]), refused with
    /// [`ObjectError::TooLarge`] when over `max_bytes`. Never holds the whole
    /// object in memory.
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

/// Opens `path`, checks its size and hashes it: [`FolderObjects::get`].
fn open_in_place(path: &Path, max_bytes: usize) -> Result<StoredObject, ObjectError> {
    let label = path.display().to_string();
    let too_large = |size: u64| ObjectError::TooLarge {
        label: label.clone(),
        size,
        max: max_bytes,
    };
    let mut file = File::open(path).map_err(|e| io_error(path, &e))?;
    let declared = file.metadata().map_err(|e| io_error(path, &e))?.len();
    if declared > max_bytes as u64 {
        return Err(too_large(declared));
    }
    let mut hash = ContentHash::new();
    let mut buf = vec![0; READ_CHUNK];
    let mut size: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(path, &e)),
        };
        size += n as u64;
        if size > max_bytes as u64 {
            // It grew since we looked at its length.
            return Err(too_large(size));
        }
        hash.update(buf.get(..n).unwrap_or_default());
    }
    let (identity, sha256) = hash.finish(label);
    Ok(StoredObject::from_file(identity, file, size, sha256))
}

fn io_error(path: &Path, e: &std::io::Error) -> ObjectError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ObjectError::NotFound(path.display().to_string())
    } else {
        ObjectError::Backend(format!("{}: {e}", path.display()))
    }
}

impl ObjectStore for FolderObjects {
    /// Opens the file in place (no copy) and hashes it for its identity, reading it
    /// in chunks on the blocking pool. The pipeline reads it twice more and checks
    /// both passes see these same bytes, so a file rewritten in place while being
    /// ingested fails the run instead of being half applied and recorded as done.
    async fn get(&self, key: &str, max_bytes: usize) -> Result<StoredObject, ObjectError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || open_in_place(&path, max_bytes))
            .await
            .map_err(|e| ObjectError::Backend(format!("reading {key}: {e}")))?
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(object: &StoredObject) -> Vec<u8> {
        let mut bytes = Vec::new();
        let read = object.open().and_then(|mut r| r.read_to_end(&mut bytes));
        assert!(read.is_ok(), "{read:?}");
        bytes
    }

    #[tokio::test]
    async fn a_spool_holds_every_chunk_past_its_buffer_and_reads_back_twice() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let body: Vec<u8> = (0..3 * SPOOL_BUFFER + 12_345)
            .map(|i| (i % 253) as u8)
            .collect();
        let spool = Spool::new_in(dir.path(), "s3://b/k", body.len()).await;
        let mut spool = spool.unwrap_or_else(|e| panic!("{e}"));
        for chunk in body.chunks(8 * 1024 + 3) {
            let written = spool.write(chunk).await;
            assert!(written.is_ok(), "{written:?}");
        }
        let identity = FileIdentity::s3("b", "k", "etag");
        let object = spool
            .finish(identity)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(object.size, body.len() as u64);
        let expected: [u8; 32] = Sha256::digest(&body).into();
        assert_eq!(object.sha256(), Some(expected));
        assert!(read_all(&object) == body, "first read");
        assert!(read_all(&object) == body, "second read starts over");
        // Unnamed: nothing is left in the directory, even before the object is dropped.
        let left = std::fs::read_dir(dir.path())
            .map(Iterator::count)
            .unwrap_or(0);
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn a_spool_refuses_the_chunk_that_passes_the_cap() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let spool = Spool::new_in(dir.path(), "s3://b/k", 10).await;
        let mut spool = spool.unwrap_or_else(|e| panic!("{e}"));
        assert!(spool.write(b"0123456789").await.is_ok());
        match spool.write(b"x").await {
            Err(ObjectError::TooLarge {
                size: 11, max: 10, ..
            }) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }
}
