//! Config entries (Consul's centralized configuration: `service-defaults`,
//! `proxy-defaults`, routers, splitters, resolvers, gateways, intentions,
//! `mesh`, `exported-services`) as a pure library: decoding a submitted
//! entry with Consul's key rules and error texts, per-kind normalization and
//! validation, the cross-entry (graph) checks Consul makes at write time,
//! the stored shape and its JSON rendering, the discovery chain compiler
//! (`chain`) and intention decisions (`intentions`).
//!
//! Invariant: no IO, no clock, no state of its own. The catalog stores
//! `ConfigEntry` values; the server validates with this module before it
//! proposes a write.

pub mod chain;
pub mod gateways;
pub mod intentions;
pub mod kinds;
pub mod schema;
mod validate;

use schema::{Problems, F};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use validate::{protocol_of, validate_graph, GraphError};

pub const SERVICE_DEFAULTS: &str = "service-defaults";
pub const PROXY_DEFAULTS: &str = "proxy-defaults";
pub const SERVICE_ROUTER: &str = "service-router";
pub const SERVICE_SPLITTER: &str = "service-splitter";
pub const SERVICE_RESOLVER: &str = "service-resolver";
pub const INGRESS_GATEWAY: &str = "ingress-gateway";
pub const TERMINATING_GATEWAY: &str = "terminating-gateway";
pub const SERVICE_INTENTIONS: &str = "service-intentions";
pub const MESH: &str = "mesh";
pub const EXPORTED_SERVICES: &str = "exported-services";

/// `proxy-defaults` has one entry, named `global`; `mesh` one named `mesh`.
pub const PROXY_DEFAULTS_NAME: &str = "global";
pub const MESH_NAME: &str = "mesh";

/// Every kind this agent stores, in Consul's order.
pub const KINDS: &[&str] = &[
    SERVICE_DEFAULTS,
    PROXY_DEFAULTS,
    SERVICE_ROUTER,
    SERVICE_SPLITTER,
    SERVICE_RESOLVER,
    INGRESS_GATEWAY,
    TERMINATING_GATEWAY,
    SERVICE_INTENTIONS,
    MESH,
    EXPORTED_SERVICES,
];

/// Kinds Consul has that this agent does not model: refused by name rather
/// than as unknown, so the user learns it is this agent's limit.
pub const UNMODELLED_KINDS: &[&str] = &[
    "api-gateway",
    "bound-api-gateway",
    "http-route",
    "tcp-route",
    "inline-certificate",
    "file-system-certificate",
    "jwt-provider",
    "sameness-group",
    "control-plane-request-limit",
    "rate-limit-ip-config",
];

/// A stored config entry. `body` is the canonical JSON object of the kind's
/// fields (Consul's names, without `Kind`, `Name` and the raft indexes),
/// kept as text so the replicated state stays a plain postcard encoding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigEntry {
    pub kind: String,
    pub name: String,
    pub body: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl ConfigEntry {
    pub fn new(kind: &str, name: &str, fields: &Map<String, Value>) -> ConfigEntry {
        ConfigEntry {
            kind: kind.to_string(),
            name: name.to_string(),
            body: Value::Object(fields.clone()).to_string(),
            create_index: 0,
            modify_index: 0,
        }
    }

    /// The kind's fields (an empty map if the stored text were damaged).
    pub fn fields(&self) -> Map<String, Value> {
        match serde_json::from_str::<Value>(&self.body) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }

    /// The entry as Consul's API shows it.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("Kind".into(), Value::String(self.kind.clone()));
        if self.kind != MESH {
            out.insert("Name".into(), Value::String(self.name.clone()));
        }
        let mut fields = self.fields();
        // Fields Consul always shows for these kinds (Go struct values,
        // not pointers, so `omitempty` never drops them).
        let always: &[(&str, Value)] = match self.kind.as_str() {
            SERVICE_DEFAULTS => &[
                ("Protocol", Value::String(String::new())),
                ("TransparentProxy", Value::Object(Map::new())),
                ("MeshGateway", Value::Object(Map::new())),
                ("Expose", Value::Object(Map::new())),
            ],
            PROXY_DEFAULTS => &[
                ("TransparentProxy", Value::Object(Map::new())),
                ("MeshGateway", Value::Object(Map::new())),
                ("Expose", Value::Object(Map::new())),
            ],
            _ => &[],
        };
        let schema = schema_of(&self.kind).unwrap_or(&[]);
        for f in schema {
            if let Some(v) = fields.remove(f.0) {
                out.insert(f.0.to_string(), v);
            } else if let Some((_, v)) = always.iter().find(|(n, _)| *n == f.0) {
                out.insert(f.0.to_string(), v.clone());
            }
        }
        // Anything not in the schema (none today) is still shown.
        out.extend(fields);
        out.insert("CreateIndex".into(), Value::from(self.create_index));
        out.insert("ModifyIndex".into(), Value::from(self.modify_index));
        Value::Object(out)
    }
}

