//! Binding a syntax tree to a schema (`compile`) and testing JSON records
//! against the result (`Node::eval`).
//!
//! Compilation does every check that can fail (selectors, operators, value
//! conversion, regex compilation), so evaluation is total: it follows the
//! JSON as far as it goes and treats anything absent, `null` or of an
//! unexpected shape as the field's zero value, like a Go struct would be.

use super::ast::{Expression, Literal, MatchExpr, MatchOp};
use super::literal::{parse_bool, parse_float, parse_int, parse_uint};
use super::schema::{resolve, Kind, Schema, Step};
use super::{FilterError, MAX_REGEX_SIZE};
use serde_json::Value;

#[derive(Debug)]
pub enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Match(Matcher),
}

#[derive(Debug)]
pub struct Matcher {
    steps: Vec<Step>,
    test: Test,
    /// The operator was a `not`/`!=` form: the test's answer is inverted.
    negated: bool,
    /// The answer when a map key on the path is missing.
    when_missing: bool,
}

/// The positive form of a match, with its operand already converted.
#[derive(Debug)]
enum Test {
    Equal(Scalar),
    /// Substring of a string field.
    Substring(String),
    /// Element of a list of scalars.
    Element(Scalar),
    /// Key of a map.
    HasKey(String),
    Regex(regex_lite::Regex),
    Empty,
}

