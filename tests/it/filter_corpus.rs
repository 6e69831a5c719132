//! Runs the seed corpus of `?filter=` expressions (tests/corpus/filter/,
//! one expression per file, shared with the future fuzz target) through the
//! parser, every endpoint schema and evaluation. Files named `ok-*` must
//! parse, `bad-*` must be refused; nothing may panic.

use consul::filter::{parse_expression, schemas, Filter, FilterError, Schema};
use serde_json::json;
use std::path::Path;

#[test]
fn every_corpus_expression_parses_or_fails_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/filter");
    let mut entries: Vec<_> =
        std::fs::read_dir(&dir).expect("corpus dir").map(|e| e.expect("dir entry").path()).collect();
    entries.sort();
    assert!(entries.len() >= 30, "only {} corpus files in {}", entries.len(), dir.display());

    let all_schemas: [&Schema; 7] = [
        schemas::node(),
        schemas::service_node(),
        schemas::node_service(),
        schemas::agent_service(),
        schemas::health_check(),
        schemas::service_health(),
        schemas::member(),
    ];
    let records = [
        json!({}),
        json!({"Node": {"Meta": {"rack": "r1"}}, "Service": {"Tags": ["primary"], "Port": 8080}, "Checks": [{"Status": "passing"}]}),
        json!({"Name": "web", "Meta": {"0": "zero", "kubernetes.io/name": "app"}, "Tags": ["canary"], "Port": "x"}),
    ];
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let bytes = std::fs::read(&path).expect("read corpus file");
        let text = String::from_utf8_lossy(&bytes);
        let parsed = parse_expression(&text);
        if name.starts_with("ok-") {
            assert!(parsed.is_ok(), "{name}: {:?}", parsed.err());
        } else if name.starts_with("bad-") {
            match parsed {
                Err(FilterError::Syntax { offset, message, .. }) => {
                    assert!(offset <= text.len(), "{name}: offset {offset} past the end");
                    assert!(!message.is_empty());
                }
                other => panic!("{name}: expected a syntax error, got {other:?}"),
            }
        }
        for schema in all_schemas {
            if let Ok(f) = Filter::parse(&text, schema) {
                for r in &records {
                    let _ = f.matches(r);
                }
            }
        }
    }
}
