//! Tidy tests: rules about the source tree itself, read as text, that the
//! compiler cannot check in a one-crate project (in the spirit of
//! rust-analyzer's tidy tests). The allowed dependency directions are data
//! below: changing a rule is one reviewed edit here and one in
//! docs/ARCHITECTURE.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which top-level modules each module may name (`crate::x`), space-separated. Dependencies
/// point down: front ends, then the agent, the server, consensus, and the
/// libraries and support modules at the bottom. The test also proves this
/// table has no cycle.
const ALLOWED: &[(&str, &str)] = &[
    // The command line: talks to a running agent through `api`; offline
    // commands use the file formats they read (config, snapshot archives,
    // watch plans, the remote-exec layout); see FILE_EXCEPTIONS.
    ("cli", "acl api catalog config config_entry coordinate definition duration event fsutil snapshot version watch"),
    // The composition root of `consul agent`, and the gossip wiring it starts.
    ("daemon", "agent api cluster config consensus datadir dns http logging rpc sdnotify server tls version watch"),
    ("cluster", "agent config duration gossip server"),
    // Front end: reaches state only through `agent::Agent`.
    ("http", "accept acl agent authmethod catalog config config_entry coordinate definition duration event filter gossip logging metrics rpc snapshot tls version"),
    ("agent", "acl catalog checks config coordinate definition dns duration event fsutil gossip logging metrics proc_group rpc server tls version watch"),
    ("server", "acl authmethod catalog config config_entry consensus coordinate duration gossip inject metrics rpc version"),
    // `jwt` auth methods: checks a login's bearer token (fetching JWKS keys)
    // and evaluates binding rules; used by the server.
    ("authmethod", "acl duration"),
    ("consensus", "catalog fsutil gossip inject metrics reply rpc"),
    ("rpc", "accept acl catalog config_entry tls"),
    // The agent's certificates and the rustls settings made from them.
    ("tls", "accept config"),
    ("definition", "catalog config"),
    ("event", "rpc"),
    ("snapshot", "catalog"),
    ("catalog", "acl config_entry coordinate metrics"),
    // Policy rules, the model the catalog stores and what a token may do:
    // pure, below everything that stores or enforces ACLs.
    ("acl", "config"),
    ("dns", "accept config metrics"),
    ("gossip", "accept config coordinate metrics reply"),
    ("checks", "api duration metrics proc_group"),
    ("watch", "api checks duration logging"),
    ("logging", "config metrics"),
    ("datadir", "fsutil"),
    ("config", "config_entry duration"),
    // Vivaldi network coordinates: pure arithmetic, below everything that
    // measures, stores or answers them.
    ("coordinate", ""),
    // Config entries: decoding, validation, discovery chains and intention
    // decisions as a pure library, below the catalog that stores them.
    ("config_entry", "duration"),
    ("api", ""),
    ("filter", ""),
    ("metrics", ""),
    ("duration", ""),
    ("fsutil", ""),
    ("version", ""),
    ("sdnotify", ""),
    ("inject", ""),
    ("accept", ""),
    ("proc_group", ""),
    // Waiting on a driver task's reply without hanging when it stops.
    ("reply", ""),
    // Test tooling: one entry point per input surface, so it may reach anything.
    ("fuzzing", "acl agent catalog config consensus definition dns filter gossip http rpc snapshot"),
];

/// Single files allowed one more dependency than their module, and why.
const FILE_EXCEPTIONS: &[(&str, &str, &str)] = &[
    ("cli/agent.rs", "daemon", "`consul agent` runs the agent in this process"),
    (
        "cli/operator_recover.rs",
        "consensus",
        "offline: writes raft/peers.json into a stopped server's data dir",
    ),
    ("cli/operator_recover.rs", "datadir", "offline: finds the stopped server's node id"),
];

/// Only these modules may name openraft: the rest goes through `consensus`.
const OPENRAFT_USERS: &[&str] = &["consensus", "fuzzing"];

struct SourceFile {
    /// Path below `src/`, with `/` separators.
    rel: String,
    /// Module path: `["server", "kv"]` for src/server/kv.rs.
    module: Vec<String>,
    /// The code, without comments and without its `#[cfg(test)]` tail.
    code: String,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Product source files: test-only files (`tests.rs`, `tests_*.rs`, a
/// `tests/` directory) and the binary's `main.rs`/`lib.rs` are skipped.
fn sources() -> Vec<SourceFile> {
    let root = src_dir();
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    let mut out = Vec::new();
    for p in paths {
        let rel = p.strip_prefix(&root).unwrap_or(&p).to_string_lossy().replace('\\', "/");
        let parts: Vec<&str> = rel.trim_end_matches(".rs").split('/').collect();
        let test_only = parts.iter().any(|c| *c == "tests" || c.starts_with("tests_"));
        if test_only || rel == "lib.rs" || rel == "main.rs" || rel == "tidy.rs" {
            continue;
        }
        let mut module: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
        if module.last().is_some_and(|m| m == "mod") {
            module.pop();
        }
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        out.push(SourceFile { rel, module, code: strip(&text) });
    }
    out
}

/// Drops line comments and everything from the first `#[cfg(test)]` on
/// (test modules sit at the end of a file).
fn strip(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// The identifiers that follow `prefix` in `code` (`crate::` → `server`).
fn names_after<'a>(code: &'a str, prefix: &str) -> Vec<(usize, &'a str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find(prefix) {
        let start = from + i + prefix.len();
        let end = code[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(code.len(), |e| start + e);
        let before = code[..from + i].chars().next_back();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') && end > start {
            let line = code[..start].matches('\n').count() + 1;
            out.push((line, &code[start..end]));
        }
        from = end.max(start);
    }
    out
}

fn allowed_table() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    ALLOWED.iter().map(|(m, deps)| (*m, deps.split_whitespace().collect())).collect()
}

