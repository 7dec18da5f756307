//! The server-rendered pages, as askama templates (templates/): askama escapes every
//! value for HTML, so an app named `<script>` is shown, never run.

use askama::Template;
use bytes::Bytes;
use http::{Response, StatusCode};

use crate::ServerError;
use crate::respond::html_response;

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub heading: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "email.html")]
pub struct EmailPage<'a> {
    pub app_name: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "identity.html")]
pub struct IdentityPage<'a> {
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "code.html")]
pub struct CodePage<'a> {
    pub csrf: &'a str,
    pub masked_email: &'a str,
}

/// One data category on the consent page.
pub struct Category {
    pub code: &'static str,
    pub label: &'static str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub app_name: &'a str,
    pub attested: bool,
    pub privacy_policy: Option<&'a str>,
    pub csrf: &'a str,
    pub categories: Vec<Category>,
    pub offline: bool,
}

/// One row of the connected-apps page.
pub struct GrantRow {
    pub id: String,
    pub app_name: String,
    pub since: String,
    pub status: &'static str,
    pub active: bool,
}

/// What one app read of the member's data in the last 90 days.
pub struct AccessRow {
    pub app_name: String,
    pub last_access: String,
    /// (data category, resources read), in category order.
    pub reads: Vec<(&'static str, u64)>,
}

/// One of the member's Payer-to-Payer requests, in plain words.
pub struct P2pRequestRow {
    pub plan: String,
    /// The card number there, masked but for its last four characters.
    pub card: String,
    pub coverage: &'static str,
    pub records: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "connected_apps.html")]
pub struct ConnectedAppsPage<'a> {
    pub csrf: &'a str,
    /// Whether the member has opted out of Provider Access.
    pub provider_access_opted_out: bool,
    /// Whether the member has opted in to Payer-to-Payer.
    pub payer_to_payer_opted_in: bool,
    /// The other plans this plan can ask (`payers add`), by name.
    pub other_plans: Vec<String>,
    /// The member's requests of other plans.
    pub payer_to_payer_requests: Vec<P2pRequestRow>,
    pub grants: Vec<GrantRow>,
    pub notice: Option<&'a str>,
    /// `None` when the history could not be read (the rest of the page still works).
    pub history: Option<Vec<AccessRow>>,
    pub history_days: i64,
}

/// Renders a page; a rendering failure becomes the generic error page.
pub fn page(status: StatusCode, template: &impl Template) -> Response<Bytes> {
    match template.render() {
        Ok(html) => html_response(status, html),
        Err(error) => {
            let error = ServerError::from(error);
            tracing::error!(error = %error, "page rendering failed");
            html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!DOCTYPE html><html lang=\"en\"><title>Error</title><p>Something went wrong.</p></html>".to_owned(),
            )
        }
    }
}

/// The error page with `status`.
pub fn error_page(status: StatusCode, heading: &str, message: &str) -> Response<Bytes> {
    page(status, &ErrorPage { heading, message })
}

/// The plain-language name of a data category.
pub fn category_label(resource_type: fhir::ResourceType) -> &'static str {
    use fhir::ResourceType as T;
    match resource_type {
        T::ExplanationOfBenefit => "Your claims and what was paid (explanations of benefit)",
        T::Coverage => "Your insurance coverage",
        T::Patient => "Your personal information (name, date of birth, address)",
        T::RelatedPerson => "People related to your coverage (for example the subscriber)",
        T::Organization => "Organizations that treated you or paid claims",
        T::Practitioner => "Doctors and other providers who treated you",
        T::Consent => "Your app-sharing choices (this kind of permission)",
        T::Provenance => "Where records from your earlier health plans came from",
        // Directory types are public: no scope ever asks for them.
        T::Endpoint
        | T::HealthcareService
        | T::InsurancePlan
        | T::Location
        | T::OrganizationAffiliation
        | T::PractitionerRole => "The public provider directory",
    }
}
