//! What an endpoint's records look like to a filter: the selectors Consul
//! accepts (its Go field names) with their types, and where each one lives
//! in our JSON rendering. Consul derives this from its Go structs; we have
//! no such structs, so every endpoint hands over a static [`Schema`].
//!
//! A selector is valid when every segment names a field of a struct, a key
//! of a map, or a field of the struct elements of a list. The type at the
//! end decides the operators allowed and how the value is converted.

use super::ast::MatchOp;
use MatchOp::{Equal, In, IsEmpty, IsNotEmpty, Matches, NotEqual, NotIn, NotMatches};

/// The type of a field, as bexpr sees Go types.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    String,
    /// Go's signed integers (`int`, `int64`, ...).
    Int,
    /// Go's unsigned integers (`uint16`, `uint64`, ...).
    Uint,
    Float,
    Bool,
    /// A list. Of scalars: `in`/`contains` test membership. Of structs:
    /// selectors go through it, matching when any element matches.
    List(Box<Kind>),
    /// A map with string keys: `in`/`contains` test the keys, and any key
    /// may be selected (`Meta.env`, `Meta["env"]`).
    Map(Box<Kind>),
    /// Named fields; no operator applies to the struct itself.
    Struct(Vec<Field>),
}

/// A field of a struct: the name selectors use, and the key it has in the
/// JSON record (usually the same; `ServiceAddress` renders as
/// `address`/`port` while selectors say `Address`/`Port`).
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub json_key: String,
    pub kind: Kind,
}

impl Field {
    pub fn new(name: &str, kind: Kind) -> Field {
        Field { name: name.to_string(), json_key: name.to_string(), kind }
    }

    /// A field whose JSON key differs from its selector name.
    pub fn renamed(name: &str, json_key: &str, kind: Kind) -> Field {
        Field { name: name.to_string(), json_key: json_key.to_string(), kind }
    }
}

/// The records one endpoint filters: the fields of the top-level object.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub fields: Vec<Field>,
}

impl Schema {
    pub fn new(fields: Vec<Field>) -> Schema {
        Schema { fields }
    }

    /// Every valid selector with the operators it supports, in Consul's
    /// documentation style (`Meta.<any>` for map values). For docs/tests.
    pub fn selectors(&self) -> Vec<(String, Vec<MatchOp>)> {
        let mut out = Vec::new();
        walk(&self.fields, "", &mut out);
        out
    }
}

fn walk(fields: &[Field], prefix: &str, out: &mut Vec<(String, Vec<MatchOp>)>) {
    for f in fields {
        let path = if prefix.is_empty() { f.name.clone() } else { format!("{prefix}.{}", f.name) };
        walk_kind(&f.kind, &path, out);
    }
}

fn walk_kind(kind: &Kind, path: &str, out: &mut Vec<(String, Vec<MatchOp>)>) {
    let ops = kind.operators();
    if !ops.is_empty() {
        out.push((path.to_string(), ops.to_vec()));
    }
    match kind {
        Kind::Struct(fields) => walk(fields, path, out),
        Kind::List(elem) => {
            if let Kind::Struct(fields) = elem.as_ref() {
                walk(fields, path, out);
            }
        }
        Kind::Map(value) => walk_kind(value, &format!("{path}.<any>"), out),
        _ => {}
    }
}

const STRING_OPS: &[MatchOp] = &[Equal, NotEqual, In, NotIn, Matches, NotMatches, IsEmpty, IsNotEmpty];
const SCALAR_OPS: &[MatchOp] = &[Equal, NotEqual];
const SCALAR_LIST_OPS: &[MatchOp] = &[In, NotIn, IsEmpty, IsNotEmpty];
const STRUCT_LIST_OPS: &[MatchOp] = &[IsEmpty, IsNotEmpty];
const MAP_OPS: &[MatchOp] = &[IsEmpty, IsNotEmpty, In, NotIn];

impl Kind {
    /// The operators a selector ending at this kind supports. Strings also
    /// take `is empty` (newer bexpr allows it; Consul's docs list only the
    /// others).
    pub fn operators(&self) -> &'static [MatchOp] {
        match self {
            Kind::String => STRING_OPS,
            Kind::Int | Kind::Uint | Kind::Float | Kind::Bool => SCALAR_OPS,
            Kind::List(elem) if matches!(elem.as_ref(), Kind::Struct(_) | Kind::List(_) | Kind::Map(_)) => {
                STRUCT_LIST_OPS
            }
            Kind::List(_) => SCALAR_LIST_OPS,
            Kind::Map(_) => MAP_OPS,
            Kind::Struct(_) => &[],
        }
    }

    pub fn is_scalar(&self) -> bool {
        matches!(self, Kind::String | Kind::Int | Kind::Uint | Kind::Float | Kind::Bool)
    }
}

/// One step from a value towards the selected field in the JSON record.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// A struct field: absent or `null` means the field's zero value.
    Field(String),
    /// A map key: absent means "missing key" (see `MatchOp::when_key_missing`).
    Key(String),
    /// Into every element of a list; the match holds if it holds for any.
    Each,
}

/// Resolves a selector path against the schema: the JSON steps to follow
/// and the kind found at the end, or the prefix that is not valid.
pub fn resolve<'s>(schema: &'s Schema, path: &[String]) -> Result<(Vec<Step>, &'s Kind), usize> {
    let mut steps = Vec::with_capacity(path.len() + 1);
    let mut fields: &'s [Field] = &schema.fields;
    let mut current: Option<&'s Kind> = None;
    for (i, seg) in path.iter().enumerate() {
        let next: &'s Kind = match current {
            None => {
                let f = fields.iter().find(|f| &f.name == seg).ok_or(i)?;
                steps.push(Step::Field(f.json_key.clone()));
                &f.kind
            }
            Some(Kind::Struct(fs)) => {
                fields = fs;
                let f = fields.iter().find(|f| &f.name == seg).ok_or(i)?;
                steps.push(Step::Field(f.json_key.clone()));
                &f.kind
            }
            Some(Kind::Map(value)) => {
                steps.push(Step::Key(seg.clone()));
                value
            }
            Some(Kind::List(elem)) => match elem.as_ref() {
                Kind::Struct(fs) => {
                    let f = fs.iter().find(|f| &f.name == seg).ok_or(i)?;
                    steps.push(Step::Each);
                    steps.push(Step::Field(f.json_key.clone()));
                    &f.kind
                }
                _ => return Err(i),
            },
            Some(_) => return Err(i),
        };
        current = Some(next);
    }
    current.map(|k| (steps, k)).ok_or(0)
}
