//! In-process search benchmark over the embedded store: the request a CARIN app sends
//! most, `ExplanationOfBenefit?patient=X&_count=20&_include=ExplanationOfBenefit:coverage`,
//! through the generic handler exactly as a Lambda invocation runs it (token
//! verification, planning, redb listing, includes, Bundle writing). The token is a
//! grant-less development token, so the per-request grant check (one cached read) is
//! not part of the figure.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use fhir::ResourceType;
use fhir_api::{ApiConfig, ResourceApi};
use smart_auth::{
    AccessClaims, CursorSealer, LocalIssuer, StaticJwks, TokenVerifier, VerifierConfig,
};
use store_redb::RedbStore;

const BASE: &str = "http://localhost:8080";

fn search(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(RedbStore::open(dir.path().join("fhir.redb")).expect("store"));
    let config = demo_data::DemoConfig::default();
    let members: Vec<String> = runtime
        .block_on(patient_access::load_demo(Arc::clone(&store), &config, None))
        .expect("demo data")
        .into_iter()
        .map(|m| m.patient_id)
        .collect();
    let issuer = LocalIssuer::load_or_create(&dir.path().join("issuer"), BASE.into(), BASE.into())
        .expect("issuer");
    let verifier = TokenVerifier::new(VerifierConfig::new(
        BASE.into(),
        BASE.into(),
        Arc::new(StaticJwks::new(issuer.jwks())),
    ));
    let api = ResourceApi::new(
        ResourceType::ExplanationOfBenefit,
        store,
        Arc::new(verifier),
        Arc::new(CursorSealer::from_secret(&[7u8; 32]).expect("sealer")),
        Arc::new(ApiConfig {
            allow_tokens_without_grant: true,
            ..ApiConfig::new(BASE)
        }),
    );
    let member = &members[0];
    let token = issuer
        .mint(&AccessClaims::for_member(
            member,
            "bench-client",
            "patient/*.rs",
            Duration::from_secs(3600),
        ))
        .expect("token");
    let uri = format!(
        "/ExplanationOfBenefit?patient={member}&_count=20&_include=ExplanationOfBenefit:coverage"
    );
    let request = || {
        http::Request::builder()
            .uri(uri.as_str())
            .header("authorization", format!("Bearer {token}"))
            .body(Bytes::new())
            .expect("request")
    };
    let response = runtime.block_on(api.handle(request()));
    assert_eq!(response.status(), 200);
    let body = String::from_utf8_lossy(response.body());
    assert_eq!(
        body.matches("\"mode\":\"match\"").count(),
        20,
        "a full page of 20"
    );

    c.bench_function(
        "search EOB by patient, 20 + _include coverage (redb, in process)",
        |b| b.iter(|| runtime.block_on(api.handle(request()))),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5));
    targets = search
}
criterion_main!(benches);
