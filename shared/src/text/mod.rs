//! Making untrusted event text safe for the places alerts go.
//!
//! User agents, bucket names, tags and descriptions come from whoever made the
//! API call: an attacker chooses them. A renderer takes event text as
//! [`Untrusted`] and gets it out only as a channel's [`Safe`] text: [`Plain`]
//! (email, PagerDuty, subjects) or [`Markdown`] (Slack mrkdwn, Chatbot
//! client-markdown). The email and Chatbot writers accept nothing else, so
//! raw event text cannot reach them by mistake. Every way out removes
//! control, bidi, zero-width and line-separator characters and defangs URLs
//! ([`link::defang`]); only a console URL built from validated parts
//! ([`link::is_console_url`]) stays a live link.

pub(crate) mod link;

use std::fmt;
use std::marker::PhantomData;

/// Event text, on its way to an output. The only ways out are the
/// per-channel methods below.
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a>(&'a str);

impl<'a> Untrusted<'a> {
    pub fn new(s: &'a str) -> Untrusted<'a> {
        Untrusted(s)
    }

    /// One line of plain text: at most `max` characters, no line breaks.
    pub fn line(self, max: usize) -> Plain {
        Safe::made(defanged(&one_line(self.0, max), max))
    }

    /// Plain text that keeps its line breaks (a description), each line
    /// indented by `indent` so no line can pass for a header line.
    pub fn lines(self, max: usize, indent: &'static str) -> Plain {
        let text = self.0.replace("\r\n", "\n").replace('\r', "\n");
        let cleaned = defanged(strip_controls(&text, true).trim(), max);
        let indented: Vec<String> = cleaned
            .lines()
            .map(|l| format!("{indent}{}", l.trim_end()))
            .collect();
        Safe::made(indented.join("\n"))
    }

    /// An inline code span for Slack mrkdwn or Chatbot client-markdown:
    /// nothing inside is a mention, link or emphasis, and the text cannot
    /// close the span.
    pub fn code(self, max: usize) -> Markdown {
        Safe::made(markdown_code(self.0, max))
    }

    /// Chat text outside a code span (a title, a summary): one line, `&<>`
    /// escaped, no markdown link (`[x](y)` is broken apart), no backticks.
    pub fn chat(self, max: usize) -> Markdown {
        let line = defanged(&one_line(self.0, max), max);
        Safe::made(slack_escape(&line).replace("](", "] (").replace('`', "'"))
    }

    /// An SNS subject: printable ASCII, one line, at most 99 characters.
    pub fn subject(self) -> String {
        sns_subject(&defanged(&one_line(self.0, 400), 400))
    }
}

/// `s` cut to `max` characters, with its URLs defanged (cut again: defanging
/// adds characters, and a cut inside `[.]` is still no link).
fn defanged(s: &str, max: usize) -> String {
    truncate(&link::defang(&truncate(s, max)), max)
}

/// Text safe for the channel `C`: built only from [`Untrusted`]'s methods,
/// literals and numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Safe<C> {
    text: String,
    channel: PhantomData<C>,
}

/// Plain text, for email, PagerDuty and subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlainText {}
/// Slack mrkdwn and Chatbot client-markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatMarkdown {}

pub type Plain = Safe<PlainText>;
pub type Markdown = Safe<ChatMarkdown>;

impl<C> Safe<C> {
    fn made(text: String) -> Safe<C> {
        Safe {
            text,
            channel: PhantomData,
        }
    }

    /// Text Vigil wrote: a literal.
    pub fn lit(s: &'static str) -> Safe<C> {
        Safe::made(s.to_string())
    }

    /// A number.
    pub fn number(n: impl Into<u64>) -> Safe<C> {
        Safe::made(n.into().to_string())
    }

    /// A time, as alerts write it.
    pub fn time(t: chrono::DateTime<chrono::Utc>) -> Safe<C> {
        Safe::made(t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
    }

    /// `self` followed by `more`.
    pub fn and(mut self, more: Safe<C>) -> Safe<C> {
        self.text.push_str(&more.text);
        self
    }

    /// `self` followed by a literal.
    pub fn and_lit(mut self, s: &'static str) -> Safe<C> {
        self.text.push_str(s);
        self
    }

    /// The pieces, `sep` between them.
    pub fn join(parts: impl IntoIterator<Item = Safe<C>>, sep: &'static str) -> Safe<C> {
        let texts: Vec<String> = parts.into_iter().map(|p| p.text).collect();
        Safe::made(texts.join(sep))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }
}

impl Plain {
    /// A URL in plain text: as it is when it is a console URL, else
    /// defanged.
    pub fn url(url: &str) -> Plain {
        if link::is_console_url(url) {
            Safe::made(url.to_string())
        } else {
            Untrusted::new(url).line(2048)
        }
    }
}

impl Plain {
    /// A URL from Vigil's configuration (the trace link): as it is when it
    /// is a plain `http(s)` URL, else defanged.
    pub fn configured_url(url: &str) -> Plain {
        if link::is_plain_web_url(url) {
            Safe::made(url.to_string())
        } else {
            Untrusted::new(url).line(2048)
        }
    }
}

impl Markdown {
    /// A link labelled `label` to a URL from Vigil's configuration (the
    /// trace link) when it is a plain `http(s)` URL, else `label` alone.
    pub fn configured_link(url: &str, label: Markdown) -> Markdown {
        if link::is_plain_web_url(url) {
            Safe::made(format!("<{url}|{}>", label.text.replace('|', "/")))
        } else {
            label
        }
    }

    /// A link labelled `label` when `url` is a console URL, else the URL
    /// defanged in a code span.
    pub fn link(url: &str, label: Markdown) -> Markdown {
        if link::is_console_url(url) {
            Safe::made(format!("<{url}|{}>", label.text.replace('|', "/")))
        } else {
            Untrusted::new(url).code(300)
        }
    }
}

impl<C> fmt::Display for Safe<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Every string and key in a JSON document, cleaned for machine outputs
/// (OCSF): no control, bidi, zero-width or line-separator characters
/// (newlines stay; JSON escapes them). URLs are not defanged: a machine
/// reads them as data.
pub(crate) fn clean_json(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::String(s) if has_hidden(s) => *s = strip_controls(s, true),
        Value::Array(items) => items.iter_mut().for_each(clean_json),
        Value::Object(map) => {
            if map
                .keys()
                .any(|k| k.chars().any(|c| is_hidden(c) || c == '\n'))
            {
                let cleaned: serde_json::Map<String, Value> = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (strip_controls(&k, false), v))
                    .collect();
                *map = cleaned;
            }
            map.values_mut().for_each(clean_json);
        }
        _ => {}
    }
}

