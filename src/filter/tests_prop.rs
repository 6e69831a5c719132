//! Property test: random boolean trees over a random record, printed with
//! only the parentheses precedence requires (plus random extra ones and
//! random spellings of each operator), must evaluate through `Filter`
//! exactly as a tiny independent evaluator evaluates the tree itself. A
//! wrong precedence, associativity or negation rule in the parser or the
//! evaluator makes the two disagree.

use super::{Field, Filter, Kind, Schema};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The record the reference evaluator reads directly (not through JSON).
#[derive(Debug)]
struct Rec {
    name: Option<String>,
    port: Option<i64>,
    on: Option<bool>,
    tags: Option<Vec<String>>,
    meta: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone)]
enum Atom {
    NameEq(String),
    NameContains(String),
    NamePrefix(String),
    PortEq(i64),
    OnEq(bool),
    TagIn(String),
    MetaEq(String, String),
    MetaEmpty(String),
    MetaHasKey(String),
}

#[derive(Debug, Clone)]
enum Tree {
    Or(Box<Tree>, Box<Tree>),
    And(Box<Tree>, Box<Tree>),
    Not(Box<Tree>),
    Leaf(Atom, bool),
}

const WORDS: &[&str] = &["", "a", "ab", "web", "b"];
const KEYS: &[&str] = &["x", "y"];
const PORTS: &[i64] = &[0, 1, 80];

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("Name", Kind::String),
        Field::new("Port", Kind::Int),
        Field::new("On", Kind::Bool),
        Field::new("Tags", Kind::List(Box::new(Kind::String))),
        Field::new("Meta", Kind::Map(Box::new(Kind::String))),
    ])
}

fn random_record(rng: &mut StdRng) -> Rec {
    let maybe = |rng: &mut StdRng| rng.random_bool(0.85);
    Rec {
        name: maybe(rng).then(|| pick(rng, WORDS).to_string()),
        port: maybe(rng).then(|| PORTS[rng.random_range(0..PORTS.len())]),
        on: maybe(rng).then(|| rng.random_bool(0.5)),
        tags: maybe(rng)
            .then(|| WORDS.iter().filter(|_| rng.random_bool(0.4)).map(|s| s.to_string()).collect()),
        meta: maybe(rng).then(|| {
            let mut m = BTreeMap::new();
            for k in KEYS {
                if rng.random_bool(0.6) {
                    m.insert(k.to_string(), pick(rng, WORDS).to_string());
                }
            }
            m
        }),
    }
}

/// The JSON the filter sees: absent fields are left out or `null`.
fn to_json(r: &Rec, rng: &mut StdRng) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>, rng: &mut StdRng| match v {
        Some(v) => {
            m.insert(k.into(), v);
        }
        None => {
            if rng.random_bool(0.5) {
                m.insert(k.into(), Value::Null);
            }
        }
    };
    put("Name", r.name.as_ref().map(|n| json!(n)), rng);
    put("Port", r.port.map(|p| json!(p)), rng);
    put("On", r.on.map(|b| json!(b)), rng);
    put("Tags", r.tags.as_ref().map(|t| json!(t)), rng);
    put("Meta", r.meta.as_ref().map(|t| json!(t)), rng);
    Value::Object(m)
}

fn random_atom(rng: &mut StdRng) -> Atom {
    match rng.random_range(0..9) {
        0 => Atom::NameEq(pick(rng, WORDS).into()),
        1 => Atom::NameContains(pick(rng, WORDS).into()),
        2 => Atom::NamePrefix(pick(rng, WORDS).into()),
        3 => Atom::PortEq(PORTS[rng.random_range(0..PORTS.len())]),
        4 => Atom::OnEq(rng.random_bool(0.5)),
        5 => Atom::TagIn(pick(rng, WORDS).into()),
        6 => Atom::MetaEq(pick(rng, KEYS).into(), pick(rng, WORDS).into()),
        7 => Atom::MetaEmpty(pick(rng, KEYS).into()),
        _ => Atom::MetaHasKey(pick(rng, KEYS).into()),
    }
}

fn random_tree(rng: &mut StdRng, depth: u32) -> Tree {
    if depth == 0 || rng.random_bool(0.3) {
        return Tree::Leaf(random_atom(rng), rng.random_bool(0.4));
    }
    match rng.random_range(0..5) {
        0 | 1 => Tree::Or(Box::new(random_tree(rng, depth - 1)), Box::new(random_tree(rng, depth - 1))),
        2 | 3 => Tree::And(Box::new(random_tree(rng, depth - 1)), Box::new(random_tree(rng, depth - 1))),
        _ => Tree::Not(Box::new(random_tree(rng, depth - 1))),
    }
}

/// The independent reference: plain Rust over the record's fields.
fn reference(t: &Tree, r: &Rec) -> bool {
    match t {
        Tree::Or(a, b) => reference(a, r) || reference(b, r),
        Tree::And(a, b) => reference(a, r) && reference(b, r),
        Tree::Not(a) => !reference(a, r),
        Tree::Leaf(atom, negated) => {
            let name = r.name.clone().unwrap_or_default();
            let tags = r.tags.clone().unwrap_or_default();
            let meta = r.meta.clone().unwrap_or_default();
            let positive = match atom {
                Atom::NameEq(v) => name == *v,
                Atom::NameContains(v) => name.contains(v.as_str()),
                Atom::NamePrefix(v) => name.starts_with(v.as_str()),
                Atom::PortEq(p) => r.port.unwrap_or(0) == *p,
                Atom::OnEq(b) => r.on.unwrap_or(false) == *b,
                Atom::TagIn(v) => tags.contains(v),
                Atom::MetaEq(k, v) => meta.get(k) == Some(v),
                Atom::MetaEmpty(k) => meta.get(k).is_none_or(|v| v.is_empty()),
                Atom::MetaHasKey(k) => meta.contains_key(k),
            };
            positive != *negated
        }
    }
}

