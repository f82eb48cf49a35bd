//! The Sigma condition grammar: `and`, `or`, `not`, parentheses, and
//! `1 of` / `all of` over identifiers, wildcard patterns and `them`.
//!
//! ```text
//! expr    := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | primary
//! primary := "(" expr ")" | ("1" | "any" | "all") "of" (pattern | "them") | identifier
//! ```
//! `not` binds tighter than `and`, which binds tighter than `or`. Keywords
//! are case-insensitive. An aggregation (`| count() > 5`, `| near`) is valid
//! Sigma but needs state across events: it is reported as unsupported.
//!
//! Parsing gives an [`Ast`]; [`resolve`] binds it to the rule's search
//! identifiers (indices into the compiled selections), so evaluation never
//! looks at names.

use super::error::{RuleErrorKind, Unsupported};
use super::glob::{self, Syntax};

/// Deepest nesting accepted (untrusted input must not overflow the stack).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    And,
    Or,
    Not,
    One,
    All,
    Of,
    Them,
    Ident(String),
}

/// A parsed condition, before identifiers are resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ast {
    Ident(String),
    /// `1 of x*` (`all == false`) or `all of x*`; `None`: `them`.
    Of {
        all: bool,
        pattern: Option<String>,
    },
    Not(Box<Ast>),
    And(Vec<Ast>),
    Or(Vec<Ast>),
}

/// A resolved condition: selections by index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Sel(usize),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    /// Evaluates with `sel(i)` saying whether selection `i` matches;
    /// short-circuits so unneeded selections are never evaluated.
    pub(crate) fn eval(&self, sel: &impl Fn(usize) -> bool) -> bool {
        match self {
            Expr::Sel(i) => sel(*i),
            Expr::Not(e) => !e.eval(sel),
            Expr::And(es) => es.iter().all(|e| e.eval(sel)),
            Expr::Or(es) => es.iter().any(|e| e.eval(sel)),
        }
    }
}

fn err(condition: &str, reason: impl Into<String>) -> RuleErrorKind {
    RuleErrorKind::Condition {
        condition: condition.into(),
        reason: reason.into(),
    }
}

