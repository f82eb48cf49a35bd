//! Links into the AWS console, for every source: the partition an event names,
//! its console host, percent-encoding, and [`ConsoleUrl`], which puts them
//! together so that no source writes a console URL by hand. The region must
//! be a region label ([`Region`]): `awsRegion: "evil.example/x?"` makes no
//! link at all.

pub(crate) use crate::text::link::Partition;
use crate::text::link::Region;

/// The partition a region belongs to, for events that name a region but no
/// ARN (`cn-north-1` → China, `us-gov-west-1` → GovCloud).
pub(crate) fn partition_of_region(region: &str) -> Partition {
    if region.starts_with("cn-") {
        Partition::China
    } else if region.starts_with("us-gov-") {
        Partition::GovCloud
    } else {
        Partition::Aws
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
    region: Region,
    service: &'a str,
    view: Option<String>,
}

impl<'a> ConsoleUrl<'a> {
    /// The home page of `service` (its path in the console, e.g. `guardduty`).
    /// `None` without a valid region label: every page Vigil links to is
    /// regional, and the region goes into the host and the query.
    pub(crate) fn new(
        partition: Partition,
        region: &str,
        service: &'a str,
    ) -> Option<ConsoleUrl<'a>> {
        Some(ConsoleUrl {
            partition,
            region: Region::parse(region)?,
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
            host = self.partition.console_host(&self.region),
            service = self.service,
            region = self.region.as_str(),
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
        assert_eq!(
            ConsoleUrl::new(Partition::Aws, "evil.example/aws-login?r=", "guardduty"),
            None
        );
    }
}
