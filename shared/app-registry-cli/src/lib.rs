//! What `patient-access apps …` and `patient-access-admin apps …` share: the
//! `apps` subcommands and their arguments, and the output of `register` and `list`,
//! so that an operator who learnt one tool knows the other, and scripts can read both.
//! The same goes for the Payer-to-Payer arguments of `payers add` and `p2p request`.

use backend_auth::{BackendClient, NewBackendClient};
use clap::{Args, Subcommand};
use member_consent::Sharing;
use payer_to_payer::asking::{OtherPayer, Terms};
use smart_server::{App, NewApp, Registered};

/// The `apps` subcommands. Each tool says where the registry is: `Registry` for
/// `list`, `RegisterAt` for `register` and `disable` (on AWS they also need the user
/// pool, where the app's identity-provider client is made, and deleted on disable).
// Parsed once per process: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Subcommand)]
pub enum AppsCommand<Registry: Args, RegisterAt: Args = Registry> {
    /// Register an app; prints its client_id alone on the last line.
    Register {
        #[command(flatten)]
        at: RegisterAt,
        #[command(flatten)]
        app: RegisterArgs,
    },
    /// List registered apps.
    List {
        #[command(flatten)]
        at: Registry,
    },
    /// Disable an app: its grants end as if revoked, and its identity-provider client
    /// is deleted.
    Disable {
        client_id: String,
        #[command(flatten)]
        at: RegisterAt,
    },
}

/// `apps register`'s description of the app (each tool adds where to register it).
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    #[arg(long)]
    pub name: String,
    /// An exact redirect URI (repeat for several).
    #[arg(long = "redirect-uri", required_unless_present = "backend")]
    pub redirect_uri: Vec<String>,
    /// A confidential client: a secret is generated and printed once.
    #[arg(long)]
    pub confidential: bool,
    /// The app's privacy policy (https).
    #[arg(long)]
    pub privacy_policy: Option<String>,
    /// The developer attested to industry privacy practices.
    #[arg(long)]
    pub attested: bool,
    #[arg(long, default_value = "")]
    pub description: String,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// A backend service (SMART Backend Services, `client-confidential-asymmetric`): a
/// provider organisation's system that authenticates with a signed JWT.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Register a backend service instead of a member app.
    #[arg(long, conflicts_with_all = ["redirect_uri", "confidential", "privacy_policy", "attested"])]
    pub backend: bool,
    /// A file holding the client's public JWKS.
    #[arg(long, requires = "backend", conflicts_with = "jwks_uri")]
    pub jwks: Option<std::path::PathBuf>,
    /// Where the client publishes its JWKS (https).
    #[arg(long, requires = "backend")]
    pub jwks_uri: Option<String>,
    /// The system scopes the client may ask for, e.g. 'system/*.rs' (repeatable).
    #[arg(long, requires = "backend")]
    pub scope: Vec<String>,
    /// The provider organisation's NPI: whose attribution Groups it reads (repeatable).
    #[arg(long, requires = "backend")]
    pub provider_npi: Vec<String>,
    /// The provider organisation's TIN (repeatable).
    #[arg(long, requires = "backend")]
    pub provider_tin: Vec<String>,
    /// The client may export every member (`/Patient/$export`): another payer's
    /// system for Payer-to-Payer, never a provider.
    #[arg(long, requires = "backend")]
    pub all_members: bool,
    /// The client is another health plan's system (Payer-to-Payer): it may call
    /// `POST /Patient/$member-match`. Registered without provider NPIs or TINs.
    #[arg(long, requires = "backend", conflicts_with_all = ["provider_npi", "provider_tin"])]
    pub payer: bool,
}

/// `p2p request` and `p2p status`: a member's request of one other plan.
#[derive(Debug, Clone, Args)]
pub struct MemberAtPayer {
    #[arg(long)]
    pub patient: String,
    /// The plan's name (`payers add --name`).
    #[arg(long)]
    pub payer: String,
}

/// `p2p request`: which member asks which other plan, and on what terms.
#[derive(Debug, Clone, Args)]
pub struct P2pRequestArgs {
    #[command(flatten)]
    pub of: MemberAtPayer,
    /// The member's card number at that plan (subscriber or member id).
    #[arg(long)]
    pub old_member_id: String,
    /// The member agreed in writing to all data moving, substance-use records
    /// included (HRex `#regular`). Without it only data that is not sensitive moves
    /// (`#sensitive`).
    #[arg(long)]
    pub all_data: bool,
    /// The member is covered by both plans at once: ask again every quarter.
    #[arg(long)]
    pub concurrent: bool,
}

