//! Correlation state on the state table (`VIGIL_STATE_TABLE`), shared by
//! every Lambda instance.
//!
//! One item per (correlation, window, group): key
//! `corr#<phase>#<window start>#<hash of correlation id and group>` (the
//! group's values are attacker-controlled and may be long: the key stays
//! bounded), with
//!
//! | attribute | |
//! |---|---|
//! | `c` | matching events (number, `ADD`) |
//! | `v` | distinct values (`value_count`; string set, `ADD`) |
//! | `s0`, `s1`, ... | times each referenced rule was seen (temporal; number sets, `ADD`) |
//! | `ev` | contributing events, compact JSON (string set, `ADD`, at most [`KEPT_EVENTS`] per batch) |
//! | `rule`, `group` | the correlation id and the group, for people reading the table |
//! | `expiration` | TTL: window end + [`EXPIRY_MARGIN_SECS`] |
//! | `fired` | when it fired (set once, `attribute_not_exists(fired)`) |
//!
//! A batch is first aggregated per item, so each item costs one
//! `UpdateItem` per batch (`ADD` is atomic: concurrent instances never lose
//! a count), plus one conditional write when it fires. The update is
//! refused once the window fired (no more writes grow it) and, for the
//! sets, once it counted [`DYNAMO_SET_CAP`] events: the item stays far
//! under DynamoDB's 400 KB whatever the events contain, and only the count
//! goes on (a second, count-only update). Whichever instance's update makes
//! the state meet the condition claims `fired` with a conditional write:
//! exactly one alert per window and group.
//!
//! Join-only observations (rules marked `vigil_join_only`) never start an
//! item: the items a batch holds only them for are looked up first, with
//! one `BatchGetItem` per 100 keys, and only those that exist are updated
//! (conditionally on the item existing, so a race with its expiry cannot
//! start one either).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use aws_sdk_dynamodb::Client;
use sha2::{Digest, Sha256};

use super::{CorrelateError, CorrelateFuture, CorrelationStore, Fired, Observation};
use crate::dedup::table::{self, count, describe, n, s, Item};
use crate::detect::correlation::{EventRef, WindowState, KEPT_EVENTS};

/// Events whose values, step times and contributing events an item keeps
/// (the count goes on past it). Above every threshold a `value_count` may
/// ask for (100).
pub const DYNAMO_SET_CAP: u64 = 200;
/// How long an item outlives its window: late log files (CloudTrail
/// delivers within about 15 minutes, retries later) still find it.
pub const EXPIRY_MARGIN_SECS: i64 = 24 * 3600;
/// Characters of each contributing event's id, name and region kept.
const STORED_TEXT_CHARS: usize = 64;
/// Keys per `BatchGetItem` request (DynamoDB's limit).
const BATCH_GET_KEYS: usize = 100;

/// Correlation windows on one DynamoDB table.
#[derive(Debug)]
pub struct DynamoCorrelations {
    client: Client,
    table: String,
    /// `UpdateItem` requests sent (for the cost figures and tests).
    writes: AtomicU64,
    /// `BatchGetItem` requests sent (join-only lookups).
    reads: AtomicU64,
}

impl DynamoCorrelations {
    pub fn new(client: Client, table: impl Into<String>) -> DynamoCorrelations {
        DynamoCorrelations {
            client,
            table: table.into(),
            writes: AtomicU64::new(0),
            reads: AtomicU64::new(0),
        }
    }

    /// With the state table's client (short timeouts: the pipeline fails
    /// open rather than wait).
    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> DynamoCorrelations {
        DynamoCorrelations::new(table::client(sdk), table)
    }

