//! Decoding a config entry's fields the way Consul's decoder does: keys match
//! a field by name case-insensitively and with or without underscores
//! (`MeshGateway`, `mesh_gateway`), values are weakly typed (`"5"` for a
//! number, `"true"` for a bool, one value for a one-element list), and a key
//! that names no field is collected so the caller can refuse it with Consul's
//! `invalid config key` text. The output is the canonical JSON: Consul's
//! field names, in the schema's order, durations as Go strings.

use serde_json::{Map, Number, Value};

/// A field's type.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    Str,
    Bool,
    Int,
    Float,
    /// A Go `time.Duration`: a string such as `"15s"`, or nanoseconds.
    Dur,
    Strs,
    Ints,
    /// `map[string]string` (keys kept as written).
    StrMap,
    /// Free-form (`Config`, `Arguments`): kept as written.
    Any,
    Obj(&'static [F]),
    List(&'static [F]),
    /// A map from user-chosen keys to objects (`Subsets`, `Failover`).
    ObjMap(&'static [F]),
}

/// One field: Consul's name and its type.
#[derive(Clone, Copy, Debug)]
pub struct F(pub &'static str, pub Ty);

/// What decoding found wrong: type errors (reported first, as Consul's
/// decoder stops at them) and keys that name no field.
#[derive(Debug, Default)]
pub struct Problems {
    pub type_errors: Vec<String>,
    pub unused: Vec<String>,
}

fn fold(s: &str) -> String {
    s.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Go's name for the type of a decoded JSON value, as its errors print it.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn expected(ty: Ty) -> &'static str {
    match ty {
        Ty::Str => "string",
        Ty::Bool => "bool",
        Ty::Int => "int",
        Ty::Float => "float32",
        Ty::Dur => "time.Duration",
        Ty::Strs => "[]string",
        Ty::Ints => "[]int",
        Ty::StrMap => "map[string]string",
        Ty::Any => "interface {}",
        Ty::Obj(_) => "struct",
        Ty::List(_) => "[]struct",
        Ty::ObjMap(_) => "map[string]struct",
    }
}

impl Problems {
    fn bad_type(&mut self, path: &str, ty: Ty, got: &Value) {
        self.type_errors.push(format!(
            "'{path}' expected type '{}', got unconvertible type '{}', value: '{}'",
            expected(ty),
            go_type(got),
            match got {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        ));
    }
}

/// Decodes an object's fields. `skip` are keys the caller handles itself
/// (`Kind`, `Name`, the raft indexes): neither decoded nor refused.
pub fn decode_object(
    fields: &[F],
    input: &Map<String, Value>,
    path: &str,
    skip: &[&str],
    problems: &mut Problems,
) -> Map<String, Value> {
    let mut found: Vec<Option<Value>> = vec![None; fields.len()];
    for (key, value) in input {
        let folded = fold(key);
        if skip.iter().any(|s| fold(s) == folded) {
            continue;
        }
        match fields.iter().position(|f| fold(f.0) == folded) {
            Some(i) => {
                if value.is_null() {
                    continue;
                }
                let field_path = join(path, fields[i].0);
                if let Some(v) = decode_value(fields[i].1, value, &field_path, problems) {
                    found[i] = Some(v);
                }
            }
            None => problems.unused.push(join(path, key)),
        }
    }
    let mut out = Map::new();
    for (f, v) in fields.iter().zip(found) {
        if let Some(v) = v {
            out.insert(f.0.to_string(), v);
        }
    }
    out
}

/// Decodes one value as `ty`; `None` when it cannot (recorded in `problems`).
pub fn decode_value(ty: Ty, v: &Value, path: &str, problems: &mut Problems) -> Option<Value> {
    let out = match ty {
        Ty::Any => Some(v.clone()),
        Ty::Str => match v {
            Value::String(_) => Some(v.clone()),
            Value::Bool(b) => Some(Value::String(if *b { "1" } else { "0" }.into())),
            Value::Number(n) => Some(Value::String(n.to_string())),
            _ => None,
        },
        Ty::Bool => match v {
            Value::Bool(_) => Some(v.clone()),
            Value::Number(n) => Some(Value::Bool(n.as_f64() != Some(0.0))),
            Value::String(s) if s.is_empty() => Some(Value::Bool(false)),
            Value::String(s) => match s.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(Value::Bool(true)),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(Value::Bool(false)),
                _ => None,
            },
            _ => None,
        },
        Ty::Int => match v {
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Some(Value::from(i)),
                (None, Some(f)) if f.is_finite() && f.abs() < 9.0e18 => Some(Value::from(f.trunc() as i64)),
                _ => None,
            },
            Value::Bool(b) => Some(Value::from(i64::from(*b))),
            Value::String(s) if s.is_empty() => Some(Value::from(0)),
            Value::String(s) => s.parse::<i64>().ok().map(Value::from),
            _ => None,
        },
        Ty::Float => match v {
            Value::Number(_) => Some(v.clone()),
            Value::Bool(b) => Some(Value::from(u8::from(*b))),
            Value::String(s) if s.is_empty() => Some(Value::from(0)),
            Value::String(s) => {
                s.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(Number::from_f64).map(Value::Number)
            }
            _ => None,
        },
        Ty::Dur => match v {
            Value::String(s) if s.is_empty() => Some(Value::String("0s".into())),
            Value::String(s) => match crate::duration::parse_nanos(s) {
                Ok(n) => Some(Value::String(crate::duration::format_nanos(n))),
                Err(e) => {
                    problems.type_errors.push(format!("error decoding '{path}': {e}"));
                    return None;
                }
            },
            Value::Number(n) => {
                n.as_i64().map(|n| Value::String(crate::duration::format_nanos(i128::from(n))))
            }
            _ => None,
        },
        Ty::Strs | Ty::Ints => {
            let item = if matches!(ty, Ty::Strs) { Ty::Str } else { Ty::Int };
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                // Go's weak decoding: one value where a list is expected.
                Value::String(_) | Value::Number(_) | Value::Bool(_) => vec![v],
                Value::Object(m) if m.is_empty() => Vec::new(),
                _ => return bad(problems, path, ty, v),
            };
            let mut out = Vec::new();
            for (i, it) in items.into_iter().enumerate() {
                out.push(decode_value(item, it, &format!("{path}[{i}]"), problems)?);
            }
            Some(Value::Array(out))
        }
        Ty::StrMap => match one_object(v) {
            Some(m) => {
                let mut out = Map::new();
                for (k, val) in m {
                    out.insert(k.clone(), decode_value(Ty::Str, val, &format!("{path}[{k}]"), problems)?);
                }
                Some(Value::Object(out))
            }
            None => None,
        },
        Ty::Obj(fields) => match one_object(v) {
            Some(m) => Some(Value::Object(decode_object(fields, m, path, &[], problems))),
            None => None,
        },
        Ty::List(fields) => {
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                Value::Object(_) => vec![v],
                _ => return bad(problems, path, ty, v),
            };
            let mut out = Vec::new();
            for (i, it) in items.into_iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                match it {
                    Value::Object(m) => {
                        out.push(Value::Object(decode_object(fields, m, &item_path, &[], problems)))
                    }
                    other => return bad(problems, &item_path, Ty::Obj(fields), other),
                }
            }
            Some(Value::Array(out))
        }
        Ty::ObjMap(fields) => match one_object(v) {
            Some(m) => {
                let mut out = Map::new();
                for (k, val) in m {
                    let item_path = format!("{path}[{k}]");
                    match one_object(val) {
                        Some(inner) => {
                            out.insert(
                                k.clone(),
                                Value::Object(decode_object(fields, inner, &item_path, &[], problems)),
                            );
                        }
                        None => return bad(problems, &item_path, Ty::Obj(fields), val),
                    }
                }
                Some(Value::Object(out))
            }
            None => None,
        },
    };
    if out.is_none() {
        problems.bad_type(path, ty, v);
    }
    out
}

