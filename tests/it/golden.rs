//! Golden JSON: each endpoint's response shape is compared exactly with a
//! file under tests/golden/, after replacing values that differ per run
//! (node IDs, raft indexes) with placeholders. `UPDATE_GOLDEN=1` rewrites
//! the files (review the diff: they pin Consul's shapes).

use serde_json::Value;
use std::path::PathBuf;

fn normalize(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                match k.as_str() {
                    "CreateIndex" | "ModifyIndex" | "LockIndex" if val.is_u64() => {
                        *val = Value::String("<index>".into())
                    }
                    "ID" | "NodeID"
                        if val.as_str().is_some_and(|s| s.len() == 36 && s.matches('-').count() == 4) =>
                    {
                        *val = Value::String("<uuid>".into())
                    }
                    "id" if val.as_str().is_some_and(|s| s.len() == 36) => {
                        *val = Value::String("<uuid>".into())
                    }
                    "ContentHash" => *val = Value::String("<hash>".into()),
                    _ => normalize(val),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// Compares `actual` with tests/golden/<name>.json; the agent's own
/// (random) loopback address becomes `<agent-ip>`.
pub fn check(name: &str, actual: &Value, agent_ip: &str) {
    let text = actual.to_string().replace(agent_ip, "<agent-ip>");
    let mut actual: Value = serde_json::from_str(&text).unwrap();
    normalize(&mut actual);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.json"));
    let rendered = serde_json::to_string_pretty(&actual).unwrap() + "\n";
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!("missing golden file {}; run with UPDATE_GOLDEN=1 to create it", path.display())
    });
    assert_eq!(rendered, expected, "{name}: response shape differs from {}", path.display());
}
