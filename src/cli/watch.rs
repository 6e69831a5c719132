//! `consul watch`: follows one data view with blocking queries. Without a
//! handler it prints the current data as indented JSON and exits, as
//! Consul's does; with one, it runs the handler with the JSON on stdin at
//! start and on every change until interrupted or the handler fails.

use super::HttpFlags;
use crate::api::{Client, ClientConfig};
use crate::watch::plan::{ErrorReport, Flow, Plan};
use crate::watch::script::{run_inherited, HandlerCommand};
use crate::watch::{json, spec};
use clap::Args;
use hyper::Method;
use serde_json::{Map, Value};
use std::cell::Cell;
use std::io::Write;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

const B: &str = "true";

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(
        long = "type",
        default_value = "",
        help = "What to watch: key, keyprefix, services, nodes, service, checks or event"
    )]
    pub watch_type: String,
    #[arg(long, default_value = "", help = "The key to watch (type key)")]
    pub key: String,
    #[arg(long, default_value = "", help = "The key prefix to watch (type keyprefix)")]
    pub prefix: String,
    #[arg(
        long,
        default_value = "",
        help = "The service to watch (required for type service, optional for checks)"
    )]
    pub service: String,
    #[arg(long, default_value = "", help = "Only instances with this tag (type service)")]
    pub tag: String,
    #[arg(
        long,
        default_value = "",
        help = "true: only instances whose checks all pass (type service); default false"
    )]
    pub passingonly: String,
    #[arg(
        long,
        default_value = "",
        help = "The check state to watch: any, passing, warning or critical (type checks)"
    )]
    pub state: String,
    #[arg(long, default_value = "", help = "Only events with this name (type event)")]
    pub name: String,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Run the handler through $SHELL -c (default /bin/sh); false runs it directly")]
    pub shell: Option<bool>,
    /// The handler to run on each change.
    pub args: Vec<String>,
}

const HELP: &str = "Usage: consul watch [options] [child...]

  Follows one view of Consul's data. With a child command, runs it with the
  view as JSON on stdin at start and after every change. Without one, prints
  the view once and exits.

  -type is required; the other options depend on the type.";

pub fn run(a: WatchArgs) -> i32 {
    super::block_on(run_async(a))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// The watch parameters the flags describe, as Consul's command builds them.
fn params(a: &WatchArgs, cfg: &ClientConfig) -> Result<Map<String, Value>, String> {
    let mut p = Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            p.insert(k.to_string(), Value::String(v.to_string()));
        }
    };
    put("type", &a.watch_type);
    put("datacenter", cfg.datacenter.as_deref().unwrap_or(""));
    put("token", cfg.token.as_deref().unwrap_or(""));
    put("key", &a.key);
    put("prefix", &a.prefix);
    put("service", &a.service);
    put("tag", &a.tag);
    put("state", &a.state);
    put("name", &a.name);
    if a.http.stale() {
        p.insert("stale".into(), Value::Bool(true));
    }
    if !a.passingonly.is_empty() {
        let b =
            parse_go_bool(&a.passingonly).map_err(|e| format!("Failed to parse passingonly flag: {e}"))?;
        p.insert("passingonly".into(), Value::Bool(b));
    }
    Ok(p)
}

async fn run_async(a: WatchArgs) -> i32 {
    if a.watch_type.is_empty() {
        eprintln!("Watch type must be specified");
        eprintln!();
        eprintln!("{HELP}");
        return 1;
    }
    let cfg = match a.http.client_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error connecting to Consul agent: {e}");
            return 1;
        }
    };
    let params = match params(&a, &cfg) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let spec = match spec::parse(params, &[]) {
        Ok((s, _)) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let client = match Client::new(cfg.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error connecting to Consul agent: {e}");
            return 1;
        }
    };
    if let Err(e) = client.call(Method::GET, "/v1/agent/self", None).await {
        eprintln!("Error querying Consul agent: {e}");
        return 1;
    }
    let mut plan = match Plan::new(spec, &cfg) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("Error connecting to Consul agent: {e}");
            return 1;
        }
    };
    plan.report = ErrorReport::Stderr;
    let handler = if a.args.is_empty() {
        None
    } else if a.shell.unwrap_or(true) {
        Some(HandlerCommand::Shell(a.args.join(" ")))
    } else {
        Some(HandlerCommand::Args(a.args.clone()))
    };
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        eprintln!("Error installing signal handlers");
        return 1;
    };
    let failed = Cell::new(false);
    let stop = CancellationToken::new();
    let watch = plan.run(stop.clone(), |index, data| {
        let handler = handler.clone();
        let failed = &failed;
        async move {
            let Some(cmd) = handler else {
                // No handler: print once and stop. A closed pipe is not an error.
                let _ = writeln!(std::io::stdout(), "{}", json::encode_indented(&data));
                return Flow::Stop;
            };
            match run_inherited(&cmd, index, &json::encode_line(&data)).await {
                Ok(()) => Flow::Continue,
                Err(e) => {
                    eprintln!("Error executing handler: {e}");
                    failed.set(true);
                    Flow::Stop
                }
            }
        }
    });
    tokio::select! {
        _ = watch => {}
        // Consul exits 0 when interrupted.
        _ = int.recv() => return 0,
        _ = term.recv() => return 0,
    }
    i32::from(failed.get())
}
