//! The subcommands of `patient-access`.

use std::sync::Arc;

use smart_auth::{AccessClaims, LocalIssuer};
use store_redb::RedbStore;

use crate::{DataDir, LocalServer, RunnerError, load_demo, router};

/// The knobs of `serve` beyond where it listens.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Accept grant-less tokens from `patient-access token`.
    pub allow_dev_tokens: bool,
    /// How long the FHIR handlers reuse a grant-status answer (≤ 60 s).
    pub grant_cache_ttl: std::time::Duration,
    /// Record apps' accesses (usage metrics, the member's access history).
    pub record_usage: bool,
    /// Each app's requests a minute to the FHIR API (0: no budget).
    pub client_requests_per_minute: u32,
    /// Start empty: no demo members, claims or directory (remembered in the data
    /// directory, so a later start does not load the demo over the plan's own data).
    pub no_demo: bool,
    /// Payer-to-Payer's answering rules: each requesting plan's failed-match budget
    /// and the sensitive-code list a `#sensitive` consent keeps back (the plan's own,
    /// from `--sensitive-codes`, or the documented default).
    pub member_match: payer_to_payer::MemberMatchConfig,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            allow_dev_tokens: false,
            grant_cache_ttl: fhir_api::MAX_GRANT_CACHE_TTL,
            record_usage: true,
            client_requests_per_minute: fhir_api::DEFAULT_CLIENT_REQUESTS_PER_MINUTE,
            no_demo: false,
            member_match: payer_to_payer::MemberMatchConfig::default(),
        }
    }
}

/// Payer-to-Payer's answering rules for `serve`: the failed-match budget, and the
/// plan's sensitive-code list from `sensitive_codes` (`default` or its JSON; see
/// `SensitivePolicy::configured`) or, without a file, the documented default.
pub fn member_match_rules(
    failures_per_hour: i64,
    sensitive_codes: Option<&std::path::Path>,
) -> Result<payer_to_payer::MemberMatchConfig, RunnerError> {
    let sensitive = match sensitive_codes {
        None => payer_to_payer::SensitivePolicy::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| RunnerError::io(path, e))?;
            payer_to_payer::SensitivePolicy::configured(&text)
                .map_err(|e| RunnerError::Invalid(format!("{}: {e}", path.display())))?
        }
    };
    Ok(payer_to_payer::MemberMatchConfig::with_rules(
        failures_per_hour,
        sensitive,
    ))
}

