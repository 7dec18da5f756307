//! Parsing a directory search.
//!
//! The same rules as the Patient Access API (`fhir-search`): repeated parameters AND,
//! comma-separated values OR, unknown parameters ignored (and left out of the self
//! link) unless `Prefer: handling=strict`, unsupported modifiers 400. On top:
//! forward chains (`location.address-city=`), reverse chains
//! (`_has:PractitionerRole:practitioner:specialty=`), `near`, `:text` on tokens,
//! `_revinclude` and `_sort=near`. A chain's or `_has`'s inner search is parsed
//! strictly: an unknown inner parameter would otherwise widen it to everything.

use fhir::{Reference, ResourceType, is_valid_id};
use fhir_search::{
    Handling, SearchError, SearchRequest, fold, percent_encode, split_once_unescaped,
    split_unescaped, unescape,
};

use crate::index::{MAX_TERM_CHARS, term_prefix};
use crate::params::{Kind, Param, includes, param_of, referring_param, revincludes};

/// How deep chains and `_has` may nest (`_has:A:p:q.r` is two levels).
const MAX_DEPTH: usize = 3;
/// `near` when no distance is given, and the largest distance served.
pub const DEFAULT_NEAR_KM: f64 = 10.0;
pub const MAX_NEAR_KM: f64 = 300.0;

/// Result parameters recognised but not implemented: ignored like unknown ones.
const UNSUPPORTED_RESULT_PARAMS: &[&str] = &[
    "_summary",
    "_elements",
    "_total",
    "_contained",
    "_containedType",
];

/// A parsed directory search.
#[derive(Debug, Clone)]
pub struct DirectorySearch {
    pub resource_type: ResourceType,
    pub criteria: Vec<Criterion>,
    /// All `_lastUpdated` criteria, evaluated by the Patient Access API's date rules.
    pub last_updated: Option<SearchRequest>,
    pub chains: Vec<ChainTest>,
    pub has: Vec<HasTest>,
    pub near: Option<NearTest>,
    pub includes: Vec<IncludeSpec>,
    pub iterate_includes: Vec<IncludeSpec>,
    pub revincludes: Vec<RevIncludeSpec>,
    pub count: Option<u32>,
    /// Parameters ignored under lenient handling, as the client named them.
    pub ignored: Vec<String>,
    /// The recognised parameters as given, for the canonical query.
    canonical: Vec<(String, String)>,
}

/// One plain parameter occurrence; its values OR.
#[derive(Debug, Clone)]
pub struct Criterion {
    pub param: &'static Param,
    pub values: Vec<Test>,
}

/// One OR-ed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Id(String),
    /// `code`, `|code`, `system|code`, `system|`: `system` `None` = any,
    /// `Some(None)` = absent, `Some(Some(s))` = exactly `s`.
    Token {
        system: Option<Option<String>>,
        code: Option<String>,
    },
    /// `:text`: a folded prefix of a word of the coding's display or concept text.
    Text(String),
    StartsWith(String),
    Exact(String),
    Contains(String),
    Reference(Reference),
}

/// `param.inner=value`: the references under `param` must point at a resource of
/// `target` that the inner search finds.
#[derive(Debug, Clone)]
pub struct ChainTest {
    pub param: &'static Param,
    pub target: ResourceType,
    pub inner: Box<DirectorySearch>,
}

/// `_has:Source:param:inner=value`: some `Source` that the inner search finds refers
/// to the resource under `param`.
#[derive(Debug, Clone)]
pub struct HasTest {
    pub source: ResourceType,
    pub param: &'static Param,
    pub inner: Box<DirectorySearch>,
}