fn tokenize(condition: &str) -> Result<Vec<Token>, RuleErrorKind> {
    if let Some((_, agg)) = condition.split_once('|') {
        return Err(RuleErrorKind::Unsupported(Unsupported::Aggregation(
            agg.trim().to_string(),
        )));
    }
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Token>| {
        if word.is_empty() {
            return;
        }
        let w = std::mem::take(word);
        out.push(match w.to_ascii_lowercase().as_str() {
            "and" => Token::And,
            "or" => Token::Or,
            "not" => Token::Not,
            "1" | "any" => Token::One,
            "all" => Token::All,
            "of" => Token::Of,
            "them" => Token::Them,
            _ => Token::Ident(w),
        });
    };
    for c in condition.chars() {
        match c {
            '(' | ')' => {
                flush(&mut word, &mut out);
                out.push(if c == '(' {
                    Token::LParen
                } else {
                    Token::RParen
                });
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    Ok(out)
}

struct Parser<'a> {
    condition: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn enter(&mut self) -> Result<(), RuleErrorKind> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(self.condition, "nested too deeply"));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Ast, RuleErrorKind> {
        self.enter()?;
        let mut terms = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.next();
            terms.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Ast::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Ast, RuleErrorKind> {
        let mut terms = vec![self.unary()?];
        while self.peek() == Some(&Token::And) {
            self.next();
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Ast::And(terms)
        })
    }

    fn unary(&mut self) -> Result<Ast, RuleErrorKind> {
        if self.peek() == Some(&Token::Not) {
            self.next();
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Ast::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Ast, RuleErrorKind> {
        match self.next() {
            Some(Token::LParen) => {
                let e = self.expr()?;
                match self.next() {
                    Some(Token::RParen) => Ok(e),
                    _ => Err(err(self.condition, "missing `)`")),
                }
            }
            Some(t @ (Token::One | Token::All)) => {
                if self.next() != Some(Token::Of) {
                    return Err(err(self.condition, "expected `of` after `1`/`all`"));
                }
                let all = t == Token::All;
                match self.next() {
                    Some(Token::Them) => Ok(Ast::Of { all, pattern: None }),
                    Some(Token::Ident(p)) => Ok(Ast::Of {
                        all,
                        pattern: Some(p),
                    }),
                    _ => Err(err(
                        self.condition,
                        "expected an identifier pattern or `them` after `of`",
                    )),
                }
            }
            Some(Token::Ident(name)) => {
                if name.chars().all(|c| c.is_ascii_digit()) {
                    return Err(err(
                        self.condition,
                        format!("`{name} of` is not Sigma: use `1 of` or `all of`"),
                    ));
                }
                Ok(Ast::Ident(name))
            }
            Some(t) => Err(err(self.condition, format!("unexpected {t:?}"))),
            None => Err(err(self.condition, "unexpected end")),
        }
    }
}

/// Parses one condition string.
pub(crate) fn parse(condition: &str) -> Result<Ast, RuleErrorKind> {
    let tokens = tokenize(condition)?;
    if tokens.is_empty() {
        return Err(err(condition, "empty condition"));
    }
    let mut p = Parser {
        condition,
        tokens,
        pos: 0,
        depth: 0,
    };
    let ast = p.expr()?;
    if p.pos < p.tokens.len() {
        return Err(err(condition, format!("unexpected {:?}", p.tokens[p.pos])));
    }
    Ok(ast)
}

/// Binds identifiers to selection indices. `them` is every identifier not
/// starting with `_` (as the Sigma specification says).
pub(crate) fn resolve(ast: &Ast, names: &[String], condition: &str) -> Result<Expr, RuleErrorKind> {
    Ok(match ast {
        Ast::Ident(name) => match names.iter().position(|n| n == name) {
            Some(i) => Expr::Sel(i),
            None => return Err(err(condition, format!("unknown identifier `{name}`"))),
        },
        Ast::Of { all, pattern } => {
            let picked: Vec<Expr> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| match pattern {
                    Some(p) => glob::matches(p, n, Syntax::SIGMA_IDENTIFIER),
                    None => !n.starts_with('_'),
                })
                .map(|(i, _)| Expr::Sel(i))
                .collect();
            if picked.is_empty() {
                return Err(err(
                    condition,
                    format!(
                        "`{}` matches no search identifier",
                        pattern.as_deref().unwrap_or("them")
                    ),
                ));
            }
            if picked.len() == 1 {
                picked.into_iter().next().unwrap_or(Expr::Sel(0))
            } else if *all {
                Expr::And(picked)
            } else {
                Expr::Or(picked)
            }
        }
        Ast::Not(inner) => Expr::Not(Box::new(resolve(inner, names, condition)?)),
        Ast::And(items) => Expr::And(
            items
                .iter()
                .map(|a| resolve(a, names, condition))
                .collect::<Result<_, _>>()?,
        ),
        Ast::Or(items) => Expr::Or(
            items
                .iter()
                .map(|a| resolve(a, names, condition))
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ns: &[&str]) -> Vec<String> {
        ns.iter().map(|s| s.to_string()).collect()
    }

    fn eval(cond: &str, ns: &[&str], truth: &[bool]) -> bool {
        let e = resolve(&parse(cond).unwrap(), &names(ns), cond).unwrap();
        e.eval(&|i| truth[i])
    }

    #[test]
    fn precedence_not_and_or() {
        // a or b and not c  ==  a or (b and (not c))
        let ns = ["a", "b", "c"];
        assert!(eval("a or b and not c", &ns, &[true, false, true]));
        assert!(eval("a or b and not c", &ns, &[false, true, false]));
        assert!(!eval("a or b and not c", &ns, &[false, true, true]));
        assert!(!eval("(a or b) and not c", &ns, &[true, false, true]));
        assert!(eval("not (a and b)", &ns, &[true, false, false]));
        assert!(eval("NOT a AND b", &ns, &[false, true, false]));
    }

    #[test]
    fn one_of_and_all_of_with_wildcards_and_them() {
        let ns = ["sel", "filter_a", "filter_b", "_hidden"];
        assert!(eval(
            "sel and not 1 of filter_*",
            &ns,
            &[true, false, false, true]
        ));
        assert!(!eval(
            "sel and not 1 of filter_*",
            &ns,
            &[true, false, true, false]
        ));
        assert!(eval("all of filter_*", &ns, &[false, true, true, false]));
        assert!(!eval("all of filter_*", &ns, &[false, true, false, false]));
        // `them` leaves out identifiers starting with `_`.
        assert!(!eval("1 of them", &ns, &[false, false, false, true]));
        assert!(eval("all of them", &ns, &[true, true, true, false]));
        assert!(eval("any of filter_?", &ns, &[false, false, true, false]));
    }

    #[test]
    fn errors_are_typed() {
        assert!(matches!(
            parse("selection | count() > 5"),
            Err(RuleErrorKind::Unsupported(Unsupported::Aggregation(_)))
        ));
        for bad in ["", "a and", "(a", "a b", "1 a", "2 of x", "all of", ")"] {
            assert!(
                matches!(parse(bad), Err(RuleErrorKind::Condition { .. })),
                "{bad:?}"
            );
        }
        let ast = parse("a and missing").unwrap();
        assert!(resolve(&ast, &names(&["a"]), "").is_err());
        let ast = parse("1 of nothing*").unwrap();
        assert!(resolve(&ast, &names(&["a"]), "").is_err());
        let deep = format!("{}a{}", "(".repeat(200), ")".repeat(200));
        assert!(parse(&deep).is_err());
        let nots = format!("{}a", "not ".repeat(200));
        assert!(parse(&nots).is_err());
    }
}
