//! Which URLs an alert may show as a live link, and how every other URL is
//! shown: defanged.
//!
//! A live link is one Vigil built from validated parts (a [`Region`] label, a
//! [`Partition`]'s console host, percent-encoded ids) or one whose host is an
//! AWS console host ([`is_console_url`]). Everything else an event supplies
//! is text, and a URL in text is [`defang`]ed (`hxxps://evil[.]example/x`):
//! mail and chat clients turn plain URLs into links.

use url::Url;

/// The AWS partitions whose console has a host of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Partition {
    /// `aws`, and any partition Vigil does not know: regional console hosts.
    #[default]
    Aws,
    /// `aws-cn`.
    China,
    /// `aws-us-gov`.
    GovCloud,
}

impl Partition {
    /// The partition by its name in ARNs and events (`aws-cn`, `aws-us-gov`).
    pub(crate) fn named(name: &str) -> Partition {
        match name {
            "aws-cn" => Partition::China,
            "aws-us-gov" => Partition::GovCloud,
            _ => Partition::Aws,
        }
    }

    /// The partition of an ARN (`arn:<partition>:...`), `aws` when unknown.
    pub(crate) fn of_arn(arn: Option<&str>) -> Partition {
        arn.and_then(|a| a.strip_prefix("arn:"))
            .and_then(|a| a.split(':').next())
            .map_or(Partition::Aws, Partition::named)
    }

    /// The console host of this partition in `region`.
    pub(crate) fn console_host(self, region: &Region) -> String {
        match self {
            Partition::China => "console.amazonaws.cn".to_string(),
            Partition::GovCloud => "console.amazonaws-us-gov.com".to_string(),
            Partition::Aws => format!("{}.console.aws.amazon.com", region.as_str()),
        }
    }
}

/// A region label as AWS names them (`us-east-1`, `us-gov-west-1`,
/// `cn-north-1`, `il-central-1`, `eu-south-2`): two letters, one or more
/// words, a number. Nothing else can reach a host name or a query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Region(String);

impl Region {
    /// The longest real label is 14 characters (`ap-southeast-5`); 32 leaves
    /// room for regions to come.
    const MAX: usize = 32;

