//! Links into the AWS console, for every source: the partition an event names,
//! its console host, percent-encoding, and [`ConsoleUrl`], which puts them
//! together so that no source writes a console URL by hand.

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
    pub(crate) fn console_host(self, region: &str) -> String {
        match self {
            Partition::China => "console.amazonaws.cn".to_string(),
            Partition::GovCloud => "console.amazonaws-us-gov.com".to_string(),
            Partition::Aws => format!("{region}.console.aws.amazon.com"),
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A service's console page in one partition and region,
/// `https://<host>/<service>/home?region=<region>`, and optionally a view
/// inside it (after `#`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsoleUrl<'a> {
    partition: Partition,
    region: &'a str,
    service: &'a str,
    view: Option<String>,
}

impl<'a> ConsoleUrl<'a> {
    /// The home page of `service` (its path in the console, e.g. `guardduty`).
    /// `None` without a region: every page Vigil links to is regional.
    pub(crate) fn new(
        partition: Partition,
        region: &'a str,
        service: &'a str,
    ) -> Option<ConsoleUrl<'a>> {
        (!region.is_empty()).then_some(ConsoleUrl {
            partition,
            region,
            service,
            view: None,
        })
    }

    /// The view inside the page, the part after `#`. The caller encodes what
    /// came from the event, as the service's page expects it.
    pub(crate) fn view(mut self, view: impl Into<String>) -> ConsoleUrl<'a> {
        self.view = Some(view.into());
        self
    }

    pub(crate) fn build(&self) -> String {
        let mut url = format!(
            "https://{host}/{service}/home?region={region}",
            host = self.partition.console_host(self.region),
            service = self.service,
            region = self.region,
        );
        if let Some(view) = &self.view {
            url.push('#');
            url.push_str(view);
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_unreserved_only() {
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(percent_encode("a/b:c d"), "a%2Fb%3Ac%20d");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn console_hosts_follow_the_partition() {
        assert_eq!(
            Partition::Aws.console_host("eu-west-1"),
            "eu-west-1.console.aws.amazon.com"
        );
        assert_eq!(
            Partition::China.console_host("cn-north-1"),
            "console.amazonaws.cn"
        );
        assert_eq!(
            Partition::GovCloud.console_host("us-gov-west-1"),
            "console.amazonaws-us-gov.com"
        );
    }

    #[test]
    fn partitions_of_arns() {
        assert_eq!(
            Partition::of_arn(Some("arn:aws-cn:s3:::b")),
            Partition::China
        );
        assert_eq!(
            Partition::of_arn(Some("arn:aws-us-gov:iam::1:root")),
            Partition::GovCloud
        );
        assert_eq!(Partition::of_arn(Some("arn::s3:::b")), Partition::Aws);
        assert_eq!(Partition::of_arn(Some("not an arn")), Partition::Aws);
        assert_eq!(Partition::of_arn(None), Partition::Aws);
    }

    #[test]
    fn urls_name_the_region_and_the_view() {
        let home = ConsoleUrl::new(Partition::Aws, "us-east-1", "securityhub").unwrap();
        assert_eq!(
            home.build(),
            "https://us-east-1.console.aws.amazon.com/securityhub/home?region=us-east-1"
        );
        assert_eq!(
            ConsoleUrl::new(Partition::China, "cn-north-1", "guardduty")
                .unwrap()
                .view("/findings?fId=1")
                .build(),
            "https://console.amazonaws.cn/guardduty/home?region=cn-north-1#/findings?fId=1"
        );
        assert_eq!(ConsoleUrl::new(Partition::Aws, "", "macie"), None);
    }
}
