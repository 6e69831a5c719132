//! Binding-rule selectors in Consul's grammar (go-bexpr): `==`, `!=`, `in`,
//! `not in`, `contains`, `not contains`, `matches`, `not matches`,
//! `is empty`, `is not empty`, joined with `and`, `or`, `not` and
//! parentheses, over `value.<attr>` (a string) and `list.<attr>` (a list
//! of strings). A selector is parsed once; parsing against a blank identity
//! checks that every field it names exists, as Consul does when a rule is
//! written.

use super::claims::Identity;

/// Selectors longer than this are refused (bounds parse work).
const MAX_LEN: usize = 4096;
/// Deepest nesting of parentheses and `not`.
const MAX_DEPTH: usize = 64;

#[derive(Debug)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Match { field: Field, op: Op, negate: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Value(String),
    List(String),
}

#[derive(Debug)]
pub enum Op {
    Equal(String),
    IsEmpty,
    /// `v in field` and `field contains v`: substring of a value, member of a list.
    Contains(String),
    Matches(regex_lite::Regex),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Eq,
    Ne,
    Word(String),
    Quoted(String),
}

fn tokenize(s: &str) -> Result<Vec<(usize, Tok)>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push((i, Tok::LParen));
                i += 1
            }
            b')' => {
                out.push((i, Tok::RParen));
                i += 1
            }
            b'=' | b'!' => {
                if b.get(i + 1) != Some(&b'=') {
                    return Err(format!("{}: expected \"==\" or \"!=\"", i + 1));
                }
                out.push((i, if c == b'=' { Tok::Eq } else { Tok::Ne }));
                i += 2
            }
            b'"' => {
                let start = i;
                let mut text = String::new();
                i += 1;
                loop {
                    match s[i..].chars().next() {
                        None => return Err(format!("{}: unterminated string", start + 1)),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let next = s[i + 1..]
                                .chars()
                                .next()
                                .ok_or_else(|| format!("{}: unterminated string", start + 1))?;
                            text.push(match next {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                            i += 1 + next.len_utf8();
                        }
                        Some(ch) => {
                            text.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                out.push((start, Tok::Quoted(text)));
            }
            b'`' => {
                let start = i;
                let end =
                    s[i + 1..].find('`').ok_or_else(|| format!("{}: unterminated string", start + 1))?;
                out.push((start, Tok::Quoted(s[i + 1..i + 1 + end].to_string())));
                i += end + 2;
            }
            _ => {
                let start = i;
                while i < b.len()
                    && !matches!(b[i], b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'=' | b'!' | b'"' | b'`')
                {
                    i += 1;
                }
                out.push((start, Tok::Word(s[start..i].to_string())));
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    fields: &'a Identity,
    depth: usize,
    len: usize,
}

fn is_kw(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w == kw)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|(_, t)| t)
    }
    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|(p, _)| p + 1).unwrap_or(self.len + 1)
    }
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{}: {what}", self.at()))
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while is_kw(self.peek(), "or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while is_kw(self.peek(), "and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("expression nested too deeply");
        }
        let e = if is_kw(self.peek(), "not") && !is_kw(self.peek_at(1), "in") {
            self.pos += 1;
            Expr::Not(Box::new(self.not()?))
        } else if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            if self.next() != Some(Tok::RParen) {
                self.pos -= 1;
                return self.err("expected \")\"");
            }
            e
        } else {
            self.matcher()?
        };
        self.depth -= 1;
        Ok(e)
    }

    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => Ok(w),
            _ => {
                self.pos -= 1;
                self.err("expected a value")
            }
        }
    }

    fn field(&mut self) -> Result<Field, String> {
        let start = self.at();
        let Some(Tok::Word(w)) = self.next() else {
            self.pos -= 1;
            return self.err("expected a selector");
        };
        let field = match w.split_once('.') {
            Some(("value", name)) if self.fields.values.contains_key(name) => Field::Value(name.to_string()),
            Some(("list", name)) if self.fields.lists.contains_key(name) => Field::List(name.to_string()),
            _ => return Err(format!("{start}: Selector {w:?} is not valid")),
        };
        Ok(field)
    }

    fn matcher(&mut self) -> Result<Expr, String> {
        // `v in sel` / `v not in sel` start with the value.
        let value_first =
            is_kw(self.peek_at(1), "in") || (is_kw(self.peek_at(1), "not") && is_kw(self.peek_at(2), "in"));
        if value_first {
            let v = self.value()?;
            let negate = is_kw(self.peek(), "not");
            self.pos += if negate { 2 } else { 1 };
            let field = self.field()?;
            return Ok(Expr::Match { field, op: Op::Contains(v), negate });
        }
        let field = self.field()?;
        let list = matches!(field, Field::List(_));
        let at = self.at();
        let (negate, op) = match self.next() {
            Some(Tok::Eq) | Some(Tok::Ne) if list => {
                return Err(format!("{at}: Invalid match operator for selector on a list"))
            }
            Some(Tok::Eq) => (false, Op::Equal(self.value()?)),
            Some(Tok::Ne) => (true, Op::Equal(self.value()?)),
            Some(Tok::Word(w)) if w == "is" => {
                let negate = is_kw(self.peek(), "not");
                if negate {
                    self.pos += 1;
                }
                if !is_kw(self.peek(), "empty") {
                    return self.err("expected \"empty\"");
                }
                self.pos += 1;
                (negate, Op::IsEmpty)
            }
            Some(Tok::Word(w)) if w == "contains" => (false, Op::Contains(self.value()?)),
            Some(Tok::Word(w)) if w == "matches" && !list => (false, self.regex()?),
            Some(Tok::Word(w)) if w == "not" => match self.next() {
                Some(Tok::Word(w)) if w == "contains" => (true, Op::Contains(self.value()?)),
                Some(Tok::Word(w)) if w == "matches" && !list => (true, self.regex()?),
                _ => {
                    self.pos -= 1;
                    return self.err("expected \"contains\" or \"matches\"");
                }
            },
            _ => return Err(format!("{at}: expected \"==\", \"!=\", \"is\", \"contains\" or \"matches\"")),
        };
        Ok(Expr::Match { field, op, negate })
    }

    fn regex(&mut self) -> Result<Op, String> {
        let at = self.at();
        let text = self.value()?;
        regex_lite::RegexBuilder::new(&text)
            .size_limit(1 << 20)
            .build()
            .map(Op::Matches)
            .map_err(|e| format!("{at}: invalid regular expression {text:?}: {e}"))
    }
}

