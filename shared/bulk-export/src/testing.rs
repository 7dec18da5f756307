//! Fixtures for tests (feature `testing`), so the local and the AWS tests crash a
//! worker and build claims the same way.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use serde_json::{Value, json};
use smart_auth::BoxFuture;

use crate::files::{Download, ExportFiles, FilesError};

/// Files whose write fails once, the first time `fails(key, n)` says so (`n` counts
/// the writes from 0): a worker dying mid-slice. Everything else goes to `inner`.
pub struct FailOnce<F, P> {
    inner: F,
    fails: P,
    writes: AtomicUsize,
    failed: AtomicBool,
}

impl<F, P> FailOnce<F, P>
where
    P: Fn(&str, usize) -> bool,
{
    pub fn new(inner: F, fails: P) -> FailOnce<F, P> {
        FailOnce {
            inner,
            fails,
            writes: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
        }
    }
}

impl<F, P> ExportFiles for FailOnce<F, P>
where
    F: ExportFiles,
    P: Fn(&str, usize) -> bool + Send + Sync,
{
    fn put<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), FilesError>> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst);
        if (self.fails)(key, n) && !self.failed.swap(true, Ordering::SeqCst) {
            return Box::pin(async { Err(FilesError("worker crashed".into())) });
        }
        self.inner.put(key, body)
    }

    fn download<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Download>, FilesError>> {
        self.inner.download(key)
    }

    fn delete_job<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<(), FilesError>> {
        self.inner.delete_job(job_id)
    }
}

/// A claim of `patient` on `date`, with the money a non-financial export removes
/// (`payment`, `total`).
pub fn eob(patient: &str, date: &str) -> Value {
    json!({
        "resourceType": "ExplanationOfBenefit", "status": "active", "use": "claim",
        "type": {"text": "professional"}, "patient": {"reference": format!("Patient/{patient}")},
        "billablePeriod": {"start": date, "end": date}, "created": date,
        "insurer": {"reference": "Organization/o1"}, "provider": {"reference": "Organization/o1"},
        "outcome": "complete", "insurance": [{"focal": true, "coverage": {"reference": format!("Coverage/c-{patient}")}}],
        "payment": {"amount": {"value": 80}}, "total": [{"category": {"text": "paid"}, "amount": {"value": 80}}]
    })
}
