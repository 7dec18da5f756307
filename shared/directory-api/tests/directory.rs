//! The Provider Directory API against both real stores, loaded through the one load
//! path, asked the way Plan-Net clients and Inferno ask. Every spec test runs twice,
//! on redb and on DynamoDB (served by moto: `scripts/with-moto cargo test -p
//! directory-api`; without `AWS_ENDPOINT_URL` the DynamoDB runs FAIL unless
//! `SKIP_AWS_TESTS=1`), as the storage conformance suite does. Every response is kept
//! for the FHIR validator when FHIR_CAPTURE_DIR is set.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use directory_api::{DirectoryApi, DirectoryConfig};
use directory_load::{FileStatus, LoadConfig, Mode, PlanIdentity, load_file};
use fhir_store::{KeyValueStore, ResourceStore};
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use smart_auth::CursorSealer;
use store_dynamodb::{DynamoStore, create_table};
use store_redb::RedbStore;

const BASE: &str = "http://localhost:8080/directory";

/// What the directory runs on: either store.
trait Store: ResourceStore + KeyValueStore + Send + Sync + 'static {}
impl<T: ResourceStore + KeyValueStore + Send + Sync + 'static> Store for T {}

struct Directory<S> {
    api: DirectoryApi<S>,
    store: Arc<S>,
}

fn config() -> LoadConfig {
    LoadConfig {
        plan: PlanIdentity {
            organization_id: "org-payer-999996666".into(),
            name: "Demo Health Plan".into(),
        },
        stale_after_days: 30,
    }
}

/// Runs a spec test on a fresh redb directory.
async fn on_redb<F: AsyncFnOnce(Directory<RedbStore>)>(test: F) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(RedbStore::open(dir.path().join("directory.redb")).expect("open"));
    test(directory(store).await).await;
}

/// Runs a spec test on a fresh redb directory, with the answers and the store's
/// reads kept in memory as the local server and the Lambda function keep them: the
/// same answers, through the cache's code paths (term members, shared pages).
async fn on_redb_cached<F: AsyncFnOnce(Directory<RedbStore>)>(test: F) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(RedbStore::open(dir.path().join("directory.redb")).expect("open"));
    let d = directory(store).await;
    test(with_cache(&d)).await;
}

/// Runs a spec test on a fresh DynamoDB table (moto), dropped afterwards.
async fn on_dynamodb<F: AsyncFnOnce(Directory<DynamoStore>)>(name: &str, test: F) {
    let Some(config) = aws_test_config::local_sdk_config().await else {
        return;
    };
    let client = aws_sdk_dynamodb::Client::new(&config);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let table: String = format!(
        "d-{}-{}-{nanos}",
        name.replace('_', "-"),
        std::process::id()
    )
    .chars()
    .take(255)
    .collect();
    create_table(&client, &table)
        .await
        .expect("create the test table from infra/dynamodb-table.json");
    let store = Arc::new(DynamoStore::new(client.clone(), table.clone()));
    test(directory(store).await).await;
    let _ = client.delete_table().table_name(&table).send().await;
}

/// Every spec test, once per store, and once more on redb with the caches on.
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod redb {
            $(
                #[tokio::test]
                async fn $test() {
                    super::on_redb(super::$test).await;
                }
            )*
        }
        mod redb_cached {
            $(
                #[tokio::test]
                async fn $test() {
                    super::on_redb_cached(super::$test).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $test() {
                    super::on_dynamodb(stringify!($test), super::$test).await;
                }
            )*
        }
    };
}

/// The demo roster, plus an Endpoint and a HealthcareService as NDJSON.
async fn directory<S: Store>(store: Arc<S>) -> Directory<S> {
    let csv = demo_data::roster::roster_csv();
    let report = load_file(
        store.as_ref(),
        "roster.snapshot.csv",
        csv.as_bytes(),
        Mode::Snapshot,
        &config(),
    )
    .await
    .expect("store");
    assert_eq!(report.status, FileStatus::Applied, "{:?}", report.problems);
    let extra = [
        json!({"resourceType": "Endpoint", "id": "ep-1", "status": "active",
               "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code": "hl7-fhir-rest"},
               "payloadType": [{"text": "FHIR"}], "address": "https://ep.example/fhir",
               "managingOrganization": {"reference": "Organization/org-payer-999996666"}}),
        json!({"resourceType": "HealthcareService", "id": "hs-1", "active": true,
               "category": [{"coding": [{"system": "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/HealthcareServiceCategoryCS", "code": "prov", "display": "Medical Provider"}]}],
               "name": "Urgent Care", "providedBy": {"reference": "Organization/org-payer-999996666"},
               "endpoint": [{"reference": "Endpoint/ep-1"}]}),
    ];
    let ndjson: String = extra.iter().map(|v| format!("{v}\n")).collect();
    let report = load_file(
        store.as_ref(),
        "extra.ndjson",
        ndjson.as_bytes(),
        Mode::ChangeSet,
        &config(),
    )
    .await
    .expect("store");
    assert_eq!(report.status, FileStatus::Applied, "{:?}", report.problems);
    let sealer = Arc::new(CursorSealer::new([7; 32]));
    let api = DirectoryApi::new(Arc::clone(&store), sealer, DirectoryConfig::new(BASE));
    Directory { api, store }
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    json: Value,
}

