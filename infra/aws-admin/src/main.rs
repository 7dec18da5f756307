//! `patient-access-admin`: operator commands against a deployed stack (the table and
//! user pool named in the stack's Outputs). Credentials and region come from the usual
//! AWS environment (`AWS_PROFILE`, `AWS_REGION`, ...).

use std::process::ExitCode;

use app_registry_cli::{
    AppsCommand, MemberAtPayer, P2pRequestArgs, PayerArgs, Registration, app_line,
    backend_registered_text, registered_text, sharing_text,
};
use clap::{Args, Parser, Subcommand};
use cognito_signin::{CognitoClient, provision_member};
use member_consent::Sharing;
use patient_access_admin::{AdminError, Deployment, set_sharing};
use payer_to_payer::asking;
use store_dynamodb::DynamoStore;

#[derive(Parser)]
#[command(
    name = "patient-access-admin",
    about = "Operate a deployed Patient Access stack"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Register, list and disable third-party apps.
    Apps {
        #[command(subcommand)]
        command: AppsCommand<Table, TableAndPool>,
    },
    /// Enroll members into the user pool; hold and release their sign-in.
    Members {
        #[command(subcommand)]
        command: MembersCommand,
    },
    /// A member's Provider Access opt-out (on unless the member opts out), set by the
    /// plan.
    ProviderAccess {
        #[command(subcommand)]
        command: ChoiceCommand,
    },
    /// Payer-to-Payer: a member's opt-in from enrollment, asking a previous plan for
    /// their history, and where that request stands.
    P2p {
        #[command(subcommand)]
        command: P2pCommand,
    },
    /// The other health plans this plan asks for members' histories.
    Payers {
        #[command(subcommand)]
        command: PayersCommand,
    },
}

#[derive(Subcommand)]
enum P2pCommand {
    #[command(flatten)]
    Choice(ChoiceCommand),
    /// Ask the member's previous (or concurrent) plan for their last five years: the
    /// scheduled function `p2p-requests` runs it within 15 minutes.
    Request {
        #[command(flatten)]
        at: Table,
        #[command(flatten)]
        request: P2pRequestArgs,
    },
    /// Where the member's request of a plan stands (JSON).
    Status {
        #[command(flatten)]
        at: Table,
        #[command(flatten)]
        of: MemberAtPayer,
    },
}

#[derive(Subcommand)]
enum PayersCommand {
    /// Record another plan: its FHIR base URL, its payer id, the client id it
    /// registered this plan under, and the secret holding this plan's PEM private key
    /// for it (named `{stack}/payer-keys/{name}`: the function may read only those).
    Add {
        #[command(flatten)]
        at: Table,
        #[command(flatten)]
        payer: PayerArgs,
        #[arg(long)]
        key_secret: String,
    },
}

/// A member's data-sharing choice; it applies to every request that starts after it.
#[derive(Subcommand)]
enum ChoiceCommand {
    /// Stop this kind of sharing of the member's data.
    OptOut {
        #[command(flatten)]
        at: Table,
        /// The member's Patient resource id.
        #[arg(long)]
        patient: String,
    },
    /// Allow this kind of sharing of the member's data.
    OptIn {
        #[command(flatten)]
        at: Table,
        /// The member's Patient resource id.
        #[arg(long)]
        patient: String,
    },
}

/// Sets one kind of sharing for a member and prints what the local command prints.
async fn sharing(
    table: &impl Fn(String) -> DynamoStore,
    kind: Sharing,
    command: ChoiceCommand,
) -> Result<(), AdminError> {
    let (at, patient, on) = match command {
        ChoiceCommand::OptOut { at, patient } => (at, patient, false),
        ChoiceCommand::OptIn { at, patient } => (at, patient, true),
    };
    let changed = set_sharing(&table(at.table), kind, &patient, on).await?;
    println!("{}", sharing_text(&patient, kind, on, changed));
    Ok(())
}

/// Where the deployed registry is.
#[derive(Clone, Debug, Args)]
struct Table {
    /// The stack's FhirTableName output.
    #[arg(long)]
    table: String,
}

/// Where `apps register` writes: the registry, and the user pool that gets the app's
/// Cognito app client.
#[derive(Clone, Debug, Args)]
struct TableAndPool {
    #[command(flatten)]
    table: Table,
    /// The stack's MemberUserPoolId output; member apps only (a backend service
    /// never signs members in, so it gets no Cognito client).
    #[arg(long)]
    user_pool: Option<String>,
}

