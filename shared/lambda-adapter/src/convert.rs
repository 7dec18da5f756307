use bytes::Bytes;
use lambda_http::{Body, Request, RequestExt, Response};

use crate::edge::PublicHost;
use crate::env::optional;

/// The API's public base URL: `FHIR_BASE_URL` (a custom domain) when set, otherwise
/// `https://` and the domain each request came through. A template cannot pass an
/// HTTP API's own URL (nor its CloudFront distribution's) to its functions without a
/// circular dependency, so without a custom domain the function learns it from the
/// request.
#[derive(Debug, Clone, Default)]
pub struct BaseUrl {
    configured: Option<String>,
}

impl BaseUrl {
    /// `FHIR_BASE_URL`, without a trailing slash.
    pub fn from_env() -> Self {
        BaseUrl::new(optional("FHIR_BASE_URL"))
    }

    /// A fixed base URL, or `None` for the request's domain.
    pub fn new(configured: Option<String>) -> Self {
        BaseUrl {
            configured: configured.map(|url| url.trim_end_matches('/').to_owned()),
        }
    }

    /// The configured URL, or the public host of a request that came through the
    /// CloudFront edge ([`PublicHost`]), or the API Gateway domain of `request` (its
    /// `Host` header outside API Gateway).
    pub fn for_request(&self, request: &Request) -> String {
        if let Some(base) = &self.configured {
            return base.clone();
        }
        if let Some(PublicHost(host)) = request.extensions().get::<PublicHost>() {
            return format!("https://{host}");
        }
        let domain = match request.request_context_ref() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
                context.domain_name.clone()
            }
            _ => None,
        };
        let host = domain.or_else(|| {
            request
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
        format!("https://{}", host.unwrap_or_else(|| "localhost".to_owned()))
    }
}

/// An API Gateway request as the plain `http::Request<Bytes>` the FHIR layer takes.
///
/// The path and query come from the raw request URI (`rawPath`, `rawQueryString`), so
/// the FHIR layer parses them the same way on Lambda and in the local runner.
pub fn from_lambda(request: Request) -> http::Request<Bytes> {
    let (parts, body) = request.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(binary) => Bytes::from(binary),
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

/// A response from the FHIR layer as a Lambda response. JSON is text, so API Gateway
/// passes it through without base64.
pub fn to_lambda(response: http::Response<Bytes>) -> Response<Body> {
    let (parts, bytes) = response.into_parts();
    let body = match String::from_utf8(bytes.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(error) => Body::Binary(error.into_bytes()),
    };
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_gateway_event_keeps_path_query_and_body() {
        let event = include_str!("../../../events/explanation-of-benefit-search-post.json");
        let request =
            lambda_http::request::from_str(event).expect("fixture is a valid API Gateway v2 event");
        let request = from_lambda(request);
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri().path(), "/ExplanationOfBenefit/_search");
        assert!(
            std::str::from_utf8(request.body())
                .unwrap()
                .contains("patient=")
        );
    }

    #[test]
    fn the_base_url_is_the_configured_one_or_the_request_domain() {
        let event = include_str!("../../../events/explanation-of-benefit-search-post.json");
        let request =
            || lambda_http::request::from_str(event).expect("a valid API Gateway v2 event");
        assert_eq!(
            BaseUrl::new(Some("https://fhir.plan.example/".into())).for_request(&request()),
            "https://fhir.plan.example"
        );
        assert_eq!(
            BaseUrl::new(None).for_request(&request()),
            "https://abc123xyz.execute-api.us-east-1.amazonaws.com"
        );
        let mut through_edge = request();
        through_edge
            .extensions_mut()
            .insert(PublicHost("d111.cloudfront.net".into()));
        assert_eq!(
            BaseUrl::new(None).for_request(&through_edge),
            "https://d111.cloudfront.net"
        );
    }

    #[test]
    fn json_bodies_go_back_as_text() {
        let response = http::Response::new(Bytes::from_static(b"{\"resourceType\":\"Bundle\"}"));
        assert!(matches!(to_lambda(response).into_body(), Body::Text(_)));
    }
}
