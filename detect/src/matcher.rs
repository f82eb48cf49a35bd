//! Compiled matchers: what a Sigma detection becomes at cold start.
//!
//! Everything that can be decided once is decided here, so that evaluating a
//! record allocates nothing on the common path: field paths are split into
//! segments, plain strings are lower-cased once (Sigma matches them
//! case-insensitively), wildcard patterns that are really prefix, suffix or
//! substring tests become those tests, regular expressions are compiled, and
//! long lists of exact values become hash sets.
//!
//! Semantics, following the Sigma specification where it speaks and the usual
//! backends where it does not:
//! - A field path is dotted (`userIdentity.type`). Arrays anywhere along the
//!   path fan out: the field matches when any element does. A key that itself
//!   contains dots (`"a.b"`) is found too.
//! - Plain strings match case-insensitively, whole value, with `*` and `?`
//!   wildcards (`\*`, `\?`, `\\` escape them). `|cased` makes them
//!   case-sensitive. Numbers and booleans in the record are compared as their
//!   text (`22` matches `22` and `"22"`); an object or array where a string is
//!   expected is compared as its compact JSON text, so
//!   `requestParameters|contains: '"Allow"'` works on nested CloudTrail JSON.
//! - `null` matches a missing field or JSON `null`. `|exists: true` needs a
//!   present, non-null value.
//! - A list of values is OR; with `|all` every value must match (possibly in
//!   different array elements).
//! - Keywords (a list of plain values under a search identifier, or a key
//!   with an empty field name such as `|all`) search every string, number and
//!   boolean anywhere in the record, as substrings.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use regex::{Regex, RegexBuilder};
use serde_json::Value;

use super::error::RuleErrorKind;
use super::placeholder::{expand, ExpandError, Placeholders, MAX_EXPANSIONS};
use super::timepart::TimePart;

/// Largest compiled regex accepted from a rule (untrusted input).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

// ------------------------------------------------------------------ paths

/// A dotted field path, split once.
#[derive(Debug, Clone)]
pub(crate) struct FieldPath {
    raw: Box<str>,
    segs: Box<[Box<str>]>,
    /// `segs[i..].join(".")`, to find keys that contain dots without allocating.
    tails: Box<[Box<str>]>,
}

