//! Which log files of a trail bucket a backfill sends: CloudTrail's key
//! layout, `[prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>`,
//! walked by folders (ListObjectsV2 with a delimiter) down to the accounts
//! and regions, then listed one day folder at a time: a week of one account
//! costs a week of listings, not the whole bucket's.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};

/// Days in one backfill, at most: ten years of day folders per region.
pub(crate) const MAX_DAYS: i64 = 3660;

/// Why the bucket could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("listing s3://{bucket}/{prefix}: {message}")]
pub(crate) struct ListError {
    bucket: String,
    prefix: String,
    message: String,
}

/// The span of time to backfill, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    pub(crate) from: DateTime<Utc>,
    pub(crate) to: DateTime<Utc>,
}

/// Why `--from` or `--to` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum RangeError {
    #[error("{0:?} is neither a date (2024-05-01) nor an RFC 3339 time (2024-05-01T10:00:00Z)")]
    NotATime(String),
    #[error("--from is after --to")]
    Backwards,
    #[error("the range spans more than {MAX_DAYS} days")]
    TooLong,
}

/// A date (the whole day, UTC) or an RFC 3339 time. `end` picks the
/// day's last instant for a date, so `--to 2024-05-01` includes that day.
pub(crate) fn parse_time(text: &str, end: bool) -> Result<DateTime<Utc>, RangeError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| RangeError::NotATime(text.to_string()))?;
    let time = match end {
        true => day.and_hms_milli_opt(23, 59, 59, 999),
        false => day.and_hms_opt(0, 0, 0),
    };
    time.map(|t| t.and_utc())
        .ok_or_else(|| RangeError::NotATime(text.to_string()))
}

impl Range {
    pub(crate) fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Range, RangeError> {
        if from > to {
            return Err(RangeError::Backwards);
        }
        if (to.date_naive() - from.date_naive()).num_days() >= MAX_DAYS {
            return Err(RangeError::TooLong);
        }
        Ok(Range { from, to })
    }

    /// Every UTC day the range touches, in order.
    pub(crate) fn days(&self) -> Vec<NaiveDate> {
        let (first, last) = (self.from.date_naive(), self.to.date_naive());
        first.iter_days().take_while(|d| *d <= last).collect()
    }

    /// Whether a file named `key` belongs to the range. CloudTrail names each
    /// file by its delivery time (`..._20240501T1005Z_...`); a file whose
    /// name carries none is kept (its day folder already matched).
    pub(crate) fn holds(&self, key: &str) -> bool {
        let Some(t) = delivery_time(key) else {
            return true;
        };
        // The name has minutes: compare at that precision.
        let floor = |d: DateTime<Utc>| d.timestamp() / 60;
        (floor(self.from)..=floor(self.to)).contains(&floor(t))
    }
}

/// The `YYYYMMDDTHHMMZ` part of a CloudTrail file name.
fn delivery_time(key: &str) -> Option<DateTime<Utc>> {
    let name = key.rsplit('/').next()?;
    name.split('_').find_map(|part| {
        let ok = part.len() == 14
            && part.is_ascii()
            && part.as_bytes()[8] == b'T'
            && part.ends_with('Z');
        ok.then(|| NaiveDateTime::parse_from_str(&part[..13], "%Y%m%dT%H%M").ok())
            .flatten()
            .map(|t| t.and_utc())
    })
}

/// One `<account>/CloudTrail/<region>/` folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Folder {
    pub(crate) account: String,
    pub(crate) region: String,
    /// Its full prefix, ending in `/`.
    pub(crate) prefix: String,
}

impl Folder {
    /// The day folder of `day`: `.../2024/05/01/`.
    pub(crate) fn day(&self, day: NaiveDate) -> String {
        format!(
            "{}{:04}/{:02}/{:02}/",
            self.prefix,
            day.year(),
            day.month(),
            day.day()
        )
    }
}

