use fhir::ResourceType;
use http::Method;

use crate::ApiError;

/// The FHIR RESTful interactions this server answers, parsed from method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Read {
        resource_type: ResourceType,
        id: String,
    },
    Vread {
        resource_type: ResourceType,
        id: String,
        version: String,
    },
    SearchGet {
        resource_type: ResourceType,
    },
    SearchPost {
        resource_type: ResourceType,
    },
}

impl Route {
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Route::Read { resource_type, .. }
            | Route::Vread { resource_type, .. }
            | Route::SearchGet { resource_type }
            | Route::SearchPost { resource_type } => *resource_type,
        }
    }
}

const READ_ONLY: &str = "GET";
const SEARCH: &str = "GET, POST";

/// Parses `/{type}`, `/{type}/_search`, `/{type}/{id}` and `/{type}/{id}/_history/{vid}`.
///
/// Unknown paths are 404; a known path with another method is 405 with `Allow`, so a
/// client learns this server is read-only rather than that the resource is missing.
pub fn parse(method: &Method, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let not_found = || ApiError::NotFound(format!("no FHIR endpoint at {}", printable(path)));
    let resource_type: ResourceType = segments
        .first()
        .and_then(|s| s.parse().ok())
        .ok_or_else(not_found)?;
    let (route, allow) = match segments.as_slice() {
        [_] => (Route::SearchGet { resource_type }, SEARCH),
        [_, "_search"] => (Route::SearchPost { resource_type }, "POST"),
        [_, id] => (
            Route::Read {
                resource_type,
                id: (*id).to_owned(),
            },
            READ_ONLY,
        ),
        [_, id, "_history", version] => (
            Route::Vread {
                resource_type,
                id: (*id).to_owned(),
                version: (*version).to_owned(),
            },
            READ_ONLY,
        ),
        _ => return Err(not_found()),
    };
    let method_ok = match &route {
        Route::SearchGet { .. } if *method == Method::POST => {
            // `POST /Type` is FHIR create, which this read-only server does not offer.
            return Err(ApiError::MethodNotAllowed {
                method: method.to_string(),
                allow: SEARCH,
            });
        }
        Route::SearchGet { .. } | Route::Read { .. } | Route::Vread { .. } => {
            *method == Method::GET || *method == Method::HEAD
        }
        Route::SearchPost { .. } => *method == Method::POST,
    };
    if method_ok {
        Ok(route)
    } else {
        Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            allow,
        })
    }
}

/// Paths end up in error messages; keep them short and free of control characters.
fn printable(path: &str) -> String {
    path.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_interaction() {
        let t = ResourceType::ExplanationOfBenefit;
        assert_eq!(
            parse(&Method::GET, "/ExplanationOfBenefit").ok(),
            Some(Route::SearchGet { resource_type: t })
        );
        assert_eq!(
            parse(&Method::POST, "/ExplanationOfBenefit/_search").ok(),
            Some(Route::SearchPost { resource_type: t })
        );
        assert_eq!(
            parse(&Method::GET, "/ExplanationOfBenefit/e1").ok(),
            Some(Route::Read {
                resource_type: t,
                id: "e1".into()
            })
        );
        assert_eq!(
            parse(&Method::GET, "/ExplanationOfBenefit/e1/_history/2").ok(),
            Some(Route::Vread {
                resource_type: t,
                id: "e1".into(),
                version: "2".into()
            })
        );
    }

    #[test]
    fn writes_are_method_not_allowed() {
        for (method, path) in [
            (Method::DELETE, "/Patient/p1"),
            (Method::PUT, "/Patient/p1"),
            (Method::POST, "/Patient"),
            (Method::GET, "/Patient/_search"),
        ] {
            assert!(
                matches!(parse(&method, path), Err(ApiError::MethodNotAllowed { .. })),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn unknown_types_and_deep_paths_are_not_found() {
        for path in [
            "/Observation",
            "/",
            "/Patient/p1/_history",
            "/Patient/p1/x/y/z",
        ] {
            assert!(
                matches!(parse(&Method::GET, path), Err(ApiError::NotFound(_))),
                "{path}"
            );
        }
    }
}
