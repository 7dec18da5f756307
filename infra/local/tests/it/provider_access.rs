//! The Provider Access API end to end on the local server: a provider's system
//! registers with a key made here, gets a token with a signed assertion, and exports
//! its attributed members' data in bulk.

use member_consent::Sharing;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use backend_auth::NewBackendClient;
use backend_auth::testing::{ClientKey, token_form};
use patient_access::{DataDir, LocalServer, load_demo, router};
use reqwest::StatusCode;
use serde_json::Value;
use smart_auth::{AccessClaims, LocalIssuer};
use store_redb::RedbStore;

const NPI_A: &str = "1234567893";
const NPI_B: &str = "1245319599";

/// One plan's server with the demo members, for backend clients (also used by the
/// Payer-to-Payer tests).
pub(crate) struct Plan {
    pub(crate) base: String,
    pub(crate) store: Arc<RedbStore>,
    pub(crate) issuer: Arc<LocalIssuer>,
    members: Vec<String>,
    pub(crate) http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub(crate) async fn start() -> Plan {
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path());
    let store = Arc::new(RedbStore::open(data.store_path()).unwrap());
    let members = load_demo(Arc::clone(&store), &demo_data::DemoConfig::default(), None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.patient_id)
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = Arc::new(
        LocalIssuer::load_or_create(&data.issuer_dir(), base.clone(), base.clone()).unwrap(),
    );
    let auth = patient_access::auth::local_auth_server(
        Arc::clone(&store),
        Arc::clone(&issuer),
        &data.sign_in_keys().await.unwrap(),
        &base,
        &[],
    )
    .await
    .unwrap();
    let (bulk, member_match) = patient_access::provider_access::local_backend_apis(
        Arc::clone(&store),
        &issuer,
        &base,
        &dir.path().join("exports"),
        payer_to_payer::MemberMatchConfig::default(),
    );
    let server = LocalServer::new(
        Arc::clone(&store),
        &issuer,
        &data.cursor_keys().await.unwrap(),
        &base,
    )
    .unwrap()
    .with_auth(Arc::new(auth))
    .with_provider_access(Arc::new(bulk))
    .with_member_match(Arc::new(member_match));
    tokio::spawn(async move { axum::serve(listener, router(Arc::new(server))).await });
    Plan {
        base,
        store,
        issuer,
        members,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Plan {
    pub(crate) async fn register(&self, key: &ClientKey, npi: &str) -> String {
        let new = NewBackendClient {
            name: format!("Clinic {npi}"),
            jwks: Some(key.jwks()),
            scope: "system/*.rs".into(),
            provider_npis: vec![npi.into()],
            ..NewBackendClient::default()
        };
        backend_auth::clients::register(self.store.as_ref(), &new)
            .await
            .unwrap()
            .client_id
    }

    pub(crate) async fn token(&self, key: &ClientKey, client: &str) -> String {
        let assertion = key.assertion(client, &format!("{}/token", self.base), 120);
        let response = self
            .http
            .post(format!("{}/token", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(token_form(&assertion, "system/*.rs"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "bearer");
        assert!(body["expires_in"].as_u64().unwrap() <= 300);
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn get(
        &self,
        path: &str,
        token: Option<&str>,
        prefer: bool,
    ) -> reqwest::Response {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.http.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if prefer {
            request = request
                .header("prefer", "respond-async")
                .header("accept", "application/fhir+json");
        }
        request.send().await.unwrap()
    }

    /// Kick-off, poll to the end; the manifest.
    async fn export(&self, token: &str, query: &str) -> Value {
        self.export_at(&format!("/Group/npi-{NPI_A}/$export{query}"), token)
            .await
    }

    /// Kick-off at `path`, poll to the end; the manifest.
    pub(crate) async fn export_at(&self, path: &str, token: &str) -> Value {
        let response = self.get(path, Some(token), true).await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "{:?}",
            response.text().await
        );
        let status_url = response.headers()["content-location"]
            .to_str()
            .unwrap()
            .to_owned();
        for _ in 0..300 {
            let response = self.get(&status_url, Some(token), false).await;
            match response.status() {
                StatusCode::ACCEPTED => {
                    assert!(response.headers().contains_key("x-progress"));
                    assert!(response.headers().contains_key("retry-after"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                StatusCode::OK => return response.json().await.unwrap(),
                other => panic!("status {other}: {:?}", response.text().await),
            }
        }
        panic!("the export did not finish")
    }

    /// Every resource of every output file, each line checked and captured for the R4
    /// validator.
    pub(crate) async fn download(&self, token: &str, manifest: &Value) -> Vec<Value> {
        let mut all = Vec::new();
        for file in manifest["output"].as_array().unwrap() {
            let response = self
                .get(file["url"].as_str().unwrap(), Some(token), false)
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                response.headers()["content-type"],
                "application/fhir+ndjson"
            );
            let text = response.text().await.unwrap();
            let lines: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(lines.len() as u64, file["count"].as_u64().unwrap());
            for resource in &lines {
                assert_eq!(resource["resourceType"], file["type"]);
                crate::support::capture(resource);
            }
            all.extend(lines);
        }
        all
    }
}

fn patients_of(resources: &[Value]) -> BTreeSet<String> {
    resources
        .iter()
        .filter(|r| r["resourceType"] == "Patient")
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_exports_its_attributed_members_without_the_money() {
    let plan = start().await;
    let m = &plan.members;
    assert!(m.len() >= 5, "the demo has enough members");
    let key = ClientKey::es384("clinic-a-1");
    let client = plan.register(&key, NPI_A).await;
    let other_key = ClientKey::rs384("clinic-b-1");
    let other = plan.register(&other_key, NPI_B).await;
    let token = plan.token(&key, &client).await;
    let other_token = plan.token(&other_key, &other).await;

    // The plan loads attribution: m0..m3 current, m4's period is over; m2 opts out in
    // the file's column and m3 through the plan's command.
    let csv = format!(
        "provider_npi,member_id,start,end,opt_out\n\
         {NPI_A},{},2020-01-01,,\n{NPI_A},{},2020-01-01,,N\n{NPI_A},{},2020-01-01,,Y\n\
         {NPI_A},{},2020-01-01,,\n{NPI_A},{},2019-01-01,2020-12-31,\n{NPI_B},{},2020-01-01,,\n",
        m[0], m[1], m[2], m[3], m[4], m[4]
    );
    let report = attribution::load_file(plan.store.as_ref(), "attribution.csv", csv.as_bytes())
        .await
        .unwrap();
    assert_eq!(report.status, "accepted", "{report:?}");
    patient_access::sharing::set(plan.store.as_ref(), Sharing::ProviderAccess, &m[3], false)
        .await
        .unwrap();

    // Groups: its own, by identifier; another provider's is 404.
    let response = plan
        .get(
            &format!("/Group?identifier=http://hl7.org/fhir/sid/us-npi|{NPI_A}"),
            Some(&token),
            false,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let bundle: Value = response.json().await.unwrap();
    assert_eq!(bundle["entry"].as_array().unwrap().len(), 1);
    crate::support::capture(&bundle);
    let response = plan
        .get(&format!("/Group/npi-{NPI_A}"), Some(&token), false)
        .await;
    let group: Value = response.json().await.unwrap();
    assert_eq!(group["member"].as_array().unwrap().len(), 5);
    crate::support::capture(&group);
    assert_eq!(
        plan.get(&format!("/Group/npi-{NPI_B}"), Some(&token), false)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        plan.get(&format!("/Group/npi-{NPI_B}/$export"), Some(&token), true)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Tokens: a member token is refused here, a backend token on the member API.
    let member = plan
        .issuer
        .mint(&AccessClaims::for_member(
            &m[0],
            "app",
            "patient/*.rs",
            Duration::from_secs(300),
        ))
        .unwrap();
    assert_eq!(
        plan.get(&format!("/Group/npi-{NPI_A}"), Some(&member), false)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        plan.get(&format!("/Patient/{}", m[0]), Some(&token), false)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Kick-off rules.
    assert_eq!(
        plan.get(&format!("/Group/npi-{NPI_A}/$export"), Some(&token), false)
            .await
            .status(),
        StatusCode::BAD_REQUEST,
        "Prefer: respond-async is required"
    );
    assert_eq!(
        plan.get(
            &format!("/Group/npi-{NPI_A}/$export?_elements=id"),
            Some(&token),
            true
        )
        .await
        .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        plan.get(
            &format!("/Group/npi-{NPI_A}/$export?_outputFormat=text/csv"),
            Some(&token),
            true
        )
        .await
        .status(),
        StatusCode::BAD_REQUEST
    );

    // The export.
    let manifest = plan
        .export(&token, "?_outputFormat=application/fhir%2Bndjson")
        .await;
    assert_eq!(manifest["requiresAccessToken"], true);
    assert!(manifest["request"].as_str().unwrap().contains("$export"));
    assert!(manifest["error"].as_array().unwrap().is_empty());
    let resources = plan.download(&token, &manifest).await;
    let expected: BTreeSet<String> = [m[0].clone(), m[1].clone()].into();
    assert_eq!(
        patients_of(&resources),
        expected,
        "only current, not opted-out members"
    );
    let eobs: Vec<&Value> = resources
        .iter()
        .filter(|r| r["resourceType"] == "ExplanationOfBenefit")
        .collect();
    assert!(!eobs.is_empty());
    for eob in &eobs {
        assert!(eob.get("payment").is_none() && eob.get("total").is_none());
        assert!(
            !eob.to_string().contains("\"amount\""),
            "no money in a Basis EOB"
        );
        assert!(
            eob["meta"]["profile"][0]
                .as_str()
                .unwrap()
                .contains("-Basis")
        );
        let patient = eob["patient"]["reference"]
            .as_str()
            .unwrap()
            .trim_start_matches("Patient/");
        assert!(expected.contains(patient));
    }
    // Each resource exactly once.
    let keys: Vec<String> = resources
        .iter()
        .map(|r| format!("{}/{}", r["resourceType"], r["id"]))
        .collect();
    assert_eq!(keys.iter().collect::<BTreeSet<_>>().len(), keys.len());
    // The member's own API still has the full EOB.
    let eob_id = eobs[0]["id"].as_str().unwrap();
    let owner = eobs[0]["patient"]["reference"]
        .as_str()
        .unwrap()
        .trim_start_matches("Patient/")
        .to_owned();
    let member = plan
        .issuer
        .mint(&AccessClaims::for_member(
            &owner,
            "app",
            "patient/*.rs",
            Duration::from_secs(300),
        ))
        .unwrap();
    let full: Value = plan
        .get(
            &format!("/ExplanationOfBenefit/{eob_id}"),
            Some(&member),
            false,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        full.get("total").is_some() || full.get("payment").is_some(),
        "the member keeps the money fields"
    );

    // Files: only the client that asked.
    let url = manifest["output"][0]["url"].as_str().unwrap();
    assert_eq!(
        plan.get(url, Some(&other_token), false).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        plan.get(url, None, false).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // _type and _since.
    let only_patients = plan.export(&token, "?_type=Patient").await;
    assert!(
        only_patients["output"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["type"] == "Patient")
    );
    let since = manifest["transactionTime"].as_str().unwrap();
    let nothing_new = plan
        .export(&token, &format!("?_since={}", since.replace('+', "%2B")))
        .await;
    assert!(
        nothing_new["output"].as_array().unwrap().is_empty(),
        "nothing changed since"
    );

    // An opt-out takes effect for the next export.
    patient_access::sharing::set(plan.store.as_ref(), Sharing::ProviderAccess, &m[1], false)
        .await
        .unwrap();
    let later = plan.export(&token, "?_type=Patient").await;
    let resources = plan.download(&token, &later).await;
    assert_eq!(patients_of(&resources), [m[0].clone()].into());

    // Cancel: the job and its files are gone.
    let response = plan
        .get(&format!("/Group/npi-{NPI_A}/$export"), Some(&token), true)
        .await;
    let status_url = response.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_owned();
    let response = plan
        .http
        .delete(&status_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        plan.get(&status_url, Some(&token), false).await.status(),
        StatusCode::NOT_FOUND
    );
    let response = plan.get(url, Some(&token), false).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "another job's files are untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_allowed_every_member_exports_the_whole_roster_and_a_provider_cannot() {
    let plan = start().await;
    let payer_key = ClientKey::es384("payer-1");
    let payer = backend_auth::clients::register(
        plan.store.as_ref(),
        &NewBackendClient {
            name: "Another payer".into(),
            jwks: Some(payer_key.jwks()),
            scope: "system/*.rs".into(),
            all_members: true,
            ..NewBackendClient::default()
        },
    )
    .await
    .unwrap()
    .client_id;
    let token = plan.token(&payer_key, &payer).await;
    let manifest = plan.export_at("/Patient/$export", &token).await;
    let resources = plan.download(&token, &manifest).await;
    let everyone: BTreeSet<String> = plan.members.iter().cloned().collect();
    assert_eq!(patients_of(&resources), everyone, "every member, once");
    assert!(
        resources
            .iter()
            .filter(|r| r["resourceType"] == "ExplanationOfBenefit")
            .all(|r| r.get("payment").is_none() && r.get("total").is_none())
    );

    // A provider's client is limited to its attributed members.
    let clinic_key = ClientKey::rs384("clinic-1");
    let clinic = plan.register(&clinic_key, NPI_A).await;
    let token = plan.token(&clinic_key, &clinic).await;
    let response = plan.get("/Patient/$export", Some(&token), true).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
