use std::sync::Arc;

use edi_ingest::{Disposition, FileIdentity, Ingestor};
use fhir_store::{KeyValueStore, ResourceStore, ResourceWrite, WriteCondition};

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

/// Loads the demo data the way a plan's files arrive: the demo members' 834, their
/// 837P/837I/837D claims and the 835 paying them, generated as X12
/// ([`crate::demo_x12`]) and ingested through the same pipeline as the inbox and the
/// Lambda. The ledger makes a second load a no-op.
///
/// Returns the members with `patient_id` set to the id the X12 path gives them.
pub async fn load_demo_x12<S>(
    store: Arc<S>,
    config: &demo_data::DemoConfig,
) -> Result<Vec<demo_data::DemoMember>, RunnerError>
where
    S: ResourceStore + KeyValueStore + 'static,
{
    let (members, files) = crate::demo_x12::demo_files(config);
    let ingestor = Ingestor::new(store, crate::edi::local_ingest_config());
    for (name, bytes) in files {
        let identity = FileIdentity::content(format!("demo/{name}"), &bytes);
        let outcome = ingestor
            .ingest_bytes(&identity, bytes)
            .await
            .map_err(|e| RunnerError::Store(e.to_string()))?;
        let totals = outcome.totals();
        if totals.sets_rejected > 0 || outcome.disposition() != Disposition::Processed {
            return Err(RunnerError::Invalid(format!(
                "the generated demo file {name} was rejected: {totals:?}"
            )));
        }
    }
    Ok(members
        .into_iter()
        .map(|m| demo_data::DemoMember {
            patient_id: crate::demo_x12::patient_id(&m),
            ..m
        })
        .collect())
}
