//! The member's Payer-to-Payer opt-in (CMS-0057-F, 42 CFR 422.121(b)): a
//! [`member_setting`](crate::member_setting) whose Consent (`p2p-…`,
//! `provision.type` `permit`) is `active` while the member is opted in. Unlike
//! Provider Access, Payer-to-Payer is **off** until the member opts in: no record, not
//! opted in.

use fhir_store::ResourceStore;

use crate::grants::GrantError;
use crate::member_setting::{ChangedBy, Setting};

/// `Consent.category` code (system [`crate::member_setting::CATEGORY_SYSTEM`]) of the
/// opt-in.
pub const OPT_IN_CATEGORY_CODE: &str = "payer-to-payer-opt-in";
/// The id prefix of opt-in Consents.
pub const ID_PREFIX: &str = "p2p-";

const OPT_IN: Setting = Setting {
    id_prefix: ID_PREFIX,
    category: (OPT_IN_CATEGORY_CODE, "Payer-to-Payer exchange opt-in"),
    policy: "OPTIN",
    provision: "permit",
    purpose: ("COC", Some("coordination of care")),
    events: ("payer_to_payer.opted_in", "payer_to_payer.opted_out"),
};

/// The Consent id of a member's Payer-to-Payer choice.
pub fn consent_id(patient: &str) -> String {
    OPT_IN.consent_id(patient)
}

/// Whether the member has opted in to Payer-to-Payer now.
pub async fn is_opted_in<S>(store: &S, patient: &str) -> Result<bool, GrantError>
where
    S: ResourceStore + ?Sized,
{
    OPT_IN.is_active(store, patient).await
}

/// Opts in (`true`) or out (`false`). Returns whether anything changed: setting the
/// current value again writes no version.
pub async fn set_opt_in<S>(
    store: &S,
    patient: &str,
    opted_in: bool,
    by: ChangedBy,
) -> Result<bool, GrantError>
where
    S: ResourceStore + ?Sized,
{
    OPT_IN.set_active(store, patient, opted_in, by).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhir::ResourceType;

    #[tokio::test]
    async fn payer_to_payer_is_off_until_the_member_opts_in_and_keeps_each_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_redb::RedbStore::open(dir.path().join("db")).unwrap();
        assert!(!is_opted_in(&store, "p1").await.unwrap(), "off by default");
        assert!(
            !set_opt_in(&store, "p1", false, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(
            set_opt_in(&store, "p1", true, ChangedBy::Member)
                .await
                .unwrap()
        );
        assert!(
            !set_opt_in(&store, "p1", true, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(is_opted_in(&store, "p1").await.unwrap());
        assert!(!is_opted_in(&store, "p2").await.unwrap());
        assert!(
            set_opt_in(&store, "p1", false, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(!is_opted_in(&store, "p1").await.unwrap());
        let record = store
            .get(ResourceType::Consent, &consent_id("p1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.version_id, 2, "opted in, then out: two versions");
        assert_ne!(consent_id("p1"), crate::provider_access::consent_id("p1"));
        assert!(
            !crate::provider_access::is_opted_out(&store, "p1")
                .await
                .unwrap()
        );
        let grants = crate::grants::list_for_patient(&store, "p1").await.unwrap();
        assert!(grants.is_empty(), "the opt-in is not an app grant");
    }
}
