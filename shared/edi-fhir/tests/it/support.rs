//! What the test modules share: the plan's settings, the fixtures, and the
//! streaming driver's output gathered into a whole-file conversion.

use std::collections::BTreeMap;
use std::path::PathBuf;

use edi_fhir::{Event, FileConversion, MappingConfig, NetworkStatus, SetOutcome};
use fhir::ResourceType;
use serde_json::Value;

pub fn config() -> MappingConfig {
    MappingConfig {
        payer_id: "999996666".into(),
        payer_name: "KEY INSURANCE COMPANY".into(),
        default_network_status: NetworkStatus::InNetwork,
    }
}

/// The x12 crate's valid fixtures folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../x12/tests/fixtures")
}

/// One fixture's text (empty when missing, which the tests then fail on).
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join(name)).unwrap_or_default()
}

/// The whole-file conversion [`edi_fhir::stream_changes`] hands out, set by
/// set: the same value [`edi_fhir::convert`] returns when the two agree.
pub fn streamed(input: &[u8], config: &MappingConfig) -> FileConversion {
    let mut sets = Vec::new();
    let summary = edi_fhir::stream_changes(input, config, |event| match event {
        Event::Set(set) => sets.push(set.clone()),
        Event::Change(change) => {
            if let Some(SetOutcome::Accepted { changes, .. }) = sets
                .last_mut()
                .map(|s: &mut edi_fhir::TransactionSetResult| &mut s.outcome)
            {
                changes.push(change);
            }
        }
        Event::SetEnd => {}
    });
    summary.into_conversion(sets)
}

/// A FHIR `collection` Bundle of folded resources, in key order.
pub fn bundle(resources: &BTreeMap<(ResourceType, String), Value>) -> Value {
    let entries: Vec<Value> = resources
        .values()
        .map(|r| serde_json::json!({ "resource": r }))
        .collect();
    serde_json::json!({ "resourceType": "Bundle", "type": "collection", "entry": entries })
}
