//! `consul exec`: runs a command on the agents selected by node / service /
//! tag filters, as Consul does it: a session, the job spec in KV under
//! `<prefix>/<session>/job`, a `_rexec` user event, then a blocking watch
//! of `<prefix>/<session>/` for acks, output and exit codes until nothing
//! arrives for `-wait` (twice that while nodes are still running).
//!
//! Beyond Consul: the nodes the filters select (from the member list and,
//! with `-service`, the catalog) that never acknowledged are named at the
//! end, with a pointer to `disable_remote_exec`, and make the exit code
//! non-zero. Consul prints only the counts and exits 0 when nobody
//! answered, which hides the default-disabled setting.

use super::HttpFlags;
use crate::api::{encode, Client};
use crate::event::rexec::{self, ExecEvent, JobSpec, ResultKey};
use bytes::Bytes;
use clap::Args;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The session TTL the CLI keeps alive while it runs (Consul's).
const SESSION_TTL: &str = "15s";
const RENEW_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "Regular expression to filter on node names")]
    pub node: String,
    #[arg(long, default_value = "", help = "Regular expression to filter on service instances")]
    pub service: String,
    #[arg(
        long,
        default_value = "",
        help = "Regular expression to filter on service tags. Must be used with -service"
    )]
    pub tag: String,
    #[arg(long, default_value = rexec::DEFAULT_PREFIX, help = "Prefix in the KV store to use for request data")]
    pub prefix: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Use a shell to run the command (default true)")]
    pub shell: Option<bool>,
    #[arg(
        long,
        default_value = "2s",
        help = "Period to wait with no responses before terminating execution"
    )]
    pub wait: String,
    #[arg(
        long = "wait-repl",
        default_value = "200ms",
        help = "Period to wait for replication before firing event. This is an optimization to allow stale reads to be performed"
    )]
    pub wait_repl: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Enables verbose output")]
    pub verbose: Option<bool>,
    /// The command (joined with spaces), or `-` to read a script from stdin.
    pub args: Vec<String>,
}

pub const HELP: &str = "Usage: consul exec [options] [-|command...]

  Evaluates a command on remote Consul nodes. The nodes responding can
  be filtered using regular expressions on node name, service, and tag
  definitions. If a command is '-', stdin will be read until EOF
  and used as a script input.";

fn parse_duration(flag: &str, v: &str) -> Result<Duration, String> {
    crate::duration::parse(v).map_err(|_| format!("invalid value {v:?} for flag -{flag}: parse error"))
}

/// Consul's targeted output: `==> node: line` for notices and
/// `    node: line` for command output, trailing whitespace trimmed.
pub fn prefix_lines(arrow: bool, node: &str, message: &str) -> String {
    let lead = if arrow { "==>" } else { "   " };
    let mut out = String::new();
    for line in message.split('\n') {
        out.push_str(&format!("{lead} {node}: {line}\n"));
    }
    out.trim_end().to_string()
}

pub fn run(a: ExecArgs) -> i32 {
    let (wait, repl_wait) = match (parse_duration("wait", &a.wait), parse_duration("wait-repl", &a.wait_repl))
    {
        (Ok(w), Ok(r)) => (w, r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}\n\n{HELP}");
            return 1;
        }
    };
    let shell = a.shell.unwrap_or(true);
    let mut spec = JobSpec { command: a.args.join(" "), wait, ..Default::default() };
    if spec.command == "-" {
        if !shell {
            eprintln!("Cannot configure -shell=false when reading from stdin");
            return 1;
        }
        spec.command.clear();
        if let Err(e) = std::io::stdin().read_to_end(&mut spec.script) {
            eprintln!("Failed to read stdin: {e}\n\n{HELP}");
            return 1;
        }
    } else if !shell {
        spec.command.clear();
        spec.args = a.args.clone();
    }
    if spec.command.is_empty() && spec.script.is_empty() && spec.args.is_empty() {
        eprintln!("Must specify a command to execute\n\n{HELP}");
        return 1;
    }
    if let Err(e) = super::event::validate_filters(&a.node, &a.service, &a.tag) {
        eprintln!("{e}");
        return 1;
    }
    super::block_on(async move {
        let client = match a.http.client() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("Error connecting to Consul agent: {e}");
                return 1;
            }
        };
        let ex = Exec {
            verbose: a.verbose.unwrap_or(false),
            wait,
            repl_wait,
            stale: a.http.stale(),
            args: &a,
            client,
        };
        ex.run(spec).await
    })
}

struct Exec<'a> {
    args: &'a ExecArgs,
    client: Client,
    verbose: bool,
    wait: Duration,
    repl_wait: Duration,
    stale: bool,
}