impl FieldPath {
    pub(crate) fn parse(raw: &str) -> FieldPath {
        let segs: Vec<Box<str>> = if raw.is_empty() {
            Vec::new()
        } else {
            raw.split('.').map(Box::from).collect()
        };
        let tails = (0..segs.len())
            .map(|i| {
                segs[i..]
                    .iter()
                    .map(|s| &**s)
                    .collect::<Vec<_>>()
                    .join(".")
                    .into_boxed_str()
            })
            .collect();
        FieldPath {
            raw: raw.into(),
            segs: segs.into_boxed_slice(),
            tails,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.raw
    }

    /// The whole record, for keyword searches.
    fn is_anywhere(&self) -> bool {
        self.segs.is_empty()
    }

    /// Calls `f` with every value at this path (`None` where the path is
    /// missing, or ends in an empty array) until `f` returns true. For the
    /// empty path, every scalar leaf of the record.
    pub(crate) fn any<'v, F>(&self, record: &'v Value, f: &mut F) -> bool
    where
        F: FnMut(Option<&'v Value>) -> bool,
    {
        if self.is_anywhere() {
            return any_leaf(record, f);
        }
        self.walk(record, 0, f)
    }

    fn walk<'v, F>(&self, v: &'v Value, depth: usize, f: &mut F) -> bool
    where
        F: FnMut(Option<&'v Value>) -> bool,
    {
        if let Value::Array(items) = v {
            if items.is_empty() {
                return f(None);
            }
            return items.iter().any(|item| self.walk(item, depth, f));
        }
        let Some(head) = self.segs.get(depth) else {
            return f(Some(v));
        };
        match v {
            Value::Object(map) => match map.get(&**head) {
                Some(child) => self.walk(child, depth + 1, f),
                None => {
                    if depth + 1 < self.segs.len() {
                        if let Some(child) = map.get(&*self.tails[depth]) {
                            return self.walk(child, self.segs.len(), f);
                        }
                    }
                    f(None)
                }
            },
            _ => f(None),
        }
    }
}

fn any_leaf<'v, F>(v: &'v Value, f: &mut F) -> bool
where
    F: FnMut(Option<&'v Value>) -> bool,
{
    match v {
        Value::Object(map) => map.values().any(|c| any_leaf(c, f)),
        Value::Array(items) => items.iter().any(|c| any_leaf(c, f)),
        Value::Null => false,
        _ => f(Some(v)),
    }
}

// ------------------------------------------------------------------ strings

/// Runs `f` on the text of a scalar (numbers and booleans as JSON writes
/// them, objects and arrays as compact JSON). `None` for null.
fn with_text<R>(v: &Value, f: impl FnOnce(&str) -> R) -> Option<R> {
    match v {
        Value::String(s) => Some(f(s)),
        Value::Bool(b) => Some(f(if *b { "true" } else { "false" })),
        Value::Number(n) => Some(f(&n.to_string())),
        Value::Null => None,
        Value::Object(_) | Value::Array(_) => {
            Some(f(&serde_json::to_string(v).unwrap_or_default()))
        }
    }
}

/// Runs `f` on `s` lower-cased, without allocating for short ASCII strings.
pub(crate) fn with_lowercase<R>(s: &str, f: impl FnOnce(&str) -> R) -> R {
    const N: usize = 96;
    if s.len() <= N && s.is_ascii() {
        let mut buf = [0u8; N];
        let b = &mut buf[..s.len()];
        b.copy_from_slice(s.as_bytes());
        b.make_ascii_lowercase();
        // ASCII in, ASCII out: always valid UTF-8.
        f(std::str::from_utf8(b).unwrap_or_default())
    } else {
        f(&s.to_lowercase())
    }
}

/// `needle` (any case) in `hay`, ASCII case-insensitively.
fn contains_ascii_ci(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return true;
    };
    if hay.len() < needle.len() {
        return false;
    }
    let (lo, up) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    (0..=hay.len() - needle.len()).any(|i| {
        let c = hay[i];
        (c == lo || c == up) && hay[i..i + needle.len()].eq_ignore_ascii_case(needle)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextOp {
    Eq,
    Prefix,
    Suffix,
    Contains,
}

impl TextOp {
    fn exact(self, hay: &str, needle: &str) -> bool {
        match self {
            TextOp::Eq => hay == needle,
            TextOp::Prefix => hay.starts_with(needle),
            TextOp::Suffix => hay.ends_with(needle),
            TextOp::Contains => hay.contains(needle),
        }
    }

    fn ascii_ci(self, hay: &str, needle: &str) -> bool {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        match self {
            TextOp::Eq => h.eq_ignore_ascii_case(n),
            TextOp::Prefix => h.len() >= n.len() && h[..n.len()].eq_ignore_ascii_case(n),
            TextOp::Suffix => h.len() >= n.len() && h[h.len() - n.len()..].eq_ignore_ascii_case(n),
            TextOp::Contains => contains_ascii_ci(h, n),
        }
    }

    /// Case-insensitive test, `needle` in any case.
    fn ci(self, hay: &str, needle: &str) -> bool {
        if hay.is_ascii() && needle.is_ascii() {
            self.ascii_ci(hay, needle)
        } else {
            self.exact(&hay.to_lowercase(), &needle.to_lowercase())
        }
    }
}

#[derive(Debug, Clone)]
enum StrOp {
    Text(TextOp),
    /// `*`: any string at all.
    Any,
    /// Wildcards that are not a simple prefix/suffix/substring test.
    Glob(Regex),
    /// `|re`.
    Re(Regex),
}

/// One compiled string test.
#[derive(Debug, Clone)]
pub(crate) struct StrMatcher {
    op: StrOp,
    /// The literal, lower-cased unless `cased`.
    needle: Box<str>,
    needle_ascii: bool,
    cased: bool,
    /// For an exact test of a number (`fromPort: 22`), the number, so numeric
    /// record values compare without formatting.
    number: Option<f64>,
    /// The same test as an EventBridge pattern constraint, when it has one.
    constraint: Option<Constraint>,
}

impl StrMatcher {
    pub(crate) fn matches(&self, hay: &str) -> bool {
        match &self.op {
            StrOp::Any => true,
            StrOp::Glob(r) | StrOp::Re(r) => r.is_match(hay),
            StrOp::Text(op) => {
                if self.cased {
                    op.exact(hay, &self.needle)
                } else if self.needle_ascii && hay.is_ascii() {
                    op.ascii_ci(hay, &self.needle)
                } else {
                    op.exact(&hay.to_lowercase(), &self.needle)
                }
            }
        }
    }

    fn matches_value(&self, v: &Value) -> bool {
        if let (Value::Number(n), Some(want), StrOp::Text(TextOp::Eq)) = (v, self.number, &self.op)
        {
            return n.as_f64() == Some(want);
        }
        with_text(v, |s| self.matches(s)).unwrap_or(false)
    }

    /// The exact literal (lower-cased unless cased), for hash sets and indexes.
    fn exact_literal(&self) -> Option<&str> {
        matches!(self.op, StrOp::Text(TextOp::Eq)).then_some(&*self.needle)
    }
}

/// What a matcher requires of a string field, in terms EventBridge patterns
/// can express (exact, prefix, suffix and `*`-wildcard), in the rule's own
/// case. Used to derive the EventBridge pattern and the rule index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Constraint {
    Exact(String),
    Prefix(String),
    Suffix(String),
    /// EventBridge `wildcard` syntax: `*` any run, `\*` a literal star.
    Wildcard(String),
}

// ------------------------------------------------------------------ wildcards

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(String),
    Star,
    One,
}

/// Splits a Sigma value into literals and wildcards. `\*`, `\?` and `\\` are
/// escapes; any other backslash is a literal backslash.
fn tokenize(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    lit.push(n);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    out.push(Tok::Lit(std::mem::take(&mut lit)));
                }
                let t = if c == '*' { Tok::Star } else { Tok::One };
                if !(t == Tok::Star && out.last() == Some(&Tok::Star)) {
                    out.push(t);
                }
            }
            _ => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Tok::Lit(lit));
    }
    out
}

fn push_star(toks: &mut Vec<Tok>, front: bool) {
    if front {
        if toks.first() != Some(&Tok::Star) {
            toks.insert(0, Tok::Star);
        }
    } else if toks.last() != Some(&Tok::Star) {
        toks.push(Tok::Star);
    }
}

fn eb_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('*', "\\*")
}

/// Compiles wildcard tokens into the cheapest equivalent test.
fn compile_tokens(toks: Vec<Tok>, cased: bool, field: &str) -> Result<StrMatcher, RuleErrorKind> {
    let simple =
        |op: TextOp, lit: &str, constraint: Constraint| text_matcher(op, lit, constraint, cased);
    Ok(match toks.as_slice() {
        [] => simple(TextOp::Eq, "", Constraint::Exact(String::new())),
        [Tok::Lit(a)] => simple(TextOp::Eq, a, Constraint::Exact(a.clone())),
        [Tok::Star] => StrMatcher {
            op: StrOp::Any,
            needle: "".into(),
            needle_ascii: true,
            cased,
            number: None,
            constraint: Some(Constraint::Wildcard("*".into())),
        },
        [Tok::Lit(a), Tok::Star] => simple(TextOp::Prefix, a, Constraint::Prefix(a.clone())),
        [Tok::Star, Tok::Lit(a)] => simple(TextOp::Suffix, a, Constraint::Suffix(a.clone())),
        [Tok::Star, Tok::Lit(a), Tok::Star] => simple(
            TextOp::Contains,
            a,
            Constraint::Wildcard(format!("*{}*", eb_escape(a))),
        ),
        _ => glob_matcher(&toks, cased, field)?,
    })
}

