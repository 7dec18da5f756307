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
/// Records asked of the store per read.
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

/// Matches on a page when the client does not say (`_count`), and at most.
pub const DEFAULT_PAGE: usize = 200;
pub const MAX_PAGE: usize = 1000;
/// Records read for one page, at most, as a multiple of its size: a page whose
/// records the consent or the five-year window mostly leaves out ends early, with a
/// `next` link, rather than reading a whole history in one request.
const READS_PER_MATCH: usize = 5;

/// The types after the Patient, in the order pages walk them.
const PAGED_TYPES: [ResourceType; 2] = [ResourceType::Coverage, ResourceType::ExplanationOfBenefit];

/// Which page: its size, and where it starts (`None`: the first, with the Patient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub count: usize,
    pub from: Option<Position>,
}

/// A place in the member's history: strictly after `after` (a store sort key) in
/// the member's `resource_type` compartment. Carried in the `next` link unsealed: the
/// path's Patient fixes the partition, the match link authorises all of it, and the
/// key is only a lower bound within it, so a client that edits it can only re-read
/// or skip what it may read anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub resource_type: ResourceType,
    pub after: Option<String>,
}

impl Page {
    /// `_count` and `_page_token` from the query string; other parameters are
    /// ignored (`_since`, `_type`, `start` and `end` are not supported: the consent and
    /// CMS's five years decide what is sent).
    pub fn from_query(query: Option<&str>) -> Result<Page, String> {
        let mut page = Page {
            count: DEFAULT_PAGE,
            from: None,
        };
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match name.as_ref() {
                "_count" => {
                    page.count = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or(format!("_count must be a number from 1 to {MAX_PAGE}"))?;
                }
                "_page_token" => {
                    page.from = Some(
                        Position::decode(&value)
                            .ok_or("_page_token is not one this server gave")?,
                    );
                }
                _ => {}
            }
        }
        Ok(page)
    }
}

impl Position {
    fn encode(&self) -> String {
        use base64::Engine;
        let text = format!(
            "{}|{}",
            self.resource_type.as_str(),
            self.after.as_deref().unwrap_or_default()
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    fn decode(token: &str) -> Option<Position> {
        use base64::Engine;
        if token.len() > 1024 {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (resource_type, after) = text.split_once('|')?;
        let resource_type = PAGED_TYPES
            .into_iter()
            .find(|t| t.as_str() == resource_type)?;
        Some(Position {
            resource_type,
            after: Some(after.to_owned()).filter(|a| !a.is_empty()),
        })
    }
}

/// One page of the member's Bundle under `policy`, at `now` (unix seconds): the
/// Patient on the first page, then Coverages, then claims, each with its Provenance
/// as an include, and a `next` link while there is more. `total` is given only when
/// the whole answer is this one page.
pub async fn bundle<S: ResourceStore + ?Sized>(
    store: &S,
    patient_id: &str,
    policy: ConsentPolicy,
    sensitive: &SensitivePolicy,
    base_url: &str,
    now: i64,
    page: &Page,
) -> StoreResult<Value> {
    let window = Window::at(now);
    let mut resources = Vec::new();
    if page.from.is_none()
        && let Some(record) = store.get(ResourceType::Patient, patient_id).await?
        && !record.deleted
        && let Ok(patient) = serde_json::from_str::<Value>(&record.body)
        && let Some(patient) =
            shared_form(ResourceType::Patient, patient, policy, sensitive, &window)
    {
        resources.push(patient);
    }
    let mut position = page.from.clone().unwrap_or(Position {
        resource_type: PAGED_TYPES[0],
        after: None,
    });
    let mut reads_left = page.count.saturating_mul(READS_PER_MATCH);
    let next = loop {
        let wanted = page.count.saturating_sub(resources.len());
        if wanted == 0 || reads_left == 0 {
            break Some(position);
        }
        let limit = wanted.min(reads_left).min(PAGE);
        let mut query = ListQuery::new(
            Partition::Compartment {
                patient: patient_id.to_owned(),
                resource_type: position.resource_type,
            },
            limit,
        );
        query.after = position.after.clone().map(fhir_store::SortKey);
        let read = store.list(query).await?;
        reads_left = reads_left.saturating_sub(read.entries.len());
        if let Some((key, _)) = read.entries.last() {
            position.after = Some(key.0.clone());
        }
        resources.extend(
            read.entries
                .into_iter()
                .filter(|(_, r)| !r.deleted)
                .filter_map(|(_, r)| serde_json::from_str::<Value>(&r.body).ok())
                .filter_map(|r| shared_form(position.resource_type, r, policy, sensitive, &window)),
        );
        if read.more {
            continue;
        }
        match PAGED_TYPES
            .iter()
            .skip_while(|t| **t != position.resource_type)
            .nth(1)
        {
            Some(&resource_type) => {
                position = Position {
                    resource_type,
                    after: None,
                }
            }
            None => break None,
        }
    };
    Ok(searchset(
        resources,
        patient_id,
        base_url,
        now,
        page,
        next.as_ref(),
    ))
}

/// The page's Bundle: matches, their Provenances as includes, and the links.
fn searchset(
    resources: Vec<Value>,
    patient_id: &str,
    base_url: &str,
    now: i64,
    page: &Page,
    next: Option<&Position>,
) -> Value {
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
    let matches = resources.len();
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| entry(r, "match"))
        .chain(provenances.into_iter().map(|p| entry(p, "include")))
        .collect();
    let here = format!(
        "{base_url}/Patient/{patient_id}/$everything?_count={}",
        page.count
    );
    let mut links = vec![json!({"relation": "self", "url": match &page.from {
        Some(from) => format!("{here}&_page_token={}", from.encode()),
        None => here.clone(),
    }})];
    if let Some(next) = next {
        links.push(
            json!({"relation": "next", "url": format!("{here}&_page_token={}", next.encode())}),
        );
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
    });
    if page.from.is_none() && next.is_none() {
        bundle["total"] = json!(matches);
    }
    if !entries.is_empty() {
        bundle["entry"] = json!(entries);
    }
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_names_a_paged_type_and_a_place_in_it() {
        let at = Position {
            resource_type: ResourceType::ExplanationOfBenefit,
            after: Some("2025-06-01T00:00:00Z#eob-1".into()),
        };
        let page = Page::from_query(Some(&format!("_count=50&_page_token={}", at.encode())));
        assert_eq!(
            page,
            Ok(Page {
                count: 50,
                from: Some(at)
            })
        );
        assert_eq!(
            Page::from_query(None),
            Ok(Page {
                count: DEFAULT_PAGE,
                from: None
            })
        );
        // Only Coverage and claims are paged; anything else is not our token.
        use base64::Engine;
        let patient = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("Patient|x");
        assert!(Page::from_query(Some(&format!("_page_token={patient}"))).is_err());
        assert!(Page::from_query(Some("_page_token=%%%")).is_err());
        assert!(Page::from_query(Some(&format!("_page_token={}", "A".repeat(2000)))).is_err());
        assert!(Page::from_query(Some("_count=1001")).is_err());
    }

    #[test]
    fn only_a_patients_everything_path_is_ours() {
        assert_eq!(patient_of("/Patient/p-1/$everything"), Some("p-1"));
        assert_eq!(patient_of("/Patient/$everything"), None);
        assert_eq!(patient_of("/Patient/a/b/$everything"), None);
        assert_eq!(patient_of("/Patient/p-1"), None);
    }
}
