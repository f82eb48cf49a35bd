//! Event text into the HTML page, safely. Every string an event could have
//! written reaches the page through one of these two functions: as HTML
//! text or attribute value ([`html`]), or inside the page's JSON data block
//! ([`json_for_script`]), which the page's script reads with `JSON.parse`
//! and shows with `textContent` only.

use std::fmt::Write as _;

use serde::Serialize;

/// Whether `c` must not reach a page: control characters (terminal
/// escapes, NUL), bidirectional overrides and isolates (text that reads
/// differently from what it is), zero-width characters and the line and
/// paragraph separators.
fn hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2028}' | '\u{2029}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// At most `max` characters, a cut marked with `…`.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Event text for a label or a table cell: one line (line breaks and tabs
/// become spaces), nothing hidden, trimmed, at most `max` characters.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !hidden(*c))
        .collect();
    cut(flat.trim(), max)
}

/// Event text for the detail view: line breaks kept, nothing hidden, at
/// most `max` characters.
pub(crate) fn lines(s: &str, max: usize) -> String {
    let kept: String = s.chars().filter(|c| !hidden(*c) && *c != '\r').collect();
    cut(&kept, max)
}

/// Escapes `&`, `<`, `>`, `"` and `'`: safe as element text and as a quoted
/// attribute value (never as an unquoted attribute, a URL or inside a
/// `<script>` or `<style>`, which the page does not do).
pub(crate) fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `value` as JSON that can sit inside `<script type="application/json">`:
/// `<`, `>` and `&` become `\u003c`, `\u003e`, `\u0026`, so no `</script>`
/// or `<!--` can end or change the block, and U+2028 and U+2029 become
/// `\u2028`, `\u2029` (line terminators to older JavaScript parsers). They
/// occur only inside JSON strings, where these escapes mean the same
/// characters, so `JSON.parse` gives back exactly `value`.
pub(crate) fn json_for_script<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(value)?;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn text_loses_what_hides_or_disguises_it_and_is_bounded() {
        assert_eq!(
            one_line("  a\u{202E}b\nc\td\u{200B}\u{1b}[31m  ", 100),
            "ab c d[31m"
        );
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("ünï", 3), "ünï");
        assert_eq!(
            lines("line 1\r\nline 2\u{2028}\u{2066}x", 100),
            "line 1\nline 2x"
        );
        assert_eq!(lines(&"x".repeat(10), 5).chars().count(), 5);
    }

    #[test]
    fn html_escapes_what_can_open_markup_or_close_an_attribute() {
        assert_eq!(
            html(r#"<script>alert('x')</script> & "q""#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(
            html(r#""><img src=x onerror=alert(1)>"#),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(html("plain ünïcode"), "plain ünïcode");
        // Already-escaped text is escaped again, not trusted.
        assert_eq!(html("&lt;"), "&amp;lt;");
    }

    #[test]
    fn script_json_has_no_markup_characters_and_round_trips() {
        let hostile = "</script><script>document.title='pwned'</script><!-- & \u{2028}\u{2029} \"";
        let v = json!({"title": hostile, hostile: [hostile]});
        let out = json_for_script(&v).unwrap();
        for bad in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
            assert!(!out.contains(bad), "{bad:?} left in {out}");
        }
        assert!(out.contains("\\u003c/script\\u003e"));
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
    }
}
