//! Values for Sigma placeholders: `%name%` in a value under `|expand`.
//!
//! A rule such as SigmaHQ's console-login rule says
//! `src_country|expand: '%Legitimate_Countries%'`: what the placeholder
//! stands for is the deployer's to say. [`Placeholders`] is that
//! configuration (name → values), given to the rule set when it loads; each
//! placeholder in a value is replaced by each of its values, so one rule value
//! becomes several alternatives (OR), as pySigma's `value_placeholders`
//! pipeline transformation does.
//!
//! A placeholder with no configured values is a load error naming the rule
//! and the placeholder (pySigma fails the conversion the same way): a rule
//! left to match nothing, or everything, would do so silently.

use std::collections::BTreeMap;

use serde_json::Value;

/// Most values one rule value may expand to (several placeholders multiply):
/// rules are untrusted input, and so is their product with the configuration.
/// pySigma's limit is 200 per value; configured lists of networks or accounts
/// can be longer.
pub(crate) const MAX_EXPANSIONS: usize = 10_000;

/// Placeholder name → the values it stands for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placeholders {
    values: BTreeMap<String, Vec<String>>,
}

/// Why a placeholder configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    #[error("not valid JSON or YAML: {0}")]
    Syntax(String),
    #[error("expected a mapping of placeholder names to lists of values")]
    NotAMapping,
    #[error("placeholder name {0:?}: names are non-empty, without `%` or `\\`")]
    Name(String),
    #[error("placeholder `{name}`: {reason}")]
    Values { name: String, reason: String },
}

impl Placeholders {
    /// No configured placeholders: a `%name%` under `|expand` that is not one
    /// of the [`Placeholders::defaults`] is a load error.
    pub fn new() -> Placeholders {
        Placeholders::default()
    }

    /// Sets the values of `name` (without the `%`s), replacing earlier ones.
    /// Values are Sigma strings: `*` and `?` in them are wildcards. An empty
    /// list is refused: the rule value would match nothing.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        values: Vec<String>,
    ) -> Result<(), PlaceholderError> {
        let name = name.into();
        if !valid_name(&name) {
            return Err(PlaceholderError::Name(name));
        }
        if values.is_empty() {
            return Err(PlaceholderError::Values {
                name,
                reason: "an empty list would make the rule value match nothing".into(),
            });
        }
        self.values.insert(name, values);
        Ok(())
    }

    /// Reads a JSON or YAML mapping: each key a placeholder name, each value a
    /// list of strings or numbers (or one of them alone).
    ///
    /// ```
    /// let p = vigil_detect::Placeholders::parse(
    ///     r#"{"Legitimate_Countries": ["DE", "FR"], "admin": "alice"}"#,
    /// ).unwrap();
    /// assert_eq!(p.get("Legitimate_Countries").unwrap(), ["DE", "FR"]);
    /// assert_eq!(p.get("admin").unwrap(), ["alice"]);
    /// ```
    pub fn parse(text: &str) -> Result<Placeholders, PlaceholderError> {
        // JSON is YAML; serde_yaml reads both and hands back plain JSON values.
        let doc: Value =
            serde_yaml::from_str(text).map_err(|e| PlaceholderError::Syntax(e.to_string()))?;
        let Value::Object(map) = doc else {
            return Err(PlaceholderError::NotAMapping);
        };
        let mut out = Placeholders::new();
        for (name, v) in map {
            let values = match v {
                Value::Array(items) => items
                    .iter()
                    .map(|i| value_text(&name, i))
                    .collect::<Result<Vec<_>, _>>()?,
                other => vec![value_text(&name, &other)?],
            };
            out.insert(name, values)?;
        }
        Ok(out)
    }

    /// The bundled rules' defaults (`rules/placeholders.json`): what a name
    /// stands for when the deployer has not configured it, so a bundled rule
    /// such as "Lambda code replaced outside the deploy pipeline" loads and
    /// means something sensible out of the box. A configured name replaces its
    /// default list whole.
    pub fn defaults() -> &'static Placeholders {
        static DEFAULTS: std::sync::LazyLock<Placeholders> = std::sync::LazyLock::new(|| {
            Placeholders::parse(include_str!("../../rules/placeholders.json"))
                .expect("rules/placeholders.json is a valid placeholder mapping")
        });
        &DEFAULTS
    }

    /// The values of `name`, when configured (not counting [`Placeholders::defaults`]).
    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.values.get(name).map(Vec::as_slice)
    }

    /// The configured names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }
}

/// pySigma's rule: a name is what lies between two `%`, non-empty and
/// without a backslash. Wildcards would have split the value before
/// pySigma looks for placeholders, so they cannot be in a name either.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['%', '\\', '*', '?'])
}

fn value_text(name: &str, v: &Value) -> Result<String, PlaceholderError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(PlaceholderError::Values {
            name: name.into(),
            reason: "values are strings or numbers".into(),
        }),
    }
}

/// One piece of a rule value: literal text, or a placeholder name.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    Name(&'a str),
}