/// Why a submitted entry was refused before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The payload does not decode (Consul's HTTP answer: 400
    /// `Request decoding failed: <text>`).
    #[error("{0}")]
    Decode(String),
    /// The entry decodes but is not valid (Consul answers 500 with the text).
    #[error("{0}")]
    Invalid(String),
}

/// The decoding schema of a kind this agent stores.
pub fn schema_of(kind: &str) -> Option<&'static [F]> {
    Some(match kind {
        SERVICE_DEFAULTS => kinds::SERVICE_DEFAULTS,
        PROXY_DEFAULTS => kinds::PROXY_DEFAULTS,
        SERVICE_ROUTER => kinds::SERVICE_ROUTER,
        SERVICE_SPLITTER => kinds::SERVICE_SPLITTER,
        SERVICE_RESOLVER => kinds::SERVICE_RESOLVER,
        INGRESS_GATEWAY => kinds::INGRESS_GATEWAY,
        TERMINATING_GATEWAY => kinds::TERMINATING_GATEWAY,
        SERVICE_INTENTIONS => kinds::SERVICE_INTENTIONS,
        MESH => kinds::MESH,
        EXPORTED_SERVICES => kinds::EXPORTED_SERVICES,
        _ => return None,
    })
}

/// Consul's refusal of a kind it does not know, or of one it knows that
/// this agent does not model.
pub fn check_kind(kind: &str) -> Result<(), EntryError> {
    if schema_of(kind).is_some() {
        Ok(())
    } else if UNMODELLED_KINDS.contains(&kind) {
        Err(EntryError::Decode(format!(
            "config entry kind {kind:?} is not supported by this agent (consul-rs does not model \
             API gateways, routes, certificates, JWT providers, sameness groups or rate-limit entries)"
        )))
    } else {
        Err(EntryError::Decode(format!("invalid config entry kind: {kind}")))
    }
}

/// Go's multierror text.
fn multi(errors: &[String]) -> String {
    let head = if errors.len() == 1 {
        "1 error occurred:".to_string()
    } else {
        format!("{} errors occurred:", errors.len())
    };
    let mut s = head;
    for e in errors {
        s.push_str("\n\t* ");
        s.push_str(e);
    }
    s.push_str("\n\n");
    s
}

fn unused_key_error(key: &str) -> String {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    if last.ends_with("namespace") {
        format!("invalid config key {key:?}, namespaces are a consul enterprise feature")
    } else {
        format!("invalid config key {key:?}")
    }
}

/// Decodes a submitted entry (a JSON object, from the API, a file or the
/// agent's `config_entries.bootstrap`): its kind, name and canonical
/// fields. Nothing is validated beyond types and known keys.
pub fn decode(raw: &Value) -> Result<(String, String, Map<String, Value>), EntryError> {
    let obj = raw.as_object().ok_or_else(|| EntryError::Decode("Payload is not a JSON object".into()))?;
    let kind_val = obj.get("Kind").or_else(|| obj.get("kind")).ok_or_else(|| {
        EntryError::Decode("Payload does not contain a kind/Kind key at the top level".into())
    })?;
    let kind = kind_val
        .as_str()
        .ok_or_else(|| EntryError::Decode("Kind value in payload is not a string".into()))?;
    check_kind(kind)?;
    let schema = schema_of(kind).unwrap_or(&[]);
    let mut problems = Problems::default();
    let mut name = String::new();
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("name") {
            match schema::decode_value(schema::Ty::Str, v, "Name", &mut problems) {
                Some(Value::String(s)) => name = s,
                _ if v.is_null() => {}
                _ => {}
            }
        }
    }
    let fields = schema::decode_object(
        schema,
        obj,
        "",
        &["Kind", "Name", "CreateIndex", "ModifyIndex", "Hash"],
        &mut problems,
    );
    if !problems.type_errors.is_empty() {
        let n = problems.type_errors.len();
        let mut s = format!("{n} error(s) decoding:\n");
        for e in &problems.type_errors {
            s.push_str("\n* ");
            s.push_str(e);
        }
        return Err(EntryError::Decode(s));
    }
    if !problems.unused.is_empty() {
        let errs: Vec<String> = problems.unused.iter().map(|k| unused_key_error(k)).collect();
        return Err(EntryError::Decode(multi(&errs)));
    }
    Ok((kind.to_string(), name, fields))
}

/// Normalizes and validates one entry on its own (Consul's `Normalize`
/// then `Validate`): may rewrite the name (`proxy-defaults` → `global`) and
/// fields (lower-case protocols, intention precedence).
pub fn normalize_and_validate(
    kind: &str,
    name: &mut String,
    fields: &mut Map<String, Value>,
) -> Result<(), EntryError> {
    check_kind(kind)?;
    validate::entry(kind, name, fields).map_err(EntryError::Invalid)
}

