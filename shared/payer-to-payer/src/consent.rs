//! Whether this plan can honour the HRex Consent a requesting plan sends with
//! `$member-match` (HRex 1.x `hrex-consent` profile).
//!
//! The Consent is honoured when all of these hold:
//! * `status` = `active`;
//! * exactly one `policy[].uri`, and it is HRex's `#regular` (all data) or
//!   `#sensitive` (only data that is not sensitive, see [`crate::sensitive`]);
//! * `provision.type`, when given, is `permit`;
//! * `provision.period` is given and covers now;
//! * `patient` and every `performer` are the member: a reference to the
//!   `MemberPatient` of the same request (`Patient/{its id}`, or `#{its id}`). The
//!   member gives the consent; a consent performed by anyone else is not theirs.
//!
//! The checks look at the Consent alone, never at stored data, so a refusal says
//! nothing about whether the member exists.

use serde_json::Value;

/// HRex's policy URIs: the member's choice of what may move.
pub const POLICY_BASE: &str =
    "http://hl7.org/fhir/us/davinci-hrex/StructureDefinition-hrex-consent.html";

/// What the member allowed (shared with the export worker, which applies it).
pub use bulk_export::p2p::ConsentPolicy;

/// Why a Consent cannot be honoured (the 422 names it: it reveals nothing about the
/// member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConsentRefusal {
    #[error("the Consent is not active")]
    NotActive,
    #[error("the Consent's policy must be exactly one of HRex #regular or #sensitive")]
    Policy,
    #[error("the Consent's provision must permit")]
    NotPermit,
    #[error("the Consent's provision.period must be given and cover today")]
    Period,
    #[error("the Consent's patient and performer must be the MemberPatient")]
    Performer,
}

/// Checks `consent` for a request whose MemberPatient has id `member_id` (if it has
/// one), at `now_ms` (unix milliseconds).
pub fn check(
    consent: &Value,
    member_id: Option<&str>,
    now_ms: i64,
) -> Result<ConsentPolicy, ConsentRefusal> {
    if consent.get("status").and_then(Value::as_str) != Some("active") {
        return Err(ConsentRefusal::NotActive);
    }
    let policy = policy(consent)?;
    let provision = consent.get("provision");
    if let Some(kind) = provision.and_then(|p| p.get("type"))
        && kind.as_str() != Some("permit")
    {
        return Err(ConsentRefusal::NotPermit);
    }
    let period = provision
        .and_then(|p| p.get("period"))
        .ok_or(ConsentRefusal::Period)?;
    if !covers(period, now_ms) {
        return Err(ConsentRefusal::Period);
    }
    let is_member = |reference: Option<&Value>| {
        let text = reference
            .and_then(|r| r.get("reference"))
            .and_then(Value::as_str);
        match (text, member_id) {
            (Some(text), Some(id)) => text == format!("Patient/{id}") || text == format!("#{id}"),
            _ => false,
        }
    };
    let performers = consent
        .get("performer")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if performers.is_empty()
        || !performers.iter().all(|p| is_member(Some(p)))
        || !is_member(consent.get("patient"))
    {
        return Err(ConsentRefusal::Performer);
    }
    Ok(policy)
}

