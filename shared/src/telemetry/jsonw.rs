//! Writing JSON straight into a line buffer: log and EMF lines are built on
//! every event, and building `serde_json::Value` trees only to print them
//! cost more than the rest of the pipeline.

use std::fmt::Write as _;

use serde_json::Value;

/// Appends `s` as a JSON string (quoted, escaped).
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a finite number as JSON (non-finite numbers become `null`: JSON
/// has no NaN or infinity).
pub(crate) fn push_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

/// Appends any JSON value, strings without an intermediate allocation.
pub(crate) fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => push_str(out, s),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Null => out.push_str("null"),
        other => out.push_str(&other.to_string()),
    }
}

/// Appends `"key":` with a leading comma unless it is the object's first member.
pub(crate) fn push_key(out: &mut String, key: &str) {
    if !out.ends_with('{') {
        out.push(',');
    }
    push_str(out, key);
    out.push(':');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_like_serde_json() {
        for s in [
            "plain",
            "quote \" back \\ slash",
            "line\nfeed\r\ttab",
            "ctl \u{1} \u{1f}",
            "é ✓ 🦀",
            "",
        ] {
            let mut out = String::new();
            push_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn numbers_and_objects_parse_back() {
        let mut out = String::from("{");
        push_key(&mut out, "a");
        push_f64(&mut out, 1.0);
        push_key(&mut out, "b");
        push_f64(&mut out, 0.25);
        push_key(&mut out, "c");
        push_f64(&mut out, f64::NAN);
        push_key(&mut out, "d");
        push_value(&mut out, &serde_json::json!({"x": [1, "y"]}));
        out.push('}');
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"], 0.25);
        assert!(v["c"].is_null());
        assert_eq!(v["d"]["x"][1], "y");
    }
}