/// Every day folder of a backfill: each day of the range in every
/// account and region folder, made one at a time as they are listed (a year
/// of a large organization is millions of them: none is held in memory).
#[derive(Debug)]
pub(crate) struct DayFolders {
    days: Vec<NaiveDate>,
    folders: Vec<Folder>,
}

impl DayFolders {
    pub(crate) fn new(range: &Range, folders: Vec<Folder>) -> DayFolders {
        DayFolders {
            days: range.days(),
            folders,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.days.len() * self.folders.len()
    }

    /// Day by day (oldest first), every folder of each day: the day
    /// folder's prefix and the folder it belongs to.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (String, &Folder)> {
        let folders = &self.folders;
        self.days
            .iter()
            .flat_map(move |d| folders.iter().map(move |f| (f.day(*d), f)))
    }
}

/// What to list: accounts and regions to keep (empty: all).
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub(crate) accounts: BTreeSet<String>,
    pub(crate) regions: BTreeSet<String>,
}

impl Filter {
    fn keeps(set: &BTreeSet<String>, value: &str) -> bool {
        set.is_empty() || set.contains(value)
    }
}

/// An account folder: twelve digits.
fn is_account(name: &str) -> bool {
    name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit())
}

/// An organization folder: `o-` then 10 to 32 lowercase letters or digits.
fn is_organization(name: &str) -> bool {
    name.strip_prefix("o-").is_some_and(|id| {
        (10..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// A region folder: lowercase letters, digits and dashes (`us-east-1`).
/// Anything else is no CloudTrail folder, and is not printed.
fn is_region(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A bucket, listed.
pub(crate) struct Lister<'a> {
    pub(crate) client: &'a aws_sdk_s3::Client,
    pub(crate) bucket: &'a str,
}

/// One log file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogObject {
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) etag: Option<String>,
}

impl Lister<'_> {
    /// The names of the folders right under `prefix` (without it or the `/`).
    async fn folders(&self, prefix: &str) -> Result<Vec<String>, ListError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(self.bucket)
            .prefix(prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(prefix, &e))?;
            for p in page.common_prefixes() {
                let name = p.prefix().and_then(|s| s.strip_prefix(prefix));
                if let Some(name) = name.and_then(|n| n.strip_suffix('/')) {
                    out.push(name.to_string());
                }
            }
        }
        Ok(out)
    }

    fn error<E: std::error::Error>(&self, prefix: &str, e: &E) -> ListError {
        ListError {
            bucket: self.bucket.to_string(),
            prefix: prefix.to_string(),
            message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
        }
    }

    /// Every `<account>/CloudTrail/<region>/` folder under `root`
    /// (`[prefix/]AWSLogs/`) that `filter` keeps, organization trails' too.
    pub(crate) async fn trail_folders(
        &self,
        root: &str,
        filter: &Filter,
    ) -> Result<Vec<Folder>, ListError> {
        let mut accounts = Vec::new();
        for name in self.folders(root).await? {
            if is_account(&name) {
                accounts.push((name.clone(), format!("{root}{name}/")));
            } else if is_organization(&name) {
                let org = format!("{root}{name}/");
                for account in self
                    .folders(&org)
                    .await?
                    .into_iter()
                    .filter(|a| is_account(a))
                {
                    accounts.push((account.clone(), format!("{org}{account}/")));
                }
            }
        }
        let mut out = Vec::new();
        for (account, prefix) in accounts {
            if !Filter::keeps(&filter.accounts, &account) {
                continue;
            }
            let trail = format!("{prefix}CloudTrail/");
            for region in self.folders(&trail).await? {
                if is_region(&region) && Filter::keeps(&filter.regions, &region) {
                    let prefix = format!("{trail}{region}/");
                    out.push(Folder {
                        account: account.clone(),
                        region,
                        prefix,
                    });
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The log files of one day folder after `start_after` (resuming), in
    /// key order, that `range` holds.
    pub(crate) async fn day(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        range: &Range,
    ) -> Result<Vec<LogObject>, ListError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(self.bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_string))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(prefix, &e))?;
            for o in page.contents() {
                let Some(key) = o.key().filter(|k| !k.ends_with('/') && range.holds(k)) else {
                    continue;
                };
                out.push(LogObject {
                    key: key.to_string(),
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    etag: o.e_tag().map(|e| e.trim_matches('"').to_string()),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn dates_cover_whole_days_and_times_are_exact() {
        assert_eq!(
            parse_time("2024-05-01", false),
            Ok(t("2024-05-01T00:00:00Z"))
        );
        assert_eq!(
            parse_time("2024-05-01", true),
            Ok(t("2024-05-01T23:59:59.999Z"))
        );
        assert_eq!(
            parse_time("2024-05-01T12:30:00+02:00", true),
            Ok(t("2024-05-01T10:30:00Z"))
        );
        assert!(matches!(
            parse_time("yesterday", false),
            Err(RangeError::NotATime(_))
        ));
        assert!(matches!(
            parse_time("2024-02-30", false),
            Err(RangeError::NotATime(_))
        ));
    }

    #[test]
    fn a_range_lists_its_days_and_keeps_its_files() {
        let r = Range::new(t("2024-04-30T23:00:00Z"), t("2024-05-02T00:10:00Z")).unwrap();
        let days: Vec<String> = r.days().iter().map(|d| d.to_string()).collect();
        assert_eq!(days, ["2024-04-30", "2024-05-01", "2024-05-02"]);
        let key = |ts: &str| {
            format!("AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_{ts}_abc.json.gz")
        };
        assert!(r.holds(&key("20240501T1005Z")));
        assert!(r.holds(&key("20240502T0010Z")));
        assert!(!r.holds(&key("20240502T0015Z")));
        assert!(!r.holds(&key("20240430T2255Z")));
        assert!(r.holds("AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/other.json.gz"));
        // Not ASCII where the time would be: kept, no panic on a char boundary.
        assert!(r.holds("AWSLogs/1/CloudTrail/r/2024/05/01/a_20240501T10éZ_b.json.gz"));
        assert_eq!(
            Range::new(t("2024-05-02T00:00:00Z"), t("2024-05-01T00:00:00Z")),
            Err(RangeError::Backwards)
        );
        assert_eq!(
            Range::new(t("2000-01-01T00:00:00Z"), t("2024-05-01T00:00:00Z")),
            Err(RangeError::TooLong)
        );
    }

    #[test]
    fn folders_are_told_apart() {
        assert!(is_account("111122223333"));
        assert!(!is_account("11112222333"));
        assert!(!is_account("CloudTrail"));
        assert!(is_organization("o-abc123defg"));
        assert!(!is_organization("o-short"));
        assert!(!is_organization("o-ABC123DEFG"));
        assert!(is_region("ap-southeast-2"));
        assert!(!is_region("us-east-1\n"));
        assert!(!is_region(""));
        let f = Folder {
            account: "111122223333".into(),
            region: "eu-west-1".into(),
            prefix: "AWSLogs/111122223333/CloudTrail/eu-west-1/".into(),
        };
        let day = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
        assert_eq!(
            f.day(day),
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/05/01/"
        );
        let mut g = f.clone();
        g.prefix = "AWSLogs/444455556666/CloudTrail/eu-west-1/".into();
        let range = Range::new(t("2024-05-01T10:00:00Z"), t("2024-05-02T01:00:00Z")).unwrap();
        let all = DayFolders::new(&range, vec![f, g]);
        assert_eq!(all.len(), 4);
        let prefixes: Vec<String> = all.iter().map(|(p, _)| p).collect();
        assert_eq!(
            prefixes,
            [
                "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/05/01/",
                "AWSLogs/444455556666/CloudTrail/eu-west-1/2024/05/01/",
                "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/05/02/",
                "AWSLogs/444455556666/CloudTrail/eu-west-1/2024/05/02/",
            ]
        );
    }
}
