//! The public pages CMS asks a plan to publish, served by the system itself:
//!
//! - `/members`: privacy education for members (what is shared, benefits and risks,
//!   how to choose an app, sign-in and consent, revoking, where to complain);
//! - `/developers`: the developer portal, its reference sections generated from the
//!   same tables as the CapabilityStatement so the two never drift;
//! - `/apps`: the directory of registered, enabled apps;
//! - `/directory/find`: "Find a provider", a search form over the public provider
//!   directory, run by the directory API's own search code ([`ProviderSearch`]).
//!
//! Like `fhir-api`, [`PublicPages::handle`] takes and returns plain [`http`] types, so
//! the same code runs on Lambda and in the local runner. Pages are server-rendered
//! HTML with no JavaScript, one askama layout shared by all three, and a strict CSP:
//! the one inline stylesheet is allowed by its hash, nothing else inline runs.

mod branding;
mod config;
mod directory;
mod find;
mod reference;
mod registry;
mod views;

pub use branding::{Branding, BrandingError, BrandingSettings, Color};
pub use config::{ConfigError, EdgeRateLimits, PagesConfig, RateLimits};
pub use directory::{AppDirectory, Attestation, DirectoryError, ListedApp, StaticDirectory};
pub use find::ProviderSearch;
pub use registry::RegistryDirectory;
pub use views::Page;

use std::sync::{Arc, LazyLock};

use askama::Template;
use base64::Engine as _;
use bytes::Bytes;
use fhir_api::{ApiConfig, OAuthUris};
use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};

use directory::DynAppDirectory;
use reference::Sandbox;
use views::{
    AppView, AppsPage, Choice, Chrome, DevelopersPage, FindPage, MembersPage, ProblemPage,
};

/// The questions every app developer answers, in the spirit of the CMS and CARIN
/// model attestation. The directory and the consent screen show whether they did.
pub const ATTESTATION_QUESTIONS: &[&str] = &[
    "Does the app have a privacy policy that is publicly available, written in plain language, and that members can read before they connect?",
    "Does the privacy policy say what health information the app collects, and how the app uses it?",
    "Does the app sell members' information, or share it with anyone (advertisers, data brokers, researchers, employers) other than as the member directs?",
    "Does the app ask for the member's express consent before it uses or discloses their information for any purpose other than the member's own use?",
    "Can a member ask the app to delete their information, and close their account? How, and how quickly is it done?",
    "How does the app keep information secure: encryption in transit and at rest, access control, and notifying members of a breach?",
    "Does the app tell members how to stop sharing, what happens to their information when they do, and when its privacy policy changes?",
];

/// The longest `?q=` the app directory reads; the rest is ignored.
const MAX_QUERY_CHARS: usize = 100;

/// These pages carry no member data, so shared caches may keep them for a while.
const CACHE_PUBLIC: &str = "public, max-age=300";

/// The three public pages, ready to answer requests.
pub struct PublicPages {
    config: PagesConfig,
    directory: Arc<dyn DynAppDirectory>,
    /// The provider directory's search, for `/directory/find`; without it that page
    /// answers 503 (a deployment whose pages cannot reach the directory).
    providers: Option<Arc<dyn ProviderSearch>>,
    style: String,
    csp: HeaderValue,
    /// Built on the first `/developers` request, not at start: generating the demo
    /// takes tens of milliseconds, which every cold start of the function would pay.
    sandbox: LazyLock<Sandbox>,
}

impl PublicPages {
    /// Builds the pages once per process: the stylesheet and its CSP hash are
    /// computed here, the sandbox description once when first asked for; none per
    /// request.
    pub fn new(config: PagesConfig, directory: impl AppDirectory + 'static) -> PublicPages {
        let style = stylesheet(&config.branding);
        let csp = content_security_policy(&style);
        PublicPages {
            config,
            directory: Arc::new(directory),
            providers: None,
            style,
            csp,
            sandbox: LazyLock::new(Sandbox::from_demo_data),
        }
    }

    /// Serves `/directory/find` with the provider directory's search.
    pub fn with_provider_search(mut self, search: impl ProviderSearch + 'static) -> Self {
        self.providers = Some(Arc::new(search));
        self
    }

    /// Whether `path` is one of ours (the local runner routes on this).
    pub fn serves(path: &str) -> bool {
        page_for(path).is_some()
    }

    /// Answers one request. `api` is the API's configuration for the base URL the
    /// request came through: the portal prints that URL, its OAuth endpoints and its
    /// paging limits. Never fails: problems become HTML error pages.
    pub async fn handle(&self, request: &Request<Bytes>, api: &ApiConfig) -> Response<Bytes> {
        let response = self.respond(request, api).await;
        if request.method() == Method::HEAD {
            let (parts, _) = response.into_parts();
            return Response::from_parts(parts, Bytes::new());
        }
        response
    }

