//! SMART App Launch scopes (v1 and v2 syntax) reduced to what a member app may do here.
//!
//! The parser is deliberately narrow. Anything it does not recognise is dropped, so a
//! malformed or unexpected scope can only ever *remove* access, never add it:
//!
//! - `patient/<Type>.<perms>` and `patient/*.<perms>` are understood. v1 `read`, `write`
//!   and `*` are mapped to their v2 equivalents `rs`, `cud` and `cruds`; a v2 suffix must
//!   be a non-empty subset of `cruds` *in that order* (so `.dus` or `.rr` grant nothing).
//! - Only the `r` (read, vread) and `s` (search) permissions are kept. Member apps never
//!   get writes (member-auth.md §1.5), so `c`, `u` and `d` are discarded at parse time
//!   and a `.write` scope grants nothing.
//! - `user/` and `system/` scopes grant nothing. A member app acts for exactly one member,
//!   and the patient compartment is the only access rule we enforce. A `user/*.rs` scope
//!   would mean "whatever this user may see", which for a member is the same compartment
//!   at best and an unreviewed widening at worst; `system/` belongs to backend services
//!   that have no business holding a member token. Dropping both keeps a mis-issued token
//!   from ever being broader than the member's compartment (member-auth.md §8.A.23).
//! - Granular v2 scopes with a query (`patient/Observation.rs?category=x`) are ignored:
//!   honouring them would need per-query filtering we do not implement, and ignoring a
//!   narrowing scope grants *less*, never more.
//! - Resource types we do not serve, and any spelling that is not the exact,
//!   case-sensitive FHIR type name, are ignored.

use std::collections::BTreeMap;
use std::fmt;

use fhir::ResourceType;

/// What a request does with a resource type, in SMART v2 permission terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    /// `r`: read, vread and instance history.
    Read,
    /// `s`: type search (and the resources an `_include` pulls into a search).
    Search,
}

impl Interaction {
    /// Both interactions, for tests and tables.
    pub const ALL: [Interaction; 2] = [Interaction::Read, Interaction::Search];
}

/// The subset of `cruds` we keep: read and search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
struct Perms {
    read: bool,
    search: bool,
}

impl Perms {
    const NONE: Perms = Perms {
        read: false,
        search: false,
    };

    fn allows(self, interaction: Interaction) -> bool {
        match interaction {
            Interaction::Read => self.read,
            Interaction::Search => self.search,
        }
    }

    fn union(self, other: Perms) -> Perms {
        Perms {
            read: self.read || other.read,
            search: self.search || other.search,
        }
    }

    fn intersection(self, other: Perms) -> Perms {
        Perms {
            read: self.read && other.read,
            search: self.search && other.search,
        }
    }

    fn is_empty(self) -> bool {
        !self.read && !self.search
    }

    /// True when every permission of `self` is also in `other`.
    fn is_subset_of(self, other: Perms) -> bool {
        (!self.read || other.read) && (!self.search || other.search)
    }

    /// Parses the part after the dot. `None` for anything that is not a valid v1 or v2
    /// suffix; `Some(Perms::NONE)` for a valid suffix that grants only writes.
    fn parse_suffix(suffix: &str) -> Option<Perms> {
        match suffix {
            // v1 forms.
            "read" => {
                return Some(Perms {
                    read: true,
                    search: true,
                });
            }
            "write" => return Some(Perms::NONE),
            "*" => {
                return Some(Perms {
                    read: true,
                    search: true,
                });
            }
            _ => {}
        }
        // v2: a non-empty, in-order subset of "cruds" with no repeats.
        if suffix.is_empty() {
            return None;
        }
        let mut rest = "cruds";
        let mut perms = Perms::NONE;
        for letter in suffix.chars() {
            let at = rest.find(letter)?;
            rest = &rest[at + 1..];
            match letter {
                'r' => perms.read = true,
                's' => perms.search = true,
                _ => {} // c, u, d: writes are never granted to member apps.
            }
        }
        Some(perms)
    }

    fn suffix(self) -> &'static str {
        match (self.read, self.search) {
            (true, true) => "rs",
            (true, false) => "r",
            (false, true) => "s",
            (false, false) => "",
        }
    }
}

/// The context scopes we recognise, in canonical output order.
const CONTEXT_SCOPES: [(&str, Context); 6] = [
    ("launch/patient", Context::LaunchPatient),
    ("openid", Context::OpenId),
    ("fhirUser", Context::FhirUser),
    ("profile", Context::Profile),
    ("offline_access", Context::OfflineAccess),
    ("online_access", Context::OnlineAccess),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    LaunchPatient,
    OpenId,
    FhirUser,
    Profile,
    OfflineAccess,
    OnlineAccess,
}

