use std::collections::BTreeSet;

use bytes::Bytes;
use fhir_api::{ApiConfig, OAuthUris, capability_statement};
use http::{Method, Request, Response, StatusCode};

use super::*;

const BASE: &str = "https://api.example-plan.test";

fn api() -> ApiConfig {
    let mut config = ApiConfig::new(BASE);
    config.oauth = Some(OAuthUris::for_issuer(BASE));
    config
}

fn pages_with(apps: Vec<ListedApp>) -> PublicPages {
    PublicPages::new(PagesConfig::default(), StaticDirectory(apps))
}

async fn call(pages: &PublicPages, method: Method, uri: &str) -> Response<Bytes> {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Bytes::new())
        .expect("request");
    pages.handle(&request, &api()).await
}

async fn get_html(pages: &PublicPages, uri: &str) -> String {
    let response = call(pages, Method::GET, uri).await;
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    String::from_utf8(response.body().to_vec()).expect("utf-8")
}

fn app(name: &str, attested: bool, privacy: Option<&str>) -> ListedApp {
    ListedApp {
        name: name.to_owned(),
        description: Some(format!("{name} shows your claims.")),
        attestation: if attested {
            Attestation::Attested {
                on: Some("2026-10-01".to_owned()),
            }
        } else {
            Attestation::NotAttested
        },
        privacy_policy_url: privacy.map(str::to_owned),
    }
}

