//! The grammar: a deterministic recursive-descent parser over the bytes of
//! the expression (no backtracking, so cost is linear in the input).
//!
//! ```text
//! input    = ws? or ws? EOF
//! or       = and ("or" and)*
//! and      = unary ("and" unary)*
//! unary    = "not" unary | "(" or ")" | match
//! match    = selector ("==" | "!=") value
//!          | selector ["not"] ("contains" | "matches") value
//!          | selector "is" ["not"] "empty"
//!          | value ["not"] "in" selector
//! selector = ident ("." ident | "." digits | "[" string "]")*
//! ident    = [A-Za-z][A-Za-z0-9_/]*
//! value    = selector-shaped word | number | string
//! number   = "-"? ("0" | [1-9][0-9]*) ("." [0-9]+)?   (then space, ")" or end)
//! string   = '"' Go-escaped '"' | '`' raw '`'
//! ```
//!
//! Precedence is `not` > `and` > `or`. Keywords are whole words; unlike
//! bexpr we do not insist on whitespace around them when a parenthesis or
//! quote already separates them (`not(A == 1)` is accepted).

use super::ast::{Expression, Literal, LiteralKind, MatchExpr, MatchOp, Selector};
use super::literal::{unquote_double, unquote_raw};
use super::{FilterError, MAX_DEPTH, MAX_EXPRESSION_LEN};

/// Parses the text of a filter expression into a syntax tree. Pure, and
/// total: any input gives `Ok` or a positioned `Err`, never a panic.
pub fn parse_expression(input: &str) -> Result<Expression, FilterError> {
    let mut p = Parser { src: input, pos: 0, depth: 0 };
    if input.len() > MAX_EXPRESSION_LEN {
        return Err(p.error_at(
            MAX_EXPRESSION_LEN,
            format!("expression is {} bytes long, the limit is {MAX_EXPRESSION_LEN}", input.len()),
        ));
    }
    p.skip_ws();
    let expr = p.parse_or()?;
    p.skip_ws();
    if p.pos < p.src.len() {
        return Err(
            p.error(format!("expected \"and\", \"or\" or the end of the expression, found {}", p.found()))
        );
    }
    Ok(expr)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Open parentheses and `not`s around the current position.
    depth: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic()
}

