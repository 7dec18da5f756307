//! The provider directory on the laptop: its own store (`DIR/directory.redb`, apart
//! from the members' `fhir.redb`), the demo directory on first start, `directory
//! load`, and the directory inbox that `serve` watches.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use directory_load::{FileReport, FileStatus, LoadConfig, Mode, PlanIdentity, load_file, mode_of};
use store_redb::RedbStore;

use crate::{DataDir, RunnerError};

/// Where `serve` picks up directory files (`.ndjson`, `.csv`).
pub const DIRECTORY_INBOX: &str = "directory-inbox";
const PROCESSED: &str = "directory-processed";
const REJECTED: &str = "directory-rejected";
const POLL: Duration = Duration::from_secs(1);
/// How long `directory load` waits for a running `serve` to take one file.
const INBOX_WAIT: Duration = Duration::from_secs(600);

/// The plan the local runner plays owns the demo networks and plan.
pub fn local_load_config() -> LoadConfig {
    LoadConfig {
        plan: PlanIdentity {
            organization_id: edi_fhir::ids::payer_org(demo_data::PAYER_ID),
            name: demo_data::PAYER_NAME.to_owned(),
        },
        // CMS: directory updates within 30 days.
        stale_after_days: 30,
    }
}

pub fn open_directory_store(data: &DataDir) -> Result<RedbStore, store_redb::OpenError> {
    RedbStore::open(data.directory_store_path())
}

/// The demo plan's directory, as its roster CSV through the same load path.
pub async fn load_demo_directory(store: &RedbStore) -> Result<FileReport, RunnerError> {
    let csv = demo_data::roster::roster_csv();
    let report = load_file(
        store,
        "demo-roster.snapshot.csv",
        csv.as_bytes(),
        Mode::Snapshot,
        &local_load_config(),
    )
    .await
    .map_err(|e| RunnerError::Store(e.to_string()))?;
    if report.status != FileStatus::Applied {
        return Err(RunnerError::Invalid(format!(
            "the demo directory was rejected: {}",
            report.summary()
        )));
    }
    Ok(report)
}

/// `directory load FILE…`: into the directory store, or through the running
/// server's directory inbox when `serve` holds it. Fails when any file was rejected.
pub async fn directory_load(
    data: DataDir,
    files: &[PathBuf],
    snapshot: bool,
) -> Result<(), RunnerError> {
    data.ensure()?;
    let all_applied = match open_directory_store(&data) {
        Ok(store) => {
            let mut ok = true;
            for path in files {
                let bytes = std::fs::read(path).map_err(|e| RunnerError::io(path, e))?;
                let name = path.display().to_string();
                let mode = if snapshot {
                    Mode::Snapshot
                } else {
                    mode_of(&name)
                };
                let report = load_file(&store, &name, &bytes, mode, &local_load_config())
                    .await
                    .map_err(|e| RunnerError::Store(e.to_string()))?;
                ok &= report.status == FileStatus::Applied;
                print_report(&report);
            }
            ok
        }
        Err(store_redb::OpenError::AlreadyOpen(_)) => {
            via_inbox(data.root(), files, snapshot).await?
        }
        Err(e) => return Err(RunnerError::Store(e.to_string())),
    };
    if all_applied {
        Ok(())
    } else {
        Err(RunnerError::Rejected("at least one directory file".into()))
    }
}

fn print_report(report: &FileReport) {
    println!("{}", report.summary());
    for p in report.problems.iter().take(50) {
        println!("  line {} {}: {}", p.line, p.field, p.reason);
    }
    if report.problems.len() > 50 {
        println!("  … {} more in the JSON report", report.problems.len() - 50);
    }
}

/// Hands each file to the running server's directory inbox (copied under a dot-name,
/// then renamed), waits until it is taken and prints the report it wrote.
async fn via_inbox(root: &Path, files: &[PathBuf], snapshot: bool) -> Result<bool, RunnerError> {
    let inbox = root.join(DIRECTORY_INBOX);
    std::fs::create_dir_all(&inbox).map_err(|e| RunnerError::io(&inbox, e))?;
    println!(
        "serve is running on {}: handing the files to its directory inbox",
        root.display()
    );
    let mut all_applied = true;
    for path in files {
        let mut name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| RunnerError::Invalid(format!("{} is not a file", path.display())))?;
        if snapshot && mode_of(&name) != Mode::Snapshot {
            name = match name.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem}.snapshot.{ext}"),
                None => format!("{name}.snapshot"),
            };
        }
        let staging = inbox.join(format!(".{name}.partial"));
        let dropped = inbox.join(&name);
        std::fs::copy(path, &staging).map_err(|e| RunnerError::io(&staging, e))?;
        std::fs::rename(&staging, &dropped).map_err(|e| RunnerError::io(&dropped, e))?;
        let deadline = std::time::Instant::now() + INBOX_WAIT;
        while dropped.exists() {
            if std::time::Instant::now() > deadline {
                return Err(RunnerError::Invalid(format!(
                    "{} is still in the inbox: is serve stuck?",
                    dropped.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let report = [PROCESSED, REJECTED].iter().find_map(|folder| {
            let bytes = std::fs::read(root.join(folder).join(format!("{name}.json"))).ok()?;
            serde_json::from_slice::<FileReport>(&bytes).ok()
        });
        match report {
            Some(report) => {
                all_applied &= report.status == FileStatus::Applied;
                print_report(&report);
            }
            None => {
                all_applied = false;
                println!("{}: the server left no report", path.display());
            }
        }
    }
    Ok(all_applied)
}

/// A load holds the whole file parsed (a 2.0 GB peak for 100,000 practitioners) and
/// glibc keeps what it freed in its arenas. Giving it back after a load keeps the
/// server's RSS to what it uses: 1.09 GB after that load, most of it redb's cache.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_freed_memory() {
    // SAFETY: malloc_trim only releases free memory; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_freed_memory() {}

/// Watches `DIR/directory-inbox/` as the S3 trigger runs the load on AWS: each
/// settled file is loaded and moved to `DIR/directory-processed/` or
/// `DIR/directory-rejected/`, with its JSON report beside it. A file whose load
/// fails in the store stays in the inbox and is tried again.
pub async fn watch_directory_inbox(
    store: Arc<RedbStore>,
    root: PathBuf,
    served: Arc<directory_api::ResponseCache>,
) {
    let inbox = root.join(DIRECTORY_INBOX);
    if let Err(e) = std::fs::create_dir_all(&inbox) {
        tracing::error!(path = %inbox.display(), error = %e, "cannot create the directory inbox");
        return;
    }
    let mut seen = std::collections::HashMap::new();
    loop {
        for name in crate::edi::settled_files(&inbox, &mut seen) {
            let path = inbox.join(&name);
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            match load_file(
                store.as_ref(),
                &name,
                &bytes,
                mode_of(&name),
                &local_load_config(),
            )
            .await
            {
                Ok(report) => {
                    tracing::info!("{}", report.summary());
                    // Before the report: whoever waits for it then sees the load.
                    served.directory_changed();
                    return_freed_memory();
                    let folder = root.join(if report.status == FileStatus::Applied {
                        PROCESSED
                    } else {
                        REJECTED
                    });
                    let moved = std::fs::create_dir_all(&folder)
                        .and_then(|()| {
                            std::fs::write(folder.join(format!("{name}.json")), report.to_json())
                        })
                        .and_then(|()| std::fs::rename(&path, folder.join(&name)));
                    if let Err(e) = moved {
                        tracing::error!(file = %name, error = %e, "could not file the directory report");
                    }
                }
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "directory file failed; it stays in the inbox")
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}
