//! `GET /Patient/{id}/$everything` (PDex, single-member Payer-to-Payer) for a member
//! the same client has matched, limited to what the match and the consent allow.
//!
//! A successful `$member-match` records a *match link* (namespace `member-match-link`,
//! key `{client_id}:{patient_id}`, the consent's policy, kept [`LINK_LIFETIME_SECS`]).
//! `$everything` answers only with such a link and while the member is still opted
//! in; otherwise 404, as for an unknown id. The answer is one `searchset` Bundle of
//! what `bulk_export::p2p::shared_form` sends another plan (the same rule as the bulk
//! `$davinci-data-export`): the Patient, their Coverages, their claims of the last
//! five years as CARIN Basis (non-financial) EOBs, their prior authorizations that
//! are neither denied nor for drugs (pending, in force, or changed within the year),
//! and, under a `#sensitive` consent, nothing the plan's sensitive-code list flags;
//! each with its PDex Provenance (`search.mode` = `include`).

use bulk_export::p2p::{Window, provenance, shared_form};
use fhir::ResourceType;
use fhir_store::{KeyValueStore, ListQuery, Partition, ResourceStore, StoreResult};
use serde_json::{Value, json};

use crate::consent::ConsentPolicy;
use crate::sensitive::SensitivePolicy;

const NAMESPACE: &str = "member-match-link";
/// How long a match lets the client read the member: a week, the time CMS gives
/// the new plan to ask after coverage starts.
pub const LINK_LIFETIME_SECS: i64 = 7 * 24 * 3600;
/// Resources of one type read for one member, at most (no paging yet).
const MAX_PER_TYPE: usize = 2000;
const PAGE: usize = 100;

/// The path's Patient id, when the path is `/Patient/{id}/$everything`.
pub fn patient_of(path: &str) -> Option<&str> {
    path.strip_prefix("/Patient/")?
        .strip_suffix("/$everything")
        .filter(|id| fhir::is_valid_id(id))
}

fn key(client_id: &str, patient_id: &str) -> String {
    format!("{client_id}:{patient_id}")
}

/// Records that `client_id` matched `patient_id` under `policy`.
pub async fn record_link<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
    patient_id: &str,
    policy: ConsentPolicy,
    now: i64,
) -> StoreResult<()> {
    kv.put(
        NAMESPACE,
        &key(client_id, patient_id),
        &json!({"policy": policy.code()}),
        Some(now.saturating_add(LINK_LIFETIME_SECS)),
    )
    .await
}

/// The policy of the client's live match of `patient_id`, if any.
pub async fn link<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
    patient_id: &str,
) -> StoreResult<Option<ConsentPolicy>> {
    let entry = kv.get(NAMESPACE, &key(client_id, patient_id)).await?;
    Ok(entry
        .as_ref()
        .and_then(|e| e.value.get("policy")?.as_str())
        .and_then(ConsentPolicy::from_code))
}

/// The member's Bundle under `policy`, at `now` (unix seconds).
pub async fn bundle<S: ResourceStore + ?Sized>(
    store: &S,
    patient_id: &str,
    policy: ConsentPolicy,
    sensitive: &SensitivePolicy,
    base_url: &str,
    now: i64,
) -> StoreResult<Value> {
    let window = Window::at(now);
    let mut resources = Vec::new();
    if let Some(record) = store.get(ResourceType::Patient, patient_id).await?
        && !record.deleted
        && let Ok(patient) = serde_json::from_str::<Value>(&record.body)
    {
        resources.push((ResourceType::Patient, patient));
    }
    for resource_type in [ResourceType::Coverage, ResourceType::ExplanationOfBenefit] {
        for resource in compartment(store, patient_id, resource_type).await? {
            resources.push((resource_type, resource));
        }
    }
    let resources: Vec<Value> = resources
        .into_iter()
        .filter_map(|(t, r)| shared_form(t, r, policy, sensitive, &window))
        .collect();
    let entry = |resource: Value, mode: &str| {
        let full_url = format!(
            "{base_url}/{}/{}",
            resource["resourceType"].as_str().unwrap_or_default(),
            resource["id"].as_str().unwrap_or_default()
        );
        json!({"fullUrl": full_url, "resource": resource, "search": {"mode": mode}})
    };
    // Each resource's PDex Provenance (this plan transmitting it now), as an include.
    let recorded = fhir::Instant::from_unix_millis(now.saturating_mul(1000))
        .map(|i| i.to_string())
        .unwrap_or_default();
    let provenances: Vec<Value> = resources
        .iter()
        .filter_map(|r| provenance(r, &recorded))
        .collect();
    let total = resources.len();
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| entry(r, "match"))
        .chain(provenances.into_iter().map(|p| entry(p, "include")))
        .collect();
    Ok(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "entry": entries
    }))
}

async fn compartment<S: ResourceStore + ?Sized>(
    store: &S,
    patient_id: &str,
    resource_type: ResourceType,
) -> StoreResult<Vec<Value>> {
    let mut query = ListQuery::new(
        Partition::Compartment {
            patient: patient_id.to_owned(),
            resource_type,
        },
        PAGE,
    );
    let mut out = Vec::new();
    loop {
        let page = store.list(query.clone()).await?;
        let last = page.entries.last().map(|(key, _)| key.clone());
        out.extend(
            page.entries
                .into_iter()
                .filter(|(_, r)| !r.deleted)
                .filter_map(|(_, r)| serde_json::from_str::<Value>(&r.body).ok()),
        );
        match (page.more, last) {
            (true, Some(after)) if out.len() < MAX_PER_TYPE => query.after = Some(after),
            _ => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_patients_everything_path_is_ours() {
        assert_eq!(patient_of("/Patient/p-1/$everything"), Some("p-1"));
        assert_eq!(patient_of("/Patient/$everything"), None);
        assert_eq!(patient_of("/Patient/a/b/$everything"), None);
        assert_eq!(patient_of("/Patient/p-1"), None);
    }
}
