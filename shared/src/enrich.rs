//! Enrichment: what every finding gets after parsing, whatever its source.
//!
//! Account names, the class of the remote address, and the fingerprint that
//! dedup and suppression key on.

use std::collections::HashMap;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::model::{Finding, IpClass};

/// Account id → name people know it by ("prod-payments"), from configuration.
#[derive(Debug, Clone, Default)]
pub struct AccountNames(HashMap<String, String>);

impl AccountNames {
    /// Parses `111122223333=prod,444455556666=dev` or a JSON object
    /// `{"111122223333":"prod"}`. Malformed entries are skipped, not fatal:
    /// a typo in a name map must not stop alerts.
    pub fn parse(spec: &str) -> AccountNames {
        let spec = spec.trim();
        if spec.starts_with('{') {
            if let Ok(map) = serde_json::from_str::<HashMap<String, String>>(spec) {
                return AccountNames(map);
            }
        }
        AccountNames(
            spec.split([',', ';', '\n'])
                .filter_map(|pair| {
                    let (id, name) = pair.split_once(['=', ':'])?;
                    let (id, name) = (id.trim(), name.trim());
                    (!id.is_empty() && !name.is_empty()).then(|| (id.to_string(), name.to_string()))
                })
                .collect(),
        )
    }

    pub fn insert(&mut self, id: impl Into<String>, name: impl Into<String>) {
        self.0.insert(id.into(), name.into());
    }

    pub fn get(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The enrichment stage.
#[derive(Debug, Clone, Default)]
pub struct Enricher {
    pub accounts: AccountNames,
}

impl Enricher {
    pub fn new(accounts: AccountNames) -> Enricher {
        Enricher { accounts }
    }

    pub fn enrich(&self, f: &mut Finding) {
        // The operator's name wins over one the source carries (Security
        // Hub's `AwsAccountName`), which wins over AWS Organizations (looked
        // up later, in the pipeline, only where no name is known yet).
        if let Some(name) = self.accounts.get(&f.account_id) {
            f.account_name = Some(name.to_string());
        }
        if let Some(ip) = f.network.remote_ip.as_deref() {
            f.network.remote_ip_class = classify_ip(ip);
        } else if let Some(ip) = f.actor.as_ref().and_then(|a| a.source_ip.as_deref()) {
            f.network.remote_ip_class = classify_ip(ip);
        }
        f.fingerprint = fingerprint(f);
    }
}

/// Private, AWS service, or public. CloudTrail puts service names
/// (`ec2.amazonaws.com`) where an address would be.
pub(crate) fn classify_ip(s: &str) -> IpClass {
    let s = s.trim();
    if s.ends_with(".amazonaws.com") || s == "AWS Internal" {
        return IpClass::AwsService;
    }
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let o = v4.octets();
            let cgnat = o[0] == 100 && (64..128).contains(&o[1]);
            if v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || cgnat
                || v4.is_unspecified()
            {
                IpClass::Private
            } else {
                IpClass::Public
            }
        }
        Ok(IpAddr::V6(v6)) => {
            let first = v6.segments()[0];
            let unique_local = (first & 0xfe00) == 0xfc00;
            let link_local = (first & 0xffc0) == 0xfe80;
            if v6.is_loopback() || unique_local || link_local || v6.is_unspecified() {
                IpClass::Private
            } else {
                IpClass::Public
            }
        }
        Err(_) => IpClass::Unknown,
    }
}

/// Stable dedup key: what fired (rule or finding type), in which account, on
/// which resource, by whom. The region is part of it only for regional
/// resources, so a global IAM finding reported from every region is one
/// fingerprint. The source is not part of it, so the same GuardDuty finding
/// arriving directly and through Security Hub is one fingerprint too.
pub fn fingerprint(f: &Finding) -> String {
    let mut h = Sha256::new();
    let mut part = |s: &str| {
        h.update(s.as_bytes());
        h.update([0x1f]);
    };
    part(f.type_or_rule());
    part(&f.account_id);
    let resource = f.primary_resource();
    part(resource.map(|r| r.id.as_str()).unwrap_or(""));
    let actor = f.actor.as_ref();
    part(
        actor
            .and_then(|a| {
                a.arn
                    .as_deref()
                    .or(a.principal_id.as_deref())
                    .or(a.user_name.as_deref())
            })
            .unwrap_or(""),
    );
    let global = resource.is_some_and(|r| r.is_global())
        || (resource.is_none() && actor.is_some_and(|a| a.actor_type.is_global()));
    if !global {
        part(&f.region);
    }
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Resource, Source};

    #[test]
    fn account_names_from_pairs_and_json() {
        let a = AccountNames::parse("111122223333=prod, 444455556666 = dev,broken");
        assert_eq!(a.get("111122223333"), Some("prod"));
        assert_eq!(a.get("444455556666"), Some("dev"));
        assert_eq!(a.len(), 2);
        let j = AccountNames::parse(r#"{"1":"one"}"#);
        assert_eq!(j.get("1"), Some("one"));
    }

    #[test]
    fn a_configured_name_wins_over_the_sources() {
        let mut f = Finding::new(Source::SecurityHub, "f", "t");
        f.account_id = "111122223333".into();
        f.account_name = Some("from-security-hub".into());
        Enricher::new(AccountNames::parse("111122223333=prod")).enrich(&mut f);
        assert_eq!(f.account_name.as_deref(), Some("prod"));
        f.account_id = "444455556666".into();
        f.account_name = Some("from-security-hub".into());
        Enricher::new(AccountNames::parse("111122223333=prod")).enrich(&mut f);
        assert_eq!(f.account_name.as_deref(), Some("from-security-hub"));
    }

    #[test]
    fn ip_classes() {
        assert_eq!(classify_ip("10.1.2.3"), IpClass::Private);
        assert_eq!(classify_ip("100.64.0.1"), IpClass::Private);
        assert_eq!(classify_ip("198.51.100.7"), IpClass::Public);
        assert_eq!(classify_ip("ec2.amazonaws.com"), IpClass::AwsService);
        assert_eq!(classify_ip("fd00::1"), IpClass::Private);
        assert_eq!(classify_ip("2001:db8::1"), IpClass::Public);
        assert_eq!(classify_ip("not an ip"), IpClass::Unknown);
    }

    #[test]
    fn fingerprint_ignores_region_for_global_resources_only() {
        let mut a = Finding::new(Source::GuardDuty, "1", "Policy:IAMUser/RootCredentialUsage");
        a.account_id = "111122223333".into();
        a.resources.push(Resource::new("AwsIamAccessKey", "AKIA1"));
        a.region = "us-east-1".into();
        let mut b = a.clone();
        b.region = "eu-west-1".into();
        b.source = Source::SecurityHub;
        assert_eq!(fingerprint(&a), fingerprint(&b));

        let mut c = a.clone();
        c.resources = vec![Resource::new("AwsEc2Instance", "i-1")];
        let mut d = c.clone();
        d.region = "eu-west-1".into();
        assert_ne!(fingerprint(&c), fingerprint(&d));
    }
}
