//! What callers read off a parsed [`SearchRequest`]: result parameters, the
//! canonical query, and planning hints for storage.

use std::collections::BTreeSet;

use fhir::Instant;

use crate::query::{IncludeRequest, LookupHint, SearchRequest, StringMode, Test};
use crate::text::{fold, percent_encode};

impl SearchRequest {
    /// `_count` as given (validated positive); the API applies its own maximum.
    pub fn count(&self) -> Option<u32> {
        self.count
    }

    /// `_include` values whose source is the searched type.
    pub fn includes(&self) -> &[IncludeRequest] {
        &self.includes
    }

    /// `_include:iterate` values, applied to included resources as well.
    pub fn iterate_includes(&self) -> &[IncludeRequest] {
        &self.iterate_includes
    }

    /// Parameters ignored under lenient handling, as the client named them.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    pub fn resource_type(&self) -> fhir::ResourceType {
        self.resource_type
    }

    /// True when there are no criteria (every resource of the type matches).
    pub fn has_criteria(&self) -> bool {
        !self.criteria.is_empty()
    }

    /// The criteria and includes as a percent-encoded query string, in a stable
    /// order (criteria sorted by name then value, then `_include`, then
    /// `_include:iterate`). Leaves out `_count`, `_format`, `_pretty` and ignored
    /// parameters. Two requests that search the same thing give the same string,
    /// so it can bind a paging cursor; parsing it again gives the same request.
    pub fn canonical_query(&self) -> String {
        let mut pairs: Vec<(String, String)> = self
            .criteria
            .iter()
            .map(|c| (c.key(), c.raw.join(",")))
            .collect();
        pairs.sort();
        pairs.dedup();
        let mut includes: Vec<String> = self.includes.iter().map(include_text).collect();
        includes.sort();
        let mut iterate: Vec<String> = self.iterate_includes.iter().map(include_text).collect();
        iterate.sort();
        pairs.extend(includes.into_iter().map(|v| ("_include".to_owned(), v)));
        pairs.extend(
            iterate
                .into_iter()
                .map(|v| ("_include:iterate".to_owned(), v)),
        );
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The finite set of ids an `_id` criterion allows (the intersection when there
    /// are several), sorted; `None` when `_id` is not searched. Ids that are not
    /// valid FHIR ids can match nothing and are left out, so they never reach a
    /// storage key.
    pub fn ids(&self) -> Option<Vec<String>> {
        self.value_sets("_id", |t| match t {
            Test::Id(id) if fhir::is_valid_id(id) => Some(id.clone()),
            _ => None,
        })
    }

    /// Like [`ids`](Self::ids) for the `patient` parameter: bare Patient ids.
    pub fn patient_ids(&self) -> Option<Vec<String>> {
        self.value_sets("patient", |t| match t {
            Test::Reference(r) => Some(r.id.clone()),
            _ => None,
        })
    }

    fn value_sets(
        &self,
        name: &str,
        pick: impl Fn(&Test) -> Option<String>,
    ) -> Option<Vec<String>> {
        self.criteria
            .iter()
            .filter(|c| c.def.name == name)
            .map(|c| {
                c.values
                    .iter()
                    .filter_map(&pick)
                    .collect::<BTreeSet<String>>()
            })
            .reduce(|a, b| a.intersection(&b).cloned().collect())
            .map(|set| set.into_iter().collect())
    }

    /// A conservative `[from, to)` for `meta.lastUpdated` implied by the `_lastUpdated`
    /// criteria (their AND; within one criterion, the union of its OR values). `None`
    /// where no bound follows, e.g. for `ne`.
    pub fn last_updated_bounds(&self) -> (Option<Instant>, Option<Instant>) {
        let mut from: Option<i64> = None;
        let mut to: Option<i64> = None;
        for criterion in self
            .criteria
            .iter()
            .filter(|c| c.def.name == "_lastUpdated")
        {
            let bounds: Vec<(Option<i64>, Option<i64>)> = criterion
                .values
                .iter()
                .filter_map(|t| match t {
                    Test::Date(d) => Some(d.instant_bounds()),
                    _ => None,
                })
                .collect();
            let lower = union_lower(&bounds);
            let upper = union_upper(&bounds);
            from = max_option(from, lower);
            to = min_option(to, upper);
        }
        (
            from.and_then(Instant::from_unix_millis),
            to.and_then(Instant::from_unix_millis),
        )
    }

    /// For directory types (Organization, Practitioner): a look-up term prefix that
    /// every match must have. Prefers `identifier` (most selective), then `name`,
    /// then `address`; only single-valued criteria qualify, and never `:contains`.
    pub fn lookup_hint(&self) -> Option<LookupHint> {
        if self.resource_type.is_member_owned() {
            return None;
        }
        ["identifier", "name", "address"]
            .into_iter()
            .find_map(|param| {
                self.criteria
                    .iter()
                    .filter(|c| c.def.name == param && c.values.len() == 1)
                    .find_map(|c| hint_prefix(&c.values[0]))
                    .map(|prefix| LookupHint {
                        param: lookup_param(param),
                        prefix,
                    })
            })
    }
}

fn hint_prefix(test: &Test) -> Option<String> {
    match test {
        Test::Token(t) => t.code.clone(),
        Test::String(s) if s.mode == StringMode::Exact => Some(fold(&s.needle)),
        Test::String(s) if s.mode == StringMode::StartsWith => Some(s.needle.clone()),
        _ => None,
    }
    .filter(|p| !p.is_empty())
}

fn lookup_param(param: &str) -> &'static str {
    match param {
        "identifier" => "identifier",
        "name" => "name",
        _ => "address",
    }
}

fn include_text(include: &IncludeRequest) -> String {
    let mut text = format!("{}:{}", include.source, include.param.unwrap_or("*"));
    if let Some(target) = include.target {
        text.push(':');
        text.push_str(target.as_str());
    }
    text
}

/// The lowest lower bound among OR-ed values; unbounded if any is.
fn union_lower(bounds: &[(Option<i64>, Option<i64>)]) -> Option<i64> {
    bounds
        .iter()
        .map(|b| b.0)
        .try_fold(i64::MAX, |acc, b| b.map(|b| acc.min(b)))
}

/// The highest upper bound among OR-ed values; unbounded if any is.
fn union_upper(bounds: &[(Option<i64>, Option<i64>)]) -> Option<i64> {
    bounds
        .iter()
        .map(|b| b.1)
        .try_fold(i64::MIN, |acc, b| b.map(|b| acc.max(b)))
}

fn max_option(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_option(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