impl<S: Store> Directory<S> {
    async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("/directory{path}"));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let response = self
            .api
            .handle(builder.body(Bytes::from(body.to_owned())).expect("request"))
            .await;
        let status = response.status();
        let headers = response.headers().clone();
        let json = if response.body().is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(response.body()).expect("JSON")
        };
        capture(&json);
        Reply {
            status,
            headers,
            json,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, &[], "").await
    }

    /// The match ids of a search, after asserting 200.
    async fn ids(&self, path: &str) -> Vec<String> {
        let reply = self.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.json);
        entries(&reply.json, "match")
    }
}

fn capture(json: &Value) {
    let Some(dir) = std::env::var_os("FHIR_CAPTURE_DIR") else {
        return;
    };
    if json.get("resourceType").is_none() {
        return;
    }
    let text = json.to_string();
    let digest = text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let _ = std::fs::write(
        PathBuf::from(dir).join(format!("directory-{digest:016x}.json")),
        text,
    );
}

fn entries(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|list| {
            list.iter()
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

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")?["url"]
        .as_str()
        .map(|u| u.trim_start_matches(BASE).to_owned())
}

/// A demo NPI from its first nine digits (the check digit computed).
fn npi(base: &str) -> String {
    (0..10)
        .map(|d| format!("{base}{d}"))
        .find(|c| plan_net::checks::npi_is_valid(c))
        .expect("npi")
}

fn moreno() -> String {
    format!("Practitioner/practitioner-npi-{}", npi("198700001"))
}

fn location_of(org_npi_base: &str) -> String {
    format!("location-{}", npi(org_npi_base))
}

async fn every_stored_resource_carries_its_plan_net_profile_and_is_public<S: Store>(
    d: Directory<S>,
) {
    for t in [
        "Practitioner",
        "PractitionerRole",
        "Location",
        "Organization",
        "OrganizationAffiliation",
        "InsurancePlan",
        "Endpoint",
        "HealthcareService",
    ] {
        let reply = d
            .request(
                Method::GET,
                &format!("/{t}"),
                &[("authorization", "Bearer not-a-token")],
                "",
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{t}: a present token is ignored, never rejected"
        );
        let list = reply.json["entry"].as_array().cloned().unwrap_or_default();
        assert!(
            !list.is_empty(),
            "{t}: a parameterless search pages the type"
        );
        for e in list {
            let profile = e["resource"]["meta"]["profile"][0].as_str().unwrap_or("");
            assert!(
                profile.contains("davinci-pdex-plan-net/StructureDefinition/plannet-"),
                "{t}: {profile}"
            );
            assert!(e["resource"]["meta"]["lastUpdated"].is_string());
        }
    }
    let network = d.get("/Organization/network-demo-ppo").await;
    assert_eq!(
        network.json["meta"]["profile"][0],
        "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/plannet-Network"
    );
}

async fn read_vread_and_caching<S: Store>(d: Directory<S>) {
    let loc = format!("/Location/{}", location_of("184300005"));
    let reply = d.get(&loc).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let etag = reply.headers["etag"].to_str().expect("etag").to_owned();
    assert!(
        reply.headers["cache-control"]
            .to_str()
            .expect("cc")
            .starts_with("public, max-age=")
    );
    let again = d
        .request(Method::GET, &loc, &[("if-none-match", &etag)], "")
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(
        d.get(&format!("{loc}/_history/1")).await.status,
        StatusCode::OK
    );
    assert_eq!(d.get("/Location/nope").await.status, StatusCode::NOT_FOUND);
    let search = d.get("/Practitioner?name=moreno").await;
    let tag = search.headers["etag"].to_str().expect("etag").to_owned();
    let cached = d
        .request(
            Method::GET,
            "/Practitioner?name=moreno",
            &[("if-none-match", &tag)],
            "",
        )
        .await;
    assert_eq!(
        cached.status,
        StatusCode::NOT_MODIFIED,
        "searches are cacheable too"
    );
    // The member API's types are not here.
    assert_eq!(d.get("/Patient").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        d.get("/ExplanationOfBenefit/x").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn metadata_is_generated_from_the_tables_and_says_when_the_directory_was_loaded<S: Store>(
    d: Directory<S>,
) {
    let cs = d.get("/metadata").await.json;
    assert_eq!(
        cs["instantiates"][0],
        "http://hl7.org/fhir/us/davinci-pdex-plan-net/CapabilityStatement/plan-net"
    );
    let resources = cs["rest"][0]["resource"].as_array().expect("resources");
    assert_eq!(resources.len(), 8);
    for r in resources {
        let t: fhir::ResourceType = r["type"].as_str().unwrap_or("").parse().expect("type");
        let advertised: Vec<&str> = r["searchParam"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str())
            .collect();
        let implemented: Vec<&str> = plan_net::params::params(t).iter().map(|p| p.name).collect();
        assert_eq!(advertised, implemented, "{t}");
    }
    assert!(
        cs["implementation"]["description"]
            .as_str()
            .unwrap_or("")
            .contains("last loaded at")
    );
}

async fn shall_parameters_alone_and_combined<S: Store>(d: Directory<S>) {
    assert_eq!(d.ids("/Practitioner?family=moreno").await, [moreno()]);
    assert_eq!(d.ids("/Practitioner?name:exact=Moreno").await, [moreno()]);
    assert_eq!(d.ids("/Practitioner?given:contains=lici").await, [moreno()]);
    let family_med = d
        .ids("/PractitionerRole?specialty=http://nucc.org/provider-taxonomy|207Q00000X")
        .await;
    assert_eq!(family_med.len(), 1);
    assert_eq!(
        d.ids("/PractitionerRole?specialty:text=family").await,
        family_med
    );
    let in_network = d
        .ids("/PractitionerRole?network=Organization/network-demo-ppo")
        .await;
    assert_eq!(
        in_network.len(),
        8,
        "every demo practitioner is in the demo network"
    );
    let dental = location_of("184300005");
    let combined = d
        .ids(&format!(
            "/PractitionerRole?network=network-demo-ppo&specialty=1223G0001X&location={dental}"
        ))
        .await;
    assert_eq!(
        combined.len(),
        2,
        "two dentists at the dental practice: {combined:?}"
    );
    let westerville = vec![format!("Location/{dental}")];
    assert_eq!(
        d.ids("/Location?address-city=westerville").await,
        westerville
    );
    assert_eq!(
        d.ids("/Location?address-postalcode=43081&address-state=OH")
            .await,
        westerville
    );
    assert_eq!(
        d.ids("/Organization?type=ntwk").await,
        ["Organization/network-demo-ppo"]
    );
    assert_eq!(
        d.ids("/InsurancePlan?name=demo").await,
        ["InsurancePlan/plan-demo-ppo"]
    );
    assert_eq!(
        d.ids("/Endpoint?organization=org-payer-999996666").await,
        ["Endpoint/ep-1"]
    );
    assert_eq!(
        d.ids("/HealthcareService?endpoint=ep-1&service-category=prov")
            .await,
        ["HealthcareService/hs-1"]
    );
    assert_eq!(
        d.ids("/OrganizationAffiliation?network=network-demo-ppo")
            .await
            .len(),
        7
    );
    assert!(d.ids("/Practitioner?name=nobody").await.is_empty());
}

async fn forward_chains_resolve_the_inner_search_first<S: Store>(d: Directory<S>) {
    let dentists = d
        .ids("/PractitionerRole?location.address-city=Westerville&specialty=1223G0001X")
        .await;
    assert_eq!(dentists.len(), 2);
    assert_eq!(
        d.ids("/PractitionerRole?practitioner.name=moreno")
            .await
            .len(),
        1
    );
    assert_eq!(d.ids("/PractitionerRole?network.name=demo").await.len(), 8);
    assert_eq!(
        d.ids("/HealthcareService?organization.name=demo").await,
        ["HealthcareService/hs-1"]
    );
    let undeclared = d.get("/PractitionerRole?practitioner.identifier=1").await;
    assert_eq!(
        undeclared.status,
        StatusCode::BAD_REQUEST,
        "a chain not declared is refused"
    );
    assert_eq!(undeclared.json["resourceType"], "OperationOutcome");
}

async fn reverse_chains_with_has<S: Store>(d: Directory<S>) {
    let dentists = d
        .ids("/Practitioner?_has:PractitionerRole:practitioner:specialty=1223G0001X")
        .await;
    assert_eq!(dentists.len(), 2);
    let in_network = d
        .ids("/Practitioner?_has:PractitionerRole:practitioner:network=Organization/network-demo-ppo")
        .await;
    assert_eq!(in_network.len(), 8);
    let orgs = d
        .ids("/Organization?_has:OrganizationAffiliation:participating-organization:network=network-demo-ppo")
        .await;
    assert_eq!(orgs.len(), 7);
    let westerville = d
        .ids("/Practitioner?_has:PractitionerRole:practitioner:location.address-city=westerville")
        .await;
    assert_eq!(
        westerville, dentists,
        "_has whose inner parameter is itself a chain"
    );
}

async fn includes_revincludes_and_iterate<S: Store>(d: Directory<S>) {
    let reply = d
        .get("/PractitionerRole?specialty=1223G0001X&_include=PractitionerRole:practitioner&_include=PractitionerRole:location")
        .await;
    let included = entries(&reply.json, "include");
    assert_eq!(
        included
            .iter()
            .filter(|i| i.starts_with("Practitioner/"))
            .count(),
        2
    );
    assert_eq!(
        included
            .iter()
            .filter(|i| i.starts_with("Location/"))
            .count(),
        1
    );
    let reply = d
        .get("/Practitioner?family=moreno&_revinclude=PractitionerRole:practitioner")
        .await;
    assert_eq!(entries(&reply.json, "include").len(), 1);
    let reply = d
        .get("/PractitionerRole?practitioner.name=moreno&_include=PractitionerRole:network&_include:iterate=Organization:partof")
        .await;
    let included = entries(&reply.json, "include");
    assert!(included.contains(&"Organization/network-demo-ppo".to_owned()));
    assert!(
        included.contains(&"Organization/org-payer-999996666".to_owned()),
        "iterate follows the network to the plan: {included:?}"
    );
    let location = d
        .get("/Location?address-city=westerville&_revinclude=PractitionerRole:location&_revinclude=OrganizationAffiliation:location")
        .await;
    assert_eq!(entries(&location.json, "include").len(), 3);
}

async fn paging_through_a_type_with_the_sealed_cursor<S: Store>(d: Directory<S>) {
    let mut ids = Vec::new();
    let mut path = "/PractitionerRole?_count=3".to_owned();
    for _ in 0..10 {
        let reply = d.get(&path).await;
        assert_eq!(reply.status, StatusCode::OK);
        ids.extend(entries(&reply.json, "match"));
        match next_link(&reply.json) {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(ids.len(), 8);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "no resource twice across pages");
    let tampered = d.get("/PractitionerRole?_count=3&_cursor=abc").await;
    assert_eq!(tampered.status, StatusCode::BAD_REQUEST);
    let clamped = d.get("/Location?_count=100000").await;
    assert!(
        clamped.json["link"][0]["url"]
            .as_str()
            .unwrap_or("")
            .contains("_count=100")
    );
}

async fn near_finds_within_the_distance_nearest_first<S: Store>(d: Directory<S>) {
    let dayton = format!("Location/{}", location_of("184300002"));
    let near = d.ids("/Location?near=39.9612|-82.9988|10|km").await;
    assert!(!near.is_empty());
    assert!(!near.contains(&dayton), "Dayton is not near Columbus");
    let reply = d.get("/Location?near=39.76|-84.19|5|km&_sort=near").await;
    assert_eq!(entries(&reply.json, "match"), std::slice::from_ref(&dayton));
    let wide = d.ids("/Location?near=39.9612|-82.9988|150|km").await;
    assert!(wide.contains(&dayton));
    assert!(wide.len() > near.len());
    assert_ne!(wide.last(), wide.first());
    let roles = d
        .ids("/PractitionerRole?location.near=40.1262|-82.9291|3|km")
        .await;
    assert_eq!(roles.len(), 2, "the dentists in Westerville");
    assert_eq!(
        d.get("/Location?near=north|south").await.status,
        StatusCode::BAD_REQUEST
    );
}

async fn post_search_and_unknown_parameters_follow_the_patient_access_rules<S: Store>(
    d: Directory<S>,
) {
    let post = d
        .request(
            Method::POST,
            "/Practitioner/_search",
            &[("content-type", "application/x-www-form-urlencoded")],
            "family=moreno",
        )
        .await;
    assert_eq!(entries(&post.json, "match"), [moreno()]);
    let lenient = d.get("/Practitioner?family=moreno&colour=blue").await;
    assert_eq!(lenient.status, StatusCode::OK);
    assert!(
        !lenient.json["link"][0]["url"]
            .as_str()
            .unwrap_or("")
            .contains("colour")
    );
    let strict = d
        .request(
            Method::GET,
            "/Practitioner?colour=blue",
            &[("prefer", "handling=strict")],
            "",
        )
        .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    let write = d.request(Method::PUT, "/Practitioner/x", &[], "{}").await;
    assert_eq!(write.status, StatusCode::METHOD_NOT_ALLOWED);
}

async fn bad_files_are_reported_and_change_nothing<S: Store>(d: Directory<S>) {
    let count = |v: &Value| v["entry"].as_array().map_or(0, Vec::len);
    let before = count(&d.get("/Practitioner?_count=100").await.json);
    let mut long = vec![b' '; directory_load::MAX_LINE_BYTES + 1];
    long.push(b'\n');
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "malformed.ndjson",
            b"{\"resourceType\": \"Practitioner\", \"id\": \"ok-1\", \"name\": [{\"family\": \"A\"}]}\n{not json\n".to_vec(),
            "not valid JSON",
        ),
        (
            "unknown.ndjson",
            b"{\"resourceType\": \"Patient\", \"id\": \"p\"}\n".to_vec(),
            "not one of the directory's types",
        ),
        (
            "dangling.ndjson",
            b"{\"resourceType\": \"PractitionerRole\", \"id\": \"r-x\", \"active\": true, \"practitioner\": {\"reference\": \"Practitioner/missing\"}}\n".to_vec(),
            "does not resolve",
        ),
        (
            "dupes.ndjson",
            b"{\"resourceType\": \"Practitioner\", \"id\": \"d\", \"name\": [{\"family\": \"A\"}]}\n{\"resourceType\": \"Practitioner\", \"id\": \"d\", \"name\": [{\"family\": \"B\"}]}\n".to_vec(),
            "also on line 1",
        ),
        (
            "npi.ndjson",
            b"{\"resourceType\": \"Practitioner\", \"id\": \"n\", \"name\": [{\"family\": \"A\"}], \"identifier\": [{\"system\": \"http://hl7.org/fhir/sid/us-npi\", \"value\": \"1234567890\"}]}\n".to_vec(),
            "check digit",
        ),
        (
            "columns.csv",
            b"npi,name\n1234567893,Smith\n".to_vec(),
            "missing from the header",
        ),
        ("long.ndjson", long, "longer than 10 MiB"),
        ("roster.txt", b"hello".to_vec(), "unknown file type"),
    ];
    for (name, bytes, expected) in cases {
        let report = load_file(d.store.as_ref(), name, &bytes, Mode::ChangeSet, &config())
            .await
            .expect("store");
        assert_eq!(report.status, FileStatus::Rejected, "{name}");
        assert!(
            report.problems.iter().any(|p| p.reason.contains(expected)),
            "{name}: {:?}",
            report.problems
        );
        assert!(report.problems.iter().all(|p| !p.field.is_empty()));
    }
    let rows = demo_data::roster::roster_csv()
        .lines()
        .take(2)
        .collect::<Vec<_>>()
        .join("\n")
        .replace(",OH,", ",ZZ,");
    let report = load_file(
        d.store.as_ref(),
        "state.csv",
        rows.as_bytes(),
        Mode::ChangeSet,
        &config(),
    )
    .await
    .expect("store");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.line == 2 && p.field == "state"),
        "{:?}",
        report.problems
    );
    let after = count(&d.get("/Practitioner?_count=100").await.json);
    assert_eq!(
        before, after,
        "rejected files leave the directory unchanged"
    );
}