/// A plain text test (`op` against `lit`, lower-cased unless `cased`).
fn text_matcher(op: TextOp, lit: &str, constraint: Constraint, cased: bool) -> StrMatcher {
    let needle: Box<str> = if cased {
        lit.into()
    } else {
        lit.to_lowercase().into()
    };
    StrMatcher {
        op: StrOp::Text(op),
        needle_ascii: needle.is_ascii(),
        number: (op == TextOp::Eq)
            .then(|| lit.trim().parse::<f64>().ok())
            .flatten()
            .filter(|n| n.is_finite()),
        needle,
        cased,
        constraint: Some(constraint),
    }
}

/// Any other wildcard pattern: an anchored regex, and the EventBridge
/// `wildcard` it needs when it has one (`?` has no EventBridge form).
fn glob_matcher(toks: &[Tok], cased: bool, field: &str) -> Result<StrMatcher, RuleErrorKind> {
    let mut re = String::from("^");
    let mut eb = Some(String::new());
    for t in toks {
        match t {
            Tok::Lit(l) => {
                re.push_str(&regex::escape(l));
                if let Some(e) = eb.as_mut() {
                    e.push_str(&eb_escape(l));
                }
            }
            Tok::Star => {
                re.push_str(".*");
                if let Some(e) = eb.as_mut() {
                    e.push('*');
                }
            }
            Tok::One => {
                re.push('.');
                eb = None; // EventBridge wildcards have no single-character form.
            }
        }
    }
    re.push('$');
    let regex = RegexBuilder::new(&re)
        .case_insensitive(!cased)
        .dot_matches_new_line(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| RuleErrorKind::Regex {
            field: field.into(),
            reason: e.to_string(),
        })?;
    Ok(StrMatcher {
        op: StrOp::Glob(regex),
        needle: "".into(),
        needle_ascii: true,
        cased,
        number: None,
        constraint: eb.map(Constraint::Wildcard),
    })
}

// ------------------------------------------------------------------ values

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// One value of a time modifier: the part equals `want` or, with `op`, is
/// compared with it (`|hour|gte: 22`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TimeTest {
    op: Option<CmpOp>,
    want: i64,
}

impl TimeTest {
    fn holds(self, got: i64) -> bool {
        match self.op {
            None => got == self.want,
            Some(op) => op.holds(got, self.want),
        }
    }
}

impl CmpOp {
    fn holds<T: PartialOrd>(self, got: T, want: T) -> bool {
        match self {
            CmpOp::Gt => got > want,
            CmpOp::Gte => got >= want,
            CmpOp::Lt => got < want,
            CmpOp::Lte => got <= want,
        }
    }
}

/// One value of a field's value list.
#[derive(Debug, Clone)]
pub(crate) enum ValueMatcher {
    /// `null`: missing or JSON null.
    Null,
    Str(StrMatcher),
    /// `|gt` and friends: numbers, or strings that read as numbers.
    Cmp(CmpOp, f64),
    Cidr(IpNet),
    /// `|minute`, `|hour`...: one part of a timestamp, passing any of the
    /// tests. The values of one list share one matcher, so a record's
    /// timestamp is read once, not once per value.
    Time {
        part: TimePart,
        tests: Box<[TimeTest]>,
    },
    /// `|fieldref`: compared with another field of the same record.
    FieldRef {
        path: FieldPath,
        op: TextOp,
        cased: bool,
    },
}

impl ValueMatcher {
    fn matches(&self, leaf: Option<&Value>, record: &Value) -> bool {
        let v = match (self, leaf) {
            (ValueMatcher::Null, None | Some(Value::Null)) => return true,
            (ValueMatcher::Null, _) | (_, None | Some(Value::Null)) => return false,
            (_, Some(v)) => v,
        };
        match self {
            ValueMatcher::Null => false,
            ValueMatcher::Str(s) => s.matches_value(v),
            ValueMatcher::Cmp(op, want) => {
                let got = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                got.is_some_and(|g| op.holds(g, *want))
            }
            ValueMatcher::Time { part, tests } => v
                .as_str()
                .and_then(|s| part.of(s))
                .is_some_and(|got| tests.iter().any(|t| t.holds(got))),
            ValueMatcher::Cidr(net) => v
                .as_str()
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
                .is_some_and(|ip| net.contains(&ip)),
            ValueMatcher::FieldRef { path, op, cased } => with_text(v, |hay| {
                path.any(record, &mut |other| {
                    other
                        .and_then(|o| {
                            with_text(o, |needle| {
                                if *cased {
                                    op.exact(hay, needle)
                                } else {
                                    op.ci(hay, needle)
                                }
                            })
                        })
                        .unwrap_or(false)
                })
            })
            .unwrap_or(false),
        }
    }

    fn constraint(&self) -> Option<Constraint> {
        match self {
            ValueMatcher::Str(s) if s.number.is_none() => s.constraint.clone(),
            _ => None,
        }
    }
}

// ------------------------------------------------------------------ fields

#[derive(Debug, Clone)]
enum FieldKind {
    /// Any value matches (the default for a list).
    Any(Vec<ValueMatcher>),
    /// Many plain exact values: one hash lookup instead of a scan.
    EqSet {
        lowered: HashSet<Box<str>>,
        originals: Vec<String>,
    },
    /// `|all`: each group must match (a group is one value of the rule, or
    /// the variants an encoding modifier made of it).
    All(Vec<Vec<ValueMatcher>>),
    /// `|exists`.
    Exists(bool),
}

