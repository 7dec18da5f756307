//! The roster CSV: one row per practitioner or organization, at a location, in a
//! network, as a credentialing system exports it. Each row becomes Plan-Net
//! resources with ids derived from the row (so re-loading a roster converges):
//!
//! | row | resources |
//! |---|---|
//! | `practitioner` | Practitioner `practitioner-npi-{npi}`, Location `{location_id}`, PractitionerRole `role-{npi}-{location_id}` |
//! | `organization` | Organization `org-npi-{npi}`, Location `{location_id}`, OrganizationAffiliation `affiliation-{npi}-{location_id}` |
//! | any, with `network_name` | Network `{network_id}` (part of the plan's Organization) |
//! | any, with `plan_id` and `plan_name` | InsurancePlan `{plan_id}` with its networks |
//!
//! Rows of the same practitioner (or organization) at the same location in several
//! networks, or with several specialties, merge into one role.

use std::collections::BTreeMap;

use fhir::ResourceType;
use plan_net::checks::{
    NPI_SYSTEM, NUCC_SYSTEM, npi_is_valid, nucc_code_is_valid, us_state_is_valid, zip_is_valid,
};
use plan_net::profiles::{
    NETWORK_REFERENCE_EXTENSION, NETWORK_TYPE_CODE, NEW_PATIENTS_EXTENSION, ORG_TYPE_SYSTEM,
};
use serde_json::{Value, json};

use crate::{LineProblem, PlanIdentity};

/// The columns, in the order the example file has them. Every column must be present
/// (the order may differ); values may be empty where the README says optional.
pub const COLUMNS: &[&str] = &[
    "kind",
    "npi",
    "last_name",
    "first_name",
    "organization_name",
    "taxonomy",
    "taxonomy_display",
    "location_id",
    "location_name",
    "address_line",
    "city",
    "state",
    "zip",
    "phone",
    "latitude",
    "longitude",
    "accepting_new_patients",
    "languages",
    "network_id",
    "network_name",
    "plan_id",
    "plan_name",
];

const ACCEPTING_SYSTEM: &str =
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/AcceptingPatientsCS";
const PLAN_TYPE_SYSTEM: &str =
    "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/InsuranceProductTypeCS";

/// A roster turned into resources (keyed by type and id, in a stable order), or the
/// problems that stop it.
pub struct Roster {
    pub resources: BTreeMap<(ResourceType, String), (usize, Value)>,
}

struct Row<'a> {
    line: usize,
    get: BTreeMap<&'static str, &'a str>,
}

impl Row<'_> {
    fn v(&self, column: &str) -> &str {
        self.get.get(column).map_or("", |v| v.trim())
    }
}

