//! The read parameters Consul's catalog and health endpoints take for the
//! mesh: `?peer=` (cluster peering; we have none) and
//! `?merge-central-config` (config entries merged into the services).

use super::error::HttpError;
use super::query::Params;
use super::Ctx;
use crate::catalog::mesh::{is_gateway, KIND_CONNECT_PROXY};
use crate::catalog::types::NodeService;
use crate::rpc::{method, QueryOptions, RequestContext};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Whether the read names a cluster peer (`?peer=<name>`). This agent has
/// no peerings, so such a read finds nothing: the endpoint answers its
/// empty shape with the index headers of the local read.
pub fn peer_requested(params: &Params) -> bool {
    params.get("peer").is_some_and(|p| !p.is_empty())
}

/// The service whose central config applies to an instance, if any: as in
/// Consul, only sidecar proxies (their destination service's) and gateways
/// (their own) are merged; other instances are returned as registered.
fn config_target(s: &NodeService) -> Option<&str> {
    if s.kind == KIND_CONNECT_PROXY && !s.proxy.destination_service_name.is_empty() {
        Some(&s.proxy.destination_service_name)
    } else if is_gateway(&s.kind) {
        Some(&s.service)
    } else {
        None
    }
}

/// Applies `?merge-central-config` to `services` when the request asks for
/// it: each sidecar proxy and gateway gets the `proxy-defaults` and
/// `service-defaults` it resolves to merged under what it registered. The
/// answer is the highest config-entry index read (0 when nothing was
/// merged), which the caller folds into its own index like Consul does.
pub async fn merge_requested(
    ctx: &Ctx,
    rc: &RequestContext,
    params: &Params,
    services: &mut [&mut NodeService],
) -> Result<u64, HttpError> {
    if !params.has("merge-central-config") {
        return Ok(0);
    }
    let mut targets: BTreeMap<String, Option<Value>> = BTreeMap::new();
    for s in services.iter() {
        if let Some(t) = config_target(s) {
            targets.insert(t.to_string(), None);
        }
    }
    // The catalog read has already blocked (if asked to); the config read is
    // a plain read with the same consistency.
    let plain = RequestContext {
        query: QueryOptions { min_index: 0, max_wait: None, consistency: rc.query.consistency },
        ..rc.clone()
    };
    let mut index = 0;
    for (name, slot) in targets.iter_mut() {
        let (meta, text) =
            ctx.agent.call(plain.clone(), method::ResolvedServiceConfig { service: name.clone() }).await?;
        index = index.max(meta.index);
        *slot = serde_json::from_str(&text).ok();
    }
    for s in services.iter_mut() {
        let resolved = config_target(s).and_then(|t| targets.get(t)).and_then(Option::as_ref);
        if let Some(resolved) = resolved {
            merge_central_config(s, resolved);
        }
    }
    Ok(index)
}

fn object<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Merges a resolved service config (`config_entry::resolved_service_config`)
/// under a registered instance: what the instance registered wins; central
/// config fills only what it left unset (Consul's `MergeServiceConfig`).
pub fn merge_central_config(s: &mut NodeService, resolved: &Value) {
    let p = &mut s.proxy;
    if let Some(defaults) = object(resolved, "ProxyConfig").filter(|m| !m.is_empty()) {
        let mut config = match serde_json::from_str::<Value>(&p.config) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for (k, v) in defaults {
            config.entry(k.clone()).or_insert_with(|| v.clone());
        }
        p.config = Value::Object(config).to_string();
    }
    if p.mesh_gateway.mode.is_empty() {
        if let Some(m) = object(resolved, "MeshGateway") {
            p.mesh_gateway.mode = text(&Value::Object(m.clone()), "Mode").to_string();
        }
    }
    if p.mode.is_empty() {
        p.mode = text(resolved, "Mode").to_string();
    }
    if let Some(tp) = object(resolved, "TransparentProxy") {
        if p.transparent_proxy.outbound_listener_port == 0 {
            let port = tp.get("OutboundListenerPort").and_then(Value::as_u64).unwrap_or(0);
            p.transparent_proxy.outbound_listener_port = u16::try_from(port).unwrap_or(0);
        }
        if !p.transparent_proxy.dialed_directly {
            p.transparent_proxy.dialed_directly =
                tp.get("DialedDirectly").and_then(Value::as_bool).unwrap_or(false);
        }
    }
    if let Some(ex) = object(resolved, "Expose") {
        // Consul merges the struct field by field: unset (zero) fields take
        // the default's value.
        if !p.expose.checks {
            p.expose.checks = ex.get("Checks").and_then(Value::as_bool).unwrap_or(false);
        }
        if p.expose.paths.is_empty() {
            if let Some(Value::Array(paths)) = ex.get("Paths") {
                p.expose.paths = paths.iter().map(expose_path).collect();
            }
        }
    }
}

fn expose_path(v: &Value) -> crate::catalog::mesh::ExposePath {
    let port = |k: &str| u16::try_from(v.get(k).and_then(Value::as_u64).unwrap_or(0)).unwrap_or(0);
    crate::catalog::mesh::ExposePath {
        listener_port: port("ListenerPort"),
        path: text(v, "Path").to_string(),
        local_path_port: port("LocalPathPort"),
        protocol: text(v, "Protocol").to_string(),
        parsed_from_check: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registered_values_win_and_central_config_fills_the_rest() {
        let mut s = NodeService {
            kind: KIND_CONNECT_PROXY.into(),
            service: "web-sidecar-proxy".into(),
            ..Default::default()
        };
        s.proxy.destination_service_name = "web".into();
        s.proxy.config = json!({"protocol": "tcp"}).to_string();
        s.proxy.mesh_gateway.mode = "local".into();
        assert_eq!(config_target(&s), Some("web"));
        let resolved = json!({
            "ProxyConfig": {"protocol": "http", "local_connect_timeout_ms": 1000},
            "Protocol": "http", "Mode": "transparent", "MutualTLSMode": "",
            "TransparentProxy": {"OutboundListenerPort": 15001},
            "MeshGateway": {"Mode": "remote"},
            "Expose": {"Checks": true, "Paths": [{"ListenerPort": 21500, "Path": "/m", "LocalPathPort": 8080}]},
        });
        merge_central_config(&mut s, &resolved);
        let config: Value = serde_json::from_str(&s.proxy.config).unwrap();
        assert_eq!(config, json!({"protocol": "tcp", "local_connect_timeout_ms": 1000}));
        assert_eq!(s.proxy.mesh_gateway.mode, "local");
        assert_eq!(s.proxy.mode, "transparent");
        assert_eq!(s.proxy.transparent_proxy.outbound_listener_port, 15001);
        assert!(s.proxy.expose.checks);
        assert_eq!(s.proxy.expose.paths[0].path, "/m");
        let plain = NodeService { service: "web".into(), ..Default::default() };
        assert_eq!(config_target(&plain), None, "typical services are returned as registered");
    }
}
