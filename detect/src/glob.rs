//! Wildcard patterns: the one matcher behind Sigma's `1 of sel*`,
//! EventBridge's `wildcard` operator, and suppression and routing rules.
//!
//! A pattern matches the whole text (anchored at both ends), character by
//! character (Unicode scalar values), case-sensitively: `*` matches any run
//! of characters, including none. The dialects differ only in `?` and `\`,
//! so each caller names its [`Syntax`] instead of each keeping its own copy.
//!
//! Matching is the classic two-pointer walk that backtracks only to the last
//! `*`: linear in practice, and no pattern can make it blow up (patterns
//! come from users' rules).

/// What the characters of a pattern mean, beyond `*` (always any run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    /// `?` matches any one character; otherwise it is literal.
    pub any_char: bool,
    /// `\` makes the next character literal (`\*`, `\\`); a trailing `\`
    /// is itself.
    pub escapes: bool,
    /// A `*` of the pattern meeting a `*` in the text takes it as a literal
    /// character first, and is then no longer a wildcard to backtrack to.
    /// How Sigma condition patterns have always matched identifiers: it
    /// differs from a plain `*` only for an identifier that contains `*`,
    /// which it can miss (`a*` does not match `a*b`).
    pub literal_star_first: bool,
}

impl Syntax {
    /// `*` and `?`, no escapes: suppression and routing rules
    /// (`type: "Recon:EC2/Port*"`, `i-0ab?123`).
    pub const SHELL: Syntax = Syntax {
        any_char: true,
        escapes: false,
        literal_star_first: false,
    };

    /// `*` and `?` over a rule's search identifiers (`1 of selection_*`),
    /// with [`Syntax::literal_star_first`].
    pub const SIGMA_IDENTIFIER: Syntax = Syntax {
        any_char: true,
        escapes: false,
        literal_star_first: true,
    };

    /// EventBridge's `wildcard` operator: `*` only (`?` is literal), with
    /// `\*` and `\\` escapes, as EventBridge documents.
    pub const EVENTBRIDGE: Syntax = Syntax {
        any_char: false,
        escapes: true,
        literal_star_first: false,
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// Any run of characters.
    Star,
    /// Any one character.
    AnyChar,
    Char(char),
}

fn tokens(pattern: &str, syntax: Syntax) -> Vec<Token> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Token::Star,
            '?' if syntax.any_char => Token::AnyChar,
            '\\' if syntax.escapes => Token::Char(chars.next().unwrap_or('\\')),
            c => Token::Char(c),
        });
    }
    out
}

/// Whether `pattern`, read with `syntax`, matches all of `text`.
pub fn matches(pattern: &str, text: &str, syntax: Syntax) -> bool {
    let p = tokens(pattern, syntax);
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    // The last `*` seen: its token index and where its run now ends.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(Token::Char(c)) if *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            Some(Token::AnyChar) => {
                pi += 1;
                ti += 1;
            }
            Some(Token::Star) if syntax.literal_star_first && t[ti] == '*' => {
                pi += 1;
                ti += 1;
            }
            Some(Token::Star) => {
                star = Some((pi, ti));
                pi += 1;
            }
            _ => match star {
                // Let the last `*` take one more character and retry.
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|t| *t == Token::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(p: &str, t: &str) -> bool {
        matches(p, t, Syntax::SHELL)
    }

    fn sigma(p: &str, t: &str) -> bool {
        matches(p, t, Syntax::SIGMA_IDENTIFIER)
    }

    fn eventbridge(p: &str, t: &str) -> bool {
        matches(p, t, Syntax::EVENTBRIDGE)
    }

    #[test]
    fn shell_globs() {
        assert!(shell(
            "Recon:EC2/Port*",
            "Recon:EC2/PortProbeUnprotectedPort"
        ));
        assert!(shell("*", ""));
        assert!(shell("a*b*c", "axxbyyc"));
        assert!(shell("i-0ab?123", "i-0abc123"));
        assert!(!shell("i-0ab?123", "i-0ab123"));
        assert!(!shell("exact", "exactly"));
        assert!(!shell("Exact", "exact"));
        assert!(shell("a\\*", "a\\xyz"));
        assert!(!shell("a*a*a*a*a*b", &"a".repeat(200)));
    }

    #[test]
    fn sigma_identifiers() {
        assert!(sigma("sel*", "selection"));
        assert!(sigma("*_a", "filter_a"));
        assert!(sigma("s?l", "sel"));
        assert!(!sigma("sel", "selection"));
        assert!(sigma("*", ""));
        // The one place it differs from SHELL: a `*` in the identifier.
        assert!(sigma("*", "*"));
        assert!(!sigma("a*", "a*b"));
        assert!(shell("a*", "a*b"));
    }

    #[test]
    fn eventbridge_wildcards() {
        assert!(eventbridge("*TruffleHog*", "aws-cli TruffleHog/3"));
        assert!(!eventbridge("*TruffleHog*", "trufflehog"));
        assert!(eventbridge("a\\*b", "a*b"));
        assert!(!eventbridge("a\\*b", "axb"));
        assert!(eventbridge("a\\\\b", "a\\b"));
        assert!(eventbridge("a\\", "a\\"));
        assert!(eventbridge("a?c", "a?c"));
        assert!(!eventbridge("a?c", "abc"));
        assert!(eventbridge("*", "*"));
    }

    #[test]
    fn text_is_characters_not_bytes() {
        assert!(shell("?", "é"));
        assert!(eventbridge("*é", "café"));
    }
}
