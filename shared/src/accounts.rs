//! Who an account is: its name and the organizational units above it, from
//! AWS Organizations.
//!
//! Alerts name accounts by the names people know ("prod-payments"), and the
//! routing table can send a whole OU's findings to one team. Names from
//! configuration (`VIGIL_ACCOUNT_NAMES`) win over Organizations, so an
//! operator can always override one.
//!
//! Lookups are cached per execution environment for an hour (accounts are
//! renamed and moved rarely; a cold start reads them again), failures for five
//! minutes, so a denied or throttled Organizations API costs one call per
//! account every few minutes, never one per finding. A failed lookup never
//! stops an alert: the alert goes out with the account id and the default
//! route.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_organizations::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_organizations::types::ParentType;

/// An organizational unit above an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgUnit {
    /// `ou-ab12-34cd56ef`.
    pub id: String,
    pub name: Option<String>,
}

/// What the directory knows of one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountInfo {
    /// The account's name in Organizations.
    pub name: Option<String>,
    /// The OUs above the account, nearest first, up to (not including) the root.
    pub units: Vec<OrgUnit>,
}

/// Why a lookup failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("AWS Organizations: {0}")]
pub struct DirectoryError(pub String);

/// Boxed future, so directories can be held as `Arc<dyn AccountDirectory>`.
pub(crate) type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AccountInfo, DirectoryError>> + Send + 'a>>;

/// Where account names and OUs come from: AWS Organizations, or a fixed map
/// (tests, `vigil replay` without AWS).
pub trait AccountDirectory: Send + Sync {
    fn lookup<'a>(&'a self, account_id: &'a str) -> LookupFuture<'a>;
}

/// A fixed directory (tests).
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub(crate) struct StaticDirectory(HashMap<String, AccountInfo>);

#[cfg(test)]
impl StaticDirectory {
    pub fn insert(&mut self, account_id: impl Into<String>, info: AccountInfo) {
        self.0.insert(account_id.into(), info);
    }
}

#[cfg(test)]
impl AccountDirectory for StaticDirectory {
    fn lookup<'a>(&'a self, account_id: &'a str) -> LookupFuture<'a> {
        let info = self.0.get(account_id).cloned().unwrap_or_default();
        Box::pin(async move { Ok(info) })
    }
}

/// What to read from Organizations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LookupWants {
    /// `DescribeAccount`, for the name.
    pub names: bool,
    /// `ListParents` up to the root and `DescribeOrganizationalUnit`, for
    /// routing by OU.
    pub units: bool,
}

const TTL: Duration = Duration::from_secs(3600);
const FAILURE_TTL: Duration = Duration::from_secs(300);
/// OUs nest at most five deep; the bound guards against a cycle in a
/// misbehaving API.
const MAX_DEPTH: usize = 8;

type Cached = (Instant, Result<AccountInfo, DirectoryError>);

/// AWS Organizations, read from the management account or a delegated
/// administrator.
pub struct Organizations {
    client: aws_sdk_organizations::Client,
    wants: LookupWants,
    accounts: Mutex<HashMap<String, Cached>>,
    unit_names: Mutex<HashMap<String, Option<String>>>,
}

impl Organizations {
    pub fn new(sdk: &aws_config::SdkConfig, wants: LookupWants) -> Organizations {
        Organizations {
            client: aws_sdk_organizations::Client::new(sdk),
            wants,
            accounts: Mutex::new(HashMap::new()),
            unit_names: Mutex::new(HashMap::new()),
        }
    }

    async fn fetch(&self, account_id: &str) -> Result<AccountInfo, DirectoryError> {
        let mut info = AccountInfo::default();
        if self.wants.names {
            let out = self
                .client
                .describe_account()
                .account_id(account_id)
                .send()
                .await
                .map_err(error)?;
            info.name = out
                .account()
                .and_then(|a| a.name())
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string);
        }
        if self.wants.units {
            let mut child = account_id.to_string();
            for _ in 0..MAX_DEPTH {
                let out = self
                    .client
                    .list_parents()
                    .child_id(&child)
                    .send()
                    .await
                    .map_err(error)?;
                let Some(parent) = out.parents().first() else {
                    break;
                };
                let Some(id) = parent.id() else { break };
                if parent.r#type() != Some(&ParentType::OrganizationalUnit) {
                    break; // the root
                }
                let name = self.unit_name(id).await?;
                info.units.push(OrgUnit {
                    id: id.to_string(),
                    name,
                });
                child = id.to_string();
            }
        }
        Ok(info)
    }

    async fn unit_name(&self, id: &str) -> Result<Option<String>, DirectoryError> {
        if let Some(name) = self.unit_names.lock().expect("unit cache").get(id) {
            return Ok(name.clone());
        }
        let out = self
            .client
            .describe_organizational_unit()
            .organizational_unit_id(id)
            .send()
            .await
            .map_err(error)?;
        let name = out
            .organizational_unit()
            .and_then(|u| u.name())
            .map(str::to_string);
        self.unit_names
            .lock()
            .expect("unit cache")
            .insert(id.to_string(), name.clone());
        Ok(name)
    }
}

impl AccountDirectory for Organizations {
    fn lookup<'a>(&'a self, account_id: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            if let Some((at, result)) = self.accounts.lock().expect("account cache").get(account_id)
            {
                let ttl = if result.is_ok() { TTL } else { FAILURE_TTL };
                if at.elapsed() < ttl {
                    return result.clone();
                }
            }
            let result = self.fetch(account_id).await;
            if let Err(e) = &result {
                // Once per account per FAILURE_TTL, thanks to the cache.
                tracing::warn!(
                    account = account_id,
                    error = %e,
                    "account lookup failed: alerting with the account id and the default route"
                );
            }
            self.accounts
                .lock()
                .expect("account cache")
                .insert(account_id.to_string(), (Instant::now(), result.clone()));
            result
        })
    }
}

fn error<E, R>(e: aws_sdk_organizations::error::SdkError<E, R>) -> DirectoryError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.code() {
        Some(code) => DirectoryError(format!("{code}: {}", e.message().unwrap_or_default())),
        None => DirectoryError(DisplayErrorContext(&e).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_static_directory_knows_only_what_it_was_given() {
        let mut d = StaticDirectory::default();
        d.insert(
            "111122223333",
            AccountInfo {
                name: Some("prod".into()),
                units: vec![OrgUnit {
                    id: "ou-1".into(),
                    name: Some("Payments".into()),
                }],
            },
        );
        assert_eq!(
            d.lookup("111122223333").await.unwrap().name.as_deref(),
            Some("prod")
        );
        assert_eq!(
            d.lookup("999999999999").await.unwrap(),
            AccountInfo::default()
        );
    }
}