#[derive(Debug, PartialEq)]
enum Scalar {
    String(String),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

pub fn compile(expr: &Expression, schema: &Schema) -> Result<Node, FilterError> {
    Ok(match expr {
        Expression::Or(terms) => {
            Node::Or(terms.iter().map(|t| compile(t, schema)).collect::<Result<_, _>>()?)
        }
        Expression::And(terms) => {
            Node::And(terms.iter().map(|t| compile(t, schema)).collect::<Result<_, _>>()?)
        }
        Expression::Not(inner) => Node::Not(Box::new(compile(inner, schema)?)),
        Expression::Match(m) => Node::Match(compile_match(m, schema)?),
    })
}

fn compile_match(m: &MatchExpr, schema: &Schema) -> Result<Matcher, FilterError> {
    let selector = m.selector.to_string();
    let (steps, kind) = resolve(schema, &m.selector.path).map_err(|bad| {
        let prefix = m.selector.path.get(..=bad).unwrap_or(&m.selector.path).join(".");
        FilterError::Invalid(format!("Selector {prefix:?} is not valid"))
    })?;
    if !kind.operators().contains(&m.op) {
        return Err(FilterError::Invalid(format!(
            "Invalid match operator {:?} for selector {selector:?}",
            m.op.to_string()
        )));
    }
    let (base, negated) = m.op.split();
    let test = match (base, &m.value) {
        (MatchOp::IsEmpty, _) => Test::Empty,
        (_, None) => {
            return Err(FilterError::Invalid(format!(
                "Match operator {:?} requires a non-nil value",
                m.op.to_string()
            )))
        }
        (MatchOp::Equal, Some(v)) => Test::Equal(coerce(kind, v, &selector)?),
        (MatchOp::In, Some(v)) => match kind {
            Kind::String => Test::Substring(v.raw.clone()),
            Kind::Map(_) => Test::HasKey(v.raw.clone()),
            Kind::List(elem) => Test::Element(coerce(elem, v, &selector)?),
            _ => {
                return Err(FilterError::Invalid(format!(
                    "Invalid match operator {:?} for selector {selector:?}",
                    m.op.to_string()
                )))
            }
        },
        (MatchOp::Matches, Some(v)) => Test::Regex(compile_regex(&v.raw)?),
        (other, Some(_)) => {
            return Err(FilterError::Invalid(format!(
                "Invalid match operator {:?} for selector {selector:?}",
                other.to_string()
            )))
        }
    };
    Ok(Matcher { steps, test, negated, when_missing: m.op.when_key_missing() })
}

fn coerce(kind: &Kind, v: &Literal, selector: &str) -> Result<Scalar, FilterError> {
    let converted = match kind {
        Kind::String => Ok(Scalar::String(v.raw.clone())),
        Kind::Int => parse_int(&v.raw).map(Scalar::Int),
        Kind::Uint => parse_uint(&v.raw).map(Scalar::Uint),
        Kind::Float => parse_float(&v.raw).map(Scalar::Float),
        Kind::Bool => parse_bool(&v.raw).map(Scalar::Bool),
        _ => Err("not a scalar field".to_string()),
    };
    converted.map_err(|e| {
        FilterError::Invalid(format!("Failed to coerce value {:?} for selector {selector:?}: {e}", v.raw))
    })
}

fn compile_regex(pattern: &str) -> Result<regex_lite::Regex, FilterError> {
    regex_lite::RegexBuilder::new(pattern)
        .size_limit(MAX_REGEX_SIZE)
        .nest_limit(64)
        .build()
        .map_err(|e| FilterError::Invalid(format!("Failed to compile regular expression {pattern:?}: {e}")))
}

impl Node {
    pub fn eval(&self, record: &Value) -> bool {
        match self {
            Node::Or(terms) => terms.iter().any(|t| t.eval(record)),
            Node::And(terms) => terms.iter().all(|t| t.eval(record)),
            Node::Not(inner) => !inner.eval(record),
            Node::Match(m) => m.eval(&m.steps, Some(record)),
        }
    }
}

/// `None` and `null` both stand for "the zero value of the field".
fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

impl Matcher {
    fn eval(&self, steps: &[Step], at: Option<&Value>) -> bool {
        let Some((step, rest)) = steps.split_first() else {
            return self.test.holds(present(at)) != self.negated;
        };
        let at = present(at);
        match step {
            Step::Field(key) => self.eval(rest, at.and_then(|v| v.as_object()).and_then(|o| o.get(key))),
            Step::Key(key) => match at.and_then(|v| v.as_object()).and_then(|o| o.get(key)) {
                Some(v) => self.eval(rest, Some(v)),
                None => self.when_missing,
            },
            // Any element matching is enough (bexpr's implicit "any"); an
            // empty or absent list has no element that matches.
            Step::Each => at
                .and_then(|v| v.as_array())
                .is_some_and(|items| items.iter().any(|e| self.eval(rest, Some(e)))),
        }
    }
}

impl Test {
    fn holds(&self, v: Option<&Value>) -> bool {
        match self {
            Test::Equal(want) => want.equals(v),
            Test::Substring(needle) => as_string(v).is_some_and(|s| s.contains(needle.as_str())),
            Test::Element(want) => {
                v.and_then(|v| v.as_array()).is_some_and(|items| items.iter().any(|e| want.equals(Some(e))))
            }
            Test::HasKey(key) => v.and_then(|v| v.as_object()).is_some_and(|o| o.contains_key(key)),
            Test::Regex(re) => as_string(v).is_some_and(|s| re.is_match(&s)),
            Test::Empty => match v {
                None => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                Some(_) => false,
            },
        }
    }
}

/// A string field's value; scalars of another JSON type read as their text.
fn as_string(v: Option<&Value>) -> Option<std::borrow::Cow<'_, str>> {
    use std::borrow::Cow;
    match v {
        None => Some(Cow::Borrowed("")),
        Some(Value::String(s)) => Some(Cow::Borrowed(s)),
        Some(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
        Some(Value::Bool(b)) => Some(Cow::Owned(b.to_string())),
        Some(_) => None,
    }
}

impl Scalar {
    fn equals(&self, v: Option<&Value>) -> bool {
        match self {
            Scalar::String(want) => as_string(v).is_some_and(|s| s == want.as_str()),
            Scalar::Int(want) => match v {
                None => *want == 0,
                // A float-typed JSON number still equals an integral value.
                Some(Value::Number(n)) => {
                    n.as_i64().map_or_else(|| n.is_f64() && n.as_f64() == Some(*want as f64), |x| x == *want)
                }
                Some(Value::String(s)) => parse_int(s).is_ok_and(|x| x == *want),
                Some(_) => false,
            },
            Scalar::Uint(want) => match v {
                None => *want == 0,
                Some(Value::Number(n)) => n.as_u64() == Some(*want),
                Some(Value::String(s)) => parse_uint(s).is_ok_and(|x| x == *want),
                Some(_) => false,
            },
            Scalar::Float(want) => match v {
                None => *want == 0.0,
                Some(Value::Number(n)) => n.as_f64() == Some(*want),
                Some(Value::String(s)) => parse_float(s).is_ok_and(|x| x == *want),
                Some(_) => false,
            },
            Scalar::Bool(want) => match v {
                None => !*want,
                Some(Value::Bool(b)) => b == want,
                Some(Value::String(s)) => parse_bool(s).is_ok_and(|x| x == *want),
                Some(_) => false,
            },
        }
    }
}
