use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use secrets::{KeyMaterial, KeyRing, SecretSource, SourceError};
use serde::{Deserialize, Serialize};

use crate::RunnerError;

/// The runner's data directory:
///
/// ```text
/// DIR/fhir.redb         the embedded store
/// DIR/directory.redb    the provider directory's store (Plan-Net), kept apart
/// DIR/issuer/           the local token issuer's RSA key (created on first start)
/// DIR/cursor.key        the secret that seals paging cursors (cursor.key.previous,
///                       if present, still opens: a local rotation)
/// DIR/members.txt       the demo members' Patient ids, one per line
/// DIR/demo/             the demo's X12 files as loaded on first start, with their
///                       ingest reports (.json) and 999s
/// DIR/server.json       the base URL `serve` last used, so `token` names it as audience
/// ```
///
/// `members` and `token` read only the small files, never the store, so they work
/// while `serve` holds the store open.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct ServerInfo {
    base_url: String,
}

/// The base URL when `serve` has never run: its default.
const DEFAULT_BASE_URL: &str = "http://localhost:8080";

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn ensure(&self) -> Result<(), RunnerError> {
        fs::create_dir_all(&self.root).map_err(|e| RunnerError::io(&self.root, e))
    }

    pub fn store_path(&self) -> PathBuf {
        self.root.join("fhir.redb")
    }

    /// The provider directory's own store, apart from the members' data.
    pub fn directory_store_path(&self) -> PathBuf {
        self.root.join("directory.redb")
    }

    pub fn issuer_dir(&self) -> PathBuf {
        self.root.join("issuer")
    }

    /// Where `serve` writes the demo's X12 files (and their reports) on first start.
    pub fn demo_dir(&self) -> PathBuf {
        self.root.join("demo")
    }

    pub fn members(&self) -> Result<Vec<String>, RunnerError> {
        let path = self.root.join("members.txt");
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(RunnerError::io(&path, e)),
        }
    }

    pub fn write_members(&self, members: &[String]) -> Result<(), RunnerError> {
        let mut text = members.join("\n");
        text.push('\n');
        self.write_private(&self.root.join("members.txt"), text.as_bytes())
    }

    pub fn base_url(&self) -> Result<String, RunnerError> {
        let path = self.root.join("server.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<ServerInfo>(&bytes)
                .map(|info| info.base_url)
                .map_err(|e| RunnerError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DEFAULT_BASE_URL.to_owned()),
            Err(e) => Err(RunnerError::io(&path, e)),
        }
    }

    pub fn write_base_url(&self, base_url: &str) -> Result<(), RunnerError> {
        let info = serde_json::to_vec_pretty(&ServerInfo {
            base_url: base_url.to_owned(),
        })
        .map_err(|e| RunnerError::Invalid(e.to_string()))?;
        self.write_private(&self.root.join("server.json"), &info)
    }

    /// The keys that seal paging cursors (`DIR/cursor.key`, made on first use from the
    /// system's secure random source), through the same port as Secrets Manager on AWS.
    pub async fn cursor_keys(&self) -> Result<KeyRing, RunnerError> {
        self.key_ring("cursor.key").await
    }

    /// The key the `apps` commands present to a running `serve` (`DIR/admin.key`).
    pub fn admin_key(&self) -> Result<String, RunnerError> {
        let bytes = self.secret_file("admin.key")?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The sign-in stand-in's keys (`DIR/signin.key`): prove transactions to the
    /// triggers and key the one-time-code hashes.
    pub async fn sign_in_keys(&self) -> Result<KeyRing, RunnerError> {
        self.key_ring("signin.key").await
    }

    async fn key_ring(&self, name: &'static str) -> Result<KeyRing, RunnerError> {
        DataDirSecret {
            data: self.clone(),
            name,
        }
        .key_ring()
        .await
        .map_err(|e| RunnerError::Invalid(e.to_string()))
    }

    /// A 32-byte secret file, made on first use from the system's secure random source.
    fn secret_file(&self, name: &str) -> Result<Vec<u8>, RunnerError> {
        let path = self.root.join(name);
        match fs::read(&path) {
            Ok(secret) if secret.len() >= 32 => return Ok(secret),
            Ok(_) => {
                return Err(RunnerError::Invalid(format!(
                    "{} is too short",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RunnerError::io(&path, e)),
        }
        let mut secret = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut secret)
            .map_err(|_| RunnerError::Invalid("no secure random source".into()))?;
        self.write_private(&path, &secret)?;
        Ok(secret)
    }

    /// Writes a file readable by its owner only: keys and member ids are sensitive.
    fn write_private(&self, path: &Path, contents: &[u8]) -> Result<(), RunnerError> {
        self.ensure()?;
        let temp = path.with_extension("tmp");
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp).map_err(|e| RunnerError::io(&temp, e))?;
        file.write_all(contents)
            .map_err(|e| RunnerError::io(&temp, e))?;
        file.sync_all().map_err(|e| RunnerError::io(&temp, e))?;
        // Rename is atomic: a concurrent reader sees the old file or the new one.
        fs::rename(&temp, path).map_err(|e| RunnerError::io(path, e))
    }
}

/// A secret file of the data directory as a key ring: the local adapter of the port
/// Secrets Manager fills on AWS. `DIR/<name>` seals; `DIR/<name>.previous`, when
/// present, still opens. A local rotation: rename the file to `<name>.previous` and
/// restart `serve` (a new one is made).
struct DataDirSecret {
    data: DataDir,
    name: &'static str,
}

impl SecretSource for DataDirSecret {
    async fn key_ring(&self) -> Result<KeyRing, SourceError> {
        let current = self
            .data
            .secret_file(self.name)
            .map_err(|e| SourceError(e.to_string()))?;
        let previous_path = self.data.root.join(format!("{}.previous", self.name));
        let previous = match fs::read(&previous_path) {
            Ok(bytes) => Some(KeyMaterial::new(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(SourceError(format!("{}: {e}", previous_path.display()))),
        };
        Ok(KeyRing::new(KeyMaterial::new(current), previous))
    }
}
