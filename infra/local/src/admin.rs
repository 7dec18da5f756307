//! The `apps` commands while `serve` runs.
//!
//! redb lets one process open the database file, and `serve` holds it. So `serve` also
//! answers a small operator API on its own loopback port under [`ADMIN_PREFIX`],
//! guarded by a random key in `DIR/admin.key` (mode 0600: whoever can read the data
//! directory already owns everything in it). When no server runs, the commands open
//! the store themselves. Both paths call the same registry functions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use member_consent::Sharing;
use serde_json::{Value, json};
use smart_server::{NewApp, apps};
use store_redb::RedbStore;

pub const ADMIN_PREFIX: &str = "/_admin/apps";
/// `GET /_admin/usage?year=YYYY`: the usage report, after recording what was queued.
pub const USAGE_PATH: &str = "/_admin/usage";
/// Everything under this is the admin endpoint (apps, attribution, opt-out).
pub const ADMIN_ROOT: &str = "/_admin/";
/// `attribution load` while `serve` runs: the body is the file, `?name=` its name.
pub const ATTRIBUTION_PATH: &str = "/_admin/attribution";
/// `provider-access opt-out|opt-in` while `serve` runs: `?patient=ID&on=true|false`.
pub const OPT_OUT_PATH: &str = "/_admin/provider-access";
/// `p2p opt-in|opt-out` while `serve` runs: `?patient=ID&on=true|false`.
pub const P2P_OPT_IN_PATH: &str = "/_admin/payer-to-payer";
pub const ADMIN_KEY_HEADER: &str = "x-admin-key";

pub trait AdminHandler: Send + Sync {
    fn handle(
        &self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Response<Bytes>> + Send + '_>>;
}

/// The admin endpoint over the running server's store.
pub struct Admin {
    pub store: Arc<RedbStore>,
    pub key: String,
}

impl AdminHandler for Admin {
    fn handle(
        &self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Response<Bytes>> + Send + '_>> {
        Box::pin(self.answer(request))
    }
}

pub(crate) fn reply(status: StatusCode, body: Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

impl Admin {
    async fn answer(&self, request: Request<Bytes>) -> Response<Bytes> {
        let presented = request
            .headers()
            .get(ADMIN_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        #[allow(deprecated)]
        let ok = aws_lc_rs::constant_time::verify_slices_are_equal(
            presented.as_bytes(),
            self.key.as_bytes(),
        )
        .is_ok();
        if !ok {
            return reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "admin key required"}),
            );
        }
        let full_path = request.uri().path().to_owned();
        if full_path == USAGE_PATH {
            return self.usage_report(&request).await;
        }
        for kind in [Sharing::ProviderAccess, Sharing::PayerToPayer] {
            if full_path == crate::sharing::admin_path(kind) {
                return self.sharing(&request, kind).await;
            }
        }
        if full_path == ATTRIBUTION_PATH {
            return self.attribution(&request).await;
        }
        if let Some(answer) = crate::p2p_asking::admin(self.store.as_ref(), &request).await {
            return answer;
        }
        let path = full_path.trim_start_matches(ADMIN_PREFIX).to_owned();
        let result = match (request.method().as_str(), path.as_str()) {
            ("POST", "/register-backend") => {
                match serde_json::from_slice::<backend_auth::NewBackendClient>(request.body()) {
                    Ok(new) => match backend_auth::clients::register(self.store.as_ref(), &new)
                        .await
                    {
                        Ok(client) => return reply(StatusCode::OK, json!(client)),
                        Err(e) => {
                            return reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()}));
                        }
                    },
                    Err(e) => {
                        return reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()}));
                    }
                }
            }
            ("GET", "" | "/") => apps::list(self.store.as_ref())
                .await
                .map(|list| json!(list)),
            ("POST", "/register") => match serde_json::from_slice::<NewApp>(request.body()) {
                Ok(new) => apps::register(self.store.as_ref(), &new)
                    .await
                    .map(|r| json!(r)),
                Err(e) => return reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
            },
            ("POST", "/disable") => {
                let client_id = String::from_utf8_lossy(request.body()).trim().to_owned();
                smart_server::disable_app(self.store.as_ref(), &client_id)
                    .await
                    .map(|found| json!({"disabled": found}))
            }
            _ => {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"error": "no such admin endpoint"}),
                );
            }
        };
        match result {
            Ok(body) => reply(StatusCode::OK, body),
            Err(error) => reply(StatusCode::BAD_REQUEST, json!({"error": error.to_string()})),
        }
    }
}

impl Admin {
    /// The counts of the usage report (the caller adds the plan's identifiers).
    async fn usage_report(&self, request: &Request<Bytes>) -> Response<Bytes> {
        let year = request.uri().query().and_then(year_param);
        let Some(year) = year else {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"error": "year=YYYY required"}),
            );
        };
        crate::usage::flush().await;
        match usage_metrics::UsageReport::build(
            self.store.as_ref(),
            year,
            usage_metrics::PlanIdentifiers::default(),
        )
        .await
        {
            Ok(report) => reply(StatusCode::OK, report.to_json()),
            Err(error) => reply(StatusCode::BAD_REQUEST, json!({"error": error.to_string()})),
        }
    }

    /// Attribution loads (the same library call the command makes when no server runs).
    async fn attribution(&self, request: &Request<Bytes>) -> Response<Bytes> {
        if request.method() != http::Method::POST {
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "POST only"}),
            );
        }
        match crate::provider_access::load_one(
            self.store.as_ref(),
            &query_param(request, "name"),
            request.body(),
        )
        .await
        {
            Ok(report) => reply(StatusCode::OK, json!(report)),
            Err(e) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": e.to_string()}),
            ),
        }
    }

    /// A member's data-sharing choice, set by the plan (the call the commands make
    /// when no server runs).
    async fn sharing(&self, request: &Request<Bytes>, kind: Sharing) -> Response<Bytes> {
        if request.method() != http::Method::POST {
            return reply(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "POST only"}),
            );
        }
        let on = query_param(request, "on") == "true";
        let patient = query_param(request, "patient");
        match crate::sharing::set(self.store.as_ref(), kind, &patient, on).await {
            Ok(changed) => reply(StatusCode::OK, json!({"changed": changed})),
            Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
        }
    }
}

/// `year=YYYY` from a query string.
fn year_param(query: &str) -> Option<i32> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("year="))
        .and_then(|year| year.parse().ok())
}

/// A query parameter's value, empty when absent.
pub(crate) fn query_param(request: &Request<Bytes>, name: &str) -> String {
    form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