/// One `field|modifiers: values` entry of a selection.
#[derive(Debug, Clone)]
pub(crate) struct FieldMatcher {
    path: FieldPath,
    kind: FieldKind,
    /// `|neq`: the entry matches when the rest of it does not (pySigma's
    /// `SigmaNegateModifier`: the whole entry, its value list included, under
    /// a NOT).
    negated: bool,
}

impl FieldMatcher {
    pub(crate) fn path(&self) -> &str {
        self.path.as_str()
    }

    pub(crate) fn matches(&self, record: &Value) -> bool {
        self.matches_unnegated(record) != self.negated
    }

    /// Whether this entry may read one of the top-level `keys`: its path
    /// starts with one, it searches the whole record, or a `|fieldref`
    /// value points at one. Hiding keys it never reads cannot change it.
    pub(crate) fn may_read(&self, keys: &[&str]) -> bool {
        let reads =
            |p: &FieldPath| p.is_anywhere() || p.segs.first().is_some_and(|h| keys.contains(&&**h));
        let by_ref = |values: &[ValueMatcher]| {
            values
                .iter()
                .any(|v| matches!(v, ValueMatcher::FieldRef { path, .. } if reads(path)))
        };
        reads(&self.path)
            || match &self.kind {
                FieldKind::Any(values) => by_ref(values),
                FieldKind::All(groups) => groups.iter().any(|g| by_ref(g)),
                FieldKind::EqSet { .. } | FieldKind::Exists(_) => false,
            }
    }

    fn matches_unnegated(&self, record: &Value) -> bool {
        match &self.kind {
            FieldKind::Any(values) => self.path.any(record, &mut |leaf| {
                values.iter().any(|m| m.matches(leaf, record))
            }),
            FieldKind::EqSet { lowered, .. } => self.path.any(record, &mut |leaf| {
                leaf.and_then(|v| with_text(v, |s| with_lowercase(s, |l| lowered.contains(l))))
                    .unwrap_or(false)
            }),
            FieldKind::All(groups) => groups.iter().all(|group| {
                self.path.any(record, &mut |leaf| {
                    group.iter().any(|m| m.matches(leaf, record))
                })
            }),
            FieldKind::Exists(want) => {
                let found = self
                    .path
                    .any(record, &mut |leaf| leaf.is_some_and(|v| !v.is_null()));
                found == *want
            }
        }
    }

    /// What this entry requires of its field, as EventBridge-expressible
    /// alternatives (any one of them holds whenever the entry matches).
    /// `None` when it cannot be expressed (regex, CIDR, null, numbers...).
    pub(crate) fn constraints(&self) -> Option<Vec<Constraint>> {
        // A negated entry requires no value of its field.
        if self.path.is_anywhere() || self.negated {
            return None;
        }
        let values: &[ValueMatcher] = match &self.kind {
            FieldKind::Any(values) => values,
            FieldKind::EqSet { originals, .. } => {
                return Some(originals.iter().cloned().map(Constraint::Exact).collect())
            }
            // Every group must match, so the first group alone is necessary.
            FieldKind::All(groups) => groups.first()?,
            FieldKind::Exists(_) => return None,
        };
        values.iter().map(ValueMatcher::constraint).collect()
    }

    /// The exact values (lower-cased) this entry requires, for the rule index.
    pub(crate) fn exact_values(&self) -> Option<Vec<Box<str>>> {
        if self.negated {
            return None;
        }
        let values: &[ValueMatcher] = match &self.kind {
            FieldKind::EqSet { lowered, .. } => return Some(lowered.iter().cloned().collect()),
            FieldKind::Any(values) => values,
            FieldKind::All(groups) => groups.first()?,
            FieldKind::Exists(_) => return None,
        };
        values
            .iter()
            .map(|v| match v {
                ValueMatcher::Str(s) => s.exact_literal().map(|l| l.to_lowercase().into()),
                _ => None,
            })
            .collect()
    }
}

// ------------------------------------------------------------------ compiling

/// How the values of one field are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Plain,
    Text(TextOp),
    Re,
    Cidr,
    Cmp(CmpOp),
    Exists,
    FieldRef,
    /// `|minute`, `|hour`...: compared as that part of a timestamp.
    Time(TimePart),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Transform {
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    Windash,
}

#[derive(Debug, Default)]
struct Mods {
    kind: Option<Kind>,
    text: Option<TextOp>,
    all: bool,
    cased: bool,
    expand: bool,
    /// `|neq`.
    negated: bool,
    /// A comparison after a time modifier (`|hour|gte`).
    time_cmp: Option<CmpOp>,
    re_flags: (bool, bool, bool),
    transforms: Vec<Transform>,
}

/// Every modifier this engine knows, for lint and error messages.
pub(crate) const MODIFIERS: &[&str] = &[
    "contains",
    "startswith",
    "endswith",
    "all",
    "cased",
    "re",
    "i",
    "m",
    "s",
    "cidr",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "fieldref",
    "base64",
    "base64offset",
    "utf16le",
    "utf16be",
    "utf16",
    "wide",
    "windash",
    "expand",
    "neq",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
];

fn parse_mods(field: &str, mods: &[&str]) -> Result<Mods, RuleErrorKind> {
    let mut m = Mods::default();
    for &raw in mods {
        m.apply(field, raw)?;
    }
    if !m.transforms.is_empty() && m.kind.is_some_and(|k| !matches!(k, Kind::Text(_))) {
        return Err(field_err(
            field,
            "encoding modifiers only combine with contains/startswith/endswith".into(),
        ));
    }
    if m.kind == Some(Kind::FieldRef) && !m.transforms.is_empty() {
        return Err(field_err(
            field,
            "`fieldref` takes no encoding modifiers".into(),
        ));
    }
    if m.cased && matches!(m.kind, Some(Kind::Time(_))) {
        return Err(field_err(
            field,
            "`cased` does not apply to time modifiers".into(),
        ));
    }
    Ok(m)
}

