//! Consul's `?filter=` expressions (HashiCorp's "bexpr" language): parsing,
//! validation of selectors against an endpoint's [`Schema`], and evaluation
//! over the `serde_json::Value` records the HTTP views render.
//!
//! Owns: the grammar (`parser`), the syntax tree (`ast`), literal decoding
//! with Go's rules (`literal`), schemas and selector resolution (`schema`,
//! `schemas`), and evaluation (`eval`). Must not touch HTTP types, the
//! catalog or the agent: `http::query` turns a [`FilterError`] into a 400 and
//! the handlers decide which records are filtered.
//!
//! The flow is `parse_expression` (pure syntax, no schema; the fuzzing entry
//! point) → [`Filter::parse`] (binds every selector to the schema, coerces
//! values to the field's type, compiles regexes) → [`Filter::matches`]
//! (total: never fails and never panics, whatever the JSON looks like).
//!
//! Everything is bounded: expressions longer than [`MAX_EXPRESSION_LEN`]
//! bytes or nesting deeper than [`MAX_DEPTH`] are refused, regexes are
//! compiled by `regex-lite` (linear-time matching) under a size cap.

mod ast;
mod eval;
mod literal;
mod parser;
mod schema;
pub mod schemas;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_prop;

pub use ast::{Expression, Literal, LiteralKind, MatchExpr, MatchOp, Selector};
pub use parser::parse_expression;
pub use schema::{Field, Kind, Schema};

use serde_json::Value;

/// The longest expression accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 4096;

/// The deepest nesting of parentheses and `not` accepted.
pub const MAX_DEPTH: usize = 64;

/// The most compiled-regex memory one `matches` operand may use.
pub const MAX_REGEX_SIZE: usize = 256 * 1024;

/// Why an expression was refused. `Display` gives the detail only; Consul
/// prefixes it with [`CONSUL_ERROR_PREFIX`] in its 400 answers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Not in the grammar (or over a limit), at a byte offset of the input.
    #[error("{line}:{column} ({offset}): {message}")]
    Syntax { offset: usize, line: usize, column: usize, message: String },
    /// Well-formed, but wrong for this endpoint's records (unknown selector,
    /// operator the field does not support, value of the wrong type, bad
    /// regex). Worded as Consul words these.
    #[error("{0}")]
    Invalid(String),
}

impl FilterError {
    /// The byte offset a syntax error points at.
    pub fn offset(&self) -> Option<usize> {
        match self {
            FilterError::Syntax { offset, .. } => Some(*offset),
            FilterError::Invalid(_) => None,
        }
    }
}

/// What Consul puts before every filter error it answers with.
pub const CONSUL_ERROR_PREFIX: &str = "Failed to create boolean expression evaluator: ";

/// A parsed expression bound to a schema, ready to test records.
#[derive(Debug)]
pub struct Filter {
    root: eval::Node,
}

impl Filter {
    /// Parses `expr` and binds it to `schema`. Pure: the same input always
    /// gives the same answer, and no input makes it panic.
    pub fn parse(expr: &str, schema: &Schema) -> Result<Filter, FilterError> {
        let ast = parse_expression(expr)?;
        let root = eval::compile(&ast, schema)?;
        Ok(Filter { root })
    }

    /// Whether one record (a JSON object as the endpoint renders it) matches.
    pub fn matches(&self, record: &Value) -> bool {
        self.root.eval(record)
    }
}