/// Characters no reader should get from event text: controls (but `\n` and
/// `\t`), bidi embeddings, overrides and isolates, zero-width characters,
/// the BOM, and the line and paragraph separators.
fn is_hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2028}' | '\u{2029}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

/// Whether `s` holds a character [`is_hidden`] names; ASCII text (most of
/// it) is checked a byte at a time.
fn has_hidden(s: &str) -> bool {
    if s.is_ascii() {
        return s
            .bytes()
            .any(|b| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f);
    }
    s.chars().any(is_hidden)
}

/// Removes control characters (terminal escapes, NUL, bidi overrides, zero-width
/// and line/paragraph separators); keeps `\n` only when `keep_newlines`.
pub(crate) fn strip_controls(s: &str, keep_newlines: bool) -> String {
    let kept = |c: char| {
        if c == '\n' {
            keep_newlines
        } else {
            !is_hidden(c)
        }
    };
    // Most event text has nothing to strip: one scan, one copy.
    if !has_hidden(s) && (keep_newlines || !s.contains('\n')) {
        return s.to_string();
    }
    s.chars().filter(|&c| kept(c)).collect()
}

/// Cuts `s` to at most `max` characters, marking the cut with `…` so a reader
/// knows text is missing.
pub fn truncate(s: &str, max: usize) -> String {
    // A string of at most `max` bytes has at most `max` characters.
    if s.len() <= max || s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let mut out: String = s.chars().take(keep).collect();
    out.push('…');
    out
}