/// Strongly connected components with more than one node (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(w: &mut Walk<'g>, v: &'g str) {
        let n = w.index.len();
        w.index.insert(v, n);
        w.low.insert(v, n);
        w.stack.push(v);
        if let Some(next) = w.graph.get(v) {
            for u in next {
                let u = u.as_str();
                if !w.index.contains_key(u) {
                    visit(w, u);
                    let l = w.low[u].min(w.low[v]);
                    w.low.insert(v, l);
                } else if w.stack.contains(&u) {
                    let l = w.index[u].min(w.low[v]);
                    w.low.insert(v, l);
                }
            }
        }
        if w.low[v] == w.index[v] {
            let mut comp = Vec::new();
            while let Some(u) = w.stack.pop() {
                comp.push(u.to_string());
                if u == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                w.found.push(comp);
            }
        }
    }
    let mut w =
        Walk { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in graph.keys() {
        if !w.index.contains_key(v.as_str()) {
            visit(&mut w, v);
        }
    }
    w.found
}

#[test]
fn the_allowed_directions_have_no_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = ALLOWED
        .iter()
        .map(|(m, deps)| (m.to_string(), deps.split_whitespace().map(str::to_string).collect()))
        .collect();
    assert_eq!(cycles(&graph), Vec::<Vec<String>>::new(), "ALLOWED itself allows a cycle");
    for (m, deps) in ALLOWED {
        for d in deps.split_whitespace() {
            assert!(graph.contains_key(d), "{m} may import {d}, which has no entry of its own");
        }
    }
}

#[test]
fn modules_import_only_what_the_architecture_allows() {
    let allowed = allowed_table();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for f in sources() {
        let top = f.module[0].as_str();
        seen.insert(top.to_string());
        let Some(ok) = allowed.get(top) else {
            problems.push(format!("src/{}: module `{top}` has no entry in tidy::ALLOWED", f.rel));
            continue;
        };
        for (line, dep) in names_after(&f.code, "crate::") {
            let excepted = FILE_EXCEPTIONS.iter().any(|(file, d, _)| *file == f.rel && *d == dep);
            if dep != top && !ok.contains(dep) && !excepted {
                problems.push(format!("src/{}:{line}: `{top}` must not use `crate::{dep}`", f.rel));
            }
        }
    }
    for (m, _) in ALLOWED {
        assert!(seen.contains(*m), "tidy::ALLOWED names `{m}`, which is not a module any more");
    }
    assert!(
        problems.is_empty(),
        "imports against docs/ARCHITECTURE.md (change tidy::ALLOWED and the doc together if one is \
         intended):\n{}",
        problems.join("\n")
    );
}

#[test]
fn files_within_a_module_form_no_cycle() {
    // Edges between the second-level modules of each top-level module:
    // `crate::top::x` anywhere in it, and `super::x` in its direct children.
    let files = sources();
    let mut per_module: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let children: BTreeSet<(String, String)> = files
        .iter()
        .filter(|f| f.module.len() >= 2)
        .map(|f| (f.module[0].clone(), f.module[1].clone()))
        .collect();
    for f in files.iter().filter(|f| f.module.len() >= 2) {
        let (top, me) = (&f.module[0], &f.module[1]);
        let mut deps: Vec<&str> =
            names_after(&f.code, &format!("crate::{top}::")).into_iter().map(|(_, d)| d).collect();
        if f.module.len() == 2 {
            deps.extend(names_after(&f.code, "super::").into_iter().map(|(_, d)| d));
        }
        let graph = per_module.entry(top.clone()).or_default();
        let edges = graph.entry(me.clone()).or_default();
        for d in deps {
            if d != me && children.contains(&(top.clone(), d.to_string())) {
                edges.insert(d.to_string());
            }
        }
    }
    let mut problems = Vec::new();
    for (top, graph) in &per_module {
        let found = cycles(graph);
        if !found.is_empty() {
            problems.push(format!("`{top}`: {found:?}"));
        }
    }
    assert!(problems.is_empty(), "files that import each other in a cycle:\n{}", problems.join("\n"));
}

#[test]
fn only_consensus_names_openraft() {
    let mut problems = Vec::new();
    for f in sources() {
        if OPENRAFT_USERS.contains(&f.module[0].as_str()) {
            continue;
        }
        for (line, _) in names_after(&f.code, "openraft::") {
            problems.push(format!("src/{}:{line}", f.rel));
        }
    }
    assert!(problems.is_empty(), "openraft used outside consensus:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_what_it_checks() {
    // The scanner must find real imports, or the tests above prove nothing.
    let code = strip("use crate::server::Server; // crate::http\nlet x = crate::agent::dc::target_dc();");
    let found: Vec<&str> = names_after(&code, "crate::").into_iter().map(|(_, d)| d).collect();
    assert_eq!(found, vec!["server", "agent"]);
    assert!(sources().iter().any(|f| f.rel == "server/endpoints.rs"));
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
}
