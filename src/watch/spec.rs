//! A parsed watch definition: which data view to watch and how, from the
//! parameter map Consul uses for `consul watch` flags and agent `watches`
//! blocks. Parsing follows Consul's order and messages, so a bad watch is
//! refused with the text Consul users know.

use super::http_handler::HttpHandlerConfig;
use super::params::Params;
use super::WatchError;
use serde_json::{Map, Value};

/// The data view a watch follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchKind {
    /// One KV key (`key`).
    Key { key: String },
    /// Every key under a prefix (`prefix`).
    KeyPrefix { prefix: String },
    /// The catalog's service names and tags.
    Services,
    /// The catalog's nodes.
    Nodes,
    /// Healthy-or-not instances of one service (`service`, `tag`, `passingonly`).
    Service { service: String, tags: Vec<String>, passing_only: bool },
    /// Health checks of one service, or in one state (`service` xor `state`, `tag`).
    Checks { target: ChecksTarget, tags: Vec<String> },
    /// User events, optionally of one name (`name`).
    Event { name: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChecksTarget {
    Service(String),
    State(String),
}

impl WatchKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            WatchKind::Key { .. } => "key",
            WatchKind::KeyPrefix { .. } => "keyprefix",
            WatchKind::Services => "services",
            WatchKind::Nodes => "nodes",
            WatchKind::Service { .. } => "service",
            WatchKind::Checks { .. } => "checks",
            WatchKind::Event { .. } => "event",
        }
    }
}

/// A whole watch: the view plus the request options every type shares.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchSpec {
    pub kind: WatchKind,
    pub datacenter: Option<String>,
    pub token: Option<String>,
    /// Let any server answer (`?stale`); not accepted by `event`.
    pub stale: bool,
    /// `handler_type` as given (`script`, `http`, or absent).
    pub handler_type: Option<String>,
    /// Present when `handler_type` is `http`.
    pub http_handler: Option<HttpHandlerConfig>,
}

/// The types Consul knows but this agent does not run (Connect).
const UNSUPPORTED_CONNECT_TYPES: &[&str] = &["connect_roots", "connect_leaf", "agent_service"];

/// Parses a watch definition. Keys named in `exempt` are not interpreted
/// and come back in the second value for the caller (the agent's `handler`
/// and `args`); any other unknown key is an error.
pub fn parse(
    map: Map<String, Value>,
    exempt: &[&str],
) -> Result<(WatchSpec, Map<String, Value>), WatchError> {
    let mut p = Params::new(map);
    let datacenter = p.string("datacenter")?.filter(|s| !s.is_empty());
    let token = p.string("token")?.filter(|s| !s.is_empty());
    let typ = p.string("type")?.unwrap_or_default();
    if typ.is_empty() {
        return Err(WatchError::NoType);
    }
    let handler_type = p.string("handler_type")?;
    let http_handler = if handler_type.as_deref() == Some("http") {
        let Some(raw) = p.take("http_handler_config") else {
            return Err(WatchError::NoHttpHandlerConfig);
        };
        Some(HttpHandlerConfig::parse(&raw).map_err(|e| WatchError::HttpHandlerConfig(Box::new(e)))?)
    } else {
        None
    };
    let (kind, stale) = parse_kind(&typ, &mut p)?;
    let mut kept = Map::new();
    for name in exempt {
        if let Some(v) = p.take(name) {
            kept.insert((*name).to_string(), v);
        }
    }
    p.finish()?;
    Ok((WatchSpec { kind, datacenter, token, stale, handler_type, http_handler }, kept))
}

