//! Reading event files for replay: a JSON object, an array of them, JSON lines,
//! or a CloudTrail log file (`{"Records":[...]}`), plain or gzip.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use serde_json::Value;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not JSON, an array, JSON lines or a CloudTrail log file: {message}")]
    Format { path: PathBuf, message: String },
}

/// Every file under `paths` (folders recursively, in name order), skipping
/// hidden files and the provenance/README files that sit beside samples.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        collect(p, &mut out)?;
    }
    Ok(out)
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let meta = fs::metadata(p).map_err(|source| InputError::Io {
        path: p.to_path_buf(),
        source,
    })?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(p)
            .map_err(|source| InputError::Io {
                path: p.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                !name.starts_with('.') && !name.ends_with(".md") && !name.ends_with(".txt")
            })
            .collect();
        entries.sort();
        for e in entries {
            collect(&e, out)?;
        }
    } else {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// Reads `path` (gzip or plain) and splits it into events.
pub fn read_events(path: &Path) -> Result<Vec<Value>, InputError> {
    let raw = fs::read(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|source| InputError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        out
    } else {
        raw
    };
    parse_events(&bytes).map_err(|message| InputError::Format {
        path: path.to_path_buf(),
        message,
    })
}

/// Splits a buffer into events (see the module docs for the forms).
pub fn parse_events(bytes: &[u8]) -> Result<Vec<Value>, String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(Value::Object(mut obj)) => match obj.remove("Records") {
            Some(Value::Array(records)) => Ok(records),
            Some(other) => {
                obj.insert("Records".into(), other);
                Ok(vec![Value::Object(obj)])
            }
            None => Ok(vec![Value::Object(obj)]),
        },
        Ok(other) => Err(format!("top-level {} is not an event", type_name(&other))),
        Err(whole) => {
            // JSON lines: one event a line; blank lines allowed.
            let mut out = Vec::new();
            for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<Value>(line) {
                    Ok(v) => out.push(v),
                    Err(_) if out.is_empty() && n == 0 => return Err(whole.to_string()),
                    Err(e) => return Err(format!("line {}: {e}", n + 1)),
                }
            }
            Ok(out)
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form() {
        assert_eq!(parse_events(br#"{"a":1}"#).unwrap().len(), 1);
        assert_eq!(parse_events(br#"[{"a":1},{"a":2}]"#).unwrap().len(), 2);
        assert_eq!(parse_events(b"{\"a\":1}\n\n{\"a\":2}\n").unwrap().len(), 2);
        assert_eq!(
            parse_events(br#"{"Records":[{"eventName":"X"},{"eventName":"Y"}]}"#)
                .unwrap()
                .len(),
            2
        );
        assert!(parse_events(b"42").is_err());
        assert!(parse_events(b"not json").is_err());
        assert!(parse_events(b"{\"a\":1}\n{broken").is_err());
    }

    #[test]
    fn gzip_files() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("vigil-input-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.json.gz");
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(br#"{"Records":[{"eventName":"X"}]}"#).unwrap();
        fs::write(&path, gz.finish().unwrap()).unwrap();
        assert_eq!(read_events(&path).unwrap().len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
