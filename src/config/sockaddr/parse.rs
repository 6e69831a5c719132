//! Parsing the subset of Go's text/template syntax that go-sockaddr
//! templates use: literal text with `{{ ... }}` actions, each action a
//! pipeline of function calls (`GetAllInterfaces | include "name" "eth0"`)
//! whose arguments are string or integer literals.
//!
//! Owns only the syntax; what the functions mean is in `eval.rs`. Variables,
//! `.`, parentheses and control keywords (`if`, `range`, ...) are refused
//! with an error naming them rather than misread.

/// One piece of a template: text copied as is, or an action to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    Text(String),
    Action(Vec<Command>),
}

/// One function call in a pipeline. When piped, the previous result is
/// passed as the last argument, as text/template does.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    pub name: String,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Str(String),
    Int(i64),
}

impl Arg {
    pub fn describe(&self) -> String {
        match self {
            Arg::Str(s) => format!("{s:?}"),
            Arg::Int(i) => i.to_string(),
        }
    }
}

use super::TemplateError;

const KEYWORDS: &[&str] =
    &["if", "else", "end", "range", "with", "define", "template", "block", "break", "continue", "nil"];

/// Splits a template into text and actions.
pub fn parse(src: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut trim_next_text = false;
    loop {
        let Some(open) = rest.find("{{") else {
            push_text(&mut pieces, rest, trim_next_text);
            break;
        };
        let mut text = &rest[..open];
        let mut inner_start = open + 2;
        // `{{- ` trims the whitespace before the action.
        if rest[inner_start..].starts_with("- ")
            || rest[inner_start..].starts_with("-\t")
            || rest[inner_start..].starts_with("-\n")
        {
            text = text.trim_end();
            inner_start += 1;
        }
        push_text(&mut pieces, text, trim_next_text);
        let after_open = &rest[inner_start..];
        let close = find_close(after_open).ok_or(TemplateError::UnclosedAction)?;
        let mut inner = &after_open[..close];
        // ` -}}` trims the whitespace after the action.
        trim_next_text = false;
        if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
            inner = &inner[..inner.len() - 1];
            trim_next_text = true;
        }
        let trimmed = inner.trim();
        if trimmed.starts_with("/*") {
            if !trimmed.ends_with("*/") {
                return Err(TemplateError::UnclosedComment);
            }
        } else {
            pieces.push(Piece::Action(parse_pipeline(trimmed)?));
        }
        rest = &after_open[close + 2..];
    }
    Ok(pieces)
}

fn push_text(pieces: &mut Vec<Piece>, text: &str, trim_start: bool) {
    let text = if trim_start { text.trim_start() } else { text };
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_string()));
    }
}

/// Finds the `}}` that closes an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Pipe,
}

fn parse_pipeline(src: &str) -> Result<Vec<Command>, TemplateError> {
    if src.is_empty() {
        return Err(TemplateError::EmptyAction);
    }
    let toks = lex(src)?;
    let mut commands = Vec::new();
    let mut current: Option<Command> = None;
    for tok in toks {
        match tok {
            Tok::Pipe => match current.take() {
                Some(c) => commands.push(c),
                None => return Err(TemplateError::MissingFunctionBefore),
            },
            Tok::Ident(name) => match &mut current {
                None => {
                    if KEYWORDS.contains(&name.as_str()) {
                        return Err(TemplateError::Keyword(name));
                    }
                    current = Some(Command { name, args: Vec::new() });
                }
                Some(c) => return Err(TemplateError::NestedCall { function: c.name.clone(), arg: name }),
            },
            Tok::Str(s) => match &mut current {
                Some(c) => c.args.push(Arg::Str(s)),
                None => return Err(TemplateError::StringForFunction(s)),
            },
            Tok::Int(i) => match &mut current {
                Some(c) => c.args.push(Arg::Int(i)),
                None => return Err(TemplateError::NumberForFunction(i)),
            },
        }
    }
    match current {
        Some(c) => commands.push(c),
        None => return Err(TemplateError::MissingFunctionAfter),
    }
    Ok(commands)
}

