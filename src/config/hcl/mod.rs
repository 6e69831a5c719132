//! HCL config files and `-hcl` fragments: parsed with hcl-rs's HCL2
//! parser (falling back to a rewrite of common HCL1 forms, see
//! `compat.rs`) and converted into the same `serde_json::Value` a JSON
//! file gives, so both formats share one typed validation and one merge.
//!
//! Owns: HCL text → (value, where each key was written). Must not know
//! config keys; `file.rs` does the typing and `mod.rs` the error wording.

mod compat;
mod convert;

use serde_json::Value;
use std::collections::HashMap;

/// A parsed HCL source.
#[derive(Debug)]
pub struct HclDoc {
    pub value: Value,
    keys: HashMap<String, (usize, usize)>,
    /// Keys written as several blocks (so their value is a list), and how
    /// many times.
    repeated: HashMap<String, usize>,
}

impl HclDoc {
    /// When a typed error at `path` comes from a block written several
    /// times where the config takes only one (`ports { } ports { }`), the
    /// message to give instead, with the second block's position.
    pub fn repeated_block_error(&self, path: &str, message: &str) -> Option<String> {
        if !message.starts_with("invalid type") {
            return None;
        }
        let (key, count) = self.repeated.iter().find(|(key, _)| {
            path == key.as_str()
                || path.strip_prefix(key.as_str()).is_some_and(|rest| {
                    rest.starts_with('[') && rest.ends_with(']') && !rest[1..].contains(['[', '.'])
                })
        })?;
        let at = self
            .keys
            .get(&format!("{key}[1]"))
            .map(|(l, c)| format!(" (line {l}, column {c})"))
            .unwrap_or_default();
        Some(format!("{key}: the block is given {count} times but only one is allowed{at}"))
    }

    /// Where the key at `path` (as serde_path_to_error prints it, e.g.
    /// `service[1].check.interval`) was written, or its nearest enclosing
    /// key's position when the key itself is not in the file.
    pub fn position(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(pos) = self.keys.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// A syntax or conversion error, with the line and column in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct HclError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for HclError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (line {}, column {})", self.message, self.line, self.column)
    }
}

/// Parses HCL source text.
pub fn parse(text: &str) -> Result<HclDoc, HclError> {
    let lines = LineIndex::new(text);
    let first = match hcl::edit::parser::parse_body(text) {
        Ok(body) => return convert(&body, text, &|off| lines.locate(off)),
        Err(e) => e,
    };
    // HCL1 forms HCL2 rejects: rewrite and try again, mapping positions
    // back to the user's text.
    if let Some(rw) = compat::rewrite(text) {
        if let Ok(body) = hcl::edit::parser::parse_body(&rw.text) {
            return convert(&body, &rw.text, &|off| lines.locate(rw.original_offset(off)));
        }
    }
    Err(HclError {
        message: format!("invalid HCL: {}", first.message()),
        line: first.location().line(),
        column: first.location().column(),
    })
}

fn convert(
    body: &hcl::edit::structure::Body,
    src: &str,
    locate: convert::Locate<'_>,
) -> Result<HclDoc, HclError> {
    let mut c = convert::Converter::new(src, locate);
    let value = Value::Object(c.body(body, "")?);
    Ok(HclDoc { value, keys: c.keys, repeated: c.repeated })
}