fn parse_kind(typ: &str, p: &mut Params) -> Result<(WatchKind, bool), WatchError> {
    let kind = match typ {
        "key" => {
            let stale = p.boolean("stale")?;
            let key = p.string("key")?.unwrap_or_default();
            if key.is_empty() {
                return Err(WatchError::NoKey);
            }
            return Ok((WatchKind::Key { key }, stale));
        }
        "keyprefix" => {
            let stale = p.boolean("stale")?;
            let prefix = p.string("prefix")?.unwrap_or_default();
            if prefix.is_empty() {
                return Err(WatchError::NoPrefix);
            }
            return Ok((WatchKind::KeyPrefix { prefix }, stale));
        }
        "services" => WatchKind::Services,
        "nodes" => WatchKind::Nodes,
        "service" => {
            let stale = p.boolean("stale")?;
            let service = p.string("service")?.unwrap_or_default();
            if service.is_empty() {
                return Err(WatchError::NoService);
            }
            let tags = p.string_list("tag")?;
            let passing_only = p.boolean("passingonly")?;
            return Ok((WatchKind::Service { service, tags, passing_only }, stale));
        }
        "checks" => {
            let stale = p.boolean("stale")?;
            let service = p.string("service")?.filter(|s| !s.is_empty());
            let state = p.string("state")?.filter(|s| !s.is_empty());
            let target = match (service, state) {
                (Some(_), Some(_)) => return Err(WatchError::ServiceAndState),
                (Some(s), None) => ChecksTarget::Service(s),
                (None, Some(s)) => ChecksTarget::State(s),
                (None, None) => ChecksTarget::State("any".into()),
            };
            if let ChecksTarget::State(s) = &target {
                // The agent would refuse it on every query; say so once, now.
                if !matches!(s.as_str(), "any" | "passing" | "warning" | "critical") {
                    return Err(WatchError::InvalidCheckState(s.clone()));
                }
            }
            let tags = p.string_list("tag")?;
            return Ok((WatchKind::Checks { target, tags }, stale));
        }
        "event" => {
            // `stale` does not apply to events: left in the map, it is refused.
            let name = p.string("name")?.filter(|s| !s.is_empty());
            return Ok((WatchKind::Event { name }, false));
        }
        other if UNSUPPORTED_CONNECT_TYPES.contains(&other) => {
            return Err(WatchError::ConnectType(other.to_string()));
        }
        other => return Err(WatchError::UnsupportedType(other.to_string())),
    };
    let stale = p.boolean("stale")?;
    Ok((kind, stale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(v: Value) -> Result<WatchSpec, String> {
        match v {
            Value::Object(m) => parse(m, &[]).map(|(s, _)| s).map_err(|e| e.to_string()),
            _ => Err("not an object".into()),
        }
    }

    #[test]
    fn each_type_and_its_parameters() {
        let s = parse_json(json!({"type": "key", "key": "a/b", "stale": true, "datacenter": "dc2"})).unwrap();
        assert_eq!(s.kind, WatchKind::Key { key: "a/b".into() });
        assert!(s.stale);
        assert_eq!(s.datacenter.as_deref(), Some("dc2"));
        let s = parse_json(json!({"type": "service", "service": "web", "tag": "v1", "passingonly": true}))
            .unwrap();
        assert_eq!(
            s.kind,
            WatchKind::Service { service: "web".into(), tags: vec!["v1".into()], passing_only: true }
        );
        let s = parse_json(json!({"type": "checks"})).unwrap();
        assert_eq!(s.kind, WatchKind::Checks { target: ChecksTarget::State("any".into()), tags: vec![] });
        let s = parse_json(json!({"type": "checks", "service": "web"})).unwrap();
        assert_eq!(s.kind, WatchKind::Checks { target: ChecksTarget::Service("web".into()), tags: vec![] });
        let s = parse_json(json!({"type": "event", "name": "deploy"})).unwrap();
        assert_eq!(s.kind, WatchKind::Event { name: Some("deploy".into()) });
        assert_eq!(parse_json(json!({"type": "nodes"})).unwrap().kind, WatchKind::Nodes);
        assert_eq!(parse_json(json!({"type": "services"})).unwrap().kind, WatchKind::Services);
    }

    #[test]
    fn consul_errors() {
        let err = |v| parse_json(v).unwrap_err();
        assert_eq!(err(json!({})), "Watch type must be specified");
        assert_eq!(err(json!({"type": "bogus"})), "Unsupported watch type: bogus");
        assert_eq!(err(json!({"type": "key"})), "Must specify a single key to watch");
        assert_eq!(err(json!({"type": "keyprefix"})), "Must specify a single prefix to watch");
        assert_eq!(err(json!({"type": "service"})), "Must specify a single service to watch");
        assert_eq!(
            err(json!({"type": "checks", "service": "a", "state": "passing"})),
            "Cannot specify service and state"
        );
        assert_eq!(err(json!({"type": "key", "key": "a", "prefix": "b"})), "Invalid parameters: [prefix]");
        assert_eq!(err(json!({"type": "event", "stale": true})), "Invalid parameters: [stale]");
        assert_eq!(err(json!({"type": "key", "key": 3})), "Expecting key to be a string");
        assert_eq!(
            err(json!({"type": "key", "key": "a", "handler_type": "http"})),
            "Handler type 'http' requires 'http_handler_config' to be set"
        );
        assert!(err(json!({"type": "checks", "state": "sad"})).contains("Invalid check state"));
    }

    #[test]
    fn exempt_keys_come_back() {
        let m = match json!({"type": "key", "key": "k", "args": ["a"], "handler": "x"}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let (_, kept) = parse(m, &["handler", "args"]).unwrap();
        assert_eq!(kept.len(), 2);
    }
}
