//! The agent's configured `watches`: checked once at start (a bad block
//! stops the agent with an error naming it, as Consul does) and then run
//! against the agent's own HTTP address until the agent stops.
//!
//! Script handlers from config files run whatever `enable_script_checks`
//! says: Consul treats them as operator-written config, not as API input,
//! and does not gate them. Connect watch types are refused here as there.

use super::http_handler::HttpHandlerConfig;
use super::json::encode_line;
use super::plan::{Flow, Plan};
use super::script::{run_captured, HandlerCommand};
use super::spec::{self, WatchSpec};
use super::WatchError;
use crate::api::ClientConfig;
use bytes::Bytes;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What runs when a configured watch fires.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchHandlerSpec {
    Script(HandlerCommand),
    Http(HttpHandlerConfig),
}

/// One validated `watches` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentWatch {
    /// 1-based position in the merged `watches` list, for messages.
    pub number: usize,
    pub spec: WatchSpec,
    pub handler: WatchHandlerSpec,
}

/// Validates every `watches` entry. Returns the watches and warnings
/// (deprecated fields), or the first error, naming the watch.
pub fn parse_agent_watches(raw: &[Value]) -> Result<(Vec<AgentWatch>, Vec<String>), WatchError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut warnings = Vec::new();
    for (i, value) in raw.iter().enumerate() {
        let number = i + 1;
        let (watch, deprecated_handler) = parse_one(number, value).map_err(|e| WatchError::InWatch {
            number,
            json: compact(value),
            source: Box::new(e),
        })?;
        if deprecated_handler {
            warnings.push(format!(
                "watch #{number}: the 'handler' field in watches has been deprecated and replaced with the 'args' field. See https://www.consul.io/docs/agent/watches.html"
            ));
        }
        out.push(watch);
    }
    Ok((out, warnings))
}

fn compact(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 200 {
        let cut = (0..=200).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        return format!("{}…", text.get(..cut).unwrap_or_default());
    }
    text
}

fn parse_one(number: usize, value: &Value) -> Result<(AgentWatch, bool), WatchError> {
    let Value::Object(map) = value else { return Err(WatchError::NotAnObject) };
    let mut map = map.clone();
    match map.get("handler_type") {
        None => {
            map.insert("handler_type".into(), Value::String("script".into()));
        }
        Some(Value::String(t)) if t == "http" || t == "script" => {}
        Some(Value::String(t)) => return Err(WatchError::UnknownHandlerType(t.clone())),
        Some(other) => return Err(WatchError::UnknownHandlerType(other.to_string())),
    }
    if let Some(Value::String(t)) = map.get("type") {
        if t.starts_with("connect_") {
            return Err(WatchError::ConnectInAgentConfig(t.clone()));
        }
    }
    let (spec, mut kept) = spec::parse(map, &["handler", "args"])?;
    let handler = kept.remove("handler");
    let args = kept.remove("args");
    let is_http = spec.handler_type.as_deref() == Some("http");
    let handler = match handler {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(WatchError::HandlerNotString),
    };
    let args = match args {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(WatchError::ArgsNotStrings),
                })
                .collect::<Result<Vec<String>, _>>()?,
        ),
        Some(_) => return Err(WatchError::ArgsNotStrings),
    };
    let deprecated = handler.is_some();
    let handler = match (handler, args, is_http) {
        (Some(_), Some(_), _) | (Some(_), None, true) | (None, Some(_), true) => {
            return Err(WatchError::OneHandlerOnly)
        }
        (None, None, false) => return Err(WatchError::NoHandler),
        (None, None, true) => match spec.http_handler.clone() {
            Some(cfg) => WatchHandlerSpec::Http(cfg),
            None => return Err(WatchError::NoHttpHandlerConfig),
        },
        (Some(script), None, false) => WatchHandlerSpec::Script(HandlerCommand::Shell(script)),
        (None, Some(args), false) => {
            if args.is_empty() {
                return Err(WatchError::EmptyArgs);
            }
            WatchHandlerSpec::Script(HandlerCommand::Args(args))
        }
    };
    Ok((AgentWatch { number, spec, handler }, deprecated))
}

/// The address watches use to reach this agent: the first HTTP listener,
/// with a wildcard bind replaced by loopback.
pub fn local_http_address(bound: &[SocketAddr]) -> Option<String> {
    let addr = bound.first()?;
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Some(SocketAddr::new(ip, addr.port()).to_string())
}

/// The agent's running `watches`: replaced as a whole on reload (the old
/// plans stop, the new ones start and fire once, as Consul's reload does).
pub struct AgentWatches {
    endpoint: Option<ClientConfig>,
    parent: CancellationToken,
    tasks: TaskTracker,
    current: std::sync::Mutex<CancellationToken>,
}

impl AgentWatches {
    /// Starts one task per watch; they all stop when `stop` fires.
    /// `endpoint` is how watches reach this agent (see
    /// `local_http_address`); `None` when it serves no HTTP at all.
    pub fn start(
        watches: Vec<AgentWatch>,
        endpoint: Option<ClientConfig>,
        stop: CancellationToken,
        tasks: &TaskTracker,
    ) -> Result<AgentWatches, WatchError> {
        let set = AgentWatches {
            endpoint,
            current: std::sync::Mutex::new(stop.child_token()),
            parent: stop,
            tasks: tasks.clone(),
        };
        set.replace(watches)?;
        Ok(set)
    }

