//! Sigma's time modifiers (`|minute`, `|hour`, `|day`, `|week`, `|month`,
//! `|year`, Sigma 2.1): the number one part of a timestamp field holds.
//!
//! The specification (modifiers appendix 2.1.0) gives the ranges — minute
//! 0–59, hour 0–23, day of the month 1–31, week 1–52, month 1–12, the year —
//! and warns that the modifiers are "not designed to handle timezone or
//! format conversions". So parts are read as the timestamp writes them, in
//! its own offset (CloudTrail writes UTC: `2024-01-15T03:21:09Z`). The week
//! is the ISO 8601 week, as pySigma's test backend (`%V`), ClickHouse
//! (`toISOWeek`) and DuckDB read it; ISO years have 52 or 53 weeks, so 53 is
//! accepted too.
//!
//! Timestamps read: RFC 3339 (`2024-01-15T03:21:09Z`, fractions, offsets, a
//! space for the `T`), the same without an offset, and a bare date (`2024-01-15`, which has a day,
//! week, month and year but no hour or minute). Anything else — epoch
//! numbers, CloudTrail's `Jan 15, 2024, 4:21:09 AM` in a few response
//! elements — has no parts, and does not match.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};

/// Which part of a timestamp a time modifier reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimePart {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl TimePart {
    /// The modifier of that name.
    pub(crate) fn from_modifier(name: &str) -> Option<TimePart> {
        Some(match name {
            "minute" => TimePart::Minute,
            "hour" => TimePart::Hour,
            "day" => TimePart::Day,
            "week" => TimePart::Week,
            "month" => TimePart::Month,
            "year" => TimePart::Year,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            TimePart::Minute => "minute",
            TimePart::Hour => "hour",
            TimePart::Day => "day",
            TimePart::Week => "week",
            TimePart::Month => "month",
            TimePart::Year => "year",
        }
    }

    /// The values the part can take: a rule value outside them could never
    /// match, so it is refused at load.
    pub(crate) fn range(self) -> std::ops::RangeInclusive<i64> {
        match self {
            TimePart::Minute => 0..=59,
            TimePart::Hour => 0..=23,
            TimePart::Day => 1..=31,
            TimePart::Week => 1..=53,
            TimePart::Month => 1..=12,
            // chrono's dates span about ±262 000 years.
            TimePart::Year => -262_000..=262_000,
        }
    }

    /// This part of the timestamp `text`, or `None` when `text` is not a
    /// timestamp (or, for minute and hour, a bare date).
    pub(crate) fn of(self, text: &str) -> Option<i64> {
        let text = text.trim();
        let stamp = DateTime::parse_from_rfc3339(text)
            .map(|d| d.naive_local())
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"));
        let (date, time) = match stamp {
            Ok(s) => (s.date(), Some(s.time())),
            Err(_) => (NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?, None),
        };
        Some(i64::from(match self {
            TimePart::Minute => time?.minute(),
            TimePart::Hour => time?.hour(),
            TimePart::Day => date.day(),
            TimePart::Week => date.iso_week().week(),
            TimePart::Month => date.month(),
            TimePart::Year => return Some(i64::from(date.year())),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_cloudtrail_event_time() {
        let t = "2024-01-15T03:21:09Z";
        let parts: Vec<Option<i64>> = [
            TimePart::Minute,
            TimePart::Hour,
            TimePart::Day,
            TimePart::Week,
            TimePart::Month,
            TimePart::Year,
        ]
        .iter()
        .map(|p| p.of(t))
        .collect();
        // 2024-01-15 is the Monday that starts ISO week 3.
        assert_eq!(
            parts,
            [Some(21), Some(3), Some(15), Some(3), Some(1), Some(2024)]
        );
    }

    #[test]
    fn iso_weeks_cross_the_year() {
        // ISO 8601: 2021-01-03 (a Sunday) is in week 53 of 2020; 2024-12-30
        // (a Monday) starts week 1 of 2025.
        assert_eq!(TimePart::Week.of("2021-01-03T12:00:00Z"), Some(53));
        assert_eq!(TimePart::Week.of("2024-12-30T00:00:00Z"), Some(1));
        assert_eq!(TimePart::Year.of("2024-12-30T00:00:00Z"), Some(2024));
    }

    #[test]
    fn parts_are_read_as_written() {
        // No timezone conversion (the specification's warning): 23:30 at
        // UTC-5 is hour 23, though it is 04:30 UTC.
        assert_eq!(TimePart::Hour.of("2024-01-15T23:30:00-05:00"), Some(23));
        assert_eq!(TimePart::Minute.of("2024-01-15T23:30:00.123456Z"), Some(30));
        assert_eq!(TimePart::Hour.of("2024-01-15T07:00:00"), Some(7));
        assert_eq!(TimePart::Hour.of(" 2024-01-15 08:00:00Z "), Some(8));
        assert_eq!(TimePart::Day.of("2024-02-29"), Some(29));
        assert_eq!(TimePart::Hour.of("2024-02-29"), None);
    }

    #[test]
    fn other_text_has_no_parts() {
        for text in [
            "",
            "1705288869",
            "Jan 15, 2024, 4:21:09 AM",
            "2024-13-01T00:00:00Z",
            "2024-01-15T25:00:00Z",
            "yesterday",
        ] {
            assert_eq!(TimePart::Day.of(text), None, "{text}");
        }
    }
}
