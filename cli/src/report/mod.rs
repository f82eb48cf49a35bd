//! `vigil replay --report FILE.html`: one self-contained page a responder
//! opens instead of reading thousands of alerts. The data is gathered
//! during the replay ([`data`]), the page built at its end ([`html`]).
//! Event text is attacker-written: it reaches the page only through
//! [`escape`].

pub(crate) mod data;
pub(crate) mod escape;
pub(crate) mod html;
pub(crate) mod svg;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) use data::ReportData;

use crate::replay::summary::Summary;

/// Failed events listed on the page (all are counted).
const MAX_ERRORS_SHOWN: usize = 50;

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReportError {
    #[error("creating the report {}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing the report {}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("encoding the report's data")]
    Encode(#[from] serde_json::Error),
}

/// What the replay knows beside the findings: events, files, failures and
/// what was replayed.
#[derive(Debug, Clone)]
pub(crate) struct ReportFacts {
    pub(crate) events: usize,
    pub(crate) files: usize,
    pub(crate) errors_total: usize,
    pub(crate) errors: Vec<String>,
    pub(crate) inputs: Vec<String>,
}

impl ReportFacts {
    pub(crate) fn new(summary: &Summary, paths: &[PathBuf]) -> ReportFacts {
        ReportFacts {
            events: summary.events,
            files: summary.files,
            errors_total: summary.errors.len(),
            // Parser messages can quote event text: one bounded line each.
            errors: summary
                .errors
                .iter()
                .take(MAX_ERRORS_SHOWN)
                .map(|e| escape::one_line(e, 500))
                .collect(),
            inputs: paths.iter().map(|p| p.display().to_string()).collect(),
        }
    }
}

/// The report's file, created before the replay starts so that a bad path
/// fails at once.
#[derive(Debug)]
pub(crate) struct ReportFile {
    path: PathBuf,
    file: File,
}

impl ReportFile {
    pub(crate) fn create(path: &Path) -> Result<ReportFile, ReportError> {
        let file = File::create(path).map_err(|source| ReportError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(ReportFile {
            path: path.to_path_buf(),
            file,
        })
    }

    pub(crate) fn write(
        mut self,
        data: &ReportData,
        facts: &ReportFacts,
    ) -> Result<(), ReportError> {
        let page = html::page(data, facts)?;
        self.file
            .write_all(page.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|source| ReportError::Write {
                path: self.path.clone(),
                source,
            })
    }
}