    /// `UpdateItem` requests sent so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// `BatchGetItem` requests sent so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    async fn observe_all(&self, batch: &[Observation]) -> Result<Vec<Fired>, CorrelateError> {
        let mut pending = aggregate(batch);
        let joins: Vec<&String> = pending
            .iter()
            .filter(|(_, p)| p.join_only)
            .map(|(k, _)| k)
            .collect();
        let (mut fired, mut failed, mut first) = (Vec::new(), 0, None);
        let mut total = pending.len();
        if !joins.is_empty() {
            // A failed lookup loses the join-only updates, not the others.
            let existing = self.existing(&joins).await.unwrap_or_else(|e| {
                failed = joins.len();
                first = Some(e);
                HashSet::new()
            });
            pending.retain(|k, p| !p.join_only || existing.contains(k));
            total = pending.len() + failed;
        }
        for (key, p) in &pending {
            match self.observe_item(key, p).await {
                Ok(Some(f)) => fired.push(f),
                Ok(None) => {}
                Err(e) => {
                    failed += 1;
                    first.get_or_insert(e);
                }
            }
        }
        match first {
            None => Ok(fired),
            Some(first) if fired.is_empty() && failed == total => {
                Err(CorrelateError::Unavailable(first))
            }
            Some(first) => Err(CorrelateError::Partial {
                fired,
                failed,
                total,
                first,
            }),
        }
    }

    /// Which of `keys` are items of the table (consistent reads). A key
    /// DynamoDB leaves unprocessed counts as existing: its update is
    /// conditional on the item anyway.
    async fn existing(&self, keys: &[&String]) -> Result<HashSet<String>, String> {
        let mut out = HashSet::new();
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut request = KeysAndAttributes::builder()
                .consistent_read(true)
                .expression_attribute_names("#id", "id")
                .projection_expression("#id");
            for k in chunk {
                request = request.keys([("id".to_string(), s(k.as_str()))].into());
            }
            let request = request.build().map_err(|e| describe(&e))?;
            self.reads.fetch_add(1, Ordering::Relaxed);
            let got = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| describe(&e))?;
            let found = got.responses.and_then(|mut r| r.remove(&self.table));
            let unprocessed = got.unprocessed_keys.and_then(|mut u| u.remove(&self.table));
            let items = found.into_iter().flatten();
            let left = unprocessed.into_iter().flat_map(|u| u.keys);
            for item in items.chain(left) {
                if let Some(AttributeValue::S(id)) = item.get("id") {
                    out.insert(id.clone());
                }
            }
        }
        Ok(out)
    }

    /// One item's update; its claim when the state now fires.
    async fn observe_item(&self, key: &str, p: &Pending<'_>) -> Result<Option<Fired>, String> {
        let item = match self.add(key, p, true).await? {
            Update::Applied(item) => item,
            // A join-only update of an item that is not there.
            Update::Refused(None) if p.join_only => return Ok(None),
            Update::Refused(old) if old.as_ref().is_some_and(|o| o.contains_key("fired")) => {
                return Ok(None)
            }
            // Past the set cap: only the count goes on.
            Update::Refused(_) => match self.add(key, p, false).await? {
                Update::Applied(item) => item,
                Update::Refused(_) => return Ok(None),
            },
        };
        let o = p.first;
        let state = window_state(&item, o.correlation.rules.len());
        if !o.correlation.fires(&state) || !self.claim(key).await? {
            return Ok(None);
        }
        Ok(Some(Fired {
            correlation: o.correlation.clone(),
            group: o.group.clone(),
            window: o.window,
            state,
        }))
    }

    /// `ADD`s the item's share of the batch. `full`: sets and events too,
    /// while under [`DYNAMO_SET_CAP`]; else the count alone.
    async fn add(&self, key: &str, p: &Pending<'_>, full: bool) -> Result<Update, String> {
        let o = p.first;
        let mut adds = vec!["#c :n".to_string()];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(key))
            .expression_attribute_names("#c", "c")
            .expression_attribute_names("#fired", "fired")
            .expression_attribute_names("#exp", "expiration")
            .expression_attribute_names("#r", "rule")
            .expression_attribute_names("#g", "group")
            .expression_attribute_values(":n", n(p.n))
            .expression_attribute_values(":exp", n(o.window.end + EXPIRY_MARGIN_SECS))
            .expression_attribute_values(":r", s(&o.correlation.id))
            .expression_attribute_values(":g", s(&o.group))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut condition = String::from(match p.join_only {
            true => "attribute_exists(#c) AND attribute_not_exists(#fired)",
            false => "attribute_not_exists(#fired)",
        });
        if full {
            for (name, set) in p.sets() {
                adds.push(format!("#{name} :{name}"));
                req = req
                    .expression_attribute_names(format!("#{name}"), name.clone())
                    .expression_attribute_values(format!(":{name}"), set);
            }
            condition.push_str(" AND (attribute_not_exists(#c) OR #c < :cap)");
            req = req.expression_attribute_values(":cap", n(DYNAMO_SET_CAP));
        }
        req = req.condition_expression(condition);
        let expression = format!(
            "SET #exp = :exp, #r = if_not_exists(#r, :r), #g = if_not_exists(#g, :g) ADD {}",
            adds.join(", ")
        );
        self.writes.fetch_add(1, Ordering::Relaxed);
        match req.update_expression(expression).send().await {
            Ok(out) => Ok(Update::Applied(out.attributes.unwrap_or_default())),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                Ok(Update::Refused(match se.err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item().cloned(),
                    _ => None,
                }))
            }
            Err(e) => Err(describe(&e)),
        }
    }

    /// Marks the window fired, if no instance did first.
    async fn claim(&self, key: &str) -> Result<bool, String> {
        let at = chrono::Utc::now().timestamp();
        self.writes.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(key))
            .update_expression("SET #fired = :at")
            .condition_expression("attribute_exists(#c) AND attribute_not_exists(#fired)")
            .expression_attribute_names("#fired", "fired")
            .expression_attribute_names("#c", "c")
            .expression_attribute_values(":at", n(at))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(se)) if se.err().is_conditional_check_failed_exception() => {
                Ok(false)
            }
            Err(e) => Err(describe(&e)),
        }
    }
}

