//! The stored attribution list of one provider organisation and its FHIR `Group` view.

use fhir::clock::unix_now;
use fhir_store::KeyValueStore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::AttributionError;

/// Members per stored chunk: one export work item. 500 members keep a chunk's JSON
/// near 40 KB, far below the store's value limit, and a work item's reads (one member
/// at a time) well inside a Lambda's time.
pub const CHUNK_SIZE: usize = 500;
/// `Group.identifier.system` of an organisation NPI.
pub const NPI_SYSTEM: &str = "http://hl7.org/fhir/sid/us-npi";
/// `Group.identifier.system` of a TIN (the IRS OID, as Da Vinci ATR uses).
pub const TIN_SYSTEM: &str = "urn:oid:2.16.840.1.113883.4.4";
/// Other TIN systems accepted on input.
pub const TIN_SYSTEMS_ACCEPTED: &[&str] = &[
    TIN_SYSTEM,
    "http://terminology.hl7.org/NamingSystem/USEIN",
    "http://hl7.org/fhir/sid/us-tin",
];
/// How long a replaced version's chunks stay readable, for exports that started on it.
pub const OLD_VERSION_GRACE_SECS: i64 = 2 * 24 * 3600;

const HEADERS: &str = "attr-group";
const INDEX: &str = "attr-index";

/// A provider organisation's identifiers as a load names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProviderId {
    pub npi: Option<String>,
    pub tin: Option<String>,
}

impl ProviderId {
    /// The Group id: fixed by the provider, so a reload replaces the same Group.
    pub fn group_id(&self) -> Option<String> {
        match (&self.npi, &self.tin) {
            (Some(npi), _) => Some(format!("npi-{npi}")),
            (None, Some(tin)) => Some(format!("tin-{tin}")),
            (None, None) => None,
        }
    }
}

/// One member's attribution: the Patient and the period (dates, inclusive; open ends).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Member {
    pub patient: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

impl Member {
    /// Whether the period covers `today` (`YYYY-MM-DD`; dates compare as text).
    pub fn covers(&self, today: &str) -> bool {
        self.start.as_deref().is_none_or(|s| s <= today)
            && self.end.as_deref().is_none_or(|e| today <= e)
    }
}

/// The stored description of one provider's current list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupHeader {
    pub id: String,
    pub provider: ProviderId,
    #[serde(default)]
    pub name: Option<String>,
    /// Bumped by every load that changes the list; chunks are stored per version.
    pub version: u64,
    pub member_count: usize,
    pub chunks: u32,
    /// SHA-256 of the sorted members: a reload of the same list changes nothing.
    pub digest: String,
    /// When this version was loaded (FHIR instant).
    pub loaded_at: String,
}

impl GroupHeader {
    /// Whether a caller with these identifiers may see this Group.
    pub fn visible_to(&self, npis: &[String], tins: &[String]) -> bool {
        self.provider.npi.as_ref().is_some_and(|n| npis.contains(n))
            || self.provider.tin.as_ref().is_some_and(|t| tins.contains(t))
    }

    /// The FHIR `Group` with every member (Da Vinci ATR shape).
    pub fn to_resource(&self, members: &[Member]) -> Value {
        let mut identifier = Vec::new();
        if let Some(npi) = &self.provider.npi {
            identifier.push(json!({"system": NPI_SYSTEM, "value": npi}));
        }
        if let Some(tin) = &self.provider.tin {
            identifier.push(json!({"system": TIN_SYSTEM, "value": tin}));
        }
        let member: Vec<Value> = members
            .iter()
            .map(|m| {
                let mut entry = json!({"entity": {"reference": format!("Patient/{}", m.patient)}});
                let mut period = serde_json::Map::new();
                if let Some(s) = &m.start {
                    period.insert("start".into(), json!(s));
                }
                if let Some(e) = &m.end {
                    period.insert("end".into(), json!(e));
                }
                if !period.is_empty() {
                    entry["period"] = Value::Object(period);
                }
                entry
            })
            .collect();
        let mut group = json!({
            "resourceType": "Group",
            "id": self.id,
            "meta": {"versionId": self.version.to_string(), "lastUpdated": self.loaded_at},
            "identifier": identifier,
            "active": true,
            "type": "person",
            "actual": true,
            "name": self.name.clone().unwrap_or_else(|| format!("Attributed members of {}", self.id)),
            "quantity": self.member_count,
        });
        if !member.is_empty() {
            group["member"] = Value::Array(member);
        }
        group
    }
}

