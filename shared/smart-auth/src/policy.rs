//! The access rule every FHIR path applies: scope first, then the patient compartment.
//!
//! One function decides every case (read, vread, search results, each `_include` /
//! `_revinclude` result, paging), so no path can forget half of the rule. Known failures
//! this stops: cross-patient read by id (ONC Showdown 2018), `_include` returning types
//! outside the granted scopes (CVE-2022-39230), and `_include` leaking another member's
//! resources (member-auth.md §0.9).

use fhir::ResourceType;

use crate::principal::Principal;
use crate::scopes::Interaction;

/// The outcome of [`may_access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Serve the resource.
    Allowed,
    /// The resource is outside the caller's compartment. Answer *exactly* as if it did not
    /// exist (same status, body and headers), so existence does not leak; drop it
    /// silently from search and `_include` results.
    NotFound,
    /// No scope grants this interaction on this type: `403` with
    /// `WWW-Authenticate: Bearer error="insufficient_scope"` for a direct request; drop
    /// the resource from `_include` results.
    Forbidden,
}

impl Access {
    pub fn is_allowed(self) -> bool {
        self == Access::Allowed
    }

    /// The HTTP status for a direct request (read or search) that got this answer.
    pub fn status(self) -> u16 {
        match self {
            Access::Allowed => 200,
            Access::NotFound => 404,
            Access::Forbidden => 403,
        }
    }

    /// The `WWW-Authenticate` value to send with a [`Access::Forbidden`] answer.
    pub fn www_authenticate(self) -> Option<&'static str> {
        match self {
            Access::Forbidden => Some(r#"Bearer realm="fhir", error="insufficient_scope""#),
            Access::Allowed | Access::NotFound => None,
        }
    }
}