#[derive(Deserialize)]
struct AgentSelf {
    #[serde(rename = "Config")]
    config: SelfConfig,
}

#[derive(Deserialize)]
struct SelfConfig {
    #[serde(rename = "Datacenter")]
    datacenter: String,
}

#[derive(Deserialize)]
struct Created {
    #[serde(rename = "ID")]
    id: String,
}

/// What the result watcher reports.
enum Update {
    Ack(String),
    Heartbeat(String),
    Output(String, Vec<u8>),
    Exit(String, i32),
    Failed,
}

impl Exec<'_> {
    fn info(&self, msg: &str) {
        if self.verbose {
            println!("{msg}");
        }
    }

    async fn run(&self, spec: JobSpec) -> i32 {
        let me: AgentSelf =
            match self.client.call(Method::GET, "/v1/agent/self", None).await.and_then(|r| r.json()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("Error querying Consul agent: {e}");
                    return 1;
                }
            };
        if let Some(dc) =
            self.args.http.datacenter.as_deref().filter(|d| !d.is_empty() && *d != me.config.datacenter)
        {
            eprintln!("Remote exec in datacenter {dc:?} is not supported: this agent has no path to other datacenters");
            return 1;
        }
        let body = serde_json::json!({ "Name": "Remote Exec", "Behavior": "delete", "TTL": SESSION_TTL });
        let session = match self
            .client
            .call(Method::PUT, "/v1/session/create", Some(Bytes::from(body.to_string())))
            .await
            .and_then(|r| r.json::<Created>())
        {
            Ok(c) => c.id,
            Err(e) => {
                eprintln!("Failed to create session: {e}");
                return 1;
            }
        };
        self.info(&format!("Created remote execution session: {session}"));
        let renewer = tokio::spawn(renew(self.client.clone(), session.clone()));
        let code = self.with_session(&session, spec).await;
        renewer.abort();
        // Destroying the session first makes any late write by an agent fail
        // (its acquire needs the session), then the tree goes.
        let _ =
            self.client.call(Method::PUT, &format!("/v1/session/destroy/{}", encode(&session)), None).await;
        let dir = rexec::join(&[&self.args.prefix, &session]);
        let _ = self.client.call(Method::DELETE, &format!("/v1/kv/{}?recurse", encode(&dir)), None).await;
        code
    }

    async fn with_session(&self, session: &str, spec: JobSpec) -> i32 {
        let key = rexec::job_key(&self.args.prefix, session);
        let payload = match serde_json::to_vec(&spec) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("Failed to create job spec: {e}");
                return 1;
            }
        };
        let path = format!("/v1/kv/{}?acquire={}", encode(&key), encode(session));
        match self
            .client
            .call(Method::PUT, &path, Some(Bytes::from(payload)))
            .await
            .and_then(|r| r.json::<bool>())
        {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("Failed to create job file: failed to acquire key {key}");
                return 1;
            }
            Err(e) => {
                eprintln!("Failed to create job file: {e}");
                return 1;
            }
        }
        self.info("Uploaded remote execution spec");
        // Give the write time to replicate so agents can read it stale.
        tokio::select! {
            _ = tokio::time::sleep(self.repl_wait) => {}
            _ = tokio::signal::ctrl_c() => return 1,
        }
        let event = ExecEvent { prefix: self.args.prefix.clone(), session: session.to_string() };
        let body = serde_json::to_vec(&event).unwrap_or_default();
        let path = super::event::fire_path(
            crate::event::REMOTE_EXEC_NAME,
            &self.args.node,
            &self.args.service,
            &self.args.tag,
        );
        match self
            .client
            .call(Method::PUT, &path, Some(Bytes::from(body)))
            .await
            .and_then(|r| r.json::<Created>())
        {
            Ok(c) => self.info(&format!("Fired remote execution event: {}", c.id)),
            Err(e) => {
                eprintln!("Failed to fire event: {e}");
                return 1;
            }
        }
        self.wait_for_job(session).await
    }

    async fn wait_for_job(&self, session: &str) -> i32 {
        let start = Instant::now();
        let (tx, mut rx) = mpsc::channel(128);
        let dir = format!("{}/", rexec::join(&[&self.args.prefix, session]));
        let watcher = tokio::spawn(watch_results(self.client.clone(), dir, self.wait, self.stale, tx));
        let (mut ack_count, mut exit_count, mut bad_exit) = (0usize, 0usize, 0usize);
        let mut acked = BTreeSet::new();
        let code = loop {
            let quiet = if ack_count > exit_count { self.wait * 2 } else { self.wait };
            tokio::select! {
                u = rx.recv() => match u {
                    Some(Update::Ack(node)) => {
                        ack_count += 1;
                        if self.verbose {
                            println!("{}", prefix_lines(true, &node, "acknowledged"));
                        }
                        acked.insert(node);
                    }
                    Some(Update::Heartbeat(node)) => {
                        if self.verbose {
                            println!("{}", prefix_lines(true, &node, "heartbeat received"));
                        }
                    }
                    Some(Update::Output(node, out)) => println!("{}", prefix_lines(false, &node, &String::from_utf8_lossy(&out))),
                    Some(Update::Exit(node, code)) => {
                        exit_count += 1;
                        println!("{}", prefix_lines(true, &node, &format!("finished with exit code {code}")));
                        if code != 0 {
                            bad_exit += 1;
                        }
                    }
                    Some(Update::Failed) | None => break 1,
                },
                _ = tokio::time::sleep(quiet) => {
                    println!("{exit_count} / {ack_count} node(s) completed / acknowledged");
                    self.info(&format!("Completed in {:.2} seconds", start.elapsed().as_secs_f64()));
                    if exit_count < ack_count {
                        bad_exit += 1;
                    }
                    if self.report_silent_nodes(&acked).await {
                        bad_exit += 1;
                    }
                    break if bad_exit > 0 { 2 } else { 0 };
                }
                _ = tokio::signal::ctrl_c() => break 1,
            }
        };
        watcher.abort();
        code
    }

    /// Names the targeted nodes that never acknowledged; true if any.
    async fn report_silent_nodes(&self, acked: &BTreeSet<String>) -> bool {
        let targeted =
            match targeted_nodes(&self.client, &self.args.node, &self.args.service, &self.args.tag).await {
                Ok(t) => t,
                Err(e) => {
                    self.info(&format!("Could not list the targeted nodes: {e}"));
                    return false;
                }
            };
        let silent: Vec<&String> = targeted.iter().filter(|n| !acked.contains(*n)).collect();
        if silent.is_empty() {
            return false;
        }
        let names: Vec<&str> = silent.iter().map(|s| s.as_str()).collect();
        eprintln!("==> {} node(s) did not acknowledge: {}", silent.len(), names.join(", "));
        eprintln!(
            "    An agent runs remote commands only if its configuration sets disable_remote_exec = false \
             (the default is true); otherwise it ignores the request. The node may also be unreachable."
        );
        true
    }
}

