//! Loading attribution files: CSV or NDJSON `Group`, all or nothing, idempotent.
//!
//! Two steps, kept apart so the loader can move onto the shared file loader the
//! Provider Directory brings (parse to records, then apply) without changing either:
//!
//! 1. [`parse`] reads the whole file into one list per provider and collects *every*
//!    problem with its line number. Any problem rejects the file: nothing is written.
//! 2. [`apply`] replaces each provider's Group ([`crate::group::replace`]) and sets the
//!    opt-out column's values. Reloading the same file changes nothing (the Group's
//!    digest matches, the opt-out is already set), so a load that crashed half-way is
//!    finished by loading the file again.
//!
//! CSV: a header row naming the columns, in any order: `provider_npi` and/or
//! `provider_tin` (each row fills at least one), `member_id` (the member's Patient id),
//! `start`, `end` (dates `YYYY-MM-DD`, either may be empty), and optionally `opt_out`
//! (`Y`/`N`, `true`/`false`, `1`/`0`, or empty for "leave as is"). No quoted fields:
//! none of these values needs a comma.
//!
//! NDJSON: one `Group` per line, naming the provider in `identifier` (NPI system
//! `http://hl7.org/fhir/sid/us-npi`, or a TIN) and its members as
//! `member[].entity.reference` = `Patient/{id}` with an optional `member[].period`.

use std::collections::BTreeMap;

use fhir_store::{KeyValueStore, ResourceStore};
use member_consent::provider_access::{ChangedBy, set_opt_out};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::AttributionError;
use crate::group::{self, Member, NPI_SYSTEM, ProviderId, Replaced, TIN_SYSTEMS_ACCEPTED};

/// Problems reported per file; beyond this the report says how many more there were.
const MAX_REPORTED_PROBLEMS: usize = 100;

/// A file's format, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn from_name(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(Format::Csv)
        } else if lower.ends_with(".ndjson") || lower.ends_with(".jsonl") {
            Some(Format::Ndjson)
        } else {
            None
        }
    }
}

/// One provider's list as a file gives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProviderList {
    pub name: Option<String>,
    pub members: Vec<Member>,
}

/// What a parsed file holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub lists: BTreeMap<ProviderId, ProviderList>,
    /// Patient id → opted out (`true`) or in (`false`), from the CSV column.
    pub opt_out: BTreeMap<String, bool>,
}

/// A problem at a line (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// The JSON report of one load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    pub file: String,
    pub sha256: String,
    /// `accepted` (every Group replaced or already current) or `rejected` (nothing written).
    pub status: &'static str,
    pub groups: Vec<Replaced>,
    pub opted_out: usize,
    pub opted_in: usize,
    pub problems: Vec<Problem>,
    /// Problems beyond those listed.
    pub more_problems: usize,
}

impl LoadReport {
    /// Rejected until a load accepts it.
    fn rejected(name: &str, sha256: String) -> LoadReport {
        LoadReport {
            file: name.to_owned(),
            sha256,
            status: "rejected",
            groups: Vec::new(),
            opted_out: 0,
            opted_in: 0,
            problems: Vec::new(),
            more_problems: 0,
        }
    }
}

/// The report of a file refused for one reason before it was read (too large).
pub fn rejected_report(name: &str, problem: Problem) -> LoadReport {
    let mut report = LoadReport::rejected(name, String::new());
    report.problems.push(problem);
    report
}

/// Parses, then applies when the file is clean. `Err` only for store failures (the
/// caller retries the file); bad content is a rejected report.
pub async fn load_file<S>(
    store: &S,
    name: &str,
    bytes: &[u8],
) -> Result<LoadReport, AttributionError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
{
    let sha256: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut report = LoadReport::rejected(name, sha256);
    let parsed = match Format::from_name(name) {
        None => Err(vec![Problem {
            line: 0,
            message: "the file name must end in .csv or .ndjson".into(),
        }]),
        Some(format) => parse(format, bytes),
    };
    match parsed {
        Err(mut problems) => {
            report.more_problems = problems.len().saturating_sub(MAX_REPORTED_PROBLEMS);
            problems.truncate(MAX_REPORTED_PROBLEMS);
            report.problems = problems;
            tracing::info!(target: "audit", sha256 = %report.sha256, problems = report.problems.len() + report.more_problems, event = "attribution.rejected", "attribution file rejected");
        }
        Ok(parsed) => {
            apply(store, &parsed, &mut report).await?;
            report.status = "accepted";
        }
    }
    Ok(report)
}

