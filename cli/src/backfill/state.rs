//! Where a backfill got to (`--state FILE`): the last key sent in each day
//! folder. A day folder is listed in key order and sent in that order, so
//! a rerun lists each folder after its last key (ListObjectsV2
//! `StartAfter`) and sends only what was not sent. The file is rewritten
//! (to a temporary file, then renamed over it) after every batch SQS took:
//! a run killed at any point resends at most the batch in flight.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The state file's format version.
const VERSION: u32 = 1;

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} is not a backfill state file: {1}")]
    Format(PathBuf, String),
    #[error("{path} records a backfill of bucket {recorded}, not {bucket}")]
    OtherBucket {
        path: PathBuf,
        recorded: String,
        bucket: String,
    },
    #[error("writing {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct File {
    version: u32,
    bucket: String,
    /// Day folder -> the last key sent from it.
    sent: BTreeMap<String, String>,
}

/// The progress of one backfill, kept in a file when one is given.
#[derive(Debug)]
pub(crate) struct State {
    path: Option<PathBuf>,
    file: File,
}

impl State {
    /// The state in `path` (a new one when the file does not exist yet), or
    /// an unsaved one without a path.
    pub(crate) fn open(path: Option<&Path>, bucket: &str) -> Result<State, StateError> {
        let fresh = File {
            version: VERSION,
            bucket: bucket.to_string(),
            sent: BTreeMap::new(),
        };
        let Some(path) = path else {
            return Ok(State {
                path: None,
                file: fresh,
            });
        };
        let file = match std::fs::read_to_string(path) {
            Ok(text) => {
                let file: File = serde_json::from_str(&text)
                    .map_err(|e| StateError::Format(path.to_path_buf(), e.to_string()))?;
                if file.version != VERSION {
                    let why = format!("version {}, expected {VERSION}", file.version);
                    return Err(StateError::Format(path.to_path_buf(), why));
                }
                if file.bucket != bucket {
                    return Err(StateError::OtherBucket {
                        path: path.to_path_buf(),
                        recorded: file.bucket,
                        bucket: bucket.to_string(),
                    });
                }
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fresh,
            Err(e) => return Err(StateError::Read(path.to_path_buf(), e)),
        };
        Ok(State {
            path: Some(path.to_path_buf()),
            file,
        })
    }

    /// The last key sent from `day_prefix`, if any.
    pub(crate) fn last_sent(&self, day_prefix: &str) -> Option<&str> {
        self.file.sent.get(day_prefix).map(String::as_str)
    }

    /// Records `key` as the last sent from `day_prefix`, and saves.
    pub(crate) fn sent(&mut self, day_prefix: &str, key: &str) -> Result<(), StateError> {
        self.file
            .sent
            .insert(day_prefix.to_string(), key.to_string());
        self.save()
    }

    fn save(&self) -> Result<(), StateError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let err = |e| StateError::Write(path.clone(), e);
        let text = serde_json::to_string_pretty(&self.file).expect("state serializes");
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigil-state-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("state.json")
    }

    #[test]
    fn what_was_sent_survives_a_restart() {
        let path = scratch("restart");
        let mut s = State::open(Some(&path), "trail").unwrap();
        assert_eq!(s.last_sent("a/2024/05/01/"), None);
        s.sent("a/2024/05/01/", "a/2024/05/01/k1").unwrap();
        s.sent("a/2024/05/01/", "a/2024/05/01/k2").unwrap();
        let again = State::open(Some(&path), "trail").unwrap();
        assert_eq!(again.last_sent("a/2024/05/01/"), Some("a/2024/05/01/k2"));
        assert!(matches!(
            State::open(Some(&path), "other"),
            Err(StateError::OtherBucket { .. })
        ));
        std::fs::write(&path, "{oops").unwrap();
        assert!(matches!(
            State::open(Some(&path), "trail"),
            Err(StateError::Format(..))
        ));
    }

    #[test]
    fn without_a_file_nothing_is_written() {
        let mut s = State::open(None, "trail").unwrap();
        s.sent("p/", "p/k").unwrap();
        assert_eq!(s.last_sent("p/"), Some("p/k"));
    }
}