/// Decides whether `principal` may see one resource (or, for a search, one type).
///
/// - `compartment` is the member id that owns the resource, computed by the caller from
///   the explicit per-type rule (Patient.id, ExplanationOfBenefit.patient,
///   Coverage.beneficiary, RelatedPerson.patient) and `None` for directory types
///   (Organization, Practitioner). For a type-level decision before a search runs, pass
///   `Some(&principal.patient)`: the search itself must be confined to that compartment.
/// - The scope check comes first and does not depend on the resource, so a `Forbidden`
///   answer reveals nothing about whether the resource exists.
/// - Member-owned types need `compartment == principal.patient`; a member-owned
///   resource with no owner is `NotFound` (deny by default, e.g. a data error).
/// - Directory types need only the scope.
pub fn may_access(
    principal: &Principal,
    resource_type: ResourceType,
    compartment: Option<&str>,
    interaction: Interaction,
) -> Access {
    if !principal.scopes.allows(resource_type, interaction) {
        return Access::Forbidden;
    }
    if !resource_type.is_member_owned() {
        return Access::Allowed;
    }
    match compartment {
        Some(owner) if !principal.patient.is_empty() && owner == principal.patient => {
            Access::Allowed
        }
        _ => Access::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scopes::ScopeSet;
    use Interaction::{Read, Search};
    use ResourceType::*;

    const ME: &str = "p1";
    const OTHER: &str = "q1";

    fn member(scopes: &str) -> Principal {
        Principal {
            subject: "sub-p1".into(),
            client_id: "app-a".into(),
            patient: ME.into(),
            scopes: ScopeSet::parse(scopes),
            grant_id: Some("g1".into()),
            token_id: Some("t1".into()),
        }
    }

    /// The member-auth.md §8 token: EOB, Coverage, Patient, Practitioner, Organization.
    fn standard() -> Principal {
        member(
            "patient/ExplanationOfBenefit.rs patient/Coverage.rs patient/Patient.rs \
             patient/Practitioner.rs patient/Organization.rs",
        )
    }

    #[test]
    fn own_member_resources_are_allowed() {
        let p = standard();
        for t in [Patient, Coverage, ExplanationOfBenefit] {
            for i in Interaction::ALL {
                assert_eq!(may_access(&p, t, Some(ME), i), Access::Allowed, "{t} {i:?}");
            }
        }
    }

    #[test]
    fn another_members_resources_are_not_found() {
        let p = standard();
        for t in [Patient, Coverage, ExplanationOfBenefit] {
            for i in Interaction::ALL {
                assert_eq!(
                    may_access(&p, t, Some(OTHER), i),
                    Access::NotFound,
                    "{t} {i:?}"
                );
            }
        }
    }

    #[test]
    fn member_owned_resource_without_owner_is_not_found() {
        let p = standard();
        assert_eq!(
            may_access(&p, ExplanationOfBenefit, None, Read),
            Access::NotFound
        );
        assert_eq!(may_access(&p, Patient, None, Search), Access::NotFound);
    }

    #[test]
    fn near_miss_owner_ids_are_not_found() {
        let p = standard();
        for owner in ["", "P1", "p1 ", " p1", "p10", "Patient/p1", "p"] {
            assert_eq!(
                may_access(&p, Patient, Some(owner), Read),
                Access::NotFound,
                "{owner:?}"
            );
        }
    }

    #[test]
    fn principal_without_patient_matches_nothing() {
        let mut p = standard();
        p.patient = String::new();
        assert_eq!(may_access(&p, Patient, Some(""), Read), Access::NotFound);
        assert_eq!(may_access(&p, Organization, None, Read), Access::Allowed);
    }

    #[test]
    fn directory_types_need_only_the_scope() {
        let p = standard();
        for t in [Organization, Practitioner] {
            for owner in [None, Some(ME), Some(OTHER)] {
                for i in Interaction::ALL {
                    assert_eq!(
                        may_access(&p, t, owner, i),
                        Access::Allowed,
                        "{t} {owner:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn missing_scope_is_forbidden_even_for_own_resources() {
        let p = member("patient/Coverage.rs");
        assert_eq!(
            may_access(&p, ExplanationOfBenefit, Some(ME), Search),
            Access::Forbidden
        );
        assert_eq!(may_access(&p, Practitioner, None, Read), Access::Forbidden);
    }

    #[test]
    fn missing_scope_outranks_compartment_so_existence_never_leaks() {
        // Without the scope the answer is the same whoever owns the resource.
        let p = member("patient/Coverage.rs");
        for owner in [Some(ME), Some(OTHER), None] {
            assert_eq!(may_access(&p, Patient, owner, Read), Access::Forbidden);
        }
    }

    #[test]
    fn read_only_and_search_only_scopes() {
        // §8.A.20: `.r` reads its own EOB but cannot search; `.s` the reverse.
        let r = member("patient/ExplanationOfBenefit.r");
        assert_eq!(
            may_access(&r, ExplanationOfBenefit, Some(ME), Read),
            Access::Allowed
        );
        assert_eq!(
            may_access(&r, ExplanationOfBenefit, Some(ME), Search),
            Access::Forbidden
        );
        let s = member("patient/ExplanationOfBenefit.s");
        assert_eq!(
            may_access(&s, ExplanationOfBenefit, Some(ME), Read),
            Access::Forbidden
        );
        assert_eq!(
            may_access(&s, ExplanationOfBenefit, Some(ME), Search),
            Access::Allowed
        );
    }

    #[test]
    fn user_and_system_scopes_never_widen_beyond_the_compartment() {
        let p = member("user/*.rs system/*.rs");
        for t in ResourceType::ALL {
            for owner in [Some(ME), Some(OTHER), None] {
                for i in Interaction::ALL {
                    assert_eq!(may_access(&p, t, owner, i), Access::Forbidden);
                }
            }
        }
    }

    #[test]
    fn include_results_are_filtered_by_type_scope_and_compartment() {
        // A search of EOBs with `_include=ExplanationOfBenefit:*` pulls in a mixed bag.
        // Each included resource goes through the same function with Interaction::Search.
        let p = member("patient/ExplanationOfBenefit.rs patient/Organization.rs");
        let included = [
            (Organization, None, Access::Allowed),
            (Practitioner, None, Access::Forbidden), // CVE-2022-39230: type not granted
            (Patient, Some(ME), Access::Forbidden),  // own, but no Patient scope
            (Coverage, Some(OTHER), Access::Forbidden),
            (ExplanationOfBenefit, Some(OTHER), Access::NotFound), // compartment leak
            (ExplanationOfBenefit, Some(ME), Access::Allowed),
        ];
        for (t, owner, expected) in included {
            assert_eq!(may_access(&p, t, owner, Search), expected, "{t} {owner:?}");
        }
    }

    #[test]
    fn subscriber_does_not_see_a_dependents_resources() {
        // §8.E.95: the caller computes the owner from EOB.patient / Coverage.beneficiary,
        // never from payee or subscriber, so a dependent's records are someone else's.
        let subscriber = standard();
        let dependent = "d1";
        assert_eq!(
            may_access(&subscriber, ExplanationOfBenefit, Some(dependent), Read),
            Access::NotFound
        );
        assert_eq!(
            may_access(&subscriber, Coverage, Some(dependent), Read),
            Access::NotFound
        );
    }

    /// The whole matrix: every type × interaction × owner × a spread of grants.
    #[test]
    fn exhaustive_matrix() {
        let grants = [
            "",
            "patient/*.rs",
            "patient/*.r",
            "patient/*.s",
            "patient/Patient.rs patient/Coverage.r patient/Organization.s",
            "patient/ExplanationOfBenefit.read patient/Practitioner.read patient/RelatedPerson.rs",
            "patient/*.write user/*.rs system/*.rs patient/Observation.rs",
        ];
        let owners = [Some(ME), Some(OTHER), None];
        let mut checked = 0;
        for grant in grants {
            let p = member(grant);
            for t in ResourceType::ALL {
                for i in Interaction::ALL {
                    for owner in owners {
                        let expected = if !p.scopes.allows(t, i) {
                            Access::Forbidden
                        } else if !t.is_member_owned() || owner == Some(ME) {
                            Access::Allowed
                        } else {
                            Access::NotFound
                        };
                        assert_eq!(
                            may_access(&p, t, owner, i),
                            expected,
                            "{grant} {t} {i:?} {owner:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 7 * ResourceType::ALL.len() * 2 * 3);
        // Spot checks that pin the table to the intended grants rather than to itself.
        let mixed = member(grants[4]);
        assert_eq!(
            may_access(&mixed, Coverage, Some(ME), Search),
            Access::Forbidden
        );
        assert_eq!(
            may_access(&mixed, Organization, None, Read),
            Access::Forbidden
        );
        assert_eq!(
            may_access(&mixed, Organization, None, Search),
            Access::Allowed
        );
        assert_eq!(
            may_access(&mixed, RelatedPerson, Some(ME), Read),
            Access::Forbidden
        );
        let v1 = member(grants[5]);
        assert_eq!(
            may_access(&v1, RelatedPerson, Some(OTHER), Search),
            Access::NotFound
        );
        assert_eq!(
            may_access(&v1, Practitioner, Some(OTHER), Read),
            Access::Allowed
        );
    }

    #[test]
    fn status_and_challenge_mapping() {
        assert_eq!(Access::Allowed.status(), 200);
        assert_eq!(Access::NotFound.status(), 404);
        assert_eq!(Access::Forbidden.status(), 403);
        assert_eq!(
            Access::Forbidden.www_authenticate(),
            Some(r#"Bearer realm="fhir", error="insufficient_scope""#)
        );
        assert_eq!(Access::NotFound.www_authenticate(), None);
    }
}