fn lex(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let mut toks = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(_, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '|' => {
                chars.next();
                if chars.peek().map(|(_, c)| *c) == Some('|') {
                    return Err(TemplateError::DoublePipe);
                }
                toks.push(Tok::Pipe);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('"') => s.push('"'),
                            Some('\\') => s.push('\\'),
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some('r') => s.push('\r'),
                            Some('\'') => s.push('\''),
                            Some(other) => return Err(TemplateError::UnsupportedEscape(other)),
                            None => break,
                        },
                        c => s.push(c),
                    }
                }
                if !closed {
                    return Err(TemplateError::UnterminatedString);
                }
                toks.push(Tok::Str(s));
            }
            '`' => {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == '`' {
                        closed = true;
                        break;
                    }
                    s.push(c);
                }
                if !closed {
                    return Err(TemplateError::UnterminatedRawString);
                }
                toks.push(Tok::Str(s));
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let mut s = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '+' || c == '_' {
                        s.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                let n = s
                    .trim_start_matches('+')
                    .parse::<i64>()
                    .map_err(|_| TemplateError::InvalidNumber(s.clone()))?;
                toks.push(Tok::Int(n));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' {
                        s.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                toks.push(Tok::Ident(s));
            }
            '.' | '$' => return Err(TemplateError::Variable(c)),
            '(' | ')' => return Err(TemplateError::Parentheses),
            other => return Err(TemplateError::UnexpectedCharacter(other)),
        }
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(name: &str, args: Vec<Arg>) -> Command {
        Command { name: name.into(), args }
    }

    #[test]
    fn pipelines_and_text() {
        let p = parse(
            r#"x {{ GetAllInterfaces | include "network" "10.0.0.0/8" | limit 1 | attr `address` }} y"#,
        )
        .unwrap();
        assert_eq!(
            p,
            vec![
                Piece::Text("x ".into()),
                Piece::Action(vec![
                    cmd("GetAllInterfaces", vec![]),
                    cmd("include", vec![Arg::Str("network".into()), Arg::Str("10.0.0.0/8".into())]),
                    cmd("limit", vec![Arg::Int(1)]),
                    cmd("attr", vec![Arg::Str("address".into())]),
                ]),
                Piece::Text(" y".into()),
            ]
        );
    }

    #[test]
    fn trim_markers_and_comments() {
        let p = parse("a  {{- GetPrivateIP -}}  b{{/* note */}}").unwrap();
        assert_eq!(
            p,
            vec![
                Piece::Text("a".into()),
                Piece::Action(vec![cmd("GetPrivateIP", vec![])]),
                Piece::Text("b".into())
            ]
        );
        // `{{-3}}` is the number -3, not a trim marker.
        assert_eq!(
            parse("{{ offset -3 }}").unwrap(),
            vec![Piece::Action(vec![cmd("offset", vec![Arg::Int(-3)])])]
        );
    }

    #[test]
    fn strings_may_contain_braces_and_escapes() {
        let p = parse(r#"{{ include "name" "a}}\"b" }}"#).unwrap();
        assert_eq!(
            p,
            vec![Piece::Action(vec![cmd(
                "include",
                vec![Arg::Str("name".into()), Arg::Str("a}}\"b".into())]
            )])]
        );
    }

    #[test]
    fn refusals_name_the_construct() {
        for (src, want) in [
            ("{{ GetPrivateIP ", "unclosed action"),
            ("{{ }}", "empty action"),
            ("{{ .Name }}", "variables"),
            ("{{ $x := 1 }}", "variables"),
            ("{{ range GetAllInterfaces }}", "keyword \"range\""),
            ("{{ attr (GetPrivateIP) }}", "parentheses"),
            ("{{ | attr \"x\" }}", "missing function"),
            ("{{ GetAllInterfaces | }}", "missing function"),
            ("{{ \"x }}", "unclosed action"),
            ("{{ include name }}", "must be a quoted string"),
            ("{{ limit 1x }}", "invalid number"),
        ] {
            let e = parse(src).unwrap_err().to_string();
            assert!(e.contains(want), "{src}: {e}");
        }
    }
}
