//! The audit trail's six-year archive (HIPAA keeps documentation six years, 45 CFR
//! 164.316(b)(2)): who read which member's data, and when.
//!
//! CloudWatch keeps function logs for weeks. A subscription filter on every
//! function's log group sends its `audit` lines to a small function, which writes
//! them here-shaped to an S3 bucket under Object Lock. This crate decides, without
//! any AWS:
//!
//! * **what is kept** ([`archived_line`]): only the fields in [`ARCHIVED_FIELDS`],
//!   and only as short strings, numbers or booleans. Audit lines carry ids, codes
//!   and counts by design; the allowlist makes that a property of the archive too,
//!   so a field someone adds to a log line later (a name, a search string) is
//!   dropped rather than kept for six years. The member's id (`patient`) is the only
//!   member data in the archive.
//! * **where it goes** ([`object_key`]): `audit/year=YYYY/month=MM/day=DD/…`, Hive
//!   partitions that Athena prunes by date (README, "Audit archive").
//! * **how** ([`gzip_ndjson`]): one gzipped JSON line per audit line.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The log-line fields the archive keeps: identifiers of apps, grants, tokens, jobs
/// and resources, the member id, what was done and how it ended.
pub const ARCHIVED_FIELDS: &[&str] = &[
    "event",
    "message",
    "client_id",
    "grant_id",
    "token_id",
    "consent_id",
    "patient",
    "interaction",
    "resource_type",
    "resource_id",
    "method",
    "route",
    "status",
    "count",
    "job_id",
    "group_id",
    "file",
    "files",
    "slices",
    "members",
    "version",
    "confidential",
    "active",
    "changed_by",
    "kind",
    "reason",
    "error",
];

/// Longer strings are not ids or codes: they are cut, so free text cannot carry much.
pub const MAX_VALUE_CHARS: usize = 200;

/// One archived audit line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchivedLine {
    /// When CloudWatch received the line, RFC 3339 UTC.
    pub time: String,
    /// The log group: which function wrote it.
    pub log_group: String,
    pub level: String,
    /// The allowlisted fields.
    pub fields: BTreeMap<String, Value>,
}

/// The archive form of a log line, or `None` when it is not an `audit` line (or not
/// JSON: the function's other output).
pub fn archived_line(message: &str, timestamp_ms: i64, log_group: &str) -> Option<ArchivedLine> {
    let line: Value = serde_json::from_str(message).ok()?;
    if line.get("target").and_then(Value::as_str) != Some("audit") {
        return None;
    }
    let fields = line
        .get("fields")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(name, _)| ARCHIVED_FIELDS.contains(&name.as_str()))
        .filter_map(|(name, value)| Some((name.clone(), kept_value(value)?)))
        .collect();
    Some(ArchivedLine {
        time: rfc3339(timestamp_ms)?,
        log_group: log_group.to_owned(),
        level: line
            .get("level")
            .and_then(Value::as_str)
            .unwrap_or("INFO")
            .to_owned(),
        fields,
    })
}

/// Scalars only; strings cut to [`MAX_VALUE_CHARS`].
fn kept_value(value: &Value) -> Option<Value> {
    match value {
        Value::String(text) => Some(Value::from(
            text.chars().take(MAX_VALUE_CHARS).collect::<String>(),
        )),
        Value::Number(_) | Value::Bool(_) => Some(value.clone()),
        _ => None,
    }
}

fn rfc3339(timestamp_ms: i64) -> Option<String> {
    let at =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp_ms) * 1_000_000).ok()?;
    at.format(&Rfc3339).ok()
}

/// The object for one delivery: partitioned by the UTC day of its first line, named
/// by the writing function and the delivery's first event id. Event ids are unique in
/// CloudWatch, so a redelivered batch (a Lambda retry) writes the same key again: the
/// bucket keeps both versions under Object Lock, and Athena reads only the current
/// one, so no line is counted twice.
pub fn object_key(
    log_group: &str,
    first_timestamp_ms: i64,
    first_event_id: &str,
) -> Option<String> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(first_timestamp_ms) * 1_000_000)
        .ok()?;
    let function: String = log_group
        .rsplit('/')
        .next()
        .unwrap_or(log_group)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    let event: String = first_event_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    Some(format!(
        "audit/year={:04}/month={:02}/day={:02}/{function}-{event}.ndjson.gz",
        at.year(),
        u8::from(at.month()),
        at.day()
    ))
}