/// Writes a clean file's lists and opt-out values.
pub async fn apply<S>(
    store: &S,
    parsed: &Parsed,
    report: &mut LoadReport,
) -> Result<(), AttributionError>
where
    S: ResourceStore + KeyValueStore + ?Sized,
{
    for (patient, opted_out) in &parsed.opt_out {
        if set_opt_out(store, patient, *opted_out, ChangedBy::Plan).await? {
            if *opted_out {
                report.opted_out += 1;
            } else {
                report.opted_in += 1;
            }
        }
    }
    for (provider, list) in &parsed.lists {
        let replaced =
            group::replace(store, provider, list.name.as_deref(), list.members.clone()).await?;
        report.groups.push(replaced);
    }
    Ok(())
}

/// Reads a whole file; every problem found, or the lists.
pub fn parse(format: Format, bytes: &[u8]) -> Result<Parsed, Vec<Problem>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        vec![Problem {
            line: 0,
            message: format!("the file is not UTF-8 (byte {})", e.valid_up_to()),
        }]
    })?;
    let mut problems = Vec::new();
    let mut parsed = Parsed::default();
    match format {
        Format::Csv => parse_csv(text, &mut parsed, &mut problems),
        Format::Ndjson => parse_ndjson(text, &mut parsed, &mut problems),
    }
    check_providers(&parsed, &mut problems);
    if parsed.lists.is_empty() && problems.is_empty() {
        problems.push(Problem {
            line: 0,
            message: "the file names no provider".into(),
        });
    }
    if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(problems)
    }
}

fn problem(problems: &mut Vec<Problem>, line: usize, message: impl Into<String>) {
    problems.push(Problem {
        line,
        message: message.into(),
    });
}

fn parse_csv(text: &str, parsed: &mut Parsed, problems: &mut Vec<Problem>) {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return;
    };
    let columns: Vec<String> = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let at = |name: &str| columns.iter().position(|c| c == name);
    let (npi_at, tin_at, member_at) = (at("provider_npi"), at("provider_tin"), at("member_id"));
    let (start_at, end_at, opt_at) = (at("start"), at("end"), at("opt_out"));
    if member_at.is_none() || (npi_at.is_none() && tin_at.is_none()) {
        problem(
            problems,
            1,
            "the header must name member_id and provider_npi or provider_tin",
        );
        return;
    }
    for (index, line) in lines {
        let number = index + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != columns.len() {
            problem(
                problems,
                number,
                format!("{} fields, the header has {}", fields.len(), columns.len()),
            );
            continue;
        }
        let field = |i: Option<usize>| i.map(|i| fields[i]).filter(|v| !v.is_empty());
        let provider = ProviderId {
            npi: field(npi_at).map(str::to_owned),
            tin: field(tin_at).map(str::to_owned),
        };
        let Some(member) = checked_member(
            field(member_at),
            field(start_at),
            field(end_at),
            number,
            problems,
        ) else {
            continue;
        };
        if !check_provider(&provider, number, problems) {
            continue;
        }
        match field(opt_at).map(str::to_ascii_lowercase).as_deref() {
            None => {}
            Some("y" | "yes" | "true" | "1") => {
                parsed.opt_out.insert(member.patient.clone(), true);
            }
            Some("n" | "no" | "false" | "0") => {
                parsed.opt_out.insert(member.patient.clone(), false);
            }
            Some(_) => {
                problem(problems, number, "opt_out must be Y, N or empty");
                continue;
            }
        }
        parsed
            .lists
            .entry(provider)
            .or_default()
            .members
            .push(member);
    }
}

fn parse_ndjson(text: &str, parsed: &mut Parsed, problems: &mut Vec<Problem>) {
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let group: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                problem(problems, number, format!("not JSON: {e}"));
                continue;
            }
        };
        if group.get("resourceType").and_then(Value::as_str) != Some("Group") {
            problem(problems, number, "not a Group resource");
            continue;
        }
        let mut provider = ProviderId::default();
        for identifier in group
            .get("identifier")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let system = identifier
                .get("system")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let value = identifier
                .get("value")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if system == NPI_SYSTEM {
                provider.npi = value;
            } else if TIN_SYSTEMS_ACCEPTED.contains(&system) {
                provider.tin = value;
            }
        }
        if !check_provider(&provider, number, problems) {
            continue;
        }
        let mut members = Vec::new();
        for entry in group
            .get("member")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if entry.get("inactive").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let reference = entry.pointer("/entity/reference").and_then(Value::as_str);
            let Some(patient) = reference.and_then(|r| r.strip_prefix("Patient/")) else {
                problem(
                    problems,
                    number,
                    "member[].entity must reference Patient/{id}",
                );
                continue;
            };
            let date = |p: &str| {
                entry
                    .pointer(p)
                    .and_then(Value::as_str)
                    .map(|d| d.get(..10).unwrap_or(d))
            };
            if let Some(member) = checked_member(
                Some(patient),
                date("/period/start"),
                date("/period/end"),
                number,
                problems,
            ) {
                members.push(member);
            }
        }
        if parsed.lists.contains_key(&provider) {
            problem(problems, number, "a second Group for the same provider");
            continue;
        }
        let name = group.get("name").and_then(Value::as_str).map(str::to_owned);
        parsed
            .lists
            .insert(provider, ProviderList { name, members });
    }
}

