//! Payer-to-Payer **match Groups**: the members another plan matched (PDex
//! `$bulk-member-match`'s "matched" Group), which `$davinci-data-export` exports.
//!
//! A match Group belongs to the client that matched its members: no other client
//! sees or exports it. Each member carries what their HRex Consent allowed (the
//! policy, and the end of its period), so a slice applies it *when it runs*, together
//! with the member's Payer-to-Payer opt-in at that moment (PDex: the export SHOULD
//! check consent at the time of execution).
//!
//! Records (Gets and conditional inserts on keys, like attribution Groups):
//! * `p2p-group` / `{id}`: the [`MatchGroup`] header, written last (the commit point);
//! * `p2p-group-members` / `{id}.{chunk:06}`: up to [`CHUNK_SIZE`] members each, so a
//!   Group of any size is read a chunk (one export slice) at a time.
//!
//! Both expire after [`LIFETIME_SECS`]: long enough for a quarterly exchange of
//! concurrent coverage ("all data since the last request") on one match, short enough
//! that a plan asks again (and so shows the member's consent again) every few months.

use fhir_store::KeyValueStore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ExportError;
use crate::p2p::ConsentPolicy;

const HEADERS: &str = "p2p-group";
const CHUNKS: &str = "p2p-group-members";
/// `p2p-groups-of.{client}` / `{group id}`: a client's match Groups, for its searches.
const OF_CLIENT: &str = "p2p-groups-of";
/// Match Groups a search lists, at most.
pub const MAX_LISTED: usize = 100;
const RESULT_SYSTEM: &str =
    "http://hl7.org/fhir/us/davinci-pdex/CodeSystem/PdexMultiMemberMatchResultCS";
const MATCH_GROUP_PROFILE: &str =
    "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/pdex-member-match-group";
const NO_MATCH_GROUP_PROFILE: &str =
    "http://hl7.org/fhir/us/davinci-pdex/StructureDefinition/pdex-member-no-match-group";
/// Members per chunk (and per export slice), as attribution Groups.
pub const CHUNK_SIZE: usize = attribution::group::CHUNK_SIZE;
/// How long a match Group lives: a quarter and a month.
pub const LIFETIME_SECS: i64 = 120 * 24 * 3600;
/// Every match Group id starts so, which tells it from an attribution Group's.
pub const ID_PREFIX: &str = "p2p-";

/// One matched member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedMember {
    pub patient: String,
    /// What the member's consent allows.
    pub policy: ConsentPolicy,
    /// The end of the consent's `provision.period` (date or instant), if it has one:
    /// after it, the member is left out of exports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_end: Option<String>,
}

impl MatchedMember {
    /// Whether the consent still holds on `today` (`YYYY-MM-DD`; an end date covers
    /// its whole day).
    pub fn consent_holds(&self, today: &str) -> bool {
        self.consent_end
            .as_deref()
            .is_none_or(|end| end.get(..10).unwrap_or(end) >= today)
    }
}

/// A match Group's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchGroup {
    pub id: String,
    /// The client (the other plan's system) that matched the members.
    pub client_id: String,
    pub member_count: usize,
    pub chunks: u32,
    /// FHIR instant of the match.
    pub created_at: String,
    pub expires_at: i64,
}

fn chunk_key(id: &str, chunk: u32) -> String {
    format!("{id}.{chunk:06}")
}

fn corrupt(e: impl std::fmt::Display) -> ExportError {
    ExportError::Corrupt(e.to_string())
}

/// Whether `id` can name a match Group (what a URL may hold before any look-up).
pub fn is_match_group_id(id: &str) -> bool {
    id.starts_with(ID_PREFIX)
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Stores a new match Group of `members` for `client_id`, at `now` (unix seconds).
pub async fn create<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
    members: &[MatchedMember],
    now: i64,
) -> Result<MatchGroup, ExportError> {
    let id = format!("{ID_PREFIX}{}", crate::job::new_job_id()?);
    create_with_id(kv, &id, client_id, members, now).await
}

