//! The member's Provider Access opt-out (CMS-0057-F, 42 CFR 422.121(a)(3)): a
//! [`member_setting`](crate::member_setting) whose Consent (`pao-…`, `provision.type`
//! `deny`: providers get nothing) is `active` while the opt-out is in force. No record
//! at all means the member never opted out: Provider Access is on by default, as the
//! rule says. Read with one Get on every export.

use crate::grants::GrantError;
use crate::member_setting::Setting;
pub use crate::member_setting::{
    CATEGORY_SYSTEM as OPT_OUT_CATEGORY_SYSTEM, CHANGED_BY_EXTENSION, ChangedBy,
};
use fhir_store::ResourceStore;

/// `Consent.category` code (system [`OPT_OUT_CATEGORY_SYSTEM`]) of the opt-out.
pub const OPT_OUT_CATEGORY_CODE: &str = "provider-access-opt-out";
/// The id prefix of opt-out Consents.
pub const ID_PREFIX: &str = "pao-";

const OPT_OUT: Setting = Setting {
    id_prefix: ID_PREFIX,
    category: (OPT_OUT_CATEGORY_CODE, "Provider Access API opt-out"),
    policy: "OPTOUT",
    provision: "deny",
    purpose: ("TREAT", None),
    events: ("provider_access.opted_out", "provider_access.opted_in"),
};

/// The Consent id of a member's opt-out.
pub fn consent_id(patient: &str) -> String {
    OPT_OUT.consent_id(patient)
}

/// Whether `id` names an opt-out Consent rather than an app grant.
pub fn is_opt_out_id(id: &str) -> bool {
    id.starts_with(ID_PREFIX)
}

/// Whether the member has opted out of Provider Access now.
pub async fn is_opted_out<S>(store: &S, patient: &str) -> Result<bool, GrantError>
where
    S: ResourceStore + ?Sized,
{
    OPT_OUT.is_active(store, patient).await
}

/// Sets the opt-out (`true`) or opts back in (`false`). Returns whether anything
/// changed: setting the current value again writes no version.
pub async fn set_opt_out<S>(
    store: &S,
    patient: &str,
    opted_out: bool,
    by: ChangedBy,
) -> Result<bool, GrantError>
where
    S: ResourceStore + ?Sized,
{
    OPT_OUT.set_active(store, patient, opted_out, by).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhir::ResourceType;

    #[tokio::test]
    async fn opting_out_and_back_in_keeps_each_change_as_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_redb::RedbStore::open(dir.path().join("db")).unwrap();
        assert!(!is_opted_out(&store, "p1").await.unwrap(), "on by default");
        assert!(
            !set_opt_out(&store, "p1", false, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(
            set_opt_out(&store, "p1", true, ChangedBy::Member)
                .await
                .unwrap()
        );
        assert!(
            !set_opt_out(&store, "p1", true, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(is_opted_out(&store, "p1").await.unwrap());
        assert!(!is_opted_out(&store, "p2").await.unwrap());
        assert!(
            set_opt_out(&store, "p1", false, ChangedBy::Plan)
                .await
                .unwrap()
        );
        assert!(!is_opted_out(&store, "p1").await.unwrap());
        let record = store
            .get(ResourceType::Consent, &consent_id("p1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.version_id, 2);
        let grants = crate::grants::list_for_patient(&store, "p1").await.unwrap();
        assert!(grants.is_empty(), "the opt-out is not an app grant");
    }
}
