//! What the pages are configured with besides branding: the API's throttling.

use crate::branding::{Branding, BrandingError, BrandingSettings};

/// The API Gateway throttling the template applies to the whole API. The developer
/// portal prints it, so it is read from the same parameters the template passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Steady-state requests per second (`ThrottleRatePerSecond`).
    pub requests_per_second: u32,
    /// Burst (`ThrottleBurst`).
    pub burst: u32,
}

impl Default for RateLimits {
    /// template.yaml's parameter defaults.
    fn default() -> Self {
        RateLimits {
            requests_per_second: 200,
            burst: 400,
        }
    }
}

impl RateLimits {
    /// The public provider directory's own limits: template.yaml's defaults of
    /// `DirectoryThrottleRatePerSecond` and `DirectoryThrottleBurst`.
    pub const DIRECTORY_DEFAULT: RateLimits = RateLimits {
        requests_per_second: 100,
        burst: 200,
    };
}

/// The WAF's per-IP rate rules at the CloudFront edge, each over any 5 minutes
/// (`WafRequestsPerIp`, `WafSignInRequestsPerIp`, `WafCredentialRequestsPerIp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeRateLimits {
    pub all_routes: u32,
    pub sign_in: u32,
    pub credentials: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Branding(#[from] BrandingError),
    #[error("environment variable {name} must be a whole number, not {value:?}")]
    NotANumber { name: &'static str, value: String },
}

/// Everything the public pages are configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct PagesConfig {
    pub branding: Branding,
    pub rate_limits: RateLimits,
    /// The `/directory` routes' own throttling.
    pub directory_rate_limits: RateLimits,
    /// Each app's request budget, a minute (`ClientRequestsPerMinute`; 0: none).
    pub client_requests_per_minute: u32,
    /// The edge's per-IP limits, when this stack's web ACL is in front (none locally,
    /// with `EdgeProtection` off, or with a plan's own web ACL).
    pub edge_rate_limits: Option<EdgeRateLimits>,
}

impl Default for PagesConfig {
    fn default() -> Self {
        PagesConfig {
            branding: Branding::default(),
            rate_limits: RateLimits::default(),
            directory_rate_limits: RateLimits::DIRECTORY_DEFAULT,
            client_requests_per_minute: fhir_api::DEFAULT_CLIENT_REQUESTS_PER_MINUTE,
            edge_rate_limits: None,
        }
    }
}

impl PagesConfig {
    /// On Lambda: branding from `PLAN_*`, limits from `THROTTLE_RATE_PER_SECOND`,
    /// `THROTTLE_BURST`, `DIRECTORY_THROTTLE_RATE_PER_SECOND`,
    /// `DIRECTORY_THROTTLE_BURST`, `CLIENT_REQUESTS_PER_MINUTE` and the edge's
    /// `WAF_REQUESTS_PER_IP`, `WAF_SIGN_IN_REQUESTS_PER_IP`,
    /// `WAF_CREDENTIAL_REQUESTS_PER_IP` (template.yaml sets all of them; the last three
    /// empty when its web ACL is not in front).
    pub fn from_env() -> Result<PagesConfig, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`PagesConfig::from_env`] over any lookup, for tests.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<PagesConfig, ConfigError> {
        let defaults = RateLimits::default();
        let rate_limits = RateLimits {
            requests_per_second: number(
                &lookup,
                "THROTTLE_RATE_PER_SECOND",
                defaults.requests_per_second,
            )?,
            burst: number(&lookup, "THROTTLE_BURST", defaults.burst)?,
        };
        let directory = RateLimits::DIRECTORY_DEFAULT;
        let directory_rate_limits = RateLimits {
            requests_per_second: number(
                &lookup,
                "DIRECTORY_THROTTLE_RATE_PER_SECOND",
                directory.requests_per_second,
            )?,
            burst: number(&lookup, "DIRECTORY_THROTTLE_BURST", directory.burst)?,
        };
        Ok(PagesConfig {
            branding: BrandingSettings::from_lookup(&lookup).build()?,
            rate_limits,
            directory_rate_limits,
            client_requests_per_minute: number(
                &lookup,
                "CLIENT_REQUESTS_PER_MINUTE",
                fhir_api::DEFAULT_CLIENT_REQUESTS_PER_MINUTE,
            )?,
            edge_rate_limits: edge_rate_limits(&lookup)?,
        })
    }
}

/// All three edge limits, or none (a partial set would print a misleading page).
fn edge_rate_limits(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<EdgeRateLimits>, ConfigError> {
    let limit = |name| match lookup(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(_) => number(lookup, name, 0).map(Some),
    };
    Ok(
        match (
            limit("WAF_REQUESTS_PER_IP")?,
            limit("WAF_SIGN_IN_REQUESTS_PER_IP")?,
            limit("WAF_CREDENTIAL_REQUESTS_PER_IP")?,
        ) {
            (Some(all_routes), Some(sign_in), Some(credentials)) => Some(EdgeRateLimits {
                all_routes,
                sign_in,
                credentials,
            }),
            _ => None,
        },
    )
}

fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u32,
) -> Result<u32, ConfigError> {
    match lookup(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|_| ConfigError::NotANumber { name, value }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_environment_names_the_template_sets() {
        let config = PagesConfig::from_lookup(|name| match name {
            "THROTTLE_RATE_PER_SECOND" => Some("25".to_owned()),
            "THROTTLE_BURST" => Some("50".to_owned()),
            "DIRECTORY_THROTTLE_RATE_PER_SECOND" => Some("5".to_owned()),
            _ => None,
        });
        let config = config.ok();
        assert_eq!(
            config.as_ref().map(|c| c.rate_limits),
            Some(RateLimits {
                requests_per_second: 25,
                burst: 50
            })
        );
        assert_eq!(
            config.map(|c| c.directory_rate_limits),
            Some(RateLimits {
                requests_per_second: 5,
                burst: RateLimits::DIRECTORY_DEFAULT.burst,
            }),
            "the directory's own limits; an unset one keeps the template's default"
        );
    }

    #[test]
    fn a_non_numeric_limit_is_an_error() {
        let config =
            PagesConfig::from_lookup(|name| (name == "THROTTLE_BURST").then(|| "lots".to_owned()));
        assert!(matches!(
            config,
            Err(ConfigError::NotANumber {
                name: "THROTTLE_BURST",
                ..
            })
        ));
    }

    #[test]
    fn the_edge_limits_are_printed_only_when_the_stacks_web_acl_sets_all_three() {
        let with = |set: &'static [(&'static str, &'static str)]| {
            PagesConfig::from_lookup(move |name| {
                set.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            })
            .ok()
            .and_then(|c| c.edge_rate_limits)
        };
        assert_eq!(
            with(&[
                ("WAF_REQUESTS_PER_IP", "15000"),
                ("WAF_SIGN_IN_REQUESTS_PER_IP", "300"),
                ("WAF_CREDENTIAL_REQUESTS_PER_IP", "1500"),
            ]),
            Some(EdgeRateLimits {
                all_routes: 15000,
                sign_in: 300,
                credentials: 1500
            })
        );
        assert_eq!(
            with(&[
                ("WAF_REQUESTS_PER_IP", ""),
                ("WAF_SIGN_IN_REQUESTS_PER_IP", ""),
                ("WAF_CREDENTIAL_REQUESTS_PER_IP", "")
            ]),
            None,
            "EdgeProtection off, or the plan's own web ACL"
        );
        assert_eq!(with(&[("WAF_REQUESTS_PER_IP", "15000")]), None);
    }
}