async fn reloading_converges_and_a_snapshot_ends_what_it_no_longer_holds<S: Store>(
    d: Directory<S>,
) {
    let csv = demo_data::roster::roster_csv();
    let again = load_file(
        d.store.as_ref(),
        "roster.snapshot.csv",
        csv.as_bytes(),
        Mode::Snapshot,
        &config(),
    )
    .await
    .expect("store");
    assert_eq!(
        again.counts.created + again.counts.updated,
        0,
        "re-applying changes nothing: {:?}",
        again.counts
    );
    assert_eq!(
        again.counts.ended, 2,
        "the snapshot ends the Endpoint and HealthcareService it does not hold"
    );
    // A snapshot without the last practitioner row: their Practitioner and role end.
    let lines: Vec<&str> = csv.lines().collect();
    let smaller = lines[..lines.len() - 1].join("\n");
    let report = load_file(
        d.store.as_ref(),
        "roster2.snapshot.csv",
        smaller.as_bytes(),
        Mode::Snapshot,
        &config(),
    )
    .await
    .expect("store");
    assert_eq!(report.status, FileStatus::Applied);
    assert_eq!(report.counts.ended, 2, "{:?}", report.counts);
    assert_eq!(d.ids("/PractitionerRole").await.len(), 7);
    assert_eq!(
        d.get("/Endpoint/ep-1").await.status,
        StatusCode::GONE,
        "ended: removed from search, 410 on read"
    );
    assert_eq!(
        d.get("/Endpoint/ep-1/_history/1").await.status,
        StatusCode::OK,
        "history stays"
    );
}