/// Byte offset → 1-based (line, column) in a text.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    fn locate(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|s| *s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = self.text.get(start..offset).map(|s| s.chars().count()).unwrap_or(offset - start) + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(text: &str) -> Value {
        match parse(text) {
            Ok(d) => d.value,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn scalars_lists_objects() {
        let v = value(
            r#"
            datacenter = "dc1"
            server = true
            bootstrap_expect = 3
            ratio = 0.5
            neg = -1
            nothing = null
            retry_join = ["10.0.0.1", "10.0.0.2",]
            ports { http = 8501 }
            dns_config = { allow_stale = false, max_stale = "5s" }
        "#,
        );
        assert_eq!(
            v,
            json!({
                "datacenter": "dc1", "server": true, "bootstrap_expect": 3, "ratio": 0.5, "neg": -1,
                "nothing": null, "retry_join": ["10.0.0.1", "10.0.0.2"], "ports": {"http": 8501},
                "dns_config": {"allow_stale": false, "max_stale": "5s"}
            })
        );
    }

    #[test]
    fn repeated_blocks_become_lists() {
        let v = value("service { name = \"a\" }\nservice = { name = \"b\" }\nservice {\n name = \"c\"\n check { ttl = \"5s\" }\n}\n");
        assert_eq!(
            v,
            json!({"service": [{"name": "a"}, {"name": "b"}, {"name": "c", "check": {"ttl": "5s"}}]})
        );
        let v = value("service { name = \"a\" }");
        assert_eq!(v, json!({"service": {"name": "a"}}));
    }

    #[test]
    fn labels_nest() {
        assert_eq!(value("a \"x\" \"y\" {\n k = 1\n}"), json!({"a": {"x": {"y": {"k": 1}}}}));
    }

    #[test]
    fn strings_keep_interpolations_and_heredocs_work() {
        let v = value("args = [\"sh\", \"-c\", \"echo ${HOME} %{ if x }y%{ endif }\"]\nnotes = <<-EOT\n    line one\n      line two\n    EOT\nraw = <<EOF\nkeep\nEOF\n");
        assert_eq!(v["args"][2], "echo ${HOME} %{ if x }y%{ endif }");
        assert_eq!(v["notes"], "line one\n  line two\n");
        assert_eq!(v["raw"], "keep\n");
    }

    #[test]
    fn hcl1_one_line_blocks() {
        let v = value("service { name = \"web\" port = 80 check { http = \"http://localhost/\" interval = \"10s\" } }\nports { http = 1 dns = 2 }");
        assert_eq!(
            v,
            json!({
                "service": {"name": "web", "port": 80, "check": {"http": "http://localhost/", "interval": "10s"}},
                "ports": {"http": 1, "dns": 2}
            })
        );
        assert_eq!(value("node_meta { \"rack.id\" = \"r1\" }"), json!({"node_meta": {"rack.id": "r1"}}));
    }

    #[test]
    fn positions_are_in_the_original_text() {
        let d =
            parse("a = 1 b = 2\nservice { name = \"x\" port = 1 }\nservice {\n  name = \"y\"\n}\n").unwrap();
        assert_eq!(d.position("b"), Some((1, 7)));
        assert_eq!(d.position("service[0].port"), Some((2, 22)));
        assert_eq!(d.position("service[1].name"), Some((4, 3)));
        // A key that is not in the file falls back to its block.
        assert_eq!(d.position("service[1].bogus"), Some((3, 1)));
        assert_eq!(d.position("nothing.here"), None);
    }

    #[test]
    fn errors_have_lines() {
        let e = parse("a = 1\nb = \n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = parse("a = 1\nb = upper(\"x\")\n").unwrap_err();
        assert!(e.message.contains("function calls are not supported") && e.line == 2, "{e}");
        let e = parse("a = 1\nb = x\n").unwrap_err();
        assert!(e.message.contains("\"x\" is not a value") && e.line == 2, "{e}");
        let e = parse("a = 1\na = 2\n").unwrap_err();
        assert!(e.message.contains("redefined attribute") && e.line == 2, "{e}");
        let e = parse("a {\n}\na = 2\n").unwrap_err();
        assert!(e.message.contains("a is set more than once (first on line 1)") && e.line == 3, "{e}");
        let e = parse("a = \"unterminated\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }

    /// Mutates realistic HCL at random (seeded, so failures reproduce) and
    /// checks that parsing, the HCL1 rewrite and the conversion never panic
    /// and that every error has a position inside the text.
    #[test]
    fn mutated_configs_never_panic() {
        use rand::{Rng, SeedableRng};
        let corpus = [
            "service { name = \"web\" port = 80 check { http = \"http://x\" interval = \"10s\" } }\n",
            "datacenter = \"dc1\"\nports {\n  dns = -1\n}\nretry_join = [\"a\", \"b\"]\n",
            "node_meta { \"rack.id\" = \"r1\" }\nnotes = <<-EOT\n  hi ${x}\n  EOT\n",
            "a \"l\" { b = { c = [1, 2.5, true, null] } }\n# c\n/* d */ e = \"${f(\"}\")}\"\n",
            "bind_addr = \"{{ GetInterfaceIP \\\"eth0\\\" }}\"\nchecks = [ { ttl = \"5s\" }, { tcp = \"h:1\" } ]\n",
        ];
        let alphabet: Vec<char> = "{}[]()=,:\"\\\n #/*<-$%ab1.é\u{0}".chars().collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for round in 0..4000 {
            let mut chars: Vec<char> = corpus[round % corpus.len()].chars().collect();
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..=chars.len());
                match rng.random_range(0..3) {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 if at < chars.len() => chars[at] = alphabet[rng.random_range(0..alphabet.len())],
                    _ => chars.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                }
            }
            let text: String = chars.into_iter().collect();
            if let Err(e) = parse(&text) {
                let lines = text.split('\n').count();
                assert!(e.line >= 1 && e.line <= lines + 1, "{text:?}: {e}");
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "{",
            "}",
            "\"",
            "<<",
            "a = <<EOF",
            "a = [",
            "a = {",
            "= 1",
            "a.b = 1",
            "\u{0}",
            "a = 1e999999",
            "a = 99999999999999999999999",
        ] {
            let _ = parse(text);
        }
    }
}
