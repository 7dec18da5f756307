//! The grant model and its operations. See the crate docs for who calls what.

use std::time::Duration;

use fhir::clock::unix_now;
use fhir::{Instant, Reference, ResourceType, is_valid_id};
use fhir_store::{
    ListQuery, Partition, ResourceRecord, ResourceStore, ResourceWrite, StoreError, WriteCondition,
    update_with,
};
use serde_json::{Value, json};

/// `Consent.provision.actor.reference.identifier.system` for the app's SMART client id.
pub const CLIENT_ID_SYSTEM: &str = "urn:patient-access:client-id";
/// Extension holding the approved SMART scope string (what tokens may carry).
pub const SCOPE_EXTENSION: &str = "urn:patient-access:extension:smart-scope";
/// Extension holding the authorization transaction the grant was made in.
pub const TRANSACTION_EXTENSION: &str = "urn:patient-access:extension:transaction";
/// Extension holding whether the app's developer attested to its privacy practices.
pub const ATTESTED_EXTENSION: &str = "urn:patient-access:extension:app-attested";

/// At most this many grants are listed for one member (connected-apps page).
const LIST_LIMIT: usize = 200;

/// Where a grant stands. The FHIR `Consent.status` code is in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantStatus {
    /// Approved on the consent page, waiting for the sign-in to finish (`proposed`).
    Pending,
    /// In force: tokens may be issued and used (`active`).
    Active,
    /// The member denied the request (`rejected`).
    Rejected,
    /// Revoked by the member, by the app, by reuse detection or by disabling the app
    /// (`inactive`). Final.
    Inactive,
}

impl GrantStatus {
    /// The `Consent.status` code.
    pub const fn fhir_code(self) -> &'static str {
        match self {
            GrantStatus::Pending => "proposed",
            GrantStatus::Active => "active",
            GrantStatus::Rejected => "rejected",
            GrantStatus::Inactive => "inactive",
        }
    }

    fn from_fhir_code(code: &str) -> Option<GrantStatus> {
        [
            GrantStatus::Pending,
            GrantStatus::Active,
            GrantStatus::Rejected,
            GrantStatus::Inactive,
        ]
        .into_iter()
        .find(|s| s.fhir_code() == code)
    }
}

/// One grant, as read from its `Consent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The grant id = `Consent.id`; access tokens carry it as `grant_id`.
    pub id: String,
    /// The member's Patient id (`Consent.patient`). `None` while a grant is pending or
    /// was denied before the identity provider named the member: the authorization
    /// server learns the patient only when the sign-in completes, and
    /// [`activate`] binds it.
    pub patient: Option<String>,
    /// The app's SMART client id.
    pub client_id: String,
    /// The app's display name when the grant was made.
    pub app_name: String,
    /// The approved SMART scopes, space-separated: the most any token may carry.
    pub scope: String,
    /// The authorization transaction the grant was made in, when there was one.
    pub transaction_id: Option<String>,
    pub status: GrantStatus,
    /// When the grant was made (`Consent.dateTime`).
    pub created: Instant,
    /// Unix seconds after which the grant is no longer usable (`provision.period.end`).
    pub expires_at: i64,
    /// The store's version of the `Consent`, for optimistic concurrency.
    pub version_id: u64,
}

impl Grant {
    /// Active and not expired at `now` (unix seconds).
    pub fn is_usable(&self, now: i64) -> bool {
        self.status == GrantStatus::Active && now < self.expires_at
    }

    /// True when the grant was made by this member for this app.
    pub fn belongs_to(&self, client_id: &str, patient: &str) -> bool {
        // Ids are not secrets; plain comparison is fine.
        self.client_id == client_id && self.patient.as_deref() == Some(patient)
    }
}

/// What the consent page approved (or denied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    /// The member, when already known (see [`Grant::patient`]).
    pub patient: Option<String>,
    pub client_id: String,
    pub app_name: String,
    /// Whether the app is attested, as shown to the member.
    pub app_attested: bool,
    /// The approved SMART scopes (for a rejection: the requested ones).
    pub scope: String,
    /// The resource types the scopes cover, recorded as `provision.class` so a person
    /// reading the Consent sees the data categories without parsing scopes.
    pub data_types: Vec<ResourceType>,
    pub transaction_id: Option<String>,
    /// How long the grant lasts once active.
    pub lifetime: Duration,
}