fn field_err(field: &str, reason: String) -> RuleErrorKind {
    RuleErrorKind::Field {
        field: field.into(),
        reason,
    }
}

impl Mods {
    /// Adds one modifier, in the rule's order (some only follow others).
    fn apply(&mut self, field: &str, raw: &str) -> Result<(), RuleErrorKind> {
        let name = raw.trim().to_ascii_lowercase();
        match name.as_str() {
            "contains" => self.set_text(TextOp::Contains, field, &name)?,
            "startswith" => self.set_text(TextOp::Prefix, field, &name)?,
            "endswith" => self.set_text(TextOp::Suffix, field, &name)?,
            "all" => self.all = true,
            "cased" => self.cased = true,
            "re" => self.set_kind(Kind::Re, field, &name)?,
            "i" | "m" | "s" => self.set_re_flag(field, &name)?,
            "cidr" => self.set_kind(Kind::Cidr, field, &name)?,
            "exists" => self.set_kind(Kind::Exists, field, &name)?,
            "gt" => self.set_kind(Kind::Cmp(CmpOp::Gt), field, &name)?,
            "gte" => self.set_kind(Kind::Cmp(CmpOp::Gte), field, &name)?,
            "lt" => self.set_kind(Kind::Cmp(CmpOp::Lt), field, &name)?,
            "lte" => self.set_kind(Kind::Cmp(CmpOp::Lte), field, &name)?,
            "fieldref" => {
                if self.kind.is_some_and(|k| !matches!(k, Kind::Text(_))) {
                    return Err(field_err(
                        field,
                        "`fieldref` cannot follow that modifier".into(),
                    ));
                }
                self.kind = Some(Kind::FieldRef);
            }
            "base64" => self.transforms.push(Transform::Base64),
            "base64offset" => self.transforms.push(Transform::Base64Offset),
            "utf16le" | "wide" => self.transforms.push(Transform::Utf16Le),
            "utf16be" => self.transforms.push(Transform::Utf16Be),
            "utf16" => self.transforms.push(Transform::Utf16),
            "windash" => self.transforms.push(Transform::Windash),
            "expand" => self.expand = true,
            "neq" => self.negated = true,
            _ => {
                if let Some(part) = TimePart::from_modifier(&name) {
                    return self.set_time(part, field);
                }
                return Err(RuleErrorKind::UnknownModifier {
                    field: field.into(),
                    modifier: raw.into(),
                });
            }
        }
        Ok(())
    }

    /// `contains`, `startswith` or `endswith`: at most one of them.
    fn set_text(&mut self, op: TextOp, field: &str, name: &str) -> Result<(), RuleErrorKind> {
        if self.text.is_some_and(|t| t != op) {
            return Err(field_err(
                field,
                format!("`{name}` cannot be combined with another of contains/startswith/endswith"),
            ));
        }
        self.text = Some(op);
        self.set_kind(Kind::Text(op), field, name)
    }

    /// A time modifier: the first modifier that says how values compare,
    /// which only a comparison may follow (pySigma applies `gte` to the
    /// number `hour` makes, and refuses the other order).
    fn set_time(&mut self, part: TimePart, field: &str) -> Result<(), RuleErrorKind> {
        let reason = match self.kind {
            None => {
                self.kind = Some(Kind::Time(part));
                return Ok(());
            }
            Some(Kind::Cmp(_)) => format!(
                "`{}` goes before the comparison (`|{0}|gte`, not `|gte|{0}`)",
                part.name()
            ),
            Some(_) => format!(
                "modifier `{}` cannot be combined with an earlier one",
                part.name()
            ),
        };
        Err(field_err(field, reason))
    }

    /// One kind of comparison per field; a text modifier may follow `fieldref`
    /// (which stays the kind), a comparison may follow a time modifier.
    fn set_kind(&mut self, k: Kind, field: &str, name: &str) -> Result<(), RuleErrorKind> {
        if let (Some(Kind::Time(_)), Kind::Cmp(op), None) = (self.kind, k, self.time_cmp) {
            self.time_cmp = Some(op);
            return Ok(());
        }
        match self.kind {
            Some(prev) if prev != k && !(prev == Kind::FieldRef && matches!(k, Kind::Text(_))) => {
                Err(field_err(
                    field,
                    format!("modifier `{name}` cannot be combined with an earlier one"),
                ))
            }
            _ => {
                if self.kind != Some(Kind::FieldRef) {
                    self.kind = Some(k);
                }
                Ok(())
            }
        }
    }

    /// `i`, `m` or `s`: flags of an earlier `re`.
    fn set_re_flag(&mut self, field: &str, name: &str) -> Result<(), RuleErrorKind> {
        if self.kind != Some(Kind::Re) {
            return Err(field_err(field, format!("`{name}` only follows `re`")));
        }
        match name {
            "i" => self.re_flags.0 = true,
            "m" => self.re_flags.1 = true,
            _ => self.re_flags.2 = true,
        }
        Ok(())
    }
}

/// A YAML scalar as text, or `None` for null. Nested values are errors.
fn scalar_text(field: &str, v: &serde_yaml::Value) -> Result<Option<String>, RuleErrorKind> {
    Ok(match v {
        serde_yaml::Value::Null => None,
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Tagged(t) => return scalar_text(field, &t.value),
        serde_yaml::Value::Sequence(_) | serde_yaml::Value::Mapping(_) => {
            return Err(RuleErrorKind::Field {
                field: field.into(),
                reason: "values must be strings, numbers, booleans or null".into(),
            })
        }
    })
}

fn utf16(s: &str, le: bool) -> Vec<u8> {
    s.encode_utf16()
        .flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() })
        .collect()
}

