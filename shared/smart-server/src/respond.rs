//! Small response and request helpers shared by every endpoint.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde_json::Value;

/// The largest form body we read (authorize POST, token, pages).
pub const MAX_FORM_BYTES: usize = 16 * 1024;

pub fn json_response(status: StatusCode, body: &Value) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1): tokens and pages
/// with one-time values must not be cached anywhere.
pub fn no_store(response: &mut Response<Bytes>) {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A discovery document. It may be read from any origin (SMART §4.1, Inferno CORS
/// tests): `http_policy` sets that, with every other endpoint's CORS, on Lambda and
/// locally.
pub fn public_json(body: &Value) -> Response<Bytes> {
    json_response(StatusCode::OK, body)
}

/// An HTML page with the headers member-auth.md §8.C.74 and §8.F.103 ask for: no
/// framing, no sniffing, no referrer (the code must never leak through `Referer`), a
/// CSP that allows no script at all, and no caching.
pub fn html_response(status: StatusCode, html: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(html));
    *response.status_mut() = status;
    no_store(&mut response);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The pages' Content-Security-Policy: no script at all, forms post only to us.
const PAGE_CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Lets the page's form submission end at the app's redirect URI.
///
/// Browsers apply `form-action` to every redirect that follows a form submission
/// (Chromium blocks the request outright), so the consent page, whose POST answers with
/// a 303 to the app, must name the redirect URI's origin (or, for a private-use URI
/// scheme, its scheme) besides `'self'`. A URI that does not reduce to a plain source
/// expression leaves the policy unchanged.
pub fn allow_form_redirect_to(response: &mut Response<Bytes>, redirect_uri: &str) {
    let Some(source) = csp_source(redirect_uri) else {
        return;
    };
    let policy = PAGE_CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {source}"),
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

/// The CSP source expression for a redirect URI: `scheme://host[:port]` for http(s),
/// `scheme:` otherwise. `None` for anything with characters a source may not carry.
fn csp_source(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Some(format!("{scheme}:"));
    }
    let authority = rest.strip_prefix("//")?.split(['/', '?', '#']).next()?;
    let authority_ok = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    authority_ok.then(|| format!("{scheme}://{authority}"))
}

/// A redirect (`302` after GET, `303` after POST so the browser follows with GET).
pub fn redirect(location: &str, after_post: bool) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = if after_post {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    no_store(&mut response);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
        response.headers_mut().insert(
            http::header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

/// Form or query parameters, each name's values in order.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(bytes: &[u8]) -> Params {
        Params(form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The request's parameters: the query for GET, the form body for POST (a POST
    /// with a non-form body has none).
    pub fn of_request(request: &Request<Bytes>) -> Params {
        if request.method() == http::Method::POST {
            if !is_form(request.headers()) || request.body().len() > MAX_FORM_BYTES {
                return Params::default();
            }
            return Params::parse(request.body());
        }
        Params::parse(request.uri().query().unwrap_or_default().as_bytes())
    }

    /// The single value of `name`. A repeated parameter counts as absent: RFC 6749 §3.1
    /// says parameters MUST NOT be included more than once.
    pub fn one(&self, name: &str) -> Option<&str> {
        let mut values = self.0.iter().filter(|(k, _)| k == name);
        let first = values.next()?;
        if values.next().is_some() {
            return None;
        }
        Some(first.1.as_str())
    }

    /// Whether `name` appears more than once.
    pub fn repeated(&self, name: &str) -> bool {
        self.0.iter().filter(|(k, _)| k == name).count() > 1
    }

    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The value of cookie `name`, if sent exactly once.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// Appends `name=value` pairs to `base` (which may already have a query), percent-encoded.
pub fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    let query = serializer.finish();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_redirect_source_is_the_redirect_uris_origin_or_scheme() {
        assert_eq!(
            csp_source("https://app.example/cb?x=1").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            csp_source("http://localhost:8000/callback").as_deref(),
            Some("http://localhost:8000")
        );
        assert_eq!(
            csp_source("com.example.app:/oauth").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(csp_source("https://a.example;script-src */cb"), None);
        assert_eq!(csp_source("https://user@a.example/cb"), None);
        assert_eq!(csp_source("no scheme"), None);
    }

    #[test]
    fn consent_page_policy_adds_only_the_redirect_origin_to_form_action() {
        let mut response = html_response(StatusCode::OK, String::new());
        allow_form_redirect_to(&mut response, "https://app.example/cb");
        let policy = response.headers()[http::header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(policy.contains("form-action 'self' https://app.example;"));
        assert!(policy.contains("default-src 'none'"));
    }
}