/// Why a grant operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// No grant with this id (or the id is malformed).
    #[error("no such grant")]
    NotFound,
    /// The grant exists but belongs to another member or app. Callers answer exactly as
    /// for [`GrantError::NotFound`].
    #[error("the grant belongs to another member or app")]
    WrongOwner,
    /// The operation needs another status (e.g. activating a grant that is not pending).
    #[error("the grant is {0:?}, which does not allow this")]
    WrongStatus(GrantStatus),
    /// Active, but past its end.
    #[error("the grant has expired")]
    Expired,
    /// The patient id or input is not usable.
    #[error("invalid grant input: {0}")]
    Invalid(&'static str),
    /// The random source failed.
    #[error("no secure random source")]
    Random,
    /// The stored Consent could not be read as a grant.
    #[error("stored Consent is not a grant: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records a pending grant: what the member approved, before the sign-in completes.
pub async fn create_pending<S>(store: &S, new: &NewGrant) -> Result<Grant, GrantError>
where
    S: ResourceStore + ?Sized,
{
    create(store, new, GrantStatus::Pending).await
}

/// Records a denial as a `rejected` Consent (the member said no; nothing is granted).
pub async fn record_rejected<S>(store: &S, new: &NewGrant) -> Result<Grant, GrantError>
where
    S: ResourceStore + ?Sized,
{
    create(store, new, GrantStatus::Rejected).await
}

/// Flips a pending grant to active, after checking it is this member's grant for this
/// app. The Cognito Verify trigger calls this when the consent challenge is answered.
///
/// A pending grant made before the member was known (the usual case: the authorization
/// server only learns the patient when the sign-in completes) is bound to `patient`
/// here; one that already names a member must name this one.
///
/// Errors: [`GrantError::NotFound`], [`GrantError::WrongOwner`],
/// [`GrantError::WrongStatus`] (already active, rejected or revoked: a grant is
/// activated at most once), [`GrantError::Expired`].
pub async fn activate<S>(
    store: &S,
    grant_id: &str,
    client_id: &str,
    patient: &str,
) -> Result<Grant, GrantError>
where
    S: ResourceStore + ?Sized,
{
    let now = unix_now();
    if !is_valid_id(patient) {
        return Err(GrantError::Invalid("patient id"));
    }
    let grant = transition(store, grant_id, Some(patient), |grant| {
        let member_ok = grant.patient.as_deref().is_none_or(|p| p == patient);
        if grant.client_id != client_id || !member_ok {
            return Err(GrantError::WrongOwner);
        }
        if grant.status != GrantStatus::Pending {
            return Err(GrantError::WrongStatus(grant.status));
        }
        if now >= grant.expires_at {
            return Err(GrantError::Expired);
        }
        Ok(Some(GrantStatus::Active))
    })
    .await?;
    tracing::info!(target: "audit", grant_id, client_id, event = "grant.activated", "consent granted");
    Ok(grant)
}

/// The grant if it is active, unexpired and this member's for this app; the check
/// Pre Token Generation, `/token` and refresh make before issuing anything.
pub async fn active_for<S>(
    store: &S,
    grant_id: &str,
    client_id: &str,
    patient: &str,
) -> Result<Grant, GrantError>
where
    S: ResourceStore + ?Sized,
{
    let grant = get(store, grant_id).await?.ok_or(GrantError::NotFound)?;
    if !grant.belongs_to(client_id, patient) {
        return Err(GrantError::WrongOwner);
    }
    if grant.status != GrantStatus::Active {
        return Err(GrantError::WrongStatus(grant.status));
    }
    if unix_now() >= grant.expires_at {
        return Err(GrantError::Expired);
    }
    Ok(grant)
}

/// Whether the grant exists, is active and has not expired: the FHIR handlers' per-request
/// check. A malformed or unknown id is simply not active.
pub async fn is_active<S>(store: &S, grant_id: &str) -> Result<bool, GrantError>
where
    S: ResourceStore + ?Sized,
{
    Ok(get(store, grant_id)
        .await?
        .is_some_and(|g| g.is_usable(unix_now())))
}

/// The grant with this id, whatever its status; `None` when unknown or malformed.
pub async fn get<S>(store: &S, grant_id: &str) -> Result<Option<Grant>, GrantError>
where
    S: ResourceStore + ?Sized,
{
    if !is_valid_id(grant_id) {
        return Ok(None);
    }
    match store.get(ResourceType::Consent, grant_id).await? {
        Some(record) if !record.deleted => from_record(&record).map(Some),
        _ => Ok(None),
    }
}

/// Ends a grant: pending or active → inactive. Returns the grant as it now stands, or
/// `None` when there is no such grant. Revoking a grant that is already inactive or
/// rejected changes nothing and is not an error (revocation is idempotent).
///
/// `reason` is a short fixed code for the audit log (`member`, `app`, `refresh-reuse`,
/// `code-replay`, `app-disabled`).
pub async fn revoke<S>(store: &S, grant_id: &str, reason: &str) -> Result<Option<Grant>, GrantError>
where
    S: ResourceStore + ?Sized,
{
    let result = transition(store, grant_id, None, |grant| {
        Ok(match grant.status {
            GrantStatus::Pending | GrantStatus::Active => Some(GrantStatus::Inactive),
            GrantStatus::Rejected | GrantStatus::Inactive => None,
        })
    })
    .await;
    match result {
        Ok(grant) => {
            tracing::info!(target: "audit", grant_id, client_id = %grant.client_id, reason, event = "grant.revoked", "consent revoked");
            Ok(Some(grant))
        }
        Err(GrantError::NotFound) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The member's grants, newest first (every status).
pub async fn list_for_patient<S>(store: &S, patient: &str) -> Result<Vec<Grant>, GrantError>
where
    S: ResourceStore + ?Sized,
{
    if !is_valid_id(patient) {
        return Err(GrantError::Invalid("patient id"));
    }
    let mut query = ListQuery::new(
        Partition::Compartment {
            patient: patient.to_owned(),
            resource_type: ResourceType::Consent,
        },
        LIST_LIMIT,
    );
    query.descending = true;
    let page = store.list(query).await?;
    page.entries
        .iter()
        .filter(|(_, record)| !record.deleted)
        // The Provider Access opt-out and the Payer-to-Payer opt-in live in the same
        // compartment; they are not grants.
        .filter(|(_, record)| !crate::provider_access::is_opt_out_id(&record.id))
        .filter(|(_, record)| !record.id.starts_with(crate::payer_to_payer::ID_PREFIX))
        .map(|(_, record)| from_record(record))
        .collect()
}

/// Reads a grant from its stored `Consent`.
pub fn from_record(record: &ResourceRecord) -> Result<Grant, GrantError> {
    let body: Value =
        serde_json::from_str(&record.body).map_err(|e| GrantError::Corrupt(e.to_string()))?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let corrupt = |what: &str| GrantError::Corrupt(format!("missing {what}"));
    let status = text(body.get("status"))
        .and_then(|s| GrantStatus::from_fhir_code(&s))
        .ok_or_else(|| corrupt("status"))?;
    let patient = text(body.pointer("/patient/reference"))
        .and_then(|r| Reference::parse(&r))
        .filter(|r| r.resource_type == ResourceType::Patient)
        .map(|r| r.id);
    let actor = body.pointer("/provision/actor/0/reference");
    let client_id = text(actor.and_then(|a| a.pointer("/identifier/value")))
        .ok_or_else(|| corrupt("client id"))?;
    let app_name = text(actor.and_then(|a| a.get("display"))).unwrap_or_default();
    let created = text(body.get("dateTime"))
        .and_then(|t| Instant::parse(&t).ok())
        .ok_or_else(|| corrupt("dateTime"))?;
    let expires_at = text(body.pointer("/provision/period/end"))
        .and_then(|t| Instant::parse(&t).ok())
        .map(|i| i.unix_millis() / 1000)
        .ok_or_else(|| corrupt("period end"))?;
    Ok(Grant {
        id: record.id.clone(),
        patient,
        client_id,
        app_name,
        scope: extension(&body, SCOPE_EXTENSION).unwrap_or_default(),
        transaction_id: extension(&body, TRANSACTION_EXTENSION),
        status,
        created,
        expires_at,
        version_id: record.version_id,
    })
}

fn extension(body: &Value, url: &str) -> Option<String> {
    body.get("extension")?
        .as_array()?
        .iter()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(url))?
        .get("valueString")?
        .as_str()
        .map(str::to_owned)
}

async fn create<S>(store: &S, new: &NewGrant, status: GrantStatus) -> Result<Grant, GrantError>
where
    S: ResourceStore + ?Sized,
{
    if new.patient.as_deref().is_some_and(|p| !is_valid_id(p)) {
        return Err(GrantError::Invalid("patient id"));
    }
    if new.client_id.is_empty() {
        return Err(GrantError::Invalid("client id"));
    }
    let id = new_grant_id()?;
    let now = Instant::now();
    let lifetime_ms = i64::try_from(new.lifetime.as_millis()).unwrap_or(i64::MAX / 2);
    let end = Instant::from_unix_millis(now.unix_millis().saturating_add(lifetime_ms))
        .ok_or(GrantError::Invalid("lifetime"))?;
    let resource = consent_resource(&id, new, status, &now, &end);
    let write = ResourceWrite::indexed(
        ResourceType::Consent,
        id.clone(),
        resource,
        WriteCondition::Absent,
    );
    let record = store.put(write).await?;
    let grant = from_record(&record)?;
    let event = match status {
        GrantStatus::Rejected => "grant.denied",
        _ => "grant.pending",
    };
    tracing::info!(target: "audit", grant_id = %grant.id, client_id = %grant.client_id, event, "consent recorded");
    Ok(grant)
}

/// Read-modify-write of a grant's status. `decide` returns the next status, `None` to
/// leave the grant as it is, or an error that aborts without writing. `bind_patient`
/// is written as the grant's member along with the new status.
async fn transition<S, F>(
    store: &S,
    grant_id: &str,
    bind_patient: Option<&str>,
    mut decide: F,
) -> Result<Grant, GrantError>
where
    S: ResourceStore + ?Sized,
    F: FnMut(&Grant) -> Result<Option<GrantStatus>, GrantError>,
{
    if !is_valid_id(grant_id) {
        return Err(GrantError::NotFound);
    }
    let mut refusal: Option<GrantError> = None;
    let mut unchanged: Option<Grant> = None;
    let written = update_with(store, ResourceType::Consent, grant_id, |current| {
        refusal = None;
        unchanged = None;
        let record = match current {
            Some(record) if !record.deleted => record,
            _ => {
                refusal = Some(GrantError::NotFound);
                return None;
            }
        };
        let grant = match from_record(record) {
            Ok(grant) => grant,
            Err(e) => {
                refusal = Some(e);
                return None;
            }
        };
        match decide(&grant) {
            Err(e) => {
                refusal = Some(e);
                None
            }
            Ok(None) => {
                unchanged = Some(grant);
                None
            }
            Ok(Some(next)) => with_status(record, next, bind_patient).map(|resource| {
                ResourceWrite::indexed(
                    ResourceType::Consent,
                    grant_id,
                    resource,
                    WriteCondition::Always,
                )
            }),
        }
    })
    .await?;
    if let Some(error) = refusal {
        return Err(error);
    }
    match (written, unchanged) {
        (Some(record), _) => from_record(&record),
        (None, Some(grant)) => Ok(grant),
        (None, None) => Err(GrantError::Corrupt("unreadable Consent body".into())),
    }
}

/// The stored body with a new status (and `meta` removed: the store sets it), bound to
/// `patient` when given.
fn with_status(
    record: &ResourceRecord,
    status: GrantStatus,
    patient: Option<&str>,
) -> Option<Value> {
    let mut body: Value = serde_json::from_str(&record.body).ok()?;
    let object = body.as_object_mut()?;
    object.remove("meta");
    object.insert("status".into(), json!(status.fhir_code()));
    if let Some(patient) = patient {
        let reference = json!({"reference": format!("Patient/{patient}")});
        object.insert("patient".into(), reference.clone());
        object.insert("performer".into(), json!([reference]));
    }
    Some(body)
}

/// The `Consent` resource for a new grant (base R4: scope, category, patient,
/// dateTime, performer, policyRule, provision).
fn consent_resource(
    id: &str,
    new: &NewGrant,
    status: GrantStatus,
    now: &Instant,
    end: &Instant,
) -> Value {
    let classes: Vec<Value> = new
        .data_types
        .iter()
        .map(|t| json!({"system": "http://hl7.org/fhir/resource-types", "code": t.as_str()}))
        .collect();
    let mut extensions = vec![
        json!({"url": SCOPE_EXTENSION, "valueString": new.scope}),
        json!({"url": ATTESTED_EXTENSION, "valueBoolean": new.app_attested}),
    ];
    if let Some(txn) = &new.transaction_id {
        extensions.push(json!({"url": TRANSACTION_EXTENSION, "valueString": txn}));
    }
    let mut provision = json!({
        "type": if status == GrantStatus::Rejected { "deny" } else { "permit" },
        "period": {"start": now.as_str(), "end": end.as_str()},
        "actor": [{
            "role": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": "IRCP",
                "display": "information recipient",
            }]},
            "reference": {
                "identifier": {"system": CLIENT_ID_SYSTEM, "value": new.client_id},
                "display": new.app_name,
            },
        }],
        "action": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentaction",
            "code": "access",
        }]}],
    });
    if !classes.is_empty() {
        provision["class"] = json!(classes);
    }
    let mut consent = json!({
        "resourceType": "Consent",
        "id": id,
        "extension": extensions,
        "status": status.fhir_code(),
        "scope": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy",
        }]},
        "category": [{"coding": [{
            "system": "http://loinc.org",
            "code": "59284-0",
            "display": "Patient Consent",
        }]}],
        "dateTime": now.as_str(),
        "policyRule": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "OPTIN",
        }]},
        "provision": provision,
    });
    if let Some(patient) = &new.patient {
        let reference = json!({"reference": format!("Patient/{patient}")});
        consent["patient"] = reference.clone();
        consent["performer"] = json!([reference]);
    }
    consent
}

/// 128 random bits as 32 hex digits: a valid FHIR id that cannot be guessed.
fn new_grant_id() -> Result<String, GrantError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| GrantError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests;