impl P2pRequestArgs {
    /// The request's terms (the member and the plan stay in the arguments).
    pub fn terms(&self) -> Terms {
        Terms {
            old_member_id: self.old_member_id.clone(),
            all_data: self.all_data,
            concurrent: self.concurrent,
        }
    }
}

/// `payers add`: another plan, all but where this plan's key for it is (a PEM file
/// locally, a Secrets Manager secret on AWS: each tool names its own flag).
#[derive(Debug, Clone, Args)]
pub struct PayerArgs {
    /// A short name (a-z, 0-9, '-'): the namespace of the ids received from it.
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub base_url: String,
    /// Its payer id, as its cards show it.
    #[arg(long)]
    pub payer_id: String,
    /// The client id it registered this plan under.
    #[arg(long)]
    pub client_id: String,
}

impl PayerArgs {
    pub fn with_key(self, key: String) -> OtherPayer {
        OtherPayer {
            name: self.name,
            base_url: self.base_url,
            payer_id: self.payer_id,
            client_id: self.client_id,
            key,
        }
    }
}

/// What `apps register` registers.
#[derive(Debug, Clone)]
pub enum Registration {
    App(NewApp),
    Backend(NewBackendClient),
}

impl RegisterArgs {
    /// The registration these arguments describe; reads the JWKS file if one is named.
    pub fn registration(self) -> Result<Registration, String> {
        if !self.backend.backend {
            return Ok(Registration::App(self.into()));
        }
        let b = self.backend;
        let jwks = match &b.jwks {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Some(
                    serde_json::from_str(&text)
                        .map_err(|e| format!("{} is not a JWKS: {e}", path.display()))?,
                )
            }
            None => None,
        };
        Ok(Registration::Backend(NewBackendClient {
            name: self.name,
            jwks,
            jwks_uri: b.jwks_uri,
            scope: b.scope.join(" "),
            provider_npis: b.provider_npi,
            provider_tins: b.provider_tin,
            all_members: b.all_members,
            payer: b.payer,
        }))
    }
}

/// What `apps register --backend` prints: a line for people, then the client_id alone
/// on the last line.
pub fn backend_registered_text(client: &BackendClient) -> String {
    let role = if client.payer { ", payer" } else { "" };
    format!(
        "registered backend service {} (private_key_jwt, {}{role})\n{}",
        client.name, client.scope, client.client_id
    )
}

impl From<RegisterArgs> for NewApp {
    fn from(args: RegisterArgs) -> Self {
        NewApp {
            name: args.name,
            description: args.description,
            redirect_uris: args.redirect_uri,
            confidential: args.confidential,
            privacy_policy: args.privacy_policy,
            attested: args.attested,
        }
    }
}

/// What `apps register` prints: a line for people, the secret once (confidential
/// clients), and the client_id alone on the last line for scripts.
pub fn registered_text(registered: &Registered) -> String {
    let kind = if registered.app.confidential {
        "confidential"
    } else {
        "public, PKCE"
    };
    let mut text = format!("registered {} ({kind})\n", registered.app.name);
    if let Some(secret) = &registered.client_secret {
        text.push_str(&format!(
            "client_secret (shown once, store it now): {secret}\n"
        ));
    }
    text.push_str(&registered.app.client_id);
    text
}

/// What `provider-access opt-out|opt-in` and `p2p opt-in|opt-out` print, locally and
/// on AWS: `{patient} opted in to|opted out of {what}[ (no change)]`.
pub fn sharing_text(patient: &str, kind: Sharing, on: bool, changed: bool) -> String {
    let what = match kind {
        Sharing::ProviderAccess => "Provider Access",
        Sharing::PayerToPayer => "Payer-to-Payer exchange",
    };
    let state = if on { "opted in to" } else { "opted out of" };
    let note = if changed { "" } else { " (no change)" };
    format!("{patient} {state} {what}{note}")
}

/// One line of `apps list`, tab-separated: client_id, enabled|disabled,
/// confidential|public, attested|not-attested, name, redirect URIs (comma-separated).
pub fn app_line(app: &App) -> String {
    let state = if app.enabled { "enabled" } else { "disabled" };
    let kind = if app.confidential {
        "confidential"
    } else {
        "public"
    };
    let attested = if app.attested {
        "attested"
    } else {
        "not-attested"
    };
    format!(
        "{}\t{state}\t{kind}\t{attested}\t{}\t{}",
        app.client_id,
        app.name,
        app.redirect_uris.join(",")
    )
}