/// `serve`: open the store, load demo data on first start, serve on 127.0.0.1:PORT.
pub async fn serve(
    data: DataDir,
    port: u16,
    base_url: String,
    options: ServeOptions,
) -> Result<(), RunnerError> {
    data.ensure()?;
    let first_start = !data.store_path().exists();
    let no_demo_marker = data.root().join("no-demo");
    if first_start && options.no_demo {
        std::fs::write(&no_demo_marker, b"started with --no-demo\n")
            .map_err(|e| RunnerError::io(&no_demo_marker, e))?;
    }
    let skip_demo = options.no_demo || no_demo_marker.exists();
    let store = Arc::new(
        RedbStore::open(data.store_path()).map_err(|e| RunnerError::Store(e.to_string()))?,
    );
    let directory_store = Arc::new(
        crate::directory::open_directory_store(&data)
            .map_err(|e| RunnerError::Store(e.to_string()))?,
    );
    if first_start && !skip_demo {
        let report = crate::directory::load_demo_directory(&directory_store).await?;
        eprintln!(
            "first start: the demo provider directory: {}",
            report.summary()
        );
    }
    // Answers and store reads kept while the directory is unchanged
    // (`directory_api::cache`): 256 MB holds the records of a directory of about
    // 100,000 practitioners, the hot part of a far larger one. The inbox's loads
    // tell it at once; the generation is read again at least every second anyway.
    let directory_cache = Arc::new(directory_api::ResponseCache::serving(256 * 1024 * 1024));
    tokio::spawn(crate::directory::watch_directory_inbox(
        Arc::clone(&directory_store),
        data.root().to_path_buf(),
        Arc::clone(&directory_cache),
    ));
    let mut members = data.members()?;
    if members.is_empty() && !skip_demo {
        let files = data.demo_dir();
        eprintln!(
            "first start: loading the demo into {} as X12 through the ingest pipeline \
             (the files, their reports and 999s: {})",
            data.root().display(),
            files.display()
        );
        members = load_demo(
            Arc::clone(&store),
            &demo_data::DemoConfig::default(),
            Some(&files),
        )
        .await?
        .into_iter()
        .map(|m| m.patient_id)
        .collect();
        data.write_members(&members)?;
    }
    let issuer = issuer(&data, &base_url)?;
    data.write_base_url(&base_url)?;
    if options.record_usage {
        crate::usage::start(Arc::clone(&store));
    }
    tokio::spawn(crate::edi::watch_inbox(
        Arc::clone(&store),
        data.root().to_path_buf(),
    ));
    tokio::spawn(crate::p2p_asking::run_due_requests(Arc::clone(&store)));
    println!(
        "X12 inbox: drop files into {}",
        data.root().join(crate::edi::INBOX).display()
    );
    let issuer = Arc::new(issuer);
    let demo = demo_data::generate(&demo_data::DemoConfig::default());
    let enrolled: Vec<(String, String)> = demo
        .members
        .iter()
        .map(|m| (m.email.clone(), m.patient_id.clone()))
        .collect();
    if !members
        .iter()
        .all(|id| enrolled.iter().any(|(_, patient)| patient == id))
    {
        eprintln!(
            "warning: {} holds the demo of an earlier version (its members are not today's \
             demo members, so they cannot sign in); remove the directory to load the current demo",
            data.root().display()
        );
    }
    let auth = crate::auth::local_auth_server(
        Arc::clone(&store),
        Arc::clone(&issuer),
        &data.sign_in_keys().await?,
        &base_url,
        &enrolled,
    )
    .await?;
    let admin = crate::admin::Admin {
        store: Arc::clone(&store),
        key: data.admin_key()?,
    };
    let directory = directory_api::DirectoryApi::new(
        directory_store,
        Arc::new(
            smart_auth::CursorSealer::from_ring(&data.cursor_keys().await?)
                .map_err(|e| RunnerError::Invalid(e.to_string()))?,
        ),
        directory_api::DirectoryConfig::new(format!("{base_url}/directory")),
    )
    .with_cache(directory_cache);
    let pages = crate::pages::local_public_pages(
        &data,
        Arc::clone(&store),
        options.client_requests_per_minute,
    )?
    .with_provider_search(directory.clone());
    let (bulk, member_match) = crate::provider_access::local_backend_apis(
        Arc::clone(&store),
        &issuer,
        &base_url,
        &data.root().join("exports"),
        options.member_match.clone(),
    );
    let server = LocalServer::new(store, &issuer, &data.cursor_keys().await?, &base_url)
        .map_err(RunnerError::Invalid)?
        .allow_tokens_without_grant(options.allow_dev_tokens)
        .map_err(RunnerError::Invalid)?
        .grant_cache_ttl(options.grant_cache_ttl)
        .map_err(RunnerError::Invalid)?
        .client_budget(fhir_api::requests_per_minute(
            options.client_requests_per_minute,
        ))
        .map_err(RunnerError::Invalid)?
        .with_auth(Arc::new(auth))
        .with_admin(Arc::new(admin))
        .with_public_pages(Arc::new(pages))
        .with_directory(Arc::new(directory))
        .with_provider_access(Arc::new(bulk))
        .with_member_match(Arc::new(member_match));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| RunnerError::Listen { port, source })?;
    println!("Patient Access API on {base_url}  (metadata: {base_url}/metadata)");
    println!(
        "Provider Directory (public, Plan-Net) on {base_url}/directory; files: {}",
        data.root()
            .join(crate::directory::DIRECTORY_INBOX)
            .display()
    );
    println!("demo members (Patient id, email on file for sign-in):");
    for (email, patient) in &enrolled {
        println!("  {patient}  {email}");
    }
    println!(
        "connect an app:  patient-access apps register --data {} --name NAME --redirect-uri URI",
        data.root().display()
    );
    println!("one-time sign-in codes are printed on this console");
    println!(
        "get a token:  patient-access token --data {} --patient {} --scope 'patient/*.rs'",
        data.root().display(),
        members.first().map(String::as_str).unwrap_or("ID")
    );
    let served = axum::serve(listener, router(Arc::new(server)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    // What was served is recorded before the store closes.
    crate::usage::flush().await;
    served.map_err(|source| RunnerError::Listen { port, source })
}

/// `ingest`: X12 files into the local store, or through the running server's inbox
/// when `serve` holds the store. Fails when any file was rejected.
pub async fn ingest(data: DataDir, files: &[std::path::PathBuf]) -> Result<(), RunnerError> {
    data.ensure()?;
    let accepted = match RedbStore::open(data.store_path()) {
        Ok(store) => crate::edi::ingest_files(Arc::new(store), files).await?,
        // `serve` holds the store: go through its inbox instead.
        Err(store_redb::OpenError::AlreadyOpen(_)) => {
            crate::edi::ingest_via_inbox(data.root(), files).await?
        }
        Err(e) => return Err(RunnerError::Store(e.to_string())),
    };
    if accepted {
        Ok(())
    } else {
        Err(RunnerError::Rejected("at least one file".into()))
    }
}

/// `members`: the demo members' Patient ids, one per line; with `details`, one JSON
/// object per member with the facts sign-in asks for (the demo set is deterministic,
/// so it is regenerated rather than read from the store `serve` holds).
pub fn members(data: &DataDir, details: bool) -> Result<(), RunnerError> {
    let members = data.members()?;
    if members.is_empty() {
        return Err(RunnerError::Invalid(format!(
            "no demo members in {} yet: run `patient-access serve --data {}` once",
            data.root().display(),
            data.root().display()
        )));
    }
    if !details {
        for member in members {
            println!("{member}");
        }
        return Ok(());
    }
    let demo = demo_data::generate(&demo_data::DemoConfig::default());
    for member in demo
        .members
        .iter()
        .filter(|m| members.contains(&m.patient_id))
    {
        let line = serde_json::json!({
            "patient_id": member.patient_id,
            "email": member.email,
            "birth_date": member.birth_date,
            "member_id": member.member_id,
            "postal_code": member.postal_code,
            "family": member.family,
            "given": member.given,
        });
        println!("{line}");
    }
    Ok(())
}

/// Refuses what cannot be a Patient id before anything is asked or written.
pub(crate) fn valid_patient_id(patient: &str) -> Result<(), RunnerError> {
    if fhir::is_valid_id(patient) {
        return Ok(());
    }
    Err(RunnerError::Invalid(format!(
        "{patient:?} is not a valid Patient id"
    )))
}

/// `token`: a signed access token for one member, on stdout alone.
pub fn token(
    data: &DataDir,
    patient: &str,
    scope: &str,
    client_id: &str,
    minutes: u64,
) -> Result<(), RunnerError> {
    valid_patient_id(patient)?;
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

/// `apps register`: prints the client id alone on the last line (and, for a
/// confidential client, the secret on the line before, labelled).
pub async fn apps_register(data: &DataDir, new: smart_server::NewApp) -> Result<(), RunnerError> {
    let registered: smart_server::Registered = match admin_call(
        data,
        "/register",
        Some(serde_json::to_vec(&new).map_err(|e| RunnerError::Invalid(e.to_string()))?),
    )
    .await?
    {
        Some(value) => {
            serde_json::from_value(value).map_err(|e| RunnerError::Invalid(e.to_string()))?
        }
        None => {
            let store = open_store(data)?;
            smart_server::apps::register(&store, &new)
                .await
                .map_err(|e| RunnerError::Invalid(e.to_string()))?
        }
    };
    println!("{}", app_registry_cli::registered_text(&registered));
    Ok(())
}

/// `apps list`: one app per line.
pub async fn apps_list(data: &DataDir) -> Result<(), RunnerError> {
    let list: Vec<smart_server::App> = match admin_call(data, "", None).await? {
        Some(value) => {
            serde_json::from_value(value).map_err(|e| RunnerError::Invalid(e.to_string()))?
        }
        None => smart_server::apps::list(&open_store(data)?)
            .await
            .map_err(|e| RunnerError::Invalid(e.to_string()))?,
    };
    for app in list {
        println!("{}", app_registry_cli::app_line(&app));
    }
    Ok(())
}

/// `apps disable`: the app's grants end like a revocation.
pub async fn apps_disable(data: &DataDir, client_id: &str) -> Result<(), RunnerError> {
    let found = match admin_call(data, "/disable", Some(client_id.as_bytes().to_vec())).await? {
        Some(value) => value["disabled"].as_bool().unwrap_or(false),
        None => smart_server::disable_app(&open_store(data)?, client_id)
            .await
            .map_err(|e| RunnerError::Invalid(e.to_string()))?,
    };
    if !found {
        return Err(RunnerError::Invalid(format!(
            "no app with client id {client_id:?}"
        )));
    }
    println!("disabled {client_id}");
    Ok(())
}

pub(crate) fn open_store(data: &DataDir) -> Result<RedbStore, RunnerError> {
    RedbStore::open(data.store_path()).map_err(|e| RunnerError::Store(e.to_string()))
}

/// `metrics`: the usage report for CMS as one JSON object on stdout. Asks the running
/// server when `serve` holds the store (it records what it has queued first).
pub async fn metrics(
    data: &DataDir,
    year: i32,
    plan: usage_metrics::PlanIdentifiers,
) -> Result<(), RunnerError> {
    let path = format!("{}?year={year}", crate::admin::USAGE_PATH);
    let mut report: usage_metrics::UsageReport = match admin_request(data, &path, None).await? {
        Some(value) => {
            serde_json::from_value(value).map_err(|e| RunnerError::Invalid(e.to_string()))?
        }
        None => usage_metrics::UsageReport::build(&open_store(data)?, year, plan.clone())
            .await
            .map_err(|e| RunnerError::Invalid(e.to_string()))?,
    };
    report.plan = plan;
    println!("{}", report.to_json());
    Ok(())
}

/// Calls the running server's admin endpoint. `Ok(None)` when no server answers (the
/// caller then opens the store itself).
pub(crate) async fn admin_call(
    data: &DataDir,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<Option<serde_json::Value>, RunnerError> {
    admin_request(data, &format!("{}{path}", crate::admin::ADMIN_PREFIX), body).await
}

/// [`admin_call`] for any admin path.
pub(crate) async fn admin_request(
    data: &DataDir,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<Option<serde_json::Value>, RunnerError> {
    let base_url = data.base_url()?;
    let key = data.admin_key()?;
    let client = reqwest::Client::new();
    let url = format!("{base_url}{path}");
    let request = match body {
        Some(body) => client.post(url).body(body),
        None => client.get(url),
    };
    let response = match request
        .header(crate::admin::ADMIN_KEY_HEADER, key)
        .timeout(std::time::Duration::from_secs(120))
        .send()
        .await
    {
        Ok(response) => response,
        Err(error) if error.is_connect() => return Ok(None),
        Err(error) => {
            return Err(RunnerError::Invalid(format!(
                "the running server did not answer: {error}"
            )));
        }
    };
    let status = response.status();
    let value: serde_json::Value = response
        .json()
        .await
        .map_err(|e| RunnerError::Invalid(e.to_string()))?;
    if !status.is_success() {
        return Err(RunnerError::Invalid(
            value["error"]
                .as_str()
                .unwrap_or("admin request failed")
                .to_owned(),
        ));
    }
    Ok(Some(value))
}
