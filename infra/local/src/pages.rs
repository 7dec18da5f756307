//! The public pages as `patient-access serve` mounts them.
//!
//! Branding comes from `DATA/branding.json` (every field optional; a missing file means
//! the defaults), so a plan previews its rebranded pages locally before it sets the
//! same values as template parameters. The app directory reads the same registry the
//! `apps` commands write, so an app shows up as soon as it is registered.

use std::sync::Arc;

use public_pages::{BrandingSettings, PagesConfig, PublicPages, RegistryDirectory};
use store_redb::RedbStore;

use crate::{DataDir, RunnerError};

/// The file in the data directory that rebrands the local pages.
pub const BRANDING_FILE: &str = "branding.json";

/// The pages over `store`'s app registry, branded from the data directory.
pub fn local_public_pages(
    data: &DataDir,
    store: Arc<RedbStore>,
    client_requests_per_minute: u32,
) -> Result<PublicPages, RunnerError> {
    let path = data.root().join(BRANDING_FILE);
    // Errors name the environment variable; say which JSON field that is.
    let branding = BrandingSettings::from_file(&path)
        .and_then(BrandingSettings::build)
        .map_err(|e| {
            RunnerError::Invalid(format!(
                "{}: {e} (here PLAN_PRIMARY_COLOR is \"primary_color\", and so on)",
                path.display()
            ))
        })?;
    // The gateway's limits do not apply locally; the portal shows what the template
    // deploys by default. The per-app budget is the one `serve` runs with.
    let config = PagesConfig {
        branding,
        client_requests_per_minute,
        ..PagesConfig::default()
    };
    Ok(PublicPages::new(config, RegistryDirectory::new(store)))
}
