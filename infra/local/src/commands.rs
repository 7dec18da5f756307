//! The subcommands of `patient-access`.

use std::sync::Arc;

use smart_auth::{AccessClaims, LocalIssuer};
use store_redb::RedbStore;

use crate::{DataDir, LocalServer, RunnerError, load_demo_data, router};

/// `serve`: open the store, load demo data on first start, serve on 127.0.0.1:PORT.
pub async fn serve(data: DataDir, port: u16, base_url: String) -> Result<(), RunnerError> {
    data.ensure()?;
    let store = Arc::new(
        RedbStore::open(data.store_path()).map_err(|e| RunnerError::Store(e.to_string()))?,
    );
    let mut members = data.members()?;
    if members.is_empty() {
        eprintln!(
            "first start: loading demo data into {}",
            data.root().display()
        );
        members = load_demo_data(store.as_ref(), &demo_data::DemoConfig::default()).await?;
        data.write_members(&members)?;
    }
    let issuer = issuer(&data, &base_url)?;
    data.write_base_url(&base_url)?;
    tokio::spawn(crate::edi::watch_inbox(
        Arc::clone(&store),
        data.root().to_path_buf(),
    ));
    println!(
        "X12 inbox: drop files into {}",
        data.root().join(crate::edi::INBOX).display()
    );
    let server = LocalServer::new(store, &issuer, &data.cursor_secret()?, &base_url)
        .map_err(RunnerError::Invalid)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| RunnerError::Listen { port, source })?;
    println!("Patient Access API on {base_url}  (metadata: {base_url}/metadata)");
    println!("demo members (Patient ids):");
    for member in &members {
        println!("  {member}");
    }
    println!(
        "get a token:  patient-access token --data {} --patient {} --scope 'patient/*.rs'",
        data.root().display(),
        members.first().map(String::as_str).unwrap_or("ID")
    );
    axum::serve(listener, router(Arc::new(server)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|source| RunnerError::Listen { port, source })
}

/// `ingest`: X12 files into the local store. Fails when any file was rejected.
pub async fn ingest(data: DataDir, files: &[std::path::PathBuf]) -> Result<(), RunnerError> {
    data.ensure()?;
    let store = RedbStore::open(data.store_path()).map_err(|e| {
        RunnerError::Store(format!(
            "{e} (is `patient-access serve` running on {}? Stop it, or drop the files into {} instead)",
            data.root().display(),
            data.root().join(crate::edi::INBOX).display()
        ))
    })?;
    let accepted = crate::edi::ingest_files(Arc::new(store), files).await?;
    if accepted {
        Ok(())
    } else {
        Err(RunnerError::Rejected("at least one file".into()))
    }
}

/// `members`: the demo members' Patient ids, one per line.
pub fn members(data: &DataDir) -> Result<(), RunnerError> {
    let members = data.members()?;
    if members.is_empty() {
        return Err(RunnerError::Invalid(format!(
            "no demo members in {} yet: run `patient-access serve --data {}` once",
            data.root().display(),
            data.root().display()
        )));
    }
    for member in members {
        println!("{member}");
    }
    Ok(())
}

/// `token`: a signed access token for one member, on stdout alone.
pub fn token(
    data: &DataDir,
    patient: &str,
    scope: &str,
    client_id: &str,
    minutes: u64,
) -> Result<(), RunnerError> {
    if !fhir::is_valid_id(patient) {
        return Err(RunnerError::Invalid(format!(
            "{patient:?} is not a valid Patient id"
        )));
    }
    let base_url = data.base_url()?;
    let issuer = issuer(data, &base_url)?;
    let claims = AccessClaims::for_member(
        patient,
        client_id,
        scope,
        std::time::Duration::from_secs(minutes * 60),
    );
    let token = issuer
        .mint(&claims)
        .map_err(|e| RunnerError::Issuer(e.to_string()))?;
    println!("{token}");
    Ok(())
}

fn issuer(data: &DataDir, base_url: &str) -> Result<LocalIssuer, RunnerError> {
    LocalIssuer::load_or_create(&data.issuer_dir(), base_url.to_owned(), base_url.to_owned())
        .map_err(|e| RunnerError::Issuer(e.to_string()))
}