/// `near=lat|long|distance|unit`, in km.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearTest {
    pub lat: f64,
    pub lon: f64,
    pub radius_km: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IncludeSpec {
    pub source: ResourceType,
    /// `None` for `Source:*`.
    pub param: Option<&'static str>,
    pub target: Option<ResourceType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RevIncludeSpec {
    pub source: ResourceType,
    pub param: &'static str,
}

/// Parses a search on `resource_type`; `params` are percent-decoded, in order.
pub fn parse_directory_search(
    resource_type: ResourceType,
    params: &[(String, String)],
    handling: Handling,
) -> Result<DirectorySearch, SearchError> {
    parse_at(resource_type, params, handling, 0)
}

fn parse_at(
    resource_type: ResourceType,
    params: &[(String, String)],
    handling: Handling,
    depth: usize,
) -> Result<DirectorySearch, SearchError> {
    let mut parser = Parser {
        handling,
        depth,
        search: DirectorySearch {
            resource_type,
            criteria: Vec::new(),
            last_updated: None,
            chains: Vec::new(),
            has: Vec::new(),
            near: None,
            includes: Vec::new(),
            iterate_includes: Vec::new(),
            revincludes: Vec::new(),
            count: None,
            ignored: Vec::new(),
            canonical: Vec::new(),
        },
        last_updated: Vec::new(),
    };
    for (name, value) in params {
        parser.parameter(name, value)?;
    }
    if !parser.last_updated.is_empty() {
        parser.search.last_updated = Some(fhir_search::parse_search(
            ResourceType::Organization,
            &parser.last_updated,
            Handling::Strict,
        )?);
    }
    let mut search = parser.search;
    search.canonical.sort();
    search.canonical.dedup();
    Ok(search)
}

struct Parser {
    handling: Handling,
    depth: usize,
    search: DirectorySearch,
    last_updated: Vec<(String, String)>,
}

impl Parser {
    fn rt(&self) -> ResourceType {
        self.search.resource_type
    }

    fn keep(&mut self, name: &str, value: &str) {
        self.search
            .canonical
            .push((name.to_owned(), value.to_owned()));
    }

    fn ignore(&mut self, name: &str, reason: &str) -> Result<(), SearchError> {
        match self.handling {
            Handling::Strict => Err(SearchError::new(name, reason)),
            Handling::Lenient => {
                if !self.search.ignored.iter().any(|n| n == name) {
                    self.search.ignored.push(name.to_owned());
                }
                Ok(())
            }
        }
    }

    fn parameter(&mut self, name: &str, value: &str) -> Result<(), SearchError> {
        if name.starts_with("_has:") {
            return self.has(name, value);
        }
        let (head, modifier) = match name.split_once(':') {
            Some((h, m)) => (h, Some(m)),
            None => (name, None),
        };
        if let Some((param, rest)) = name.split_once('.')
            && !param.starts_with('_')
        {
            return self.chain(name, param, rest, value);
        }
        match head {
            "_count" => self.count(name, value),
            "_format" | "_pretty" => Ok(()),
            "_sort" => self.sort(name, value),
            "_include" => self.include(name, modifier, value),
            "_revinclude" => self.revinclude(name, modifier, value),
            _ if UNSUPPORTED_RESULT_PARAMS.contains(&head) => {
                self.ignore(name, "is not supported by this server")
            }
            "_lastUpdated" if modifier.is_none() => {
                self.keep(name, value);
                self.last_updated.push((name.to_owned(), value.to_owned()));
                Ok(())
            }
            _ => match param_of(self.rt(), head) {
                Some(param) if param.kind == Kind::Near => self.near(name, modifier, value),
                Some(param) => self.criterion(param, name, modifier, value),
                None => {
                    let reason = format!(
                        "is not a supported search parameter for {} in the provider directory",
                        self.rt()
                    );
                    self.ignore(name, &reason)
                }
            },
        }
    }

    fn count(&mut self, name: &str, value: &str) -> Result<(), SearchError> {
        let count = value
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                SearchError::new(name, format!("'{value}' is not a positive whole number"))
            })?;
        self.search.count = Some(count);
        Ok(())
    }

    /// Only `near` sorts (nearest first, which is also the default with `near`).
    fn sort(&mut self, name: &str, value: &str) -> Result<(), SearchError> {
        if value == "near" || value == "_near" {
            return Ok(());
        }
        self.ignore(name, "only _sort=near is supported")
    }

    fn include(
        &mut self,
        name: &str,
        modifier: Option<&str>,
        value: &str,
    ) -> Result<(), SearchError> {
        let iterate = match modifier {
            None => false,
            Some("iterate") => true,
            Some(other) => {
                return Err(SearchError::new(
                    name,
                    format!("the modifier ':{other}' is not supported; use :iterate"),
                ));
            }
        };
        for piece in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match self.include_value(piece, iterate) {
                Ok(spec) => {
                    self.keep(name, piece);
                    let list = if iterate {
                        &mut self.search.iterate_includes
                    } else {
                        &mut self.search.includes
                    };
                    if !list.contains(&spec) {
                        list.push(spec);
                    }
                }
                Err(reason) => self.ignore(name, &reason)?,
            }
        }
        Ok(())
    }

    fn include_value(&self, piece: &str, iterate: bool) -> Result<IncludeSpec, String> {
        let parts: Vec<&str> = piece.split(':').collect();
        let (source, param, target) = match parts.as_slice() {
            [s, p] => (*s, *p, None),
            [s, p, t] => (*s, *p, Some(*t)),
            _ => return Err(format!("'{piece}' is not of the form Type:parameter")),
        };
        let source: ResourceType = source
            .parse()
            .ok()
            .filter(|t| ResourceType::PLAN_NET.contains(t))
            .ok_or_else(|| format!("'{source}' is not a directory resource type"))?;
        if !iterate && source != self.rt() {
            return Err(format!(
                "'{piece}' does not start with the searched type {}; use _include:iterate",
                self.rt()
            ));
        }
        let param = match param {
            "*" => None,
            p => Some(
                includes(source)
                    .iter()
                    .find(|i| i.param == p)
                    .map(|i| i.param)
                    .ok_or_else(|| format!("'{source}:{p}' is not a supported include"))?,
            ),
        };
        let target = match target {
            None => None,
            Some(t) => Some(
                t.parse::<ResourceType>()
                    .map_err(|_| format!("'{t}' is not a resource type"))?,
            ),
        };
        Ok(IncludeSpec {
            source,
            param,
            target,
        })
    }

    fn revinclude(
        &mut self,
        name: &str,
        modifier: Option<&str>,
        value: &str,
    ) -> Result<(), SearchError> {
        if modifier.is_some() {
            return self.ignore(name, "only plain _revinclude is supported");
        }
        for piece in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let found = piece.split_once(':').and_then(|(s, p)| {
                let source: ResourceType = s.parse().ok()?;
                revincludes(self.rt())
                    .iter()
                    .find(|r| r.source == source && r.param == p)
            });
            match found {
                Some(r) => {
                    self.keep(name, piece);
                    let spec = RevIncludeSpec {
                        source: r.source,
                        param: r.param,
                    };
                    if !self.search.revincludes.contains(&spec) {
                        self.search.revincludes.push(spec);
                    }
                }
                None => {
                    let reason =
                        format!("'{piece}' is not a supported _revinclude for {}", self.rt());
                    self.ignore(name, &reason)?;
                }
            }
        }
        Ok(())
    }

    fn deeper(&self, name: &str) -> Result<usize, SearchError> {
        if self.depth + 1 >= MAX_DEPTH {
            return Err(SearchError::new(
                name,
                format!("chains and _has nest at most {MAX_DEPTH} levels"),
            ));
        }
        Ok(self.depth + 1)
    }

    /// `param[:Type].inner[:modifier]=value`.
    fn chain(
        &mut self,
        name: &str,
        head: &str,
        rest: &str,
        value: &str,
    ) -> Result<(), SearchError> {
        let (param_name, typed) = match head.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (head, None),
        };
        let Some(param) = param_of(self.rt(), param_name).filter(|p| p.kind == Kind::Reference)
        else {
            let reason = format!(
                "'{param_name}' is not a reference parameter of {}",
                self.rt()
            );
            return self.ignore(name, &reason);
        };
        let target = match typed {
            None => param.targets[0],
            Some(t) => t
                .parse::<ResourceType>()
                .ok()
                .filter(|t| param.targets.contains(t))
                .ok_or_else(|| {
                    SearchError::new(name, format!("'{t}' is not a target of {param_name}"))
                })?,
        };
        let inner_base = rest.split([':', '.']).next().unwrap_or_default();
        if !param.chains.contains(&inner_base) {
            return Err(SearchError::new(
                name,
                format!(
                    "{}.{param_name} does not chain to '{inner_base}'; it chains to: {}",
                    self.rt(),
                    param.chains.join(", ")
                ),
            ));
        }
        let depth = self.deeper(name)?;
        let inner = parse_at(
            target,
            &[(rest.to_owned(), value.to_owned())],
            Handling::Strict,
            depth,
        )?;
        self.keep(name, value);
        self.search.chains.push(ChainTest {
            param,
            target,
            inner: Box::new(inner),
        });
        Ok(())
    }

    /// `_has:Source:param:inner=value`.
    fn has(&mut self, name: &str, value: &str) -> Result<(), SearchError> {
        let mut parts = name.splitn(4, ':');
        let (_, source, param_name, inner_name) =
            (parts.next(), parts.next(), parts.next(), parts.next());
        let (Some(source), Some(param_name), Some(inner_name)) = (source, param_name, inner_name)
        else {
            return Err(SearchError::new(
                name,
                "expected _has:Type:reference-parameter:parameter",
            ));
        };
        let source: ResourceType = source
            .parse()
            .ok()
            .filter(|t| ResourceType::PLAN_NET.contains(t))
            .ok_or_else(|| {
                SearchError::new(name, format!("'{source}' is not a directory resource type"))
            })?;
        let param = referring_param(source, param_name, self.rt()).ok_or_else(|| {
            SearchError::new(
                name,
                format!("{source}.{param_name} is not a reference to {}", self.rt()),
            )
        })?;
        let depth = self.deeper(name)?;
        let inner = parse_at(
            source,
            &[(inner_name.to_owned(), value.to_owned())],
            Handling::Strict,
            depth,
        )?;
        self.keep(name, value);
        self.search.has.push(HasTest {
            source,
            param,
            inner: Box::new(inner),
        });
        Ok(())
    }

    fn near(&mut self, name: &str, modifier: Option<&str>, value: &str) -> Result<(), SearchError> {
        if modifier.is_some() {
            return Err(SearchError::new(name, "takes no modifier"));
        }
        if self.search.near.is_some() {
            return Err(SearchError::new(name, "may be given once"));
        }
        let bad = || {
            SearchError::new(
                name,
                format!(
                    "'{value}' is not latitude|longitude|distance|unit (e.g. 39.96|-83.00|10|km)"
                ),
            )
        };
        let parts: Vec<&str> = value.split('|').map(str::trim).collect();
        let number = |i: usize| parts.get(i).and_then(|p| p.parse::<f64>().ok());
        let (Some(lat), Some(lon)) = (number(0), number(1)) else {
            return Err(bad());
        };
        if !crate::geo::valid(lat, lon) {
            return Err(bad());
        }
        let distance = match parts.get(2).filter(|p| !p.is_empty()) {
            None => None,
            Some(_) => Some(
                number(2)
                    .filter(|d| d.is_finite() && *d >= 0.0)
                    .ok_or_else(bad)?,
            ),
        };
        let unit_km = match parts.get(3).copied().unwrap_or("km") {
            "" | "km" | "[km]" => 1.0,
            "mi" | "[mi_i]" | "[mi_us]" => 1.609_344,
            "m" => 0.001,
            other => {
                return Err(SearchError::new(
                    name,
                    format!("the unit '{other}' is not supported; use km, mi, [mi_i] or m"),
                ));
            }
        };
        let radius_km = distance.map_or(DEFAULT_NEAR_KM, |d| d * unit_km);
        if radius_km > MAX_NEAR_KM {
            return Err(SearchError::new(
                name,
                format!("the distance may be at most {MAX_NEAR_KM} km"),
            ));
        }
        self.keep(name, value);
        self.search.near = Some(NearTest {
            lat,
            lon,
            radius_km,
        });
        Ok(())
    }

    fn criterion(
        &mut self,
        param: &'static Param,
        name: &str,
        modifier: Option<&str>,
        value: &str,
    ) -> Result<(), SearchError> {
        if value.is_empty() {
            return self.ignore(name, "has no value");
        }
        let ok = match (param.kind, modifier) {
            (_, None) => true,
            (Kind::String, Some("exact" | "contains")) | (Kind::Token, Some("text")) => true,
            (Kind::Reference, Some(t)) => t
                .parse::<ResourceType>()
                .is_ok_and(|t| param.targets.contains(&t)),
            _ => false,
        };
        if !ok {
            return Err(SearchError::new(
                name,
                format!(
                    "the modifier ':{}' is not supported for {}",
                    modifier.unwrap_or_default(),
                    param.name
                ),
            ));
        }
        let mut values = Vec::new();
        for piece in split_unescaped(value, ',') {
            if piece.is_empty() {
                return Err(SearchError::new(
                    name,
                    "has an empty value in its comma-separated list",
                ));
            }
            values.push(test(param, name, modifier, piece)?);
        }
        self.keep(name, value);
        self.search.criteria.push(Criterion { param, values });
        Ok(())
    }
}

