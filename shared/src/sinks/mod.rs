//! Alert destinations. Every destination (SNS, the console for replay, an
//! in-memory list for tests; later Slack and PagerDuty) implements
//! [`AlertSink`], so the pipeline neither knows nor cares where alerts go.

pub mod console;
pub mod memory;
pub mod sns;

use std::future::Future;
use std::pin::Pin;

use crate::render::Alert;

pub use console::ConsoleSink;
pub use memory::MemorySink;
pub use sns::SnsSink;

/// Why a delivery failed, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Throttling, 5xx, timeouts: retry later.
    #[error("{sink}: transient failure: {message}")]
    Transient { sink: &'static str, message: String },
    /// Bad request, missing permission, unknown topic: retrying will not help.
    #[error("{sink}: permanent failure: {message}")]
    Permanent { sink: &'static str, message: String },
}

impl SinkError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SinkError::Transient { .. })
    }
}

/// A boxed future, so sinks can be held as `Box<dyn AlertSink>`.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<Delivery, SinkError>> + Send + 'a>>;

/// What a sink reports back: its name and the destination's id for the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub sink: &'static str,
    pub message_id: Option<String>,
}

/// A destination for alerts.
pub trait AlertSink: Send + Sync {
    /// Short name for logs and metrics (`sns`, `console`).
    fn name(&self) -> &'static str;
    /// Delivers one alert. Must not panic on any finding content.
    fn send<'a>(&'a self, alert: &'a Alert<'a>) -> SinkFuture<'a>;
}
