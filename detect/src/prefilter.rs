//! Which raw records some rule may match, decided before parsing them.
//!
//! Replaying a log file or reading one on Lambda used to build a full
//! `serde_json::Value` for every record, though nearly all of them are reads
//! no rule looks at. The rules already say which `eventSource`/`eventName`
//! (and `errorCode`) values they can match: [`crate::pattern::alternatives`]
//! derives that necessary condition for the EventBridge patterns. A
//! [`Prefilter`] keeps it, case-folded like the matcher, and tests it on a
//! handful of top-level keys read from the record's bytes ([`Keys`], a
//! borrowed struct: serde_json skips the rest without building anything).
//! Only records it admits need the full parse and the rules.
//!
//! It is exact in the one direction that matters: a record it refuses can
//! match no loaded rule. Whatever it cannot read (a key that is not a
//! string, a duplicate key, invalid JSON) or that may not be a bare
//! CloudTrail API record at all (an EventBridge envelope, a GuardDuty or
//! Security Hub finding: see [`Keys::foreign`]) is admitted. A rule whose
//! condition pins neither field admits every record.
//!
//! `errorCode`: a record with an error code goes by its `eventSource` and
//! `eventName` alone, as if the rules' errorCode tests were absent (so a
//! pass that re-evaluates failed calls without their error code, or any
//! other handling of it, is covered), and errorCode-based rules (CIS 4.1:
//! `AccessDenied*`, `*UnauthorizedOperation`) admit every record that has
//! one. A record without an error code cannot meet those.

use std::borrow::Cow;

use serde::Deserialize;

use super::matcher::Constraint;
use super::Rule;

/// The top-level keys the prefilter reads from a record's bytes.
///
/// The keys below `foreign` make the record something other than a bare
/// CloudTrail API record for `vigil::sources::classify` (an EventBridge
/// envelope has `detail-type` and `detail`; a bare GuardDuty finding `arn`,
/// `type` and `service`; Security Hub's `SchemaVersion`, `ProductArn` or
/// `Findings`): such a record is always admitted.
#[derive(Debug, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct Keys<'a> {
    #[serde(borrow)]
    pub eventSource: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub eventName: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub errorCode: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub userIdentity: Option<Identity<'a>>,
    /// The matcher also reads `userIdentity.type` from a key with a dot.
    #[serde(rename = "userIdentity.type")]
    dotted_identity_type: Option<serde::de::IgnoredAny>,
    #[serde(rename = "detail-type")]
    detail_type: Option<serde::de::IgnoredAny>,
    detail: Option<serde::de::IgnoredAny>,
    arn: Option<serde::de::IgnoredAny>,
    #[serde(rename = "type")]
    kind: Option<serde::de::IgnoredAny>,
    service: Option<serde::de::IgnoredAny>,
    SchemaVersion: Option<serde::de::IgnoredAny>,
    ProductArn: Option<serde::de::IgnoredAny>,
    Findings: Option<serde::de::IgnoredAny>,
}

/// `userIdentity`, for rules that pin only the identity type (CIS 4.3:
/// root activity). Not an object: the record cannot be read as [`Keys`]
/// and is admitted.
#[derive(Debug, Default, Deserialize)]
pub struct Identity<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
}

impl Keys<'_> {
    /// Whether the record may be another kind of event than a bare
    /// CloudTrail record (see the type's documentation).
    pub fn foreign(&self) -> bool {
        self.dotted_identity_type.is_some()
            || self.detail_type.is_some()
            || self.detail.is_some()
            || self.arn.is_some()
            || self.kind.is_some()
            || self.service.is_some()
            || self.SchemaVersion.is_some()
            || self.ProductArn.is_some()
            || self.Findings.is_some()
    }
}

/// A [`Constraint`] in lower case, as the matcher compares.
#[derive(Debug, Clone, PartialEq)]
enum Pat {
    Exact(String),
    Prefix(String),
    Suffix(String),
    /// Literal pieces between `*`s (EventBridge wildcard syntax, `\*` a star).
    Wildcard(Vec<String>),
}

