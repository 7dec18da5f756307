//! `system/` scopes: what a backend client may read.
//!
//! Like the member scopes in `smart-auth`, the parser only ever narrows: read (`r`) and
//! search (`s`) are kept, writes are dropped, and a scope it does not understand
//! grants nothing. Unlike them, a requested scope that the registration does not cover
//! is refused as a whole ([`SystemScopes::covers`]), so a client learns at once that
//! it asked for too much instead of getting a quietly narrower token.

use std::collections::BTreeMap;
use std::fmt;

/// The resource types a backend client can be granted (the bulk export's types and
/// the attribution Group).
pub const SYSTEM_TYPES: &[&str] = &[
    "Patient",
    "Coverage",
    "ExplanationOfBenefit",
    "Group",
    "Organization",
    "Practitioner",
    "RelatedPerson",
];

/// Read and search rights per type (`*` = every type in [`SYSTEM_TYPES`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemScopes {
    /// type (or `*`) → (read, search)
    grants: BTreeMap<String, (bool, bool)>,
}

impl SystemScopes {
    /// Parses a space-separated scope string; anything but `system/<Type|*>.<perms>`
    /// with a known type is dropped.
    pub fn parse(scope: &str) -> SystemScopes {
        let mut grants = BTreeMap::new();
        for token in scope.split_ascii_whitespace() {
            if let Some((target, perms)) = parse_one(token) {
                let entry: &mut (bool, bool) = grants.entry(target).or_default();
                entry.0 |= perms.0;
                entry.1 |= perms.1;
            }
        }
        grants.retain(|_, (r, s)| *r || *s);
        SystemScopes { grants }
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// Whether reading (`read`) or searching (`!read`) `resource_type` is allowed.
    pub fn allows(&self, resource_type: &str, read: bool) -> bool {
        [resource_type, "*"].iter().any(|t| {
            self.grants
                .get(*t)
                .is_some_and(|(r, s)| if read { *r } else { *s })
        })
    }

    /// Whether every right in `requested` is also in `self`.
    pub fn covers(&self, requested: &SystemScopes) -> bool {
        requested.grants.iter().all(|(target, (r, s))| {
            let types: Vec<&str> = if target == "*" {
                SYSTEM_TYPES.to_vec()
            } else {
                vec![target.as_str()]
            };
            types
                .iter()
                .all(|t| (!r || self.allows(t, true)) && (!s || self.allows(t, false)))
        })
    }
}

impl fmt::Display for SystemScopes {
    /// The canonical v2 form, e.g. `system/ExplanationOfBenefit.rs system/Group.r`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (target, (r, s)) in &self.grants {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let perms = match (r, s) {
                (true, true) => "rs",
                (true, false) => "r",
                _ => "s",
            };
            write!(f, "system/{target}.{perms}")?;
        }
        Ok(())
    }
}

fn parse_one(token: &str) -> Option<(String, (bool, bool))> {
    let rest = token.strip_prefix("system/")?;
    let (target, suffix) = rest.split_once('.')?;
    if target != "*" && !SYSTEM_TYPES.contains(&target) {
        return None;
    }
    let perms = match suffix {
        "read" | "*" => (true, true),
        "write" => (false, false),
        _ => {
            // v2: a non-empty, in-order subset of "cruds" with no repeats.
            if suffix.is_empty() {
                return None;
            }
            let mut rest = "cruds";
            let mut perms = (false, false);
            for letter in suffix.chars() {
                let at = rest.find(letter)?;
                rest = &rest[at + 1..];
                match letter {
                    'r' => perms.0 = true,
                    's' => perms.1 = true,
                    _ => {}
                }
            }
            perms
        }
    };
    Some((target.to_owned(), perms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_scopes_keep_reads_and_searches_of_known_types() {
        let s = SystemScopes::parse(
            "system/*.rs patient/Patient.rs system/Bogus.rs system/Group.cud launch",
        );
        assert!(s.allows("ExplanationOfBenefit", true));
        assert!(s.allows("Group", false));
        assert_eq!(s.to_string(), "system/*.rs");
        assert!(SystemScopes::parse("system/Group.cud").is_empty());
        assert!(SystemScopes::parse("system/Group.sr").is_empty());
        assert_eq!(
            SystemScopes::parse("system/Group.read system/Patient.r").to_string(),
            "system/Group.rs system/Patient.r"
        );
    }

    #[test]
    fn a_request_is_covered_only_by_a_registration_that_has_every_right() {
        let registered = SystemScopes::parse("system/Patient.rs system/Group.r");
        assert!(registered.covers(&SystemScopes::parse("system/Patient.r system/Group.r")));
        assert!(!registered.covers(&SystemScopes::parse("system/Group.s")));
        assert!(!registered.covers(&SystemScopes::parse("system/*.r")));
        assert!(SystemScopes::parse("system/*.rs").covers(&SystemScopes::parse("system/*.r")));
    }
}
