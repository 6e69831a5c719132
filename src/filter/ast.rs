//! The syntax tree of a filter expression, before any schema is applied.
//! Plain data: positions are byte offsets into the original input so that
//! later errors can point back at the text.

use std::fmt;

/// A boolean expression. `and`/`or` chains are flattened (n-ary), so a long
/// chain costs no recursion depth; only parentheses and `not` nest.
#[derive(Clone, Debug, PartialEq)]
pub enum Expression {
    Or(Vec<Expression>),
    And(Vec<Expression>),
    Not(Box<Expression>),
    Match(MatchExpr),
}

/// One `<selector> <op> <value>` (or `<value> in <selector>`, or
/// `<selector> is [not] empty`).
#[derive(Clone, Debug, PartialEq)]
pub struct MatchExpr {
    pub selector: Selector,
    pub op: MatchOp,
    /// Absent for `is empty` / `is not empty`.
    pub value: Option<Literal>,
}

/// A dotted/indexed path such as `Service.Meta["env"]`: one string per
/// segment, index keys already unquoted.
#[derive(Clone, Debug, PartialEq)]
pub struct Selector {
    pub path: Vec<String>,
    pub offset: usize,
}

impl fmt::Display for Selector {
    /// Segments joined with `.`, as Consul prints selectors in errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path.join("."))
    }
}

/// A value as written: bexpr keeps every value as its raw text and only
/// converts it once it knows the type of the field it is compared with.
#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    /// The text after unquoting (strings), as written (numbers), or the
    /// segments joined with `.` (bare words).
    pub raw: String,
    pub kind: LiteralKind,
    pub offset: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiteralKind {
    /// `"..."` or `` `...` ``.
    String,
    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`.
    Number,
    /// A bare word (same syntax as a selector), e.g. `passing` or `true`.
    Word,
}

/// The match operators. `contains`/`not contains` are `In`/`NotIn` with the
/// operands the other way round, exactly as in bexpr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
    Matches,
    NotMatches,
}

impl MatchOp {
    /// The operator without its negation, and whether it was negated.
    pub fn split(self) -> (MatchOp, bool) {
        match self {
            MatchOp::NotEqual => (MatchOp::Equal, true),
            MatchOp::NotIn => (MatchOp::In, true),
            MatchOp::IsNotEmpty => (MatchOp::IsEmpty, true),
            MatchOp::NotMatches => (MatchOp::Matches, true),
            op => (op, false),
        }
    }

    /// The answer for a map key that is not there: nothing equals, is in
    /// or matches a missing key, and a missing key is empty.
    pub fn when_key_missing(self) -> bool {
        let (base, negated) = self.split();
        (base == MatchOp::IsEmpty) != negated
    }
}

impl fmt::Display for MatchOp {
    /// Consul's names for the operators (used in its error messages).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Equal => "Equal",
            MatchOp::NotEqual => "Not Equal",
            MatchOp::In => "In",
            MatchOp::NotIn => "Not In",
            MatchOp::IsEmpty => "Is Empty",
            MatchOp::IsNotEmpty => "Is Not Empty",
            MatchOp::Matches => "Matches",
            MatchOp::NotMatches => "Not Matches",
        })
    }
}