/// With the response cache on (as the local server and the Lambda function run), an
/// answer is served from memory while the directory is unchanged, and a load retires
/// it at once.
async fn a_cached_answer_lasts_until_the_next_load<S: Store>(d: Directory<S>) {
    let cached = with_cache(&d);
    let path = format!("/{}", moreno());
    let first = cached.get(&path).await;
    assert_eq!(first.status, StatusCode::OK);

    // A write that bypasses the loader (so the directory's generation stays) is not
    // seen: the answer comes from memory.
    rename_moreno_behind_the_loaders_back(&d).await;
    let second = cached.get(&path).await;
    assert_eq!(second.json, first.json, "served from memory");
    assert_eq!(
        without_cache(&d).get(&path).await.json["name"][0]["family"],
        "Renamed",
        "an uncached API reads the store"
    );

    // Any applied load moves the generation on: the next answer is fresh.
    load_an_unrelated_change(&d).await;
    assert_eq!(cached.get(&path).await.json["name"][0]["family"], "Renamed");
}

/// A search never asked before still reads from memory what earlier searches read
/// (key listings, probes, records) while the directory is unchanged; a load retires
/// those reads as it retires the answers.
async fn the_reads_behind_new_searches_last_until_the_next_load<S: Store>(d: Directory<S>) {
    let cached = with_cache(&d);
    let by_id = |count: u32| format!("/Practitioner?_id={}&_count={count}", moreno_id());
    let by_chain =
        |count: u32| format!("/PractitionerRole?practitioner.name=renamed&_count={count}");
    let family = |reply: Reply| reply.json["entry"][0]["resource"]["name"][0]["family"].clone();
    assert_eq!(family(cached.get(&by_id(1)).await), "Moreno");
    assert_eq!(cached.ids(&by_chain(1)).await.len(), 0);

    rename_moreno_behind_the_loaders_back(&d).await;
    assert_eq!(
        family(cached.get(&by_id(2)).await),
        "Moreno",
        "a new search, the record read before"
    );
    assert_eq!(
        cached.ids(&by_chain(2)).await.len(),
        0,
        "a new search, the name look-up listed before"
    );
    assert_eq!(
        d.ids(&by_chain(2)).await.len(),
        1,
        "the store has the new name"
    );

    load_an_unrelated_change(&d).await;
    assert_eq!(family(cached.get(&by_id(3)).await), "Renamed");
    assert_eq!(cached.ids(&by_chain(3)).await.len(), 1);
}