/// Parses a selector; every field it names must exist in `fields`.
pub fn parse(selector: &str, fields: &Identity) -> Result<Expr, String> {
    if selector.len() > MAX_LEN {
        return Err(format!("selector is longer than {MAX_LEN} bytes"));
    }
    let toks = tokenize(selector)?;
    let mut p = Parser { toks, pos: 0, fields, depth: 0, len: selector.len() };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return p.err("unexpected input after the expression");
    }
    Ok(e)
}

impl Expr {
    pub fn matches(&self, id: &Identity) -> bool {
        match self {
            Expr::And(a, b) => a.matches(id) && b.matches(id),
            Expr::Or(a, b) => a.matches(id) || b.matches(id),
            Expr::Not(e) => !e.matches(id),
            Expr::Match { field, op, negate } => {
                let empty_s = String::new();
                let empty_l = Vec::new();
                let r = match field {
                    Field::Value(name) => {
                        let s = id.values.get(name).unwrap_or(&empty_s);
                        match op {
                            Op::Equal(v) => s == v,
                            Op::IsEmpty => s.is_empty(),
                            Op::Contains(v) => s.contains(v.as_str()),
                            Op::Matches(re) => re.is_match(s),
                        }
                    }
                    Field::List(name) => {
                        let l = id.lists.get(name).unwrap_or(&empty_l);
                        match op {
                            Op::IsEmpty => l.is_empty(),
                            Op::Contains(v) => l.iter().any(|x| x == v),
                            Op::Equal(_) | Op::Matches(_) => false,
                        }
                    }
                };
                r != *negate
            }
        }
    }
}

/// Whether `selector` matches `id` ("" matches everything; one that does
/// not parse matches nothing, as in Consul).
pub fn selects(selector: &str, id: &Identity) -> bool {
    selector.trim().is_empty() || parse(selector, id).is_ok_and(|e| e.matches(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        let mut id = Identity::default();
        id.values.insert("ns".into(), "default".into());
        id.values.insert("name".into(), "web-api".into());
        id.values.insert("empty".into(), String::new());
        id.lists.insert("groups".into(), vec!["admins".into(), "dev".into()]);
        id.lists.insert("none".into(), vec![]);
        id
    }

    fn m(s: &str) -> bool {
        parse(s, &id()).unwrap_or_else(|e| panic!("{s}: {e}")).matches(&id())
    }

    #[test]
    fn grammar_and_semantics() {
        assert!(m("value.ns == default"));
        assert!(m("value.ns==\"default\""));
        assert!(!m("value.ns != default"));
        assert!(m("admins in list.groups"));
        assert!(m("ops not in list.groups"));
        assert!(m("list.groups contains dev and list.groups not contains ops"));
        assert!(m("\"api\" in value.name"));
        assert!(m("value.name matches `^web-.*$`"));
        assert!(m("value.name not matches \"^db\""));
        assert!(m("value.empty is empty and value.ns is not empty and list.none is empty"));
        assert!(m("not (value.ns == other or value.ns == x)"));
        assert!(m("value.ns == x or value.ns == default and admins in list.groups"));
        assert!(!m("not value.ns == default"));
    }

    #[test]
    fn syntax_and_field_errors() {
        for bad in [
            "value.ns ==",
            "value.ns = x",
            "(value.ns == x",
            "value.nope == x",
            "other.ns == x",
            "list.groups == x",
            "value.ns matches \"(\"",
            "value.ns == x extra",
            "value.ns is full",
            "\"unterminated",
        ] {
            assert!(parse(bad, &id()).is_err(), "{bad} should not parse");
        }
        assert!(parse(&"(".repeat(100), &id()).unwrap_err().contains("nested too deeply"));
        assert!(parse("value.nope == x", &id())
            .unwrap_err()
            .contains("Selector \"value.nope\" is not valid"));
        assert!(selects("", &id()));
        assert!(!selects("value.ns ==", &id()));
    }
}
