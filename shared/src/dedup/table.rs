//! The state table's DynamoDB plumbing, shared by the dedup stores
//! ([`super::DynamoStore`]) and the notifier's Slack threads
//! ([`crate::notify::DynamoThreads`]), which keep their records on the same
//! table: the client, and reading and writing attribute values.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

/// A record as DynamoDB returns it.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A DynamoDB client for state: short timeouts, because a slow state store
/// must not eat the invocation's time (the pipeline fails open instead).
pub(crate) fn client(sdk: &aws_config::SdkConfig) -> Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// Reads the record `key` of `table` (strongly consistent).
pub(crate) async fn get_item(
    client: &Client,
    table: &str,
    key: &str,
) -> Result<Option<Item>, SdkError<GetItemError>> {
    let out = client
        .get_item()
        .table_name(table)
        .key("id", s(key))
        .consistent_read(true)
        .send()
        .await?;
    Ok(out.item)
}

/// An SDK error as one line, with its causes.
pub(crate) fn describe<E: std::error::Error>(err: &E) -> String {
    DisplayErrorContext(err).to_string()
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn num(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub(crate) fn count(item: &Item, name: &str) -> u64 {
    num(item, name)
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0)
}

pub(crate) fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// Whether the record is past its `expiration`: TTL deletion lags by up to
/// 48 hours, so every read checks.
pub(crate) fn expired(item: &Item, now: i64) -> bool {
    num(item, "expiration").is_some_and(|e| e < now)
}
