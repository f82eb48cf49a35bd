//! Routing: which people an alert goes to.
//!
//! The route is decided after dedup, once per alert, from a routing table of
//! ordered rules (first match wins, like a firewall, so the table reads top to
//! bottom). A [`Route`] names the rule and the destinations it picks; it
//! travels with the alert (SNS attribute `route`, OCSF
//! `unmapped.vigil_route`), so SNS subscribers can filter on it and the
//! notifier posts to the rule's Slack channel and pages its PagerDuty service.

use serde::{Deserialize, Serialize};

/// Name of the route an alert takes when no rule matches.
pub const DEFAULT_ROUTE: &str = "default";

/// Where one alert goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The matching rule's name ([`DEFAULT_ROUTE`] when none matched): the SNS
    /// message attribute `route` that subscribers filter on.
    pub name: String,
    /// Slack channel (`#payments-security` or a channel id). None: the
    /// notifier's default channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_channel: Option<String>,
    /// PagerDuty service, by the name its routing key has in the PagerDuty
    /// secret. None: the default routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty_service: Option<String>,
}

impl Default for Route {
    fn default() -> Self {
        Route {
            name: DEFAULT_ROUTE.to_string(),
            slack_channel: None,
            pagerduty_service: None,
        }
    }
}