impl Pat {
    fn new(c: &Constraint) -> Pat {
        let lower = |s: &str| s.to_lowercase();
        match c {
            Constraint::Exact(s) => Pat::Exact(lower(s)),
            Constraint::Prefix(s) => Pat::Prefix(lower(s)),
            Constraint::Suffix(s) => Pat::Suffix(lower(s)),
            Constraint::Wildcard(w) => Pat::Wildcard(wildcard_pieces(&lower(w))),
        }
    }

    /// `value` is already lower case.
    fn holds(&self, value: &str) -> bool {
        match self {
            Pat::Exact(s) => value == s,
            Pat::Prefix(s) => value.starts_with(s.as_str()),
            Pat::Suffix(s) => value.ends_with(s.as_str()),
            Pat::Wildcard(pieces) => wildcard_holds(pieces, value),
        }
    }
}

/// `a*b\*c` into `["a", "b*c"]`, with an empty first/last piece when the
/// pattern starts/ends with `*`.
fn wildcard_pieces(w: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut chars = w.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => pieces.last_mut().map(|p| p.push(n)).unwrap_or_default(),
                None => pieces.last_mut().map(|p| p.push('\\')).unwrap_or_default(),
            },
            '*' => pieces.push(String::new()),
            c => pieces.last_mut().map(|p| p.push(c)).unwrap_or_default(),
        }
    }
    pieces
}

fn wildcard_holds(pieces: &[String], value: &str) -> bool {
    let [first, middle @ .., last] = pieces else {
        return pieces.first().is_some_and(|p| p == value);
    };
    let Some(mut rest) = value.strip_prefix(first.as_str()) else {
        return false;
    };
    for p in middle {
        match rest.find(p.as_str()) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last.as_str())
}

/// One alternative: every field it constrains must hold.
#[derive(Debug, Clone)]
struct Alt {
    /// `None`: any value (or none).
    source: Option<Vec<Pat>>,
    name: Option<Vec<Pat>>,
    identity: Option<Vec<Pat>>,
    /// The alternative needs an `errorCode`: only records with one.
    needs_error: bool,
}

fn any_holds(pats: &Option<Vec<Pat>>, value: &str) -> bool {
    pats.as_ref()
        .is_none_or(|ps| ps.iter().any(|p| p.holds(value)))
}

/// What a record's raw bytes say (see [`Prefilter::screen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// No loaded rule can match it: skip the parse.
    Skip,
    /// Some rule may match it, or it could not be told: parse it.
    Parse,
}

/// The records some loaded rule may match, from their top-level keys.
#[derive(Debug, Clone)]
pub struct Prefilter {
    alts: Vec<Alt>,
    /// Some rule pins neither field: every record is admitted.
    admits_all: bool,
}

impl Prefilter {
    /// The prefilter for exactly `rules` (pass every rule the detector runs).
    pub fn new<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Prefilter {
        let pats = |cs: Option<&std::collections::BTreeSet<Constraint>>| {
            cs.map(|cs| cs.iter().map(Pat::new).collect::<Vec<_>>())
        };
        let alts: Vec<Alt> = super::pattern::alternatives(rules)
            .iter()
            .map(|need| Alt {
                source: pats(need.get("eventSource")),
                name: pats(need.get("eventName")),
                identity: pats(need.get("userIdentity.type")),
                needs_error: need.contains_key("errorCode"),
            })
            .collect();
        let admits_all = alts.iter().any(|a| {
            a.source.is_none() && a.name.is_none() && a.identity.is_none() && !a.needs_error
        });
        Prefilter { alts, admits_all }
    }

    /// Whether every record is admitted (some rule pins neither field).
    pub fn admits_all(&self) -> bool {
        self.admits_all
    }

