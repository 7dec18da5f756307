//! A real local server (the one `patient-access serve` runs) on an ephemeral port, over
//! a fresh embedded store with the demo loaded the way `serve` loads it (X12 through
//! the ingest pipeline, plus what X12 cannot carry). What the tests expect is read from
//! that store, so they check what users see.
//!
//! One server is shared by every test in the binary, and they run in parallel, so the
//! shared one is read-only: a test that writes to the store starts its own
//! (`Harness::start`) and talks to it through `Harness::get`/`Harness::send`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fhir::ResourceType;
use fhir_store::{ListQuery, Partition, ResourceStore};
use patient_access::{DataDir, LocalServer, load_demo, router};
use reqwest::StatusCode;
use serde_json::Value;
use smart_auth::{AccessClaims, LocalIssuer};
use store_redb::RedbStore;

pub struct Harness {
    pub base: String,
    pub issuer: LocalIssuer,
    pub members: Vec<demo_data::DemoMember>,
    pub store: Arc<RedbStore>,
    pub runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

/// The server shared by every test: never write to its store.
pub fn harness() -> &'static Harness {
    HARNESS.get_or_init(Harness::start)
}

impl Harness {
    /// A server of one's own, for a test that changes the store.
    pub fn start() -> Harness {
        Harness::start_with_budget(None)
    }

    /// A server of one's own whose apps each have `budget` (the shared server has
    /// none: the suite's many requests share one client id).
    pub fn start_with_budget(budget: Option<fhir_store::budget::Budget>) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = DataDir::new(dir.path());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let config = demo_data::DemoConfig::default();
        let (base, issuer, store, members) = runtime.block_on(async {
            let store = Arc::new(RedbStore::open(data.store_path()).expect("store"));
            let members = load_demo(Arc::clone(&store), &config, None)
                .await
                .expect("demo data");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let base = format!("http://{}", listener.local_addr().expect("addr"));
            let issuer =
                LocalIssuer::load_or_create(&data.issuer_dir(), base.clone(), base.clone())
                    .expect("issuer");
            let server = LocalServer::new(
                Arc::clone(&store),
                &issuer,
                &data.cursor_keys().await.expect("secret"),
                &base,
            )
            .and_then(|server| server.client_budget(budget))
            .expect("server");
            tokio::spawn(async move { axum::serve(listener, router(Arc::new(server))).await });
            (base, issuer, store, members)
        });
        Harness {
            base,
            issuer,
            members,
            store,
            runtime,
            _dir: dir,
        }
    }

    pub fn member(&self, n: usize) -> &str {
        &self.members[n].patient_id
    }

    pub fn token(&self, patient: &str, scope: &str) -> String {
        self.token_for_client(patient, scope, "test-client")
    }

    pub fn token_for_client(&self, patient: &str, scope: &str, client: &str) -> String {
        let claims = AccessClaims::for_member(patient, client, scope, Duration::from_secs(600));
        self.issuer.mint(&claims).expect("mint")
    }

    /// Ids of the stored resources of one type whose compartment is `patient`, oldest
    /// first.
    pub fn owned(&self, resource_type: ResourceType, patient: &str) -> Vec<String> {
        self.stored(Partition::Compartment {
            patient: patient.to_owned(),
            resource_type,
        })
        .into_iter()
        .map(|(id, _)| id)
        .collect()
    }

    /// The stored directory resources of one type (Organization, Practitioner), with
    /// their JSON.
    pub fn directory(&self, resource_type: ResourceType) -> Vec<(String, Value)> {
        self.stored(Partition::Type(resource_type))
    }

    fn stored(&self, partition: Partition) -> Vec<(String, Value)> {
        let page = self
            .runtime
            .block_on(self.store.list(ListQuery::new(partition, 10_000)))
            .expect("list the store");
        assert!(!page.more, "more than 10,000 resources in one partition");
        page.entries
            .into_iter()
            .map(|(_, r)| {
                let json = serde_json::from_str(&r.body).expect("stored JSON");
                (r.id, json)
            })
            .collect()
    }
}

/// What one HTTP exchange returned.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

/// A GET to the shared server.
pub fn get(path: &str, token: Option<&str>) -> Reply {
    harness().get(path, token)
}

/// A form POST to the shared server.
pub fn post_form(path: &str, token: Option<&str>, body: &str) -> Reply {
    send(
        reqwest::Method::POST,
        path,
        token,
        Some(body.to_owned()),
        &[("content-type", "application/x-www-form-urlencoded")],
    )
}

/// Any request to the shared server.
pub fn send(
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> Reply {
    harness().send(method, path, token, body, headers)
}

impl Harness {
    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(reqwest::Method::GET, path, token, None, &[])
    }

    pub fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        };
        self.runtime.block_on(async {
            let mut request = reqwest::Client::new().request(method, &url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(body) = body {
                request = request.body(body);
            }
            let response = request.send().await.expect("server answers");
            let status = response.status();
            let headers = response.headers().clone();
            let text = response.text().await.expect("body");
            let json = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).expect("JSON body")
            };
            capture(&json);
            Reply {
                status,
                headers,
                json,
            }
        })
    }
}

/// Keeps every FHIR resource the tests receive, for the independent R4 validator that
/// the test command runs afterwards.
pub(crate) fn capture(json: &Value) {
    let Some(dir) = std::env::var_os("FHIR_CAPTURE_DIR") else {
        return;
    };
    if json.get("resourceType").is_none() {
        return;
    }
    let text = json.to_string();
    let digest = format!("{:016x}", fxhash(&text));
    let path = PathBuf::from(dir).join(format!("api-{digest}.json"));
    let _ = std::fs::write(path, text);
}

fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// The ids of a Bundle's entries with the given search mode.
pub fn entry_ids(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] == mode)
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["resource"]["resourceType"].as_str().unwrap_or("?"),
                        e["resource"]["id"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")?["url"]
        .as_str()
        .map(str::to_owned)
}

pub fn self_link(bundle: &Value) -> String {
    bundle["link"][0]["url"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Every page of a search, following `next` links.
pub fn all_pages(first: &str, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut reply = get(first, Some(token));
    let mut pages = 0;
    loop {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
        ids.extend(entry_ids(&reply.json, "match"));
        pages += 1;
        assert!(pages < 100, "paging does not end");
        match next_link(&reply.json) {
            Some(next) => reply = get(&next, Some(token)),
            None => return ids,
        }
    }
}

/// The `patient-access serve` binary itself (every endpoint: sign-in, member pages,
/// public pages, directory, Provider Access) on a free port, with dev tokens allowed;
/// [`Server::stop`] ends it with SIGINT (its graceful path).
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub async fn start(data: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("free port: {e}"));
        let child = Command::new(env!("CARGO_BIN_EXE_patient-access"))
            .args(["serve", "--allow-dev-tokens", "--port", &port.to_string()])
            .arg("--data")
            .arg(data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn serve: {e}"));
        let server = Server {
            child,
            base: format!("http://localhost:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            let answer = client.get(format!("{}/metadata", server.base)).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("serve did not start within two minutes");
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
