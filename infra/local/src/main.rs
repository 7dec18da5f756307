//! `patient-access`: the whole Patient Access API on a laptop.
//!
//! ```text
//! patient-access serve   [--data DIR] [--port N]   every handler on one port, demo data loaded
//! patient-access members [--data DIR] [--details]  the demo members' Patient ids (or
//!                                                  their sign-in facts, JSON lines)
//! patient-access token   [--data DIR] --patient ID --scope "..."   a signed access token
//! patient-access convert FILE [--bundle] [-o OUT]  X12 → FHIR NDJSON (or a Bundle), no store
//! patient-access ingest  [--data DIR] FILE...      X12 files into the local store
//! patient-access metrics [--data DIR] --year YYYY  the CMS usage report, one JSON object
//! patient-access directory load [--data DIR] [--snapshot] FILE...
//!                                                  provider directory files (.ndjson, .csv)
//! patient-access attribution load [--data DIR] FILE...   provider attribution lists
//! patient-access provider-access opt-out|opt-in [--data DIR] --patient ID
//! ```
//! `serve` also watches `DIR/inbox/`: X12 files dropped there are ingested and moved to
//! `DIR/processed/` or `DIR/rejected/` with their report (`.json`) and 999 (`.999`).
//! These flags, the default port 8080 and the data directory layout are a contract:
//! scripts outside the repository use them.

use std::path::PathBuf;
use std::process::ExitCode;

use app_registry_cli::{AppsCommand, MemberAtPayer, P2pRequestArgs, PayerArgs, Registration};
use clap::{Args, Parser, Subcommand};

use member_consent::Sharing;
use patient_access::{DataDir, RunnerError, commands, p2p_asking, provider_access, sharing};

