//! Deciding one candidate from its stored index.

use std::collections::HashSet;

use fhir::Instant;
use fhir_search::{SearchIndex, StringValue};

use crate::geo;
use crate::params::Kind;
use crate::query::{Criterion, DirectorySearch, NearTest, Test};

/// What the chains and `_has` of a search resolved to, in their order: for a chain,
/// the ids of the target type the inner search found; for `_has`, the ids of the
/// searched type that some inner match refers to.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub chains: Vec<HashSet<String>>,
    pub has: Vec<HashSet<String>>,
}

impl DirectorySearch {
    /// True when the resource `id` with `index` satisfies every criterion, chain,
    /// `_has` and `near` (AND), given what the chains and `_has` resolved to.
    pub fn matches(
        &self,
        id: &str,
        last_updated: &Instant,
        index: &SearchIndex,
        resolved: &Resolved,
    ) -> bool {
        self.criteria.iter().all(|c| c.matches(id, index))
            && self
                .last_updated
                .as_ref()
                .is_none_or(|lu| lu.matches(id, last_updated, &SearchIndex::default()))
            && self.chains.iter().enumerate().all(|(i, chain)| {
                let ids = resolved.chains.get(i);
                index.references.iter().any(|(p, r)| {
                    p == chain.param.name
                        && r.resource_type == chain.target
                        && ids.is_some_and(|ids| ids.contains(&r.id))
                })
            })
            && (0..self.has.len()).all(|i| resolved.has.get(i).is_some_and(|ids| ids.contains(id)))
            && self
                .near
                .is_none_or(|near| near.distance_km(index).is_some())
    }
}

impl NearTest {
    /// The distance of a resource from the searched point, when it is within reach.
    pub fn distance_km(&self, index: &SearchIndex) -> Option<f64> {
        let position = index.position?;
        let d = geo::distance_km([self.lat, self.lon], position);
        (d <= self.radius_km).then_some(d)
    }
}

impl Criterion {
    fn matches(&self, id: &str, index: &SearchIndex) -> bool {
        let name = self.param.name;
        match self.param.kind {
            Kind::Id => self
                .values
                .iter()
                .any(|t| matches!(t, Test::Id(v) if v == id)),
            Kind::Reference => self.values.iter().any(|t| {
                matches!(t, Test::Reference(want) if index.references.iter().any(|(p, r)| {
                    p == name && r.resource_type == want.resource_type && r.id == want.id
                }))
            }),
            Kind::Token => self.values.iter().any(|t| match t {
                Test::Token { system, code } => index.tokens.iter().any(|v| {
                    v.param == name
                        && code.as_ref().is_none_or(|c| *c == v.code)
                        && match system {
                            None => true,
                            Some(None) => v.system.is_none(),
                            Some(Some(s)) => v.system.as_deref() == Some(s.as_str()),
                        }
                }),
                Test::Text(needle) => {
                    let key = format!("{name}:text");
                    strings(index, &key).any(|v| word_starts_with(v.folded(), needle))
                }
                _ => false,
            }),
            Kind::String => self.values.iter().any(|t| {
                strings(index, name).any(|v| match t {
                    Test::StartsWith(n) => v.folded().starts_with(n.as_str()),
                    Test::Contains(n) => v.folded().contains(n.as_str()),
                    Test::Exact(n) => v.value == *n,
                    _ => false,
                })
            }),
            Kind::LastUpdated | Kind::Near => true,
        }
    }
}

fn strings<'a>(index: &'a SearchIndex, key: &'a str) -> impl Iterator<Item = &'a StringValue> {
    index.strings.iter().filter(move |s| s.param == key)
}

/// `:text` matches the start of any word of the text ("cardio" finds
/// "Cardiovascular Disease Physician" and "Interventional Cardiology").
fn word_starts_with(text: &str, needle: &str) -> bool {
    text.starts_with(needle)
        || text
            .match_indices(|c: char| !c.is_alphanumeric())
            .any(|(at, sep)| text[at + sep.len()..].starts_with(needle))
}
