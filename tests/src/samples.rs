//! Where the sample events are: the real public samples in `../shared/events/`
//! beside the project, and the project's own `examples/events/` (in every
//! clone).
//!
//! A fresh clone without `../shared` runs the sample tests on the project's
//! own samples and says so. Under CI (`CI` set, and not `false` or `0`) a
//! missing folder is a failure instead: a sample-driven test must never pass
//! by checking nothing. `VIGIL_SHARED_EVENTS` names another folder for the
//! public samples (and, set to a missing path with `CI=true`, proves the
//! rule: `scripts/test.sh` does exactly that).
//!
//! Standard library only: `detect/tests` and `shared/tests` include this file
//! by path (`#[path = ...] mod samples;`), because the detection crate must
//! not depend on the test bed and its AWS SDK, and `vigil`'s own tests cannot
//! depend on a crate that depends on `vigil`.

#![allow(dead_code)] // each including test uses only some of it

use std::path::{Path, PathBuf};

/// Overrides where the public samples are (default `../shared/events`).
pub const SHARED_EVENTS_VAR: &str = "VIGIL_SHARED_EVENTS";

/// The workspace root: the nearest folder above the including crate that
/// holds `Cargo.lock`.
pub fn project_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|p| p.join("Cargo.lock").is_file())
        .unwrap_or(manifest)
        .to_path_buf()
}

/// Whether the tests run under CI, where the public samples are required.
pub fn under_ci() -> bool {
    is_ci_value(std::env::var("CI").ok().as_deref())
}

fn is_ci_value(v: Option<&str>) -> bool {
    v.map(str::trim)
        .is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The public samples folder as configured (it may not exist).
pub fn shared_events_root() -> PathBuf {
    match std::env::var(SHARED_EVENTS_VAR) {
        Ok(dir) if !dir.trim().is_empty() => PathBuf::from(dir),
        _ => project_root().join("..").join("shared").join("events"),
    }
}

/// Why a required samples folder is not there.
#[derive(Debug, PartialEq, Eq)]
pub struct SamplesMissing(pub PathBuf);

impl std::fmt::Display for SamplesMissing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CI is set but the public samples folder {} is missing: a sample test would check nothing (set {SHARED_EVENTS_VAR}, or unset CI on a fresh clone)",
            self.0.display()
        )
    }
}

/// `root/sub` when it is a folder; `None` when it is not and samples are
/// optional; an error when it is not and `required` (CI).
pub fn locate(root: &Path, sub: &str, required: bool) -> Result<Option<PathBuf>, SamplesMissing> {
    let dir = root.join(sub);
    match (dir.is_dir(), required) {
        (true, _) => Ok(Some(dir)),
        (false, true) => Err(SamplesMissing(dir)),
        (false, false) => Ok(None),
    }
}

/// `../shared/events/<sub>` when it exists. Missing: `None` with a note on a
/// fresh clone, a panic (the test fails) under CI.
pub fn shared_events(sub: &str) -> Option<PathBuf> {
    let root = shared_events_root();
    match locate(&root, sub, under_ci()) {
        Ok(Some(dir)) => Some(dir),
        Ok(None) => {
            eprintln!(
                "note: {} not found (a fresh clone has no ../shared): the project's own samples only",
                root.join(sub).display()
            );
            None
        }
        Err(missing) => panic!("{missing}"),
    }
}

/// The project's own `examples/events/<sub>`.
pub fn own_events(sub: &str) -> PathBuf {
    project_root().join("examples").join("events").join(sub)
}

/// The public samples in `../shared/events/<sub>` when present, else the
/// project's own `examples/events/<own>` (under CI the public ones must be
/// there).
pub fn sample_dir(sub: &str, own: &str) -> PathBuf {
    shared_events(sub).unwrap_or_else(|| own_events(own))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_means_set_and_not_false() {
        assert!(is_ci_value(Some("true")));
        assert!(is_ci_value(Some("1")));
        assert!(!is_ci_value(None));
        assert!(!is_ci_value(Some("")));
        assert!(!is_ci_value(Some("false")));
        assert!(!is_ci_value(Some("0")));
    }

    #[test]
    fn a_missing_folder_fails_only_when_required() {
        let root = project_root().join("examples");
        assert_eq!(locate(&root, "events", true), Ok(Some(root.join("events"))));
        assert_eq!(locate(&root, "no-such-folder", false), Ok(None));
        let err = locate(&root, "no-such-folder", true).unwrap_err();
        assert_eq!(err.0, root.join("no-such-folder"));
        assert!(err.to_string().contains("CI is set"), "{err}");
    }

    #[test]
    fn the_root_is_the_workspace() {
        assert!(project_root().join("examples/events").is_dir());
    }
}
