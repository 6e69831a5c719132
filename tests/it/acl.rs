//! ACL enforcement end to end, with real agents on loopback: the matrix
//! (each resource × a read, write and deny token, the anonymous token, no
//! token and an unknown secret, under both default policies) over HTTP and
//! straight at the server's RPC port; a client agent in front of a server
//! (its own endpoints, its token cache after a policy is narrowed, agent
//! tokens persisted across a restart); blocking queries across a policy
//! change; bootstrap and its reset; snapshots; bad input; and a search of
//! every log and diagnostics endpoint for the secrets the tests used.
//! (`acl_cli` covers the CLI; this module talks HTTP and RPC itself.)

use crate::common::wait::wait_until;
use crate::harness::Agent;
use consul::rpc::client::{CallError, RpcClient};
use consul::rpc::method;
use consul::rpc::{RequestContext, RpcError};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROOT: &str = "6c5f0a3e-91d2-4b7a-8e44-2f1d9b0c7a15";
const ANON_ACCESSOR: &str = "00000000-0000-0000-0000-000000000002";
const UNKNOWN: &str = "0badc0de-0000-4000-8000-00000000dead";

/// One HTTP answer.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn filtered(&self) -> bool {
        self.header("X-Consul-Results-Filtered-By-ACLs") == Some("true")
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A request written by hand, so a test controls every header byte
/// (`extra`), over HTTP/1.0 (the answer ends when the connection closes).
async fn raw(addr: &str, method: &str, path: &str, extra: &[(&str, &[u8])], body: &[u8]) -> Resp {
    let mut s = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n", body.len())
        .into_bytes();
    for (k, v) in extra {
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    s.write_all(&req).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("answer timed out")
        .expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end: {text}"));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp { status, headers, body: body.to_string() }
}

/// A request with `token` (if any) as `X-Consul-Token`.
async fn req(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> Resp {
    match token {
        Some(t) => raw(addr, method, path, &[("X-Consul-Token", t.as_bytes())], body.as_bytes()).await,
        None => raw(addr, method, path, &[], body.as_bytes()).await,
    }
}

async fn ok(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> Resp {
    let r = req(addr, method, path, token, body).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    r
}

async fn policy(addr: &str, name: &str, rules: &str) -> String {
    policy_as(addr, ROOT, name, rules).await
}

async fn policy_as(addr: &str, root: &str, name: &str, rules: &str) -> String {
    let body = json!({"Name": name, "Rules": rules}).to_string();
    ok(addr, "PUT", "/v1/acl/policy", Some(root), &body).await.json()["ID"].as_str().unwrap().to_string()
}

/// A token linking the named policies: `(accessor, secret)`.
async fn token(addr: &str, root: &str, policies: &[&str]) -> (String, String) {
    let links: Vec<Value> = policies.iter().map(|p| json!({"Name": p})).collect();
    let body = json!({"Description": "acl test", "Policies": links}).to_string();
    let t = ok(addr, "PUT", "/v1/acl/token", Some(root), &body).await.json();
    (t["AccessorID"].as_str().unwrap().to_string(), t["SecretID"].as_str().unwrap().to_string())
}

fn acl_hcl(default_policy: &str, more: &str) -> String {
    format!(
        r#"acl {{ enabled = true
                 default_policy = "{default_policy}"
                 tokens {{ initial_management = "{ROOT}" }} }}
           {more}"#
    )
}

/// A dev agent with ACLs on, ready once its management token works.
async fn acl_dev(default_policy: &str) -> Agent {
    let a = Agent::dev(&["-hcl", &acl_hcl(default_policy, ""), "-log-level=trace"]);
    wait_acl_ready(&a, ROOT).await;
    a
}

async fn wait_acl_ready(a: &Agent, root: &str) {
    let addr = a.addr();
    let ready = wait_until(Duration::from_secs(30), || async {
        a.try_get("/v1/status/leader").await.is_some()
            && req(&addr, "GET", "/v1/acl/token/self", Some(root), "").await.status == 200
    })
    .await;
    assert!(ready, "ACLs never became ready at {addr}\n{}", a.output_text());
}

fn rules_all(disposition: &str) -> String {
    let mut r = String::new();
    for res in ["key", "node", "service", "session", "event", "agent"] {
        r.push_str(&format!("{res}_prefix \"\" {{ policy = \"{disposition}\" }}\n"));
    }
    r.push_str(&format!("operator = \"{disposition}\"\nkeyring = \"{disposition}\"\n"));
    r
}

/// Who asks, in the matrix.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Read,
    Write,
    Deny,
    /// `X-Consul-Token: anonymous`.
    Anonymous,
    /// No token at all.
    Nobody,
    Unknown,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// One object: 403 when not allowed.
    Read,
    /// A collection: `marker` vanishes when not allowed, with the
    /// results-filtered header only when a token was sent.
    List(&'static str),
    /// A change: 403 when not allowed.
    Write,
    /// A transaction: 409 with the refusal as the operation's error.
    Txn,
}

/// One row of the matrix: a request and the permission it needs.
struct Case {
    kind: Kind,
    method: &'static str,
    path: String,
    body: String,
    /// `resource:access`, and the segment in the refusal text.
    perm: &'static str,
    on: Option<&'static str>,
}

fn case(
    kind: Kind,
    method: &'static str,
    path: &str,
    body: &str,
    perm: &'static str,
    on: Option<&'static str>,
) -> Case {
    Case { kind, method, path: path.to_string(), body: body.to_string(), perm, on }
}

/// Whether `who` holds `perm` (`res:read|write`) under `default_allow`.
fn allowed(who: Who, perm: &str, default_allow: bool) -> bool {
    let (res, access) = perm.split_once(':').unwrap();
    if res == "acl" {
        // Only a rule grants acl, whatever the default (none of these has one).
        return false;
    }
    match who {
        Who::Read => access == "read",
        Who::Write => true,
        Who::Deny | Who::Unknown => false,
        Who::Anonymous | Who::Nobody => default_allow,
    }
}

/// What a refusal says for the caller with `accessor`.
fn denied(accessor: &str, perm: &str, on: Option<&str>) -> String {
    match on {
        Some(seg) => {
            format!("Permission denied: token with AccessorID '{accessor}' lacks permission '{perm}' on \"{seg}\"")
        }
        None => format!("Permission denied: token with AccessorID '{accessor}' lacks permission '{perm}'"),
    }
}

/// The data every row reads, written with the management token.
async fn fixtures(addr: &str) -> String {
    ok(addr, "PUT", "/v1/kv/m/k", Some(ROOT), "v").await;
    let reg = json!({
        "Node": "n1", "Address": "10.1.1.1",
        "Service": {"ID": "svc1", "Service": "svc1", "Port": 80},
        "Checks": [{"CheckID": "n1check", "Name": "n1check", "Status": "passing"}],
    });
    ok(addr, "PUT", "/v1/catalog/register", Some(ROOT), &reg.to_string()).await;
    let svc = json!({"Name": "asvc", "Port": 81, "Check": {"CheckID": "asvc-check", "TTL": "60s"}});
    ok(addr, "PUT", "/v1/agent/service/register", Some(ROOT), &svc.to_string()).await;
    let s = ok(addr, "PUT", "/v1/session/create", Some(ROOT), r#"{"Node":"dev"}"#).await.json();
    ok(addr, "PUT", "/v1/event/fire/ev1", Some(ROOT), "").await;
    s["ID"].as_str().unwrap().to_string()
}

fn cases(session: &str) -> Vec<Case> {
    use Kind::*;
    // A fresh meta value each time: re-posting a node unchanged needs no
    // node:write (as in Consul), so every request must change it.
    let reg_node = r#"{"Node":"n2","Address":"10.1.1.2","NodeMeta":{"seq":"{seq}"}}"#;
    let reg_svc = r#"{"Node":"n1","Address":"10.1.1.1","SkipNodeUpdate":true,"Service":{"Service":"svc2"}}"#;
    let txn_get = r#"[{"KV":{"Verb":"get","Key":"m/k"}}]"#;
    let txn_set = r#"[{"KV":{"Verb":"set","Key":"m/t","Value":"dg=="}}]"#;
    vec![
        // key
        case(Read, "GET", "/v1/kv/m/k", "", "key:read", Some("m/k")),
        case(List("\"m/k\""), "GET", "/v1/kv/m/?recurse", "", "key:read", None),
        case(List("\"m/k\""), "GET", "/v1/kv/m/?keys", "", "key:read", None),
        case(Write, "PUT", "/v1/kv/m/w", "x", "key:write", Some("m/w")),
        // A recursive delete needs write on the whole prefix.
        case(Write, "DELETE", "/v1/kv/zz/?recurse", "", "key:write", Some("zz/")),
        // A transaction's reads are filtered, its writes refused per operation.
        case(List("\"m/k\""), "PUT", "/v1/txn", txn_get, "key:read", None),
        case(Txn, "PUT", "/v1/txn", txn_set, "key:write", Some("m/t")),
        // node and service, through catalog and health
        case(List("\"n1\""), "GET", "/v1/catalog/nodes", "", "node:read", None),
        case(List("\"n1\""), "GET", "/v1/catalog/node/n1", "", "node:read", None),
        case(List("\"n1check\""), "GET", "/v1/health/node/n1", "", "node:read", None),
        case(Write, "PUT", "/v1/catalog/register", reg_node, "node:write", Some("n2")),
        case(List("\"svc1\""), "GET", "/v1/catalog/services", "", "service:read", None),
        case(List("\"svc1\""), "GET", "/v1/catalog/service/svc1", "", "service:read", None),
        case(List("\"svc1\""), "GET", "/v1/health/service/svc1", "", "service:read", None),
        case(Write, "PUT", "/v1/catalog/register", reg_svc, "service:write", Some("svc2")),
        // session
        case(List("\"dev\""), "GET", "/v1/session/list", "", "session:read", None),
        case(List("\"dev\""), "GET", &format!("/v1/session/info/{session}"), "", "session:read", None),
        case(Write, "PUT", "/v1/session/create", r#"{"Node":"dev"}"#, "session:write", Some("dev")),
        // event
        case(List("\"ev1\""), "GET", "/v1/event/list", "", "event:read", None),
        case(Write, "PUT", "/v1/event/fire/ev2", "", "event:write", Some("ev2")),
        // operator and keyring
        case(Read, "GET", "/v1/operator/raft/configuration", "", "operator:read", None),
        case(Read, "GET", "/v1/operator/autopilot/configuration", "", "operator:read", None),
        case(
            Write,
            "PUT",
            "/v1/operator/autopilot/configuration",
            r#"{"CleanupDeadServers":true}"#,
            "operator:write",
            None,
        ),
        case(Read, "GET", "/v1/operator/keyring", "", "keyring:read", None),
        case(Write, "PUT", "/v1/operator/keyring", r#"{"Key":"nope"}"#, "keyring:write", None),
        // agent
        case(Read, "GET", "/v1/agent/self", "", "agent:read", Some("dev")),
        case(Read, "GET", "/v1/agent/metrics", "", "agent:read", Some("dev")),
        case(Write, "PUT", "/v1/agent/reload", "", "agent:write", Some("dev")),
        case(List("\"dev\""), "GET", "/v1/agent/members", "", "node:read", None),
        case(List("\"asvc\""), "GET", "/v1/agent/services", "", "service:read", None),
        case(List("\"asvc-check\""), "GET", "/v1/agent/checks", "", "service:read", None),
        case(
            Write,
            "PUT",
            "/v1/agent/service/register",
            r#"{"Name":"asvc2"}"#,
            "service:write",
            Some("asvc2"),
        ),
        // acl and snapshot: only a rule grants them, even under allow
        case(Read, "GET", "/v1/acl/policies", "", "acl:read", None),
        case(Read, "GET", "/v1/acl/tokens", "", "acl:read", None),
        case(Write, "PUT", "/v1/acl/policy", r#"{"Name":"p-matrix"}"#, "acl:write", None),
        case(Read, "GET", "/v1/snapshot", "", "acl:write", None),
    ]
}

static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `body` with `{seq}` replaced by a number never used before.
fn fresh(body: &str) -> String {
    body.replace("{seq}", &SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed).to_string())
}

/// Runs every row for every caller on one agent; returns the failures.
async fn run_matrix(a: &Agent, default_allow: bool) -> Vec<String> {
    let addr = a.addr();
    let session = fixtures(&addr).await;
    policy(&addr, "all-read", &rules_all("read")).await;
    policy(&addr, "all-write", &rules_all("write")).await;
    policy(&addr, "all-deny", &rules_all("deny")).await;
    let read = token(&addr, ROOT, &["all-read"]).await;
    let write = token(&addr, ROOT, &["all-write"]).await;
    let deny = token(&addr, ROOT, &["all-deny"]).await;
    // The event must have come back through gossip before anyone lists it.
    let seen = wait_until(Duration::from_secs(10), || async {
        req(&addr, "GET", "/v1/event/list", Some(ROOT), "").await.body.contains("\"ev1\"")
    })
    .await;
    assert!(seen, "event ev1 never listed");

    let callers = [
        (Who::Read, Some(read.1.as_str()), read.0.as_str()),
        (Who::Write, Some(write.1.as_str()), write.0.as_str()),
        (Who::Deny, Some(deny.1.as_str()), deny.0.as_str()),
        (Who::Anonymous, Some("anonymous"), ANON_ACCESSOR),
        (Who::Nobody, None, ANON_ACCESSOR),
        (Who::Unknown, Some(UNKNOWN), ""),
    ];
    let mut failures = Vec::new();
    for c in cases(&session) {
        // The management token passes every row: the fixture is sound.
        let r = req(&addr, c.method, &c.path, Some(ROOT), &fresh(&c.body)).await;
        if r.status == 403 {
            failures.push(format!("root {} {}: {} {}", c.method, c.path, r.status, r.body));
        }
        if let Kind::List(marker) = c.kind {
            if !r.body.contains(marker) {
                failures.push(format!("root {} {}: no {marker} in {}", c.method, c.path, r.body));
            }
        }
        for (who, tok, accessor) in callers {
            let r = req(&addr, c.method, &c.path, tok, &fresh(&c.body)).await;
            let may = allowed(who, c.perm, default_allow);
            let what = format!("{who:?} (allow={default_allow}) {} {}", c.method, c.path);
            let problem = if who == Who::Unknown {
                // An unknown secret is never the anonymous token.
                (r.status != 403 || r.body.trim() != "ACL not found")
                    .then(|| "want 403 ACL not found".to_string())
            } else {
                match c.kind {
                    Kind::Read | Kind::Write if may => (r.status == 403).then(|| "refused".to_string()),
                    Kind::Read | Kind::Write => {
                        let want = denied(accessor, c.perm, c.on);
                        (r.status != 403 || r.body.trim() != want).then(|| format!("want 403 {want}"))
                    }
                    Kind::Txn if may => (r.status != 200).then(|| "want 200".to_string()),
                    Kind::Txn => {
                        let want = json!({"Errors": [{"OpIndex": 0, "What": denied(accessor, c.perm, c.on)}], "Results": null});
                        (r.status != 409 || serde_json::from_str::<Value>(&r.body).ok() != Some(want.clone()))
                            .then(|| format!("want 409 {want}"))
                    }
                    Kind::List(marker) => {
                        let sent_token = tok.is_some();
                        // KV answers 404 for a list that is empty once filtered.
                        let empty_ok = c.path.starts_with("/v1/kv/") && !may && r.status == 404;
                        if r.status != 200 && !empty_ok {
                            Some("want 200".to_string())
                        } else if may != r.body.contains(marker) {
                            Some(format!("{marker} visible={} but allowed={may}", !may))
                        } else if r.filtered() != (!may && sent_token) {
                            Some(format!("filtered header {} wrong", r.filtered()))
                        } else {
                            None
                        }
                    }
                }
            };
            if let Some(p) = problem {
                failures.push(format!("{what}: {p}; got {} {}", r.status, r.body.trim()));
            }
        }
    }
    failures
}

/// The matrix over HTTP on two dev agents (default allow, default deny),
/// then ACL-specific reads and the RPC port, on the same agents.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn enforcement_matrix_under_both_default_policies() {
    let (allow, deny) = tokio::join!(acl_dev("allow"), acl_dev("deny"));
    let (fa, fd) = tokio::join!(run_matrix(&allow, true), run_matrix(&deny, false));
    let failures: Vec<String> = fa.into_iter().chain(fd).collect();
    assert!(failures.is_empty(), "{} matrix failures:\n{}", failures.len(), failures.join("\n"));

    txn_reports_each_refused_operation(&deny).await;
    acl_reads_hide_secrets(&deny).await;
    rpc_port_enforces(&deny).await;
    bad_input_is_refused(&allow).await;
    secrets_never_leak(&[&allow, &deny], ROOT).await;
}

/// A transaction reports every operation its token may not do, and
/// changes nothing; its reads come back filtered.
async fn txn_reports_each_refused_operation(a: &Agent) {
    let addr = a.addr();
    policy(
        &addr,
        "txn-some",
        "key_prefix \"t/ok/\" { policy = \"write\" }\nnode_prefix \"\" { policy = \"read\" }",
    )
    .await;
    let (acc, tok) = token(&addr, ROOT, &["txn-some"]).await;
    ok(&addr, "PUT", "/v1/kv/t/hidden", Some(ROOT), "h").await;
    let ops = json!([
        {"KV": {"Verb": "set", "Key": "t/ok/a", "Value": "MQ=="}},
        {"KV": {"Verb": "set", "Key": "t/no", "Value": "MQ=="}},
        {"KV": {"Verb": "get", "Key": "t/hidden"}},
        {"KV": {"Verb": "check-index", "Key": "t/hidden", "Index": 1}},
        {"KV": {"Verb": "delete-tree", "Key": "t/"}},
        {"Node": {"Verb": "set", "Node": {"Node": "tn", "Address": "10.2.2.2"}}},
    ]);
    let r = req(&addr, "PUT", "/v1/txn", Some(&tok), &ops.to_string()).await;
    assert_eq!(r.status, 409, "{}", r.body);
    let what = |i: usize, perm: &str, on: &str| json!({"OpIndex": i, "What": denied(&acc, perm, Some(on))});
    let want = json!({"Errors": [
        what(1, "key:write", "t/no"),
        what(3, "key:read", "t/hidden"),
        what(4, "key:write", "t/"),
        what(5, "node:write", "tn"),
    ], "Results": null});
    assert_eq!(r.json(), want);
    assert_eq!(req(&addr, "GET", "/v1/kv/t/ok/a", Some(ROOT), "").await.status, 404, "a refused txn wrote");
    // Reads alone: answered, without what the token cannot read.
    let ops = json!([{"KV": {"Verb": "get", "Key": "t/hidden"}}, {"KV": {"Verb": "get-tree", "Key": "m/"}}]);
    let r = ok(&addr, "PUT", "/v1/txn", Some(&tok), &ops.to_string()).await;
    assert!(!r.body.contains("t/hidden") && !r.body.contains("m/k"), "{}", r.body);
}

/// Tokens with `acl = "read"` see every token, with each SecretID hidden;
/// `acl = "write"` sees them; neither of the first may write.
async fn acl_reads_hide_secrets(a: &Agent) {
    let addr = a.addr();
    policy(&addr, "acl-read", "acl = \"read\"").await;
    policy(&addr, "acl-write", "acl = \"write\"").await;
    let (_, reader) = token(&addr, ROOT, &["acl-read"]).await;
    let (_, writer) = token(&addr, ROOT, &["acl-write"]).await;
    let (victim_acc, victim_secret) = token(&addr, ROOT, &["all-read"]).await;

    let list = ok(&addr, "GET", "/v1/acl/tokens", Some(&reader), "").await;
    assert!(!list.body.contains(&victim_secret) && !list.body.contains(ROOT), "{}", list.body);
    for t in list.json().as_array().unwrap() {
        assert_eq!(t["SecretID"], "<hidden>", "{t}");
    }
    let one = ok(&addr, "GET", &format!("/v1/acl/token/{victim_acc}"), Some(&reader), "").await.json();
    assert_eq!(one["SecretID"], "<hidden>");
    let one = ok(&addr, "GET", &format!("/v1/acl/token/{victim_acc}"), Some(&writer), "").await.json();
    assert_eq!(one["SecretID"], victim_secret.as_str());
    let r = req(&addr, "PUT", "/v1/acl/policy", Some(&reader), r#"{"Name":"by-reader"}"#).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // Every token may read itself, secret included.
    let me = ok(&addr, "GET", "/v1/acl/token/self", Some(&reader), "").await.json();
    assert_eq!(me["SecretID"], reader.as_str());
    // The policy list and a policy read need acl:read; writer has it.
    ok(&addr, "GET", "/v1/acl/policies", Some(&writer), "").await;
}

fn rpc_addr(a: &Agent) -> SocketAddr {
    format!("{}:8300", a.ip).parse().unwrap()
}

async fn rpc<M: method::Method>(a: &Agent, token: Option<&str>, args: M) -> Result<M::Reply, CallError> {
    let ctx = RequestContext { token: token.map(str::to_string), ..Default::default() };
    RpcClient::new().call(rpc_addr(a), ctx, &args, Duration::from_secs(10)).await
}

fn refused<T: std::fmt::Debug>(r: Result<T, CallError>) -> String {
    match r {
        Err(CallError::Remote(RpcError::PermissionDenied(m))) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The same checks sent straight to the server's RPC port, as a client
/// agent (or anyone who can reach the port) would.
async fn rpc_port_enforces(a: &Agent) {
    use consul::catalog::Command;
    let addr = a.addr();
    let (read_acc, read) = token(&addr, ROOT, &["all-read"]).await;

    // Reads: refused without the right token, answered with it.
    let m = refused(rpc(a, None, method::KvGet { key: "m/k".into() }).await);
    assert_eq!(m, denied(ANON_ACCESSOR, "key:read", Some("m/k")));
    assert_eq!(refused(rpc(a, Some(UNKNOWN), method::KvGet { key: "m/k".into() }).await), "ACL not found");
    let (_, e) = rpc(a, Some(&read), method::KvGet { key: "m/k".into() }).await.unwrap();
    assert_eq!(e.unwrap().value.as_ref(), b"v");
    // Collections come back filtered.
    let (meta, list) = rpc(a, None, method::KvList { prefix: "m/".into() }).await.unwrap();
    assert!(list.is_empty() && !meta.filtered_by_acls, "{list:?} {meta:?}");
    let (meta, _) = rpc(a, Some("anonymous"), method::KvList { prefix: "m/".into() }).await.unwrap();
    assert!(meta.filtered_by_acls);
    let (_, nodes) = rpc(a, None, method::CatalogNodes { node_meta: vec![] }).await.unwrap();
    assert!(nodes.is_empty(), "{nodes:?}");

    // Writes: a read token may not write, not even by the raw path.
    let set = Command::KvSet { key: "m/k".into(), value: b"evil".to_vec().into(), flags: 0 };
    let m = refused(rpc(a, Some(&read), method::KvApply { command: set.clone() }).await);
    assert_eq!(m, denied(&read_acc, "key:write", Some("m/k")));
    // A KvApply carrying a non-KV command is refused, whoever asks.
    let evil = Command::AclServerSecret { secret: "mine".into() };
    refused(rpc(a, Some(&read), method::KvApply { command: evil.clone() }).await);
    // Propose (raw Raft commands between servers) needs the servers'
    // secret: a user token, even the management token, is not it.
    for tok in [None, Some("anonymous"), Some(read.as_str()), Some(ROOT)] {
        let m = refused(rpc(a, tok, method::Propose { command: set.clone() }).await);
        assert!(m.contains("for servers only"), "{m}");
        refused(rpc(a, tok, method::Propose { command: evil.clone() }).await);
    }
    let v = ok(&addr, "GET", "/v1/kv/m/k?raw", Some(ROOT), "").await;
    assert_eq!(v.body, "v", "a refused write changed the value");

    // Snapshots, ACL reads and writes.
    refused(rpc(a, Some(&read), method::SnapshotSave {}).await);
    refused(rpc(a, Some(&read), method::AclTokenList { filter: Default::default() }).await);
    refused(rpc(a, None, method::AclPolicyList {}).await);
    let t = consul::acl::model::Token { description: "rpc".into(), ..Default::default() };
    refused(rpc(a, Some(&read), method::AclTokenSet { token: t, create: true }).await);
    // Catalog writes and sessions.
    let mut reg = consul::catalog::types::Registration::default();
    reg.node.node = "rpc-node".into();
    reg.node.address = "10.9.9.9".into();
    let m = refused(rpc(a, Some(&read), method::CatalogRegister { registration: reg }).await);
    assert!(m.contains("node:write"), "{m}");
    let m =
        refused(rpc(a, None, method::EventFire { serf_name: "consul:event:x".into(), body: vec![] }).await);
    assert!(m.contains("event:write"), "{m}");
    // A server-to-server status call needs no token.
    rpc(a, None, method::Ping {}).await.unwrap();
}

/// How many policies and tokens exist (to prove a refused write stored nothing).
async fn acl_counts(addr: &str) -> (usize, usize) {
    let p = ok(addr, "GET", "/v1/acl/policies", Some(ROOT), "").await.json();
    let t = ok(addr, "GET", "/v1/acl/tokens", Some(ROOT), "").await.json();
    (p.as_array().unwrap().len(), t.as_array().unwrap().len())
}

/// Malformed rules, unknown policy names, oversized rules, garbage tokens
/// and bodies: a clear error, nothing stored, and the agent keeps serving.
async fn bad_input_is_refused(a: &Agent) {
    let addr = a.addr();
    let before = acl_counts(&addr).await;

    let bad_rules = "key \"a\" {\n  policy = \"read\"\n}\nkey \"b\" {\n  policy = \"bogus\"\n}\n";
    let r = req(
        &addr,
        "PUT",
        "/v1/acl/policy",
        Some(ROOT),
        &json!({"Name": "bad1", "Rules": bad_rules}).to_string(),
    )
    .await;
    // The server's refusals are 500s, as Consul's (its RPC errors reach the
    // HTTP layer as plain text); only decoding failures are 400s.
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("line 5"), "the refusal names the line: {}", r.body);
    let r = req(
        &addr,
        "PUT",
        "/v1/acl/policy",
        Some(ROOT),
        &json!({"Name": "bad2", "Rules": "kye \"a\" {}"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("line 1"), "{}", r.body);
    let big = "key \"a\" { policy = \"read\" }\n".repeat(40_000);
    let r =
        req(&addr, "PUT", "/v1/acl/policy", Some(ROOT), &json!({"Name": "big", "Rules": big}).to_string())
            .await;
    assert!(r.status == 400 || r.status == 413, "{} {}", r.status, r.body);
    let r =
        req(&addr, "PUT", "/v1/acl/token", Some(ROOT), r#"{"Policies":[{"Name":"no-such-policy"}]}"#).await;
    assert_eq!((r.status, r.body.trim()), (500, "No such ACL policy with name \"no-such-policy\""));
    let r = req(
        &addr,
        "PUT",
        "/v1/acl/token",
        Some(ROOT),
        r#"{"Policies":[{"ID":"00000000-1111-2222-3333-444444444444"}]}"#,
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.body);
    for body in ["{not json", r#"{"Policies": 7}"#, "[1,2]", "\u{0}\u{1}"] {
        for path in ["/v1/acl/token", "/v1/acl/policy", "/v1/acl/role"] {
            let r = req(&addr, "PUT", path, Some(ROOT), body).await;
            // (Policies is not a policy field: a policy ignores it and is
            // refused by the server for its missing name instead.)
            let typed = body.starts_with("{\"Policies") && path == "/v1/acl/policy";
            if typed {
                assert_eq!(r.status, 500, "{path} {body:?}: {}", r.body);
                assert!(r.body.ends_with("no Name is set"), "{path} {body:?}: {}", r.body);
                continue;
            }
            assert_eq!(r.status, 400, "{path} {body:?}: {}", r.body);
            // Consul names what it was decoding: "Token decoding failed: ...".
            let what = ["Token", "Policy", "Role"][["/v1/acl/token", "/v1/acl/policy", "/v1/acl/role"]
                .iter()
                .position(|p| *p == path)
                .unwrap()];
            assert!(r.body.starts_with(&format!("{what} decoding failed: ")), "{path} {body:?}: {}", r.body);
        }
    }
    assert_eq!(acl_counts(&addr).await, before, "a refused write stored something");

    // Garbage where a token goes. A value that names no token is refused
    // as not found, never served as the anonymous token.
    let garbage: [&[u8]; 4] = [b"\xff\xfe\x80", b"not-a-token", b"\"'; DROP TABLE", &[b'x'; 4096]];
    for g in garbage {
        let r = raw(&addr, "GET", "/v1/kv/m/k", &[("X-Consul-Token", g)], b"").await;
        assert_eq!((r.status, r.body.trim()), (403, "ACL not found"), "X-Consul-Token {g:?}");
        let mut bearer = b"Bearer ".to_vec();
        bearer.extend_from_slice(g);
        let r = raw(&addr, "GET", "/v1/kv/m/k", &[("Authorization", &bearer)], b"").await;
        assert_eq!((r.status, r.body.trim()), (403, "ACL not found"), "Authorization {g:?}");
    }
    // Another scheme, or a bare "Bearer", carries no token (Consul ignores it).
    for auth in [&b"Basic dXNlcjpwYXNz"[..], b"Bearer", b"Bearer "] {
        let r = raw(&addr, "GET", "/v1/kv/m/k", &[("Authorization", auth)], b"").await;
        assert_eq!(r.status, 200, "Authorization {auth:?}: {}", r.body);
    }
    // Precedence: ?token, then X-Consul-Token, then Authorization.
    let r = raw(
        &addr,
        "GET",
        &format!("/v1/acl/token/self?token={ROOT}"),
        &[("X-Consul-Token", UNKNOWN.as_bytes())],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "?token comes first: {}", r.body);
    let bearer = format!("Bearer {UNKNOWN}");
    let r = raw(
        &addr,
        "GET",
        "/v1/acl/token/self",
        &[("X-Consul-Token", ROOT.as_bytes()), ("Authorization", bearer.as_bytes())],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "X-Consul-Token before Authorization: {}", r.body);
    let bearer = format!("Bearer {ROOT}");
    let r = raw(&addr, "GET", "/v1/acl/token/self", &[("Authorization", bearer.as_bytes())], b"").await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Still serving.
    ok(&addr, "GET", "/v1/kv/m/k", Some(ROOT), "").await;
}

/// Every SecretID a test token had, searched for in the agents' whole log
/// output (at trace level), `/v1/agent/self` and the metrics in both
/// formats. A refusal never carries the secret either.
async fn secrets_never_leak(agents: &[&Agent], root: &str) {
    for a in agents {
        let addr = a.addr();
        let tokens = ok(&addr, "GET", "/v1/acl/tokens", Some(root), "").await.json();
        let mut secrets: Vec<String> = tokens
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["SecretID"].as_str().map(str::to_string))
            .filter(|s| s != "anonymous")
            .collect();
        secrets.push(UNKNOWN.to_string());
        assert!(secrets.len() >= 4, "{tokens}");
        let mut places = vec![
            ("/v1/agent/self", ok(&addr, "GET", "/v1/agent/self", Some(root), "").await.body),
            ("/v1/agent/metrics", ok(&addr, "GET", "/v1/agent/metrics", Some(root), "").await.body),
        ];
        let prom = req(&addr, "GET", "/v1/agent/metrics?format=prometheus", Some(root), "").await;
        places.push(("/v1/agent/metrics?format=prometheus", prom.body));
        for s in &secrets {
            for (m, path) in
                [("GET", "/v1/kv/leak-probe"), ("PUT", "/v1/kv/leak-probe"), ("GET", "/v1/acl/policies")]
            {
                let r = req(&addr, m, path, Some(s), "1").await;
                assert!(!r.body.contains(s.as_str()), "{m} {path} shows the caller's secret: {}", r.body);
            }
        }
        places.push(("log", a.output_text()));
        assert!(
            places[3].1.contains("[DEBUG]"),
            "the agent does not log verbosely: the search proves little"
        );
        for (place, text) in &places {
            for s in &secrets {
                assert!(!text.contains(s.as_str()), "secret {s} appears in {place} of {addr}");
            }
        }
    }
}

/// A non-dev server without an initial management token, and a client
/// agent joined to it: bootstrap once and its reset, the client enforcing
/// through the server (its own endpoints too), narrowing seen by the
/// client within its TTL, a blocking query across a policy change, agent
/// tokens persisted across a restart, snapshots round-tripping ACL state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn server_and_client_agent() {
    let server_hcl = r#"acl { enabled = true
                             default_policy = "deny" }"#;
    let server = Agent::server(None, &["-hcl", server_hcl, "-log-level=trace"]);
    let saddr = server.addr();
    server.wait_ready().await;

    // --- Bootstrap: once, with the caller's secret; then refused with the
    // reset index; a reset file with that index allows one more.
    const BOOT: &str = "5b0c6e53-2d0a-4f59-a4a1-5dcf3e5c2b11";
    let first = wait_until(Duration::from_secs(20), || async {
        let r = req(&saddr, "PUT", "/v1/acl/bootstrap", None, &json!({"BootstrapSecret": BOOT}).to_string())
            .await;
        r.status == 200
    })
    .await;
    assert!(first, "bootstrap never succeeded\n{}", server.output_text());
    let me = ok(&saddr, "GET", "/v1/acl/token/self", Some(BOOT), "").await.json();
    assert_eq!(me["Description"], "Bootstrap Token (Global Management)");
    assert_eq!(me["SecretID"], BOOT);
    let again = req(&saddr, "PUT", "/v1/acl/bootstrap", None, "").await;
    assert_eq!(again.status, 403, "{}", again.body);
    let prefix = "Permission denied: ACL bootstrap no longer allowed (reset index: ";
    let index: u64 = again
        .body
        .trim()
        .strip_prefix(prefix)
        .and_then(|r| r.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", again.body));
    let data_dir = server.data_dir.clone().unwrap();
    std::fs::write(data_dir.join("acl-bootstrap-reset"), format!("{}\n", index + 1)).unwrap();
    let wrong = req(&saddr, "PUT", "/v1/acl/bootstrap", None, "").await;
    // Consul's text, and a 500: only "no longer allowed" is a 403.
    assert_eq!(
        (wrong.status, wrong.body.trim()),
        (
            500,
            format!("Invalid bootstrap reset index (specified {}, reset index: {index})", index + 1).as_str()
        ),
        "a wrong reset index is refused"
    );
    std::fs::write(data_dir.join("acl-bootstrap-reset"), format!("{index}\n")).unwrap();
    let root = ok(&saddr, "PUT", "/v1/acl/bootstrap", None, "").await.json();
    let root = root["SecretID"].as_str().unwrap().to_string();
    assert_ne!(root, BOOT);
    assert!(!data_dir.join("acl-bootstrap-reset").exists(), "the reset file is used once");
    assert_eq!(req(&saddr, "PUT", "/v1/acl/bootstrap", None, "").await.status, 403);
    // Both bootstrap tokens are management tokens.
    ok(&saddr, "GET", "/v1/acl/tokens", Some(&root), "").await;

    // Expiry bounds (Consul's 1 minute to 24 hours).
    for ttl in ["30s", "25h"] {
        let r = req(&saddr, "PUT", "/v1/acl/token", Some(&root), &json!({"ExpirationTTL": ttl}).to_string())
            .await;
        assert_eq!(r.status, 500, "{ttl}: {}", r.body);
        assert!(r.body.starts_with("ExpirationTime cannot be"), "{ttl}: {}", r.body);
    }
    let r = req(&saddr, "PUT", "/v1/acl/token", Some(&root), r#"{"ExpirationTTL":"10m"}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["ExpirationTime"].is_string(), "{}", r.body);

    // --- A client agent, with an agent token and short TTLs.
    let client_hcl = format!(
        r#"acl {{ enabled = true
                 default_policy = "deny"
                 token_ttl = "2s"
                 policy_ttl = "2s"
                 enable_token_persistence = true
                 tokens {{ agent = "{root}" }} }}"#
    );
    let mut client = Agent::on_own_ip(
        "c1",
        &["-hcl".into(), client_hcl, format!("-retry-join={}", server.ip), "-log-level=trace".into()],
    );
    let caddr = client.addr();
    let joined = wait_until(Duration::from_secs(30), || async {
        client.try_get("/v1/status/leader").await.is_some_and(|r| r.text().len() > 2)
            && req(&caddr, "GET", "/v1/catalog/node/c1", Some(&root), "").await.body.contains("\"c1\"")
    })
    .await;
    assert!(joined, "client never joined\n{}", client.output_text());

    let admin = |body: &str| json!({"Name": "app", "Rules": body}).to_string();
    let pid = ok(&saddr, "PUT", "/v1/acl/policy", Some(&root), &admin("key_prefix \"app/\" { policy = \"write\" }\nservice_prefix \"\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }\nagent_prefix \"\" { policy = \"read\" }"))
        .await
        .json()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let (app_acc, app) = token(&saddr, &root, &["app"]).await;
    ok(&saddr, "PUT", "/v1/kv/app/a", Some(&root), "1").await;
    ok(&saddr, "PUT", "/v1/kv/app/secret/b", Some(&root), "2").await;
    ok(&saddr, "PUT", "/v1/kv/other", Some(&root), "3").await;

    // Reads and writes through the client's HTTP, decided by the server.
    ok(&caddr, "GET", "/v1/kv/app/a", Some(&app), "").await;
    ok(&caddr, "PUT", "/v1/kv/app/c", Some(&app), "4").await;
    let r = req(&caddr, "GET", "/v1/kv/other", Some(&app), "").await;
    assert_eq!((r.status, r.body.trim()), (403, denied(&app_acc, "key:read", Some("other")).as_str()));
    let r = req(&caddr, "PUT", "/v1/kv/other", None, "x").await;
    assert_eq!((r.status, r.body.trim()), (403, denied(ANON_ACCESSOR, "key:write", Some("other")).as_str()));
    let r = req(&caddr, "GET", "/v1/kv/app/a", Some(UNKNOWN), "").await;
    assert_eq!((r.status, r.body.trim()), (403, "ACL not found"));
    let r = ok(&caddr, "GET", "/v1/kv/?recurse", Some(&app), "").await;
    assert!(r.filtered() && !r.body.contains("\"other\""), "{}", r.body);
    // The client's own endpoints: resolved through the server, decided here.
    ok(&caddr, "GET", "/v1/agent/self", Some(&app), "").await;
    let r = req(&caddr, "GET", "/v1/agent/self", None, "").await;
    assert_eq!((r.status, r.body.trim()), (403, denied(ANON_ACCESSOR, "agent:read", Some("c1")).as_str()));
    let r = req(&caddr, "PUT", "/v1/agent/service/register", Some(&app), r#"{"Name":"web"}"#).await;
    assert_eq!((r.status, r.body.trim()), (403, denied(&app_acc, "service:write", Some("web")).as_str()));
    ok(&caddr, "PUT", "/v1/agent/service/register", Some(&root), r#"{"Name":"web"}"#).await;
    let m = ok(&caddr, "GET", "/v1/agent/members", Some(&app), "").await;
    assert!(m.body.contains("\"c1\"") && m.body.contains("\"s1\""), "{}", m.body);
    let m = ok(&caddr, "GET", "/v1/agent/members", None, "").await;
    assert_eq!(m.json(), json!([]), "members are filtered by node:read");
    let m = ok(&caddr, "GET", "/v1/agent/services", None, "").await;
    assert_eq!(m.json(), json!({}));
    assert!(ok(&caddr, "GET", "/v1/agent/services", Some(&app), "").await.body.contains("\"web\""));
    let r = req(&caddr, "PUT", "/v1/agent/token/default", Some(&app), "{\"Token\":\"x\"}").await;
    assert_eq!(r.status, 403, "{}", r.body);

    // --- A blocking query across a policy change: the watcher's answer
    // is filtered under the policy as it is when it returns.
    let r = ok(&caddr, "GET", "/v1/kv/app/?recurse", Some(&app), "").await;
    assert!(r.body.contains("app/secret/b"));
    let index = r.header("X-Consul-Index").unwrap().to_string();
    let watch = {
        let (caddr, app) = (caddr.clone(), app.clone());
        tokio::spawn(async move {
            req(&caddr, "GET", &format!("/v1/kv/app/?recurse&index={index}&wait=20s"), Some(&app), "").await
        })
    };
    let narrowed = "key_prefix \"app/\" { policy = \"write\" }\nkey_prefix \"app/secret/\" { policy = \"deny\" }\nservice_prefix \"\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }\nagent_prefix \"\" { policy = \"read\" }";
    ok(&saddr, "PUT", &format!("/v1/acl/policy/{pid}"), Some(&root), &admin(narrowed)).await;
    ok(&saddr, "PUT", "/v1/kv/app/secret/b", Some(&root), "changed").await;
    let w = watch.await.unwrap();
    assert_eq!(w.status, 200, "{}", w.body);
    assert!(!w.body.contains("app/secret/b"), "the watcher saw what its token no longer reads: {}", w.body);
    assert!(w.filtered(), "{:?}", w.headers);

    // The server denies at once; the client's own endpoints within the TTL.
    let r = req(&saddr, "GET", "/v1/kv/app/secret/b", Some(&app), "").await;
    assert_eq!(r.status, 403);
    // Prime the client's cache for this token, then take agent:read away.
    ok(&caddr, "GET", "/v1/agent/self", Some(&app), "").await;
    let strip = "service_prefix \"\" { policy = \"read\" }";
    ok(&saddr, "PUT", &format!("/v1/acl/policy/{pid}"), Some(&root), &admin(strip)).await;
    let stripped_at = tokio::time::Instant::now();
    let gone = wait_until(Duration::from_secs(10), || async {
        req(&caddr, "GET", "/v1/agent/self", Some(&app), "").await.status == 403
    })
    .await;
    let took = stripped_at.elapsed();
    assert!(gone, "the client still allows agent:read 10 s after the policy lost it");
    // policy_ttl (2 s) + 1 s, and 2 s of slack for a loaded machine.
    assert!(took < Duration::from_secs(5), "the client denied only after {took:?}");

    // --- Agent tokens persisted across a restart (file mode 0600).
    policy_as(&saddr, &root, "kv-read", "key_prefix \"\" { policy = \"read\" }").await;
    let (_, reader) = token(&saddr, &root, &["kv-read"]).await;
    let r = req(&caddr, "GET", "/v1/kv/other", None, "").await;
    assert_eq!(r.status, 403);
    ok(&caddr, "PUT", "/v1/agent/token/default", Some(&root), &json!({"Token": reader}).to_string()).await;
    ok(&caddr, "GET", "/v1/kv/other", None, "").await;
    let file = client.data_dir.clone().unwrap().join("acl-tokens.json");
    let mode =
        std::fs::metadata(&file).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "{}", file.display());
    client.restart();
    let back = wait_until(Duration::from_secs(30), || async {
        client.try_get("/v1/kv/other").await.is_some_and(|r| r.status == 200)
    })
    .await;
    assert!(back, "the default token was not restored\n{}", client.output_text());

    // --- Snapshots need a management token and round-trip ACL state.
    let r = req(&saddr, "GET", "/v1/snapshot", Some(&app), "").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let snap = {
        let c = consul::api::Client::new(consul::api::ClientConfig {
            address: saddr.clone(),
            token: Some(root.clone()),
            datacenter: None,
            ..Default::default()
        })
        .unwrap();
        let r = c.request(hyper::Method::GET, "/v1/snapshot", None).await.unwrap();
        assert_eq!(r.status, 200);
        (c, r.body)
    };
    let (later_acc, later) = token(&saddr, &root, &["kv-read"]).await;
    ok(
        &saddr,
        "DELETE",
        &format!("/v1/acl/token/{}", reader_accessor(&saddr, &root, &reader).await),
        Some(&root),
        "",
    )
    .await;
    assert_eq!(req(&saddr, "GET", "/v1/kv/other", Some(&reader), "").await.status, 403);
    let r = snap.0.request(hyper::Method::PUT, "/v1/snapshot", Some(snap.1.clone())).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let restored = wait_until(Duration::from_secs(20), || async {
        req(&saddr, "GET", "/v1/kv/other", Some(&reader), "").await.status == 200
    })
    .await;
    assert!(restored, "a token deleted after the snapshot does not work after the restore");
    let r = req(&saddr, "GET", "/v1/kv/other", Some(&later), "").await;
    assert_eq!(
        (r.status, r.body.trim()),
        (403, "ACL not found"),
        "token {later_acc} created after the snapshot"
    );
    let app_c = consul::api::Client::new(consul::api::ClientConfig {
        address: saddr.clone(),
        token: Some(app.clone()),
        datacenter: None,
        ..Default::default()
    })
    .unwrap();
    let r = app_c.request(hyper::Method::PUT, "/v1/snapshot", Some(snap.1)).await.unwrap();
    assert_eq!(r.status, 403, "{}", r.text());

    secrets_never_leak(&[&server, &client], &root).await;
}

async fn reader_accessor(addr: &str, root: &str, secret: &str) -> String {
    let t = ok(addr, "GET", "/v1/acl/token/self", Some(secret), "").await.json();
    let _ = root;
    t["AccessorID"].as_str().unwrap().to_string()
}

/// With ACLs off, the agent token endpoint answers 401 as the other ACL
/// endpoints do.
#[tokio::test]
async fn agent_token_endpoint_without_acls() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let addr = a.addr();
    for kind in
        ["default", "agent", "agent_recovery", "dns", "replication", "config_file_service_registration"]
    {
        let r = req(&addr, "PUT", &format!("/v1/agent/token/{kind}"), None, r#"{"Token":"x"}"#).await;
        assert_eq!((r.status, r.body.trim()), (401, "ACL support disabled"), "{kind}");
    }
    let r = req(&addr, "GET", "/v1/acl/tokens", None, "").await;
    assert_eq!((r.status, r.body.trim()), (401, "ACL support disabled"));
}

/// The agent's `consul.blocking_query.parked` gauge (read as management).
async fn parked_now(addr: &str) -> i64 {
    let m = ok(addr, "GET", "/v1/agent/metrics", Some(ROOT), "").await.json();
    let gauges = m["Gauges"].as_array().cloned().unwrap_or_default();
    let parked = gauges.iter().find(|g| g["Name"] == "consul.blocking_query.parked");
    parked.and_then(|g| g["Value"].as_f64()).unwrap_or(0.0) as i64
}

/// Issue 22: a change to a token or its policy counts as a change for the
/// blocking queries made with that token (and only for them): the wait
/// ends at once and the answer is decided under the new ACL state — a
/// refusal for a key the token no longer reads, a filtered listing, "ACL
/// not found" for a deleted token. Consul itself decides once, before the
/// wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blocking_queries_end_when_their_token_changes() {
    let a = acl_dev("deny").await;
    let addr = a.addr();
    let read_w = "key_prefix \"w/\" { policy = \"read\" }";
    let pa = policy_as(&addr, ROOT, "wa", read_w).await;
    let pb = policy_as(&addr, ROOT, "wb", read_w).await;
    policy_as(&addr, ROOT, "wc", read_w).await;
    policy_as(&addr, ROOT, "other", "key_prefix \"o/\" { policy = \"read\" }").await;
    let (acc_a, tok_a) = token(&addr, ROOT, &["wa"]).await;
    let (_, tok_b) = token(&addr, ROOT, &["wb"]).await;
    let (acc_c, tok_c) = token(&addr, ROOT, &["wc"]).await;
    ok(&addr, "PUT", "/v1/kv/w/a", Some(ROOT), "1").await;
    ok(&addr, "PUT", "/v1/kv/w/secret/x", Some(ROOT), "2").await;
    let key_index =
        ok(&addr, "GET", "/v1/kv/w/a", Some(&tok_a), "").await.header("X-Consul-Index").unwrap().to_string();
    let list = ok(&addr, "GET", "/v1/kv/w/?recurse", Some(&tok_b), "").await;
    assert!(list.body.contains("w/secret/x"), "{}", list.body);
    let list_index = list.header("X-Consul-Index").unwrap().to_string();

    let parked_before = parked_now(&addr).await;
    let watch = |path: String, tok: String| {
        let addr = addr.clone();
        tokio::spawn(async move { req(&addr, "GET", &path, Some(&tok), "").await })
    };
    let w1 = watch(format!("/v1/kv/w/a?index={key_index}&wait=60s"), tok_a.clone());
    let w2 = watch(format!("/v1/kv/w/?recurse&index={list_index}&wait=60s"), tok_b.clone());
    let w3 = watch(format!("/v1/kv/w/a?index={key_index}&wait=60s"), tok_c.clone());
    let parked =
        wait_until(Duration::from_secs(10), || async { parked_now(&addr).await >= parked_before + 3 }).await;
    assert!(parked, "the three watchers never parked");

    // A token the watchers do not use: they stay parked.
    token(&addr, ROOT, &["other"]).await;

    // Token A's policy loses the key: its watcher is refused at once.
    let t0 = tokio::time::Instant::now();
    let narrowed = json!({"Name": "wa", "Rules": "key_prefix \"o/\" { policy = \"read\" }"}).to_string();
    ok(&addr, "PUT", &format!("/v1/acl/policy/{pa}"), Some(ROOT), &narrowed).await;
    let r = tokio::time::timeout(Duration::from_secs(10), w1).await.expect("watcher A woke").unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.body.trim(),
        format!("Permission denied: token with AccessorID '{acc_a}' lacks permission 'key:read' on \"w/a\"")
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    // The other two woke on both changes, looked at their own tokens and
    // parked again.
    let reparked =
        wait_until(Duration::from_secs(10), || async { parked_now(&addr).await == parked_before + 2 }).await;
    assert!(reparked && !w2.is_finished() && !w3.is_finished(), "changes to other tokens ended these waits");

    // Token B's policy now hides w/secret/: the listing comes back filtered.
    let hidden =
        json!({"Name": "wb", "Rules": format!("{read_w}\nkey_prefix \"w/secret/\" {{ policy = \"deny\" }}")})
            .to_string();
    ok(&addr, "PUT", &format!("/v1/acl/policy/{pb}"), Some(ROOT), &hidden).await;
    let r = tokio::time::timeout(Duration::from_secs(10), w2).await.expect("watcher B woke").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("w/a") && !r.body.contains("w/secret/x"), "{}", r.body);
    assert!(r.filtered(), "{:?}", r.headers);
    let reparked =
        wait_until(Duration::from_secs(10), || async { parked_now(&addr).await == parked_before + 1 }).await;
    assert!(reparked && !w3.is_finished(), "a change to token B's policy ended token C's wait");

    // Token C is deleted: its watcher gets "ACL not found".
    ok(&addr, "DELETE", &format!("/v1/acl/token/{acc_c}"), Some(ROOT), "").await;
    let r = tokio::time::timeout(Duration::from_secs(10), w3).await.expect("watcher C woke").unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.body.trim(), "ACL not found");
}