/// Splits `value` at its placeholders, as pySigma's `insert_placeholders`
/// does: `%`, a valid name, `%`; any other `%` is literal.
fn pieces(value: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let (mut text_start, mut i) = (0, 0);
    while let Some(open) = value[i..].find('%').map(|p| p + i) {
        let Some(close) = value[open + 1..].find('%').map(|p| p + open + 1) else {
            break;
        };
        let name = &value[open + 1..close];
        if valid_name(name) {
            if text_start < open {
                out.push(Piece::Text(&value[text_start..open]));
            }
            out.push(Piece::Name(name));
            text_start = close + 1;
            i = close + 1;
        } else {
            // This `%` is literal; the next one may open a placeholder.
            i = open + 1;
        }
    }
    if text_start < value.len() {
        out.push(Piece::Text(&value[text_start..]));
    }
    out
}

/// Why a value could not be expanded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ExpandError {
    /// A placeholder with no configured values.
    Unknown(String),
    /// More than [`MAX_EXPANSIONS`] values.
    TooMany,
}

/// Every value `value` stands for: each placeholder replaced by each of its
/// values, as text (so a configured value's `*` is a wildcard, and in a `|re`
/// value it is regular-expression syntax). A value without placeholders
/// stands for itself.
pub(crate) fn expand(value: &str, placeholders: &Placeholders) -> Result<Vec<String>, ExpandError> {
    let mut out = vec![String::new()];
    for piece in pieces(value) {
        match piece {
            Piece::Text(t) => out.iter_mut().for_each(|s| s.push_str(t)),
            Piece::Name(n) => {
                let values = placeholders
                    .get(n)
                    .or_else(|| Placeholders::defaults().get(n))
                    .ok_or_else(|| ExpandError::Unknown(n.to_string()))?;
                if out.len().saturating_mul(values.len()) > MAX_EXPANSIONS {
                    return Err(ExpandError::TooMany);
                }
                out = out
                    .iter()
                    .flat_map(|prefix| values.iter().map(move |v| format!("{prefix}{v}")))
                    .collect();
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &[&str])]) -> Placeholders {
        let mut p = Placeholders::new();
        for (name, values) in pairs {
            p.insert(*name, values.iter().map(|v| v.to_string()).collect())
                .unwrap();
        }
        p
    }

    #[test]
    fn placeholders_are_found_as_pysigma_finds_them() {
        assert_eq!(
            pieces("a%x%b"),
            vec![Piece::Text("a"), Piece::Name("x"), Piece::Text("b")]
        );
        // Empty names and names with a backslash leave the `%` literal.
        assert_eq!(pieces("100%%"), vec![Piece::Text("100%%")]);
        assert_eq!(
            pieces(r"%a\b%c%"),
            vec![Piece::Text(r"%a\b"), Piece::Name("c")]
        );
        assert_eq!(pieces("50% off"), vec![Piece::Text("50% off")]);
        assert_eq!(pieces("%a%%b%"), vec![Piece::Name("a"), Piece::Name("b")]);
    }

    #[test]
    fn expansion_is_the_product_of_the_values() {
        let p = config(&[("user", &["alice", "bob"]), ("dom", &["a.example", "b*"])]);
        assert_eq!(expand("plain", &p).unwrap(), ["plain"]);
        assert_eq!(
            expand("%user%@%dom%", &p).unwrap(),
            ["alice@a.example", "alice@b*", "bob@a.example", "bob@b*"]
        );
        assert_eq!(
            expand("%nobody%", &p),
            Err(ExpandError::Unknown("nobody".into()))
        );
        let many: Vec<String> = (0..200).map(|i| i.to_string()).collect();
        let mut big = Placeholders::new();
        big.insert("n", many).unwrap();
        assert!(expand("%n%", &big).is_ok());
        assert_eq!(expand("%n%%n%", &big), Err(ExpandError::TooMany));
    }

    #[test]
    fn configuration_is_json_or_yaml() {
        let p = Placeholders::parse("admins: [alice, 42]\nregion: eu-west-1\n").unwrap();
        assert_eq!(p.get("admins").unwrap(), ["alice", "42"]);
        assert_eq!(p.get("region").unwrap(), ["eu-west-1"]);
        assert_eq!(p.names().collect::<Vec<_>>(), ["admins", "region"]);
        assert!(matches!(
            Placeholders::parse("[1, 2]"),
            Err(PlaceholderError::NotAMapping)
        ));
        assert!(matches!(
            Placeholders::parse(r#"{"a": []}"#),
            Err(PlaceholderError::Values { .. })
        ));
        assert!(matches!(
            Placeholders::parse(r#"{"a": [{"b": 1}]}"#),
            Err(PlaceholderError::Values { .. })
        ));
        assert!(matches!(
            Placeholders::parse(r#"{"%a%": ["x"]}"#),
            Err(PlaceholderError::Name(_))
        ));
        assert!(matches!(
            Placeholders::parse("{"),
            Err(PlaceholderError::Syntax(_))
        ));
    }

    #[test]
    fn a_default_applies_until_the_deployer_configures_the_name() {
        let defaults = Placeholders::defaults();
        assert!(defaults
            .get("deploy_principals")
            .is_some_and(|v| !v.is_empty()));
        let by_default = expand("%iac_user_agents%", &Placeholders::new()).unwrap();
        assert_eq!(by_default, defaults.get("iac_user_agents").unwrap());
        let configured = Placeholders::parse(r#"{"iac_user_agents": ["*MyDeployer*"]}"#).unwrap();
        assert_eq!(
            expand("%iac_user_agents%", &configured).unwrap(),
            ["*MyDeployer*"]
        );
        assert!(matches!(
            expand("%not_a_default%", &Placeholders::new()),
            Err(ExpandError::Unknown(_))
        ));
    }
}
