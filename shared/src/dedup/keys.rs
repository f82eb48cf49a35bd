//! What fingerprint records and the findings in them are called, and how
//! long the records live.

use crate::model::Finding;

/// Fingerprint records outlive their window by this much, so that a source
/// re-sending the same finding id (GuardDuty: every 6 h by default) is still
/// recognised as an update, and the notifier's Slack thread is kept.
pub(crate) const STATE_RETENTION_SECONDS: i64 = 7 * 24 * 3600;

/// The key of a fingerprint's record (`fp#<fingerprint>`): its dedup state,
/// and the notifier's Slack thread beside it ([`crate::notify::ThreadStore`]).
pub(crate) fn fingerprint_key(fingerprint: &str) -> String {
    format!("fp#{fingerprint}")
}

/// The source's finding id, normalized so a GuardDuty finding id and the
/// Security Hub copy of it (whose id is the GuardDuty ARN) compare equal.
pub(super) fn finding_key(id: &str) -> &str {
    if id.starts_with("arn:") {
        id.rsplit('/').next().unwrap_or(id)
    } else {
        id
    }
}

/// Who claims an alert: the event (and finding) that carried it, so a retry
/// of the same event recognises its own claim.
pub(super) fn owner(f: &Finding) -> String {
    match &f.event_id {
        Some(e) => format!("{e}/{}", f.id),
        None => f.id.clone(),
    }
}