impl CorrelationStore for DynamoCorrelations {
    fn observe<'a>(&'a self, batch: &'a [Observation]) -> CorrelateFuture<'a> {
        Box::pin(self.observe_all(batch))
    }
}

/// An update's outcome: the item after it, or (refused by its condition)
/// the item as it was.
enum Update {
    Applied(Item),
    Refused(Option<Item>),
}

/// One item's share of a batch.
struct Pending<'a> {
    first: &'a Observation,
    /// Every observation of the item is join-only.
    join_only: bool,
    n: u64,
    values: BTreeSet<String>,
    steps: BTreeMap<usize, BTreeSet<i64>>,
    events: BTreeSet<String>,
}

impl Pending<'_> {
    /// The non-empty sets to `ADD` (DynamoDB refuses empty sets), by
    /// attribute name.
    fn sets(&self) -> Vec<(String, AttributeValue)> {
        let mut out = Vec::new();
        if !self.values.is_empty() {
            out.push((
                "v".into(),
                AttributeValue::Ss(self.values.iter().cloned().collect()),
            ));
        }
        for (pos, times) in &self.steps {
            let ns = times.iter().map(i64::to_string).collect();
            out.push((format!("s{pos}"), AttributeValue::Ns(ns)));
        }
        if !self.events.is_empty() {
            out.push((
                "ev".into(),
                AttributeValue::Ss(self.events.iter().cloned().collect()),
            ));
        }
        out
    }
}

/// The batch per item, in key order.
fn aggregate(batch: &[Observation]) -> BTreeMap<String, Pending<'_>> {
    let mut out: BTreeMap<String, Pending<'_>> = BTreeMap::new();
    for o in batch {
        let p = out.entry(item_key(o)).or_insert_with(|| Pending {
            first: o,
            join_only: true,
            n: 0,
            values: BTreeSet::new(),
            steps: BTreeMap::new(),
            events: BTreeSet::new(),
        });
        p.n += 1;
        p.join_only &= o.join_only;
        if let Some(v) = &o.value {
            p.values.insert(v.clone());
        }
        if let Some(pos) = o.position {
            p.steps.entry(pos).or_default().insert(o.event.time);
        }
        if p.events.len() < KEPT_EVENTS {
            p.events.insert(stored_event(&o.event));
        }
    }
    out
}

/// The item's key: bounded, whatever the group's values.
fn item_key(o: &Observation) -> String {
    let mut h = Sha256::new();
    h.update(o.correlation.id.as_bytes());
    h.update([0]);
    h.update(o.group.as_bytes());
    let digest = hex::encode(h.finalize());
    format!(
        "corr#{}#{}#{}",
        o.window.phase.as_str(),
        o.window.start,
        &digest[..32]
    )
}

/// A contributing event as stored: its texts cut (the ARN's first
/// characters hold its partition and account, all the alert needs).
fn stored_event(e: &EventRef) -> String {
    let cut = |s: &str| s.chars().take(STORED_TEXT_CHARS).collect::<String>();
    let stored = EventRef {
        time: e.time,
        id: cut(&e.id),
        name: cut(&e.name),
        region: cut(&e.region),
        arn: e.arn.as_deref().map(cut),
        source: e.source,
    };
    serde_json::to_string(&stored).unwrap_or_default()
}

/// The window's state as the item holds it (`rules` referenced rules).
fn window_state(item: &Item, rules: usize) -> WindowState {
    let strings = |name: &str| match item.get(name) {
        Some(AttributeValue::Ss(v)) => v.clone(),
        _ => Vec::new(),
    };
    let steps = (0..rules)
        .map(|p| match item.get(&format!("s{p}")) {
            Some(AttributeValue::Ns(v)) => v.iter().filter_map(|t| t.parse().ok()).collect(),
            _ => BTreeSet::new(),
        })
        .collect();
    let mut events: Vec<EventRef> = strings("ev")
        .iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect();
    events.sort();
    events.truncate(KEPT_EVENTS);
    WindowState {
        count: count(item, "c"),
        values: strings("v").into_iter().collect(),
        steps,
        events,
    }
}
