use serde::{Deserialize, Serialize};

use crate::ResourceType;

/// True when `id` is a valid FHIR logical id: 1–64 of `[A-Za-z0-9-.]`.
///
/// Everything that becomes a storage key passes through this check first, so key
/// separators can never appear inside an id.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A reference to one of our resources, parsed from `Type/id`, `Type/id/_history/v`
/// or an absolute URL ending in either form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl Reference {
    pub fn new(resource_type: ResourceType, id: impl Into<String>) -> Self {
        Reference {
            resource_type,
            id: id.into(),
            version: None,
        }
    }

    /// Parses a literal reference. Contained (`#x`), logical and foreign-type references
    /// give `None`: they do not resolve within this API.
    pub fn parse(reference: &str) -> Option<Reference> {
        let segments: Vec<&str> = reference.trim_end_matches('/').split('/').collect();
        let (type_at, version) = match segments.as_slice() {
            [.., _, _, "_history", v] => (segments.len() - 4, Some(v.parse::<u64>().ok()?)),
            [.., _, _] => (segments.len() - 2, None),
            _ => return None,
        };
        let resource_type = segments[type_at].parse::<ResourceType>().ok()?;
        let id = segments[type_at + 1];
        is_valid_id(id).then(|| Reference {
            resource_type,
            id: id.to_owned(),
            version,
        })
    }

    /// The relative, unversioned form `Type/id` that we write into resources.
    pub fn relative(&self) -> String {
        format!("{}/{}", self.resource_type, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_fhir_id_rule() {
        assert!(is_valid_id("eob-1.2"));
        assert!(is_valid_id(&"a".repeat(64)));
        assert!(!is_valid_id(&"a".repeat(65)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("a b"));
        assert!(!is_valid_id("a\u{0}b"));
    }

    #[test]
    fn parses_relative_versioned_and_absolute_references() {
        let plain = Reference::parse("Patient/p1").unwrap();
        assert_eq!(plain, Reference::new(ResourceType::Patient, "p1"));
        let versioned = Reference::parse("Coverage/c1/_history/3").unwrap();
        assert_eq!(versioned.version, Some(3));
        let absolute = Reference::parse("https://fhir.example.org/r4/Organization/o1").unwrap();
        assert_eq!(absolute.relative(), "Organization/o1");
    }

    #[test]
    fn rejects_what_does_not_resolve_here() {
        assert_eq!(Reference::parse("#contained"), None);
        assert_eq!(Reference::parse("Observation/o1"), None);
        assert_eq!(Reference::parse("p1"), None);
        assert_eq!(Reference::parse("Patient/bad id"), None);
        assert_eq!(Reference::parse("Patient/p1/_history/x"), None);
    }
}