fn is_ident_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'/'
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Parser<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.src.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes().get(self.pos + ahead).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// The identifier-shaped word at the cursor, if any (not consumed).
    fn peek_word(&self) -> Option<&'a str> {
        let b = self.bytes();
        if !b.get(self.pos).copied().is_some_and(is_ident_start) {
            return None;
        }
        let mut end = self.pos + 1;
        while b.get(end).copied().is_some_and(is_ident_char) {
            end += 1;
        }
        self.src.get(self.pos..end)
    }

    /// Consumes `kw` if it is the whole word at the cursor.
    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.peek_word() == Some(kw) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    /// A short description of what is at the cursor, for error messages.
    fn found(&self) -> String {
        let rest = self.src.get(self.pos..).unwrap_or_default();
        match rest.chars().next() {
            None => "the end of the expression".into(),
            Some(_) => {
                let shown: String = rest.chars().take(12).collect();
                let more = if rest.chars().nth(12).is_some() { "..." } else { "" };
                format!("{:?}", format!("{shown}{more}"))
            }
        }
    }

    fn error(&self, message: String) -> FilterError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, offset: usize, message: String) -> FilterError {
        let mut offset = offset.min(self.src.len());
        while !self.src.is_char_boundary(offset) {
            offset -= 1;
        }
        // Line and column count characters (1-based), as pigeon does.
        let before = self.src.get(..offset).unwrap_or(self.src);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        FilterError::Syntax { offset, line, column, message }
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("expression nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expression, FilterError> {
        let mut terms = vec![self.parse_and()?];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.eat_keyword("or") {
                self.skip_ws();
                terms.push(self.parse_and()?);
            } else {
                self.pos = save;
                break;
            }
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expression::Or(terms) })
    }

    fn parse_and(&mut self) -> Result<Expression, FilterError> {
        let mut terms = vec![self.parse_unary()?];
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.eat_keyword("and") {
                self.skip_ws();
                terms.push(self.parse_unary()?);
            } else {
                self.pos = save;
                break;
            }
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expression::And(terms) })
    }

    fn parse_unary(&mut self) -> Result<Expression, FilterError> {
        // `not` is the operator only when something can follow it; a
        // selector literally named "not" would be refused by every schema.
        if self.peek_word() == Some("not")
            && matches!(self.peek_at(3), Some(b'(') | Some(b' ' | b'\t' | b'\r' | b'\n'))
        {
            self.pos += 3;
            self.enter()?;
            self.skip_ws();
            let inner = self.parse_unary()?;
            self.depth -= 1;
            return Ok(Expression::Not(Box::new(inner)));
        }
        if self.peek() == Some(b'(') {
            let open = self.pos;
            self.pos += 1;
            self.enter()?;
            self.skip_ws();
            let inner = self.parse_or()?;
            self.skip_ws();
            if self.peek() != Some(b')') {
                return Err(self.error(format!(
                    "unmatched parentheses: the \"(\" at offset {open} is not closed (found {})",
                    self.found()
                )));
            }
            self.pos += 1;
            self.depth -= 1;
            return Ok(inner);
        }
        self.parse_match()
    }

    fn parse_match(&mut self) -> Result<Expression, FilterError> {
        let start = self.pos;
        let first = match self.peek() {
            Some(b) if is_ident_start(b) => Operand::Selector(self.parse_selector()?),
            Some(b'"' | b'`') => Operand::Value(self.parse_string()?),
            Some(b'-' | b'0'..=b'9') => Operand::Value(self.parse_number()?),
            _ => return Err(self.error(format!("expected a selector or a value, found {}", self.found()))),
        };
        self.skip_ws();
        let op_at = self.pos;
        let (op, value_left) = self.parse_operator()?;
        match op {
            MatchOp::In | MatchOp::NotIn if value_left => {
                // `<value> in <selector>`: the left side was a value.
                let value = match first {
                    Operand::Value(v) => v,
                    Operand::Selector(s) => {
                        Literal { raw: s.to_string(), kind: LiteralKind::Word, offset: s.offset }
                    }
                };
                self.skip_ws();
                if !self.peek().is_some_and(is_ident_start) {
                    return Err(self.error(format!("invalid selector after \"in\": found {}", self.found())));
                }
                let selector = self.parse_selector()?;
                Ok(Expression::Match(MatchExpr { selector, op, value: Some(value) }))
            }
            _ => {
                let Operand::Selector(selector) = first else {
                    return Err(self.error_at(
                        start,
                        format!("a selector must come first with the {op} operator (only \"in\" takes a value on its left)"),
                    ));
                };
                let value = if matches!(op, MatchOp::IsEmpty | MatchOp::IsNotEmpty) {
                    None
                } else {
                    self.skip_ws();
                    Some(self.parse_value(op_at)?)
                };
                Ok(Expression::Match(MatchExpr { selector, op, value }))
            }
        }
    }

    /// One of `==`, `!=`, `in`, `not in`, `contains`, `not contains`,
    /// `matches`, `not matches`, `is empty`, `is not empty`, and whether
    /// the value is on its left (only `in`/`not in`): `contains` is `In`
    /// with the selector on the left.
    fn parse_operator(&mut self) -> Result<(MatchOp, bool), FilterError> {
        if self.src.get(self.pos..).is_some_and(|r| r.starts_with("==")) {
            self.pos += 2;
            return Ok((MatchOp::Equal, false));
        }
        if self.src.get(self.pos..).is_some_and(|r| r.starts_with("!=")) {
            self.pos += 2;
            return Ok((MatchOp::NotEqual, false));
        }
        let at = self.pos;
        let negated = if self.eat_keyword("not") {
            self.skip_ws();
            true
        } else {
            false
        };
        let op = if self.eat_keyword("in") {
            Some((if negated { MatchOp::NotIn } else { MatchOp::In }, true))
        } else if self.eat_keyword("contains") {
            Some((if negated { MatchOp::NotIn } else { MatchOp::In }, false))
        } else if self.eat_keyword("matches") {
            Some((if negated { MatchOp::NotMatches } else { MatchOp::Matches }, false))
        } else if !negated && self.eat_keyword("is") {
            self.skip_ws();
            let not = self.eat_keyword("not");
            self.skip_ws();
            if !self.eat_keyword("empty") {
                return Err(self.error(format!(
                    "expected \"empty\" or \"not empty\" after \"is\", found {}",
                    self.found()
                )));
            }
            Some((if not { MatchOp::IsNotEmpty } else { MatchOp::IsEmpty }, false))
        } else {
            None
        };
        match op {
            Some(op) => Ok(op),
            None => Err(self.error_at(
                if negated { self.pos } else { at },
                format!(
                    "expected a match operator (==, !=, in, not in, contains, not contains, matches, not matches, is empty, is not empty), found {}",
                    self.found()
                ),
            )),
        }
    }

    fn parse_selector(&mut self) -> Result<Selector, FilterError> {
        let offset = self.pos;
        let mut path = vec![self.parse_ident()?];
        loop {
            match self.peek() {
                Some(b'.') => match self.peek_at(1) {
                    Some(b) if is_ident_start(b) => {
                        self.pos += 1;
                        path.push(self.parse_ident()?);
                    }
                    Some(b'0'..=b'9') => {
                        self.pos += 1;
                        let begin = self.pos;
                        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                            self.pos += 1;
                        }
                        path.push(self.src.get(begin..self.pos).unwrap_or_default().to_string());
                    }
                    _ => {
                        self.pos += 1;
                        return Err(self.error(format!(
                            "expected a name after \".\" in a selector, found {}",
                            self.found()
                        )));
                    }
                },
                Some(b'[') => {
                    self.pos += 1;
                    self.skip_ws();
                    if !matches!(self.peek(), Some(b'"' | b'`')) {
                        return Err(self.error(format!(
                            "invalid index: expected a quoted key after \"[\", found {}",
                            self.found()
                        )));
                    }
                    let key = self.parse_string()?;
                    self.skip_ws();
                    if self.peek() != Some(b']') {
                        return Err(self.error(format!(
                            "unclosed index expression: expected \"]\", found {}",
                            self.found()
                        )));
                    }
                    self.pos += 1;
                    path.push(key.raw);
                }
                _ => break,
            }
        }
        Ok(Selector { path, offset })
    }

    fn parse_ident(&mut self) -> Result<String, FilterError> {
        match self.peek_word() {
            Some(w) => {
                self.pos += w.len();
                Ok(w.to_string())
            }
            None => Err(self.error(format!("expected a name, found {}", self.found()))),
        }
    }

    fn parse_value(&mut self, op_at: usize) -> Result<Literal, FilterError> {
        match self.peek() {
            Some(b'"' | b'`') => self.parse_string(),
            Some(b'-' | b'0'..=b'9') => self.parse_number(),
            Some(b) if is_ident_start(b) => {
                let s = self.parse_selector()?;
                Ok(Literal { raw: s.to_string(), kind: LiteralKind::Word, offset: s.offset })
            }
            _ => Err(self.error(format!(
                "expected a value after the operator at offset {op_at}, found {}",
                self.found()
            ))),
        }
    }

    fn parse_number(&mut self) -> Result<Literal, FilterError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
            _ => {
                return Err(
                    self.error(format!("invalid number literal: expected a digit, found {}", self.found()))
                )
            }
        }
        if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        // bexpr wants a number to end at a space, a ")" or the end.
        if !matches!(self.peek(), None | Some(b')') | Some(b' ' | b'\t' | b'\r' | b'\n')) {
            return Err(
                self.error_at(start, format!("invalid number literal: unexpected {} after it", self.found()))
            );
        }
        let raw = self.src.get(start..self.pos).unwrap_or_default().to_string();
        Ok(Literal { raw, kind: LiteralKind::Number, offset: start })
    }

    fn parse_string(&mut self) -> Result<Literal, FilterError> {
        let start = self.pos;
        let quote = self.peek();
        self.pos += 1;
        let body_start = self.pos;
        let b = self.bytes();
        let mut i = body_start;
        let end = loop {
            match b.get(i).copied() {
                None => return Err(self.error_at(start, "unterminated string literal".into())),
                Some(b'\\') if quote == Some(b'"') => i += 2,
                Some(c) if Some(c) == quote => break i,
                Some(_) => i += 1,
            }
        };
        // The quotes are ASCII, so both ends are character boundaries.
        let body = self.src.get(body_start..end).unwrap_or_default();
        self.pos = end + 1;
        let raw = if quote == Some(b'`') {
            unquote_raw(body)
        } else {
            unquote_double(body).map_err(|e| self.error_at(start, format!("invalid string literal: {e}")))?
        };
        Ok(Literal { raw, kind: LiteralKind::String, offset: start })
    }
}

enum Operand {
    Selector(Selector),
    Value(Literal),
}
