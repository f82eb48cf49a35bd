//! Readable alerts on a terminal: the default sink of `vigil replay`.

use std::io::Write;
use std::sync::Mutex;

use super::{AlertSink, Delivery, SinkError, SinkFuture};
use crate::render::{self, Alert};

/// Writes each alert as its subject and email body.
pub struct ConsoleSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl ConsoleSink {
    pub fn stdout() -> ConsoleSink {
        ConsoleSink::new(Box::new(std::io::stdout()))
    }

    pub fn new(out: Box<dyn Write + Send>) -> ConsoleSink {
        ConsoleSink {
            out: Mutex::new(out),
        }
    }

    fn write(&self, alert: &Alert<'_>) -> Result<Delivery, SinkError> {
        let route = match alert.route {
            None => String::new(),
            Some(r) => format!(
                "Route:       {} (Slack {}, PagerDuty {})\n",
                r.name,
                r.slack_channel.as_deref().unwrap_or("default"),
                r.pagerduty_service.as_deref().unwrap_or("default")
            ),
        };
        let text = format!(
            "━━ {} ━━\n{route}{}\n",
            render::subject(alert.finding),
            render::email_body(alert)
        );
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| SinkError::Permanent {
                sink: "console",
                message: e.to_string(),
            })?;
        Ok(Delivery {
            sink: "console",
            message_id: None,
        })
    }
}

impl AlertSink for ConsoleSink {
    fn name(&self) -> &'static str {
        "console"
    }

    fn send<'a>(&'a self, alert: &'a Alert<'a>) -> SinkFuture<'a> {
        let result = self.write(alert);
        Box::pin(async move { result })
    }
}