/// What central config resolves to for one service, as Consul merges it
/// for a proxy (`?merge-central-config`, the resolved service config):
/// `proxy-defaults` first, then the service's `service-defaults` over it.
/// Keys: `ProxyConfig` (proxy-defaults `Config`, with `protocol` set from
/// service-defaults when it names one), `Protocol`, `Mode`,
/// `TransparentProxy`, `MeshGateway`, `Expose`, `MutualTLSMode`, and
/// `UpstreamConfig` (service-defaults only).
pub fn resolved_service_config(
    service: &str,
    lookup: &dyn Fn(&str, &str) -> Option<Map<String, Value>>,
) -> Value {
    let proxy = lookup(PROXY_DEFAULTS, PROXY_DEFAULTS_NAME).unwrap_or_default();
    let svc = lookup(SERVICE_DEFAULTS, service).unwrap_or_default();
    let mut config = proxy.get("Config").and_then(Value::as_object).cloned().unwrap_or_default();
    let protocol = validate::protocol_of(service, lookup);
    if svc.get("Protocol").and_then(Value::as_str).is_some_and(|p| !p.is_empty()) {
        config.insert("protocol".into(), Value::String(protocol.clone()));
    }
    let mut out = Map::new();
    out.insert("ProxyConfig".into(), Value::Object(config));
    out.insert("Protocol".into(), Value::String(protocol));
    for k in ["Mode", "MutualTLSMode"] {
        let v = svc.get(k).or_else(|| proxy.get(k)).cloned().unwrap_or(Value::String(String::new()));
        out.insert(k.into(), v);
    }
    for k in ["TransparentProxy", "MeshGateway", "Expose"] {
        let mut merged = proxy.get(k).and_then(Value::as_object).cloned().unwrap_or_default();
        if let Some(Value::Object(o)) = svc.get(k) {
            merged.extend(o.clone());
        }
        out.insert(k.into(), Value::Object(merged));
    }
    if let Some(u) = svc.get("UpstreamConfig") {
        out.insert("UpstreamConfig".into(), u.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decode_refuses_unknown_kinds_and_keys_with_consuls_texts() {
        assert_eq!(
            decode(&json!({"Kind": "nope", "Name": "x"})).unwrap_err().to_string(),
            "invalid config entry kind: nope"
        );
        assert!(decode(&json!({"Kind": "api-gateway", "Name": "x"}))
            .unwrap_err()
            .to_string()
            .contains("not supported by this agent"));
        assert_eq!(
            decode(&json!({"Name": "x"})).unwrap_err().to_string(),
            "Payload does not contain a kind/Kind key at the top level"
        );
        assert_eq!(
            decode(&json!({"Kind": "service-defaults", "Name": "web", "Foo": 1})).unwrap_err().to_string(),
            "1 error occurred:\n\t* invalid config key \"Foo\"\n\n"
        );
        assert!(decode(&json!({"Kind": "service-defaults", "Name": "web", "Namespace": "a"}))
            .unwrap_err()
            .to_string()
            .contains("namespaces are a consul enterprise feature"));
        let (kind, name, fields) =
            decode(&json!({"kind": "service-defaults", "name": "web", "protocol": "http", "ModifyIndex": 7}))
                .unwrap();
        assert_eq!((kind.as_str(), name.as_str()), (SERVICE_DEFAULTS, "web"));
        assert_eq!(Value::Object(fields), json!({"Protocol": "http"}));
    }

    #[test]
    fn renders_consuls_shape() {
        let mut e =
            ConfigEntry::new(SERVICE_DEFAULTS, "web", json!({"Protocol": "http"}).as_object().unwrap());
        e.create_index = 5;
        e.modify_index = 6;
        assert_eq!(
            e.to_json(),
            json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http", "TransparentProxy": {},
                "MeshGateway": {}, "Expose": {}, "CreateIndex": 5, "ModifyIndex": 6})
        );
        let lookup = |k: &str, _n: &str| match k {
            PROXY_DEFAULTS => {
                json!({"Config": {"protocol": "tcp", "x": 1}, "MeshGateway": {"Mode": "local"}})
                    .as_object()
                    .cloned()
            }
            SERVICE_DEFAULTS => {
                json!({"Protocol": "http", "MeshGateway": {"Mode": "remote"}}).as_object().cloned()
            }
            _ => None,
        };
        let r = resolved_service_config("web", &lookup);
        assert_eq!(r["ProxyConfig"], json!({"protocol": "http", "x": 1}));
        assert_eq!(r["MeshGateway"], json!({"Mode": "remote"}));
        let m = ConfigEntry::new(MESH, MESH_NAME, &Map::new());
        assert_eq!(m.to_json(), json!({"Kind": "mesh", "CreateIndex": 0, "ModifyIndex": 0}));
    }
}
