//! Turning a query string or a form body into decoded `(name, value)` pairs.

use crate::ApiError;

/// Query string and form-body parameters, decoded, in request order.
pub type Params = Vec<(String, String)>;

/// Decodes `application/x-www-form-urlencoded` text.
///
/// Query strings use the same encoding as form bodies, so one decoder serves GET and
/// `POST _search` and both give the same results. A `+` means a space here; the search
/// crate accepts a space where a time-zone `+` was sent unencoded.
pub fn decode(encoded: &[u8]) -> Result<Params, ApiError> {
    if std::str::from_utf8(encoded).is_err() {
        return Err(ApiError::BadRequest(
            "the parameters are not valid UTF-8".into(),
        ));
    }
    // form_urlencoded replaces invalid percent-decoded UTF-8 with U+FFFD; treat that as
    // malformed input rather than searching for a mangled value.
    let params: Params = form_urlencoded::parse(encoded).into_owned().collect();
    if params
        .iter()
        .any(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}'))
    {
        return Err(ApiError::BadRequest(
            "a parameter is not valid percent-encoded UTF-8".into(),
        ));
    }
    if params.iter().any(|(k, _)| k.is_empty()) {
        return Err(ApiError::BadRequest("a parameter has no name".into()));
    }
    Ok(params)
}

/// Removes every occurrence of `name` and returns the last value, if any.
pub fn take(params: &mut Params, name: &str) -> Option<String> {
    let mut found = None;
    params.retain(|(k, v)| {
        if k == name {
            found = Some(v.clone());
            false
        } else {
            true
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_escapes() {
        let params =
            decode(b"patient=Patient%2Fp1&service-date=gt2019-11-01T00:00:00+00:00").unwrap();
        assert_eq!(params[0], ("patient".into(), "Patient/p1".into()));
        assert_eq!(params[1].1, "gt2019-11-01T00:00:00 00:00");
    }

    #[test]
    fn rejects_broken_encodings() {
        assert!(decode(b"name=%FF%FE").is_err());
        assert!(decode(&[b'a', b'=', 0xC3]).is_err());
        assert!(decode(b"=value").is_err());
    }

    #[test]
    fn take_removes_all_and_keeps_the_last() {
        let mut params = decode(b"_count=5&a=1&_count=7").unwrap();
        assert_eq!(take(&mut params, "_count").as_deref(), Some("7"));
        assert_eq!(params, vec![("a".to_string(), "1".to_string())]);
    }
}