    async fn respond(&self, request: &Request<Bytes>, api: &ApiConfig) -> Response<Bytes> {
        let Some(page) = page_for(request.uri().path()) else {
            return self.problem(
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is no page at this address.",
            );
        };
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = self.problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "This page can only be read (GET or HEAD).",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        if page == Page::FindProvider {
            return self.find_provider(request).await;
        }
        let rendered = match page {
            Page::FindProvider | Page::Members => self.members(api),
            Page::Developers => self.developers(api),
            Page::Apps => match self.apps(request).await {
                Ok(rendered) => rendered,
                Err(error) => {
                    tracing::error!(%error, "app directory unavailable");
                    return self.problem(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "App directory unavailable",
                        "The app directory cannot be shown right now. Please try again in a few minutes.",
                    );
                }
            },
        };
        match rendered {
            Ok(html) => self.html(StatusCode::OK, html, CACHE_PUBLIC),
            Err(error) => {
                tracing::error!(%error, "page rendering failed");
                self.html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error".to_owned(),
                    "no-store",
                )
            }
        }
    }

    fn chrome<'a>(
        &'a self,
        page: Option<Page>,
        title: &'a str,
        description: &'a str,
    ) -> Chrome<'a> {
        Chrome::new(&self.config.branding, &self.style, page, title, description)
    }

    fn members(&self, api: &ApiConfig) -> askama::Result<String> {
        let oauth = oauth_uris(api);
        MembersPage {
            chrome: self.chrome(
                Some(Page::Members),
                "Sharing your health information with apps",
                "What is shared with apps you connect, how to choose an app, and how to stop sharing.",
            ),
            plan: &self.config.branding.plan_name,
            connected_apps_url: &oauth.manage,
        }
        .render()
    }

    fn developers(&self, api: &ApiConfig) -> askama::Result<String> {
        let oauth = oauth_uris(api);
        let sandbox_patient = self
            .sandbox
            .members
            .first()
            .map_or("PATIENT_ID", |m| m.patient_id.as_str());
        DevelopersPage {
            chrome: self.chrome(
                Some(Page::Developers),
                "Developer portal",
                "Patient Access API documentation: discovery, resources, search parameters, registration, sandbox, errors and limits.",
            ),
            plan: &self.config.branding.plan_name,
            base_url: &api.base_url,
            endpoints: vec![
                ("Authorize", oauth.authorize.clone()),
                ("Token", oauth.token.clone()),
                ("Revoke", oauth.revoke.clone()),
                ("Introspect", oauth.introspect.clone()),
                ("Connected apps (members)", oauth.manage.clone()),
            ],
            resources: reference::resource_docs(),
            attestation_questions: ATTESTATION_QUESTIONS,
            sandbox: &self.sandbox,
            sandbox_patient,
            errors: reference::error_docs(api.max_body_bytes),
            example_outcome: &reference::example_outcome(),
            example_search: reference::example_search(&api.base_url, sandbox_patient, &self.sandbox.example_eob_id),
            rate_limits: self.config.rate_limits,
            directory_rate_limits: self.config.directory_rate_limits,
            client_requests_per_minute: self.config.client_requests_per_minute,
            edge_rate_limits: self.config.edge_rate_limits,
            default_count: api.default_count,
            max_count: api.max_count,
            max_body_bytes: api.max_body_bytes,
        }
        .render()
    }

    async fn apps(
        &self,
        request: &Request<Bytes>,
    ) -> Result<askama::Result<String>, DirectoryError> {
        let listed = self.directory.listed_apps_boxed().await?;
        let total = listed.len();
        let query = search_query(request);
        let mut apps: Vec<AppView> = listed
            .into_iter()
            .filter(|app| matches_query(app, &query))
            .map(app_view)
            .collect();
        apps.sort_by_key(|app| app.name.to_lowercase());
        Ok(AppsPage {
            chrome: self.chrome(
                Some(Page::Apps),
                "App directory",
                "Apps registered to connect to your health plan, with their privacy policies and attestation status.",
            ),
            plan: &self.config.branding.plan_name,
            query: &query,
            total,
            apps,
        }
        .render())
    }

    /// `/directory/find`: 200 with the form (and results), 400 with the form and a
    /// plain explanation when the answers cannot be searched, 503 when the directory
    /// cannot be read. Never 500 for anything a member types.
    async fn find_provider(&self, request: &Request<Bytes>) -> Response<Bytes> {
        let unavailable = || {
            self.problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Provider search unavailable",
                "The provider search cannot be used right now. Please try again in a few minutes, or call us.",
            )
        };
        let Some(search) = &self.providers else {
            return unavailable();
        };
        let form = find::read_form(request.uri().query().unwrap_or_default());
        let (networks, outcome) = match (
            find::networks(search.as_ref()).await,
            find::find(search.as_ref(), &form).await,
        ) {
            (Ok(networks), Ok(outcome)) => (networks, outcome),
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "provider directory unavailable");
                return unavailable();
            }
        };
        let (status, searched, error, providers, more) = match outcome {
            find::Outcome::Form => (StatusCode::OK, false, None, Vec::new(), false),
            find::Outcome::Invalid(message) => (
                StatusCode::BAD_REQUEST,
                false,
                Some(message),
                Vec::new(),
                false,
            ),
            find::Outcome::Results { providers, more } => {
                (StatusCode::OK, true, None, providers, more)
            }
        };
        let choice = |value: String, label: String, current: &str| Choice {
            selected: value == current,
            value,
            label,
        };
        let rendered = FindPage {
            chrome: self.chrome(
                Some(Page::FindProvider),
                "Find a provider",
                "Search the plan's provider directory by specialty, place, network, new patients and language.",
            ),
            plan: &self.config.branding.plan_name,
            distances: find::DISTANCES
                .iter()
                .map(|miles| choice(miles.to_string(), format!("Within {miles} miles"), &form.distance))
                .collect(),
            networks: networks
                .into_iter()
                .map(|(id, name)| choice(id, name, &form.network))
                .collect(),
            languages: find::LANGUAGES
                .iter()
                .map(|(code, name)| choice((*code).to_owned(), (*name).to_owned(), &form.language))
                .collect(),
            form: &form,
            searched,
            error,
            providers,
            more,
        }
        .render();
        match rendered {
            // Results change with every directory load; keep them as long as the API's.
            Ok(html) => self.html(status, html, "public, max-age=60"),
            Err(error) => {
                tracing::error!(%error, "page rendering failed");
                unavailable()
            }
        }
    }

    fn problem(&self, status: StatusCode, heading: &str, message: &str) -> Response<Bytes> {
        let page = ProblemPage {
            chrome: self.chrome(None, heading, message),
            heading,
            message,
        };
        // Errors are not cached: a 503 should clear as soon as the registry is back.
        match page.render() {
            Ok(html) => self.html(status, html, "no-store"),
            Err(_) => self.html(status, heading.to_owned(), "no-store"),
        }
    }

    fn html(&self, status: StatusCode, body: String, cache: &'static str) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        response
    }
}

