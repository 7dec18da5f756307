//! Parsing a search request: parameters in, a [`SearchRequest`] out.
//!
//! Rules (FHIR R4 search, as CARIN, US Core and the Inferno kit use it):
//! repeated parameters are ANDed, comma-separated values ORed (`\,` escapes a
//! comma); result parameters are separated from criteria; parameters we do not
//! implement are ignored under `handling=lenient` and rejected under `strict`.

use fhir::{Instant, Reference, ResourceType, is_valid_id};

use crate::date::{DateTest, Prefix, parse_range};
use crate::error::SearchError;
use crate::params::{ParamKind, SearchParamDef, include_def, search_param};
use crate::text::{fold, split_once_unescaped, split_unescaped, unescape};

/// What to do with parameters the server does not implement (`Prefer: handling=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Handling {
    /// Ignore them (and leave them out of the self link). The FHIR default.
    #[default]
    Lenient,
    /// Reject the search with 400.
    Strict,
}

/// Result parameters we recognise but do not implement; ignored or rejected like
/// unknown parameters, but with a clearer message.
const UNSUPPORTED_RESULT_PARAMS: &[&str] = &[
    "_sort",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_contained",
    "_containedType",
];

/// One `_include` / `_include:iterate` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IncludeRequest {
    pub source: ResourceType,
    /// The include parameter; `None` for `Source:*`.
    pub param: Option<&'static str>,
    /// The optional third part, `Source:param:Target`.
    pub target: Option<ResourceType>,
}

/// A hint for directory storage: list look-up terms of `param` starting with
/// `prefix`. Candidates must still be checked with [`SearchRequest::matches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupHint {
    pub param: &'static str,
    pub prefix: String,
}

/// A parsed search: criteria (AND of ORs), includes and result parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub(crate) resource_type: ResourceType,
    pub(crate) criteria: Vec<Criterion>,
    pub(crate) includes: Vec<IncludeRequest>,
    pub(crate) iterate_includes: Vec<IncludeRequest>,
    pub(crate) count: Option<u32>,
    pub(crate) ignored: Vec<String>,
}

/// One parameter occurrence: its values are ORed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Criterion {
    pub def: &'static SearchParamDef,
    /// The modifier as it goes into the canonical query (`exact`, `Patient`, …).
    pub modifier: Option<String>,
    pub values: Vec<Test>,
    /// The values as they go into the canonical query, still escaped.
    pub raw: Vec<String>,
}

impl Criterion {
    pub fn key(&self) -> String {
        match &self.modifier {
            Some(m) => format!("{}:{m}", self.def.name),
            None => self.def.name.to_owned(),
        }
    }
}

