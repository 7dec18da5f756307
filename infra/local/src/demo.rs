use std::path::Path;
use std::sync::Arc;

use edi_ingest::{Disposition, FileIdentity, IngestOutcome, Ingestor};
use fhir_store::{KeyValueStore, ResourceStore, ResourceWrite, WriteCondition};

use crate::RunnerError;

/// Loads the demo the way a plan's data arrives, as `serve` does on first start (and
/// the tests and benchmarks, so that they see what users see):
///
/// 1. the demo as X12 ([`demo_data::x12::files`]: the members' 834, their 837P, 837I
///    and 837D claims and the 835s paying them) through the same ingest pipeline as
///    the inbox and the Lambda;
/// 2. then, as FHIR, what no X12 file carries ([`demo_data::DemoData::fhir_only`]):
///    the pharmacy EOBs (pharmacy claims travel as NCPDP, which this system does not
///    read) and the RelatedPersons (no X12 transaction names the subscriber of a
///    dependent's policy as a person), with the directory entries they reference
///    that no X12 file names. Each is written only where absent, so what the X12
///    path made stays.
///
/// With `files_dir`, each X12 file is also written there with its ingest report
/// (`.json`) and 999 (`.999`), for people to look at. Loading twice changes nothing
/// (the ingest ledger knows the files; the FHIR writes are conditional on absence).
/// Returns the members, whose Patient ids are the ones the X12 path gives them.
pub async fn load_demo<S>(
    store: Arc<S>,
    config: &demo_data::DemoConfig,
    files_dir: Option<&Path>,
) -> Result<Vec<demo_data::DemoMember>, RunnerError>
where
    S: ResourceStore + KeyValueStore + 'static,
{
    if let Some(dir) = files_dir {
        std::fs::create_dir_all(dir).map_err(|e| RunnerError::io(dir, e))?;
    }
    let ingestor = Ingestor::new(Arc::clone(&store), crate::edi::local_ingest_config());
    for (name, bytes) in demo_data::x12::files(config) {
        if let Some(dir) = files_dir {
            let path = dir.join(&name);
            std::fs::write(&path, &bytes).map_err(|e| RunnerError::io(&path, e))?;
        }
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
        if let (Some(dir), IngestOutcome::Ingested(done)) = (files_dir, &outcome) {
            let report = dir.join(format!("{name}.json"));
            std::fs::write(&report, done.report.to_json())
                .map_err(|e| RunnerError::io(&report, e))?;
            if let Some(ack) = &done.ack {
                let path = dir.join(format!("{name}.999"));
                std::fs::write(&path, ack).map_err(|e| RunnerError::io(&path, e))?;
            }
        }
    }
    let data = demo_data::generate(config);
    for (resource_type, id, resource) in data.fhir_only() {
        let write = ResourceWrite::indexed(resource_type, id, resource, WriteCondition::Absent);
        match ResourceStore::put(store.as_ref(), write).await {
            Ok(_) | Err(fhir_store::StoreError::Conflict { .. }) => {}
            Err(error) => return Err(RunnerError::Store(error.to_string())),
        }
    }
    Ok(data.members)
}