/// Standard base64 with padding (the alphabet Sigma's `base64` modifiers use).
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The three base64 forms of `bytes` at offsets 0, 1 and 2 of a longer
/// encoded string, trimmed to the characters that do not depend on the
/// surrounding bytes (Sigma's `base64offset`).
fn b64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    (0..3)
        .filter_map(|i| {
            let mut padded = vec![b' '; i];
            padded.extend_from_slice(bytes);
            let enc = b64(&padded);
            let end_trim = END[(bytes.len() + i) % 3];
            let start = START[i];
            let end = enc.len().checked_sub(end_trim)?;
            enc.get(start..end).map(str::to_string)
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Windows command-line dash variants: `-` and `/` at a word start replaced
/// by each of `-`, `/`, en dash, em dash and horizontal bar.
fn windash(s: &str) -> Vec<String> {
    const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
    let mut out: Vec<String> = DASHES
        .iter()
        .map(|d| {
            let mut prev_space = true;
            s.chars()
                .map(|c| {
                    let swap = prev_space && (c == '-' || c == '/');
                    prev_space = c.is_whitespace();
                    if swap {
                        *d
                    } else {
                        c
                    }
                })
                .collect()
        })
        .collect();
    out.dedup();
    out.sort();
    out.dedup();
    out
}

/// Applies the encoding modifiers: one value becomes one or more literal
/// strings (`true` in the second place: no wildcards any more).
fn transform(value: String, transforms: &[Transform]) -> Vec<(String, bool)> {
    let mut strings = vec![(value, false)];
    let mut bytes: Option<Vec<Vec<u8>>> = None;
    for t in transforms {
        match t {
            Transform::Windash => {
                strings = strings
                    .into_iter()
                    .flat_map(|(s, lit)| windash(&s).into_iter().map(move |v| (v, lit)))
                    .collect();
            }
            Transform::Utf16Le | Transform::Utf16Be | Transform::Utf16 => {
                bytes = Some(
                    strings
                        .iter()
                        .map(|(s, _)| match t {
                            Transform::Utf16Le => utf16(s, true),
                            Transform::Utf16Be => utf16(s, false),
                            _ => {
                                let mut b = vec![0xff, 0xfe];
                                b.extend(utf16(s, true));
                                b
                            }
                        })
                        .collect(),
                );
            }
            Transform::Base64 | Transform::Base64Offset => {
                let input: Vec<Vec<u8>> = bytes.take().unwrap_or_else(|| {
                    strings
                        .iter()
                        .map(|(s, _)| s.clone().into_bytes())
                        .collect()
                });
                strings = input
                    .iter()
                    .flat_map(|b| {
                        if *t == Transform::Base64 {
                            vec![b64(b)]
                        } else {
                            b64_offsets(b)
                        }
                    })
                    .map(|s| (s, true))
                    .collect();
            }
        }
    }
    strings
}

/// Compiles one `field|mods: values` entry. `keyword`: the entry searches the
/// whole record (keyword lists), where plain values are substrings.
pub(crate) fn compile_field(
    key: &str,
    values: &serde_yaml::Value,
    keyword: bool,
    placeholders: &Placeholders,
) -> Result<FieldMatcher, RuleErrorKind> {
    let mut parts = key.split('|');
    let field = parts.next().unwrap_or_default().trim();
    let mods: Vec<&str> = parts.collect();
    let shown = if field.is_empty() {
        "<keywords>"
    } else {
        field
    };
    let mut m = parse_mods(shown, &mods)?;
    let keyword = keyword || field.is_empty();
    if keyword && m.kind.is_none() {
        m.kind = Some(Kind::Text(TextOp::Contains));
        m.text = Some(TextOp::Contains);
    }
    let raw = value_list(shown, values)?;
    let path = FieldPath::parse(field);
    let negated = m.negated;

    if m.kind == Some(Kind::Exists) {
        let kind = FieldKind::Exists(exists_wanted(shown, &raw)?);
        return Ok(FieldMatcher {
            path,
            kind,
            negated,
        });
    }

    let mut groups: Vec<Vec<ValueMatcher>> = Vec::with_capacity(raw.len());
    for value in raw {
        let Some(value) = value else {
            if m.kind.is_some() || !m.transforms.is_empty() || keyword {
                return Err(field_err(shown, "null cannot take modifiers".into()));
            }
            groups.push(vec![ValueMatcher::Null]);
            continue;
        };
        // The values a placeholder stands for are alternatives of this one
        // value (OR), also under `|all`.
        let mut group = Vec::new();
        for v in expanded(value, &m, shown, placeholders)? {
            group.extend(value_group(v, &m, shown)?);
        }
        if group.is_empty() {
            return Err(field_err(shown, "a value encodes to nothing".into()));
        }
        groups.push(group);
    }

    let kind = if m.all && groups.len() > 1 {
        FieldKind::All(groups)
    } else {
        let values = merge_time(groups.into_iter().flatten().collect());
        eq_set(&values).unwrap_or(FieldKind::Any(values))
    };
    Ok(FieldMatcher {
        path,
        kind,
        negated,
    })
}

/// With `|expand`, every value `value` stands for once its placeholders are
/// replaced; without it, `value` itself (a `%` is then literal).
fn expanded(
    value: String,
    m: &Mods,
    shown: &str,
    placeholders: &Placeholders,
) -> Result<Vec<String>, RuleErrorKind> {
    if !m.expand {
        return Ok(vec![value]);
    }
    expand(&value, placeholders).map_err(|e| match e {
        ExpandError::Unknown(name) => RuleErrorKind::UnknownPlaceholder {
            field: shown.into(),
            name,
        },
        ExpandError::TooMany => field_err(
            shown,
            format!("placeholders expand `{value}` to more than {MAX_EXPANSIONS} values"),
        ),
    })
}

/// A field's values as text (`None` for null): a list, or one value.
fn value_list(
    shown: &str,
    values: &serde_yaml::Value,
) -> Result<Vec<Option<String>>, RuleErrorKind> {
    Ok(match values {
        serde_yaml::Value::Sequence(items) => {
            if items.is_empty() {
                return Err(field_err(shown, "empty value list".into()));
            }
            items
                .iter()
                .map(|v| scalar_text(shown, v))
                .collect::<Result<_, _>>()?
        }
        v => vec![scalar_text(shown, v)?],
    })
}

/// `|exists`: its one value, true or false.
fn exists_wanted(shown: &str, raw: &[Option<String>]) -> Result<bool, RuleErrorKind> {
    let [Some(v)] = raw else {
        return Err(field_err(
            shown,
            "`exists` takes one value, true or false".into(),
        ));
    };
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(field_err(shown, "`exists` takes true or false".into())),
    }
}

/// The matchers one value of the rule becomes (several when an encoding
/// modifier makes variants of it).
fn value_group(value: String, m: &Mods, shown: &str) -> Result<Vec<ValueMatcher>, RuleErrorKind> {
    Ok(match m.kind.unwrap_or(Kind::Plain) {
        Kind::Plain | Kind::Text(_) => text_values(value, m, shown)?,
        Kind::Re => vec![regex_value(&value, m.re_flags, shown)?],
        Kind::Cidr => {
            let v = value.trim();
            let net = v
                .parse::<IpNet>()
                .or_else(|_| v.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| field_err(shown, format!("`{v}` is not a CIDR range")))?;
            vec![ValueMatcher::Cidr(net)]
        }
        Kind::Cmp(op) => {
            let n = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| field_err(shown, format!("`{value}` is not a number")))?;
            vec![ValueMatcher::Cmp(op, n)]
        }
        Kind::Time(part) => vec![time_value(&value, part, m.time_cmp, shown)?],
        Kind::FieldRef => vec![ValueMatcher::FieldRef {
            path: FieldPath::parse(value.trim()),
            op: m.text.unwrap_or(TextOp::Eq),
            cased: m.cased,
        }],
        Kind::Exists => unreachable!("handled by compile_field"),
    })
}

