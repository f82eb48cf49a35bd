//! Which log a rule reads (its Sigma `logsource`) and an event comes from.
//!
//! CloudTrail rules (`product: aws`, `service: cloudtrail`, or no service)
//! run on CloudTrail records and may alert. GuardDuty rules (`service:
//! guardduty`) match GuardDuty findings (the finding itself, an EventBridge
//! event's `detail`) and only feed correlations: GuardDuty's findings alert
//! on their own already.

use serde_json::Value;

/// The log a rule reads or an event belongs to.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// CloudTrail records (API calls, console sign-ins).
    #[default]
    CloudTrail,
    /// GuardDuty findings.
    GuardDuty,
}

impl LogSource {
    /// From a rule's `logsource` `service` (lower case); `None` names
    /// CloudTrail, the only AWS product log without a service.
    pub fn of_service(service: Option<&str>) -> Option<LogSource> {
        match service {
            None | Some("cloudtrail") => Some(LogSource::CloudTrail),
            Some("guardduty") => Some(LogSource::GuardDuty),
            Some(_) => None,
        }
    }

    /// What `event` (a CloudTrail record or a GuardDuty finding, bare) looks
    /// like, for tools and tests that get both mixed (`vigil rules test`
    /// sequences): a GuardDuty finding has a `type` and says it is one
    /// (`service.serviceName` or its ARN); anything else is read as
    /// CloudTrail. The functions know their source and never guess.
    pub fn of_event(event: &Value) -> LogSource {
        let service = event
            .get("service")
            .and_then(|s| s.get("serviceName"))
            .and_then(Value::as_str);
        let arn = event
            .get("arn")
            .and_then(Value::as_str)
            .is_some_and(|a| a.contains(":guardduty:"));
        let typed =
            event.get("type").is_some_and(Value::is_string) && event.get("eventName").is_none();
        if typed && (service == Some("guardduty") || arn) {
            LogSource::GuardDuty
        } else {
            LogSource::CloudTrail
        }
    }

    pub fn is_cloudtrail(&self) -> bool {
        *self == LogSource::CloudTrail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn findings_are_told_from_records() {
        let finding = json!({"type": "UnauthorizedAccess:IAMUser/TorIPCaller",
            "service": {"serviceName": "guardduty"}});
        assert_eq!(LogSource::of_event(&finding), LogSource::GuardDuty);
        let record = json!({"eventName": "CreateUser", "type": "x",
            "service": {"serviceName": "guardduty"}});
        assert_eq!(LogSource::of_event(&record), LogSource::CloudTrail);
        assert_eq!(LogSource::of_event(&json!(null)), LogSource::CloudTrail);
        assert_eq!(LogSource::of_service(Some("okta")), None);
    }
}
