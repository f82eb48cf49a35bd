//! Keeps alerts in memory: for unit tests of the pipeline and for
//! `vigil replay --quiet`, which only wants the summary.

use std::sync::{Arc, Mutex};

use super::{AlertSink, Delivery, SinkError, SinkFuture};
use crate::model::Finding;
use crate::render::{self, Alert};

/// One delivered alert as the sink saw it.
#[derive(Debug, Clone)]
pub struct SentAlert {
    pub subject: String,
    pub finding: Finding,
    pub suppressed_repeats: u64,
    pub route: Option<crate::route::Route>,
}

/// Shared list of delivered alerts; clones see the same list.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    sent: Arc<Mutex<Vec<SentAlert>>>,
    /// Fail every delivery, to test what the pipeline does then.
    fail: bool,
}

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    pub fn failing() -> MemorySink {
        MemorySink {
            fail: true,
            ..MemorySink::default()
        }
    }

    pub fn sent(&self) -> Vec<SentAlert> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl AlertSink for MemorySink {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn send<'a>(&'a self, alert: &'a Alert<'a>) -> SinkFuture<'a> {
        let result = if self.fail {
            Err(SinkError::Transient {
                sink: "memory",
                message: "configured to fail".into(),
            })
        } else {
            self.sent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(SentAlert {
                    subject: render::subject(alert.finding),
                    finding: alert.finding.clone(),
                    suppressed_repeats: alert.suppressed_repeats,
                    route: alert.route.cloned(),
                });
            Ok(Delivery {
                sink: "memory",
                message_id: None,
            })
        };
        Box::pin(async move { result })
    }
}