/// A plain or `contains`/`startswith`/`endswith` value, after its encoding
/// modifiers: wildcard tokens, starred as the text modifier says.
fn text_values(value: String, m: &Mods, shown: &str) -> Result<Vec<ValueMatcher>, RuleErrorKind> {
    transform(value, &m.transforms)
        .into_iter()
        .map(|(s, literal)| {
            let mut toks = if literal {
                if s.is_empty() {
                    Vec::new()
                } else {
                    vec![Tok::Lit(s)]
                }
            } else {
                tokenize(&s)
            };
            match m.text {
                Some(TextOp::Contains) => {
                    push_star(&mut toks, true);
                    push_star(&mut toks, false);
                }
                Some(TextOp::Prefix) => push_star(&mut toks, false),
                Some(TextOp::Suffix) => push_star(&mut toks, true),
                _ => {}
            }
            compile_tokens(toks, m.cased, shown).map(ValueMatcher::Str)
        })
        .collect()
}

/// A time modifier's value: a whole number the part can hold.
fn time_value(
    value: &str,
    part: TimePart,
    op: Option<CmpOp>,
    shown: &str,
) -> Result<ValueMatcher, RuleErrorKind> {
    let range = part.range();
    let want = value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            field_err(
                shown,
                format!(
                    "`{value}` is not a valid {} (a whole number from {} to {})",
                    part.name(),
                    range.start(),
                    range.end()
                ),
            )
        })?;
    Ok(ValueMatcher::Time {
        part,
        tests: Box::new([TimeTest { op, want }]),
    })
}

/// The time matchers of one list as one (they share the part: a field has
/// one kind), so each record's timestamp is parsed once per entry.
fn merge_time(values: Vec<ValueMatcher>) -> Vec<ValueMatcher> {
    let mut merged: Option<(TimePart, Vec<TimeTest>)> = None;
    for v in &values {
        let ValueMatcher::Time { part, tests } = v else {
            return values;
        };
        merged
            .get_or_insert_with(|| (*part, Vec::new()))
            .1
            .extend(tests.iter().copied());
    }
    match merged {
        Some((part, tests)) => vec![ValueMatcher::Time {
            part,
            tests: tests.into_boxed_slice(),
        }],
        None => values,
    }
}

/// A `|re` value, with its `i`, `m` and `s` flags.
fn regex_value(
    value: &str,
    (i, mline, s): (bool, bool, bool),
    shown: &str,
) -> Result<ValueMatcher, RuleErrorKind> {
    let regex = RegexBuilder::new(value)
        .case_insensitive(i)
        .multi_line(mline)
        .dot_matches_new_line(s)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| RuleErrorKind::Regex {
            field: shown.into(),
            reason: e.to_string(),
        })?;
    Ok(ValueMatcher::Str(StrMatcher {
        op: StrOp::Re(regex),
        needle: "".into(),
        needle_ascii: true,
        cased: true,
        number: None,
        constraint: None,
    }))
}