    /// Reads the keys from `bytes` (one record's JSON text) and decides.
    pub fn screen(&self, bytes: &[u8]) -> Screen {
        if self.admits_all {
            return Screen::Parse;
        }
        match serde_json::from_slice::<Keys<'_>>(bytes) {
            Ok(keys) => self.screen_keys(&keys),
            Err(_) => Screen::Parse,
        }
    }

    /// Decides on keys already read.
    pub fn screen_keys(&self, keys: &Keys<'_>) -> Screen {
        let (Some(source), Some(name)) = (&keys.eventSource, &keys.eventName) else {
            return Screen::Parse;
        };
        if self.admits_all || keys.foreign() {
            return Screen::Parse;
        }
        let errored = keys.errorCode.is_some();
        let identity = keys
            .userIdentity
            .as_ref()
            .and_then(|i| i.kind.as_deref())
            .map(str::to_lowercase);
        let record = Lowered {
            source: &source.to_lowercase(),
            name: &name.to_lowercase(),
            identity: identity.as_deref(),
            errored,
        };
        let admitted = self.admits(&record);
        match admitted {
            true => Screen::Parse,
            false => Screen::Skip,
        }
    }

    fn admits(&self, r: &Lowered<'_>) -> bool {
        self.alts.iter().any(|a| {
            (r.errored || !a.needs_error)
                && any_holds(&a.source, r.source)
                && any_holds(&a.name, r.name)
                && match (&a.identity, r.identity) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(_), Some(kind)) => any_holds(&a.identity, kind),
                }
        })
    }
}

