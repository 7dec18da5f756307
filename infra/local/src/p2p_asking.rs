//! This plan as the new payer in the local runner: `payers add`, `payers jwks`,
//! `p2p request` and `p2p status`, and the task of `serve` that runs the requests due
//! (the stand-in for the scheduled function on AWS). The commands go through the
//! running server's admin endpoint, or open the store when none runs; both call
//! [`payer_to_payer::asking`].
//!
//! Locally an [`OtherPayer`]'s `key` is the path of this plan's PEM private key for
//! that plan, read at each run (so a replaced key file is used at once).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fhir_store::{KeyValueStore, ResourceStore};
use http::{Request, Response, StatusCode};
use payer_to_payer::asking::{self, ExchangeRequest, OtherPayer, Terms};
use payer_to_payer::bulk_asking::Pace;
use payer_to_payer::remote::{self, AssertionKey};
use serde_json::json;
use store_redb::RedbStore;

use crate::{DataDir, RunnerError};

/// `payers add` while `serve` runs: the body is the [`OtherPayer`].
pub const PAYERS_PATH: &str = "/_admin/payers";
/// `p2p request` while `serve` runs: `?patient=ID&payer=NAME&old-member-id=CARD`,
/// `&all-data=` and `&concurrent=` `true|false`.
pub const REQUEST_PATH: &str = "/_admin/p2p-request";
/// `p2p status` while `serve` runs: `?patient=ID&payer=NAME`.
pub const STATUS_PATH: &str = "/_admin/p2p-status";
/// How often `serve` looks for requests due.
pub const SCHEDULE: Duration = Duration::from_secs(30);
/// Requests run per look.
const BATCH: usize = 50;

/// `payers add`: records another plan (replacing one of the same name).
pub async fn add(data: &DataDir, payer: OtherPayer) -> Result<(), RunnerError> {
    let mut payer = payer
        .checked()
        .map_err(|e| RunnerError::Invalid(e.to_string()))?;
    let key_path = std::path::absolute(&payer.key).map_err(|source| RunnerError::Io {
        path: payer.key.clone(),
        source,
    })?;
    read_key(&key_path.display().to_string())?;
    payer.key = key_path.display().to_string();
    let body = serde_json::to_vec(&payer).map_err(|e| RunnerError::Invalid(e.to_string()))?;
    if crate::commands::admin_request(data, PAYERS_PATH, Some(body))
        .await?
        .is_none()
    {
        asking::add_payer(&crate::commands::open_store(data)?, &payer)
            .await
            .map_err(store_error)?;
    }
    println!(
        "payer {} at {} (payer id {}, client {})",
        payer.name, payer.base_url, payer.payer_id, payer.client_id
    );
    Ok(())
}

/// `payers jwks --key FILE`: the public key set to register at the other plan.
pub fn jwks(key: &str) -> Result<(), RunnerError> {
    let key = read_key(key)?;
    println!("{}", json!(key.public_jwks()));
    Ok(())
}

/// `p2p request`: records the request and runs it at once; prints the outcome.
pub async fn request(
    data: &DataDir,
    patient: &str,
    payer: &str,
    terms: Terms,
) -> Result<(), RunnerError> {
    crate::commands::valid_patient_id(patient)?;
    let path = format!(
        "{REQUEST_PATH}?patient={}&payer={}&old-member-id={}&all-data={}&concurrent={}",
        encode(patient),
        encode(payer),
        encode(&terms.old_member_id),
        terms.all_data,
        terms.concurrent
    );
    let outcome = match crate::commands::admin_request(data, &path, Some(Vec::new())).await? {
        Some(value) => value,
        None => {
            let store = crate::commands::open_store(data)?;
            json!(request_and_run(&store, patient, payer, terms).await?)
        }
    };
    println!("{outcome}");
    Ok(())
}