/// The granted scopes of one token or grant, reduced to what this server honours.
///
/// Built with [`ScopeSet::parse`]; equality compares the *effective* grant, so
/// `patient/Coverage.read` equals `patient/Coverage.rs`, and `patient/*.r` equals
/// `patient/*.r patient/Coverage.r`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ScopeSet {
    /// `patient/*.<perms>`: applies to every [`ResourceType`].
    wildcard: Perms,
    /// `patient/<Type>.<perms>`, merged per type and joined with the wildcard. Holds only
    /// types the wildcard does not already fully cover (see [`ScopeSet::normalized`]).
    types: BTreeMap<ResourceType, Perms>,
    launch_patient: bool,
    openid: bool,
    fhir_user: bool,
    profile: bool,
    offline_access: bool,
    online_access: bool,
}

impl ScopeSet {
    /// An empty set: grants nothing.
    pub fn empty() -> ScopeSet {
        ScopeSet::default()
    }

    /// Parses a space-separated scope string. Never fails: unknown or malformed scopes
    /// are ignored (see the module docs for exactly what is understood).
    pub fn parse(scopes: &str) -> ScopeSet {
        let mut set = ScopeSet::default();
        for scope in scopes.split_ascii_whitespace() {
            set.add(scope);
        }
        set.normalized()
    }

    /// Stores each type's *effective* permissions and drops those the wildcard already
    /// covers, so that the derived equality compares what the sets actually grant.
    fn normalized(mut self) -> ScopeSet {
        let wildcard = self.wildcard;
        self.types = std::mem::take(&mut self.types)
            .into_iter()
            .map(|(t, perms)| (t, perms.union(wildcard)))
            .filter(|(_, perms)| !perms.is_subset_of(wildcard))
            .collect();
        self
    }

    fn add(&mut self, scope: &str) {
        if let Some((_, context)) = CONTEXT_SCOPES.iter().find(|(name, _)| *name == scope) {
            match context {
                Context::LaunchPatient => self.launch_patient = true,
                Context::OpenId => self.openid = true,
                Context::FhirUser => self.fhir_user = true,
                Context::Profile => self.profile = true,
                Context::OfflineAccess => self.offline_access = true,
                Context::OnlineAccess => self.online_access = true,
            }
            return;
        }
        // Only the `patient/` level is honoured; `user/` and `system/` fall through here.
        let Some(rest) = scope.strip_prefix("patient/") else {
            return;
        };
        // Granular scopes (`?param=value`) are ignored entirely, never widened.
        if rest.contains('?') {
            return;
        }
        let Some((resource, suffix)) = rest.split_once('.') else {
            return;
        };
        let Some(perms) = Perms::parse_suffix(suffix) else {
            return;
        };
        if perms.is_empty() {
            return;
        }
        if resource == "*" {
            self.wildcard = self.wildcard.union(perms);
        } else if let Ok(resource_type) = resource.parse::<ResourceType>() {
            let entry = self.types.entry(resource_type).or_default();
            *entry = entry.union(perms);
        }
    }

    /// The effective permissions for one type: its own scope joined with the wildcard.
    fn perms_for(&self, resource_type: ResourceType) -> Perms {
        self.types
            .get(&resource_type)
            .copied()
            .unwrap_or_default()
            .union(self.wildcard)
    }

    /// Whether some `patient/` scope grants `interaction` on `resource_type`.
    ///
    /// This is only the scope half of authorization; the compartment half is
    /// [`crate::may_access`].
    pub fn allows(&self, resource_type: ResourceType, interaction: Interaction) -> bool {
        self.perms_for(resource_type).allows(interaction)
    }

    /// The types this set allows `interaction` on, in [`ResourceType::ALL`] order.
    pub fn allowed_types(&self, interaction: Interaction) -> Vec<ResourceType> {
        ResourceType::ALL
            .into_iter()
            .filter(|t| self.allows(*t, interaction))
            .collect()
    }

    /// True when the set grants access to at least one resource type.
    pub fn has_resource_scopes(&self) -> bool {
        !self.wildcard.is_empty() || !self.types.is_empty()
    }

    /// True when nothing at all was recognised.
    pub fn is_empty(&self) -> bool {
        *self == ScopeSet::default()
    }

    pub fn launch_patient(&self) -> bool {
        self.launch_patient
    }

    pub fn openid(&self) -> bool {
        self.openid
    }

    pub fn fhir_user(&self) -> bool {
        self.fhir_user
    }

    pub fn profile(&self) -> bool {
        self.profile
    }

    pub fn offline_access(&self) -> bool {
        self.offline_access
    }

    pub fn online_access(&self) -> bool {
        self.online_access
    }

