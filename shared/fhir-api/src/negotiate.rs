use http::HeaderMap;
use http::header::ACCEPT;

use crate::ApiError;

/// The JSON media type a response is labelled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonFlavour {
    Fhir,
    Plain,
}

impl JsonFlavour {
    pub fn content_type(self) -> &'static str {
        match self {
            JsonFlavour::Fhir => "application/fhir+json; charset=utf-8",
            JsonFlavour::Plain => "application/json; charset=utf-8",
        }
    }
}

/// Chooses the response format from `_format` (which wins, as FHIR says) or `Accept`.
///
/// We serve JSON only: CARIN makes XML a SHOULD, and no CARIN client we know of asks
/// for it. Asking for nothing but XML (or another type) is 406.
pub fn negotiate(format_param: Option<&str>, headers: &HeaderMap) -> Result<JsonFlavour, ApiError> {
    if let Some(format) = format_param {
        return match format.trim() {
            "json" | "application/fhir+json" => Ok(JsonFlavour::Fhir),
            "application/json" => Ok(JsonFlavour::Plain),
            _ => Err(ApiError::NotAcceptable),
        };
    }
    let accept = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if accept.trim().is_empty() {
        return Ok(JsonFlavour::Fhir);
    }
    let mut best: Option<JsonFlavour> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            let p = p.trim().replace(' ', "");
            p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
        });
        if refused {
            continue;
        }
        let flavour = match media.as_str() {
            "application/fhir+json" | "application/json+fhir" | "*/*" | "application/*" => {
                JsonFlavour::Fhir
            }
            "application/json" => JsonFlavour::Plain,
            _ => continue,
        };
        // Prefer the FHIR media type when the client accepts both.
        if best != Some(JsonFlavour::Fhir) {
            best = Some(flavour);
        }
    }
    best.ok_or(ApiError::NotAcceptable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn fhir_json_is_the_default() {
        assert_eq!(
            negotiate(None, &HeaderMap::new()).unwrap(),
            JsonFlavour::Fhir
        );
        assert_eq!(negotiate(None, &accept("*/*")).unwrap(), JsonFlavour::Fhir);
    }

    #[test]
    fn plain_json_is_honoured() {
        assert_eq!(
            negotiate(None, &accept("application/json")).unwrap(),
            JsonFlavour::Plain
        );
        assert_eq!(
            negotiate(Some("application/json"), &HeaderMap::new()).unwrap(),
            JsonFlavour::Plain
        );
    }

    #[test]
    fn format_parameter_overrides_accept() {
        assert_eq!(
            negotiate(Some("json"), &accept("application/fhir+xml")).unwrap(),
            JsonFlavour::Fhir
        );
        assert!(matches!(
            negotiate(Some("xml"), &HeaderMap::new()),
            Err(ApiError::NotAcceptable)
        ));
    }

    #[test]
    fn xml_only_is_not_acceptable() {
        assert!(matches!(
            negotiate(None, &accept("application/fhir+xml")),
            Err(ApiError::NotAcceptable)
        ));
        assert!(matches!(
            negotiate(None, &accept("application/fhir+json;q=0, application/xml")),
            Err(ApiError::NotAcceptable)
        ));
    }

    #[test]
    fn json_with_quality_and_xml_picks_json() {
        let headers = accept("application/fhir+xml;q=1.0, application/fhir+json;q=0.9");
        assert_eq!(negotiate(None, &headers).unwrap(), JsonFlavour::Fhir);
    }
}
