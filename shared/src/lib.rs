//! Vigil's shared crate: everything the Lambda functions run, and what the
//! `vigil` CLI (the `vigil-cli` crate) replays through.
//!
//! Data flows one way, and the modules are listed here in that order (a
//! module uses only those above it; `scripts/check_architecture.py` checks
//! it, docs/architecture.md explains it): [`sources`] parse events, the
//! [`detect`] crate runs rules over CloudTrail, [`enrich`] adds context,
//! [`route`] picks the destination, [`render`] writes the alert and
//! [`sinks`] deliver it; [`dedup`] keeps state, and the [`pipeline`] runs
//! the stages for one event, observed by [`telemetry`]. [`logfiles`] (log
//! files from S3), [`notify`] (Slack and PagerDuty) and [`app`] (the cold
//! start every function shares) sit on top. Functions under `functions/`
//! only read [`config`], build clients once, and call [`app`].

mod accounts;
pub mod app;
pub mod aws;
pub mod config;
pub mod correlate;
pub mod dedup;
mod documents;
pub mod enrich;
mod env;
mod json;
pub mod logfiles;
pub mod notify;
pub mod ocsf;
pub mod pipeline;
pub mod render;
pub mod route;
pub mod sinks;
pub mod sources;
pub mod telemetry;
mod text;

/// The detection engine and bundled rules, its own crate (no AWS SDK).
pub use vigil_detect as detect;
/// The normalized finding, its own crate (no AWS SDK).
pub use vigil_model as model;

pub use config::Config;
pub use model::{Finding, Severity, Source, Tactic};
pub use pipeline::{EventReport, Pipeline, PipelineError};
