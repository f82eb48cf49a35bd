//! A CloudFormation template read as CloudFormation would deploy it, for the
//! template tests: parameters (defaults plus the deployer's values),
//! conditions, and the few intrinsic functions Vigil's templates use in the
//! places the tests read (`Ref`, `Fn::If`, `Fn::FindInMap`, `Fn::Equals`,
//! `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`), in short (`!Ref`) and long
//! (`Ref:`) form. Everything else is left as written.

#![allow(dead_code)] // Each test file uses its own part of this reader.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;
use serde_yaml::Value;

/// A template with the parameter values of one deployment.
pub struct Template {
    doc: Value,
    params: BTreeMap<String, String>,
}

/// An intrinsic function call: its long name (`Ref`, `Fn::GetAtt`, ...) and argument.
pub fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let name = match tag {
                "Ref" | "Condition" => tag.to_string(),
                _ => format!("Fn::{tag}"),
            };
            Some((name, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k == "Condition" || k.starts_with("Fn::")).then(|| (k.to_string(), arg))
        }
        _ => None,
    }
}

/// What a `Ref` or an `Fn::GetAtt` names: a resource, and the attribute
/// (`AlertTopic`; `DeadLetterQueue.Arn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub resource: String,
    pub attribute: Option<String>,
}

impl ResourceRef {
    pub fn new(resource: &str, attribute: Option<&str>) -> ResourceRef {
        ResourceRef {
            resource: resource.to_string(),
            attribute: attribute.map(str::to_string),
        }
    }
}

/// The resource `v` names, when it is a `Ref` or an `Fn::GetAtt`.
pub fn target(v: &Value) -> Option<ResourceRef> {
    let (name, arg) = intrinsic(v)?;
    match (name.as_str(), arg) {
        ("Ref", Value::String(r)) => Some(ResourceRef::new(r, None)),
        ("Fn::GetAtt", Value::String(s)) => {
            let (r, a) = s.split_once('.')?;
            Some(ResourceRef::new(r, Some(a)))
        }
        ("Fn::GetAtt", Value::Sequence(parts)) => Some(ResourceRef::new(
            parts.first()?.as_str()?,
            parts.get(1).and_then(Value::as_str),
        )),
        _ => None,
    }
}

impl Template {
    /// `path` (relative to the project root) with `values` for some parameters.
    pub fn load(path: &str, values: &[(&str, &str)]) -> Template {
        let file = vigil_e2e::project_root().join(path);
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", Path::new(&file).display()));
        let doc: Value = serde_yaml::from_str(&text).expect("the template is YAML");
        let mut params = BTreeMap::new();
        if let Some(ps) = doc.get("Parameters").and_then(Value::as_mapping) {
            for (k, p) in ps {
                let default = p.get("Default").map(scalar).unwrap_or_default();
                params.insert(k.as_str().unwrap_or_default().to_string(), default);
            }
        }
        for (k, v) in values {
            assert!(params.contains_key(*k), "{path} has no parameter {k}");
            params.insert(k.to_string(), v.to_string());
        }
        Template { doc, params }
    }

    /// Whether the named condition holds for these parameter values.
    pub fn condition(&self, name: &str) -> bool {
        let c = self
            .doc
            .get("Conditions")
            .and_then(|cs| cs.get(name))
            .unwrap_or_else(|| panic!("no condition {name}"));
        self.holds(c)
    }

    fn holds(&self, v: &Value) -> bool {
        let (name, arg) = intrinsic(v).unwrap_or_else(|| panic!("not a condition: {v:?}"));
        let list = || arg.as_sequence().cloned().unwrap_or_default();
        match name.as_str() {
            "Condition" => self.condition(arg.as_str().unwrap_or_default()),
            "Fn::Not" => !self.holds(&list()[0]),
            "Fn::And" => list().iter().all(|c| self.holds(c)),
            "Fn::Or" => list().iter().any(|c| self.holds(c)),
            "Fn::Equals" => {
                let l = list();
                self.resolve(&l[0]) == self.resolve(&l[1])
            }
            other => panic!("condition function {other} not supported"),
        }
    }

    /// `v` with parameter references, `Fn::If` and `Fn::FindInMap` resolved
    /// (references to resources are kept as written).
    pub fn resolve(&self, v: &Value) -> Json {
        if let Some((name, arg)) = intrinsic(v) {
            let list = arg.as_sequence().cloned().unwrap_or_default();
            match name.as_str() {
                "Ref" if self.params.contains_key(arg.as_str().unwrap_or_default()) => {
                    return Json::from(self.params[arg.as_str().unwrap_or_default()].clone())
                }
                "Fn::If" => {
                    let branch = if self.condition(list[0].as_str().unwrap_or_default()) {
                        &list[1]
                    } else {
                        &list[2]
                    };
                    return self.resolve(branch);
                }
                "Fn::FindInMap" => {
                    let key = |i: usize| {
                        self.resolve(&list[i])
                            .as_str()
                            .unwrap_or_default()
                            .to_string()
                    };
                    let map =
                        &self.doc["Mappings"][key(0).as_str()][key(1).as_str()][key(2).as_str()];
                    return self.resolve(map);
                }
                _ => {}
            }
        }
        match v {
            Value::Sequence(items) => Json::Array(
                items
                    .iter()
                    .filter(|i| !self.is_no_value(i))
                    .map(|i| self.resolve(i))
                    .collect(),
            ),
            Value::Mapping(m) => Json::Object(
                m.iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), self.resolve(v)))
                    .collect(),
            ),
            Value::Tagged(t) => {
                serde_json::json!({ t.tag.to_string(): self.resolve(&t.value) })
            }
            other => serde_json::to_value(other).unwrap_or(Json::Null),
        }
    }

    fn is_no_value(&self, v: &Value) -> bool {
        match intrinsic(v) {
            Some((n, arg)) if n == "Ref" => arg.as_str() == Some("AWS::NoValue"),
            Some((n, arg)) if n == "Fn::If" => {
                let l = arg.as_sequence().cloned().unwrap_or_default();
                let branch = if self.condition(l[0].as_str().unwrap_or_default()) {
                    &l[1]
                } else {
                    &l[2]
                };
                self.is_no_value(branch)
            }
            _ => false,
        }
    }

    /// The resources this deployment creates (their `Condition` holds), by name.
    pub fn resources(&self) -> Vec<(String, &Value)> {
        let all = self.doc["Resources"].as_mapping().expect("Resources");
        all.iter()
            .filter(|(_, r)| {
                r.get("Condition")
                    .and_then(Value::as_str)
                    .is_none_or(|c| self.condition(c))
            })
            .map(|(k, r)| (k.as_str().unwrap_or_default().to_string(), r))
            .collect()
    }

    /// The created resources of one type.
    pub fn of_type(&self, ty: &str) -> Vec<(String, &Value)> {
        self.resources()
            .into_iter()
            .filter(|(_, r)| r["Type"].as_str() == Some(ty))
            .collect()
    }

    /// The events of every created SAM function: (`Function.Event`, event).
    pub fn function_events(&self) -> Vec<(String, &Value)> {
        let mut out = Vec::new();
        for (name, f) in self.of_type("AWS::Serverless::Function") {
            let Some(events) = f["Properties"].get("Events").and_then(Value::as_mapping) else {
                continue;
            };
            for (event, e) in events {
                out.push((format!("{name}.{}", event.as_str().unwrap_or_default()), e));
            }
        }
        out
    }

    /// The type of a created resource, `None` when the deployment has no such resource.
    pub fn type_of(&self, name: &str) -> Option<&str> {
        self.resources()
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, r)| r["Type"].as_str())
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}
