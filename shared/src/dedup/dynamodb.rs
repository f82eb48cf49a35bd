//! State in DynamoDB: one table, partition key `id` (string), TTL on
//! `expiration` (epoch seconds). Keys are prefixed by kind so idempotency,
//! fingerprint and storm records can share the table:
//!
//! | key | attributes |
//! |---|---|
//! | `idem#<event id>` | `status` (INPROGRESS/COMPLETE), `in_progress_expiration` (epoch ms), `data` (the result, JSON) |
//! | `fp#<fingerprint>` | `state` (JSON, `FingerprintState`), `version`; `thread_ts`, `thread_channel` and `thread_origin` belong to the notifier |
//! | `storm#<window start>#<source>#<SEVERITY>#<type>` | `position`, `critical`, `summarized`, `summaries`, `indexed`, counters `s:`/`t:`/`a:`/`o:`/`r:<name>`, `r_other` |
//! | `stormidx#<hour start>` | `storms`: string set of the storm keys started in that hour that may still owe a final summary (read by the sweep) |
//!
//! Fingerprint records are written with UpdateItem (`SET` of this module's
//! attributes only) and a version condition, so a `thread_ts` the notifier
//! adds is kept; the notifier's own UpdateItem
//! ([`crate::notify::DynamoThreads`]) sets only the thread's attributes (and
//! `expiration` if the record has none), so it never disturbs the state or
//! its version. Storm records only ever see atomic `ADD`s (and `SET
//! indexed`); index records `ADD` and `DELETE` set elements.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use super::store::{
    BeginOutcome, FingerprintStore, IdempotencyStore, StoreError, StoreFuture, StormCount,
    StormStore, Versioned,
};
use super::storm::{ResourceSlot, StormCounters, StormEntry};
use super::table::{count, describe, expired, get_item, n, num, s, string, Item};

const STATUS_IN_PROGRESS: &str = "INPROGRESS";
const STATUS_COMPLETE: &str = "COMPLETE";
/// A storm record's mark that its index record lists it.
const INDEXED: &str = "indexed";
/// An index record's string set of storm keys.
const STORMS: &str = "storms";

/// Fingerprint, storm and idempotency records on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// A conditional-check failure, or the store is unavailable.
fn classify<E>(key: &str, err: SdkError<E>, conditional: impl Fn(&E) -> bool) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let SdkError::ServiceError(se) = &err {
        if conditional(se.err()) {
            return StoreError::Conflict {
                key: key.to_string(),
            };
        }
    }
    StoreError::Unavailable(describe(&err))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Item>, StoreError> {
        get_item(&self.client, &self.table, key)
            .await
            .map_err(|e| StoreError::Unavailable(describe(&e)))
    }
}

impl FingerprintStore for DynamoStore {
    fn load<'a>(&'a self, key: &'a str, now: i64) -> StoreFuture<'a, Option<Versioned>> {
        Box::pin(async move {
            let Some(item) = self.get(key).await? else {
                return Ok(None);
            };
            if expired(&item, now) {
                return Ok(None);
            }
            let (Some(state), Some(version)) = (string(&item, "state"), num(&item, "version"))
            else {
                return Ok(None);
            };
            Ok(Some(Versioned {
                state,
                version: u64::try_from(version).unwrap_or(0),
            }))
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        state: &'a str,
        expected: Option<u64>,
        expires_at: i64,
        now: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut req = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("id", s(key))
                .update_expression("SET #state = :state, #version = :next, #exp = :exp")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#version", "version")
                .expression_attribute_names("#exp", "expiration")
                .expression_attribute_values(":state", s(state))
                .expression_attribute_values(":exp", n(expires_at));
            req = match expected {
                Some(v) => req
                    .condition_expression("#version = :expected")
                    .expression_attribute_values(":expected", n(v))
                    .expression_attribute_values(":next", n(v + 1)),
                None => req
                    .condition_expression("attribute_not_exists(#version) OR #exp < :now")
                    .expression_attribute_values(":now", n(now))
                    .expression_attribute_values(":next", n(1)),
            };
            req.send()
                .await
                .map(|_| ())
                .map_err(|e| classify(key, e, |e| e.is_conditional_check_failed_exception()))
        })
    }
}