fn members_namespace(id: &str) -> String {
    format!("attr-members-{id}")
}

fn chunk_key(version: u64, chunk: u32) -> String {
    format!("{version:012}/{chunk:06}")
}

fn corrupt(e: impl std::fmt::Display) -> AttributionError {
    AttributionError::Corrupt(e.to_string())
}

/// The current header of Group `id`.
pub async fn header<K: KeyValueStore + ?Sized>(
    kv: &K,
    id: &str,
) -> Result<Option<GroupHeader>, AttributionError> {
    if !valid_group_id(id) {
        return Ok(None);
    }
    match kv.get(HEADERS, id).await? {
        Some(entry) => serde_json::from_value(entry.value)
            .map(Some)
            .map_err(corrupt),
        None => Ok(None),
    }
}

/// Chunk `n` of the version `header` describes.
pub async fn chunk<K: KeyValueStore + ?Sized>(
    kv: &K,
    id: &str,
    version: u64,
    n: u32,
) -> Result<Vec<Member>, AttributionError> {
    match kv
        .get(&members_namespace(id), &chunk_key(version, n))
        .await?
    {
        Some(entry) => serde_json::from_value(entry.value).map_err(corrupt),
        None => Err(AttributionError::Corrupt(format!(
            "group {id} version {version} has no chunk {n}"
        ))),
    }
}

/// Every member of the current version, in stored order.
pub async fn members<K: KeyValueStore + ?Sized>(
    kv: &K,
    header: &GroupHeader,
) -> Result<Vec<Member>, AttributionError> {
    let mut all = Vec::with_capacity(header.member_count);
    for n in 0..header.chunks {
        all.extend(chunk(kv, &header.id, header.version, n).await?);
    }
    Ok(all)
}

/// The Group id registered for an identifier (`system`, `value`), if any.
pub async fn find_by_identifier<K: KeyValueStore + ?Sized>(
    kv: &K,
    system: &str,
    value: &str,
) -> Result<Option<String>, AttributionError> {
    let kind = if system == NPI_SYSTEM {
        "npi"
    } else if TIN_SYSTEMS_ACCEPTED.contains(&system) {
        "tin"
    } else {
        return Ok(None);
    };
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    Ok(kv
        .get(INDEX, &format!("{kind}|{value}"))
        .await?
        .and_then(|e| e.value.as_str().map(str::to_owned)))
}

/// The Groups a caller with these identifiers may see.
pub async fn visible_groups<K: KeyValueStore + ?Sized>(
    kv: &K,
    npis: &[String],
    tins: &[String],
) -> Result<Vec<GroupHeader>, AttributionError> {
    let mut ids = Vec::new();
    for npi in npis {
        ids.extend(find_by_identifier(kv, NPI_SYSTEM, npi).await?);
    }
    for tin in tins {
        ids.extend(find_by_identifier(kv, TIN_SYSTEM, tin).await?);
    }
    ids.sort();
    ids.dedup();
    let mut headers = Vec::new();
    for id in ids {
        headers.extend(header(kv, &id).await?);
    }
    Ok(headers)
}

/// What [`replace`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replaced {
    pub group_id: String,
    pub version: u64,
    pub members: usize,
    /// The stored list was already exactly this one: nothing was written.
    pub unchanged: bool,
}

