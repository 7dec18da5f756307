//! The authorization-server attack suite (member-auth.md §8 B, C, D and issue 4's list).
//! Each case is a named test; the FHIR-handler token cases (alg=none, HS256 with the
//! public key, forged, expired, wrong issuer/audience) are in
//! `shared/smart-auth/tests/token_attacks.rs` and the cross-member cases (id, search,
//! `_include`, cursor) in `infra/local/tests/it/isolation.rs`; the ones here add the grant.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use member_consent::{GrantStatus, grants};
use serde_json::json;
use smart_auth::{AccessClaims, ScopeSet};

fn param<'a>(params: &mut [(&'a str, &'a str)], name: &str, value: &'a str) {
    for p in params.iter_mut() {
        if p.0 == name {
            p.1 = value;
        }
    }
}

#[tokio::test]
async fn a_full_launch_issues_exactly_the_consented_scopes_with_no_store() {
    let h = harness().await;
    let code = h.launch(&h.app.client_id, FULL_SCOPE).await;
    let reply = h.exchange(&h.app.client_id, &code, VERIFIER).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.headers["cache-control"], "no-store");
    assert_eq!(reply.headers["pragma"], "no-cache");
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["patient"], PATIENT);
    assert!(body["expires_in"].as_i64().unwrap() <= 3600);
    assert!(body["refresh_token"].is_string());
    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["iss"], BASE);
    assert_eq!(access["aud"], BASE);
    assert_eq!(access["patient"], PATIENT);
    assert_eq!(access["fhirUser"], "Patient/p1");
    assert_eq!(access["client_id"], h.app.client_id.as_str());
    assert_eq!(access["token_use"], "access");
    assert!(access["jti"].is_string() && access["grant_id"].is_string());
    assert_eq!(
        ScopeSet::parse(access["scope"].as_str().unwrap()),
        ScopeSet::parse(body["scope"].as_str().unwrap())
    );
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], h.app.client_id.as_str());
    assert_eq!(id["iss"], BASE);
    assert_eq!(id["fhirUser"], format!("{BASE}/Patient/p1"));
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(h.read_eob("eob-p1", token).await, 200);
    assert_eq!(
        h.read_eob("eob-q1", token).await,
        404,
        "another member's EOB by id"
    );
    let bundle = h.search_eob("patient=q1", token).await;
    assert_eq!(
        bundle["total"].as_u64().unwrap_or(0),
        0,
        "another member's EOBs by search"
    );
}

#[tokio::test]
async fn scopes_beyond_the_registration_are_not_granted() {
    let h = harness().await;
    let code = h
        .launch(
            &h.app.client_id,
            "launch/patient user/*.cruds system/*.rs patient/*.cud patient/Coverage.rs",
        )
        .await;
    let body = h.exchange(&h.app.client_id, &code, VERIFIER).await.json();
    let scope = body["scope"].as_str().unwrap();
    assert!(
        !scope.contains("user/") && !scope.contains("system/") && !scope.contains(".cud"),
        "{scope}"
    );
    assert!(scope.contains("patient/Coverage.rs"));
}

#[tokio::test]
async fn unknown_client_gets_an_error_page_never_a_redirect() {
    let h = harness().await;
    let reply = h
        .authorize(&authorize_params("no-such-app", FULL_SCOPE))
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.location().is_none());
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn open_redirect_variants_of_the_redirect_uri_get_an_error_page() {
    let h = harness().await;
    for bad in [
        "https://app.example/cb/",
        "https://app.example/cb?x=1",
        "https://APP.example/cb",
        "http://app.example/cb",
        "https://app.example:444/cb",
        "https://app.example@evil.example/cb",
        "https://app.example.evil.example/cb",
        "https://app.example/cb#f",
        "https://evil.example/cb",
    ] {
        let mut params = authorize_params(&h.app.client_id, FULL_SCOPE);
        param(&mut params, "redirect_uri", bad);
        let reply = h.authorize(&params).await;
        assert_eq!(reply.status, 400, "{bad}");
        assert!(reply.location().is_none(), "{bad} must not redirect");
    }
}

