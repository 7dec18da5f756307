//! What `patient-access apps …` and `patient-access-admin apps …` share: the
//! `apps` subcommands and their arguments, and the output of `register` and `list`,
//! so that an operator who learnt one tool knows the other, and scripts can read both.

use clap::{Args, Subcommand};
use smart_server::{App, NewApp, Registered};

/// The `apps` subcommands. Each tool says where the registry is: `Registry` for every
/// subcommand, `RegisterAt` for `register` (on AWS it also needs the user pool, where
/// the app's identity-provider client is made).
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
    /// Disable an app: its grants end as if revoked.
    Disable {
        client_id: String,
        #[command(flatten)]
        at: Registry,
    },
}

/// `apps register`'s description of the app (each tool adds where to register it).
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    #[arg(long)]
    pub name: String,
    /// An exact redirect URI (repeat for several).
    #[arg(long = "redirect-uri", required = true)]
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
