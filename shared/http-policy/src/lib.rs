//! The one place that decides, for every HTTP answer the stack gives, who may read it
//! across origins and which security headers it carries (issue #14, finding 7). The
//! Lambda functions apply it in `lambda_adapter::serve_http`, the local server in its
//! router, so no handler sets CORS or these headers itself, and a handler that did is
//! overruled.
//!
//! **Who may read what cross-origin.** Three kinds of endpoint, told apart by path
//! ([`policy`]):
//!
//! - *Token APIs* (the FHIR API, `/token`, `/revoke`, `/introspect`, bulk status and
//!   files): `Access-Control-Allow-Origin: *` and never `Access-Control-Allow-Credentials`.
//!   A browser app (a public SMART client) on any origin must reach them, and what they
//!   return is authorised by a bearer token the app sends itself: a browser never adds
//!   one on its own, so a page without the token reads only the 401.
//! - *Public* (the Provider Directory API under `/directory`, discovery under
//!   `/.well-known`, `/metadata`): the same `*`, no credentials; public data.
//! - *Member sessions* (`/authorize` and the sign-in forms under it, `/connected-apps`,
//!   anything not listed above): no CORS at all, and a preflight is refused. They run on
//!   the member's session cookie, which a cross-origin request could carry; a page of
//!   another origin must not read them. An unknown path falls here: the safe default.
//!
//! **Headers on every answer.** `X-Content-Type-Options: nosniff`, `X-Frame-Options:
//! DENY` and a CSP with `frame-ancestors 'none'` (added to a page's own CSP when it
//! lacks one; `default-src 'none'` besides for non-HTML), `Referrer-Policy: no-referrer`
//! unless the handler chose one, `Strict-Transport-Security` over HTTPS, and
//! `Cache-Control: no-store` (with `Pragma: no-cache`) wherever member data may be:
//! every path but the public ones and the public pages.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};

/// How answers reach the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// API Gateway: HTTPS only, so HSTS is sent.
    Https,
    /// The local server on plain `http://`: browsers ignore HSTS received over HTTP
    /// (RFC 6797 §8.1), and `localhost` must stay reachable over HTTP, so it is not sent.
    Http,
}

/// What [`policy`] decides for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Readable by a script of any origin, without credentials.
    pub cross_origin: bool,
    /// May carry member data (or tokens): never stored by a cache.
    pub member_data: bool,
}

const TOKEN_API: Policy = Policy {
    cross_origin: true,
    member_data: true,
};
const PUBLIC_API: Policy = Policy {
    cross_origin: true,
    member_data: false,
};
const PUBLIC_PAGE: Policy = Policy {
    cross_origin: false,
    member_data: false,
};
const MEMBER_SESSION: Policy = Policy {
    cross_origin: false,
    member_data: true,
};

/// The policy of a request path (without the query).
pub fn policy(path: &str) -> Policy {
    let first = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    match first {
        // `/directory/find` is the public Find-a-provider page, the rest the API.
        "directory" if path == "/directory/find" => PUBLIC_PAGE,
        "directory" | ".well-known" | "metadata" => PUBLIC_API,
        "members" | "developers" | "apps" => PUBLIC_PAGE,
        "token" | "revoke" | "introspect" | "bulk-status" | "bulk-files" => TOKEN_API,
        // FHIR resource types (`/Patient`, `/Group/{id}/$export`, ...).
        _ if first.starts_with(|c: char| c.is_ascii_uppercase()) => TOKEN_API,
        _ => MEMBER_SESSION,
    }
}

const ALLOW_METHODS: &str = "GET, POST, HEAD";
const ALLOW_HEADERS: &str = "authorization, content-type, accept, prefer";
/// Response headers a browser app needs besides the CORS-safelisted ones: where a
/// created job or resource is, its version, the bulk progress and wait, the reason of
/// a 401.
const EXPOSE_HEADERS: &str =
    "content-location, location, etag, last-modified, retry-after, x-progress, www-authenticate";
