//! Making untrusted event text safe for the places alerts go.
//!
//! User agents, bucket names, tags and descriptions come from whoever made the
//! API call: an attacker chooses them. Everything that reaches a subject line,
//! an email, Slack or a log query passes through one of these.

/// Removes control characters (terminal escapes, NUL, bidi overrides, zero-width
/// and line/paragraph separators); keeps `\n` only when `keep_newlines`.
pub(crate) fn strip_controls(s: &str, keep_newlines: bool) -> String {
    s.chars()
        .filter(|&c| {
            if c == '\n' {
                return keep_newlines;
            }
            if c == '\t' {
                return true;
            }
            !(c.is_control()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2028}' | '\u{2029}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'))
        })
        .collect()
}

/// Cuts `s` to at most `max` characters, marking the cut with `…` so a reader
/// knows text is missing.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let mut out: String = s.chars().take(keep).collect();
    out.push('…');
    out
}

/// One line of plain text, no controls, at most `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
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
    let cleaned = slack_escape(&one_line(s, max)).replace('`', "'");
    format!("`{cleaned}`")
}

#[cfg(test)]
mod tests {
    use super::*;

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