impl StormStore for DynamoStore {
    fn count<'a>(
        &'a self,
        key: &'a str,
        critical: bool,
        expires_at: i64,
    ) -> StoreFuture<'a, StormCount> {
        Box::pin(async move {
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("id", s(key))
                .update_expression("SET #exp = if_not_exists(#exp, :exp) ADD #counter :one")
                .expression_attribute_names("#exp", "expiration")
                .expression_attribute_names(
                    "#counter",
                    if critical { "critical" } else { "position" },
                )
                .expression_attribute_values(":exp", n(expires_at))
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::AllNew)
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe(&e)))?;
            let attributes = out.attributes.unwrap_or_default();
            Ok(StormCount {
                position: count(&attributes, "position"),
                indexed: attributes.contains_key(INDEXED),
            })
        })
    }

    fn index<'a>(&'a self, index: &'a str, key: &'a str, expires_at: i64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("id", s(index))
                .update_expression("SET #exp = if_not_exists(#exp, :exp) ADD #storms :key")
                .expression_attribute_names("#exp", "expiration")
                .expression_attribute_names("#storms", STORMS)
                .expression_attribute_values(":exp", n(expires_at))
                .expression_attribute_values(":key", AttributeValue::Ss(vec![key.to_string()]))
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe(&e)))?;
            // Only once the index lists it: a storm marked indexed is found
            // by the sweep.
            self.client
                .update_item()
                .table_name(&self.table)
                .key("id", s(key))
                .update_expression("SET #indexed = :yes")
                .expression_attribute_names("#indexed", INDEXED)
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| StoreError::Unavailable(describe(&e)))
        })
    }

    fn indexed<'a>(&'a self, index: &'a str, now: i64) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let Some(item) = self.get(index).await? else {
                return Ok(Vec::new());
            };
            if expired(&item, now) {
                return Ok(Vec::new());
            }
            Ok(match item.get(STORMS) {
                Some(AttributeValue::Ss(keys)) => keys.clone(),
                _ => Vec::new(),
            })
        })
    }

    fn unindex<'a>(&'a self, index: &'a str, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("id", s(index))
                .update_expression("DELETE #storms :key")
                .condition_expression("attribute_exists(id)")
                .expression_attribute_names("#storms", STORMS)
                .expression_attribute_values(":key", AttributeValue::Ss(vec![key.to_string()]))
                .send()
                .await
                .map(|_| ())
                .or_else(|e| {
                    match classify(index, e, |e| e.is_conditional_check_failed_exception()) {
                        StoreError::Conflict { .. } => Ok(()),
                        other => Err(other),
                    }
                })
        })
    }

    fn add<'a>(
        &'a self,
        key: &'a str,
        entry: &'a StormEntry,
        slot: ResourceSlot<'a>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let resource = match slot {
                ResourceSlot::Track(r) | ResourceSlot::TrackIfKnown(r) => format!("r:{r}"),
                ResourceSlot::Other => "r_other".to_string(),
            };
            let mut req = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("id", s(key))
                .update_expression("ADD #s :one, #t :one, #a :one, #o :one, #r :one")
                .expression_attribute_names("#s", format!("s:{}", entry.severity.as_str()))
                .expression_attribute_names("#t", format!("t:{}", entry.finding_type))
                .expression_attribute_names("#a", format!("a:{}", entry.account))
                .expression_attribute_names("#o", format!("o:{}", entry.source.as_str()))
                .expression_attribute_names("#r", resource)
                .expression_attribute_values(":one", n(1));
            if let ResourceSlot::TrackIfKnown(_) = slot {
                req = req.condition_expression("attribute_exists(#r)");
            }
            req.send()
                .await
                .map(|_| ())
                .map_err(|e| classify(key, e, |e| e.is_conditional_check_failed_exception()))
        })
    }

    fn read<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<StormCounters>> {
        Box::pin(async move {
            let Some(item) = self.get(key).await? else {
                return Ok(None);
            };
            let mut c = StormCounters {
                position: count(&item, "position"),
                critical: count(&item, "critical"),
                summarized: count(&item, "summarized"),
                summaries: count(&item, "summaries"),
                other_resources: count(&item, "r_other"),
                ..StormCounters::default()
            };
            for (name, value) in &item {
                let AttributeValue::N(v) = value else {
                    continue;
                };
                let Some((prefix, rest)) = name.split_once(':') else {
                    continue;
                };
                let map: &mut BTreeMap<String, u64> = match prefix {
                    "s" => &mut c.by_severity,
                    "t" => &mut c.by_type,
                    "a" => &mut c.by_account,
                    "o" => &mut c.by_source,
                    "r" => &mut c.by_resource,
                    _ => continue,
                };
                map.insert(rest.to_string(), v.parse().unwrap_or(0));
            }
            Ok(Some(c))
        })
    }

    fn claim<'a>(&'a self, key: &'a str, replaced: u64) -> StoreFuture<'a, Option<u64>> {
        Box::pin(async move {
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("id", s(key))
                .update_expression("SET #sum = :n ADD #count :one")
                .condition_expression(
                    "attribute_exists(id) AND (attribute_not_exists(#sum) OR #sum < :n)",
                )
                .expression_attribute_names("#sum", "summarized")
                .expression_attribute_names("#count", "summaries")
                .expression_attribute_values(":n", n(replaced))
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::UpdatedOld)
                .send()
                .await;
            match out {
                Ok(out) => Ok(Some(
                    out.attributes
                        .as_ref()
                        .map(|a| count(a, "summarized"))
                        .unwrap_or(0),
                )),
                Err(e) => match classify(key, e, |e| e.is_conditional_check_failed_exception()) {
                    StoreError::Conflict { .. } => Ok(None),
                    other => Err(other),
                },
            }
        })
    }

    fn unclaim<'a>(&'a self, key: &'a str, claimed: u64, previous: u64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("id", s(key))
                .update_expression("SET #sum = :previous ADD #count :minus")
                .condition_expression("#sum = :claimed")
                .expression_attribute_names("#sum", "summarized")
                .expression_attribute_names("#count", "summaries")
                .expression_attribute_values(":previous", n(previous))
                .expression_attribute_values(":claimed", n(claimed))
                .expression_attribute_values(":minus", n(-1))
                .send()
                .await;
            match out {
                Ok(_) => Ok(()),
                Err(e) => match classify(key, e, |e| e.is_conditional_check_failed_exception()) {
                    // Someone summarized further meanwhile: nothing to give back.
                    StoreError::Conflict { .. } => Ok(()),
                    other => Err(other),
                },
            }
        })
    }
}

