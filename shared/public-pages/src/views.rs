//! The askama templates and the data each one is filled with.
//!
//! Every page extends `layout.html` and gets the shared header, navigation and footer
//! from a [`Chrome`]; page structs add only what their own content needs. Askama
//! escapes every `{{ }}` by default; the one `|safe` is the stylesheet, which is built
//! from validated colours and a file in this crate.

use askama::Template;

use crate::branding::Branding;
use crate::config::{EdgeRateLimits, RateLimits};
use crate::reference::{ErrorDoc, ResourceDoc, Sandbox};

/// The pages, as the navigation lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Members,
    FindProvider,
    Developers,
    Apps,
}

impl Page {
    pub const ALL: [Page; 4] = [
        Page::Members,
        Page::FindProvider,
        Page::Developers,
        Page::Apps,
    ];

    pub const fn path(self) -> &'static str {
        match self {
            Page::Members => "/members",
            Page::FindProvider => "/directory/find",
            Page::Developers => "/developers",
            Page::Apps => "/apps",
        }
    }

    const fn label(self) -> &'static str {
        match self {
            Page::Members => "Sharing your data",
            Page::FindProvider => "Find a provider",
            Page::Developers => "Developers",
            Page::Apps => "App directory",
        }
    }
}

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What the layout needs: branding, the stylesheet, the title and where we are.
pub struct Chrome<'a> {
    pub branding: &'a Branding,
    pub style: &'a str,
    pub title: &'a str,
    pub description: &'a str,
    pub nav: Vec<NavItem>,
    pub phone_uri: String,
}

impl<'a> Chrome<'a> {
    pub fn new(
        branding: &'a Branding,
        style: &'a str,
        current: Option<Page>,
        title: &'a str,
        description: &'a str,
    ) -> Chrome<'a> {
        let nav = Page::ALL
            .into_iter()
            .map(|page| NavItem {
                href: page.path(),
                label: page.label(),
                current: Some(page) == current,
            })
            .collect();
        Chrome {
            branding,
            style,
            title,
            description,
            nav,
            phone_uri: branding.phone_uri(),
        }
    }
}

/// `/members`: privacy education.
#[derive(Template)]
#[template(path = "members.html")]
pub struct MembersPage<'a> {
    pub chrome: Chrome<'a>,
    pub plan: &'a str,
    /// The authorization server's connected-apps page ([`fhir_api::OAuthUris::manage`]).
    pub connected_apps_url: &'a str,
}

/// `/developers`: the developer portal.
#[derive(Template)]
#[template(path = "developers.html")]
pub struct DevelopersPage<'a> {
    pub chrome: Chrome<'a>,
    pub plan: &'a str,
    pub base_url: &'a str,
    pub endpoints: Vec<(&'static str, String)>,
    pub resources: Vec<ResourceDoc>,
    pub attestation_questions: &'static [&'static str],
    pub sandbox: &'a Sandbox,
    pub sandbox_patient: &'a str,
    pub errors: Vec<ErrorDoc>,
    pub example_outcome: &'a str,
    pub example_search: String,
    pub rate_limits: RateLimits,
    pub directory_rate_limits: RateLimits,
    pub client_requests_per_minute: u32,
    pub edge_rate_limits: Option<EdgeRateLimits>,
    pub default_count: usize,
    pub max_count: usize,
    pub max_body_bytes: usize,
}

/// One app as the directory page shows it.
pub struct AppView {
    pub name: String,
    pub description: Option<String>,
    pub attested: bool,
    pub attested_on: Option<String>,
    pub privacy_policy_url: Option<String>,
}

/// `/apps`: the app directory.
#[derive(Template)]
#[template(path = "apps.html")]
pub struct AppsPage<'a> {
    pub chrome: Chrome<'a>,
    pub plan: &'a str,
    pub query: &'a str,
    pub total: usize,
    pub apps: Vec<AppView>,
}

/// 404, 405 and 503, in the same layout.
#[derive(Template)]
#[template(path = "problem.html")]
pub struct ProblemPage<'a> {
    pub chrome: Chrome<'a>,
    pub heading: &'a str,
    pub message: &'a str,
}

/// The "Find a provider" form as the member filled it in (trimmed, bounded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindForm {
    pub specialty: String,
    /// A ZIP code or a city (`where` in the query).
    pub place: String,
    /// Miles, one of the offered distances, or empty.
    pub distance: String,
    /// A Network's id, or empty.
    pub network: String,
    pub accepting: bool,
    /// A BCP-47 primary language code, or empty.
    pub language: String,
}

impl FindForm {
    pub fn is_empty(&self) -> bool {
        self == &FindForm::default()
    }
}

/// One `<option>` of a select.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One place a provider sees patients.
pub struct LocationView {
    pub name: String,
    pub address: Vec<String>,
    pub phone: Option<String>,
    pub phone_uri: Option<String>,
    pub map_url: String,
}

/// One provider (a PractitionerRole) in the results.
pub struct ProviderView {
    pub name: String,
    pub specialties: Vec<String>,
    pub networks: Vec<String>,
    /// `None` when the directory does not say.
    pub accepting: Option<bool>,
    pub languages: Vec<String>,
    pub locations: Vec<LocationView>,
}

/// `/directory/find`: the public provider search.
#[derive(Template)]
#[template(path = "find.html")]
pub struct FindPage<'a> {
    pub chrome: Chrome<'a>,
    pub plan: &'a str,
    pub form: &'a FindForm,
    pub distances: Vec<Choice>,
    pub networks: Vec<Choice>,
    pub languages: Vec<Choice>,
    /// A search ran (results, possibly none, are shown).
    pub searched: bool,
    /// Why the form's answers could not be searched.
    pub error: Option<String>,
    pub providers: Vec<ProviderView>,
    pub more: bool,
}
