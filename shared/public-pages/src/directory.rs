//! The app directory's port: which registered apps members can look up.
//!
//! The pages do not know where apps are registered. The authorization server's
//! registry implements [`AppDirectory`]; tests and a plan without a registry use
//! [`StaticDirectory`]. [`ListedApp`] has no field for a client secret, a secret hash
//! or a redirect URI, so no implementation can leak one onto a public page.

use std::future::Future;
use std::pin::Pin;

/// Whether the app's developer answered the plan's privacy and security attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attestation {
    /// The developer attested; `on` is the date (`YYYY-MM-DD`) when known.
    Attested { on: Option<String> },
    /// No attestation: members are told so, as CMS expects, but the app is not blocked.
    NotAttested,
}

/// What the public directory shows about one registered, enabled app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedApp {
    pub name: String,
    pub description: Option<String>,
    pub attestation: Attestation,
    /// Shown as a link only when it is an `http(s)` URL.
    pub privacy_policy_url: Option<String>,
}

/// The registry could not be read. The text is for logs; members see a generic page.
#[derive(Debug, thiserror::Error)]
#[error("the app registry could not be read: {0}")]
pub struct DirectoryError(pub String);

/// The registered apps a member may look up before connecting one.
pub trait AppDirectory: Send + Sync {
    /// Registered apps that are enabled, in any order (the page sorts them). Disabled
    /// apps must not be returned: they can no longer connect.
    fn listed_apps(&self) -> impl Future<Output = Result<Vec<ListedApp>, DirectoryError>> + Send;
}

/// A fixed list: for tests, and for a deployment whose registry lives elsewhere.
#[derive(Debug, Clone, Default)]
pub struct StaticDirectory(pub Vec<ListedApp>);

impl AppDirectory for StaticDirectory {
    async fn listed_apps(&self) -> Result<Vec<ListedApp>, DirectoryError> {
        Ok(self.0.clone())
    }
}

impl<T: AppDirectory + ?Sized> AppDirectory for std::sync::Arc<T> {
    fn listed_apps(&self) -> impl Future<Output = Result<Vec<ListedApp>, DirectoryError>> + Send {
        (**self).listed_apps()
    }
}

type BoxedApps<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<ListedApp>, DirectoryError>> + Send + 'a>>;

/// [`AppDirectory`] as a trait object, so [`crate::PublicPages`] is one concrete type
/// whatever registry backs it (the local runner and Lambda hold different ones).
pub(crate) trait DynAppDirectory: Send + Sync {
    fn listed_apps_boxed(&self) -> BoxedApps<'_>;
}

impl<T: AppDirectory> DynAppDirectory for T {
    fn listed_apps_boxed(&self) -> BoxedApps<'_> {
        Box::pin(self.listed_apps())
    }
}
