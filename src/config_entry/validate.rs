//! Per-kind normalization and validation of one entry (Consul's
//! `Normalize` and `Validate`), and the graph check Consul makes when an
//! entry is written: routers and splitters need an L7 protocol.

use super::*;
use serde_json::{Map, Value};

fn s<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(m: &'a Map<String, Value>, k: &str) -> Vec<&'a Map<String, Value>> {
    m.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

fn obj<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a Map<String, Value>> {
    m.get(k).and_then(Value::as_object)
}

fn lower(m: &mut Map<String, Value>, k: &str) {
    if let Some(Value::String(v)) = m.get_mut(k) {
        *v = v.to_lowercase();
    }
}

fn meta(fields: &Map<String, Value>) -> Result<(), String> {
    let Some(m) = obj(fields, "Meta") else { return Ok(()) };
    if m.len() > 64 {
        return Err("Meta exceeds maximum element count 64".into());
    }
    for (k, v) in m {
        if k.len() > 128 {
            return Err(format!("Meta key {k:?} exceeds maximum length 128"));
        }
        if v.as_str().unwrap_or("").len() > 512 {
            return Err(format!("Meta value for key {k:?} exceeds maximum length 512"));
        }
    }
    Ok(())
}

fn proxy_mode(fields: &Map<String, Value>) -> Result<(), String> {
    match s(fields, "Mode") {
        "" | "direct" | "transparent" => {}
        other => return Err(format!("invalid proxy mode: {other}")),
    }
    match s(fields, "MutualTLSMode") {
        "" | "strict" | "permissive" => {}
        other => return Err(format!("invalid mutual tls mode: {other}")),
    }
    if let Some(mg) = obj(fields, "MeshGateway") {
        match s(mg, "Mode") {
            "" | "none" | "local" | "remote" => {}
            other => return Err(format!("invalid mesh gateway mode: {other:?}")),
        }
    }
    Ok(())
}

/// Normalizes then validates one entry.
pub(super) fn entry(kind: &str, name: &mut String, f: &mut Map<String, Value>) -> Result<(), String> {
    match kind {
        PROXY_DEFAULTS => {
            if !name.is_empty() && name != PROXY_DEFAULTS_NAME {
                return Err(format!("invalid name ({name:?}), only {PROXY_DEFAULTS_NAME:?} is supported"));
            }
            *name = PROXY_DEFAULTS_NAME.into();
            proxy_mode(f)?;
        }
        MESH => {
            if !name.is_empty() && name != MESH_NAME {
                return Err(format!("invalid name ({name:?}), only {MESH_NAME:?} is supported"));
            }
            *name = MESH_NAME.into();
            if let Some(tls) = obj(f, "TLS") {
                for dir in ["Incoming", "Outgoing"] {
                    if let Some(d) = obj(tls, dir) {
                        for k in ["TLSMinVersion", "TLSMaxVersion"] {
                            match s(d, k) {
                                "" | "TLS_AUTO" | "TLSv1_0" | "TLSv1_1" | "TLSv1_2" | "TLSv1_3" => {}
                                other => return Err(format!("{dir}.{k}: unknown TLS version {other:?}")),
                            }
                        }
                    }
                }
            }
        }
        EXPORTED_SERVICES => {
            if name != "default" {
                return Err(r#"exported-services Name must be "default""#.into());
            }
            for (i, svc) in list(f, "Services").into_iter().enumerate() {
                if s(svc, "Name").is_empty() {
                    return Err(format!("Services[{i}]: service name cannot be empty"));
                }
                if list(svc, "Consumers").is_empty() {
                    return Err(format!("Services[{i}]: must have at least one consumer"));
                }
            }
        }
        _ => {
            if name.is_empty() {
                return Err("Name is required".into());
            }
        }
    }
    meta(f)?;
    match kind {
        SERVICE_DEFAULTS => {
            if name == "*" {
                return Err("service-defaults name must be the name of a service, and not a wildcard".into());
            }
            lower(f, "Protocol");
            proxy_mode(f)?;
            match s(f, "BalanceInboundConnections") {
                "" | "exact_balance" => {}
                other => return Err(format!("invalid value for balance_inbound_connections: {other}")),
            }
            if f.contains_key("UpstreamConfig") && f.contains_key("Destination") {
                return Err(
                    "UpstreamConfig and Destination are mutually exclusive for service defaults".into()
                );
            }
            if let Some(d) = obj(f, "Destination") {
                if list_len(d, "Addresses") == 0 {
                    return Err("Destination must contain at least one valid address".into());
                }
                let port = d.get("Port").and_then(Value::as_i64).unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    return Err(format!("Invalid Port number {port}"));
                }
            }
        }
        SERVICE_ROUTER => router(f)?,
        SERVICE_SPLITTER => splitter(name, f)?,
        SERVICE_RESOLVER => resolver(f)?,
        INGRESS_GATEWAY => ingress(f)?,
        TERMINATING_GATEWAY => {
            let mut seen = Vec::new();
            for svc in list(f, "Services") {
                let n = s(svc, "Name");
                if n.is_empty() {
                    return Err("Service name cannot be blank.".into());
                }
                if seen.contains(&n) {
                    return Err(format!("Service {n:?} was specified more than once"));
                }
                let (ca, cert, key) = (s(svc, "CAFile"), s(svc, "CertFile"), s(svc, "KeyFile"));
                if (!cert.is_empty() || !key.is_empty()) && (cert.is_empty() || key.is_empty()) {
                    return Err(format!(
                        "Service {n:?} must have both a cert and key file specified, or neither"
                    ));
                }
                if ca.is_empty() && !cert.is_empty() {
                    return Err(format!("Service {n:?} must have a CAFile specified for TLS origination"));
                }
                seen.push(n);
            }
        }
        SERVICE_INTENTIONS => intentions::normalize_and_validate(name, f)?,
        _ => {}
    }
    Ok(())
}

fn list_len(m: &Map<String, Value>, k: &str) -> usize {
    m.get(k).and_then(Value::as_array).map_or(0, Vec::len)
}

fn router(f: &mut Map<String, Value>) -> Result<(), String> {
    for (i, route) in list(f, "Routes").into_iter().enumerate() {
        let http = obj(route, "Match").and_then(|m| obj(m, "HTTP"));
        let mut path_kind = false;
        if let Some(h) = http {
            let set = ["PathExact", "PathPrefix", "PathRegex"].iter().filter(|k| !s(h, k).is_empty()).count();
            if set > 1 {
                return Err(format!(
                    "Route[{i}] should only contain at most one of PathExact, PathPrefix, or PathRegex"
                ));
            }
            for k in ["PathExact", "PathPrefix"] {
                let p = s(h, k);
                if !p.is_empty() && !p.starts_with('/') {
                    return Err(format!("Route[{i}] {k} doesn't start with '/': {p:?}"));
                }
            }
            path_kind = !s(h, "PathExact").is_empty() || !s(h, "PathPrefix").is_empty();
            for (j, hdr) in list(h, "Header").into_iter().enumerate() {
                if s(hdr, "Name").is_empty() {
                    return Err(format!("Route[{i}] Header[{j}] missing required Name field"));
                }
            }
            for (j, q) in list(h, "QueryParam").into_iter().enumerate() {
                if s(q, "Name").is_empty() {
                    return Err(format!("Route[{i}] QueryParam[{j}] missing required Name field"));
                }
            }
        }
        if let Some(d) = obj(route, "Destination") {
            if !s(d, "PrefixRewrite").is_empty() && !path_kind {
                return Err(format!(
                    "Route[{i}] cannot make use of PrefixRewrite without configuring either PathExact or PathPrefix"
                ));
            }
            if d.get("NumRetries").and_then(Value::as_i64).unwrap_or(0) < 0 {
                return Err(format!("Route[{i}] NumRetries must be >= 0"));
            }
        }
    }
    Ok(())
}

/// A weight in hundredths of a percent, as Consul scales it.
fn scaled(w: f64) -> i64 {
    (w * 100.0).round() as i64
}

fn splitter(name: &str, f: &mut Map<String, Value>) -> Result<(), String> {
    let splits = list(f, "Splits");
    if splits.is_empty() {
        return Err("no splits configured".into());
    }
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut sum = 0;
    for sp in &splits {
        let svc = match s(sp, "Service") {
            "" => name.to_string(),
            other => other.to_string(),
        };
        let key = (svc, s(sp, "ServiceSubset").to_string());
        if seen.contains(&key) {
            return Err(format!(
                "split destination occurs more than once: service={:?}, subset={:?}, namespace=\"\", partition=\"\"",
                key.0, key.1
            ));
        }
        seen.push(key);
        sum += scaled(sp.get("Weight").and_then(Value::as_f64).unwrap_or(0.0));
    }
    if sum != 10_000 {
        return Err(format!("the sum of all split weights must be 100, not {:.6}", sum as f64 / 100.0));
    }
    // Normalized weights: the smallest step is 0.01%.
    if let Some(Value::Array(items)) = f.get_mut("Splits") {
        for it in items.iter_mut().filter_map(Value::as_object_mut) {
            let w = it.get("Weight").and_then(Value::as_f64).unwrap_or(0.0);
            // Whole percentages stay integers, as Go prints a float32 90.
            let w = scaled(w);
            let v = if w % 100 == 0 { Value::from(w / 100) } else { Value::from(w as f64 / 100.0) };
            it.insert("Weight".into(), v);
        }
    }
    Ok(())
}

fn resolver(f: &mut Map<String, Value>) -> Result<(), String> {
    let subsets: Vec<String> = obj(f, "Subsets").map(|m| m.keys().cloned().collect()).unwrap_or_default();
    for n in &subsets {
        if n.is_empty() {
            return Err("Subset defined with empty name".into());
        }
        let valid = n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !n.starts_with('-')
            && !n.ends_with('-')
            && n.len() <= 63;
        if !valid {
            return Err(format!("Subset {n:?} is invalid"));
        }
    }
    let default_subset = s(f, "DefaultSubset");
    if !default_subset.is_empty() && !subsets.iter().any(|n| n == default_subset) {
        return Err(format!("DefaultSubset {default_subset:?} is not a valid subset"));
    }
    if let Some(r) = obj(f, "Redirect") {
        if !subsets.is_empty() {
            return Err("Redirect and Subsets cannot both be set".into());
        }
        if obj(f, "Failover").is_some_and(|m| !m.is_empty()) {
            return Err("Redirect and Failover cannot both be set".into());
        }
        if ["Service", "ServiceSubset", "Datacenter", "Peer", "SamenessGroup"]
            .iter()
            .all(|k| s(r, k).is_empty())
        {
            return Err("Redirect is empty".into());
        }
        if !s(r, "Peer").is_empty() || !s(r, "SamenessGroup").is_empty() {
            return Err("Redirect.Peer and Redirect.SamenessGroup need cluster peering, which this agent does not support".into());
        }
    }
    if let Some(fo) = obj(f, "Failover") {
        for (subset, target) in fo {
            if subset != "*" && !subsets.iter().any(|n| n == subset) {
                return Err(format!("Bad Failover[{subset:?}]: not a valid subset"));
            }
            let t = target.as_object().cloned().unwrap_or_default();
            let has = ["Service", "ServiceSubset", "SamenessGroup"].iter().any(|k| !s(&t, k).is_empty())
                || list_len(&t, "Datacenters") > 0
                || list_len(&t, "Targets") > 0;
            if !has {
                return Err(format!(
                    "Bad Failover[{subset:?}]: one of Service, ServiceSubset, Namespace, Targets, SamenessGroup, or Datacenters is required"
                ));
            }
        }
    }
    if let Some(lb) = obj(f, "LoadBalancer") {
        match s(lb, "Policy") {
            "" | "random" | "round_robin" | "least_request" | "ring_hash" | "maglev" => {}
            other => return Err(format!("Bad LoadBalancer policy: {other:?} is not supported")),
        }
    }
    Ok(())
}

fn ingress(f: &mut Map<String, Value>) -> Result<(), String> {
    let mut ports = Vec::new();
    if let Some(Value::Array(listeners)) = f.get_mut("Listeners") {
        for l in listeners.iter_mut().filter_map(Value::as_object_mut) {
            if s(l, "Protocol").is_empty() {
                l.insert("Protocol".into(), Value::String("tcp".into()));
            }
            lower(l, "Protocol");
        }
    }
    for l in list(f, "Listeners") {
        let port = l.get("Port").and_then(Value::as_i64).unwrap_or(0);
        if ports.contains(&port) {
            return Err(format!("port {port} declared on two listeners"));
        }
        ports.push(port);
        let proto = s(l, "Protocol");
        if !["tcp", "http", "http2", "grpc"].contains(&proto) {
            return Err(format!(
                "protocol must be 'tcp', 'http', 'http2', or 'grpc'. '{proto}' is an unsupported protocol"
            ));
        }
        let services = list(l, "Services");
        if services.is_empty() {
            return Err(format!("No service declared for listener with port {port}"));
        }
        if proto == "tcp" && services.len() > 1 {
            return Err(format!(
                "Multiple services per listener are only supported for L7 protocols, 'http', 'grpc' and 'http2' (listener on port {port})"
            ));
        }
        for svc in services {
            let n = s(svc, "Name");
            if n.is_empty() {
                return Err(format!("Service name cannot be blank (listener on port {port})"));
            }
            if n == "*" && proto == "tcp" {
                return Err(format!(
                    "Wildcard service name is only valid for L7 protocols (listener on port {port})"
                ));
            }
            if list_len(svc, "Hosts") > 0 && proto == "tcp" {
                return Err(format!("Associating hosts to a service is not supported for the tcp protocol (listener on port {port})"));
            }
        }
    }
    Ok(())
}

/// An L7 protocol: the only ones that allow routing and splitting.
fn advanced(protocol: &str) -> bool {
    matches!(protocol, "http" | "http2" | "grpc")
}

/// The protocol of a service for the discovery chain: its
/// `service-defaults`, else `proxy-defaults`' `Config.protocol`, else tcp.
pub fn protocol_of(service: &str, lookup: &dyn Fn(&str, &str) -> Option<Map<String, Value>>) -> String {
    if let Some(sd) = lookup(SERVICE_DEFAULTS, service) {
        let p = s(&sd, "Protocol");
        if !p.is_empty() {
            return p.to_lowercase();
        }
    }
    if let Some(pd) = lookup(PROXY_DEFAULTS, PROXY_DEFAULTS_NAME) {
        if let Some(p) = obj(&pd, "Config").and_then(|c| c.get("protocol").or_else(|| c.get("Protocol"))) {
            if let Some(p) = p.as_str().filter(|p| !p.is_empty()) {
                return p.to_lowercase();
            }
        }
    }
    "tcp".into()
}

/// Consul's graph error (its HTTP answer is a 500 with this text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError(pub String);

/// Whether the chain of `service` uses routing or splitting: a router with
/// routes, or a splitter that does more than send everything to itself.
fn uses_advanced_routing(service: &str, lookup: &dyn Fn(&str, &str) -> Option<Map<String, Value>>) -> bool {
    if let Some(r) = lookup(SERVICE_ROUTER, service) {
        if list_len(&r, "Routes") > 0 {
            return true;
        }
    }
    if let Some(sp) = lookup(SERVICE_SPLITTER, service) {
        let splits = list(&sp, "Splits");
        let trivial = splits.len() == 1 && {
            let only = splits[0];
            (s(only, "Service").is_empty() || s(only, "Service") == service)
                && s(only, "ServiceSubset").is_empty()
        };
        if !trivial {
            return true;
        }
    }
    false
}

/// Checks every router and splitter chain against the entries as they
/// would be after a write (`lookup` sees the proposed state).
pub fn validate_graph(
    chains: &[String],
    lookup: &dyn Fn(&str, &str) -> Option<Map<String, Value>>,
) -> Result<(), GraphError> {
    for service in chains {
        let protocol = protocol_of(service, lookup);
        if !advanced(&protocol) && uses_advanced_routing(service, lookup) {
            return Err(GraphError(format!(
                "discovery chain {service:?} uses a protocol {protocol:?} that does not permit advanced routing or splitting behavior"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(kind: &str, name: &str, v: Value) -> Result<(String, Value), String> {
        let mut n = name.to_string();
        let mut m = v.as_object().unwrap().clone();
        entry(kind, &mut n, &mut m)?;
        Ok((n, Value::Object(m)))
    }

    #[test]
    fn names_and_kind_rules() {
        assert_eq!(check(PROXY_DEFAULTS, "", json!({})).unwrap().0, "global");
        assert_eq!(
            check(PROXY_DEFAULTS, "web", json!({})).unwrap_err(),
            r#"invalid name ("web"), only "global" is supported"#
        );
        assert_eq!(check(SERVICE_DEFAULTS, "", json!({})).unwrap_err(), "Name is required");
        assert_eq!(
            check(SERVICE_DEFAULTS, "web", json!({"Protocol": "HTTP"})).unwrap().1,
            json!({"Protocol": "http"})
        );
        assert_eq!(
            check(EXPORTED_SERVICES, "x", json!({})).unwrap_err(),
            r#"exported-services Name must be "default""#
        );
        assert_eq!(check(MESH, "", json!({})).unwrap().0, "mesh");
    }

    #[test]
    fn splitter_weights_sum_to_100() {
        let e = check(
            SERVICE_SPLITTER,
            "web",
            json!({"Splits": [{"Weight": 90}, {"Weight": 5, "Service": "b"}]}),
        );
        assert_eq!(e.unwrap_err(), "the sum of all split weights must be 100, not 95.000000");
        assert!(check(SERVICE_SPLITTER, "web", json!({"Splits": [{"Weight": 50}, {"Weight": 50}]}))
            .unwrap_err()
            .starts_with("split destination occurs more than once"));
        check(
            SERVICE_SPLITTER,
            "web",
            json!({"Splits": [{"Weight": 33.333}, {"Weight": 66.667, "Service": "b"}]}),
        )
        .unwrap();
    }

    #[test]
    fn graph_needs_l7_protocol() {
        let entries = std::cell::RefCell::new(std::collections::BTreeMap::<(String, String), Value>::new());
        let lookup = |k: &str, n: &str| {
            entries.borrow().get(&(k.to_string(), n.to_string())).and_then(|v| v.as_object().cloned())
        };
        entries.borrow_mut().insert(
            (SERVICE_SPLITTER.into(), "web".into()),
            json!({"Splits": [{"Weight": 50}, {"Weight": 50, "Service": "b"}]}),
        );
        let err = validate_graph(&["web".into()], &lookup).unwrap_err();
        assert_eq!(
            err.0,
            r#"discovery chain "web" uses a protocol "tcp" that does not permit advanced routing or splitting behavior"#
        );
        entries
            .borrow_mut()
            .insert((PROXY_DEFAULTS.into(), "global".into()), json!({"Config": {"protocol": "http"}}));
        validate_graph(&["web".into()], &lookup).unwrap();
        entries.borrow_mut().insert((SERVICE_DEFAULTS.into(), "web".into()), json!({"Protocol": "tcp"}));
        assert!(validate_graph(&["web".into()], &lookup).is_err());
    }
}
