//! `GET`/`POST /Group/{id}/$davinci-data-export` (PDex payer-to-payer bulk, on the
//! Da Vinci ATR operation): the parameters, before the job runs on the Bulk Data
//! machinery of `bulk_export` (the same jobs, slices, worker, status, files).
//!
//! * `exportType` is **required** and must be `hl7.fhir.us.davinci-pdex#payertopayer`
//!   (PDex: "SHALL have the following value"); this operation serves nothing else;
//! * `_type`: `Patient`, `Coverage`, `ExplanationOfBenefit` (claims as CARIN Basis
//!   EOBs, and prior authorizations) and `Provenance`; without it, all four.
//!   Provenance describes the others, so it comes with them: `_type=Provenance` alone
//!   is refused;
//! * `_since`: only resources changed after it; one earlier than five years before the
//!   request is moved to that (PDex: "the date/time SHALL be overridden");
//! * `_outputFormat` and `_typeFilter` as for `$export`; anything else (`_until`,
//!   `patient`, `_elements`, …) is a 400, as Bulk Data asks of a parameter a server does
//!   not support.

use bulk_export::p2p::{EXPORT_TYPE, Window};
use bulk_export::request::ExportRequest;
use fhir::Instant;

/// The operation's name in the path (`/Group/{id}/$davinci-data-export`).
pub const OPERATION: &str = "$davinci-data-export";

/// The Group id of a `/Group/{id}/$davinci-data-export` path.
pub fn group_of(path: &str) -> Option<&str> {
    path.strip_prefix("/Group/")?
        .strip_suffix("/$davinci-data-export")
        .filter(|id| fhir::is_valid_id(id))
}

/// The export the parameters ask for, judged at `window` (the request's dates).
pub fn parse(pairs: &[(String, String)], window: &Window) -> Result<ExportRequest, String> {
    let mut export_type: Option<&str> = None;
    let mut types_given = false;
    let mut provenance = false;
    let mut rest = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        match name.as_str() {
            "exportType" => {
                if export_type.replace(value).is_some() {
                    return Err("exportType may be given once".into());
                }
            }
            "_type" => {
                types_given = true;
                let mut kept = Vec::new();
                for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    if t == "Provenance" {
                        provenance = true;
                    } else {
                        kept.push(t);
                    }
                }
                if !kept.is_empty() {
                    rest.push(("_type".to_owned(), kept.join(",")));
                }
            }
            _ => rest.push((name.clone(), value.clone())),
        }
    }
    if export_type != Some(EXPORT_TYPE) {
        return Err(format!(
            "$davinci-data-export needs exportType={EXPORT_TYPE} (PDex payer-to-payer)"
        ));
    }
    if types_given && !rest.iter().any(|(n, _)| n == "_type") {
        return Err(
            "Provenance describes the resources it comes with: name them in _type too".into(),
        );
    }
    let mut export = bulk_export::request::from_query(&rest)?;
    export.provenance = provenance || !types_given;
    let floor = Instant::parse(&window.since_floor()).map_err(|e| e.to_string())?;
    if let Some(since) = export.since_instant()
        && since.unix_millis() < floor.unix_millis()
    {
        export.since = Some(floor.to_string());
    }
    Ok(export)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhir::ResourceType;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    fn window() -> Window {
        Window::at(1_796_601_600) // 2026-12-07
    }

    #[test]
    fn the_payer_to_payer_export_type_is_required() {
        assert!(parse(&pairs(&[]), &window()).is_err());
        assert!(
            parse(
                &pairs(&[("exportType", "hl7.fhir.us.davinci-atr")]),
                &window()
            )
            .is_err()
        );
        let twice = [("exportType", EXPORT_TYPE), ("exportType", EXPORT_TYPE)];
        assert!(parse(&pairs(&twice), &window()).is_err());
        let export = parse(&pairs(&[("exportType", EXPORT_TYPE)]), &window()).unwrap();
        assert_eq!(export.types.len(), 3, "every type by default");
        assert!(export.provenance, "and Provenance with them");
    }

    #[test]
    fn type_narrows_the_export_and_provenance_needs_company() {
        let asked = [
            ("exportType", EXPORT_TYPE),
            ("_type", "ExplanationOfBenefit,Provenance"),
        ];
        let export = parse(&pairs(&asked), &window()).unwrap();
        assert_eq!(export.types, [ResourceType::ExplanationOfBenefit]);
        assert!(export.provenance);
        let no_provenance = [("exportType", EXPORT_TYPE), ("_type", "Patient")];
        assert!(!parse(&pairs(&no_provenance), &window()).unwrap().provenance);
        let alone = [("exportType", EXPORT_TYPE), ("_type", "Provenance")];
        assert!(parse(&pairs(&alone), &window()).is_err());
        let other = [("exportType", EXPORT_TYPE), ("_type", "Observation")];
        assert!(parse(&pairs(&other), &window()).is_err());
    }

    #[test]
    fn a_since_older_than_five_years_is_moved_up_to_five_years() {
        let old = [
            ("exportType", EXPORT_TYPE),
            ("_since", "2010-01-01T00:00:00Z"),
        ];
        let export = parse(&pairs(&old), &window()).unwrap();
        assert_eq!(export.since.as_deref(), Some("2021-12-07T00:00:00.000Z"));
        let recent = [
            ("exportType", EXPORT_TYPE),
            ("_since", "2026-06-01T00:00:00Z"),
        ];
        let export = parse(&pairs(&recent), &window()).unwrap();
        assert_eq!(export.since.as_deref(), Some("2026-06-01T00:00:00.000Z"));
    }

    #[test]
    fn parameters_this_server_does_not_support_are_refused() {
        for bad in ["_until", "patient", "_elements"] {
            let asked = [("exportType", EXPORT_TYPE), (bad, "x")];
            assert!(parse(&pairs(&asked), &window()).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_groups_data_export_path_is_this_operation() {
        assert_eq!(group_of("/Group/p2p-1/$davinci-data-export"), Some("p2p-1"));
        assert_eq!(group_of("/Group/p2p-1/$export"), None);
        assert_eq!(group_of("/Group/a/b/$davinci-data-export"), None);
    }
}