/// One line of plain text, no controls, at most `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    // Printable ASCII (most of what events hold) has no break and nothing
    // hidden: it only needs trimming and cutting.
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return truncate(s.trim(), max);
    }
    let flat = strip_controls(&s.replace(['\n', '\r', '\t'], " "), false);
    truncate(flat.trim(), max)
}

/// An SNS subject: printable ASCII only, no line breaks, at most 99 characters.
/// Non-ASCII letters become `?` rather than vanishing, so a reader sees
/// something was there.
pub(crate) fn sns_subject(s: &str) -> String {
    let ascii: String = s
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_ascii_graphic() || c == ' ' => c,
            c if c.is_control() => '\0',
            _ => '?',
        })
        .filter(|&c| c != '\0')
        .collect();
    let collapsed = ascii.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.len() <= 99 {
        collapsed
    } else {
        format!("{}...", &collapsed[..96])
    }
}

/// Slack's escaping: `&`, `<`, `>` and nothing else. Without it, event text
/// could ping `<!channel>` or plant a link `<https://evil|click>`.
pub(crate) fn slack_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in strip_controls(s, true).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Untrusted text as an inline code span in markdown (Chatbot's client-markdown,
/// Slack mrkdwn): inside a code span nothing is a link, mention or emphasis.
pub(crate) fn markdown_code(s: &str, max: usize) -> String {
    let cleaned = slack_escape(&defanged(&one_line(s, max), max))
        .replace('`', "'")
        .replace("](", "] (");
    format!("`{cleaned}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The general path the fast paths skip: what every input must get.
    fn one_line_in_general(s: &str, max: usize) -> String {
        let flat: String = s
            .replace(['\n', '\r', '\t'], " ")
            .chars()
            .filter(|&c| !is_hidden(c))
            .collect();
        truncate(flat.trim(), max)
    }

    #[test]
    fn fast_paths_give_what_the_general_path_gives() {
        let inputs = [
            "plain ASCII text",
            "  padded  ",
            "tab\there",
            "line\nbreak\r\n",
            "esc\u{1b}[31mred\u{7f}",
            "nul\0byte",
            "caf\u{e9} \u{202e}evil\u{200b}",
            "\u{85}next-line\u{9f}",
            "",
            "exactly ten",
        ];
        for s in inputs {
            for max in [0, 1, 5, 10, 100] {
                assert_eq!(
                    one_line(s, max),
                    one_line_in_general(s, max),
                    "{s:?} at {max}"
                );
            }
            for keep in [true, false] {
                let general: String = s
                    .chars()
                    .filter(|&c| if c == '\n' { keep } else { !is_hidden(c) })
                    .collect();
                assert_eq!(strip_controls(s, keep), general, "{s:?} keep={keep}");
            }
            assert_eq!(has_hidden(s), s.chars().any(is_hidden), "{s:?}");
        }
    }

    #[test]
    fn subjects_are_ascii_single_line_and_short() {
        let s = sns_subject("[HIGH] évil\nline\r\u{1b}[31m \u{202e}x");
        assert!(s.is_ascii());
        assert!(!s.contains('\n') && !s.contains('\r') && !s.contains('\u{1b}'));
        let long = sns_subject(&"a".repeat(300));
        assert_eq!(long.len(), 99);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn slack_escape_defuses_mentions_and_links() {
        assert_eq!(
            slack_escape("<!channel> & <https://evil|click>"),
            "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"
        );
    }

    #[test]
    fn truncation_is_marked() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }

    #[test]
    fn code_spans_cannot_be_closed_by_the_attacker() {
        let s = markdown_code("x` *bold* <!here>", 100);
        assert_eq!(s.matches('`').count(), 2);
        assert!(!s.contains("<!here>"));
    }
}