fn policy(consent: &Value) -> Result<ConsentPolicy, ConsentRefusal> {
    let uris: Vec<&str> = consent
        .get("policy")
        .and_then(Value::as_array)
        .map(|policies| {
            policies
                .iter()
                .filter_map(|p| p.get("uri").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let [uri] = uris.as_slice() else {
        return Err(ConsentRefusal::Policy);
    };
    match uri.strip_prefix(POLICY_BASE) {
        Some("#regular") => Ok(ConsentPolicy::Regular),
        Some("#sensitive") => Ok(ConsentPolicy::Sensitive),
        _ => Err(ConsentRefusal::Policy),
    }
}

/// Whether a FHIR Period covers `now_ms`: a start (if any) at or before now, an end
/// (if any) after now, each read at its own precision (an end date covers that day).
/// An unreadable bound covers nothing.
fn covers(period: &Value, now_ms: i64) -> bool {
    let bound = |name: &str| -> Result<Option<fhir_search::DateRange>, ()> {
        match period.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .and_then(fhir_search::parse_range)
                .map(Some)
                .ok_or(()),
        }
    };
    let (Ok(start), Ok(end)) = (bound("start"), bound("end")) else {
        return false;
    };
    if start.is_none() && end.is_none() {
        return false;
    }
    let started = start.is_none_or(|s| s.start.is_none_or(|ms| ms <= now_ms));
    let not_ended = end.is_none_or(|e| e.end.is_none_or(|ms| now_ms < ms));
    started && not_ended
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// An HRex Consent by member `member_id`, valid for the years given.
    pub(crate) fn hrex_consent(member_id: &str, policy: &str, start: &str, end: &str) -> Value {
        json!({
            "resourceType": "Consent",
            "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6"}]}],
            "patient": {"reference": format!("Patient/{member_id}")},
            "performer": [{"reference": format!("Patient/{member_id}")}],
            "policy": [{"uri": format!("{POLICY_BASE}#{policy}")}],
            "provision": {"type": "permit", "period": {"start": start, "end": end}}
        })
    }

    const NOW: i64 = 1_780_000_000_000; // 2026-05-28

    #[test]
    fn a_current_consent_by_the_member_is_honoured_with_its_policy() {
        let regular = hrex_consent("1", "regular", "2026-01-01", "2027-01-01");
        assert_eq!(check(&regular, Some("1"), NOW), Ok(ConsentPolicy::Regular));
        let sensitive = hrex_consent("1", "sensitive", "2026-01-01", "2026-05-28");
        assert_eq!(
            check(&sensitive, Some("1"), NOW),
            Ok(ConsentPolicy::Sensitive)
        );
    }

    #[test]
    fn an_expired_or_future_consent_is_refused() {
        let expired = hrex_consent("1", "regular", "2024-01-01", "2025-12-31");
        assert_eq!(check(&expired, Some("1"), NOW), Err(ConsentRefusal::Period));
        let future = hrex_consent("1", "regular", "2026-06-01", "2027-01-01");
        assert_eq!(check(&future, Some("1"), NOW), Err(ConsentRefusal::Period));
        let mut no_period = hrex_consent("1", "regular", "2026-01-01", "2027-01-01");
        no_period["provision"]["period"] = json!({});
        assert_eq!(
            check(&no_period, Some("1"), NOW),
            Err(ConsentRefusal::Period)
        );
    }

    #[test]
    fn another_policy_performer_or_status_is_refused() {
        let other = hrex_consent("1", "everything", "2026-01-01", "2027-01-01");
        assert_eq!(check(&other, Some("1"), NOW), Err(ConsentRefusal::Policy));
        let mut two = hrex_consent("1", "regular", "2026-01-01", "2027-01-01");
        two["policy"] = json!([{"uri": format!("{POLICY_BASE}#regular")}, {"uri": format!("{POLICY_BASE}#sensitive")}]);
        assert_eq!(check(&two, Some("1"), NOW), Err(ConsentRefusal::Policy));
        let by_someone_else = hrex_consent("1", "regular", "2026-01-01", "2027-01-01");
        assert_eq!(
            check(&by_someone_else, Some("2"), NOW),
            Err(ConsentRefusal::Performer)
        );
        let mut by_an_org = hrex_consent("1", "regular", "2026-01-01", "2027-01-01");
        by_an_org["performer"] = json!([{"reference": "Organization/new-plan"}]);
        assert_eq!(
            check(&by_an_org, Some("1"), NOW),
            Err(ConsentRefusal::Performer)
        );
        let mut inactive = hrex_consent("1", "regular", "2026-01-01", "2027-01-01");
        inactive["status"] = json!("inactive");
        assert_eq!(
            check(&inactive, Some("1"), NOW),
            Err(ConsentRefusal::NotActive)
        );
        let mut deny = hrex_consent("1", "regular", "2026-01-01", "2027-01-01");
        deny["provision"]["type"] = json!("deny");
        assert_eq!(check(&deny, Some("1"), NOW), Err(ConsentRefusal::NotPermit));
    }
}