    /// The scopes present in both sets, e.g. what an app requested ∩ what policy allows.
    ///
    /// Computed per type on effective permissions, so `patient/*.rs` ∩
    /// `patient/Coverage.r` is `patient/Coverage.r`.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        let mut out = ScopeSet {
            wildcard: self.wildcard.intersection(other.wildcard),
            types: BTreeMap::new(),
            launch_patient: self.launch_patient && other.launch_patient,
            openid: self.openid && other.openid,
            fhir_user: self.fhir_user && other.fhir_user,
            profile: self.profile && other.profile,
            offline_access: self.offline_access && other.offline_access,
            online_access: self.online_access && other.online_access,
        };
        for t in ResourceType::ALL {
            let perms = self.perms_for(t).intersection(other.perms_for(t));
            out.types.insert(t, perms);
        }
        out.normalized()
    }

    /// Replaces `patient/*` with the concrete types it covers.
    ///
    /// CARIN requires `patient/*.read` to be *advertised*, but the authorization server
    /// should narrow it to concrete types at grant time (member-auth.md §1.5), so that a
    /// type added later is not silently granted to existing apps.
    pub fn without_wildcard(&self) -> ScopeSet {
        let mut out = self.clone();
        out.wildcard = Perms::NONE;
        out.types.clear();
        for t in ResourceType::ALL {
            let perms = self.perms_for(t);
            out.types.insert(t, perms);
        }
        out.normalized()
    }

    /// The canonical scope string: context scopes first, then `patient/*`, then each type
    /// in [`ResourceType::ALL`] order, all in v2 syntax (`.read` is written `.rs`).
    /// A type scope already covered by the wildcard is left out.
    pub fn to_scope_string(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for (name, context) in CONTEXT_SCOPES {
            let present = match context {
                Context::LaunchPatient => self.launch_patient,
                Context::OpenId => self.openid,
                Context::FhirUser => self.fhir_user,
                Context::Profile => self.profile,
                Context::OfflineAccess => self.offline_access,
                Context::OnlineAccess => self.online_access,
            };
            if present {
                parts.push(name.to_owned());
            }
        }
        if !self.wildcard.is_empty() {
            parts.push(format!("patient/*.{}", self.wildcard.suffix()));
        }
        for (t, perms) in &self.types {
            parts.push(format!("patient/{}.{}", t, perms.suffix()));
        }
        parts.join(" ")
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_scope_string())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({:?})", self.to_scope_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Interaction::{Read, Search};
    use ResourceType::*;

    fn grants(scope: &str) -> Vec<(ResourceType, Interaction)> {
        let set = ScopeSet::parse(scope);
        let mut out = Vec::new();
        for t in ResourceType::ALL {
            for i in Interaction::ALL {
                if set.allows(t, i) {
                    out.push((t, i));
                }
            }
        }
        out
    }

    #[test]
    fn v1_read_is_read_and_search() {
        assert_eq!(
            grants("patient/ExplanationOfBenefit.read"),
            vec![(ExplanationOfBenefit, Read), (ExplanationOfBenefit, Search)]
        );
        assert_eq!(
            ScopeSet::parse("patient/Coverage.read"),
            ScopeSet::parse("patient/Coverage.rs")
        );
    }

    #[test]
    fn v1_star_is_read_and_search_and_write_grants_nothing() {
        assert_eq!(
            grants("patient/Coverage.*"),
            vec![(Coverage, Read), (Coverage, Search)]
        );
        assert!(grants("patient/Coverage.write").is_empty());
        assert!(ScopeSet::parse("patient/Coverage.write").is_empty());
    }

    #[test]
    fn v2_subsets_in_order() {
        assert_eq!(
            grants("patient/Coverage.rs"),
            vec![(Coverage, Read), (Coverage, Search)]
        );
        assert_eq!(grants("patient/Coverage.r"), vec![(Coverage, Read)]);
        assert_eq!(grants("patient/Coverage.s"), vec![(Coverage, Search)]);
        assert_eq!(
            grants("patient/Coverage.cruds"),
            vec![(Coverage, Read), (Coverage, Search)]
        );
        assert_eq!(
            grants("patient/Coverage.rds"),
            vec![(Coverage, Read), (Coverage, Search)]
        );
        assert!(grants("patient/Coverage.cud").is_empty());
    }

    #[test]
    fn out_of_order_repeated_or_unknown_suffixes_grant_nothing() {
        for scope in [
            "patient/ExplanationOfBenefit.dus",
            "patient/ExplanationOfBenefit.sr",
            "patient/ExplanationOfBenefit.rr",
            "patient/ExplanationOfBenefit.",
            "patient/ExplanationOfBenefit",
            "patient/ExplanationOfBenefit.READ",
            "patient/ExplanationOfBenefit.rx",
            "patient/ExplanationOfBenefit.r.s",
        ] {
            assert!(grants(scope).is_empty(), "{scope}");
        }
    }

    #[test]
    fn wrong_case_and_unknown_types_grant_nothing() {
        for scope in [
            "Patient/ExplanationOfBenefit.read",
            "patient/explanationofbenefit.rs",
            "PATIENT/*.rs",
            "patient/Observation.rs",
            "patient/ExplanationOfBenefit .rs",
            "patient/**.rs",
            "patient/.rs",
        ] {
            assert!(grants(scope).is_empty(), "{scope}");
        }
    }

    #[test]
    fn user_and_system_scopes_grant_nothing() {
        for scope in [
            "user/*.rs",
            "user/Patient.read",
            "system/*.read",
            "system/Coverage.rs",
        ] {
            assert!(grants(scope).is_empty(), "{scope}");
            assert!(!ScopeSet::parse(scope).has_resource_scopes(), "{scope}");
        }
    }

    #[test]
    fn granular_query_scopes_are_ignored() {
        assert!(grants("patient/ExplanationOfBenefit.rs?type=pharmacy").is_empty());
        assert!(grants("patient/*.rs?category=x").is_empty());
    }

    #[test]
    fn wildcard_allows_every_type() {
        let set = ScopeSet::parse("patient/*.rs");
        for t in ResourceType::ALL {
            assert!(set.allows(t, Read) && set.allows(t, Search), "{t}");
        }
        let read_only = ScopeSet::parse("patient/*.r");
        for t in ResourceType::ALL {
            assert!(
                read_only.allows(t, Read) && !read_only.allows(t, Search),
                "{t}"
            );
        }
        assert_eq!(ScopeSet::parse("patient/*.read"), set);
    }

    #[test]
    fn scopes_merge_per_type() {
        let set = ScopeSet::parse("patient/Coverage.r patient/Coverage.s patient/Patient.s");
        assert!(set.allows(Coverage, Read) && set.allows(Coverage, Search));
        assert!(!set.allows(Patient, Read) && set.allows(Patient, Search));
        assert!(!set.allows(ExplanationOfBenefit, Read));
    }

    #[test]
    fn context_scopes_are_recognised() {
        let set =
            ScopeSet::parse("openid fhirUser launch/patient offline_access profile online_access");
        assert!(set.openid() && set.fhir_user() && set.launch_patient());
        assert!(set.offline_access() && set.profile() && set.online_access());
        assert!(!set.has_resource_scopes());
        assert!(!set.is_empty());
        let none = ScopeSet::parse("launch openid2 fhiruser launch/encounter");
        assert!(none.is_empty());
    }

    #[test]
    fn canonical_string_is_v2_ordered_and_deduplicated() {
        let set = ScopeSet::parse(
            "patient/Organization.read fhirUser patient/Coverage.s openid patient/Coverage.r \
             user/*.rs launch/patient patient/Observation.rs junk offline_access",
        );
        assert_eq!(
            set.to_scope_string(),
            "launch/patient openid fhirUser offline_access patient/Coverage.rs patient/Organization.rs"
        );
        assert_eq!(ScopeSet::parse(&set.to_scope_string()), set);
    }

    #[test]
    fn canonical_string_omits_types_covered_by_the_wildcard() {
        let set = ScopeSet::parse("patient/*.r patient/Coverage.r patient/Patient.rs");
        assert_eq!(set.to_scope_string(), "patient/*.r patient/Patient.rs");
        assert_eq!(ScopeSet::parse(&set.to_scope_string()), set);
        assert_eq!(ScopeSet::parse("").to_scope_string(), "");
    }

    #[test]
    fn intersection_narrows_to_what_both_allow() {
        let requested = ScopeSet::parse("openid patient/*.rs user/*.rs patient/Coverage.write");
        let policy = ScopeSet::parse("openid fhirUser patient/Coverage.r patient/Patient.rs");
        let granted = requested.intersection(&policy);
        assert_eq!(
            granted.to_scope_string(),
            "openid patient/Patient.rs patient/Coverage.r"
        );
    }

    #[test]
    fn without_wildcard_lists_concrete_types() {
        let set = ScopeSet::parse("patient/*.r patient/Coverage.s");
        let narrowed = set.without_wildcard();
        assert_eq!(
            narrowed.to_scope_string(),
            "patient/Patient.r patient/Coverage.rs patient/ExplanationOfBenefit.r \
             patient/Organization.r patient/Practitioner.r patient/RelatedPerson.r patient/Consent.r \
             patient/Provenance.r"
        );
        for t in ResourceType::ALL {
            for i in Interaction::ALL {
                assert_eq!(set.allows(t, i), narrowed.allows(t, i));
            }
        }
    }

    #[test]
    fn allowed_types_follow_resource_type_order() {
        let set = ScopeSet::parse("patient/RelatedPerson.s patient/Patient.rs");
        assert_eq!(set.allowed_types(Search), vec![Patient, RelatedPerson]);
        assert_eq!(set.allowed_types(Read), vec![Patient]);
    }
}