#[derive(Subcommand)]
enum MembersCommand {
    /// Create a member's user (opaque username, verified email, their Patient id, no
    /// password anyone knows, no invitation). Prints the username.
    Provision {
        #[arg(long)]
        user_pool: String,
        /// The email on file, where sign-in codes go.
        #[arg(long)]
        email: String,
        /// The member's Patient resource id.
        #[arg(long)]
        patient: String,
    },
    /// Stop a member from signing in (the Pre Authentication trigger refuses them)
    /// until `release`. Apps already connected keep their grants; revoke those apart.
    Hold {
        #[command(flatten)]
        at: Table,
        /// The member's Patient resource id.
        #[arg(long)]
        patient: String,
    },
    /// End a member's hold.
    Release {
        #[command(flatten)]
        at: Table,
        #[arg(long)]
        patient: String,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Registry(#[from] smart_server::ServerError),
    #[error(transparent)]
    Provision(#[from] cognito_signin::ProvisionError),
    #[error(transparent)]
    Backend(#[from] backend_auth::BackendAuthError),
    #[error(transparent)]
    Store(#[from] fhir_store::StoreError),
    #[error("{0}")]
    Invalid(String),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let aws = aws_config::load_from_env().await;
    let table = |name: String| DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), name);
    match cli.command {
        Command::Apps { command } => match command {
            AppsCommand::Register { at, app } => {
                let store = table(at.table.table);
                match app.registration().map_err(CliError::Invalid)? {
                    Registration::App(new) => {
                        let user_pool_id = at.user_pool.as_deref().ok_or_else(|| {
                            CliError::Invalid(
                                "--user-pool is required to register a member app".into(),
                            )
                        })?;
                        let deployment = Deployment {
                            cognito: &CognitoClient::new(&aws),
                            user_pool_id,
                            kv: &store,
                        };
                        let registered = deployment.register_app(&new).await?;
                        println!("{}", registered_text(&registered));
                    }
                    // Backend services need no Cognito client: they never sign in.
                    Registration::Backend(new) => {
                        let client = backend_auth::clients::register(&store, &new).await?;
                        println!("{}", backend_registered_text(&client));
                    }
                }
            }
            AppsCommand::List { at } => {
                for app in smart_server::apps::list(&table(at.table)).await? {
                    println!("{}", app_line(&app));
                }
            }
            AppsCommand::Disable { client_id, at } => {
                let store = table(at.table.table);
                let user_pool_id = at.user_pool.as_deref().ok_or_else(|| {
                    CliError::Invalid(
                        "--user-pool is required to disable an app (its Cognito app client is deleted too)"
                            .into(),
                    )
                })?;
                let deployment = Deployment {
                    cognito: &CognitoClient::new(&aws),
                    user_pool_id,
                    kv: &store,
                };
                let deleted = deployment.disable_app(&client_id).await?;
                let client = if deleted {
                    "its Cognito app client is deleted"
                } else {
                    "it had no Cognito app client left"
                };
                println!("disabled {client_id}; its grants are revoked and {client}");
            }
        },
        Command::Members { command } => match command {
            MembersCommand::Provision {
                user_pool,
                email,
                patient,
            } => {
                let username =
                    provision_member(&CognitoClient::new(&aws), &user_pool, &email, &patient)
                        .await?;
                println!("{username}");
            }
            MembersCommand::Hold { at, patient } => {
                member_signin::access::hold(&table(at.table), &patient)
                    .await
                    .map_err(|e| CliError::Invalid(e.to_string()))?;
                println!("held {patient}: sign-in refused until released");
            }
            MembersCommand::Release { at, patient } => {
                let released = member_signin::access::release(&table(at.table), &patient)
                    .await
                    .map_err(|e| CliError::Invalid(e.to_string()))?;
                if released {
                    println!("released {patient}");
                } else {
                    println!("{patient} was not on hold");
                }
            }
        },
        Command::ProviderAccess { command } => {
            sharing(&table, Sharing::ProviderAccess, command).await?;
        }
        Command::P2p { command } => match command {
            P2pCommand::Choice(choice) => sharing(&table, Sharing::PayerToPayer, choice).await?,
            P2pCommand::Request { at, request } => {
                let store = table(at.table);
                let payer = &request.of.payer;
                if asking::payer(&store, payer).await?.is_none() {
                    return Err(CliError::Invalid(format!(
                        "no payer {payer:?}: add it with `payers add`"
                    )));
                }
                let now = fhir::clock::unix_now();
                let terms = request.terms();
                // Due now, or on the first day of the member's coverage here.
                let request =
                    asking::request_when_due(&store, &request.of.patient, payer, terms, now)
                        .await?;
                println!("{}", serde_json::json!(request));
            }
            P2pCommand::Status { at, of } => {
                let request = asking::get_request(&table(at.table), &of.patient, &of.payer).await?;
                println!("{}", serde_json::json!(request));
            }
        },
        Command::Payers {
            command:
                PayersCommand::Add {
                    at,
                    payer,
                    key_secret,
                },
        } => {
            let payer = payer
                .with_key(key_secret)
                .checked()
                .map_err(|e| CliError::Invalid(e.to_string()))?;
            asking::add_payer(&table(at.table), &payer).await?;
            println!("payer {} at {}", payer.name, payer.base_url);
        }
    }
    Ok(())
}