/// A cache that trusts the generation it read for a while (as the local server and
/// the Lambda function run, for a second) serves the directory it read until then,
/// unless the process that applied a load says so.
async fn a_held_generation_lasts_until_rechecked_or_told<S: Store>(d: Directory<S>) {
    let cache = Arc::new(
        directory_api::ResponseCache::new(1 << 20, std::time::Duration::from_secs(60))
            .with_generation_recheck(std::time::Duration::from_secs(3600)),
    );
    let mut cached = without_cache(&d);
    cached.api = cached.api.with_cache(Arc::clone(&cache));
    let path = format!("/{}", moreno());
    assert_eq!(cached.get(&path).await.json["name"][0]["family"], "Moreno");
    rename_moreno_behind_the_loaders_back(&d).await;
    load_an_unrelated_change(&d).await;
    assert_eq!(
        cached.get(&path).await.json["name"][0]["family"],
        "Moreno",
        "the generation read an hour ago is still trusted"
    );
    cache.directory_changed();
    assert_eq!(cached.get(&path).await.json["name"][0]["family"], "Renamed");
}

/// The API as the local server and the Lambda function run it: answers and reads
/// kept in memory while the directory is unchanged.
fn with_cache<S: Store>(d: &Directory<S>) -> Directory<S> {
    over_the_same_store(d, DirectoryConfig::new(BASE).with_response_cache(1 << 20))
}

