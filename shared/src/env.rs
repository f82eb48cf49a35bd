//! Settings from the environment: the one place that reads process variables
//! and turns malformed values into typed errors.
//!
//! Every settings type (`Config`, `DedupSettings`, `NotifierConfig`,
//! `TelemetryConfig`) reads through an [`Env`], so tests pass a map instead
//! of touching the process environment, and every module parses values the
//! same way: trimmed, empty meaning unset, malformed meaning an error at
//! start-up (a silent fallback could hide every alert).

use std::str::FromStr;

/// Why a setting could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
}

impl ConfigError {
    pub fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            name,
            message: message.into(),
        }
    }
}

/// Looks a variable up by name.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// A source of settings: the process environment or, in tests, a map.
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

impl Env<'static> {
    /// The process environment.
    pub fn process() -> Env<'static> {
        Env::new(|name| std::env::var(name).ok())
    }
}

impl<'a> Env<'a> {
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Env<'a> {
        Env {
            lookup: Box::new(lookup),
        }
    }

    /// The value, trimmed; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `default` when unset.
    pub fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::invalid(
                name,
                format!("expected true or false, got {other:?}"),
            )),
        }
    }

    /// A whole number of at least `min`, or `default` when unset.
    pub fn number(&self, name: &'static str, default: u64, min: u64) -> Result<u64, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n >= min => Ok(n),
                _ => Err(ConfigError::invalid(
                    name,
                    format!("expected a whole number of at least {min}, got {v:?}"),
                )),
            },
        }
    }

    /// Any value with a `FromStr` (a severity, a channel), or `default` when unset.
    pub fn parsed<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e: T::Err| ConfigError::invalid(name, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env<'static> {
        Env::new(move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn empty_is_unset_and_values_are_trimmed() {
        let e = env(&[("A", "  "), ("B", " x ")]);
        assert_eq!(e.get("A"), None);
        assert_eq!(e.get("B").as_deref(), Some("x"));
    }

    #[test]
    fn malformed_values_are_errors() {
        let e = env(&[("F", "maybe"), ("N", "0"), ("M", "7")]);
        assert!(e.flag("F", false).is_err());
        assert!(e.number("N", 5, 1).is_err());
        assert_eq!(e.number("M", 5, 1).unwrap(), 7);
        assert_eq!(e.number("UNSET", 5, 1).unwrap(), 5);
        assert!(e.flag("UNSET", true).unwrap());
        assert!(e.parsed::<u8>("F", 0).is_err());
    }
}
