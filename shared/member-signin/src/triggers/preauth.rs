//! Pre Authentication: refuses, before any challenge, a member the plan has disabled
//! (coverage ended beyond the access window, or an operator hold; see `access`).
//!
//! Unknown users pass: they get the same questions as members and fail at the end, as
//! always, so this trigger tells nothing about who exists.

use fhir_store::KeyValueStore;
use serde_json::{Value, json};

use super::TriggerError;
use super::event::Event;
use crate::access::{Refusal, coverage_lapsed, is_held};
use crate::ports::{MemberDirectory, TriggerPorts};

/// The `response` object (empty), or [`TriggerError::Refused`].
pub async fn pre_authentication<D, K, S, G>(
    event: &Event,
    ports: &TriggerPorts<D, K, S, G>,
) -> Result<Value, TriggerError>
where
    D: MemberDirectory,
    K: KeyValueStore,
{
    if event.request.user_not_found {
        return Ok(json!({}));
    }
    let patient = event.patient_id().ok_or(TriggerError::Refused)?;
    if let Some(refusal) = refusal(ports, patient).await? {
        // Why, for the operator; the member is told only that sign-in failed.
        tracing::info!(reason = ?refusal, "sign-in refused: the plan has disabled this member");
        return Err(TriggerError::Refused);
    }
    Ok(json!({}))
}

async fn refusal<D, K, S, G>(
    ports: &TriggerPorts<D, K, S, G>,
    patient: &str,
) -> Result<Option<Refusal>, TriggerError>
where
    D: MemberDirectory,
    K: KeyValueStore,
{
    if is_held(ports.kv.as_ref(), patient)
        .await
        .map_err(TriggerError::Port)?
    {
        return Ok(Some(Refusal::OperatorHold));
    }
    let Some(window) = ports.config.access_window_days else {
        return Ok(None);
    };
    let end = ports
        .members
        .coverage_end(patient)
        .await
        .map_err(TriggerError::Port)?;
    let lapsed = coverage_lapsed(end.as_deref(), fhir::clock::unix_now(), Some(window));
    Ok(lapsed.then_some(Refusal::CoverageEnded))
}