/// The API with nothing kept in memory: what the store holds now.
fn without_cache<S: Store>(d: &Directory<S>) -> Directory<S> {
    over_the_same_store(d, DirectoryConfig::new(BASE))
}

/// Another API over `d`'s store, with `config`.
fn over_the_same_store<S: Store>(d: &Directory<S>, config: DirectoryConfig) -> Directory<S> {
    Directory {
        api: DirectoryApi::new(
            Arc::clone(&d.store),
            Arc::new(CursorSealer::new([7; 32])),
            config,
        ),
        store: Arc::clone(&d.store),
    }
}

fn moreno_id() -> String {
    moreno().trim_start_matches("Practitioner/").to_owned()
}

/// Renames Moreno with a store write that bypasses the loader, so the directory's
/// generation stays where it was.
async fn rename_moreno_behind_the_loaders_back<S: Store>(d: &Directory<S>) {
    let mut renamed = without_cache(d).get(&format!("/{}", moreno())).await.json;
    renamed["name"][0]["family"] = json!("Renamed");
    let write = fhir_store::ResourceWrite::indexed(
        fhir::ResourceType::Practitioner,
        moreno_id(),
        renamed,
        fhir_store::WriteCondition::Always,
    );
    ResourceStore::put(d.store.as_ref(), write)
        .await
        .expect("write");
}