/// Reads the roster's lines (`lines[0]` the header). Problems carry 1-based lines.
pub fn read(lines: &[(usize, &str)], plan: &PlanIdentity) -> Result<Roster, Vec<LineProblem>> {
    let mut problems = Vec::new();
    let Some((header_line, header)) = lines.first() else {
        return Err(vec![LineProblem::new(1, "header", "the file is empty")]);
    };
    let header = match crate::csv::fields(header) {
        Ok(h) => h,
        Err(reason) => return Err(vec![LineProblem::new(*header_line, "header", reason)]),
    };
    let names: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    for column in COLUMNS {
        if !names.iter().any(|n| n == column) {
            problems.push(LineProblem::new(
                *header_line,
                *column,
                "this column is missing from the header",
            ));
        }
    }
    for name in &names {
        if !COLUMNS.contains(&name.as_str()) {
            problems.push(LineProblem::new(
                *header_line,
                name.as_str(),
                "unknown column (see the README for the roster columns)",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut roster = Roster {
        resources: BTreeMap::new(),
    };
    for (line, text) in &lines[1..] {
        if text.trim().is_empty() {
            continue;
        }
        let values = match crate::csv::fields(text) {
            Ok(v) => v,
            Err(reason) => {
                problems.push(LineProblem::new(*line, "row", reason));
                continue;
            }
        };
        if values.len() != names.len() {
            problems.push(LineProblem::new(
                *line,
                "row",
                format!(
                    "has {} fields; the header has {}",
                    values.len(),
                    names.len()
                ),
            ));
            continue;
        }
        let mut get = BTreeMap::new();
        for (name, value) in names.iter().zip(&values) {
            if let Some(column) = COLUMNS.iter().find(|c| **c == name.as_str()) {
                get.insert(*column, value.as_str());
            }
        }
        let row = Row { line: *line, get };
        let before = problems.len();
        check_row(&row, &mut problems);
        if problems.len() == before {
            add_row(&mut roster, &row, plan);
        }
    }
    if problems.is_empty() {
        Ok(roster)
    } else {
        Err(problems)
    }
}

fn check_row(row: &Row, problems: &mut Vec<LineProblem>) {
    let mut problem =
        |field: &str, reason: String| problems.push(LineProblem::new(row.line, field, reason));
    let kind = row.v("kind");
    if !matches!(kind, "practitioner" | "organization") {
        problem(
            "kind",
            format!("'{kind}' must be practitioner or organization"),
        );
    }
    if !npi_is_valid(row.v("npi")) {
        problem(
            "npi",
            format!(
                "'{}' is not 10 digits with a valid check digit",
                row.v("npi")
            ),
        );
    }
    if kind == "practitioner" && row.v("last_name").is_empty() {
        problem("last_name", "is required for a practitioner".into());
    }
    if kind == "organization" && row.v("organization_name").is_empty() {
        problem(
            "organization_name",
            "is required for an organization".into(),
        );
    }
    if !nucc_code_is_valid(row.v("taxonomy")) {
        problem(
            "taxonomy",
            format!(
                "'{}' is not a NUCC taxonomy code (nine digits or capitals and a final X)",
                row.v("taxonomy")
            ),
        );
    }
    for column in ["location_id", "network_id"] {
        if !fhir::is_valid_id(row.v(column)) {
            problem(
                column,
                format!(
                    "'{}' is not a valid id (1-64 letters, digits, '-' or '.')",
                    row.v(column)
                ),
            );
        }
    }
    if !row.v("plan_id").is_empty() && !fhir::is_valid_id(row.v("plan_id")) {
        problem(
            "plan_id",
            format!("'{}' is not a valid id", row.v("plan_id")),
        );
    }
    for column in ["location_name", "address_line", "city"] {
        if row.v(column).is_empty() {
            problem(column, "is required".into());
        }
    }
    if !us_state_is_valid(row.v("state")) {
        problem(
            "state",
            format!("'{}' is not a US state or territory code", row.v("state")),
        );
    }
    if !zip_is_valid(row.v("zip")) {
        problem(
            "zip",
            format!("'{}' is not a ZIP code (12345 or 12345-6789)", row.v("zip")),
        );
    }
    match (row.v("latitude"), row.v("longitude")) {
        ("", "") => {}
        (lat, lon) => match (lat.parse::<f64>(), lon.parse::<f64>()) {
            (Ok(a), Ok(b)) if plan_net::geo::valid(a, b) => {}
            _ => problem(
                "latitude",
                "latitude and longitude must both be given, within ±90 and ±180".into(),
            ),
        },
    }
    if accepting(row.v("accepting_new_patients")).is_err() {
        problem(
            "accepting_new_patients",
            format!(
                "'{}' must be yes, no or empty",
                row.v("accepting_new_patients")
            ),
        );
    }
    for language in languages(row.v("languages")) {
        if !language
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || language.len() > 35
        {
            problem(
                "languages",
                format!("'{language}' is not a language code such as en or es"),
            );
        }
    }
    let id_len = format!("affiliation-{}-{}", row.v("npi"), row.v("location_id")).len();
    if id_len > 64 {
        problem(
            "location_id",
            "is too long to form the role's id (keep it under 40 characters)".into(),
        );
    }
}

fn accepting(text: &str) -> Result<Option<bool>, ()> {
    match text.to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "yes" | "y" | "true" => Ok(Some(true)),
        "no" | "n" | "false" => Ok(Some(false)),
        _ => Err(()),
    }
}

fn languages(text: &str) -> impl Iterator<Item = &str> {
    text.split([';', '|'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
}

fn add_row(roster: &mut Roster, row: &Row, plan: &PlanIdentity) {
    let npi = row.v("npi");
    let location_id = row.v("location_id");
    let network = format!("Organization/{}", row.v("network_id"));
    let specialty = json!({"coding": [{
        "system": NUCC_SYSTEM,
        "code": row.v("taxonomy"),
        "display": (!row.v("taxonomy_display").is_empty()).then(|| row.v("taxonomy_display")),
    }]});
    let specialty = strip_nulls(specialty);
    let phone = (!row.v("phone").is_empty())
        .then(|| json!([{"system": "phone", "value": row.v("phone"), "use": "work"}]));
    let put = |roster: &mut Roster, t: ResourceType, id: String, value: Value| {
        roster.resources.entry((t, id)).or_insert((row.line, value));
    };

    let mut location = json!({
        "resourceType": "Location", "id": location_id, "status": "active",
        "name": row.v("location_name"),
        "address": {"line": [row.v("address_line")], "city": row.v("city"), "state": row.v("state"), "postalCode": row.v("zip"), "country": "US"},
    });
    if let Some(p) = &phone {
        location["telecom"] = p.clone();
    }
    if let (Ok(lat), Ok(lon)) = (
        row.v("latitude").parse::<f64>(),
        row.v("longitude").parse::<f64>(),
    ) {
        location["position"] = json!({"latitude": lat, "longitude": lon});
    }
    let languages: Vec<Value> = languages(row.v("languages"))
        .map(|l| json!({"coding": [{"system": "urn:ietf:bcp:47", "code": l}]}))
        .collect();

    let (role_type, role_id) = if row.v("kind") == "practitioner" {
        let id = format!("practitioner-npi-{npi}");
        let mut practitioner = json!({
            "resourceType": "Practitioner", "id": id, "active": true,
            "identifier": [{"system": NPI_SYSTEM, "value": npi}],
            "name": [{"family": row.v("last_name"), "given": [row.v("first_name")],
                      "text": format!("{} {}", row.v("first_name"), row.v("last_name")).trim().to_owned()}],
        });
        if !languages.is_empty() {
            practitioner["communication"] = Value::from(languages.clone());
        }
        put(roster, ResourceType::Practitioner, id.clone(), practitioner);
        let role_id = format!("role-{npi}-{location_id}");
        let role = json!({
            "resourceType": "PractitionerRole", "id": role_id, "active": true,
            "practitioner": {"reference": format!("Practitioner/{id}")},
            "location": [{"reference": format!("Location/{location_id}")}],
        });
        put(
            roster,
            ResourceType::PractitionerRole,
            role_id.clone(),
            role,
        );
        (ResourceType::PractitionerRole, role_id)
    } else {
        let id = format!("org-npi-{npi}");
        let organization = json!({
            "resourceType": "Organization", "id": id, "active": true,
            "identifier": [{"system": NPI_SYSTEM, "value": npi}],
            "type": [{"coding": [{"system": ORG_TYPE_SYSTEM, "code": "prvgrp", "display": "Provider Group"}]}],
            "name": row.v("organization_name"),
        });
        put(roster, ResourceType::Organization, id.clone(), organization);
        location["managingOrganization"] = json!({"reference": format!("Organization/{id}")});
        let role_id = format!("affiliation-{npi}-{location_id}");
        let affiliation = json!({
            "resourceType": "OrganizationAffiliation", "id": role_id, "active": true,
            "organization": {"reference": network},
            "participatingOrganization": {"reference": format!("Organization/{id}")},
            "location": [{"reference": format!("Location/{location_id}")}],
        });
        put(
            roster,
            ResourceType::OrganizationAffiliation,
            role_id.clone(),
            affiliation,
        );
        (ResourceType::OrganizationAffiliation, role_id)
    };
    put(
        roster,
        ResourceType::Location,
        location_id.to_owned(),
        location,
    );

    // Merge this row's network, specialty, phone and new-patient answer into the role.
    if let Some((_, role)) = roster.resources.get_mut(&(role_type, role_id)) {
        push_unique(role, "specialty", specialty);
        if let Some(p) = &phone {
            role["telecom"] = p.clone();
        }
        if role_type == ResourceType::PractitionerRole {
            push_unique(
                role,
                "extension",
                json!({"url": NETWORK_REFERENCE_EXTENSION, "valueReference": {"reference": network}}),
            );
            if let Ok(Some(accepts)) = accepting(row.v("accepting_new_patients")) {
                push_unique(
                    role,
                    "extension",
                    json!({"url": NEW_PATIENTS_EXTENSION, "extension": [
                        {"url": "acceptingPatients", "valueCodeableConcept": {"coding": [{"system": ACCEPTING_SYSTEM, "code": if accepts {"newpt"} else {"nopt"}}]}},
                        {"url": "fromNetwork", "valueReference": {"reference": network}},
                    ]}),
                );
            }
        } else {
            push_unique(role, "network", json!({"reference": network}));
        }
    }

    if !row.v("network_name").is_empty() {
        let network = json!({
            "resourceType": "Organization", "id": row.v("network_id"), "active": true,
            "type": [{"coding": [{"system": ORG_TYPE_SYSTEM, "code": NETWORK_TYPE_CODE, "display": "Network"}]}],
            "name": row.v("network_name"),
            "partOf": {"reference": format!("Organization/{}", plan.organization_id)},
        });
        put(
            roster,
            ResourceType::Organization,
            row.v("network_id").to_owned(),
            network,
        );
        put(
            roster,
            ResourceType::Organization,
            plan.organization_id.clone(),
            plan.organization(),
        );
    }
    if !row.v("plan_id").is_empty() && !row.v("plan_name").is_empty() {
        let owner = format!("Organization/{}", plan.organization_id);
        let insurance = json!({
            "resourceType": "InsurancePlan", "id": row.v("plan_id"), "status": "active",
            "name": row.v("plan_name"),
            "type": [{"coding": [{"system": PLAN_TYPE_SYSTEM, "code": "commmed", "display": "Commercial Medical"}]}],
            "ownedBy": {"reference": owner}, "administeredBy": {"reference": owner},
        });
        put(
            roster,
            ResourceType::InsurancePlan,
            row.v("plan_id").to_owned(),
            insurance,
        );
        put(
            roster,
            ResourceType::Organization,
            plan.organization_id.clone(),
            plan.organization(),
        );
        if let Some((_, p)) = roster
            .resources
            .get_mut(&(ResourceType::InsurancePlan, row.v("plan_id").to_owned()))
        {
            push_unique(
                p,
                "network",
                json!({"reference": format!("Organization/{}", row.v("network_id"))}),
            );
        }
    }
}

fn push_unique(resource: &mut Value, key: &str, item: Value) {
    let Some(object) = resource.as_object_mut() else {
        return;
    };
    let list = object
        .entry(key)
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = list.as_array_mut()
        && !list.contains(&item)
    {
        list.push(item);
    }
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}
