//! The kick-off parameters (Bulk Data 2.0 §"Query Parameters") this server honours.
//!
//! `_type`, `_since`, `_outputFormat` and `_typeFilter`; anything else is refused with
//! 400, as the IG asks of a server that does not support a parameter (instead of
//! silently exporting more than the client meant).

use fhir::{Instant, ResourceType};
use fhir_search::{Handling, parse_search};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The types a Provider Access export contains, in the order they are written.
pub const EXPORT_TYPES: [ResourceType; 3] = [
    ResourceType::Patient,
    ResourceType::Coverage,
    ResourceType::ExplanationOfBenefit,
];

/// Output formats accepted for NDJSON (the IG's name and its two aliases).
pub const OUTPUT_FORMATS: &[&str] = &["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// A validated export request, stored with the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRequest {
    pub types: Vec<ResourceType>,
    /// Only resources last updated after this instant.
    pub since: Option<String>,
    /// `(type, query)` pairs from `_typeFilter`; several for one type are ORed.
    pub type_filters: Vec<(ResourceType, String)>,
    /// Payer-to-Payer: a PDex Provenance for each resource sent, in its own files.
    #[serde(default)]
    pub provenance: bool,
}

impl ExportRequest {
    /// The filters for one type, parsed (they were checked at kick-off).
    pub fn filters_for(&self, resource_type: ResourceType) -> Vec<fhir_search::SearchRequest> {
        self.type_filters
            .iter()
            .filter(|(t, _)| *t == resource_type)
            .filter_map(|(t, q)| parse_filter(*t, q).ok())
            .collect()
    }

    pub fn since_instant(&self) -> Option<Instant> {
        self.since.as_deref().and_then(|s| Instant::parse(s).ok())
    }
}

/// Parameters from a GET query (percent-decoded pairs).
pub fn from_query(pairs: &[(String, String)]) -> Result<ExportRequest, String> {
    let mut types: Option<Vec<ResourceType>> = None;
    let mut since = None;
    let mut filters = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "_type" => {
                let list = types.get_or_insert_with(Vec::new);
                for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    list.push(export_type(t)?);
                }
            }
            "_since" => {
                if since.is_some() {
                    return Err("_since may be given once".into());
                }
                let instant = Instant::parse(value)
                    .map_err(|_| format!("_since must be a FHIR instant, not {value:?}"))?;
                since = Some(instant.to_string());
            }
            "_outputFormat" => {
                if !OUTPUT_FORMATS.contains(&value.as_str()) {
                    return Err(format!(
                        "_outputFormat {value:?} is not supported; use application/fhir+ndjson"
                    ));
                }
            }
            "_typeFilter" => {
                for filter in value.split(',').filter(|f| !f.is_empty()) {
                    filters.push(type_filter(filter)?);
                }
            }
            other => return Err(format!("the parameter {other} is not supported")),
        }
    }
    let mut types = types.unwrap_or_else(|| EXPORT_TYPES.to_vec());
    types.sort_by_key(|t| EXPORT_TYPES.iter().position(|e| e == t));
    types.dedup();
    if let Some((t, _)) = filters.iter().find(|(t, _)| !types.contains(t)) {
        return Err(format!("_typeFilter names {t}, which _type leaves out"));
    }
    Ok(ExportRequest {
        types,
        since,
        type_filters: filters,
        provenance: false,
    })
}

/// Parameters from a POST `Parameters` body (`valueString`, `valueInstant`, …).
pub fn from_parameters(body: &Value) -> Result<ExportRequest, String> {
    from_query(&parameter_pairs(body)?)
}

/// A POST `Parameters` body as the `(name, value)` pairs of a query.
pub fn parameter_pairs(body: &Value) -> Result<Vec<(String, String)>, String> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err("the body must be a Parameters resource".into());
    }
    let mut pairs = Vec::new();
    for parameter in body
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let value = ["valueString", "valueInstant", "valueCode", "valueDateTime"]
            .iter()
            .find_map(|k| parameter.get(*k).and_then(Value::as_str))
            .ok_or_else(|| format!("the parameter {name} has no supported value"))?;
        pairs.push((name.to_owned(), value.to_owned()));
    }
    Ok(pairs)
}

fn export_type(name: &str) -> Result<ResourceType, String> {
    name.parse::<ResourceType>()
        .ok()
        .filter(|t| EXPORT_TYPES.contains(t))
        .ok_or_else(|| {
            format!("_type {name} is not exported; use Patient, Coverage or ExplanationOfBenefit")
        })
}

fn type_filter(filter: &str) -> Result<(ResourceType, String), String> {
    let (name, query) = filter
        .split_once('?')
        .ok_or_else(|| format!("_typeFilter {filter:?} must look like Type?param=value"))?;
    let resource_type = export_type(name)?;
    parse_filter(resource_type, query)?;
    Ok((resource_type, query.to_owned()))
}

fn parse_filter(
    resource_type: ResourceType,
    query: &str,
) -> Result<fhir_search::SearchRequest, String> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if pairs
        .iter()
        .any(|(n, _)| n.starts_with('_') && !matches!(n.as_str(), "_id" | "_lastUpdated"))
    {
        return Err("_typeFilter takes search parameters only (no _include, _count, _sort)".into());
    }
    parse_search(resource_type, &pairs, Handling::Strict).map_err(|e| format!("_typeFilter: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_are_every_type_and_aliases_of_ndjson_are_accepted() {
        let r = from_query(&pairs(&[("_outputFormat", "ndjson")])).unwrap();
        assert_eq!(r.types, EXPORT_TYPES.to_vec());
        let r = from_query(&pairs(&[("_type", "ExplanationOfBenefit,Patient")])).unwrap();
        assert_eq!(
            r.types,
            vec![ResourceType::Patient, ResourceType::ExplanationOfBenefit]
        );
    }

    #[test]
    fn unsupported_parameters_types_formats_and_filters_are_refused() {
        for bad in [
            vec![("_elements", "id")],
            vec![("patient", "Patient/1")],
            vec![("_type", "Observation")],
            vec![("_outputFormat", "text/csv")],
            vec![("_since", "yesterday")],
            vec![("_typeFilter", "ExplanationOfBenefit?bogus=1")],
            vec![(
                "_typeFilter",
                "ExplanationOfBenefit?_include=ExplanationOfBenefit:patient",
            )],
            vec![("_type", "Patient"), ("_typeFilter", "Coverage?patient=x")],
        ] {
            assert!(from_query(&pairs(&bad)).is_err(), "{bad:?}");
        }
        let ok = from_query(&pairs(&[(
            "_typeFilter",
            "ExplanationOfBenefit?type=professional",
        )]));
        assert!(ok.is_ok(), "{ok:?}");
    }
}