fn checked_member(
    patient: Option<&str>,
    start: Option<&str>,
    end: Option<&str>,
    line: usize,
    problems: &mut Vec<Problem>,
) -> Option<Member> {
    let Some(patient) = patient.filter(|p| fhir::is_valid_id(p)) else {
        problem(problems, line, "member_id must be a Patient id");
        return None;
    };
    for date in [start, end].into_iter().flatten() {
        if !is_date(date) {
            problem(problems, line, "dates must be YYYY-MM-DD");
            return None;
        }
    }
    if let (Some(s), Some(e)) = (start, end)
        && e < s
    {
        problem(problems, line, "the period ends before it starts");
        return None;
    }
    Some(Member {
        patient: patient.to_owned(),
        start: start.map(str::to_owned),
        end: end.map(str::to_owned),
    })
}

fn is_date(text: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format).is_ok()
}

fn check_provider(provider: &ProviderId, line: usize, problems: &mut Vec<Problem>) -> bool {
    if provider.npi.is_none() && provider.tin.is_none() {
        problem(problems, line, "no provider NPI or TIN");
        return false;
    }
    if provider
        .npi
        .as_deref()
        .is_some_and(|n| !fhir::is_valid_npi(n))
    {
        problem(problems, line, "the provider NPI is not a valid NPI");
        return false;
    }
    if provider
        .tin
        .as_deref()
        .is_some_and(|t| !fhir::is_valid_tin(t))
    {
        problem(problems, line, "the provider TIN is not 9 digits");
        return false;
    }
    true
}

/// One NPI must not appear with two TINs (or with and without one): the Group id comes
/// from the NPI, so two such lists would replace each other.
fn check_providers(parsed: &Parsed, problems: &mut Vec<Problem>) {
    let mut seen: BTreeMap<String, &ProviderId> = BTreeMap::new();
    for provider in parsed.lists.keys() {
        if let Some(id) = provider.group_id()
            && let Some(other) = seen.insert(id.clone(), provider)
            && other != provider
        {
            problem(
                problems,
                0,
                format!("{id} appears with different identifiers"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_csv_gives_one_list_per_provider_and_the_opt_out_column() {
        let csv = "provider_npi,provider_tin,member_id,start,end,opt_out\n\
                   1234567893,,p1,2024-01-01,,\n\
                   1234567893,,p2,2024-01-01,2024-12-31,Y\n\
                   ,123456789,p1,,,N\n";
        let parsed = parse(Format::Csv, csv.as_bytes()).unwrap();
        assert_eq!(parsed.lists.len(), 2);
        assert_eq!(parsed.opt_out.get("p2"), Some(&true));
        assert_eq!(parsed.opt_out.get("p1"), Some(&false));
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let csv = "provider_npi,member_id,start,end\n\
                   1234567890,p1,2024-01-01,\n\
                   1234567893,,2024-01-01,\n\
                   1234567893,p3,2024-13-01,\n\
                   1234567893,p4,2024-02-01,2024-01-01\n\
                   1234567893,p5\n";
        let problems = parse(Format::Csv, csv.as_bytes()).unwrap_err();
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
    }

    #[test]
    fn an_ndjson_group_names_its_provider_and_members() {
        let line = r#"{"resourceType":"Group","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}],"member":[{"entity":{"reference":"Patient/p1"},"period":{"start":"2024-01-01T00:00:00Z"}},{"entity":{"reference":"Practitioner/x"}}]}"#;
        let problems = parse(Format::Ndjson, line.as_bytes()).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        let good = line.replace(r#",{"entity":{"reference":"Practitioner/x"}}"#, "");
        let parsed = parse(Format::Ndjson, good.as_bytes()).unwrap();
        let list = parsed.lists.values().next().unwrap();
        assert_eq!(list.members[0].start.as_deref(), Some("2024-01-01"));
    }
}
