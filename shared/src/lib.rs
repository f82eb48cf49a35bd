//! Vigil's shared crate: everything the Lambda functions and the `vigil` CLI do.
//!
//! Data flows one way: [`sources`] parse events, [`detect`] runs rules over
//! CloudTrail, [`enrich`] adds context (with [`accounts`] from AWS
//! Organizations), the [`pipeline`] gates, dedups and [`route`]s, and
//! [`sinks`] deliver alerts rendered by [`render`]. Functions under
//! `functions/` only read [`config`], build clients once, and call the pipeline.

mod accounts;
pub mod app;
pub mod aws;
pub mod config;
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
