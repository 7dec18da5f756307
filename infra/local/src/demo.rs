use fhir_store::{ResourceStore, ResourceWrite, WriteCondition};

use crate::RunnerError;

/// Loads the demo members, their coverage and claims, and the directory resources.
///
/// Writes are conditional on absence, so loading twice changes nothing. Returns the
/// members' Patient ids.
pub async fn load_demo_data<S: ResourceStore>(
    store: &S,
    config: &demo_data::DemoConfig,
) -> Result<Vec<String>, RunnerError> {
    let data = demo_data::generate(config);
    for (resource_type, id, resource) in data.resources {
        let index = fhir_search::index_resource(resource_type, &resource);
        let write = ResourceWrite {
            resource_type,
            id,
            resource,
            index,
            deleted: false,
            condition: WriteCondition::Absent,
        };
        match store.put(write).await {
            Ok(_) | Err(fhir_store::StoreError::Conflict { .. }) => {}
            Err(error) => return Err(RunnerError::Store(error.to_string())),
        }
    }
    Ok(data.members.into_iter().map(|m| m.patient_id).collect())
}