fn bad(problems: &mut Problems, path: &str, ty: Ty, v: &Value) -> Option<Value> {
    problems.bad_type(path, ty, v);
    None
}

/// An object, or (HCL's repeated blocks) a one-element list of one.
fn one_object(v: &Value) -> Option<&Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        Value::Array(a) if a.len() == 1 => a[0].as_object(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INNER: &[F] = &[F("Mode", Ty::Str)];
    const FIELDS: &[F] = &[
        F("Protocol", Ty::Str),
        F("MeshGateway", Ty::Obj(INNER)),
        F("MaxConnections", Ty::Int),
        F("Timeout", Ty::Dur),
        F("Tags", Ty::Strs),
        F("Items", Ty::List(INNER)),
    ];

    fn run(v: Value) -> (Map<String, Value>, Problems) {
        let mut p = Problems::default();
        let out = decode_object(FIELDS, v.as_object().unwrap(), "", &["Kind"], &mut p);
        (out, p)
    }

    #[test]
    fn keys_match_in_any_case_and_snake_case() {
        let (out, p) = run(json!({"kind": "x", "PROTOCOL": "http", "mesh_gateway": {"mode": "local"},
            "max_connections": "5", "Timeout": "90s", "tags": "a", "Items": {"Mode": "m"}}));
        assert!(p.type_errors.is_empty() && p.unused.is_empty(), "{p:?}");
        assert_eq!(
            Value::Object(out),
            json!({"Protocol": "http", "MeshGateway": {"Mode": "local"}, "MaxConnections": 5,
                "Timeout": "1m30s", "Tags": ["a"], "Items": [{"Mode": "m"}]})
        );
    }

    #[test]
    fn unknown_keys_and_bad_types_are_reported_with_paths() {
        let (_, p) = run(json!({"Foo": 1, "MeshGateway": {"Bar": 2}, "Items": [{"Mode": "x", "Baz": 1}]}));
        assert_eq!(p.unused, vec!["Foo", "MeshGateway.Bar", "Items[0].Baz"]);
        let (_, p) = run(json!({"Protocol": {"a": 1}, "MaxConnections": "many", "Timeout": "soon"}));
        assert_eq!(p.type_errors.len(), 3, "{p:?}");
        assert!(
            p.type_errors[0].starts_with("'Protocol' expected type 'string', got unconvertible type 'map")
        );
    }
}
