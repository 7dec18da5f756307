//! Writes the default demo data set as one JSON file per resource, for validators.
//!
//! `cargo run -p demo-data --example dump -- OUTDIR [MEMBERS [EOBS_PER_MEMBER [SEED]]]`
//! then `scripts/validate-fhir OUTDIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use demo_data::{DemoConfig, generate};

fn arg<T: std::str::FromStr>(args: &[String], at: usize, default: T) -> Result<T, String> {
    match args.get(at) {
        Some(text) => text
            .parse()
            .map_err(|_| format!("argument {at} is not a number: {text}")),
        None => Ok(default),
    }
}

fn run(args: &[String]) -> Result<usize, String> {
    let out = PathBuf::from(
        args.first()
            .ok_or("usage: dump OUTDIR [MEMBERS [EOBS [SEED]]]")?,
    );
    let defaults = DemoConfig::default();
    let config = DemoConfig {
        members: arg(args, 1, defaults.members)?,
        eobs_per_member: arg(args, 2, defaults.eobs_per_member)?,
        seed: arg(args, 3, defaults.seed)?,
    };
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let data = generate(&config);
    for (resource_type, id, resource) in &data.resources {
        let path = out.join(format!("{resource_type}-{id}.json"));
        let text = serde_json::to_string_pretty(resource).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(data.resources.len())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(count) => {
            println!("wrote {count} resources");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("dump: {message}");
            ExitCode::FAILURE
        }
    }
}