/// `p2p status`: the member's request of `payer`.
pub async fn status(data: &DataDir, patient: &str, payer: &str) -> Result<(), RunnerError> {
    let path = format!(
        "{STATUS_PATH}?patient={}&payer={}",
        encode(patient),
        encode(payer)
    );
    let status = match crate::commands::admin_request(data, &path, None).await? {
        Some(value) => value,
        None => json!(
            asking::get_request(&crate::commands::open_store(data)?, patient, payer)
                .await
                .map_err(store_error)?
        ),
    };
    println!("{status}");
    Ok(())
}

/// Records the request and runs it.
pub async fn request_and_run<S>(
    store: &S,
    patient: &str,
    payer: &str,
    terms: Terms,
) -> Result<ExchangeRequest, RunnerError>
where
    S: ResourceStore + KeyValueStore,
{
    let now = fhir::clock::unix_now();
    let Some(other) = asking::payer(store, payer).await.map_err(store_error)? else {
        return Err(RunnerError::Invalid(format!(
            "no payer {payer:?}: add it with `payers add`"
        )));
    };
    let request = asking::request(store, patient, payer, terms, now)
        .await
        .map_err(store_error)?;
    run(store, &other, request, now).await
}

/// One try of `request`, with the key file read now.
async fn run<S>(
    store: &S,
    payer: &OtherPayer,
    request: ExchangeRequest,
    now: i64,
) -> Result<ExchangeRequest, RunnerError>
where
    S: ResourceStore + KeyValueStore,
{
    let pace = Pace::default();
    remote::run_request(store, payer, request, read_pem(&payer.key), now, &pace)
        .await
        .map_err(|e| RunnerError::Store(e.to_string()))
}

/// `serve`'s schedule: every [`SCHEDULE`], runs the requests due.
pub async fn run_due_requests(store: Arc<RedbStore>) {
    let mut tick = tokio::time::interval(SCHEDULE);
    loop {
        tick.tick().await;
        let now = fhir::clock::unix_now();
        let key_for = |payer: &OtherPayer| std::future::ready(read_pem(&payer.key));
        let pace = Pace::default();
        if let Err(error) = remote::run_due(store.as_ref(), now, BATCH, 1, key_for, &pace).await {
            tracing::warn!(%error, "payer-to-payer: the scheduled run failed");
        }
    }
}

/// The admin endpoint's part: `Some` answer for the paths above.
pub async fn admin(store: &RedbStore, request: &Request<Bytes>) -> Option<Response<Bytes>> {
    let query = |name: &str| crate::admin::query_param(request, name);
    let answer = match request.uri().path() {
        PAYERS_PATH => match serde_json::from_slice::<OtherPayer>(request.body()) {
            Ok(payer) => match payer.checked() {
                Ok(payer) => asking::add_payer(store, &payer)
                    .await
                    .map(|()| json!({"added": payer.name}))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e.to_string()),
        },
        REQUEST_PATH => {
            let terms = Terms {
                old_member_id: query("old-member-id"),
                all_data: query("all-data") == "true",
                concurrent: query("concurrent") == "true",
            };
            request_and_run(store, &query("patient"), &query("payer"), terms).await
        }
        .map(|r| json!(r))
        .map_err(|e| e.to_string()),
        STATUS_PATH => asking::get_request(store, &query("patient"), &query("payer"))
            .await
            .map(|r| json!(r))
            .map_err(|e| e.to_string()),
        _ => return None,
    };
    Some(match answer {
        Ok(body) => crate::admin::reply(StatusCode::OK, body),
        Err(error) => crate::admin::reply(StatusCode::BAD_REQUEST, json!({"error": error})),
    })
}

fn read_key(path: &str) -> Result<AssertionKey, RunnerError> {
    let pem = read_pem(path).map_err(RunnerError::Invalid)?;
    AssertionKey::from_pem(&pem).map_err(|e| RunnerError::Invalid(format!("{path}: {e}")))
}

fn read_pem(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn store_error(error: fhir_store::StoreError) -> RunnerError {
    RunnerError::Store(error.to_string())
}

fn encode(value: &str) -> String {
    crate::provider_access::percent(value)
}