#[tokio::test]
async fn missing_or_plain_pkce_redirects_with_invalid_request() {
    let h = harness().await;
    let mut params = authorize_params(&h.app.client_id, FULL_SCOPE);
    param(&mut params, "code_challenge_method", "plain");
    let reply = h.authorize(&params).await;
    assert_eq!(reply.status, 302);
    assert_eq!(
        reply.location_param("error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(reply.location_param("state").as_deref(), Some("st+/=&%ate"));
    let params: Vec<_> = authorize_params(&h.app.client_id, FULL_SCOPE)
        .into_iter()
        .filter(|p| p.0 != "code_challenge")
        .collect();
    assert_eq!(
        h.authorize(&params)
            .await
            .location_param("error")
            .as_deref(),
        Some("invalid_request")
    );
    let mut params = authorize_params(&h.app.client_id, FULL_SCOPE);
    param(&mut params, "response_type", "token");
    assert_eq!(
        h.authorize(&params)
            .await
            .location_param("error")
            .as_deref(),
        Some("unsupported_response_type")
    );
}

#[tokio::test]
async fn a_wrong_audience_never_yields_a_code() {
    let h = harness().await;
    let mut params = authorize_params(&h.app.client_id, FULL_SCOPE);
    param(
        &mut params,
        "aud",
        "https://inferno.healthit.gov/invalid_aud",
    );
    let reply = h.authorize(&params).await;
    assert_eq!(
        reply.location_param("error").as_deref(),
        Some("invalid_request")
    );
    assert!(reply.location_param("code").is_none());
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_the_first_redemption_issued() {
    let h = harness().await;
    let code = h.launch(&h.app.client_id, FULL_SCOPE).await;
    let first = h.exchange(&h.app.client_id, &code, VERIFIER).await.json();
    let second = h.exchange(&h.app.client_id, &code, VERIFIER).await;
    assert_eq!(second.status, 400);
    assert_eq!(second.json()["error"], "invalid_grant");
    let refresh = h
        .refresh(
            &h.app.client_id,
            first["refresh_token"].as_str().unwrap(),
            None,
        )
        .await;
    assert_eq!(refresh.json()["error"], "invalid_grant");
    assert_eq!(
        h.read_eob("eob-p1", first["access_token"].as_str().unwrap())
            .await,
        401
    );
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_invalid_grant() {
    let h = harness().await;
    for verifier in ["", CHALLENGE, "x".repeat(50).as_str(), "short"] {
        let code = h.launch(&h.app.client_id, FULL_SCOPE).await;
        let reply = h.exchange(&h.app.client_id, &code, verifier).await;
        assert_eq!(reply.status, 400, "{verifier:?}");
        assert_eq!(reply.json()["error"], "invalid_grant");
    }
}

#[tokio::test]
async fn a_redirect_uri_that_differs_at_the_token_endpoint_is_invalid_grant() {
    let h = harness().await;
    let code = h.launch(&h.app.client_id, FULL_SCOPE).await;
    let reply = CodeExchange::new(&code)
        .client_id(&h.app.client_id)
        .field("redirect_uri", "https://app.example/other")
        .send(&h)
        .await;
    assert_eq!(reply.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn a_code_or_refresh_token_from_another_client_is_refused() {
    let h = harness().await;
    let other = register(&h.store, "Other App", false).await.app;
    let code = h.launch(&h.app.client_id, FULL_SCOPE).await;
    assert_eq!(
        h.exchange(&other.client_id, &code, VERIFIER).await.json()["error"],
        "invalid_grant"
    );
    let body = h.tokens().await;
    let handle = body["refresh_token"].as_str().unwrap();
    assert_eq!(
        h.refresh(&other.client_id, handle, None).await.json()["error"],
        "invalid_grant"
    );
    assert_eq!(
        h.refresh(&h.app.client_id, handle, None).await.status,
        200,
        "B's attempt must not burn A's handle"
    );
    assert_eq!(
        h.exchange("BAD_CLIENT_ID", "BAD_CODE", VERIFIER)
            .await
            .status,
        401
    );
    assert_eq!(
        h.exchange(&h.app.client_id, "BAD_CODE", VERIFIER)
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn scope_escalation_at_the_token_endpoint_is_invalid_scope() {
    let h = harness().await;
    let code = h
        .launch(
            &h.app.client_id,
            "launch/patient offline_access patient/Coverage.rs",
        )
        .await;
    let body = h.exchange(&h.app.client_id, &code, VERIFIER).await.json();
    let handle = body["refresh_token"].as_str().unwrap();
    let reply = h
        .refresh(
            &h.app.client_id,
            handle,
            Some("patient/Coverage.rs patient/ExplanationOfBenefit.rs"),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"], "invalid_scope");
    let narrower = h
        .refresh(&h.app.client_id, handle, Some("patient/Coverage.r"))
        .await
        .json();
    assert_eq!(narrower["scope"], "patient/Coverage.r");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_of_an_old_handle_revokes_the_grant() {
    let h = harness().await;
    let body = h.tokens().await;
    let first = body["refresh_token"].as_str().unwrap();
    let rotated = h.refresh(&h.app.client_id, first, None).await.json();
    let second = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(first, second);
    assert_eq!(rotated["scope"], body["scope"]);
    let reuse = h.refresh(&h.app.client_id, first, None).await;
    assert_eq!(reuse.json()["error"], "invalid_grant");
    assert_eq!(
        h.refresh(&h.app.client_id, second, None).await.json()["error"],
        "invalid_grant",
        "the whole grant ends"
    );
}

#[tokio::test]
async fn revoked_consent_stops_refresh_at_once_and_access_tokens_within_the_cache_window() {
    let h = harness_with(Duration::from_millis(300)).await;
    let body = h.tokens().await;
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(h.read_eob("eob-p1", token).await, 200);
    let grant_id = claims(token)["grant_id"].as_str().unwrap().to_owned();
    grants::revoke(h.store.as_ref(), &grant_id, "member")
        .await
        .unwrap();
    assert_eq!(
        h.refresh(
            &h.app.client_id,
            body["refresh_token"].as_str().unwrap(),
            None
        )
        .await
        .json()["error"],
        "invalid_grant"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.read_eob("eob-p1", token).await, 401);
    let consent = grants::get(h.store.as_ref(), &grant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(consent.status, GrantStatus::Inactive);
}

#[tokio::test]
async fn revoking_through_the_revocation_endpoint_ends_the_grant() {
    let h = harness_with(Duration::ZERO).await;
    let body = h.tokens().await;
    let reply = h
        .post(
            "/revoke",
            &[
                ("token", body["refresh_token"].as_str().unwrap()),
                ("client_id", &h.app.client_id),
            ],
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        h.read_eob("eob-p1", body["access_token"].as_str().unwrap())
            .await,
        401
    );
    let garbage = h
        .post(
            "/revoke",
            &[("token", "garbage"), ("client_id", &h.app.client_id)],
            None,
            None,
        )
        .await;
    assert_eq!(garbage.status, 200);
}

#[tokio::test]
async fn another_app_revoking_a_token_has_no_effect() {
    let h = harness_with(Duration::ZERO).await;
    let other = register(&h.store, "Other App", false).await.app;
    let body = h.tokens().await;
    let token = body["access_token"].as_str().unwrap();
    let reply = h
        .post(
            "/revoke",
            &[("token", token), ("client_id", &other.client_id)],
            None,
            None,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(h.read_eob("eob-p1", token).await, 200);
}

#[tokio::test]
async fn introspection_answers_active_details_or_exactly_active_false() {
    let h = harness().await;
    let body = h.tokens().await;
    let token = body["access_token"].as_str().unwrap();
    let active = h
        .post(
            "/introspect",
            &[("token", token), ("client_id", &h.app.client_id)],
            None,
            None,
        )
        .await
        .json();
    assert_eq!(active["active"], true);
    for field in [
        "scope",
        "client_id",
        "exp",
        "patient",
        "iss",
        "sub",
        "fhirUser",
    ] {
        assert!(!active[field].is_null(), "{field}");
    }
    let inactive = h
        .post(
            "/introspect",
            &[("token", "a.b.c"), ("client_id", &h.app.client_id)],
            None,
            None,
        )
        .await
        .json();
    assert_eq!(inactive, json!({"active": false}));
    let unauthenticated = h.post("/introspect", &[("token", token)], None, None).await;
    assert_eq!(unauthenticated.status, 401);
}

#[tokio::test]
async fn a_token_from_another_client_is_refused_at_the_fhir_handler() {
    let h = harness().await;
    let body = h.tokens().await;
    let mut forged =
        serde_json::from_value::<AccessClaims>(claims(body["access_token"].as_str().unwrap()))
            .unwrap();
    forged.client_id = "another-app".into();
    let token = h.issuer.mint(&forged).unwrap();
    assert_eq!(
        h.read_eob("eob-p1", &token).await,
        401,
        "grant belongs to another client"
    );
    let dev = h
        .issuer
        .mint(&AccessClaims::for_member(
            PATIENT,
            &h.app.client_id,
            "patient/*.rs",
            Duration::from_secs(60),
        ))
        .unwrap();
    assert_eq!(
        h.read_eob("eob-p1", &dev).await,
        401,
        "no grant_id: refused unless configured"
    );
}

#[tokio::test]
async fn confidential_clients_authenticate_with_a_hashed_secret() {
    let h = harness().await;
    let registered = register(&h.store, "Confidential App", true).await;
    let id = registered.app.client_id.clone();
    let secret = registered.client_secret.unwrap();
    assert_ne!(registered.app.secret_hash.as_deref(), Some(secret.as_str()));
    let code = h.launch(&id, FULL_SCOPE).await;
    let reply = CodeExchange::new(&code).basic(&id, "wrong").send(&h).await;
    assert_eq!(reply.status, 401);
    assert!(
        reply.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let code = h.launch(&id, FULL_SCOPE).await;
    let both = CodeExchange::new(&code)
        .basic(&id, &secret)
        .field("client_secret", &secret);
    assert_eq!(both.send(&h).await.status, 400, "two methods at once");
    let code = h.launch(&id, FULL_SCOPE).await;
    assert_eq!(
        CodeExchange::new(&code)
            .client_id(&id)
            .send(&h)
            .await
            .status,
        401,
        "confidential client without its secret"
    );
    let code = h.launch(&id, FULL_SCOPE).await;
    let post = CodeExchange::new(&code)
        .client_id(&id)
        .field("client_secret", &secret);
    assert_eq!(post.send(&h).await.status, 200, "client_secret_post");
}

#[tokio::test]
async fn unsupported_grant_types_are_refused() {
    let h = harness().await;
    for grant_type in ["password", "client_credentials", "implicit"] {
        let reply = h
            .post(
                "/token",
                &[("grant_type", grant_type), ("client_id", &h.app.client_id)],
                None,
                None,
            )
            .await;
        assert_eq!(reply.json()["error"], "unsupported_grant_type");
        assert_eq!(reply.headers["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn denying_redirects_with_access_denied_and_records_a_rejected_consent() {
    let h = harness().await;
    let (cookie, page) = h.to_consent(&h.app.client_id, FULL_SCOPE).await;
    let reply = h
        .post(
            "/authorize/consent",
            &[("csrf", &page.csrf().unwrap()), ("decision", "deny")],
            Some(&cookie),
            None,
        )
        .await;
    assert_eq!(
        reply.location_param("error").as_deref(),
        Some("access_denied")
    );
    assert!(reply.location_param("code").is_none());
    assert_eq!(reply.location_param("state").as_deref(), Some("st+/=&%ate"));
}

#[tokio::test]
async fn unticking_a_category_removes_it_from_the_grant() {
    let h = harness().await;
    let (cookie, page) = h.to_consent(&h.app.client_id, FULL_SCOPE).await;
    let form = [
        ("csrf", page.csrf().unwrap()),
        ("decision", "approve".into()),
        ("type", "ExplanationOfBenefit".into()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = h
        .post("/authorize/consent", &form, Some(&cookie), None)
        .await;
    let code = reply.location_param("code").unwrap();
    let body = h.exchange(&h.app.client_id, &code, VERIFIER).await.json();
    let scope = body["scope"].as_str().unwrap();
    assert!(
        scope.contains("patient/ExplanationOfBenefit.rs")
            && !scope.contains("Patient.")
            && !scope.contains("Coverage"),
        "{scope}"
    );
}

#[tokio::test]
async fn a_consent_form_without_or_with_a_foreign_csrf_token_is_forbidden() {
    let h = harness().await;
    let (cookie, _) = h.to_consent(&h.app.client_id, FULL_SCOPE).await;
    let (_, other_page) = h.to_consent(&h.app.client_id, FULL_SCOPE).await;
    let none = h
        .post(
            "/authorize/consent",
            &[("decision", "approve"), ("type", "Patient")],
            Some(&cookie),
            None,
        )
        .await;
    assert_eq!(none.status, 403);
    let foreign = h
        .post(
            "/authorize/consent",
            &[
                ("csrf", &other_page.csrf().unwrap()),
                ("decision", "approve"),
                ("type", "Patient"),
            ],
            Some(&cookie),
            None,
        )
        .await;
    assert_eq!(foreign.status, 403);
    assert!(foreign.location().is_none());
}

#[tokio::test]
async fn an_unknown_email_gets_the_same_page_as_a_known_one() {
    let h = harness().await;
    let mut pages = Vec::new();
    for email in [EMAIL, "nobody@example.org"] {
        let page = h
            .authorize(&authorize_params(&h.app.client_id, FULL_SCOPE))
            .await;
        let cookie = format!("pa_txn={}", page.cookie("pa_txn").unwrap());
        let next = h
            .post(
                "/authorize/email",
                &[("csrf", &page.csrf().unwrap()), ("email", email)],
                Some(&cookie),
                None,
            )
            .await;
        pages.push((
            next.status,
            next.text.replace(&next.csrf().unwrap(), "CSRF"),
        ));
    }
    assert_eq!(pages[0], pages[1]);
}

#[tokio::test]
async fn wrong_answers_show_one_generic_message_whatever_was_wrong() {
    let h = harness().await;
    let mut texts = Vec::new();
    for (dob, member, zip) in [
        ("1980-01-02", "M1", "12345"),
        ("1980-01-01", "M1", "99999"),
        ("1980-01-01", "X", "12345"),
    ] {
        let page = h
            .authorize(&authorize_params(&h.app.client_id, FULL_SCOPE))
            .await;
        let cookie = format!("pa_txn={}", page.cookie("pa_txn").unwrap());
        let page = h.submit_email(&page, &cookie).await;
        let csrf = page.csrf().unwrap();
        let reply = h
            .post(
                "/authorize/identity",
                &[
                    ("csrf", &csrf),
                    ("birth_date", dob),
                    ("member_id", member),
                    ("postal_code", zip),
                ],
                Some(&cookie),
                None,
            )
            .await;
        assert!(reply.text.contains("We could not confirm your identity"));
        texts.push(reply.text.replace(&reply.csrf().unwrap(), "CSRF"));
        // Brute force on the code: a replayed (used) session cannot answer again.
        let replay = h.submit_identity(&csrf, &cookie).await;
        assert_ne!(replay.status, 200, "the old CSRF token and stage are gone");
    }
    assert!(texts.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test]
async fn a_wrong_one_time_code_fails_generically_and_sends_the_member_back_to_the_start() {
    let h = harness().await;
    let page = h
        .authorize(&authorize_params(&h.app.client_id, FULL_SCOPE))
        .await;
    let cookie = format!("pa_txn={}", page.cookie("pa_txn").unwrap());
    let page = h.submit_email(&page, &cookie).await;
    let csrf = page.csrf().unwrap();
    h.submit_identity(&csrf, &cookie).await;
    let reply = h.submit_code(&csrf, "000000", &cookie).await;
    assert!(reply.text.contains("We could not confirm your identity"));
    let again = h.submit_code(&csrf, CODE, &cookie).await;
    assert_eq!(again.status, 403, "no second guess on the same session");
}

#[tokio::test]
async fn a_disabled_app_loses_refresh_access_and_authorize() {
    let h = harness_with(Duration::ZERO).await;
    let body = h.tokens().await;
    assert!(h.server.disable_app(&h.app.client_id).await.unwrap());
    assert_eq!(
        h.read_eob("eob-p1", body["access_token"].as_str().unwrap())
            .await,
        401
    );
    assert_eq!(
        h.refresh(
            &h.app.client_id,
            body["refresh_token"].as_str().unwrap(),
            None
        )
        .await
        .status,
        401
    );
    let page = h
        .authorize(&authorize_params(&h.app.client_id, FULL_SCOPE))
        .await;
    assert_eq!(page.status, 400);
    assert!(page.location().is_none());
}

#[tokio::test]
async fn an_app_name_with_markup_is_escaped_and_javascript_urls_are_refused() {
    let h = harness().await;
    let new = smart_server::NewApp {
        name: "<script>alert(1)</script>".into(),
        description: String::new(),
        redirect_uris: vec![REDIRECT.into()],
        confidential: false,
        privacy_policy: Some("javascript:alert(1)".into()),
        attested: false,
    };
    assert!(
        smart_server::apps::register(h.store.as_ref(), &new)
            .await
            .is_err()
    );
    let new = smart_server::NewApp {
        privacy_policy: None,
        ..new
    };
    let app = smart_server::apps::register(h.store.as_ref(), &new)
        .await
        .unwrap()
        .app;
    let (_, page) = h.to_consent(&app.client_id, FULL_SCOPE).await;
    assert!(!page.text.contains("<script>alert"));
    assert!(page.text.contains("&lt;script&gt;") || page.text.contains("&#60;script&#62;"));
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[tokio::test]
async fn the_transaction_cookie_is_httponly_and_samesite() {
    let h = harness().await;
    let page = h
        .authorize(&authorize_params(&h.app.client_id, FULL_SCOPE))
        .await;
    let cookie = page.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        page.text.contains("<html lang=\"en\">") && page.text.contains("<label for=\"email\">")
    );
    assert!(!page.text.contains("<script"));
}

#[tokio::test]
async fn the_member_lists_and_revokes_connected_apps_behind_the_same_sign_in() {
    let h = harness_with(Duration::ZERO).await;
    let body = h.tokens().await;
    let start = h.get("/connected-apps").await;
    assert!(start.text.contains("name=\"email\""));
    let cookie = format!("pa_txn={}", start.cookie("pa_txn").unwrap());
    let page = h.submit_email(&start, &cookie).await;
    let csrf = page.csrf().unwrap();
    h.submit_identity(&csrf, &cookie).await;
    let done = h.submit_code(&csrf, CODE, &cookie).await;
    assert_eq!(done.status, 303, "{}", done.text);
    let session = format!("pa_member={}", done.cookie("pa_member").unwrap());
    let request = http::Request::get("/connected-apps")
        .header("cookie", &session)
        .body(bytes::Bytes::new())
        .unwrap();
    let list = h.server.handle(request).await;
    let text = String::from_utf8_lossy(list.body()).into_owned();
    assert!(text.contains("Health App"), "{text}");
    let grant_id = claims(body["access_token"].as_str().unwrap())["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let member_csrf = text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let foreign = h
        .post(
            "/connected-apps/revoke",
            &[("csrf", &member_csrf), ("grant", "not-mine")],
            Some(&session),
            None,
        )
        .await;
    assert!(foreign.text.contains("not found"));
    let revoked = h
        .post(
            "/connected-apps/revoke",
            &[("csrf", &member_csrf), ("grant", &grant_id)],
            Some(&session),
            None,
        )
        .await;
    assert!(revoked.text.contains("is disconnected"), "{}", revoked.text);
    assert_eq!(
        h.read_eob("eob-p1", body["access_token"].as_str().unwrap())
            .await,
        401
    );
}

#[tokio::test]
async fn the_member_says_yes_to_payer_to_payer_on_connected_apps_and_can_take_it_back() {
    let h = harness().await;
    let start = h.get("/connected-apps").await;
    let cookie = format!("pa_txn={}", start.cookie("pa_txn").unwrap());
    let page = h.submit_email(&start, &cookie).await;
    let csrf = page.csrf().unwrap();
    h.submit_identity(&csrf, &cookie).await;
    let done = h.submit_code(&csrf, CODE, &cookie).await;
    assert_eq!(done.status, 303, "{}", done.text);
    let session = format!("pa_member={}", done.cookie("pa_member").unwrap());
    let request = http::Request::get("/connected-apps")
        .header("cookie", &session)
        .body(bytes::Bytes::new())
        .unwrap();
    let text = String::from_utf8_lossy(h.server.handle(request).await.body()).into_owned();
    assert!(
        text.contains("Payer-to-Payer") && text.contains("This is off"),
        "off until the member says yes"
    );
    let member_csrf = text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let opted_in = |h: &Harness| {
        let store = Arc::clone(&h.store);
        async move {
            member_consent::payer_to_payer::is_opted_in(store.as_ref(), PATIENT)
                .await
                .unwrap()
        }
    };

    // A form without the member's CSRF value changes nothing.
    let forged = h
        .post(
            "/connected-apps/payer-to-payer",
            &[("csrf", "forged"), ("choice", "opt-in")],
            Some(&session),
            None,
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    assert!(!opted_in(&h).await);

    let yes = h
        .post(
            "/connected-apps/payer-to-payer",
            &[("csrf", &member_csrf), ("choice", "opt-in")],
            Some(&session),
            None,
        )
        .await;
    assert!(yes.text.contains("You said yes"), "{}", yes.text);
    assert!(opted_in(&h).await);
    assert!(
        !member_consent::provider_access::is_opted_out(h.store.as_ref(), PATIENT)
            .await
            .unwrap(),
        "the other setting is untouched"
    );

    let no = h
        .post(
            "/connected-apps/payer-to-payer",
            &[("csrf", &member_csrf), ("choice", "opt-out")],
            Some(&session),
            None,
        )
        .await;
    assert!(no.text.contains("This is off"), "{}", no.text);
    assert!(!opted_in(&h).await);
}

/// A member signed in to `/connected-apps`: the session cookie and the page's CSRF
/// value.
async fn member_on_connected_apps(h: &Harness) -> (String, String) {
    let start = h.get("/connected-apps").await;
    let cookie = format!("pa_txn={}", start.cookie("pa_txn").unwrap());
    let page = h.submit_email(&start, &cookie).await;
    let csrf = page.csrf().unwrap();
    h.submit_identity(&csrf, &cookie).await;
    let done = h.submit_code(&csrf, CODE, &cookie).await;
    assert_eq!(done.status, 303, "{}", done.text);
    let session = format!("pa_member={}", done.cookie("pa_member").unwrap());
    let text = connected_apps_page(h, &session).await;
    let member_csrf = text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (session, member_csrf)
}

async fn connected_apps_page(h: &Harness, session: &str) -> String {
    let request = http::Request::get("/connected-apps")
        .header("cookie", session)
        .body(bytes::Bytes::new())
        .unwrap();
    String::from_utf8_lossy(h.server.handle(request).await.body()).into_owned()
}

#[tokio::test]
async fn the_member_asks_for_their_records_from_another_plan_this_plan_knows() {
    use payer_to_payer::asking::{self, OtherPayer, RequestState};
    let h = harness().await;
    asking::add_payer(
        h.store.as_ref(),
        &OtherPayer {
            name: "oldplan".into(),
            base_url: "https://fhir.old.example/r4".into(),
            payer_id: "OLD01".into(),
            client_id: "us-at-oldplan".into(),
            key: "patient-access/payer-keys/oldplan".into(),
        },
    )
    .await
    .unwrap();
    let (session, csrf) = member_on_connected_apps(&h).await;
    let ask = |csrf: String, fields: Vec<(&'static str, &'static str)>| {
        let session = session.clone();
        let h = &h;
        async move {
            let mut form = vec![("csrf", csrf.as_str())];
            form.extend(fields);
            h.post(
                "/connected-apps/payer-to-payer/request",
                &form,
                Some(&session),
                None,
            )
            .await
        }
    };
    let request_of_oldplan = || async {
        asking::get_request(h.store.as_ref(), PATIENT, "oldplan")
            .await
            .unwrap()
    };
    let page = connected_apps_page(&h, &session).await;
    assert!(
        page.contains("Bring your records from another health plan")
            && page.contains("first say yes to sharing")
            && !page.contains("name=\"card\""),
        "no form until the member opts in: {page}"
    );
    let refused = ask(
        csrf.clone(),
        vec![("payer", "oldplan"), ("card", "SUB-7001")],
    )
    .await;
    assert!(refused.text.contains("First say yes"), "{}", refused.text);
    assert!(
        request_of_oldplan().await.is_none(),
        "nothing asked without the opt-in"
    );

    h.post(
        "/connected-apps/payer-to-payer",
        &[("csrf", &csrf), ("choice", "opt-in")],
        Some(&session),
        None,
    )
    .await;
    let page = connected_apps_page(&h, &session).await;
    assert!(
        page.contains("<label for=\"p2p-card\">")
            && page.contains("<option value=\"oldplan\">")
            && page.contains("42 CFR Part 2")
            && page.contains("<legend>How are you covered by that plan?</legend>")
            && !page.contains("<script"),
        "{page}"
    );

    // Another site's form (no CSRF value of the member's) asks nothing.
    let forged = ask(
        "forged".into(),
        vec![("payer", "oldplan"), ("card", "SUB-7001")],
    )
    .await;
    assert_eq!(forged.status, 403);
    assert!(request_of_oldplan().await.is_none());

    let unknown = ask(
        csrf.clone(),
        vec![("payer", "nosuchplan"), ("card", "SUB-7001")],
    )
    .await;
    assert!(unknown.text.contains("Choose one of the health plans"));
    let odd = ask(
        csrf.clone(),
        vec![("payer", "oldplan"), ("card", "<b>1</b>")],
    )
    .await;
    assert!(odd.text.contains("The member ID must be"), "{}", odd.text);
    assert!(request_of_oldplan().await.is_none());

    let asked = ask(
        csrf.clone(),
        vec![
            ("payer", "oldplan"),
            ("card", "SUB-7001"),
            ("coverage", "concurrent"),
            ("all-data", "yes"),
        ],
    )
    .await;
    assert!(
        asked.text.contains("We will ask oldplan for your records"),
        "{}",
        asked.text
    );
    assert!(
        asked.text.contains("ending 7001") && asked.text.contains("We will ask shortly"),
        "the member sees the request and its state: {}",
        asked.text
    );
    let recorded = request_of_oldplan().await.expect("the request");
    assert_eq!(recorded.old_member_id, "SUB-7001");
    assert!(recorded.concurrent && recorded.all_data);
    assert_eq!(recorded.state, RequestState::Waiting);
    assert_eq!(
        asking::due(h.store.as_ref(), recorded.next_attempt_at, 10)
            .await
            .unwrap()
            .len(),
        1,
        "the scheduled run picks it up"
    );

    // Only the sensitive-free policy unless the member ticks the box.
    ask(csrf, vec![("payer", "oldplan"), ("card", "SUB-7001")]).await;
    let recorded = request_of_oldplan().await.unwrap();
    assert!(!recorded.all_data && !recorded.concurrent);
}

#[tokio::test]
async fn the_member_sees_what_each_app_read_in_the_last_ninety_days() {
    let h = harness().await;
    h.tokens().await;
    // What the usage aggregator writes after the app's reads (and one older read).
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let day = 86_400_000;
    let read = |resource_type: &str, count, at_ms, id: &str| usage_metrics::AccessEvent {
        patient: PATIENT.into(),
        client_id: h.app.client_id.clone(),
        resource_type: resource_type.into(),
        count,
        at_ms,
        event_id: id.into(),
    };
    let events = [
        read("ExplanationOfBenefit", 20, now_ms - 3 * day, "e1"),
        read("ExplanationOfBenefit", 5, now_ms - day, "e2"),
        read("Coverage", 1, now_ms - day, "e3"),
        read("Patient", 1, now_ms - 91 * day, "e4"),
    ];
    usage_metrics::records::record(h.store.as_ref(), &usage_metrics::Batch::of(&events))
        .await
        .unwrap();

    let start = h.get("/connected-apps").await;
    let cookie = format!("pa_txn={}", start.cookie("pa_txn").unwrap());
    let page = h.submit_email(&start, &cookie).await;
    let csrf = page.csrf().unwrap();
    h.submit_identity(&csrf, &cookie).await;
    let done = h.submit_code(&csrf, CODE, &cookie).await;
    let session = format!("pa_member={}", done.cookie("pa_member").unwrap());
    let request = http::Request::get("/connected-apps")
        .header("cookie", &session)
        .body(bytes::Bytes::new())
        .unwrap();
    let list = h.server.handle(request).await;
    let text = String::from_utf8_lossy(list.body()).into_owned();
    let history = text
        .split("What apps read in the last 90 days")
        .nth(1)
        .unwrap();
    assert!(history.contains("<td>Health App</td>"), "{history}");
    assert!(
        history.contains(" ET</td>"),
        "last access in Eastern time: {history}"
    );
    assert!(
        history.contains("Your claims and what was paid (explanations of benefit): 25"),
        "{history}"
    );
    assert!(history.contains("Your insurance coverage: 1"), "{history}");
    assert!(
        !history.contains("Your personal information"),
        "the read 91 days ago is outside the window: {history}"
    );
}

#[tokio::test]
async fn discovery_is_json_for_any_accept_header() {
    // Open to any origin: http_policy's (infra/local/tests/it/cors.rs checks it).
    let h = harness().await;
    let reply = h.get("/.well-known/smart-configuration").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(
        reply.json()["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        h.get("/.well-known/openid-configuration").await.json()["issuer"],
        BASE
    );
    assert_eq!(
        h.get("/.well-known/jwks.json").await.json()["keys"][0]["kty"],
        "RSA"
    );
}

/// Issue #14 finding 3: a browser that keeps answering wrong must wait longer and
/// longer; while it waits its answers are refused ungraded (even the right ones, so
/// the wait reveals nothing). The member, in their own browser, is not slowed at all.
#[tokio::test]
async fn a_guessing_browser_must_wait_and_the_member_in_their_own_does_not() {
    let h = harness().await;
    let page = h
        .authorize(&authorize_params(&h.app.client_id, FULL_SCOPE))
        .await;
    let cookie = format!("pa_txn={}", page.cookie("pa_txn").unwrap());
    let mut page = h.submit_email(&page, &cookie).await;
    for guess in ["1980-01-02", "1980-01-03", "1980-01-04", "1980-01-05"] {
        let csrf = page.csrf().unwrap();
        let reply = h
            .post(
                "/authorize/identity",
                &[
                    ("csrf", &csrf),
                    ("birth_date", guess),
                    ("member_id", "M1"),
                    ("postal_code", "12345"),
                ],
                Some(&cookie),
                None,
            )
            .await;
        assert!(reply.text.contains("We could not confirm your identity"));
        page = h.submit_email(&reply, &cookie).await;
    }
    let csrf = page.csrf().unwrap();
    let refused = h.submit_identity(&csrf, &cookie).await;
    assert!(
        refused
            .text
            .contains("Too many sign-in attempts from this browser"),
        "{}",
        refused.text
    );
    assert!(!refused.text.contains("p***@example.org"), "not graded");

    let code = h.launch(&h.app.client_id, FULL_SCOPE).await;
    assert!(
        !code.is_empty(),
        "the member signs in from their own browser"
    );
}