/// Our paths, with or without a trailing slash.
fn page_for(path: &str) -> Option<Page> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    Page::ALL.into_iter().find(|page| page.path() == path)
}

/// The API's OAuth endpoints, or those of an authorization server at its base URL
/// (where ours runs) when the configuration names none.
fn oauth_uris(api: &ApiConfig) -> OAuthUris {
    api.oauth
        .clone()
        .unwrap_or_else(|| OAuthUris::for_issuer(&api.base_url))
}

/// The stylesheet: the brand colours as CSS variables, then the static rules. The
/// colours are validated [`Color`]s, so nothing from configuration reaches CSS raw.
fn stylesheet(branding: &Branding) -> String {
    format!(
        ":root{{--primary:{};--accent:{};}}\n{}",
        branding.primary_color,
        branding.accent_color,
        include_str!("style.css")
    )
}

/// `default-src 'self'` with no script at all, the one inline stylesheet allowed by
/// its hash, images from us or https (a plan's logo), and no framing (clickjacking).
fn content_security_policy(style: &str) -> HeaderValue {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style.as_bytes()));
    let policy = format!(
        "default-src 'self'; script-src 'none'; style-src 'sha256-{hash}'; img-src 'self' https:; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"))
}

/// The directory's `?q=`, trimmed and bounded.
fn search_query(request: &Request<Bytes>) -> String {
    let query = request.uri().query().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "q")
        .map(|(_, value)| value.trim().chars().take(MAX_QUERY_CHARS).collect())
        .unwrap_or_default()
}

fn matches_query(app: &ListedApp, query: &str) -> bool {
    if query.is_empty() {
        return true;
    }
    let query = query.to_lowercase();
    app.name.to_lowercase().contains(&query)
        || app
            .description
            .as_deref()
            .is_some_and(|d| d.to_lowercase().contains(&query))
}

fn app_view(app: ListedApp) -> AppView {
    let (attested, attested_on) = match app.attestation {
        Attestation::Attested { on } => (true, on),
        Attestation::NotAttested => (false, None),
    };
    AppView {
        name: app.name,
        description: app.description.filter(|d| !d.trim().is_empty()),
        attested,
        attested_on,
        privacy_policy_url: app.privacy_policy_url.filter(|url| is_web_url(url)),
    }
}

/// Only `http(s)` links reach the page: a registered `javascript:` URL would be
/// escaped by the template but still run when clicked.
fn is_web_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests;
