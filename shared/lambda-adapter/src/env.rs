//! Reading the environment template.yaml sets. Every function reports a bad setting
//! with the one [`ConfigError`], so a start-up failure reads the same in every log.

use std::str::FromStr;

/// Why a function could not read its configuration at start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A variable's value; unset and blank are the same (a template parameter left empty
/// arrives as an empty string).
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A variable that must be set and not blank.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    optional(name).ok_or(ConfigError::Missing(name))
}

/// An optional variable parsed as `T`; a value that does not parse is an error, not
/// the default, so a typo in a setting stops the function instead of being ignored.
pub fn parsed<T>(name: &'static str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    optional(name)
        .map(|v| {
            v.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            })
        })
        .transpose()
}