/// Replaces the provider's list with `members` as a whole.
pub async fn replace<K: KeyValueStore + ?Sized>(
    kv: &K,
    provider: &ProviderId,
    name: Option<&str>,
    mut members: Vec<Member>,
) -> Result<Replaced, AttributionError> {
    let id = provider
        .group_id()
        .ok_or_else(|| AttributionError::Corrupt("a provider without NPI or TIN".into()))?;
    members.sort();
    members.dedup();
    let digest = digest_of(provider, name, &members);
    let current = kv.get(HEADERS, &id).await?;
    let old: Option<GroupHeader> = match &current {
        Some(entry) => Some(serde_json::from_value(entry.value.clone()).map_err(corrupt)?),
        None => None,
    };
    if let Some(old) = &old
        && old.digest == digest
    {
        return Ok(Replaced {
            group_id: id,
            version: old.version,
            members: old.member_count,
            unchanged: true,
        });
    }
    let version = old.as_ref().map_or(1, |o| o.version + 1);
    let namespace = members_namespace(&id);
    let chunks: Vec<&[Member]> = members.chunks(CHUNK_SIZE).collect();
    for (n, part) in chunks.iter().enumerate() {
        let value = serde_json::to_value(part).map_err(corrupt)?;
        let n = u32::try_from(n).map_err(corrupt)?;
        // A crashed earlier attempt at this version left the same key: overwrite.
        kv.put(&namespace, &chunk_key(version, n), &value, None)
            .await?;
    }
    let new = GroupHeader {
        id: id.clone(),
        provider: provider.clone(),
        name: name.map(str::to_owned),
        version,
        member_count: members.len(),
        chunks: u32::try_from(chunks.len()).map_err(corrupt)?,
        digest,
        loaded_at: fhir::Instant::now().to_string(),
    };
    let value = serde_json::to_value(&new).map_err(corrupt)?;
    // The commit point: the header names the new version only if nobody else loaded
    // this provider since we read it.
    let swapped = match &current {
        Some(entry) => {
            kv.replace(HEADERS, &id, entry.version, &value, None)
                .await?
        }
        None => kv.insert(HEADERS, &id, &value, None).await?,
    };
    if !swapped {
        return Err(AttributionError::Conflict(id));
    }
    if let Some(npi) = &provider.npi {
        kv.put(INDEX, &format!("npi|{npi}"), &json!(id), None)
            .await?;
    }
    if let Some(tin) = &provider.tin {
        kv.put(INDEX, &format!("tin|{tin}"), &json!(id), None)
            .await?;
    }
    if let Some(old) = old {
        retire(kv, &namespace, &old).await?;
    }
    tracing::info!(target: "audit", group_id = %id, version, members = members.len(), event = "attribution.replaced", "attribution list replaced");
    Ok(Replaced {
        group_id: id,
        version,
        members: members.len(),
        unchanged: false,
    })
}

/// Gives the replaced version's chunks an expiry instead of deleting them, so an
/// export that started on that version can still finish.
async fn retire<K: KeyValueStore + ?Sized>(
    kv: &K,
    namespace: &str,
    old: &GroupHeader,
) -> Result<(), AttributionError> {
    let expires = unix_now() + OLD_VERSION_GRACE_SECS;
    for n in 0..old.chunks {
        let key = chunk_key(old.version, n);
        if let Some(entry) = kv.get(namespace, &key).await? {
            kv.put(namespace, &key, &entry.value, Some(expires)).await?;
        }
    }
    Ok(())
}

fn digest_of(provider: &ProviderId, name: Option<&str>, members: &[Member]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&(provider, name, members)).unwrap_or_default());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Group ids we issue: `npi-` + 10 digits or `tin-` + 9 digits.
pub fn valid_group_id(id: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    id.strip_prefix("npi-").is_some_and(|d| digits(d, 10))
        || id.strip_prefix("tin-").is_some_and(|d| digits(d, 9))
}