    pub(crate) fn parse(s: &str) -> Option<Region> {
        let mut words = s.split('-');
        let area = words.next()?;
        let rest: Vec<&str> = words.collect();
        let (number, middle) = rest.split_last()?;
        let lower = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase());
        let ok = s.len() <= Region::MAX
            && area.len() == 2
            && lower(area)
            && !middle.is_empty()
            && middle.iter().all(|w| lower(w))
            && (1..=2).contains(&number.len())
            && number.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Region(s.to_string()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// The console hosts of the three partitions, bare or with a region label
/// in front (`eu-west-1.console.aws.amazon.com`).
const CONSOLE_DOMAINS: [&str; 3] = [
    "console.aws.amazon.com",
    "console.amazonaws.cn",
    "console.amazonaws-us-gov.com",
];

fn is_console_host(host: &str) -> bool {
    CONSOLE_DOMAINS.iter().any(|domain| {
        host == *domain
            || host
                .strip_suffix(domain)
                .and_then(|r| r.strip_suffix('.'))
                .and_then(Region::parse)
                .is_some()
    })
}

/// Whether `url` may be a live link: `https`, on an AWS console host (a
/// valid region label in front, if any), no user, password or port, and
/// written as a browser reads it (printable ASCII, no quotes or brackets
/// that could end a link in markup). Read as a browser parses it (WHATWG),
/// so `https://console.aws.amazon.com\@evil.example` is not one.
pub(crate) fn is_console_url(url: &str) -> bool {
    plain_url(url).is_some_and(|u| {
        u.scheme() == "https" && u.port().is_none() && u.host_str().is_some_and(is_console_host)
    })
}

/// Whether `url` is a plain `http(s)` URL (see [`is_console_url`]), on any
/// host: for the trace link, whose host the deployer configures.
pub(crate) fn is_plain_web_url(url: &str) -> bool {
    plain_url(url).is_some_and(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
}

/// `url` parsed, when it is written as a browser reads it (printable ASCII,
/// no quotes or brackets that could end a link in markup) and names no user
/// or password.
fn plain_url(url: &str) -> Option<Url> {
    let written_plainly = url.len() <= 2048
        && url.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\' | b'`' | b'|')
        });
    if !written_plainly {
        return None;
    }
    let parsed = Url::parse(url).ok()?;
    (parsed.username().is_empty() && parsed.password().is_none()).then_some(parsed)
}

/// Characters that end the host part of a URL in text.
fn ends_host(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '/' | '?' | '#' | '\\' | '<' | '>' | '"' | '\'' | '|' | ')' | ']'
        )
}

/// Where the next URL-like run starts in `s`, and where its host starts:
/// `scheme://host` or `www.host`.
fn next_url(s: &str) -> Option<(usize, usize)> {
    let lower = s.to_ascii_lowercase();
    let scheme = lower.find("://").map(|sep| {
        let start = lower[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        (start, sep + 3)
    });
    let www = lower.match_indices("www.").map(|(i, _)| i).find(|&i| {
        lower[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '.'))
    });
    match (scheme, www) {
        (Some(a), Some(w)) if w < a.0 => Some((w, w)),
        (Some(a), _) => Some(a),
        (None, Some(w)) => Some((w, w)),
        (None, None) => None,
    }
}

/// Every URL in `s` made inert the way security tools write them:
/// `hxxps://evil[.]example/path`, `www[.]evil[.]example`, `ftp[:]//host`.
/// A reader can still copy it; no client makes it a link.
pub(crate) fn defang(s: &str) -> String {
    // Most text holds no URL: one scan, one copy.
    let may_hold_url = s.contains("://")
        || s.as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"www."));
    if !may_hold_url {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut rest = s;
    while let Some((start, host)) = next_url(rest) {
        out.push_str(&rest[..start]);
        let scheme = &rest[start..host];
        match scheme.to_ascii_lowercase().as_str() {
            "http://" => out.push_str("hxxp://"),
            "https://" => out.push_str("hxxps://"),
            "" => {}
            _ => out.push_str(&scheme.replacen("://", "[:]//", 1)),
        }
        let tail = &rest[host..];
        let end = tail.find(ends_host).unwrap_or(tail.len());
        out.push_str(&tail[..end].replace('.', "[.]"));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_region_labels_pass_and_nothing_else() {
        for r in [
            "us-east-1",
            "us-gov-west-1",
            "cn-north-1",
            "cn-northwest-1",
            "il-central-1",
            "ap-southeast-5",
            "eu-south-2",
            "ca-west-1",
            "mx-central-1",
        ] {
            assert!(Region::parse(r).is_some(), "{r}");
        }
        for r in [
            "",
            "evil.example/aws-login?r=",
            "us-east-1.evil.example",
            "US-EAST-1",
            "us-east",
            "us--1",
            "useast-1",
            "us-east-123",
            "us-east-1 ",
            "us-east-1#",
            "aws-global",
        ] {
            assert!(Region::parse(r).is_none(), "{r:?}");
        }
    }

    #[test]
    fn console_hosts_follow_the_partition() {
        let r = |s| Region::parse(s).unwrap();
        assert_eq!(
            Partition::Aws.console_host(&r("eu-west-1")),
            "eu-west-1.console.aws.amazon.com"
        );
        assert_eq!(
            Partition::China.console_host(&r("cn-north-1")),
            "console.amazonaws.cn"
        );
        assert_eq!(
            Partition::GovCloud.console_host(&r("us-gov-west-1")),
            "console.amazonaws-us-gov.com"
        );
    }

    #[test]
    fn only_console_hosts_are_live_links() {
        for ok in [
            "https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?fId=1",
            "https://console.aws.amazon.com/securityhub/home",
            "https://console.amazonaws.cn/guardduty/home?region=cn-north-1",
            "https://console.amazonaws-us-gov.com/x",
            "https://us-gov-west-1.console.amazonaws-us-gov.com/x",
        ] {
            assert!(is_console_url(ok), "{ok}");
        }
        for bad in [
            "https://evil.example/aws-login?r=.console.aws.amazon.com/",
            "https://evil.example/aws-login?r=",
            "http://us-east-1.console.aws.amazon.com/",
            "https://us-east-1.console.aws.amazon.com.evil.example/",
            "https://console.aws.amazon.com@evil.example/",
            "https://console.aws.amazon.com\\@evil.example/",
            "https://x@console.aws.amazon.com/",
            "https://console.aws.amazon.com:8443/",
            "https://evil.example.console.aws.amazon.com/",
            "https://a.b.console.aws.amazon.com/",
            "javascript:alert(1)//console.aws.amazon.com",
            "https://console.aws.amazon.com/<x>",
            "https://console.aws.amazon.com/ x",
        ] {
            assert!(!is_console_url(bad), "{bad}");
        }
    }

    #[test]
    fn urls_in_text_are_defanged() {
        assert_eq!(
            defang("see https://evil.example/aws-login?r=a.b now"),
            "see hxxps://evil[.]example/aws-login?r=a.b now"
        );
        assert_eq!(defang("HTTP://Evil.Example"), "hxxp://Evil[.]Example");
        assert_eq!(
            defang("go to www.evil.example/x"),
            "go to www[.]evil[.]example/x"
        );
        assert_eq!(
            defang("ftp://h.x/ and ://y.z"),
            "ftp[:]//h[.]x/ and [:]//y[.]z"
        );
        assert_eq!(defang("awww.x"), "awww.x");
        assert_eq!(defang("www"), "www");
        assert_eq!(defang("plain arn:aws:s3:::b.c"), "plain arn:aws:s3:::b.c");
        let many = "www.".repeat(10_000);
        assert!(!defang(&many).contains("www.e"));
    }

    #[test]
    fn text_without_a_url_is_left_as_it_is_and_www_is_found_in_any_case() {
        for s in ["no link here", "a.b.c dots", "ftp:/almost", ""] {
            assert_eq!(defang(s), s);
        }
        assert_eq!(
            defang("see WWW.evil.example now"),
            "see WWW[.]evil[.]example now"
        );
        assert_eq!(
            defang("x hTTps://evil.example/p"),
            "x hxxps://evil[.]example/p"
        );
    }
}