fn test(
    param: &Param,
    name: &str,
    modifier: Option<&str>,
    piece: &str,
) -> Result<Test, SearchError> {
    Ok(match (param.kind, modifier) {
        (Kind::Id, _) => Test::Id(unescape(piece)),
        (Kind::Token, Some("text")) => Test::Text(fold(&unescape(piece))),
        (Kind::Token, _) => match split_once_unescaped(piece, '|') {
            None => Test::Token {
                system: None,
                code: Some(unescape(piece)),
            },
            Some((system, code)) => Test::Token {
                system: Some((!system.is_empty()).then(|| unescape(system))),
                code: (!code.is_empty()).then(|| unescape(code)),
            },
        },
        (Kind::String, Some("exact")) => Test::Exact(unescape(piece)),
        (Kind::String, Some("contains")) => Test::Contains(fold(&unescape(piece))),
        (Kind::String, _) => Test::StartsWith(fold(&unescape(piece))),
        (Kind::Reference, _) => {
            let text = unescape(piece);
            let typed = modifier.and_then(|m| m.parse::<ResourceType>().ok());
            let reference = if text.contains('/') {
                Reference::parse(&text)
            } else {
                typed
                    .or_else(|| param.targets.first().copied())
                    .filter(|_| is_valid_id(&text))
                    .map(|t| Reference::new(t, text.clone()))
            };
            let reference = reference
                .filter(|r| param.targets.contains(&r.resource_type))
                .filter(|r| typed.is_none_or(|t| t == r.resource_type))
                .ok_or_else(|| {
                    SearchError::new(
                        name,
                        format!("'{text}' is not a valid reference (expected an id or Type/id)"),
                    )
                })?;
            Test::Reference(Reference::new(reference.resource_type, reference.id))
        }
        (Kind::LastUpdated | Kind::Near, _) => {
            return Err(SearchError::new(name, "is handled elsewhere"));
        }
    })
}