/// A record's keys in lower case, as the matcher compares them.
struct Lowered<'a> {
    source: &'a str,
    name: &'a str,
    identity: Option<&'a str>,
    errored: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "title: t\nlogsource: {product: aws, service: cloudtrail}\nlevel: high\n";

    fn rule(detection: &str) -> Rule {
        Rule::parse("t.yml", &format!("{HEAD}detection:\n{detection}")).unwrap()
    }

    fn screen(p: &Prefilter, record: &str) -> Screen {
        p.screen(record.as_bytes())
    }

    #[test]
    fn skips_only_what_no_rule_names() {
        let p = Prefilter::new(&[rule(
            "  s:\n    eventSource: cloudtrail.amazonaws.com\n    eventName: [StopLogging, DeleteTrail]\n  condition: s\n",
        )]);
        assert!(!p.admits_all());
        let stop = r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging"}"#;
        assert_eq!(screen(&p, stop), Screen::Parse);
        // Sigma compares case-insensitively; so does the prefilter.
        let upper = r#"{"eventSource":"CLOUDTRAIL.amazonaws.com","eventName":"stoplogging"}"#;
        assert_eq!(screen(&p, upper), Screen::Parse);
        // Escapes in the key are read as the parser reads them.
        let escaped =
            r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"Stop\u004cogging"}"#;
        assert_eq!(screen(&p, escaped), Screen::Parse);
        let read = r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","x":{"y":[1]}}"#;
        assert_eq!(screen(&p, read), Screen::Skip);
        let other_source = r#"{"eventSource":"s3.amazonaws.com","eventName":"StopLogging"}"#;
        assert_eq!(screen(&p, other_source), Screen::Skip);
    }

    #[test]
    fn what_cannot_be_told_is_parsed() {
        let p = Prefilter::new(&[rule("  s:\n    eventName: StopLogging\n  condition: s\n")]);
        for record in [
            r#"{"eventSource":"s3.amazonaws.com","eventName":7}"#,
            r#"{"eventSource":"s3.amazonaws.com"}"#,
            r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","eventName":"StopLogging"}"#,
            r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject""#,
            r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","detail-type":"x","detail":{}}"#,
            r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","arn":"a","type":"t"}"#,
            r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","SchemaVersion":"1"}"#,
            r#"[1]"#,
            "not json",
        ] {
            assert_eq!(screen(&p, record), Screen::Parse, "{record}");
        }
    }

    #[test]
    fn error_code_rules_admit_only_failed_calls() {
        let p = Prefilter::new(&[
            rule("  s:\n    errorCode|startswith: AccessDenied\n  condition: s\n"),
            rule("  s:\n    eventName: StopLogging\n    errorCode: null\n  condition: s\n"),
        ]);
        let denied = r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","errorCode":"AccessDenied"}"#;
        assert_eq!(screen(&p, denied), Screen::Parse);
        // Any error code: the prefilter does not judge error codes.
        let throttled = r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","errorCode":"Throttling"}"#;
        assert_eq!(screen(&p, throttled), Screen::Parse);
        let fine = r#"{"eventSource":"s3.amazonaws.com","eventName":"GetObject","errorCode":null}"#;
        assert_eq!(screen(&p, fine), Screen::Skip);
        // A failed StopLogging goes by its name.
        let stop = r#"{"eventSource":"cloudtrail.amazonaws.com","eventName":"StopLogging","errorCode":"X"}"#;
        assert_eq!(screen(&p, stop), Screen::Parse);
    }

    #[test]
    fn wildcards_prefixes_and_unpinned_rules() {
        let p = Prefilter::new(&[
            rule("  s:\n    eventName|startswith: Delete\n    eventSource|endswith: '.iam.amazonaws.com'\n  condition: s\n"),
            rule("  s:\n    eventName|contains: Policy\n  condition: s\n"),
        ]);
        let r = |s: &str, n: &str| format!(r#"{{"eventSource":"{s}","eventName":"{n}"}}"#);
        assert_eq!(
            screen(&p, &r("x.iam.amazonaws.com", "DeleteUser")),
            Screen::Parse
        );
        assert_eq!(
            screen(&p, &r("iam.amazonaws.com", "DeleteUser")),
            Screen::Skip
        );
        assert_eq!(
            screen(&p, &r("s3.amazonaws.com", "PutBucketPolicy")),
            Screen::Parse
        );
        assert_eq!(
            screen(&p, &r("s3.amazonaws.com", "GetObject")),
            Screen::Skip
        );
        let any = Prefilter::new(&[rule("  s:\n    userAgent|contains: x\n  condition: s\n")]);
        assert!(any.admits_all());
        assert_eq!(
            screen(&any, &r("s3.amazonaws.com", "GetObject")),
            Screen::Parse
        );
    }

    #[test]
    fn identity_type_rules_admit_only_that_identity() {
        let p = Prefilter::new(&[rule(
            "  s:\n    userIdentity.type: Root\n  f:\n    eventType: AwsServiceEvent\n  condition: s and not f\n",
        )]);
        assert!(!p.admits_all());
        let r = |identity: &str| {
            format!(
                r#"{{"eventSource":"s3.amazonaws.com","eventName":"ListBuckets","userIdentity":{identity}}}"#
            )
        };
        assert_eq!(
            screen(&p, &r(r#"{"type":"root","arn":"x"}"#)),
            Screen::Parse
        );
        assert_eq!(screen(&p, &r(r#"{"type":"AssumedRole"}"#)), Screen::Skip);
        assert_eq!(screen(&p, &r(r#"{"arn":"x"}"#)), Screen::Skip);
        // What the matcher reads another way is parsed.
        assert_eq!(screen(&p, &r(r#"[{"type":"Root"}]"#)), Screen::Parse);
        let dotted = r#"{"eventSource":"s","eventName":"n","userIdentity.type":"Root"}"#;
        assert_eq!(screen(&p, dotted), Screen::Parse);
    }

    #[test]
    fn wildcard_pieces_match_like_globs() {
        let p = |w: &str, v: &str| wildcard_holds(&wildcard_pieces(w), v);
        assert!(p("*policy*", "putbucketpolicy"));
        assert!(p("a*b*c", "abc") && p("a*b*c", "axxbyyc"));
        assert!(!p("a*b*c", "acb") && !p("ab*ba", "aba"));
        assert!(p("x\\*y", "x*y") && !p("x\\*y", "xzy"));
        assert!(p("exact", "exact") && !p("exact", "exactly"));
    }
}