/// Every value of `attribute="…"` in `html`, in order.
fn attribute_values(html: &str, attribute: &str) -> Vec<String> {
    let marker = format!("{attribute}=\"");
    html.split(&marker)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn members_page_covers_what_cms_requires() {
    let html = get_html(&pages_with(vec![]), "/members").await;
    for needed in [
        "21st Century Cures Act",
        "CMS-9115-F",
        "CMS-0057-F",
        "cost",
        "Clinical information",
        "Coverage",
        "Prior authorizations",
        "Benefits",
        "Risks",
        "How to choose an app",
        "privacy policy",
        "sell",
        "delete",
        "is not responsible for your information once an app has it",
        "HIPAA may not cover the app",
        "one-time code",
        "consent screen",
        "Revoke",
        "Provider Access",
        "Payer-to-Payer",
        "off unless you opt in",
        "last five years",
        "Bringing your records to us",
        "42 CFR Part 2",
    ] {
        assert!(html.contains(needed), "/members lacks {needed:?}");
    }
    let links = attribute_values(&html, "href");
    for link in [
        "https://reportfraud.ftc.gov/",
        "https://www.hhs.gov/ocr/complaints/index.html",
        "https://api.example-plan.test/connected-apps",
        "https://api.example-plan.test/connected-apps#payer-to-payer",
        "https://api.example-plan.test/connected-apps#payer-to-payer-ask",
        "/apps",
        "tel:18005550100",
        "mailto:privacy@example.org",
    ] {
        assert!(
            links.iter().any(|l| l == link),
            "/members does not link {link}"
        );
    }
}

#[tokio::test]
async fn every_page_has_the_accessible_skeleton() {
    let pages = pages_with(vec![app("Tracker", true, None)]);
    for path in ["/members", "/developers", "/apps"] {
        let html = get_html(&pages, path).await;
        assert!(
            html.starts_with("<!doctype html>\n<html lang=\"en\">"),
            "{path}"
        );
        assert!(
            html.contains(
                r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
            )
        );
        assert!(
            html.contains(r##"<a class="skip-link" href="#main">"##),
            "{path}"
        );
        for landmark in [
            "<header",
            "<nav aria-label=\"Main\">",
            "<main id=\"main\"",
            "<footer",
        ] {
            assert!(html.contains(landmark), "{path} lacks {landmark}");
        }
        assert_eq!(
            html.matches("<h1").count(),
            1,
            "{path} needs exactly one h1"
        );
        assert!(
            html.contains(&format!("href=\"{path}\" aria-current=\"page\"")),
            "{path}"
        );
        assert!(!html.contains("<script"), "{path} must need no JavaScript");
    }
}

#[tokio::test]
async fn headings_never_skip_a_level() {
    let pages = pages_with(vec![app("Tracker", false, None)]);
    for path in ["/members", "/developers", "/apps"] {
        let html = get_html(&pages, path).await;
        let levels: Vec<u8> = html
            .match_indices("<h")
            .filter_map(|(at, _)| html.as_bytes().get(at + 2).copied())
            .filter(u8::is_ascii_digit)
            .map(|digit| digit - b'0')
            .collect();
        assert_eq!(levels.first(), Some(&1), "{path}");
        for pair in levels.windows(2) {
            assert!(
                pair[1] <= pair[0] + 1,
                "{path} jumps from h{} to h{}",
                pair[0],
                pair[1]
            );
        }
    }
}

#[tokio::test]
async fn responses_carry_html_cache_and_security_headers() {
    let pages = pages_with(vec![]);
    for path in ["/members", "/developers", "/apps"] {
        let response = call(&pages, Method::GET, path).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-type"), "text/html; charset=utf-8");
        assert_eq!(header("cache-control"), "public, max-age=300");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
        let csp = header("content-security-policy");
        assert!(
            csp.starts_with("default-src 'self'; script-src 'none';"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}

#[tokio::test]
async fn the_csp_allows_exactly_the_inline_stylesheet() {
    let pages = pages_with(vec![]);
    let response = call(&pages, Method::GET, "/members").await;
    let html = String::from_utf8(response.body().to_vec()).expect("utf-8");
    let style = html
        .split("<style>")
        .nth(1)
        .and_then(|rest| rest.split("</style>").next())
        .expect("one inline stylesheet");
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style.as_bytes()));
    let csp = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(csp.contains(&format!("style-src 'sha256-{hash}'")), "{csp}");
    assert!(
        !html.contains(" style=\""),
        "inline style attributes would be blocked"
    );
}

#[tokio::test]
async fn app_names_and_descriptions_render_as_text() {
    let mut hostile = app(
        "<script>alert(1)</script>",
        true,
        Some("https://evil.example/\"><script>x</script>"),
    );
    hostile.description = Some("<img src=x onerror=alert(1)>".to_owned());
    let html = get_html(&pages_with(vec![hostile]), "/apps").await;
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert!(!html.contains("<script"));
    assert!(!html.contains("<img src=x"));
}

#[tokio::test]
async fn only_web_urls_become_privacy_policy_links() {
    let apps = vec![
        app("Good", true, Some("https://good.example/privacy")),
        app("Sneaky", true, Some("javascript:alert(1)")),
        app("Silent", false, None),
    ];
    let html = get_html(&pages_with(apps), "/apps").await;
    let links = attribute_values(&html, "href");
    assert!(links.iter().any(|l| l == "https://good.example/privacy"));
    assert!(!html.contains("javascript:"));
    assert_eq!(html.matches("No privacy policy link was given").count(), 2);
}

#[tokio::test]
async fn directory_shows_attestation_sorted_and_filters_by_query() {
    let apps = vec![
        app("Zeta Health", false, None),
        app("alpha Claims", true, Some("https://alpha.example/privacy")),
    ];
    let pages = pages_with(apps);
    let html = get_html(&pages, "/apps").await;
    let alpha = html.find("alpha Claims").expect("alpha listed");
    let zeta = html.find("Zeta Health").expect("zeta listed");
    assert!(alpha < zeta, "apps are sorted by name, ignoring case");
    assert!(html.contains("Attested</span> on 2026-10-01"));
    assert!(html.contains("Not attested"));
    assert!(html.contains("2 apps are registered."));

    let html = get_html(&pages, "/apps?q=ZETA").await;
    assert!(html.contains("1 of 2 apps match"));
    assert!(!html.contains("alpha Claims"));
    assert!(html.contains(r#"value="ZETA""#));
}

#[tokio::test]
async fn the_query_is_escaped_and_bounded() {
    let pages = pages_with(vec![]);
    let long = "a".repeat(500);
    let html = get_html(&pages, &format!("/apps?q=%22%3E%3Cb%3E{long}")).await;
    assert!(!html.contains("\"><b>"));
    assert!(!html.contains(&"a".repeat(MAX_QUERY_CHARS)));
}

struct FailingDirectory;

impl AppDirectory for FailingDirectory {
    async fn listed_apps(&self) -> Result<Vec<ListedApp>, DirectoryError> {
        Err(DirectoryError("table unreachable".to_owned()))
    }
}

#[tokio::test]
async fn an_unreadable_registry_is_a_503_that_is_not_cached() {
    let pages = PublicPages::new(PagesConfig::default(), FailingDirectory);
    let response = call(&pages, Method::GET, "/apps").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body = String::from_utf8(response.body().to_vec()).expect("utf-8");
    assert!(
        !body.contains("table unreachable"),
        "internal detail leaked"
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused_in_html() {
    let pages = pages_with(vec![]);
    let response = call(&pages, Method::GET, "/nope").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = call(&pages, Method::POST, "/members").await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET, HEAD")
    );
    let response = call(&pages, Method::HEAD, "/developers/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.body().is_empty());
    assert!(PublicPages::serves("/apps/") && !PublicPages::serves("/Patient"));
}

#[tokio::test]
async fn branding_is_applied_everywhere() {
    let branding = BrandingSettings {
        plan_name: Some("Acme & Sons Health".to_owned()),
        logo_url: Some("https://cdn.acme.test/logo.png".to_owned()),
        primary_color: Some("#005ea2".to_owned()),
        accent_color: Some("#b35900".to_owned()),
        contact_phone: Some("+1 (555) 010-0199".to_owned()),
        contact_email: Some("help@acme.test".to_owned()),
    }
    .build()
    .expect("valid branding");
    let config = PagesConfig {
        branding,
        ..PagesConfig::default()
    };
    let pages = PublicPages::new(config, StaticDirectory::default());
    for path in ["/members", "/developers", "/apps"] {
        let html = get_html(&pages, path).await;
        assert!(
            html.contains("Acme &#38; Sons Health") || html.contains("Acme &amp; Sons Health"),
            "{path}"
        );
        assert!(
            !html.contains("Example Health Plan"),
            "{path} still names the default plan"
        );
        assert!(html.contains("--primary:#005ea2;--accent:#b35900;"));
        assert!(html.contains(r#"<img src="https://cdn.acme.test/logo.png""#));
        assert!(html.contains(r#"href="tel:+15550100199""#));
        assert!(html.contains(r#"href="mailto:help@acme.test""#));
    }
}

#[tokio::test]
async fn developer_portal_prints_discovery_limits_errors_and_sandbox() {
    let config = PagesConfig {
        rate_limits: RateLimits {
            requests_per_second: 37,
            burst: 74,
        },
        directory_rate_limits: RateLimits {
            requests_per_second: 12,
            burst: 24,
        },
        client_requests_per_minute: 120,
        edge_rate_limits: Some(EdgeRateLimits {
            all_routes: 15000,
            sign_in: 300,
            credentials: 1500,
        }),
        ..PagesConfig::default()
    };
    let pages = PublicPages::new(config, StaticDirectory::default());
    let html = get_html(&pages, "/developers").await;
    for needed in [
        "https://api.example-plan.test/metadata",
        "https://api.example-plan.test/.well-known/smart-configuration",
        "https://api.example-plan.test/authorize",
        "https://api.example-plan.test/token",
        r#"<span data-limit="rate">37</span>"#,
        r#"<span data-limit="burst">74</span>"#,
        r#"<span data-limit="directory-rate">12</span>"#,
        r#"<span data-limit="directory-burst">24</span>"#,
        r#"<span data-limit="per-app">120</span>"#,
        r#"<span data-limit="edge-all">15000</span>"#,
        r#"<span data-limit="edge-sign-in">300</span>"#,
        r#"<span data-limit="edge-credentials">1500</span>"#,
        "https://api.example-plan.test/Patient/$member-match",
        "https://api.example-plan.test/Group/$bulk-member-match",
        "$davinci-data-export?exportType=hl7.fhir.us.davinci-pdex%23payertopayer",
        "/Patient/{id}/$everything",
        "patient-access serve",
        "patient-access members",
        "patient-access apps register",
        "OperationOutcome",
        "curl",
    ] {
        assert!(html.contains(needed), "/developers lacks {needed:?}");
    }
    let statuses = attribute_values(&html, "data-status");
    for status in [
        "400", "401", "403", "404", "405", "406", "410", "413", "415",
    ] {
        assert!(
            statuses.iter().any(|s| s == status),
            "/developers lacks {status}"
        );
    }
    for question in ATTESTATION_QUESTIONS {
        let escaped = question.replace('\'', "&#39;");
        assert!(
            html.contains(question) || html.contains(&escaped),
            "{question}"
        );
    }
    for member in demo_data::generate(&demo_data::DemoConfig::default()).members {
        assert!(html.contains(&member.patient_id) && html.contains(&member.email));
    }
}

/// What `/metadata` advertises per resource: search parameters, includes, profiles.
fn advertised() -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let statement = capability_statement(&api(), "test");
    let mut params = BTreeSet::new();
    let mut includes = BTreeSet::new();
    let mut profiles = BTreeSet::new();
    let resources = statement["rest"][0]["resource"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !resources.is_empty(),
        "the CapabilityStatement lists no resources"
    );
    for resource in resources {
        let name = resource["type"].as_str().unwrap_or_default().to_owned();
        for param in resource["searchParam"].as_array().into_iter().flatten() {
            params.insert(format!(
                "{name}:{}",
                param["name"].as_str().unwrap_or_default()
            ));
        }
        for include in resource["searchInclude"].as_array().into_iter().flatten() {
            includes.insert(format!("{name}|{}", include.as_str().unwrap_or_default()));
        }
        profiles.insert(format!(
            "{name} {}",
            resource["profile"].as_str().unwrap_or_default()
        ));
        for profile in resource["supportedProfile"]
            .as_array()
            .into_iter()
            .flatten()
        {
            profiles.insert(format!("{name} {}", profile.as_str().unwrap_or_default()));
        }
    }
    (params, includes, profiles)
}

/// Fails when the portal lists a search parameter (or include, or profile) that
/// `/metadata` does not, or the reverse.
#[tokio::test]
async fn developer_portal_lists_exactly_what_metadata_advertises() {
    let html = get_html(&pages_with(vec![]), "/developers").await;
    let (params, includes, profiles) = advertised();

    let listed: BTreeSet<String> = attribute_values(&html, "data-param").into_iter().collect();
    assert_eq!(
        listed, params,
        "search parameters differ between /developers and /metadata"
    );

    let listed: BTreeSet<String> = attribute_values(&html, "data-include")
        .into_iter()
        .map(|v| v.replace("&#58;", ":"))
        .collect();
    assert_eq!(
        listed, includes,
        "includes differ between /developers and /metadata"
    );

    let listed: BTreeSet<String> = html
        .split("<code data-profile=\"")
        .skip(1)
        .filter_map(|rest| {
            let (name, rest) = rest.split_once("\">")?;
            let (url, _) = rest.split_once("</code>")?;
            Some(format!("{name} {url}"))
        })
        .collect();
    assert_eq!(
        listed, profiles,
        "profiles differ between /developers and /metadata"
    );
}

mod find_a_provider {
    //! `/directory/find` over a real directory store holding the demo roster, searched
    //! by the directory API's own code.

    use std::sync::Arc;

    use directory_api::{DirectoryApi, DirectoryConfig};
    use directory_load::{FileStatus, LoadConfig, Mode, PlanIdentity, load_file};
    use store_redb::RedbStore;

    use super::*;

    struct Finder {
        pages: PublicPages,
        _dir: tempfile::TempDir,
    }

    async fn finder() -> Finder {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(RedbStore::open(dir.path().join("directory.redb")).expect("open"));
        let config = LoadConfig {
            plan: PlanIdentity {
                organization_id: "org-payer-999996666".into(),
                name: "Demo Health Plan".into(),
            },
            stale_after_days: 30,
        };
        let csv = demo_data::roster::roster_csv();
        let report = load_file(
            store.as_ref(),
            "roster.snapshot.csv",
            csv.as_bytes(),
            Mode::Snapshot,
            &config,
        )
        .await
        .expect("store");
        assert_eq!(report.status, FileStatus::Applied, "{:?}", report.problems);
        let api = DirectoryApi::new(
            store,
            Arc::new(smart_auth::CursorSealer::new([3; 32])),
            DirectoryConfig::new(format!("{BASE}/directory")),
        );
        Finder {
            pages: pages_with(vec![]).with_provider_search(api),
            _dir: dir,
        }
    }

    /// The providers' names on a results page, in order.
    fn names(html: &str) -> Vec<String> {
        html.split("<h3>")
            .skip(1)
            .filter_map(|rest| rest.split("</h3>").next())
            .map(str::to_owned)
            .collect()
    }

    async fn page(finder: &Finder, uri: &str) -> (StatusCode, String) {
        let response = call(&finder.pages, Method::GET, uri).await;
        let status = response.status();
        (
            status,
            String::from_utf8(response.body().to_vec()).expect("utf-8"),
        )
    }

    #[tokio::test]
    async fn an_empty_query_shows_the_form_with_the_plan_networks_and_no_results() {
        let finder = finder().await;
        let (status, html) = page(&finder, "/directory/find").await;
        assert_eq!(status, StatusCode::OK);
        for field in [
            "name=\"specialty\"",
            "name=\"where\"",
            "name=\"distance\"",
            "name=\"network\"",
            "name=\"accepting\"",
            "name=\"language\"",
        ] {
            assert!(html.contains(field), "the form lacks {field}");
        }
        assert!(html.contains("<option value=\"network-demo-ppo\">"));
        assert!(!html.contains("id=\"results\""));
        assert!(!html.contains("<script"));
        assert!(attribute_values(&html, "href").contains(&"/developers#directory".to_owned()));
    }

    #[tokio::test]
    async fn a_specialty_in_a_zip_code_lists_the_provider_with_address_phone_and_map() {
        let finder = finder().await;
        let (status, html) = page(
            &finder,
            "/directory/find?specialty=Family+medicine&where=43210",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(names(&html), ["Alicia Moreno"]);
        assert!(html.contains("Family Medicine Physician"));
        assert!(html.contains("500 River Road"));
        assert!(html.contains("Columbus, OH 43210"));
        assert!(html.contains("Demo Health Plan PPO Network") || html.contains("PPO Network"));
        let hrefs = attribute_values(&html, "href");
        assert!(
            hrefs.iter().any(|h| h.starts_with("tel:614555")),
            "{hrefs:?}"
        );
        assert!(
            hrefs
                .iter()
                .any(|h| h.starts_with("https://www.openstreetmap.org/?mlat=39.96")),
            "{hrefs:?}"
        );
        // A taxonomy code finds the same provider.
        let (_, by_code) = page(&finder, "/directory/find?specialty=207Q00000X&where=43210").await;
        assert_eq!(names(&by_code), ["Alicia Moreno"]);
    }

    #[tokio::test]
    async fn a_distance_from_a_city_then_new_patients_then_language_narrow_the_list() {
        let finder = finder().await;
        let near = "/directory/find?where=Columbus&distance=10";
        let (status, html) = page(&finder, near).await;
        assert_eq!(status, StatusCode::OK);
        let mut found = names(&html);
        found.sort();
        // The Columbus sites; Dayton (about 70 miles away) is out.
        assert_eq!(
            found,
            [
                "Alicia Moreno",
                "Priya Raman",
                "Sarah Lindqvist",
                "Thomas Becker"
            ]
        );
        let (_, accepting) = page(&finder, &format!("{near}&accepting=yes")).await;
        let mut found = names(&accepting);
        found.sort();
        assert_eq!(found, ["Alicia Moreno", "Thomas Becker"]);
        let (_, spanish) = page(&finder, &format!("{near}&accepting=yes&language=es")).await;
        assert_eq!(names(&spanish), ["Alicia Moreno"]);
        assert!(spanish.contains("English, Spanish"));
        let (_, network) = page(
            &finder,
            "/directory/find?where=Westerville&network=network-demo-ppo",
        )
        .await;
        let mut found = names(&network);
        found.sort();
        assert_eq!(found, ["Grace Liu", "Omar Haddad"]);
    }

    #[tokio::test]
    async fn a_search_that_matches_nothing_says_so() {
        let finder = finder().await;
        let (status, html) = page(&finder, "/directory/find?specialty=Podiatry").await;
        assert_eq!(status, StatusCode::OK);
        assert!(names(&html).is_empty());
        assert!(html.contains("No providers match this search"));
    }

    #[tokio::test]
    async fn bad_input_gets_the_form_and_a_plain_reason_never_a_server_error() {
        let finder = finder().await;
        for (uri, reason) in [
            (
                "/directory/find?where=Columbus&distance=7",
                "Choose a distance",
            ),
            ("/directory/find?distance=10", "Enter a ZIP code or city"),
            ("/directory/find?network=..%2Fetc", "Choose a network"),
            ("/directory/find?language=%3Cscript%3E", "Choose a language"),
            (
                "/directory/find?where=99999&distance=25",
                "No provider locations",
            ),
        ] {
            let (status, html) = page(&finder, uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert!(html.contains(reason), "{uri}: {reason}");
            assert!(html.contains("role=\"alert\""), "{uri}");
            assert!(
                html.contains("name=\"specialty\""),
                "{uri}: the form is shown again"
            );
        }
        // Anything typed is echoed escaped, and odd bytes never reach a 500.
        for uri in [
            "/directory/find?specialty=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "/directory/find?specialty=%FF%FE&where=%00%01",
            "/directory/find?where=Columbus%2C+OH&specialty=a|b,c$d",
        ] {
            let (status, html) = page(&finder, uri).await;
            assert!(
                status.is_success() || status == StatusCode::BAD_REQUEST,
                "{uri}: {status}"
            );
            assert!(!html.contains("<script>"), "{uri}");
        }
    }

    #[tokio::test]
    async fn without_a_directory_the_page_answers_503_in_the_site_layout() {
        let (status, html) = {
            let pages = pages_with(vec![]);
            let response = call(&pages, Method::GET, "/directory/find?specialty=x").await;
            (
                response.status(),
                String::from_utf8(response.body().to_vec()).expect("utf-8"),
            )
        };
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(html.contains("Provider search unavailable"));
    }
}
