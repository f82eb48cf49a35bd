//! Forgiving reads from untyped JSON.
//!
//! Source events drift: the same GuardDuty finding arrives in camelCase from
//! EventBridge and in PascalCase inside Security Hub, numbers arrive as strings,
//! `additionalInfo` is sometimes a JSON string. Parsers read through these
//! helpers so a missing or oddly typed field yields `None`, never an error.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

/// `v[key]`, falling back to the key with its first letter upper-cased
/// (`count` → `Count`), as Security Hub spells GuardDuty's fields.
pub fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    if let Some(found) = obj.get(key) {
        return Some(found);
    }
    let mut chars = key.chars();
    let first = chars.next()?;
    if first.is_ascii_lowercase() {
        let pascal: String = first.to_ascii_uppercase().to_string() + chars.as_str();
        obj.get(&pascal)
    } else {
        None
    }
}

/// Follows `path` through nested objects with [`field`].
pub fn path<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| field(cur, key))
}

/// A non-empty string at `path`; numbers and booleans are rendered as text.
pub fn string(v: &Value, p: &[&str]) -> Option<String> {
    match path(v, p)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A borrowed non-empty string at `path`.
pub(crate) fn str_at<'a>(v: &'a Value, p: &[&str]) -> Option<&'a str> {
    path(v, p)?.as_str().filter(|s| !s.is_empty())
}

/// A number at `path`, also when sent as a string ("8.0").
pub fn number(v: &Value, p: &[&str]) -> Option<f64> {
    match path(v, p)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// A boolean at `path`, also when sent as "true"/"false".
pub fn boolean(v: &Value, p: &[&str]) -> Option<bool> {
    match path(v, p)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" => Some(true),
            "false" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// An object that may have been serialized into a string (GuardDuty's
/// `additionalInfo` is both in the wild).
pub(crate) fn object_or_json_string(v: &Value) -> Option<Value> {
    match v {
        Value::Object(_) => Some(v.clone()),
        Value::String(s) => serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_object),
        _ => None,
    }
}

/// `[{key, value}]` tag lists (GuardDuty, Macie) into a map; entries without
/// a key are skipped.
pub(crate) fn tag_map(v: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                string(t, &["key"])?,
                string(t, &["value"]).unwrap_or_default(),
            ))
        })
        .collect()
}

/// Parses the timestamp forms the sources use: RFC 3339 (`2017-12-08T15:32:49.865Z`),
/// GuardDuty's space-separated `2025-02-25 20:40:06.721` (UTC), Inspector's
/// events' `Jan 19, 2023, 10:46:15 PM` (UTC), AWS Health's RFC 2822
/// `Sat, 05 Jun 2016 15:10:09 GMT`, and epoch seconds or milliseconds as numbers.
pub fn time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::String(s) => parse_time_str(s),
        Value::Number(n) => {
            let raw = n.as_f64()?;
            // Anything past year 2286 in seconds is milliseconds.
            let secs = if raw > 1e10 { raw / 1000.0 } else { raw };
            Utc.timestamp_opt(secs.trunc() as i64, (secs.fract() * 1e9) as u32)
                .single()
        }
        _ => None,
    }
}

/// A timestamp at `path` (see [`time`]).
pub(crate) fn time_at(v: &Value, p: &[&str]) -> Option<DateTime<Utc>> {
    time(path(v, p)?)
}

fn parse_time_str(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    // AWS Health's own example carries a weekday that does not match its
    // date (`Sat, 05 Jun 2016` was a Sunday), which RFC 2822 parsing refuses:
    // the date alone decides.
    if let Some((_, rest)) = s.split_once(", ").filter(|(day, _)| day.len() == 3) {
        if let Ok(t) = NaiveDateTime::parse_from_str(rest, "%d %b %Y %H:%M:%S GMT") {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%b %d, %Y, %I:%M:%S %p",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_falls_back_to_pascal_case() {
        let v = json!({"Service": {"Count": 3}});
        assert_eq!(number(&v, &["service", "count"]), Some(3.0));
    }

    #[test]
    fn numbers_as_strings_and_bad_numbers() {
        let v = json!({"a": "8.5", "b": "x", "c": null});
        assert_eq!(number(&v, &["a"]), Some(8.5));
        assert_eq!(number(&v, &["b"]), None);
        assert_eq!(number(&v, &["c"]), None);
    }

    #[test]
    fn times_in_every_form() {
        let inspector = time(&json!("Jan 19, 2023, 10:46:15 PM")).unwrap();
        assert_eq!(inspector.to_rfc3339(), "2023-01-19T22:46:15+00:00");
        let health = time(&json!("Sat, 05 Jun 2016 15:10:09 GMT")).unwrap();
        assert_eq!(health.to_rfc3339(), "2016-06-05T15:10:09+00:00");
        assert_eq!(time(&json!("Jan 99, 2023, 10:46:15 PM")), None);
        let iso = time(&json!("2017-12-08T15:32:49.865Z")).unwrap();
        assert_eq!(iso.timestamp(), 1512747169);
        let gd = time(&json!("2025-02-25 20:40:06.000000000")).unwrap();
        assert_eq!(gd.to_rfc3339(), "2025-02-25T20:40:06+00:00");
        assert_eq!(time(&json!(1513312096)).unwrap().timestamp(), 1513312096);
        assert_eq!(
            time(&json!(1513312096000u64)).unwrap().timestamp(),
            1513312096
        );
        assert!(time(&json!("yesterday")).is_none());
    }

    #[test]
    fn object_in_a_string() {
        let v = json!("{\"sample\": true}");
        assert_eq!(object_or_json_string(&v).unwrap()["sample"], json!(true));
        assert!(object_or_json_string(&json!("nope")).is_none());
    }
}