/// One OR-ed value of a criterion, parsed for its parameter's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Id(String),
    Token(TokenTest),
    String(StringTest),
    Date(DateTest),
    Reference(Reference),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenTest {
    pub system: SystemTest,
    /// `None` for `system|` (any code in the system).
    pub code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SystemTest {
    /// `code`: any system, or none.
    Any,
    /// `|code`: only values without a system.
    Absent,
    /// `system|code`.
    Exact(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringMode {
    StartsWith,
    Exact,
    Contains,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StringTest {
    pub mode: StringMode,
    /// Folded, except for `:exact`, which compares the value as written.
    pub needle: String,
}

/// Parses a search on `resource_type`. `params` are percent-decoded, in request
/// order (query string and form body alike). `ap` tolerances are taken from now.
pub fn parse_search(
    resource_type: ResourceType,
    params: &[(String, String)],
    handling: Handling,
) -> Result<SearchRequest, SearchError> {
    parse_search_at(resource_type, params, handling, &Instant::now())
}

/// [`parse_search`] with an explicit "now" for the `ap` prefix, so results are
/// reproducible (tests, and paging that re-parses a query later).
pub fn parse_search_at(
    resource_type: ResourceType,
    params: &[(String, String)],
    handling: Handling,
    now: &Instant,
) -> Result<SearchRequest, SearchError> {
    let mut parser = Parser {
        handling,
        now_ms: now.unix_millis(),
        request: SearchRequest {
            resource_type,
            criteria: Vec::new(),
            includes: Vec::new(),
            iterate_includes: Vec::new(),
            count: None,
            ignored: Vec::new(),
        },
    };
    for (name, value) in params {
        parser.parameter(name, value)?;
    }
    let mut request = parser.request;
    request
        .criteria
        .sort_by_cached_key(|c| (c.key(), c.raw.clone()));
    request
        .criteria
        .dedup_by(|a, b| a.key() == b.key() && a.raw == b.raw);
    Ok(request)
}

struct Parser {
    handling: Handling,
    now_ms: i64,
    request: SearchRequest,
}

impl Parser {
    fn resource_type(&self) -> ResourceType {
        self.request.resource_type
    }

    fn parameter(&mut self, name: &str, value: &str) -> Result<(), SearchError> {
        let (base, modifier) = match name.split_once(':') {
            Some((base, modifier)) => (base, Some(modifier)),
            None => (name, None),
        };
        match base {
            "_count" => self.count(name, modifier, value),
            "_format" | "_pretty" => Ok(()),
            "_include" => self.include(name, modifier, value),
            _ if UNSUPPORTED_RESULT_PARAMS.contains(&base) => {
                self.ignore(name, "is not supported by this server")
            }
            _ => match search_param(self.resource_type(), base) {
                Some(def) => self.criterion(def, name, modifier, value),
                None => {
                    let reason = format!(
                        "is not a supported search parameter for {}",
                        self.resource_type()
                    );
                    self.ignore(name, &reason)
                }
            },
        }
    }

    /// Lenient: remember and skip. Strict: the whole search fails.
    fn ignore(&mut self, name: &str, reason: &str) -> Result<(), SearchError> {
        match self.handling {
            Handling::Strict => Err(SearchError::new(name, reason)),
            Handling::Lenient => {
                if !self.request.ignored.iter().any(|n| n == name) {
                    self.request.ignored.push(name.to_owned());
                }
                Ok(())
            }
        }
    }

    /// `_count` must be a positive whole number; the API clamps it to its maximum.
    fn count(
        &mut self,
        name: &str,
        modifier: Option<&str>,
        value: &str,
    ) -> Result<(), SearchError> {
        if modifier.is_some() {
            return Err(SearchError::new(name, "takes no modifier"));
        }
        let count = value
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                SearchError::new(name, format!("'{value}' is not a positive whole number"))
            })?;
        if self.request.count.is_some_and(|c| c != count) {
            return Err(SearchError::new(
                name,
                "was given more than once with different values",
            ));
        }
        self.request.count = Some(count);
        Ok(())
    }

    fn include(
        &mut self,
        name: &str,
        modifier: Option<&str>,
        value: &str,
    ) -> Result<(), SearchError> {
        let iterate = match modifier {
            None => false,
            Some("iterate" | "recurse") => true,
            Some(other) => {
                return Err(SearchError::new(
                    name,
                    format!("the modifier ':{other}' is not supported; use :iterate"),
                ));
            }
        };
        for piece in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match self.include_value(piece, iterate) {
                Ok(include) => {
                    let list = if iterate {
                        &mut self.request.iterate_includes
                    } else {
                        &mut self.request.includes
                    };
                    if !list.contains(&include) {
                        list.push(include);
                    }
                }
                Err(reason) => self.ignore(name, &reason)?,
            }
        }
        Ok(())
    }

    /// `Source:param`, `Source:param:Target` or `Source:*`.
    fn include_value(&self, piece: &str, iterate: bool) -> Result<IncludeRequest, String> {
        let parts: Vec<&str> = piece.split(':').collect();
        let (source, param, target) = match parts.as_slice() {
            [s, p] => (*s, *p, None),
            [s, p, t] => (*s, *p, Some(*t)),
            _ => {
                return Err(format!(
                    "'{piece}' is not of the form Type:parameter or Type:parameter:TargetType"
                ));
            }
        };
        let source: ResourceType = source
            .parse()
            .map_err(|_| format!("'{source}' is not a resource type this server supports"))?;
        if !iterate && source != self.resource_type() {
            return Err(format!(
                "'{piece}' does not start with the searched type {}; use _include:iterate",
                self.resource_type()
            ));
        }
        let def = match param {
            "*" => None,
            _ => Some(
                include_def(source, param)
                    .ok_or_else(|| format!("'{source}:{param}' is not a supported include"))?,
            ),
        };
        let target = match target {
            None => None,
            Some(t) => {
                let t: ResourceType = t
                    .parse()
                    .map_err(|_| format!("'{t}' is not a resource type this server supports"))?;
                if def.is_some_and(|d| !d.targets.contains(&t)) {
                    return Err(format!("'{source}:{param}' never refers to {t}"));
                }
                Some(t)
            }
        };
        Ok(IncludeRequest {
            source,
            param: def.map(|d| d.param),
            target,
        })
    }

    fn criterion(
        &mut self,
        def: &'static SearchParamDef,
        name: &str,
        modifier: Option<&str>,
        value: &str,
    ) -> Result<(), SearchError> {
        if value.is_empty() {
            return self.ignore(name, "has no value");
        }
        let modifier = check_modifier(self.resource_type(), def, name, modifier)?;
        let mut values = Vec::new();
        let mut raw = Vec::new();
        for piece in split_unescaped(value, ',') {
            if piece.is_empty() {
                return Err(SearchError::new(
                    name,
                    "has an empty value in its comma-separated list",
                ));
            }
            let (test, canonical) = self.value(def, name, modifier.as_deref(), piece)?;
            values.push(test);
            raw.push(canonical);
        }
        self.request.criteria.push(Criterion {
            def,
            modifier,
            values,
            raw,
        });
        Ok(())
    }

    /// Parses one OR-ed value; also returns its canonical (still escaped) text.
    fn value(
        &self,
        def: &SearchParamDef,
        name: &str,
        modifier: Option<&str>,
        piece: &str,
    ) -> Result<(Test, String), SearchError> {
        if def.name == "_id" {
            return Ok((Test::Id(unescape(piece)), piece.to_owned()));
        }
        match def.kind {
            ParamKind::Date => {
                let test = date_value(name, piece, self.now_ms)?;
                Ok((Test::Date(test.0), test.1))
            }
            ParamKind::Token => Ok((Test::Token(token_value(name, piece)?), piece.to_owned())),
            ParamKind::String => Ok((
                Test::String(string_value(modifier, piece)),
                piece.to_owned(),
            )),
            ParamKind::Reference => {
                let reference = reference_value(self.resource_type(), def, name, modifier, piece)?;
                Ok((Test::Reference(reference), piece.to_owned()))
            }
        }
    }
}

/// Only `:exact`/`:contains` on strings and a target type on references are
/// supported; anything else (including `:missing`, `:not`, `:text`) is a 400,
/// because silently ignoring a modifier would change the meaning of the search.
fn check_modifier(
    resource_type: ResourceType,
    def: &SearchParamDef,
    name: &str,
    modifier: Option<&str>,
) -> Result<Option<String>, SearchError> {
    let Some(modifier) = modifier else {
        return Ok(None);
    };
    let ok = match def.kind {
        ParamKind::String => matches!(modifier, "exact" | "contains"),
        ParamKind::Reference => modifier
            .parse::<ResourceType>()
            .is_ok_and(|t| reference_targets(resource_type, def).contains(&t)),
        ParamKind::Token | ParamKind::Date => false,
    };
    if ok {
        Ok(Some(modifier.to_owned()))
    } else {
        Err(SearchError::new(
            name,
            format!(
                "the modifier ':{modifier}' is not supported for {}",
                def.name
            ),
        ))
    }
}

/// The types a reference search parameter can point to (all of ours: Patient).
fn reference_targets(resource_type: ResourceType, def: &SearchParamDef) -> &'static [ResourceType] {
    include_def(resource_type, def.name).map_or(&[ResourceType::Patient], |d| d.targets)
}