/// Keeps the session alive while the command runs.
async fn renew(client: Client, session: String) {
    loop {
        tokio::time::sleep(RENEW_INTERVAL).await;
        if let Err(e) =
            client.call(Method::PUT, &format!("/v1/session/renew/{}", encode(&session)), None).await
        {
            eprintln!("Session renew failed: {e}");
            return;
        }
    }
}

/// Follows `dir` with blocking key listings and reports each new key.
async fn watch_results(client: Client, dir: String, wait: Duration, stale: bool, tx: mpsc::Sender<Update>) {
    let mut index = 0u64;
    let mut seen = HashSet::new();
    let wait_param = crate::duration::format(wait.max(Duration::from_millis(1)));
    loop {
        let mut path = format!("/v1/kv/{}?keys&index={index}&wait={wait_param}", encode(&dir));
        if stale {
            path.push_str("&stale");
        }
        let resp = match client.request(Method::GET, &path, None).await {
            Ok(r) if r.status.is_success() || r.status == StatusCode::NOT_FOUND => r,
            Ok(r) => {
                eprintln!(
                    "Failed to read results: Unexpected response code: {} ({})",
                    r.status.as_u16(),
                    r.text().trim_end()
                );
                let _ = tx.send(Update::Failed).await;
                return;
            }
            Err(e) => {
                eprintln!("Failed to read results: {e}");
                let _ = tx.send(Update::Failed).await;
                return;
            }
        };
        let new_index = resp.index().unwrap_or(index);
        if new_index == index {
            continue;
        }
        index = new_index;
        let mut keys: Vec<String> =
            if resp.status == StatusCode::NOT_FOUND { Vec::new() } else { resp.json().unwrap_or_default() };
        // Keys come sorted by name, which puts a node's `exit` before its
        // `out/…`; report acks, then output, then exits, so a fast job's
        // output is not printed after its exit code.
        keys.sort_by_key(|k| match rexec::classify(k.strip_prefix(&dir).unwrap_or(k)) {
            ResultKey::Ack(_) => 0,
            ResultKey::Output(_) => 1,
            ResultKey::Exit(_) => 2,
            ResultKey::Job | ResultKey::Unknown => 3,
        });
        for full in keys {
            if !seen.insert(full.clone()) {
                continue;
            }
            let rel = full.strip_prefix(&dir).unwrap_or(&full);
            let update = match rexec::classify(rel) {
                ResultKey::Job => continue,
                ResultKey::Ack(node) => Update::Ack(node.to_string()),
                ResultKey::Exit(node) => {
                    let Some(v) = read_value(&client, &full).await else { continue };
                    let text = String::from_utf8_lossy(&v);
                    match text.trim().parse::<i32>() {
                        Ok(code) => Update::Exit(node.to_string(), code),
                        Err(e) => {
                            eprintln!("Failed to parse exit code '{text}': {e}");
                            continue;
                        }
                    }
                }
                ResultKey::Output(node) => {
                    let Some(v) = read_value(&client, &full).await else { continue };
                    if v.is_empty() {
                        Update::Heartbeat(node.to_string())
                    } else {
                        Update::Output(node.to_string(), v)
                    }
                }
                ResultKey::Unknown => {
                    eprintln!("Unknown key '{rel}', ignoring.");
                    continue;
                }
            };
            if tx.send(update).await.is_err() {
                return;
            }
        }
    }
}

