//! [`AppDirectory`] over the authorization server's app registry.
//!
//! The registry (`smart_server::apps`, namespace `app` of the [`KeyValueStore`]) is the
//! one list of apps: `/authorize` admits them, the consent page names them, and this
//! directory shows them. Only what a member should see is copied out of a registered
//! app; the client secret hash and the redirect URIs stay behind.

use std::sync::Arc;

use fhir_store::KeyValueStore;
use smart_server::App;

use crate::directory::{AppDirectory, Attestation, DirectoryError, ListedApp};

/// The authorization server's own client for the connected-apps page: registered so
/// members can sign in there, but not a third-party app, so not in the directory. A
/// test registers it through `smart_server` and checks it stays out, so a rename there
/// fails here instead of listing it.
const PORTAL_CLIENT_ID: &str = "member-portal";

/// The registered apps of one store (DynamoDB on AWS, redb locally).
pub struct RegistryDirectory<K: ?Sized> {
    kv: Arc<K>,
}

impl<K: KeyValueStore + ?Sized> RegistryDirectory<K> {
    pub fn new(kv: Arc<K>) -> Self {
        RegistryDirectory { kv }
    }
}

impl<K: KeyValueStore + ?Sized + 'static> AppDirectory for RegistryDirectory<K> {
    async fn listed_apps(&self) -> Result<Vec<ListedApp>, DirectoryError> {
        let apps = smart_server::apps::list(self.kv.as_ref())
            .await
            .map_err(|e| DirectoryError(e.to_string()))?;
        Ok(apps
            .into_iter()
            .filter(|app| app.enabled && app.client_id != PORTAL_CLIENT_ID)
            .map(listed)
            .collect())
    }
}

/// The public face of a registered app.
fn listed(app: App) -> ListedApp {
    ListedApp {
        name: app.name,
        description: Some(app.description).filter(|d| !d.trim().is_empty()),
        attestation: if app.attested {
            Attestation::Attested { on: None }
        } else {
            Attestation::NotAttested
        },
        privacy_policy_url: app.privacy_policy,
    }
}

#[cfg(test)]
mod tests {
    use smart_server::NewApp;
    use store_redb::RedbStore;

    use super::*;

    fn new_app(name: &str, attested: bool, confidential: bool) -> NewApp {
        NewApp {
            name: name.to_owned(),
            description: format!("{name} keeps your claims."),
            redirect_uris: vec![format!("https://{}.example/callback", name.to_lowercase())],
            confidential,
            privacy_policy: Some(format!("https://{}.example/privacy", name.to_lowercase())),
            attested,
        }
    }

    #[tokio::test]
    async fn lists_enabled_apps_without_secrets_or_redirect_uris() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(RedbStore::open(dir.path().join("s.redb")).expect("store"));
        let kept = smart_server::apps::register(store.as_ref(), &new_app("Kept", true, true))
            .await
            .expect("register");
        let gone = smart_server::apps::register(store.as_ref(), &new_app("Gone", false, false))
            .await
            .expect("register");
        smart_server::apps::disable(store.as_ref(), &gone.app.client_id)
            .await
            .expect("disable");
        smart_server::apps::ensure_portal_app(store.as_ref())
            .await
            .expect("portal app");

        let listed = RegistryDirectory::new(Arc::clone(&store))
            .listed_apps()
            .await
            .expect("list");
        assert_eq!(
            listed,
            [ListedApp {
                name: "Kept".to_owned(),
                description: Some("Kept keeps your claims.".to_owned()),
                attestation: Attestation::Attested { on: None },
                privacy_policy_url: Some("https://kept.example/privacy".to_owned()),
            }]
        );

        let pages =
            crate::PublicPages::new(crate::PagesConfig::default(), RegistryDirectory::new(store));
        let request = http::Request::get("/apps")
            .body(bytes::Bytes::new())
            .expect("request");
        let response = pages
            .handle(&request, &fhir_api::ApiConfig::new("http://localhost:8080"))
            .await;
        let html = String::from_utf8(response.body().to_vec()).expect("utf-8");
        assert!(html.contains("Kept") && !html.contains("Gone"));
        assert!(
            !html.contains("callback"),
            "a redirect URI reached the page"
        );
        assert!(
            !html.contains(&kept.app.client_id),
            "the client id is not for members"
        );
        let secret = kept.client_secret.expect("confidential app has a secret");
        assert!(!html.contains(&secret));
        assert!(!html.contains(kept.app.secret_hash.as_deref().unwrap_or("-")));
    }
}
