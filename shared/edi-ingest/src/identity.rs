//! Who a file is: the label shown in reports and logs, and the key of its ledger record.

use sha2::{Digest, Sha256};

/// A file's identity. The label is an S3 URI or a local path, never file content, so
/// it is safe to log; the ledger key is a SHA-256 so that any S3 key (up to 1024
/// bytes, any characters) fits the key-value store's 256-byte, no-control-character keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    label: String,
    ledger_key: String,
}

impl FileIdentity {
    /// An S3 object version: the ledger key covers bucket, key and ETag, so a
    /// duplicate event for the same upload is a no-op while a new upload under the
    /// same key (new ETag) is processed again.
    pub fn s3(bucket: &str, key: &str, etag: &str) -> Self {
        let etag = etag.trim_matches('"');
        FileIdentity {
            label: format!("s3://{bucket}/{key}"),
            ledger_key: hex_sha256(&[b"s3", bucket.as_bytes(), key.as_bytes(), etag.as_bytes()]),
        }
    }

    /// A local file keyed by its content: the same bytes under another name, or
    /// dropped into the inbox twice, are processed once.
    pub fn content(label: impl Into<String>, bytes: &[u8]) -> Self {
        let mut hash = ContentHash::new();
        hash.update(bytes);
        hash.finish(label).0
    }

    /// The S3 URI or path, for reports and logs.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The ledger record's key (64 hex digits).
    pub fn ledger_key(&self) -> &str {
        &self.ledger_key
    }
}

/// [`FileIdentity::content`] computed chunk by chunk, for files read as a stream,
/// together with the plain SHA-256 of the content (what the pipeline's passes check
/// they read).
pub(crate) struct ContentHash {
    ledger: Sha256,
    plain: Sha256,
}

impl ContentHash {
    pub(crate) fn new() -> Self {
        let mut ledger = Sha256::new();
        ledger.update(b"sha256");
        ledger.update([0x1f]);
        ContentHash {
            ledger,
            plain: Sha256::new(),
        }
    }

    pub(crate) fn update(&mut self, chunk: &[u8]) {
        self.ledger.update(chunk);
        self.plain.update(chunk);
    }

    /// The identity (same ledger key as [`FileIdentity::content`] over all the
    /// chunks) and the content's SHA-256.
    pub(crate) fn finish(mut self, label: impl Into<String>) -> (FileIdentity, [u8; 32]) {
        self.ledger.update([0x1f]);
        let identity = FileIdentity {
            label: label.into(),
            ledger_key: hex(&self.ledger.finalize()),
        };
        (identity, self.plain.finalize().into())
    }
}

/// SHA-256 of the parts, each followed by a unit separator so that
/// ("ab", "c") and ("a", "bc") differ.
fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0x1f]);
    }
    hex(&hasher.finalize())
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_quotes_do_not_change_the_key_and_parts_do_not_run_together() {
        let a = FileIdentity::s3("b", "inbound/x.x12", "\"abc\"");
        assert_eq!(a, FileIdentity::s3("b", "inbound/x.x12", "abc"));
        assert_ne!(a, FileIdentity::s3("b", "inbound/x.x1", "2abc"));
        assert_eq!(a.ledger_key().len(), 64);
        assert_eq!(a.label(), "s3://b/inbound/x.x12");
    }

    #[test]
    fn content_identity_ignores_the_name() {
        let a = FileIdentity::content("a.x12", b"ISA");
        let b = FileIdentity::content("b.x12", b"ISA");
        assert_eq!(a.ledger_key(), b.ledger_key());
        assert_ne!(
            a.ledger_key(),
            FileIdentity::content("a.x12", b"ISB").ledger_key()
        );
    }

    #[test]
    fn content_hashed_in_chunks_is_the_same_identity() {
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut hash = ContentHash::new();
        for chunk in bytes.chunks(4096 + 7) {
            hash.update(chunk);
        }
        let (identity, plain) = hash.finish("a.x12");
        assert_eq!(identity, FileIdentity::content("a.x12", &bytes));
        // Unchanged from before the streaming hash: ledgers already written stay valid.
        assert_eq!(identity.ledger_key(), hex_sha256(&[b"sha256", &bytes]));
        let expected: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(plain, expected);
    }
}
