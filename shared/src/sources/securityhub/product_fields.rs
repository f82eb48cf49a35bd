//! ASFF `ProductFields`: the flat string map where each product puts fields of
//! its own. GuardDuty flattens its whole `service` object into it, so the
//! network, counts and sample flag of a GuardDuty copy are read from here.

use serde_json::{Map, Value};

use super::{fill, put};
use crate::json;
use crate::model::{Finding, FindingStatus, Network};

/// The product's name, as Security Hub adds it to `ProductFields`.
pub(super) const PF_PRODUCT_NAME: &str = "aws/securityhub/ProductName";

/// A non-empty string value of `ProductFields` (a flat string map).
pub(super) fn pf_str<'a>(pf: Option<&'a Map<String, Value>>, key: &str) -> Option<&'a str> {
    pf?.get(key)?.as_str().filter(|s| !s.is_empty())
}

/// The first `ProductFields` value whose key is `suffix` or ends with
/// `/suffix`: GuardDuty's fields come as `aws/guardduty/service/...` in newer
/// findings and without the prefix in older ones.
fn pf_suffix<'a>(pf: Option<&'a Map<String, Value>>, suffix: &str) -> Option<&'a str> {
    pf?.iter()
        .find(|(k, v)| {
            (k.as_str() == suffix
                || (k.ends_with(suffix) && k[..k.len() - suffix.len()].ends_with('/')))
                && v.as_str().is_some_and(|s| !s.is_empty())
        })
        .and_then(|(_, v)| v.as_str())
}

/// GuardDuty's own field from `ProductFields`, by its exact service path.
fn pf_guardduty<'a>(pf: Option<&'a Map<String, Value>>, field: &str) -> Option<&'a str> {
    pf_str(pf, &format!("aws/guardduty/service/{field}")).or_else(|| pf_str(pf, field))
}

fn port_str(s: Option<&str>) -> Option<u16> {
    s.and_then(|s| s.trim().parse().ok())
}

/// GuardDuty's network fields, flattened into `ProductFields` keys such as
/// `aws/guardduty/service/action/networkConnectionAction/remoteIpDetails/ipAddressV4`.
pub(super) fn read_guardduty_network(
    f: &mut Finding,
    net: &mut Network,
    pf: Option<&Map<String, Value>>,
) {
    let s = |suffix: &str| pf_suffix(pf, suffix).map(str::to_string);
    fill(
        &mut net.remote_ip,
        s("remoteIpDetails/ipAddressV4").or_else(|| s("remoteIpDetails/ipAddressV6")),
    );
    fill(&mut net.country, s("remoteIpDetails/country/countryName"));
    fill(&mut net.city, s("remoteIpDetails/city/cityName"));
    fill(&mut net.asn, s("remoteIpDetails/organization/asn"));
    fill(
        &mut net.organization,
        s("remoteIpDetails/organization/asnOrg").or_else(|| s("remoteIpDetails/organization/org")),
    );
    fill(
        &mut net.remote_port,
        port_str(pf_suffix(pf, "remotePortDetails/port")),
    );
    fill(
        &mut net.local_port,
        port_str(pf_suffix(pf, "localPortDetails/port")),
    );
    fill(&mut net.direction, s("connectionDirection"));
    fill(
        &mut net.protocol,
        s("networkConnectionAction/protocol").or_else(|| s("dnsRequestAction/protocol")),
    );
    fill(
        &mut net.domain,
        s("dnsRequestAction/domain").or_else(|| s("domainDetails/domain")),
    );
    for (key, suffix) in [
        ("action_type", "action/actionType"),
        ("api", "awsApiCallAction/api"),
        ("api_service", "awsApiCallAction/serviceName"),
        ("error_code", "awsApiCallAction/errorCode"),
        ("caller_type", "awsApiCallAction/callerType"),
    ] {
        if let Some(v) = pf_suffix(pf, suffix) {
            if !f.evidence.contains_key(key) {
                put(f, key, v);
            }
        }
    }
}

/// GuardDuty's service fields: count, archived, feature, first/last seen.
pub(super) fn read_guardduty_fields(f: &mut Finding, pf: Option<&Map<String, Value>>) {
    if let Some(count) = pf_guardduty(pf, "count").and_then(|c| c.trim().parse::<f64>().ok()) {
        if count.is_finite() {
            f.count = count.max(1.0) as u64;
        }
    }
    if pf_guardduty(pf, "archived").is_some_and(|a| a.eq_ignore_ascii_case("true"))
        && f.status == FindingStatus::Active
    {
        f.status = FindingStatus::Archived;
    }
    if let Some(feature) = pf_guardduty(pf, "featureName") {
        put(f, "feature", feature);
    }
    let seen = |field: &str| pf_guardduty(pf, field).and_then(|t| json::time(&Value::from(t)));
    if f.first_seen.is_none() {
        f.first_seen = seen("eventFirstSeen");
    }
    if f.last_seen.is_none() {
        f.last_seen = seen("eventLastSeen");
    }
    if let Some(lists) = pf_suffix(pf, "threatListName") {
        put(f, "threat_lists", lists);
    }
}

/// `sample` flags in `ProductFields`, flat (`.../additionalInfo/sample`) or
/// inside a JSON `additionalInfo` string.
pub(super) fn asff_sample(pf: Option<&Map<String, Value>>) -> bool {
    let Some(pf) = pf else {
        return false;
    };
    pf.iter().any(|(k, v)| {
        let Some(s) = v.as_str() else {
            return false;
        };
        if k == "sample" || k.ends_with("/sample") {
            return s.eq_ignore_ascii_case("true");
        }
        if k == "additionalInfo" || k.ends_with("/additionalInfo") {
            return json::object_or_json_string(v)
                .is_some_and(|a| json::boolean(&a, &["sample"]) == Some(true));
        }
        false
    })
}
