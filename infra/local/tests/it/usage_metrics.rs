//! Usage metrics end to end, on the real binary: apps read members' data through
//! `serve`, the audit lines become records, and `metrics` prints the CMS report, both
//! while `serve` runs (through its admin endpoint) and after it stopped (from the
//! store itself).

use std::process::{Command, Output};

use serde_json::Value;

use crate::support::Server;

fn patient_access(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patient-access"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run patient-access: {e}"))
}

fn stdout_of(args: &[&str]) -> String {
    let output = patient_access(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

async fn get(base: &str, token: &str, path: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn report(data: &str, year: i32) -> Value {
    let text = stdout_of(&[
        "metrics",
        "--data",
        data,
        "--year",
        &year.to_string(),
        "--plan-id",
        "H1234",
    ]);
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn counts(report: &Value) -> (u64, u64) {
    (
        report["members_with_app_access"]
            .as_u64()
            .unwrap_or(u64::MAX),
        report["members_with_repeat_app_access"]
            .as_u64()
            .unwrap_or(u64::MAX),
    )
}

#[tokio::test]
async fn app_reads_become_the_yearly_counts_that_metrics_prints() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().display().to_string();
    let server = Server::start(dir.path()).await;
    let members = stdout_of(&["members", "--data", &data]);
    let members: Vec<&str> = members.lines().collect();
    let token = |patient: &str, client: &str| {
        stdout_of(&[
            "token",
            "--data",
            &data,
            "--patient",
            patient,
            "--client-id",
            client,
        ])
    };
    let (first, second, third) = (members[0], members[1], members[2]);

    // The first member: two apps on the same day.
    let a = token(first, "app-a");
    assert_eq!(
        get(&server.base, &a, "/ExplanationOfBenefit?_count=5").await,
        200
    );
    assert_eq!(
        get(&server.base, &a, &format!("/Patient/{first}")).await,
        200
    );
    let b = token(first, "app-b");
    assert_eq!(get(&server.base, &b, "/Coverage").await, 200);
    // The second member: one app.
    let c = token(second, "app-a");
    assert_eq!(
        get(&server.base, &c, &format!("/Patient/{second}")).await,
        200
    );
    // The third member's app reads nothing of theirs: someone else's record (404).
    let d = token(third, "app-a");
    assert_eq!(
        get(&server.base, &d, &format!("/Patient/{first}")).await,
        404
    );

    let year = this_eastern_year();
    let while_serving = report(&data, year);
    assert_eq!(while_serving["year"], year);
    assert_eq!(while_serving["plan_ids"][0], "H1234");
    // One day of use each: nobody has two distinct days yet.
    assert_eq!(counts(&while_serving), (2, 0));
    assert_eq!(counts(&report(&data, year - 1)), (0, 0));

    // With the server stopped, `metrics` reads the store itself: the same numbers.
    server.stop();
    assert_eq!(counts(&report(&data, year)), (2, 0));
}

/// The year in US Eastern time now (the report's days are Eastern days).
fn this_eastern_year() -> i32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    usage_metrics::Day::of_unix_millis(now).map_or(0, |d| d.year())
}