#[derive(Parser)]
#[command(
    name = "patient-access",
    version,
    about = "The Patient Access API, locally, with no AWS account"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every FHIR endpoint on one localhost port, over the embedded store.
    Serve {
        /// Where the embedded store, keys and demo data live.
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The base URL clients use (defaults to http://localhost:PORT).
        #[arg(long)]
        base_url: Option<String>,
        /// Also accept grant-less tokens from `patient-access token` (development only).
        #[arg(long)]
        allow_dev_tokens: bool,
        /// How long the FHIR handlers reuse a grant-status answer: the longest an
        /// unexpired access token keeps working after revocation (0–60; tests use less).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=60))]
        grant_cache_seconds: u64,
        /// Do not record apps' accesses for `metrics` and /connected-apps (only to
        /// measure what recording costs: `scripts/bench http`).
        #[arg(long)]
        no_usage_metrics: bool,
        /// Each app's requests a minute to the FHIR API, as on AWS
        /// (`ClientRequestsPerMinute`); past it, 429 with Retry-After. 0: no budget
        /// (`scripts/bench http` drives one token far past any sane budget).
        #[arg(long, default_value_t = fhir_api::DEFAULT_CLIENT_REQUESTS_PER_MINUTE)]
        client_requests_per_minute: u32,
        /// Start on an empty store: no demo members, claims or provider directory.
        #[arg(long)]
        no_demo: bool,
        /// Payer-to-Payer: failed `$member-match`es a requesting plan may make in an
        /// hour before 429 (as `FailedMatchesPerHour` on AWS).
        #[arg(long, default_value_t = payer_to_payer::budget::DEFAULT_FAILURES_PER_HOUR,
              value_parser = clap::value_parser!(i64).range(1..=10_000))]
        failed_matches_per_hour: i64,
        /// Payer-to-Payer: the plan's reviewed list of sensitive codes, which a
        /// `#sensitive` consent keeps back (JSON, README "Sensitive data"); without it
        /// the documented default list.
        #[arg(long, value_name = "FILE")]
        sensitive_codes: Option<PathBuf>,
    },
    /// The provider directory (Plan-Net): load roster CSV and FHIR NDJSON files.
    Directory {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Register, list and disable third-party apps (works while `serve` runs).
    Apps {
        #[command(subcommand)]
        command: AppsCommand<Local>,
    },
    /// Load provider attribution lists (CSV or NDJSON Group); works while `serve` runs.
    Attribution {
        #[command(subcommand)]
        command: AttributionCommand,
    },
    /// Set a member's Provider Access opt-out for the plan; works while `serve` runs.
    ProviderAccess {
        #[command(subcommand)]
        command: ProviderAccessCommand,
    },
    /// Payer-to-Payer for a member: the plan records their choice (a contract), asks a
    /// previous plan for their history, or shows where that request stands; works
    /// while `serve` runs.
    P2p {
        #[command(subcommand)]
        command: P2pCommand,
    },
    /// The other health plans this plan asks for members' histories (Payer-to-Payer).
    Payers {
        #[command(subcommand)]
        command: PayersCommand,
    },
    /// Print the demo members' Patient ids, one per line.
    Members {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        /// One JSON object per member instead: patient_id, email, birth_date,
        /// member_id, postal_code, family, given (what sign-in asks for).
        #[arg(long)]
        details: bool,
    },
    /// Print a signed access token for one member, for curl and tests.
    Token {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        /// The member's Patient id (see `members`).
        #[arg(long)]
        patient: String,
        /// SMART scopes, e.g. "patient/*.rs" or "patient/ExplanationOfBenefit.read".
        #[arg(long, default_value = "patient/*.rs")]
        scope: String,
        /// The client the token is issued to.
        #[arg(long, default_value = "local-dev-client")]
        client_id: String,
        /// Lifetime in minutes.
        #[arg(long, default_value_t = 60)]
        minutes: u64,
    },
    /// Write the FHIR resources one X12 file converts to, touching no store: NDJSON
    /// (one resource a line) or, with --bundle, one Bundle of type collection;
    /// streamed, in memory bounded whatever the file's size. On bad input, write no
    /// resources, print the report and exit non-zero.
    Convert {
        /// An X12 005010 837P/837I/837D, 835 or 834 file.
        file: PathBuf,
        /// One FHIR Bundle (type collection) instead of NDJSON.
        #[arg(long)]
        bundle: bool,
        /// Write to this file (created only when the whole input is accepted)
        /// instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print the usage report for CMS for one calendar year as one JSON object: `year`,
    /// `members_with_app_access`, `members_with_repeat_app_access` (a contract), the
    /// plan's identifiers and the definition used. Works while `serve` runs.
    Metrics {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        /// The calendar year (US Eastern days).
        #[arg(long)]
        year: i32,
        /// The plan's name as reported to CMS.
        #[arg(long, default_value = "")]
        plan_name: String,
        /// The payer id.
        #[arg(long, default_value = "")]
        payer_id: String,
        /// A CMS plan identifier (MA contract, state plan or QHP issuer id); repeatable.
        #[arg(long = "plan-id")]
        plan_ids: Vec<String>,
    },
    /// Load X12 files into the local store, with a progress bar and a summary per file.
    /// While `serve` runs on the same --data (it holds the store), the files go through
    /// its inbox and the summaries come from the reports it writes.
    Ingest {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Validate and apply directory files (`.ndjson`, `.csv`), one summary line each;
    /// exits non-zero if any was rejected. While `serve` runs on the same --data, the
    /// files go through its directory inbox.
    Load {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        /// The files are full snapshots: what they do not hold is ended (also implied
        /// by `.snapshot.` in a file's name).
        #[arg(long)]
        snapshot: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AttributionCommand {
    /// Load files; prints each file's JSON report. A load replaces each named
    /// provider's list as a whole; a file with any bad line is rejected whole.
    Load {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum P2pCommand {
    /// The member opts in: other plans may match them and receive their data.
    OptIn {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        #[arg(long)]
        patient: String,
    },
    /// The member opts out: `$member-match` refuses them from now on.
    OptOut {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        #[arg(long)]
        patient: String,
    },
    /// Ask a previous (or concurrent) plan for the member's last five years, now:
    /// `$member-match` there, then `$everything`, then the import. Prints the request
    /// as it stands; a failure waits for its retry (`serve` runs it).
    Request {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        #[command(flatten)]
        request: P2pRequestArgs,
    },
    /// Where the member's request of a plan stands (JSON).
    Status {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        #[command(flatten)]
        of: MemberAtPayer,
    },
}

#[derive(Subcommand)]
enum PayersCommand {
    /// Record another plan: its FHIR base URL, its payer id, and this plan's backend
    /// client there (the client id it registered us under, and our private key).
    Add {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        #[command(flatten)]
        payer: PayerArgs,
        /// This plan's private key for that client (PEM: RSA for RS384, P-384 for ES384).
        #[arg(long)]
        key: PathBuf,
    },
    /// Print the public key set (JWKS) of a private key, to register at the other plan.
    Jwks {
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Subcommand)]
enum ProviderAccessCommand {
    /// The member opts out: no provider export includes them from now on.
    OptOut {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        #[arg(long)]
        patient: String,
    },
    /// The member opts back in.
    OptIn {
        #[arg(long, default_value = ".data")]
        data: PathBuf,
        #[arg(long)]
        patient: String,
    },
}

/// Where the local registry is: the data directory (`serve` may be running on it).
#[derive(Clone, Debug, Args)]
struct Local {
    #[arg(long, default_value = ".data")]
    data: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // The usage layer has its own filter: RUST_LOG quiets the console, not the counting.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .with(patient_access::usage::layer())
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn apps(command: AppsCommand<Local>) -> Result<(), RunnerError> {
    match command {
        AppsCommand::Register { at, app } => match app.registration() {
            Ok(Registration::App(new)) => {
                commands::apps_register(&DataDir::new(at.data), new).await
            }
            Ok(Registration::Backend(new)) => {
                provider_access::backend_register(&DataDir::new(at.data), new).await
            }
            Err(error) => Err(RunnerError::Invalid(error)),
        },
        AppsCommand::List { at } => commands::apps_list(&DataDir::new(at.data)).await,
        AppsCommand::Disable { client_id, at } => {
            commands::apps_disable(&DataDir::new(at.data), &client_id).await
        }
    }
}

async fn run(cli: Cli) -> Result<(), RunnerError> {
    match cli.command {
        Command::Serve {
            data,
            port,
            base_url,
            allow_dev_tokens,
            grant_cache_seconds,
            no_usage_metrics,
            client_requests_per_minute,
            no_demo,
            failed_matches_per_hour,
            sensitive_codes,
        } => {
            let base_url = base_url.unwrap_or_else(|| format!("http://localhost:{port}"));
            let member_match =
                commands::member_match_rules(failed_matches_per_hour, sensitive_codes.as_deref())?;
            let options = commands::ServeOptions {
                allow_dev_tokens,
                grant_cache_ttl: std::time::Duration::from_secs(grant_cache_seconds),
                record_usage: !no_usage_metrics,
                client_requests_per_minute,
                no_demo,
                member_match,
            };
            commands::serve(DataDir::new(data), port, base_url, options).await
        }
        Command::Apps { command } => apps(command).await,
        Command::Directory {
            command:
                DirectoryCommand::Load {
                    data,
                    snapshot,
                    files,
                },
        } => patient_access::directory::directory_load(DataDir::new(data), &files, snapshot).await,
        Command::Attribution {
            command: AttributionCommand::Load { data, files },
        } => provider_access::attribution_load(&DataDir::new(data), &files).await,
        Command::ProviderAccess { command } => {
            let (data, patient, on) = match command {
                ProviderAccessCommand::OptOut { data, patient } => (data, patient, false),
                ProviderAccessCommand::OptIn { data, patient } => (data, patient, true),
            };
            sharing::command(&DataDir::new(data), Sharing::ProviderAccess, &patient, on).await
        }
        Command::P2p { command } => match command {
            P2pCommand::OptIn { data, patient } => {
                sharing::command(&DataDir::new(data), Sharing::PayerToPayer, &patient, true).await
            }
            P2pCommand::OptOut { data, patient } => {
                sharing::command(&DataDir::new(data), Sharing::PayerToPayer, &patient, false).await
            }
            P2pCommand::Request { data, request } => {
                let terms = request.terms();
                let data = DataDir::new(data);
                p2p_asking::request(&data, &request.of.patient, &request.of.payer, terms).await
            }
            P2pCommand::Status { data, of } => {
                p2p_asking::status(&DataDir::new(data), &of.patient, &of.payer).await
            }
        },
        Command::Payers { command } => match command {
            PayersCommand::Add { data, payer, key } => {
                let payer = payer.with_key(key.display().to_string());
                p2p_asking::add(&DataDir::new(data), payer).await
            }
            PayersCommand::Jwks { key } => p2p_asking::jwks(&key.display().to_string()),
        },
        Command::Members { data, details } => commands::members(&DataDir::new(data), details),
        Command::Token {
            data,
            patient,
            scope,
            client_id,
            minutes,
        } => commands::token(&DataDir::new(data), &patient, &scope, &client_id, minutes),
        Command::Convert {
            file,
            bundle,
            output,
        } => {
            let format = if bundle {
                patient_access::convert::ConvertFormat::Bundle
            } else {
                patient_access::convert::ConvertFormat::Ndjson
            };
            patient_access::convert::convert(&file, format, output.as_deref())
        }
        Command::Metrics {
            data,
            year,
            plan_name,
            payer_id,
            plan_ids,
        } => {
            let plan = usage_metrics::PlanIdentifiers {
                plan_name,
                payer_id,
                plan_ids,
            };
            commands::metrics(&DataDir::new(data), year, plan).await
        }
        Command::Ingest { data, files } => commands::ingest(DataDir::new(data), &files).await,
    }
}
