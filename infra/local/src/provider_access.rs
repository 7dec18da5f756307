//! The Provider Access API in the local runner: the bulk handler mounted on `serve`
//! (files in `DIR/exports/`, slices on tokio tasks), and the plan's commands
//! (`attribution load`, `apps register --backend`; `provider-access opt-out|opt-in` is
//! in [`crate::sharing`]), which go through the running server's admin endpoint or open
//! the store directly.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bulk_export::api::{BulkConfig, ProviderAccessApi};
use bulk_export::local::LocalQueue;
use bulk_export::{ExportFiles, LocalFiles, WorkQueue};
use bytes::Bytes;
use fhir_store::{KeyValueStore, ResourceStore};
use http::{Request, Response};
use payer_to_payer::bulk_match::BulkMatchRunner;
use payer_to_payer::{MemberMatchApi, MemberMatchConfig};
use smart_auth::{LocalIssuer, StaticJwks, TokenVerifier, VerifierConfig};

use crate::{DataDir, RunnerError};

/// How long export files and manifests are kept locally (the template's
/// `ExportRetentionDays` on AWS, at least one day).
pub const LOCAL_EXPORT_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Slices run at once.
const LOCAL_WORKERS: usize = 4;

/// Lets [`crate::LocalServer`] hold a backend-client handler (bulk, `$member-match`)
/// without its type parameter.
pub trait BulkHandler: Send + Sync {
    fn handle(
        &self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Response<Bytes>> + Send + '_>>;
}

impl<S: ResourceStore + KeyValueStore + 'static> BulkHandler for ProviderAccessApi<S> {
    fn handle(
        &self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Response<Bytes>> + Send + '_>> {
        Box::pin(ProviderAccessApi::handle(self, request))
    }
}

/// The handlers for backend clients over `store`: the bulk API (Provider Access) and
/// Payer-to-Payer's, over one token verifier and one work queue (so a
/// `$davinci-data-export` job runs on the same workers and is polled at the same
/// `/bulk-status`), writing files under `exports_dir`, under `rules`' failed-match
/// budget and sensitive-code list. Must run inside a tokio runtime (it starts the
/// worker pool).
pub fn local_backend_apis<S: ResourceStore + KeyValueStore + 'static>(
    store: Arc<S>,
    issuer: &LocalIssuer,
    base_url: &str,
    exports_dir: &Path,
    rules: MemberMatchConfig,
) -> (ProviderAccessApi<S>, MemberMatchApi<S>) {
    let base_url = base_url.trim_end_matches('/').to_owned();
    let verifier = backend_verifier(issuer, &base_url);
    let files: Arc<dyn ExportFiles> = Arc::new(LocalFiles::new(exports_dir));
    let config = MemberMatchConfig {
        base_url: base_url.clone(),
        retention: LOCAL_EXPORT_RETENTION,
        ..rules
    };
    // The workers run export slices and `$bulk-member-match` chunks alike.
    let matcher = BulkMatchRunner::new(Arc::clone(&store), config.budget);
    let queue: Arc<dyn WorkQueue> = Arc::new(LocalQueue::start_with(
        Arc::clone(&store),
        Arc::clone(&files),
        LOCAL_WORKERS,
        Some(Arc::new(matcher)),
    ));
    let bulk = ProviderAccessApi::new(
        Arc::clone(&store),
        Arc::clone(&verifier),
        files,
        Arc::clone(&queue),
        BulkConfig {
            base_url: base_url.clone(),
            retention: LOCAL_EXPORT_RETENTION,
        },
    );
    let payer_to_payer = MemberMatchApi::new(store, verifier, queue, config);
    (bulk, payer_to_payer)
}

/// The verifier of backend tokens from this server's own `/token` (bulk and
/// `$member-match` alike).
pub fn backend_verifier(issuer: &LocalIssuer, base_url: &str) -> Arc<TokenVerifier> {
    let base_url = base_url.trim_end_matches('/').to_owned();
    Arc::new(TokenVerifier::new(VerifierConfig::new(
        base_url.clone(),
        base_url,
        Arc::new(StaticJwks::new(issuer.jwks())),
    )))
}

/// One attribution file into the store; the JSON report.
pub async fn load_one<S: ResourceStore + KeyValueStore>(
    store: &S,
    name: &str,
    bytes: &[u8],
) -> Result<attribution::LoadReport, attribution::AttributionError> {
    attribution::load_file(store, name, bytes).await
}

/// `attribution load`: each file's JSON report on stdout; fails when any was rejected.
pub async fn attribution_load(
    data: &DataDir,
    files: &[std::path::PathBuf],
) -> Result<(), RunnerError> {
    let mut rejected = 0;
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| RunnerError::io(file, e))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let query = format!("?name={}", percent(&name));
        let report = match crate::commands::admin_request(
            data,
            &format!("{}{query}", crate::admin::ATTRIBUTION_PATH),
            Some(bytes.clone()),
        )
        .await?
        {
            Some(value) => value,
            None => {
                let store = crate::commands::open_store(data)?;
                serde_json::to_value(
                    load_one(&store, &name, &bytes)
                        .await
                        .map_err(|e| RunnerError::Store(e.to_string()))?,
                )
                .map_err(|e| RunnerError::Invalid(e.to_string()))?
            }
        };
        if report["status"] != "accepted" {
            rejected += 1;
        }
        println!("{report}");
    }
    if rejected > 0 {
        return Err(RunnerError::Rejected(format!(
            "{rejected} attribution file(s)"
        )));
    }
    Ok(())
}

/// `apps register --backend`: prints the client id alone on the last line.
pub async fn backend_register(
    data: &DataDir,
    new: backend_auth::NewBackendClient,
) -> Result<(), RunnerError> {
    let body = serde_json::to_vec(&new).map_err(|e| RunnerError::Invalid(e.to_string()))?;
    let client: backend_auth::BackendClient =
        match crate::commands::admin_call(data, "/register-backend", Some(body)).await? {
            Some(value) => {
                serde_json::from_value(value).map_err(|e| RunnerError::Invalid(e.to_string()))?
            }
            None => backend_auth::clients::register(&crate::commands::open_store(data)?, &new)
                .await
                .map_err(|e| RunnerError::Invalid(e.to_string()))?,
        };
    println!("{}", app_registry_cli::backend_registered_text(&client));
    Ok(())
}

pub(crate) fn percent(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