/// Applies a change set that touches none of the resources the tests look at.
async fn load_an_unrelated_change<S: Store>(d: &Directory<S>) {
    let ndjson = json!({"resourceType": "Endpoint", "id": "ep-2", "status": "active",
        "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code": "hl7-fhir-rest"},
        "payloadType": [{"text": "FHIR"}], "address": "https://ep2.example/fhir"})
    .to_string();
    let report = load_file(
        d.store.as_ref(),
        "more.ndjson",
        ndjson.as_bytes(),
        Mode::ChangeSet,
        &config(),
    )
    .await
    .expect("store");
    assert_eq!(report.status, FileStatus::Applied, "{:?}", report.problems);
}

on_both_stores!(
    a_cached_answer_lasts_until_the_next_load,
    the_reads_behind_new_searches_last_until_the_next_load,
    a_held_generation_lasts_until_rechecked_or_told,
    every_stored_resource_carries_its_plan_net_profile_and_is_public,
    read_vread_and_caching,
    metadata_is_generated_from_the_tables_and_says_when_the_directory_was_loaded,
    shall_parameters_alone_and_combined,
    forward_chains_resolve_the_inner_search_first,
    reverse_chains_with_has,
    includes_revincludes_and_iterate,
    paging_through_a_type_with_the_sealed_cursor,
    near_finds_within_the_distance_nearest_first,
    post_search_and_unknown_parameters_follow_the_patient_access_rules,
    bad_files_are_reported_and_change_nothing,
    reloading_converges_and_a_snapshot_ends_what_it_no_longer_holds,
);