    /// Stops the running watches and starts `watches` instead. Every plan
    /// is built before anything stops, so a bad one changes nothing.
    pub fn replace(&self, watches: Vec<AgentWatch>) -> Result<(), WatchError> {
        let mut plans = Vec::with_capacity(watches.len());
        for w in watches {
            let endpoint = self.endpoint.as_ref().ok_or(WatchError::NoHttpEndpoint)?;
            let plan = Plan::new(w.spec.clone(), endpoint)
                .map_err(|e| WatchError::PlanFor { number: w.number, source: Box::new(e) })?;
            plans.push((w, plan));
        }
        let stop = self.parent.child_token();
        let old =
            std::mem::replace(&mut *self.current.lock().unwrap_or_else(|e| e.into_inner()), stop.clone());
        old.cancel();
        for (w, plan) in plans {
            tracing::debug!(target: "agent.watch", number = w.number, r#type = w.spec.kind.type_name(), "starting watch");
            let stop = stop.clone();
            self.tasks.spawn(async move {
                let handler = w.handler;
                plan.run(stop, |index, data| fire(&handler, index, data)).await;
            });
        }
        Ok(())
    }
}

async fn fire(handler: &WatchHandlerSpec, index: u64, data: Value) -> Flow {
    let input = encode_line(&data);
    match handler {
        WatchHandlerSpec::Script(cmd) => {
            let r = run_captured(cmd, index, &input).await;
            let name = cmd.describe();
            if let Some(e) = &r.error {
                tracing::error!(target: "agent", handler = %name, error = %e, "Failed to run watch handler");
            }
            tracing::debug!(target: "agent", handler = %name, output = %r.output, "watch handler output");
        }
        WatchHandlerSpec::Http(cfg) => match cfg.invoke(index, Bytes::from(input)).await {
            Ok((status, output)) if (200..300).contains(&status) => {
                tracing::trace!(target: "agent", handler = %cfg.path, output = %output, "http watch handler output");
            }
            Ok((status, output)) => {
                tracing::error!(target: "agent", handler = %cfg.path, status, output = %output, "http watch handler failed");
            }
            Err(e) => tracing::error!(target: "agent", error = %e, "Failed to invoke http watch handler"),
        },
    }
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Vec<AgentWatch>, String> {
        match v {
            Value::Array(items) => parse_agent_watches(&items).map(|(w, _)| w).map_err(|e| e.to_string()),
            _ => Err("bad test input".into()),
        }
    }

    #[test]
    fn good_watches() {
        let (w, warnings) = parse_agent_watches(&[
            json!({"type": "key", "key": "a", "args": ["/bin/echo", "x"]}),
            json!({"type": "services", "handler": "echo hi"}),
            json!({"type": "nodes", "handler_type": "http", "http_handler_config": {"path": "http://127.0.0.1:9/x"}}),
        ])
        .unwrap();
        assert_eq!(w.len(), 3);
        assert_eq!(
            w[0].handler,
            WatchHandlerSpec::Script(HandlerCommand::Args(vec!["/bin/echo".into(), "x".into()]))
        );
        assert_eq!(w[1].handler, WatchHandlerSpec::Script(HandlerCommand::Shell("echo hi".into())));
        assert!(matches!(&w[2].handler, WatchHandlerSpec::Http(c) if c.method == "POST"));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("watch #2"));
    }

    #[test]
    fn bad_watches_name_themselves() {
        let err = |v| parse(v).unwrap_err();
        let e = err(json!([{"type": "key", "key": "a", "args": ["x"]}, {"type": "key", "args": ["x"]}]));
        assert!(e.starts_with("Failed to parse watch #2 ("), "{e}");
        assert!(e.ends_with("Must specify a single key to watch"), "{e}");
        assert!(err(json!([{"type": "key", "key": "a"}])).ends_with("Must define a watch handler"));
        assert!(err(json!([{"type": "key", "key": "a", "handler": "x", "args": ["y"]}]))
            .ends_with("Only one watch handler allowed"));
        assert!(err(json!([{"type": "key", "key": "a", "handler_type": "carrier-pigeon", "args": ["y"]}]))
            .ends_with("Handler type 'carrier-pigeon' not recognized"));
        assert!(err(json!([{"type": "connect_roots", "args": ["y"]}]))
            .ends_with("Watch type connect_roots is not allowed in agent config"));
        assert!(err(json!([{"type": "key", "key": "a", "args": "y"}]))
            .ends_with("Watch args must be a list of strings"));
        assert!(err(json!([{"type": "key", "key": "a", "handler": ["y"]}]))
            .ends_with("Watch handler must be a string"));
        assert!(err(json!([{"type": "key", "key": "a", "args": ["y"], "keey": 1}]))
            .ends_with("Invalid parameters: [keey]"));
        assert!(err(json!([{"type": "key", "key": "a", "handler_type": "http", "http_handler_config": {"path": "http://x"}, "args": ["y"]}]))
            .ends_with("Only one watch handler allowed"));
        assert!(err(json!(["key"])).ends_with("a watch must be an object"));
    }

    #[test]
    fn wildcard_listener_becomes_loopback() {
        let a: SocketAddr = "0.0.0.0:8500".parse().unwrap();
        assert_eq!(local_http_address(&[a]).as_deref(), Some("127.0.0.1:8500"));
        let b: SocketAddr = "127.0.0.9:8501".parse().unwrap();
        assert_eq!(local_http_address(&[b]).as_deref(), Some("127.0.0.9:8501"));
        assert_eq!(local_http_address(&[]), None);
    }
}