impl DirectorySearch {
    /// True when nothing narrows the search (every resource of the type matches).
    pub fn is_unfiltered(&self) -> bool {
        self.criteria.is_empty()
            && self.last_updated.is_none()
            && self.chains.is_empty()
            && self.has.is_empty()
            && self.near.is_none()
    }

    /// The recognised parameters (criteria, includes, revincludes) as a sorted,
    /// percent-encoded query string: it binds paging cursors and is the self link.
    pub fn canonical_query(&self) -> String {
        self.canonical
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The ids an `_id` criterion allows (their intersection), sorted; `None` when
    /// `_id` is not searched.
    pub fn ids(&self) -> Option<Vec<String>> {
        self.criteria
            .iter()
            .filter(|c| c.param.kind == Kind::Id)
            .map(|c| {
                c.values
                    .iter()
                    .filter_map(|t| match t {
                        Test::Id(id) if is_valid_id(id) => Some(id.clone()),
                        _ => None,
                    })
                    .collect::<std::collections::BTreeSet<_>>()
            })
            .reduce(|a, b| a.intersection(&b).cloned().collect())
            .map(|s| s.into_iter().collect())
    }

    /// The look-up terms that can drive this criterion: `(param, prefix)` per OR-ed
    /// value, or `None` when a value cannot be looked up (`:contains`, `:text`,
    /// `system|` with no code), so the criterion cannot narrow by keys.
    pub fn lookup_terms(criterion: &Criterion) -> Option<Vec<String>> {
        criterion
            .values
            .iter()
            .map(|t| match t {
                Test::Token {
                    code: Some(code), ..
                } => Some(term_prefix(code)),
                Test::StartsWith(s) if !s.is_empty() => Some(term_prefix(s)),
                Test::Exact(s) if !s.is_empty() => Some(term_prefix(&fold(s))),
                Test::Reference(r) => Some(r.relative()),
                _ => None,
            })
            .collect()
    }
}

impl DirectorySearch {
    /// The look-up terms that decide `criterion` exactly: a resource matches it if and
    /// only if it holds one of these terms (as an exact term) under the criterion's
    /// parameter. `Some` for references and for codes without a system that are short
    /// and plain enough to be stored whole and unchanged as their term; `None` when
    /// only the stored index can decide (a system, `:text`, strings, long values).
    pub fn exact_terms(criterion: &Criterion) -> Option<Vec<String>> {
        match criterion.param.kind {
            Kind::Reference | Kind::Token => criterion
                .values
                .iter()
                .map(|t| match t {
                    Test::Token {
                        system: None,
                        code: Some(code),
                    } if plain(code, MAX_TERM_CHARS - 1) => Some(code.clone()),
                    Test::Reference(r) => {
                        Some(r.relative()).filter(|t| plain(t, MAX_TERM_CHARS - 1))
                    }
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    /// Whether every look-up entry listed for this criterion's own
    /// [`DirectorySearch::lookup_terms`] proves that the resource matches it: exact
    /// terms, or string prefixes short and plain enough that the stored term (the
    /// folded value's first 128 characters) starts with them exactly when the value does.
    pub fn decided_by_lookup_terms(criterion: &Criterion) -> bool {
        if Self::exact_terms(criterion).is_some() {
            return true;
        }
        criterion.param.kind == Kind::String
            && criterion
                .values
                .iter()
                .all(|t| matches!(t, Test::StartsWith(s) if plain(s, MAX_TERM_CHARS)))
    }
}

/// Non-empty, at most `max` characters, and nothing a stored term would change
/// (control characters become spaces there, so spaces are ambiguous too).
fn plain(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.chars().count() <= max
        && !text.chars().any(|c| c.is_control() || c.is_whitespace())
}