fn ws(rng: &mut StdRng) -> &'static str {
    [" ", " ", "  ", "\t", "\n "][rng.random_range(0..5)]
}

/// A string value in one of bexpr's spellings.
fn value(rng: &mut StdRng, v: &str) -> String {
    match rng.random_range(0..3) {
        0 if !v.is_empty() => v.to_string(),
        1 => format!("`{v}`"),
        _ => format!("{v:?}"),
    }
}

fn meta_selector(rng: &mut StdRng, k: &str) -> String {
    if rng.random_bool(0.5) {
        format!("Meta.{k}")
    } else {
        format!("Meta[{k:?}]")
    }
}

fn render_atom(rng: &mut StdRng, atom: &Atom, negated: bool) -> String {
    let w = ws(rng);
    let (eq, not) = if negated { ("!=", "not ") } else { ("==", "") };
    match atom {
        Atom::NameEq(v) => format!("Name{w}{eq}{w}{}", value(rng, v)),
        Atom::NameContains(v) => {
            if rng.random_bool(0.5) {
                format!("Name {not}contains {}", value(rng, v))
            } else {
                format!("{} {not}in Name", value(rng, v))
            }
        }
        Atom::NamePrefix(v) => format!("Name {not}matches \"^{v}\""),
        Atom::PortEq(p) => {
            if rng.random_bool(0.5) {
                format!("Port {eq} {p}")
            } else {
                format!("Port{eq}\"{p}\"")
            }
        }
        Atom::OnEq(b) => {
            let spelled = match (b, rng.random_range(0..3)) {
                (true, 0) => "true",
                (true, 1) => "T",
                (true, _) => "\"1\"",
                (false, 0) => "false",
                (false, 1) => "F",
                (false, _) => "\"0\"",
            };
            format!("On {eq} {spelled}")
        }
        Atom::TagIn(v) => {
            if rng.random_bool(0.5) {
                format!("{}{w}{not}in{w}Tags", value(rng, v))
            } else {
                format!("Tags{w}{not}contains{w}{}", value(rng, v))
            }
        }
        Atom::MetaEq(k, v) => format!("{} {eq} {}", meta_selector(rng, k), value(rng, v)),
        Atom::MetaEmpty(k) => format!("{} is {not}empty", meta_selector(rng, k)),
        Atom::MetaHasKey(k) => format!("{} {not}in Meta", value(rng, k)),
    }
}

fn prec(t: &Tree) -> u8 {
    match t {
        Tree::Or(..) => 1,
        Tree::And(..) => 2,
        Tree::Not(_) => 3,
        Tree::Leaf(..) => 4,
    }
}

/// Prints `t` where the context needs at least precedence `need`: parens
/// only when required, sometimes also when not.
fn render(rng: &mut StdRng, t: &Tree, need: u8) -> String {
    let body = match t {
        Tree::Or(a, b) => {
            let (l, r) = (render(rng, a, 1), render(rng, b, 1));
            format!("{l}{}or{}{r}", ws(rng), ws(rng))
        }
        Tree::And(a, b) => {
            let (l, r) = (render(rng, a, 2), render(rng, b, 2));
            format!("{l}{}and{}{r}", ws(rng), ws(rng))
        }
        Tree::Not(a) => format!("not{}{}", ws(rng), render(rng, a, 3)),
        Tree::Leaf(atom, negated) => render_atom(rng, atom, *negated),
    };
    if prec(t) < need || rng.random_bool(0.1) {
        format!(
            "({}{body}{})",
            if rng.random_bool(0.3) { " " } else { "" },
            if rng.random_bool(0.3) { " " } else { "" }
        )
    } else {
        body
    }
}

#[test]
fn random_expressions_agree_with_reference_evaluator() {
    let schema = schema();
    let mut rng = StdRng::seed_from_u64(0x5eed_f11e);
    let mut checked = 0;
    let mut truths = 0;
    for _ in 0..4000 {
        let tree = random_tree(&mut rng, 5);
        let text = render(&mut rng, &tree, 0);
        let filter = match Filter::parse(&text, &schema) {
            Ok(f) => f,
            Err(e) => panic!("generated expression did not parse: {text:?}: {e}"),
        };
        for _ in 0..4 {
            let rec = random_record(&mut rng);
            let doc = to_json(&rec, &mut rng);
            let want = reference(&tree, &rec);
            assert_eq!(filter.matches(&doc), want, "expression {text:?}\nrecord {doc}\ntree {tree:?}");
            checked += 1;
            truths += usize::from(want);
        }
    }
    // Both answers occur often: the test would notice a constant evaluator.
    assert!(truths > checked / 5 && truths < checked * 4 / 5, "{truths} of {checked} true");
}

#[test]
fn mutated_expressions_never_panic() {
    // Random byte edits of valid expressions: parse and evaluate must
    // answer without panicking whatever comes out.
    let schema = schema();
    let mut rng = StdRng::seed_from_u64(7);
    let alphabet = b"()\"`[]. !=_-0123456789aAnotdriscemptyx\\\n\t";
    for _ in 0..4000 {
        let tree = random_tree(&mut rng, 3);
        let mut bytes = render(&mut rng, &tree, 0).into_bytes();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..=bytes.len());
            match rng.random_range(0..3) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 if at < bytes.len() => bytes[at] = alphabet[rng.random_range(0..alphabet.len())],
                _ => bytes.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(f) = Filter::parse(&text, &schema) {
            let rec = random_record(&mut rng);
            let _ = f.matches(&to_json(&rec, &mut rng));
        }
    }
}
