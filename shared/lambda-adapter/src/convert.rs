use bytes::Bytes;
use lambda_http::{Body, Request, Response};

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
    fn json_bodies_go_back_as_text() {
        let response = http::Response::new(Bytes::from_static(b"{\"resourceType\":\"Bundle\"}"));
        assert!(matches!(to_lambda(response).into_body(), Body::Text(_)));
    }
}