/// The lines as gzipped NDJSON.
pub fn gzip_ndjson(lines: &[ArchivedLine]) -> std::io::Result<Vec<u8>> {
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for line in lines {
        serde_json::to_writer(&mut gzip, line)?;
        gzip.write_all(b"\n")?;
    }
    gzip.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GROUP: &str = "/aws/lambda/stack-ExplanationOfBenefitFunction-X";

    fn line(fields: Value) -> String {
        json!({"level": "INFO", "target": "audit", "fields": fields}).to_string()
    }

    #[test]
    fn a_fhir_access_keeps_who_read_what_and_the_member_id() {
        let message = line(json!({
            "message": "fhir access", "client_id": "app-1", "grant_id": "g-1",
            "patient": "pat-123", "interaction": "search",
            "resource_type": "ExplanationOfBenefit", "resource_id": "-",
            "status": 200, "count": 4
        }));
        let archived = archived_line(&message, 1_796_601_600_000, GROUP);
        let archived = archived.unwrap_or_else(|| panic!("an audit line is archived"));
        assert_eq!(archived.time, "2026-12-07T00:00:00Z");
        assert_eq!(archived.fields["patient"], "pat-123");
        assert_eq!(archived.fields["count"], 4);
        assert_eq!(archived.fields.len(), 9);
    }

    #[test]
    fn fields_outside_the_allowlist_are_never_archived() {
        // What a careless log line might add: demographics, a search string, a token.
        let message = line(json!({
            "message": "fhir access", "patient": "pat-123",
            "name": "Jane Doe", "birthDate": "1970-01-01", "address": "1 Main St",
            "query": "name=Jane&birthdate=1970-01-01", "access_token": "eyJ...",
            "email": "jane@example.org"
        }));
        let archived = archived_line(&message, 1_796_601_600_000, GROUP);
        let archived = archived.unwrap_or_else(|| panic!("an audit line is archived"));
        let kept: Vec<&str> = archived.fields.keys().map(String::as_str).collect();
        assert_eq!(kept, ["message", "patient"]);
        let text = serde_json::to_string(&archived).unwrap_or_default();
        for secret in ["Jane", "1970", "Main", "eyJ", "example.org"] {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
    }

    #[test]
    fn nested_values_are_dropped_and_long_strings_cut() {
        let message = line(json!({
            "reason": "x".repeat(1000),
            "error": {"nested": "object"},
            "files": [1, 2]
        }));
        let archived = archived_line(&message, 0, GROUP);
        let archived = archived.unwrap_or_else(|| panic!("an audit line is archived"));
        assert_eq!(
            archived.fields["reason"].as_str().map(str::len),
            Some(MAX_VALUE_CHARS)
        );
        assert!(!archived.fields.contains_key("error"));
        assert!(!archived.fields.contains_key("files"));
    }

    #[test]
    fn only_audit_lines_are_archived() {
        let other =
            json!({"level": "INFO", "target": "edi_ingest", "fields": {"message": "verdicts"}});
        assert_eq!(archived_line(&other.to_string(), 0, GROUP), None);
        assert_eq!(
            archived_line("START RequestId: 1 Version: $LATEST", 0, GROUP),
            None
        );
    }

    #[test]
    fn objects_are_partitioned_by_utc_day_for_athena() {
        let key = object_key(GROUP, 1_796_601_600_000, "3712345678901234567890");
        assert_eq!(
            key.as_deref(),
            Some(
                "audit/year=2026/month=12/day=07/stack-ExplanationOfBenefitFunction-X-3712345678901234567890.ndjson.gz"
            )
        );
    }

    #[test]
    fn the_object_is_one_gzipped_json_line_per_audit_line() {
        use std::io::Read;
        let lines: Vec<ArchivedLine> = (0..3)
            .filter_map(|i| archived_line(&line(json!({"count": i})), 0, GROUP))
            .collect();
        let packed = gzip_ndjson(&lines).unwrap_or_default();
        let mut text = String::new();
        let read = flate2::read::GzDecoder::new(packed.as_slice()).read_to_string(&mut text);
        assert!(read.is_ok());
        assert_eq!(text.lines().count(), 3);
        for (i, l) in text.lines().enumerate() {
            let v: Value = serde_json::from_str(l).unwrap_or_default();
            assert_eq!(v["fields"]["count"], i);
        }
    }
}