async fn read_value(client: &Client, key: &str) -> Option<Vec<u8>> {
    match client.request(Method::GET, &format!("/v1/kv/{}?raw", encode(key)), None).await {
        Ok(r) if r.status.is_success() => Some(r.body.to_vec()),
        Ok(r) => {
            eprintln!("Failed to read key '{key}': Unexpected response code: {}", r.status.as_u16());
            None
        }
        Err(e) => {
            eprintln!("Failed to read key '{key}': {e}");
            None
        }
    }
}

#[derive(Deserialize)]
struct MemberJson {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Status")]
    status: u8,
}

#[derive(Deserialize)]
struct ServiceNodeJson {
    #[serde(rename = "Node")]
    node: String,
    #[serde(rename = "ServiceID", default)]
    id: String,
    #[serde(rename = "ServiceName", default)]
    name: String,
    #[serde(rename = "ServiceTags", default)]
    tags: Option<Vec<String>>,
}

/// The live members the filters select, as the agents themselves would
/// decide (the service filter is judged from the catalog).
async fn targeted_nodes(
    client: &Client,
    node: &str,
    service: &str,
    tag: &str,
) -> Result<BTreeSet<String>, String> {
    let re = |e: &str| {
        if e.is_empty() {
            Ok(None)
        } else {
            regex_lite::Regex::new(e).map(Some).map_err(|e| e.to_string())
        }
    };
    let (node_re, svc_re, tag_re) = (re(node)?, re(service)?, re(tag)?);
    let members: Vec<MemberJson> = client.call(Method::GET, "/v1/agent/members", None).await?.json()?;
    let mut nodes: BTreeSet<String> = members
        .into_iter()
        .filter(|m| m.status == 1)
        .filter(|m| node_re.as_ref().is_none_or(|r| r.is_match(&m.name)))
        .map(|m| m.name)
        .collect();
    let Some(svc_re) = svc_re else { return Ok(nodes) };
    let services: BTreeMap<String, Vec<String>> =
        client.call(Method::GET, "/v1/catalog/services", None).await?.json()?;
    let mut with_service = BTreeSet::new();
    for name in services.keys().filter(|n| svc_re.is_match(n)) {
        let instances: Vec<ServiceNodeJson> =
            client.call(Method::GET, &format!("/v1/catalog/service/{}", encode(name)), None).await?.json()?;
        for i in instances {
            let svc_ok = svc_re.is_match(&i.id) || svc_re.is_match(&i.name);
            let tag_ok = tag_re
                .as_ref()
                .is_none_or(|t| i.tags.as_deref().unwrap_or_default().iter().any(|x| t.is_match(x)));
            if svc_ok && tag_ok {
                with_service.insert(i.node);
            }
        }
    }
    nodes.retain(|n| with_service.contains(n));
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targeted_output_matches_consul() {
        // Output ending in a newline leaves an empty `node:` line, as
        // Consul prints it (only trailing whitespace is trimmed).
        assert_eq!(
            prefix_lines(false, "web-1", "hello\nworld\n"),
            "    web-1: hello\n    web-1: world\n    web-1:"
        );
        assert_eq!(prefix_lines(false, "web-1", "no newline"), "    web-1: no newline");
        assert_eq!(
            prefix_lines(true, "web-1", "finished with exit code 0"),
            "==> web-1: finished with exit code 0"
        );
    }

    #[test]
    fn go_duration_flags() {
        assert_eq!(parse_duration("wait", "2s").unwrap(), Duration::from_secs(2));
        assert_eq!(
            parse_duration("wait", "x").unwrap_err(),
            "invalid value \"x\" for flag -wait: parse error"
        );
    }
}