/// Stores the match Group `id` (which must start with [`ID_PREFIX`]); when one with
/// that id is already stored (a second caller finishing the same work), returns that
/// one unchanged.
pub async fn create_with_id<K: KeyValueStore + ?Sized>(
    kv: &K,
    id: &str,
    client_id: &str,
    members: &[MatchedMember],
    now: i64,
) -> Result<MatchGroup, ExportError> {
    if !is_match_group_id(id) {
        return Err(ExportError::Corrupt(format!(
            "{id} cannot name a match group"
        )));
    }
    if let Some(stored) = get(kv, id).await? {
        return Ok(stored);
    }
    let id = id.to_owned();
    let expires_at = now.saturating_add(LIFETIME_SECS);
    let mut chunks = 0u32;
    for (n, chunk) in members.chunks(CHUNK_SIZE).enumerate() {
        let n = u32::try_from(n).map_err(corrupt)?;
        let value = serde_json::to_value(chunk).map_err(corrupt)?;
        kv.put(CHUNKS, &chunk_key(&id, n), &value, Some(expires_at))
            .await?;
        chunks = n + 1;
    }
    let group = MatchGroup {
        id,
        client_id: client_id.to_owned(),
        member_count: members.len(),
        chunks,
        created_at: fhir::Instant::from_unix_millis(now.saturating_mul(1000))
            .map(|i| i.to_string())
            .unwrap_or_default(),
        expires_at,
    };
    kv.put(
        &format!("{OF_CLIENT}.{client_id}"),
        &group.id,
        &json!({}),
        Some(expires_at),
    )
    .await?;
    let value = serde_json::to_value(&group).map_err(corrupt)?;
    if !kv
        .insert(HEADERS, &group.id, &value, Some(expires_at))
        .await?
    {
        // Another caller stored it first, with the same members.
        return get(kv, &group.id)
            .await?
            .ok_or_else(|| ExportError::Corrupt("match group vanished".into()));
    }
    Ok(group)
}

/// The match Group `id`, while it lives.
pub async fn get<K: KeyValueStore + ?Sized>(
    kv: &K,
    id: &str,
) -> Result<Option<MatchGroup>, ExportError> {
    if !is_match_group_id(id) {
        return Ok(None);
    }
    match kv.get(HEADERS, id).await? {
        Some(entry) => Ok(Some(serde_json::from_value(entry.value).map_err(corrupt)?)),
        None => Ok(None),
    }
}

/// The members of one chunk (an export slice).
pub async fn chunk<K: KeyValueStore + ?Sized>(
    kv: &K,
    group_id: &str,
    chunk: u32,
) -> Result<Vec<MatchedMember>, ExportError> {
    match kv.get(CHUNKS, &chunk_key(group_id, chunk)).await? {
        Some(entry) => serde_json::from_value(entry.value).map_err(corrupt),
        // Expired with its header: nothing left to export.
        None => Ok(Vec::new()),
    }
}

/// Every member, chunk by chunk (for reading the Group).
pub async fn members<K: KeyValueStore + ?Sized>(
    kv: &K,
    group: &MatchGroup,
) -> Result<Vec<MatchedMember>, ExportError> {
    let mut all = Vec::with_capacity(group.member_count);
    for n in 0..group.chunks {
        all.extend(chunk(kv, &group.id, n).await?);
    }
    Ok(all)
}

/// The live match Groups of `client_id` (at most [`MAX_LISTED`]): one Query of its
/// index, then a Get of each header.
pub async fn of_client<K: KeyValueStore + ?Sized>(
    kv: &K,
    client_id: &str,
) -> Result<Vec<MatchGroup>, ExportError> {
    let mut groups = Vec::new();
    for (id, _) in kv
        .list(&format!("{OF_CLIENT}.{client_id}"), "", MAX_LISTED)
        .await?
    {
        if let Some(group) = get(kv, &id).await?
            && group.client_id == client_id
        {
            groups.push(group);
        }
    }
    Ok(groups)
}

/// Where one member of a `$bulk-member-match` ended up: PDex's three result Groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Matched,
    NoMatch,
    ConsentConstraint,
}

/// A PDex result Group of `verdict`'s members: `entries` are `{"member": …}` objects,
/// with the submitted `MemberPatient` to contain under `"patient"` when there is one.
pub fn group_resource(id: &str, verdict: Verdict, entries: Vec<Value>) -> Value {
    let (code, display, profile) = match verdict {
        Verdict::Matched => ("match", "Matched", MATCH_GROUP_PROFILE),
        Verdict::NoMatch => ("nomatch", "Not Matched", NO_MATCH_GROUP_PROFILE),
        Verdict::ConsentConstraint => (
            "consentconstraint",
            "Consent Constraint",
            NO_MATCH_GROUP_PROFILE,
        ),
    };
    let mut contained = Vec::new();
    let mut member = Vec::new();
    for entry in entries {
        if let Some(patient) = entry.get("patient") {
            contained.push(patient.clone());
        }
        member.push(entry["member"].clone());
    }
    let mut group = json!({
        "resourceType": "Group",
        "id": id,
        "meta": {"profile": [profile]},
        "active": true,
        "type": "person",
        "actual": true,
        "code": {"coding": [{"system": RESULT_SYSTEM, "code": code, "display": display}]},
        "quantity": member.len(),
    });
    // FHIR has no empty arrays: an empty Group has neither.
    if !contained.is_empty() {
        group["contained"] = Value::Array(contained);
    }
    if !member.is_empty() {
        group["member"] = Value::Array(member);
    }
    group
}

/// A match Group as a search lists it: no member list (read the Group for it).
pub fn summary(group: &MatchGroup) -> Value {
    let mut resource = group_resource(&group.id, Verdict::Matched, Vec::new());
    resource["quantity"] = json!(group.member_count);
    resource
}
