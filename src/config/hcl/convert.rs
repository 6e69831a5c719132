//! Turns a parsed HCL body into the JSON value Consul's loader would have
//! built from it, and notes where each key was written.
//!
//! Shapes, as Consul's HCL1 decoding gives them:
//! * `ports { http = 1 }` and `ports = { http = 1 }` are the same object;
//! * a block or object key written twice becomes a list of objects
//!   (`service { } service { }`); the typed layer accepts one or many;
//! * labeled blocks nest by label (`a "x" { }` is `{"a": {"x": {}}}`);
//! * strings with `${...}` are kept literally, as HCL1 did (Consul never
//!   evaluated them); heredocs become strings.
//!
//! Function calls, variables, operators and conditionals are refused: a
//! config file is data, and silently evaluating them differently from
//! Consul would be worse than a clear error.

use super::HclError;
use hcl::edit::expr::{Expression, ObjectKey, UnaryOperator};
use hcl::edit::structure::{Attribute, Block, Body, Structure};
use hcl::edit::template::{Element, Template};
use hcl::edit::Span;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Maps an offset in the parsed text to a (line, column) of the user's file.
pub type Locate<'a> = &'a dyn Fn(usize) -> (usize, usize);

pub struct Converter<'a> {
    src: &'a str,
    locate: Locate<'a>,
    /// Key path (as serde_path_to_error prints it) → where it was written.
    pub keys: HashMap<String, (usize, usize)>,
    /// Keys written as several blocks, and how many times.
    pub repeated: HashMap<String, usize>,
}