/// `[prefix]date`. A `+` decoded to a space (an unencoded `+` in a URL) is put back.
fn date_value(name: &str, piece: &str, now_ms: i64) -> Result<(DateTest, String), SearchError> {
    let normalised = piece.trim_start().replace(' ', "+");
    let (prefix, text) = Prefix::split(&normalised);
    let range = parse_range(text).ok_or_else(|| {
        SearchError::new(
            name,
            format!("'{piece}' is not a valid date; expected e.g. 2019-11-01, ge2019-01 or gt2019-11-01T00:00:00+00:00"),
        )
    })?;
    Ok((DateTest::new(prefix, range, now_ms), normalised))
}

/// `code`, `|code`, `system|code` or `system|`.
fn token_value(name: &str, piece: &str) -> Result<TokenTest, SearchError> {
    let Some((system, code)) = split_once_unescaped(piece, '|') else {
        return Ok(TokenTest {
            system: SystemTest::Any,
            code: Some(unescape(piece)),
        });
    };
    let system = if system.is_empty() {
        SystemTest::Absent
    } else {
        SystemTest::Exact(unescape(system))
    };
    let code = (!code.is_empty()).then(|| unescape(code));
    if system == SystemTest::Absent && code.is_none() {
        return Err(SearchError::new(name, "'|' needs a system, a code or both"));
    }
    Ok(TokenTest { system, code })
}

fn string_value(modifier: Option<&str>, piece: &str) -> StringTest {
    let text = unescape(piece);
    match modifier {
        Some("exact") => StringTest {
            mode: StringMode::Exact,
            needle: text,
        },
        Some("contains") => StringTest {
            mode: StringMode::Contains,
            needle: fold(&text),
        },
        _ => StringTest {
            mode: StringMode::StartsWith,
            needle: fold(&text),
        },
    }
}

/// `X`, `Patient/X`, `Patient/X/_history/n` or an absolute URL ending in one of them.
fn reference_value(
    resource_type: ResourceType,
    def: &SearchParamDef,
    name: &str,
    modifier: Option<&str>,
    piece: &str,
) -> Result<Reference, SearchError> {
    let text = unescape(piece);
    let targets = reference_targets(resource_type, def);
    let typed = modifier.and_then(|m| m.parse::<ResourceType>().ok());
    let reference = if text.contains('/') {
        Reference::parse(&text)
    } else {
        let bare_type = typed.or_else(|| targets.first().copied());
        bare_type
            .filter(|_| is_valid_id(&text))
            .map(|t| Reference::new(t, text.clone()))
    };
    let reference = reference.ok_or_else(|| {
        SearchError::new(
            name,
            format!("'{text}' is not a valid reference (expected an id or Type/id)"),
        )
    })?;
    let allowed = targets.contains(&reference.resource_type)
        && typed.is_none_or(|t| t == reference.resource_type);
    if !allowed {
        return Err(SearchError::new(
            name,
            format!("'{text}' does not refer to a {}", targets_text(targets)),
        ));
    }
    Ok(Reference {
        version: None,
        ..reference
    })
}

fn targets_text(targets: &[ResourceType]) -> String {
    targets
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}