const MAX_AGE_SECONDS: &str = "600";
const HSTS: &str = "max-age=31536000; includeSubDomains";
const FRAME_ANCESTORS: &str = "frame-ancestors 'none'";
const NON_HTML_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Answers a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`): 204 with the allowed methods and headers where
/// [`Policy::cross_origin`], 403 without any CORS header elsewhere. `None` for every
/// other request, which goes to its handler.
pub fn preflight<B: Default>(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    transport: Transport,
) -> Option<Response<B>> {
    if method != Method::OPTIONS
        || !headers.contains_key(header::ORIGIN)
        || !headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    let mut response = Response::new(B::default());
    *response.status_mut() = if policy(path).cross_origin {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::FORBIDDEN
    };
    secure(path, transport, &mut response);
    if policy(path).cross_origin {
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECONDS),
        );
    }
    Some(response)
}

/// Sets the CORS and security headers of the answer to a request for `path`. Any
/// `Access-Control-*` header the handler set is replaced by the policy's.
pub fn secure<B>(path: &str, transport: Transport, response: &mut Response<B>) {
    let policy = policy(path);
    let headers = response.headers_mut();
    let set_by_handler: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in set_by_handler {
        headers.remove(name);
    }
    if policy.cross_origin {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::REFERRER_POLICY) {
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    deny_framing(headers);
    if transport == Transport::Https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    if policy.member_data {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
}

/// A CSP with `frame-ancestors 'none'`: the handler's own, extended if it lacks the
/// directive; else `frame-ancestors 'none'` for a page (its styles and images stay
/// allowed) and `default-src 'none'` besides for anything else.
fn deny_framing(headers: &mut HeaderMap) {
    let own = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let policy = match own {
        Some(own) if own.contains("frame-ancestors") => return,
        Some(own) => HeaderValue::from_str(&format!(
            "{}; {FRAME_ANCESTORS}",
            own.trim_end_matches([';', ' '])
        ))
        .unwrap_or(HeaderValue::from_static(NON_HTML_CSP)),
        None if is_html(headers) => HeaderValue::from_static(FRAME_ANCESTORS),
        None => HeaderValue::from_static(NON_HTML_CSP),
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight_for(path: &str) -> Response<()> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        headers.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        preflight(&Method::OPTIONS, path, &headers, Transport::Https)
            .unwrap_or_else(|| panic!("{path}: a preflight is answered"))
    }

    #[test]
    fn paths_fall_into_their_kind_and_unknown_ones_into_the_member_session() {
        for path in [
            "/Patient/1",
            "/ExplanationOfBenefit",
            "/Group/npi-1/$export",
            "/token",
            "/bulk-files/j/f",
        ] {
            assert_eq!(policy(path), TOKEN_API, "{path}");
        }
        for path in [
            "/directory/Practitioner",
            "/directory/metadata",
            "/.well-known/smart-configuration",
            "/metadata",
        ] {
            assert_eq!(policy(path), PUBLIC_API, "{path}");
        }
        for path in ["/members", "/directory/find"] {
            assert_eq!(policy(path), PUBLIC_PAGE, "{path}");
        }
        for path in [
            "/authorize",
            "/authorize/signin",
            "/connected-apps",
            "/_admin/x",
            "/",
            "/anything",
        ] {
            assert_eq!(policy(path), MEMBER_SESSION, "{path}");
        }
    }

    #[test]
    fn member_pages_refuse_preflights_and_drop_a_handlers_cors_headers() {
        let refused = preflight_for("/connected-apps");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(
            refused
                .headers()
                .keys()
                .all(|name| !name.as_str().starts_with("access-control-"))
        );
        let mut response = Response::new(());
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        secure("/authorize", Transport::Https, &mut response);
        assert!(
            response
                .headers()
                .keys()
                .all(|name| !name.as_str().starts_with("access-control-"))
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }

    #[test]
    fn token_apis_allow_any_origin_without_credentials() {
        let allowed = preflight_for("/token");
        assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
        assert_eq!(allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(
            allowed.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap_or_default()
                .contains("authorization")
        );
        assert!(
            !allowed
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
        );
    }

    #[test]
    fn every_answer_carries_the_security_headers_and_hsts_only_over_https() {
        let mut json = Response::new(());
        secure("/Patient/1", Transport::Https, &mut json);
        let headers = json.headers();
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], NON_HTML_CSP);
        assert_eq!(headers[header::STRICT_TRANSPORT_SECURITY], HSTS);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");

        let mut page = Response::new(());
        page.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        page.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self';"),
        );
        page.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        secure("/members", Transport::Http, &mut page);
        let headers = page.headers();
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'; frame-ancestors 'none'"
        );
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
        assert!(!headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        // Public pages keep the caching their handler chose.
        assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=300");
    }
}