/// Many case-insensitive exact values become one hash set.
fn eq_set(values: &[ValueMatcher]) -> Option<FieldKind> {
    const MIN: usize = 5;
    if values.len() < MIN {
        return None;
    }
    let mut lowered = HashSet::with_capacity(values.len());
    let mut originals = Vec::with_capacity(values.len());
    for v in values {
        let ValueMatcher::Str(s) = v else { return None };
        if s.cased || s.number.is_some() {
            return None;
        }
        let lit = s.exact_literal()?;
        let Some(Constraint::Exact(orig)) = &s.constraint else {
            return None;
        };
        lowered.insert(Box::from(lit));
        originals.push(orig.clone());
    }
    Some(FieldKind::EqSet { lowered, originals })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(key: &str, yaml: &str) -> Result<FieldMatcher, RuleErrorKind> {
        compile_field(
            key,
            &serde_yaml::from_str(yaml).unwrap(),
            false,
            &Placeholders::new(),
        )
    }

    fn field(key: &str, yaml: &str) -> FieldMatcher {
        compile(key, yaml).unwrap()
    }

    #[test]
    fn wildcards_compile_to_the_cheapest_test() {
        let m = |k: &str, v: &str| field(k, v).constraints().unwrap();
        assert_eq!(m("a", "Foo"), vec![Constraint::Exact("Foo".into())]);
        assert_eq!(m("a", "Foo*"), vec![Constraint::Prefix("Foo".into())]);
        assert_eq!(
            m("a|endswith", "Foo"),
            vec![Constraint::Suffix("Foo".into())]
        );
        assert_eq!(
            m("a|contains", "F*o"),
            vec![Constraint::Wildcard("*F*o*".into())]
        );
        assert!(field("a", "F?o").constraints().is_none());
        assert!(field("a|re", "F.o").constraints().is_none());
    }

    #[test]
    fn escapes_are_literals() {
        let f = field("a", r"x\*y");
        assert!(f.matches(&json!({"a": "x*y"})));
        assert!(!f.matches(&json!({"a": "xzy"})));
        // `\*` is a literal star: the backslash is the escape.
        let f = field("a", r"C:\Windows\*");
        assert!(f.matches(&json!({"a": r"C:\Windows*"})));
        assert!(!f.matches(&json!({"a": r"C:\Windows\x"})));
        let f = field("a", r"C:\Windows\\*");
        assert!(f.matches(&json!({"a": r"C:\Windows\system32"})));
    }

    #[test]
    fn base64_and_offsets() {
        let f = field("a|base64", "hello");
        assert!(f.matches(&json!({"a": "aGVsbG8="})));
        let f = field("a|base64offset|contains", "http://");
        // "http://" at offsets 0, 1 and 2 inside longer base64 text.
        for encoded in [b64(b"http://x"), b64(b"ahttp://x"), b64(b"abhttp://x")] {
            assert!(f.matches(&json!({ "a": encoded })), "{encoded}");
        }
        assert!(!f.matches(&json!({"a": b64(b"ftp://x")})));
    }

    #[test]
    fn windash_variants() {
        let f = field("a|windash|contains", " -enc ");
        assert!(f.matches(&json!({"a": "powershell /enc abc"})));
        assert!(f.matches(&json!({"a": "powershell \u{2013}enc abc"})));
        assert!(!f.matches(&json!({"a": "powershell enc abc"})));
    }

    #[test]
    fn bad_modifiers_are_typed_errors() {
        let unknown = |key: &str| matches!(compile(key, "x"), Err(RuleErrorKind::UnknownModifier { modifier, .. }) if key.ends_with(&*modifier));
        assert!(unknown("a|bogus"));
        // Near misses of real modifiers are not guessed at.
        assert!(unknown("a|ne"));
        assert!(unknown("a|hours"));
        assert!(unknown("a|not"));
        let field_error = |key: &str, value: &str| {
            matches!(compile(key, value), Err(RuleErrorKind::Field { .. }))
        };
        assert!(field_error("a|contains|startswith", "x"));
        assert!(field_error("a|cidr", "x"));
        assert!(field_error("a|i", "x"));
        assert!(matches!(
            compile("a|re", "'('"),
            Err(RuleErrorKind::Regex { .. })
        ));
        assert!(matches!(
            compile("a|expand", "'%x%'"),
            Err(RuleErrorKind::UnknownPlaceholder { field, name }) if field == "a" && name == "x"
        ));
        // Time modifiers take whole numbers in their range, and only a
        // comparison after them.
        assert!(field_error("a|hour", "x"));
        assert!(field_error("a|hour", "24"));
        assert!(field_error("a|minute", "-1"));
        assert!(field_error("a|day", "0"));
        assert!(field_error("a|week", "54"));
        assert!(field_error("a|month", "13"));
        assert!(field_error("a|hour", "2.5"));
        assert!(field_error("a|gte|hour", "3"));
        assert!(field_error("a|hour|contains", "3"));
        assert!(field_error("a|contains|hour", "3"));
        assert!(field_error("a|hour|minute", "3"));
        assert!(field_error("a|hour|gte|lt", "3"));
        assert!(field_error("a|hour|cased", "3"));
        assert!(field_error("a|hour|base64", "3"));
        assert!(field_error("a|hour|re", "3"));
        assert!(field_error("a|hour|cidr", "3"));
        assert!(field_error("a|hour|fieldref", "3"));
    }

    #[test]
    fn a_list_of_time_values_reads_the_timestamp_once() {
        let f = field("t|hour", "[22, 23, 0]");
        let FieldKind::Any(values) = &f.kind else {
            panic!("{f:?}")
        };
        assert!(
            matches!(values.as_slice(), [ValueMatcher::Time { tests, .. }] if tests.len() == 3)
        );
        assert!(f.matches(&json!({"t": "2024-07-16T23:10:00Z"})));
        assert!(!f.matches(&json!({"t": "2024-07-16T21:10:00Z"})));
    }

    #[test]
    fn dotted_keys_and_lowercase_helper() {
        let f = field("a.b.c", "x");
        assert!(f.matches(&json!({"a": {"b.c": "X"}})));
        assert!(f.matches(&json!({"a.b.c": "x"})));
        assert!(!f.matches(&json!({"a": {"b": "x"}})));
        with_lowercase("AbC", |s| assert_eq!(s, "abc"));
        with_lowercase(&"É".repeat(100), |s| assert!(s.starts_with('é')));
    }
}
