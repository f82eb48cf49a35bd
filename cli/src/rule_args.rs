//! Which detection rules a command runs: the bundled ones, a folder of the
//! user's own, or both (`--rules-dir`, `--no-bundled`), for `vigil rules`
//! and `vigil replay` alike.

use std::path::PathBuf;

use vigil::detect::{Placeholders, RuleError, RuleSet, RuleSource};

#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct RulesArgs {
    /// A folder of Sigma rules beside the bundled ones (default: VIGIL_RULES_DIR).
    /// A rule with a bundled rule's id replaces it.
    #[arg(long, value_name = "DIR")]
    pub(crate) rules_dir: Option<PathBuf>,
    /// Leave the bundled rules out.
    #[arg(long)]
    pub(crate) no_bundled: bool,
    /// Values of the rules' |expand placeholders, a JSON or YAML file
    /// (default: VIGIL_SIGMA_PLACEHOLDERS or VIGIL_SIGMA_PLACEHOLDERS_FILE).
    #[arg(long, value_name = "FILE")]
    pub(crate) placeholders: Option<PathBuf>,
}

/// Why the rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RulesLoadError {
    #[error("reading rules from {}", dir.display())]
    Dir { dir: PathBuf, source: RuleError },
    #[error("loading detection rules")]
    Compile(#[from] RuleError),
    #[error("placeholders: {0}")]
    Placeholders(String),
}

/// The rule files of both layers: the bundled ones (unless left out), then
/// the folder's, which override them by id.
#[derive(Debug, Clone)]
pub(crate) struct RuleFiles {
    pub(crate) base: Vec<RuleSource>,
    pub(crate) extra: Vec<RuleSource>,
}

impl RulesArgs {
    /// The folder: `--rules-dir`, else `VIGIL_RULES_DIR`.
    fn dir(&self) -> Option<PathBuf> {
        self.rules_dir
            .clone()
            .or_else(|| std::env::var_os("VIGIL_RULES_DIR").map(PathBuf::from))
    }

    /// The placeholder values: from `--placeholders` when given, else as a
    /// function reads them from its environment.
    pub(crate) fn placeholders(&self) -> Result<Placeholders, RulesLoadError> {
        let invalid = |e: String| RulesLoadError::Placeholders(e);
        match &self.placeholders {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| invalid(format!("reading {}: {e}", path.display())))?;
                Placeholders::parse(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))
            }
            None => {
                vigil::config::sigma_placeholders_from_env().map_err(|e| invalid(e.to_string()))
            }
        }
    }

    /// The rule files as `vigil rules` reads them: YAML with their tests.
    pub(crate) fn files(&self) -> Result<RuleFiles, RulesLoadError> {
        self.layers(RuleSource::bundled)
    }

    /// The compiled rules as the functions run them (the bundled rules in
    /// their build-time JSON form), skipped rules logged as the functions do.
    pub(crate) fn runtime_set(&self) -> Result<RuleSet, RulesLoadError> {
        let files = self.layers(RuleSource::bundled_runtime)?;
        let set = RuleSet::layered_with(&files.base, &files.extra, &self.placeholders()?)?;
        for s in set.skipped() {
            tracing::warn!(rule = %s.origin, reason = %s.kind, "detection rule skipped");
        }
        Ok(set)
    }

    fn layers(&self, bundled: fn() -> Vec<RuleSource>) -> Result<RuleFiles, RulesLoadError> {
        let base = if self.no_bundled {
            Vec::new()
        } else {
            bundled()
        };
        let extra = match self.dir() {
            Some(dir) => {
                RuleSource::dir(&dir).map_err(|source| RulesLoadError::Dir { dir, source })?
            }
            None => Vec::new(),
        };
        Ok(RuleFiles { base, extra })
    }
}