impl IdempotencyStore for DynamoStore {
    fn begin<'a>(
        &'a self,
        key: &'a str,
        now_ms: i64,
        expires_at: i64,
        in_progress_until_ms: i64,
    ) -> StoreFuture<'a, BeginOutcome> {
        Box::pin(async move {
            let now = now_ms.div_euclid(1000);
            let out = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("id", s(key))
                .item("status", s(STATUS_IN_PROGRESS))
                .item("expiration", n(expires_at))
                .item("in_progress_expiration", n(in_progress_until_ms))
                .condition_expression(
                    "attribute_not_exists(id) OR #exp < :now OR (#status = :inprogress AND #ipe < :now_ms)",
                )
                .expression_attribute_names("#exp", "expiration")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#ipe", "in_progress_expiration")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":now_ms", n(now_ms))
                .expression_attribute_values(":inprogress", s(STATUS_IN_PROGRESS))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let err = match out {
                Ok(_) => return Ok(BeginOutcome::Started),
                Err(e) => e,
            };
            let old = match &err {
                SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception() => {
                    match se.err() {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                            c.item().cloned()
                        }
                        _ => None,
                    }
                }
                _ => return Err(StoreError::Unavailable(describe(&err))),
            };
            // Not every DynamoDB implementation returns the old item: read it.
            let old = match old {
                Some(item) => Some(item),
                None => self.get(key).await?,
            };
            let Some(item) = old else {
                // Deleted in between (a failed run released it): let the caller retry.
                return Ok(BeginOutcome::InProgress);
            };
            // The condition failed; decide from the record, checking expiry here
            // because TTL deletion lags.
            let status = string(&item, "status").unwrap_or_default();
            let live = num(&item, "expiration").is_some_and(|e| e >= now);
            Ok(if status == STATUS_COMPLETE && live {
                BeginOutcome::Complete(string(&item, "data").unwrap_or_else(|| "null".into()))
            } else {
                BeginOutcome::InProgress
            })
        })
    }

    fn complete<'a>(
        &'a self,
        key: &'a str,
        result: &'a str,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("id", s(key))
                .item("status", s(STATUS_COMPLETE))
                .item("expiration", n(expires_at))
                .item("data", s(result))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| StoreError::Unavailable(describe(&e)))
        })
    }

    fn forget<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("id", s(key))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| StoreError::Unavailable(describe(&e)))
        })
    }
}