enum Entry<'b> {
    Attr(&'b Attribute),
    Block(&'b Block),
}

impl<'a> Converter<'a> {
    pub fn new(src: &'a str, locate: Locate<'a>) -> Self {
        Converter { src, locate, keys: HashMap::new(), repeated: HashMap::new() }
    }

    fn at(&self, span: Option<std::ops::Range<usize>>) -> (usize, usize) {
        (self.locate)(span.map(|s| s.start).unwrap_or(0))
    }

    fn note(&mut self, path: &str, span: Option<std::ops::Range<usize>>) {
        let pos = self.at(span);
        self.keys.entry(path.to_string()).or_insert(pos);
    }

    fn error(&self, span: Option<std::ops::Range<usize>>, message: String) -> HclError {
        let (line, column) = self.at(span);
        HclError { message, line, column }
    }

    /// Converts a body (the file, or a block's contents) into an object.
    pub fn body(&mut self, body: &Body, path: &str) -> Result<Map<String, Value>, HclError> {
        // Group by key, in order of first appearance.
        let mut groups: Vec<(String, Vec<Entry<'_>>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for s in body.iter() {
            let (key, entry) = match s {
                Structure::Attribute(a) => (a.key.as_str().to_string(), Entry::Attr(a)),
                Structure::Block(b) => (b.ident.as_str().to_string(), Entry::Block(b)),
            };
            match index.get(&key) {
                Some(&i) => groups[i].1.push(entry),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, vec![entry]));
                }
            }
        }
        let mut out = Map::new();
        for (key, entries) in groups {
            let key_path = join(path, &key);
            let value = if entries.len() == 1 {
                let span = entry_span(&entries[0]);
                self.note(&key_path, span);
                self.entry(&entries[0], &key_path)?
            } else {
                self.note(&key_path, entry_span(&entries[0]));
                self.repeated.insert(key_path.clone(), entries.len());
                let mut items = Vec::new();
                for (i, e) in entries.iter().enumerate() {
                    if !is_object_like(e) {
                        let (first_line, _) = self.at(entry_span(&entries[0]));
                        return Err(self.error(
                            entry_span(e),
                            format!("{key_path} is set more than once (first on line {first_line})"),
                        ));
                    }
                    let item_path = format!("{key_path}[{i}]");
                    self.note(&item_path, entry_span(e));
                    items.push(self.entry(e, &item_path)?);
                }
                Value::Array(items)
            };
            out.insert(key, value);
        }
        Ok(out)
    }

    fn entry(&mut self, e: &Entry<'_>, path: &str) -> Result<Value, HclError> {
        match e {
            Entry::Attr(a) => self.expr(&a.value, path),
            Entry::Block(b) => {
                let mut inner_path = path.to_string();
                for label in &b.labels {
                    inner_path = join(&inner_path, label.as_str());
                    self.note(&inner_path, label.span());
                }
                let mut value = Value::Object(self.body(&b.body, &inner_path)?);
                for label in b.labels.iter().rev() {
                    let mut m = Map::new();
                    m.insert(label.as_str().to_string(), value);
                    value = Value::Object(m);
                }
                Ok(value)
            }
        }
    }

    fn expr(&mut self, e: &Expression, path: &str) -> Result<Value, HclError> {
        Ok(match e {
            Expression::Null(_) => Value::Null,
            Expression::Bool(b) => Value::Bool(*b.value()),
            Expression::Number(n) => self.number(n.value(), false, e.span())?,
            Expression::String(s) => Value::String(s.value().clone()),
            Expression::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    self.note(&item_path, item.span());
                    out.push(self.expr(item, &item_path)?);
                }
                Value::Array(out)
            }
            Expression::Object(obj) => {
                let mut out = Map::new();
                for (key, value) in obj.iter() {
                    let name = self.object_key(key)?;
                    let key_path = join(path, &name);
                    self.note(&key_path, key.span());
                    out.insert(name, self.expr(value.expr(), &key_path)?);
                }
                Value::Object(out)
            }
            Expression::StringTemplate(t) => Value::String(self.template(t, e.span())?),
            Expression::HeredocTemplate(h) => Value::String(self.template(&h.template, e.span())?),
            Expression::Parenthesis(p) => self.expr(p.inner(), path)?,
            Expression::UnaryOp(op) => match (op.operator.value(), &op.expr) {
                (UnaryOperator::Neg, Expression::Number(n)) => self.number(n.value(), true, e.span())?,
                (UnaryOperator::Not, Expression::Bool(b)) => Value::Bool(!*b.value()),
                _ => return Err(self.unsupported(e)),
            },
            Expression::Variable(v) => {
                return Err(self.error(
                    e.span(),
                    format!("{path}: {:?} is not a value; put strings in double quotes", v.value().as_str()),
                ))
            }
            _ => return Err(self.unsupported(e)),
        })
    }

    fn unsupported(&self, e: &Expression) -> HclError {
        let what = match e {
            Expression::FuncCall(_) => "function calls",
            Expression::Conditional(_) => "conditionals",
            Expression::Traversal(_) => "references",
            Expression::BinaryOp(_) | Expression::UnaryOp(_) => "operators",
            Expression::ForExpr(_) => "for expressions",
            _ => "this expression",
        };
        self.error(e.span(), format!("{what} are not supported in config files; write the value itself"))
    }

    fn number(
        &self,
        n: &hcl::Number,
        negate: bool,
        span: Option<std::ops::Range<usize>>,
    ) -> Result<Value, HclError> {
        let bad = || self.error(span.clone(), format!("number {n} is out of range"));
        if let Some(i) = n.as_i64() {
            return Ok(Value::from(if negate { i.checked_neg().ok_or_else(bad)? } else { i }));
        }
        if let (Some(u), false) = (n.as_u64(), negate) {
            return Ok(Value::from(u));
        }
        let f = n.as_f64().ok_or_else(bad)?;
        serde_json::Number::from_f64(if negate { -f } else { f }).map(Value::Number).ok_or_else(bad)
    }

    fn object_key(&self, key: &ObjectKey) -> Result<String, HclError> {
        match key {
            ObjectKey::Ident(id) => Ok(id.value().as_str().to_string()),
            ObjectKey::Expression(Expression::String(s)) => Ok(s.value().clone()),
            ObjectKey::Expression(Expression::Variable(v)) => Ok(v.value().as_str().to_string()),
            ObjectKey::Expression(e) => {
                Err(self.error(e.span(), "object keys must be names or quoted strings".to_string()))
            }
        }
    }

    /// A template's text with `${...}` and `%{...}` kept as written.
    fn template(&self, t: &Template, span: Option<std::ops::Range<usize>>) -> Result<String, HclError> {
        let mut out = String::new();
        for el in t.iter() {
            match el {
                Element::Literal(s) => out.push_str(s.value()),
                other => {
                    let raw = other.span().and_then(|r| self.src.get(r));
                    match raw {
                        Some(raw) => out.push_str(raw),
                        None => {
                            return Err(self.error(span, "could not read an interpolation in a string".into()))
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn entry_span(e: &Entry<'_>) -> Option<std::ops::Range<usize>> {
    match e {
        Entry::Attr(a) => a.key.span(),
        Entry::Block(b) => b.ident.span(),
    }
}

fn is_object_like(e: &Entry<'_>) -> bool {
    match e {
        Entry::Block(_) => true,
        Entry::Attr(a) => matches!(a.value, Expression::Object(_)),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