/// The benchmark the README names (run on demand):
/// `DIRECTORY_BENCH_PRACTITIONERS=100000 cargo test --release -p directory-api --test directory -- --ignored --nocapture bench`
/// A generated directory of N practitioners (one role each), N × 3/10 locations and
/// 20 networks, loaded through the one load path; then in-process search latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: minutes at full size"]
async fn bench_generated_directory() {
    let n: usize = std::env::var("DIRECTORY_BENCH_PRACTITIONERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let locations = (n * 3 / 10).max(1);
    let specialties = [
        "207Q00000X",
        "207R00000X",
        "207RC0000X",
        "207X00000X",
        "207P00000X",
        "1223G0001X",
        "208D00000X",
        "207V00000X",
        "2084P0800X",
        "208000000X",
    ];
    let mut lines = Vec::with_capacity(n * 2 + locations + 21);
    lines.push(
        json!({"resourceType": "Organization", "id": "plan", "active": true, "name": "Bench Plan"})
            .to_string(),
    );
    for k in 0..20 {
        lines.push(json!({"resourceType": "Organization", "id": format!("net-{k}"), "active": true, "name": format!("Network {k}"),
            "type": [{"coding": [{"system": plan_net::profiles::ORG_TYPE_SYSTEM, "code": "ntwk"}]}], "partOf": {"reference": "Organization/plan"}}).to_string());
    }
    for j in 0..locations {
        let lat = 38.5 + (j % 300) as f64 * 0.01;
        let lon = -84.8 + (j / 300 % 300) as f64 * 0.01;
        lines.push(json!({"resourceType": "Location", "id": format!("loc-{j}"), "name": format!("Site {j}"),
            "address": {"line": [format!("{j} Main St")], "city": "Columbus", "state": "OH", "postalCode": format!("{}", 43000 + j % 500)},
            "position": {"latitude": lat, "longitude": lon}}).to_string());
    }
    for i in 0..n {
        let id = format!("p-{i}");
        lines.push(json!({"resourceType": "Practitioner", "id": id, "active": true, "name": [{"family": format!("Family{i}"), "given": ["Pat"]}]}).to_string());
        lines.push(json!({"resourceType": "PractitionerRole", "id": format!("r-{i}"), "active": true,
            "practitioner": {"reference": format!("Practitioner/{id}")},
            "location": [{"reference": format!("Location/loc-{}", i % locations)}],
            "specialty": [{"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": specialties[i % specialties.len()]}]}],
            "extension": [{"url": plan_net::profiles::NETWORK_REFERENCE_EXTENSION, "valueReference": {"reference": format!("Organization/net-{}", i % 20)}}]}).to_string());
    }
    let file = lines.join("\n");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(RedbStore::open(dir.path().join("bench.redb")).expect("open"));
    let started = std::time::Instant::now();
    let report = load_file(
        store.as_ref(),
        "bench.ndjson",
        file.as_bytes(),
        Mode::Snapshot,
        &config(),
    )
    .await
    .expect("store");
    assert_eq!(
        report.status,
        FileStatus::Applied,
        "{:?}",
        &report.problems[..report.problems.len().min(5)]
    );
    let load = started.elapsed();
    let peak_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    println!(
        "load: {} resources ({} bytes) in {:.1} s; peak {peak_kb}",
        report.counts.resources,
        file.len(),
        load.as_secs_f64()
    );
    let api = DirectoryApi::new(
        Arc::clone(&store),
        Arc::new(CursorSealer::new([1; 32])),
        DirectoryConfig::new(BASE),
    );
    let d = Directory { api, store };
    // The same searches as `scripts/bench directory-http` never repeats: a different
    // specialty and postal code (and so a different answer) each time.
    let varied = |k: usize| {
        format!(
            "/PractitionerRole?specialty={}&location.address-postalcode={}&_include=PractitionerRole:practitioner",
            specialties[k % specialties.len()],
            43000 + (k / specialties.len()) % 500
        )
    };
    let varied_near = |k: usize| {
        format!(
            "/Location?near={:.3}|{:.3}|5|km",
            38.5 + (k % 300) as f64 * 0.007,
            -84.8 + (k / 300 % 100) as f64 * 0.007
        )
    };
    type PathOf<'a> = Box<dyn Fn(usize) -> String + 'a>;
    let searches: [(&str, PathOf<'_>); 4] = [
        (
            "specialty+postalcode+_include",
            Box::new(|_| {
                "/PractitionerRole?specialty=207Q00000X&location.address-postalcode=43010&_include=PractitionerRole:practitioner".to_owned()
            }),
        ),
        ("specialty+postalcode+_include, varied", Box::new(varied)),
        (
            "near 5 km",
            Box::new(|_| "/Location?near=39.0|-84.75|5|km".to_owned()),
        ),
        ("near 5 km, varied", Box::new(varied_near)),
    ];
    for (label, path_of) in searches {
        let mut times = Vec::new();
        let mut matched = 0;
        let cpu = process_cpu_seconds();
        for k in 0..500 {
            let path = path_of(k);
            let t = std::time::Instant::now();
            let reply = d.get(&path).await;
            times.push(t.elapsed());
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
            matched = entries(&reply.json, "match").len();
        }
        let cpu = process_cpu_seconds() - cpu;
        times.sort();
        let total: std::time::Duration = times.iter().sum();
        println!(
            "{label}: {matched} matches; {:.0} req/s sequential, p50 {:.2} ms, p99 {:.2} ms; CPU {:.2} ms per request (all threads, reply parsing included)",
            times.len() as f64 / total.as_secs_f64(),
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() * 99 / 100].as_secs_f64() * 1e3,
            cpu * 1e3 / times.len() as f64
        );
    }
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, 100 Hz
/// ticks), or 0 where unavailable.
fn process_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after_name = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}
