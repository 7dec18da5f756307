//! The Lambda side of the public pages: one API Gateway event in, one response out.
//!
//! Kept apart from `main` so the events in `events/` can drive it in tests without a
//! Lambda runtime or AWS credentials.

use lambda_adapter::{FunctionConfig, from_lambda, to_lambda};
use lambda_http::{Body, Request, Response};
use public_pages::PublicPages;

/// Answers one request with the base URL (and so the OAuth endpoints) of the API
/// Gateway domain or custom domain it came through, as the FHIR functions do.
pub async fn answer(
    function: &FunctionConfig,
    pages: &PublicPages,
    request: Request,
) -> Response<Body> {
    let api = function.api_config(&function.base_url_for(&request));
    let request = from_lambda(request);
    to_lambda(pages.handle(&request, &api).await)
}

#[cfg(test)]
mod tests {
    use public_pages::{PagesConfig, StaticDirectory};

    use super::*;

    fn config() -> FunctionConfig {
        FunctionConfig {
            table_name: String::new(),
            base_url: None,
            token_issuer: None,
            jwks_url: None,
            cursor_secret: String::new(),
        }
    }

    async fn page(event: &str) -> (u16, String, String) {
        let request = lambda_http::request::from_str(event).expect("a valid API Gateway v2 event");
        let pages = PublicPages::new(PagesConfig::default(), StaticDirectory::default());
        let response = answer(&config(), &pages, request).await;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = match response.body() {
            Body::Text(text) => text.clone(),
            other => panic!("expected a text body, got {other:?}"),
        };
        (response.status().as_u16(), content_type, body)
    }

    #[tokio::test]
    async fn every_route_event_gets_its_page() {
        for (event, heading) in [
            (
                include_str!("../../../events/public-pages-members.json"),
                "Sharing your health information",
            ),
            (
                include_str!("../../../events/public-pages-developers.json"),
                "Developer portal",
            ),
            (
                include_str!("../../../events/public-pages-apps.json"),
                "App directory",
            ),
        ] {
            let (status, content_type, body) = page(event).await;
            assert_eq!(status, 200);
            assert_eq!(content_type, "text/html; charset=utf-8");
            assert!(body.contains(heading), "{heading}");
        }
    }

    #[tokio::test]
    async fn the_portal_names_the_domain_the_request_came_through() {
        let (_, _, body) = page(include_str!("../../../events/public-pages-developers.json")).await;
        assert!(body.contains("https://abc123xyz.execute-api.us-east-1.amazonaws.com/metadata"));
        assert!(body.contains("https://abc123xyz.execute-api.us-east-1.amazonaws.com/authorize"));
    }
}
