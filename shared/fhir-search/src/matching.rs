//! Evaluating a parsed search against one resource's [`SearchIndex`].
//!
//! Storage narrows candidates with the planning hints; this decides. A resource
//! matches when every criterion matches (AND), and a criterion matches when any of
//! its values matches any of the resource's values for that parameter (OR).

use fhir::{Instant, Reference};

use crate::date::{DateRange, DateTest, Prefix};
use crate::index::{SearchIndex, StringValue, TokenValue};
use crate::params::{ParamKind, includes as include_defs, string_keys};
use crate::query::{
    Criterion, IncludeRequest, SearchRequest, StringMode, StringTest, SystemTest, Test, TokenTest,
};

impl SearchRequest {
    /// True when the resource `id`, last updated at `last_updated`, with search
    /// index `index`, satisfies every criterion.
    pub fn matches(&self, id: &str, last_updated: &Instant, index: &SearchIndex) -> bool {
        self.criteria
            .iter()
            .all(|c| c.matches(id, last_updated, index))
    }
}

impl Criterion {
    fn matches(&self, id: &str, last_updated: &Instant, index: &SearchIndex) -> bool {
        let name = self.def.name;
        match (name, self.def.kind) {
            ("_id", _) => self
                .values
                .iter()
                .any(|t| matches!(t, Test::Id(v) if v == id)),
            ("_lastUpdated", _) => {
                self.dates_match(&[DateRange::instant(last_updated.unix_millis())])
            }
            (_, ParamKind::Date) => {
                let targets: Vec<DateRange> = index
                    .dates
                    .iter()
                    .filter(|d| d.param == name)
                    .map(|d| DateRange::new(d.start, d.end))
                    .collect();
                self.dates_match(&targets)
            }
            (_, ParamKind::Token) => {
                let values: Vec<&TokenValue> =
                    index.tokens.iter().filter(|t| t.param == name).collect();
                self.values.iter().any(|t| matches!(t, Test::Token(test) if values.iter().any(|v| token_matches(test, v))))
            }
            (_, ParamKind::String) => {
                let keys = string_keys(name);
                let values: Vec<&StringValue> = index
                    .strings
                    .iter()
                    .filter(|s| keys.contains(&s.param.as_str()))
                    .collect();
                self.values.iter().any(|t| matches!(t, Test::String(test) if values.iter().any(|v| string_matches(test, v))))
            }
            (_, ParamKind::Reference) => {
                let refs: Vec<&Reference> = index
                    .references
                    .iter()
                    .filter(|(p, _)| p == name)
                    .map(|(_, r)| r)
                    .collect();
                self.values.iter().any(|t| matches!(t, Test::Reference(want) if refs.iter().any(|r| same_resource(want, r))))
            }
        }
    }

    fn dates_match(&self, targets: &[DateRange]) -> bool {
        self.values
            .iter()
            .any(|t| matches!(t, Test::Date(test) if date_matches(test, targets)))
    }
}

/// A resource with no value for the parameter never matches. `ne` means "no value
/// equals" (the negation of `eq` over the resource), so an EOB with one item on the
/// searched day is not returned by `ne` of that day; every other prefix matches
/// when any value does.
fn date_matches(test: &DateTest, targets: &[DateRange]) -> bool {
    if targets.is_empty() {
        return false;
    }
    if test.prefix == Prefix::Ne {
        targets.iter().all(|t| test.matches(t))
    } else {
        targets.iter().any(|t| test.matches(t))
    }
}

/// Codes and systems compare exactly (case-sensitively), as FHIR defines for
/// tokens. (Inferno compares codes case-insensitively, which only makes it more
/// forgiving than us, never stricter.)
fn token_matches(test: &TokenTest, value: &TokenValue) -> bool {
    let system_ok = match &test.system {
        SystemTest::Any => true,
        SystemTest::Absent => value.system.is_none(),
        SystemTest::Exact(s) => value.system.as_deref() == Some(s.as_str()),
    };
    system_ok && test.code.as_ref().is_none_or(|c| *c == value.code)
}

fn string_matches(test: &StringTest, value: &StringValue) -> bool {
    match test.mode {
        StringMode::StartsWith => value.folded().starts_with(&test.needle),
        StringMode::Contains => value.folded().contains(&test.needle),
        StringMode::Exact => value.value == test.needle,
    }
}

/// Same type and id; versions are ignored, so a versioned reference in the
/// resource still matches `patient=X`.
fn same_resource(want: &Reference, have: &Reference) -> bool {
    want.resource_type == have.resource_type && want.id == have.id
}

impl IncludeRequest {
    /// The references this include selects from one matched resource of type
    /// `self.source`: those under `param` (or, for `*`, under every supported include
    /// of the source type), filtered by `target` when given. Duplicates are removed;
    /// versions are kept so the caller can honour versioned references.
    pub fn targets_of(&self, source_index: &SearchIndex) -> Vec<Reference> {
        let defs = include_defs(self.source);
        let mut out: Vec<Reference> = Vec::new();
        for (param, reference) in &source_index.references {
            let selected = match self.param {
                Some(p) => p == param,
                None => defs.iter().any(|d| d.param == param),
            };
            let wanted_type = self.target.is_none_or(|t| t == reference.resource_type);
            if selected && wanted_type && !out.contains(reference) {
                out.push(reference.clone());
            }
        }
        out
    }
}
