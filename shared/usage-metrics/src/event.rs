//! What counts as a member data access by an app, read from the `audit` line that
//! `fhir-api` writes after every request.

use serde::Deserialize;

/// The client ids of the plan's own surfaces: the member reading their own Consents
/// on `/connected-apps` is not "an app they chose" (must equal
/// `smart_server`'s portal client id; a test there checks it).
pub const NOT_APP_CLIENTS: &[&str] = &["member-portal"];

/// The message of the audit line for a FHIR request (`fhir_api`'s `audit`).
pub const AUDIT_MESSAGE: &str = "fhir access";

/// Event ids longer than this are refused: with the Patient id (≤ 64) and the day
/// they must fit a key-value key (256 bytes).
const MAX_EVENT_ID_BYTES: usize = 128;

/// The fields of one audit line that the counting reads. The names are the tracing
/// fields of `fhir_api`'s audit event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AuditFields {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub patient: String,
    #[serde(default)]
    pub resource_type: String,
    #[serde(default)]
    pub status: u16,
    /// Resources the response carried (1 for a read; a search's entries, included
    /// ones too). Absent on lines from before the field existed: those count nothing.
    #[serde(default)]
    pub count: u64,
}

/// One successful read of a member's data by an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEvent {
    /// The member: the token's Patient id.
    pub patient: String,
    pub client_id: String,
    /// The resource type the request was for (the data category).
    pub resource_type: String,
    /// Resources returned.
    pub count: u64,
    /// When, in unix milliseconds.
    pub at_ms: i64,
    /// Unique per audit line and stable across redeliveries of it (the CloudWatch
    /// Logs event id on AWS): what makes writing an event twice harmless.
    pub event_id: String,
}

impl AccessEvent {
    /// The access an audit line records, or `None` when it records none: not a FHIR
    /// access line, not a success, nothing returned, or no app and member behind it.
    pub fn from_audit(fields: AuditFields, at_ms: i64, event_id: &str) -> Option<AccessEvent> {
        let counts = fields.message == AUDIT_MESSAGE
            && fields.status == 200
            && fields.count > 0
            && fields.patient != "-"
            && fhir::is_valid_id(&fields.patient)
            && !fields.client_id.is_empty()
            && !NOT_APP_CLIENTS.contains(&fields.client_id.as_str())
            && fields.resource_type.parse::<fhir::ResourceType>().is_ok()
            && !event_id.is_empty()
            && event_id.len() <= MAX_EVENT_ID_BYTES
            && !event_id.chars().any(char::is_control);
        counts.then(|| AccessEvent {
            patient: fields.patient,
            client_id: fields.client_id,
            resource_type: fields.resource_type,
            count: fields.count,
            at_ms,
            event_id: event_id.to_owned(),
        })
    }

    /// The access a JSON log line records (tracing-subscriber's JSON format: the
    /// fields under `fields`, or flattened at the top), when its target is `audit`.
    pub fn from_json_line(line: &str, at_ms: i64, event_id: &str) -> Option<AccessEvent> {
        #[derive(Deserialize)]
        struct Line {
            #[serde(default)]
            target: String,
            fields: Option<AuditFields>,
            #[serde(flatten)]
            flat: AuditFields,
        }
        let line: Line = serde_json::from_str(line).ok()?;
        if line.target != "audit" {
            return None;
        }
        AccessEvent::from_audit(line.fields.unwrap_or(line.flat), at_ms, event_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"level":"INFO","fields":{"message":"fhir access","client_id":"app-1","grant_id":"g","patient":"patient-1","interaction":"search","resource_type":"ExplanationOfBenefit","resource_id":"-","status":200,"count":21},"target":"audit"}"#;

    #[test]
    fn a_successful_search_by_an_app_is_an_access() {
        let event = AccessEvent::from_json_line(LINE, 7, "e1").unwrap();
        assert_eq!(event.patient, "patient-1");
        assert_eq!(event.client_id, "app-1");
        assert_eq!(event.resource_type, "ExplanationOfBenefit");
        assert_eq!(
            (event.count, event.at_ms, event.event_id.as_str()),
            (21, 7, "e1")
        );
    }

    #[test]
    fn failures_empty_results_the_portal_and_other_lines_are_not() {
        for (from, to) in [
            (r#""status":200"#, r#""status":404"#),
            (r#""count":21"#, r#""count":0"#),
            (r#""app-1""#, r#""member-portal""#),
            (r#""fhir access""#, r#""token rejected""#),
            (r#""target":"audit""#, r#""target":"fhir_api""#),
            (r#""patient-1""#, r#""-""#),
            (r#""ExplanationOfBenefit""#, r#""Claim""#),
        ] {
            let line = LINE.replace(from, to);
            assert_eq!(AccessEvent::from_json_line(&line, 7, "e1"), None, "{to}");
        }
        assert_eq!(AccessEvent::from_json_line("not json", 7, "e1"), None);
        assert_eq!(AccessEvent::from_json_line(LINE, 7, ""), None);
    }

    #[test]
    fn flattened_json_lines_are_read_too() {
        let flat = r#"{"target":"audit","message":"fhir access","client_id":"app-1","patient":"patient-1","resource_type":"Coverage","status":200,"count":1}"#;
        assert!(AccessEvent::from_json_line(flat, 1, "e").is_some());
    }
}
