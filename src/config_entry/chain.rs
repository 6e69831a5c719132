//! The compiled discovery chain (`/v1/discovery-chain/:service`) for the
//! simple cases: the default chain (one resolver), resolver redirects
//! (to another service, subset or datacenter), default subsets, failover
//! target lists, splitters and routers over resolvers. Nested splitters and
//! cross-chain protocol checks are not compiled (see docs).

use super::validate::protocol_of;
use super::*;
use serde_json::{json, Map, Value};

type Lookup<'a> = &'a dyn Fn(&str, &str) -> Option<Map<String, Value>>;

/// `POST` overrides (`OverrideProtocol`, `OverrideConnectTimeout`,
/// `OverrideMeshGateway.Mode`).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub protocol: String,
    pub connect_timeout: String,
    pub mesh_gateway_mode: String,
}

/// Where the chain is compiled.
pub struct Context<'a> {
    pub datacenter: &'a str,
    /// `<cluster id>.consul`: the SPIFFE trust domain that names targets'
    /// SNI. This agent runs no Connect CA, so the caller supplies a stable
    /// stand-in.
    pub trust_domain: &'a str,
    pub overrides: &'a Overrides,
}

fn s<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

struct Compiler<'a> {
    ctx: &'a Context<'a>,
    lookup: Lookup<'a>,
    nodes: Map<String, Value>,
    targets: Map<String, Value>,
}

fn target_id(service: &str, subset: &str, dc: &str) -> String {
    if subset.is_empty() {
        format!("{service}.default.default.{dc}")
    } else {
        format!("{subset}.{service}.default.default.{dc}")
    }
}

impl Compiler<'_> {
    fn connect_timeout(&self, resolver: Option<&Map<String, Value>>) -> String {
        if !self.ctx.overrides.connect_timeout.is_empty() {
            return self.ctx.overrides.connect_timeout.clone();
        }
        match resolver.map(|r| s(r, "ConnectTimeout")) {
            Some(t) if !t.is_empty() && t != "0s" => t.to_string(),
            _ => "5s".to_string(),
        }
    }

    fn add_target(&mut self, service: &str, subset: &str, dc: &str, timeout: &str) -> String {
        let id = target_id(service, subset, dc);
        let resolver = (self.lookup)(SERVICE_RESOLVER, service);
        let subset_def = resolver
            .as_ref()
            .and_then(|r| r.get("Subsets"))
            .and_then(|m| m.get(subset))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut mesh_gateway = Map::new();
        if !self.ctx.overrides.mesh_gateway_mode.is_empty() {
            mesh_gateway.insert("Mode".into(), Value::String(self.ctx.overrides.mesh_gateway_mode.clone()));
        }
        let sni = if subset.is_empty() {
            format!("{service}.default.{dc}.internal.{}", self.ctx.trust_domain)
        } else {
            format!("{subset}.{service}.default.{dc}.internal.{}", self.ctx.trust_domain)
        };
        let mut t = Map::new();
        t.insert("ID".into(), json!(id));
        t.insert("Service".into(), json!(service));
        if !subset.is_empty() {
            t.insert("ServiceSubset".into(), json!(subset));
        }
        t.insert("Namespace".into(), json!("default"));
        t.insert("Partition".into(), json!("default"));
        t.insert("Datacenter".into(), json!(dc));
        t.insert("MeshGateway".into(), Value::Object(mesh_gateway));
        t.insert("Subset".into(), Value::Object(subset_def));
        t.insert("ConnectTimeout".into(), json!(timeout));
        t.insert("SNI".into(), json!(sni));
        t.insert("Name".into(), json!(sni));
        self.targets.insert(id.clone(), Value::Object(t));
        id
    }

    /// The resolver node for `service`/`subset`, following redirects.
    fn resolver_node(&mut self, service: &str, subset: &str, hops: usize) -> Result<String, String> {
        if hops > 8 {
            return Err(format!("detected circular resolver redirect for {service:?}"));
        }
        let resolver = (self.lookup)(SERVICE_RESOLVER, service);
        if let Some(r) = resolver.as_ref().and_then(|r| r.get("Redirect")).and_then(Value::as_object) {
            let to_service = match s(r, "Service") {
                "" => service,
                other => other,
            };
            let to_dc = s(r, "Datacenter");
            if to_service != service {
                return self.resolver_node(to_service, s(r, "ServiceSubset"), hops + 1);
            }
            let dc = if to_dc.is_empty() { self.ctx.datacenter } else { to_dc };
            return Ok(self.plain_resolver(service, s(r, "ServiceSubset"), dc, resolver.as_ref()));
        }
        let subset = match (subset, resolver.as_ref()) {
            ("", Some(r)) => s(r, "DefaultSubset").to_string(),
            (given, _) => given.to_string(),
        };
        Ok(self.plain_resolver(service, &subset, self.ctx.datacenter, resolver.as_ref()))
    }

    fn plain_resolver(
        &mut self,
        service: &str,
        subset: &str,
        dc: &str,
        r: Option<&Map<String, Value>>,
    ) -> String {
        let timeout = self.connect_timeout(r);
        let target = self.add_target(service, subset, dc, &timeout);
        let mut resolver = Map::new();
        resolver.insert("ConnectTimeout".into(), json!(timeout));
        if r.is_none() {
            resolver.insert("Default".into(), json!(true));
        }
        resolver.insert("Target".into(), json!(target));
        let failover = r
            .and_then(|r| r.get("Failover"))
            .and_then(Value::as_object)
            .and_then(|fo| fo.get(subset).or_else(|| fo.get("*")).and_then(Value::as_object).cloned());
        if let Some(fo) = failover {
            let mut ids = Vec::new();
            let fo_service = match s(&fo, "Service") {
                "" => service,
                other => other,
            };
            let fo_subset = s(&fo, "ServiceSubset");
            let dcs: Vec<String> = fo
                .get("Datacenters")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            if dcs.is_empty() {
                ids.push(self.add_target(fo_service, fo_subset, dc, &timeout));
            }
            for d in &dcs {
                ids.push(self.add_target(fo_service, fo_subset, d, &timeout));
            }
            for t in
                fo.get("Targets").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
            {
                let svc = match s(t, "Service") {
                    "" => service,
                    other => other,
                };
                let d = match s(t, "Datacenter") {
                    "" => dc,
                    other => other,
                };
                ids.push(self.add_target(svc, s(t, "ServiceSubset"), d, &timeout));
            }
            resolver.insert("Failover".into(), json!({ "Targets": ids }));
        }
        let key = format!("resolver:{target}");
        self.nodes.insert(key.clone(), json!({"Type": "resolver", "Name": target, "Resolver": resolver}));
        key
    }

    /// The next node for traffic to `service`/`subset` from a router: its
    /// splitter when it has one (and no subset is asked), else its resolver.
    fn next_node(&mut self, service: &str, subset: &str, l7: bool) -> Result<String, String> {
        if l7 && subset.is_empty() {
            if let Some(sp) = (self.lookup)(SERVICE_SPLITTER, service) {
                return self.splitter_node(service, &sp);
            }
        }
        self.resolver_node(service, subset, 0)
    }

    fn splitter_node(&mut self, name: &str, sp: &Map<String, Value>) -> Result<String, String> {
        let key = format!("splitter:{name}");
        if self.nodes.contains_key(&key) {
            return Ok(key);
        }
        let mut splits = Vec::new();
        for split in
            sp.get("Splits").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
        {
            let svc = match s(split, "Service") {
                "" => name,
                other => other,
            };
            let next = self.resolver_node(svc, s(split, "ServiceSubset"), 0)?;
            let mut out = Map::new();
            out.insert("Weight".into(), split.get("Weight").cloned().unwrap_or(json!(0)));
            out.insert("NextNode".into(), json!(next));
            for k in ["RequestHeaders", "ResponseHeaders"] {
                if let Some(v) = split.get(k) {
                    out.insert(k.into(), v.clone());
                }
            }
            splits.push(Value::Object(out));
        }
        self.nodes.insert(key.clone(), json!({"Type": "splitter", "Name": name, "Splits": splits}));
        Ok(key)
    }
}

/// Compiles the chain of `service` as Consul's `/v1/discovery-chain`
/// shows it (the value of its `Chain` key).
pub fn compile(service: &str, ctx: &Context<'_>, lookup: Lookup<'_>) -> Result<Value, String> {
    let base_protocol = protocol_of(service, lookup);
    let protocol = if ctx.overrides.protocol.is_empty() {
        base_protocol.clone()
    } else {
        ctx.overrides.protocol.to_lowercase()
    };
    let l7 = |p: &str| matches!(p, "http" | "http2" | "grpc");
    let advanced = l7(&base_protocol) && l7(&protocol);
    let mut c = Compiler { ctx, lookup, nodes: Map::new(), targets: Map::new() };
    let start = match (advanced, lookup(SERVICE_ROUTER, service)) {
        (true, Some(router)) => {
            let mut routes = Vec::new();
            let defined = router.get("Routes").and_then(Value::as_array).cloned().unwrap_or_default();
            let catch_all =
                json!({"Match": {"HTTP": {"PathPrefix": "/"}}, "Destination": {"Service": service}});
            for def in defined.iter().chain(std::iter::once(&catch_all)) {
                let dest = def.get("Destination").and_then(Value::as_object).cloned().unwrap_or_default();
                let svc = match s(&dest, "Service") {
                    "" => service,
                    other => other,
                };
                let next = c.next_node(svc, s(&dest, "ServiceSubset"), true)?;
                routes.push(json!({"Definition": def, "NextNode": next}));
            }
            let key = format!("router:{service}");
            c.nodes.insert(key.clone(), json!({"Type": "router", "Name": service, "Routes": routes}));
            key
        }
        _ => c.next_node(service, "", advanced)?,
    };
    let mut chain = Map::new();
    chain.insert("ServiceName".into(), json!(service));
    chain.insert("Namespace".into(), json!("default"));
    chain.insert("Partition".into(), json!("default"));
    chain.insert("Datacenter".into(), json!(ctx.datacenter));
    let o = ctx.overrides;
    if !o.protocol.is_empty() || !o.connect_timeout.is_empty() || !o.mesh_gateway_mode.is_empty() {
        chain.insert("CustomizationHash".into(), json!(customization_hash(o)));
    }
    chain.insert("Protocol".into(), json!(protocol));
    chain.insert("StartNode".into(), json!(start));
    chain.insert("Nodes".into(), Value::Object(c.nodes));
    chain.insert("Targets".into(), Value::Object(c.targets));
    Ok(Value::Object(chain))
}

/// A short stable tag of the overrides (Consul: a hash naming the
/// customized chain; only its stability matters to clients).
fn customization_hash(o: &Overrides) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in format!("{}|{}|{}", o.protocol, o.connect_timeout, o.mesh_gateway_mode).bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn compile_with(entries: &[(&str, &str, Value)], service: &str, o: &Overrides) -> Value {
        let map: BTreeMap<(String, String), Value> =
            entries.iter().map(|(k, n, v)| ((k.to_string(), n.to_string()), v.clone())).collect();
        let lookup =
            |k: &str, n: &str| map.get(&(k.to_string(), n.to_string())).and_then(|v| v.as_object().cloned());
        let ctx = Context { datacenter: "dc1", trust_domain: "td.consul", overrides: o };
        compile(service, &ctx, &lookup).unwrap()
    }

    #[test]
    fn default_chain() {
        let c = compile_with(&[], "web", &Overrides::default());
        assert_eq!(c["StartNode"], "resolver:web.default.default.dc1");
        assert_eq!(c["Protocol"], "tcp");
        let node = &c["Nodes"]["resolver:web.default.default.dc1"];
        assert_eq!(
            node["Resolver"],
            json!({"ConnectTimeout": "5s", "Default": true, "Target": "web.default.default.dc1"})
        );
        assert_eq!(c["Targets"]["web.default.default.dc1"]["SNI"], "web.default.dc1.internal.td.consul");
    }

    #[test]
    fn redirect_and_split() {
        let c = compile_with(
            &[(SERVICE_RESOLVER, "web", json!({"Redirect": {"Datacenter": "dc2"}}))],
            "web",
            &Overrides { connect_timeout: "7s".into(), ..Default::default() },
        );
        assert_eq!(c["StartNode"], "resolver:web.default.default.dc2");
        assert_eq!(c["Nodes"]["resolver:web.default.default.dc2"]["Resolver"]["ConnectTimeout"], "7s");
        assert!(c["CustomizationHash"].is_string());

        let entries = [
            (SERVICE_DEFAULTS, "web", json!({"Protocol": "http"})),
            (SERVICE_RESOLVER, "web", json!({"Subsets": {"v1": {"Filter": "a"}, "v2": {"Filter": "b"}}})),
            (
                SERVICE_SPLITTER,
                "web",
                json!({"Splits": [{"Weight": 90, "ServiceSubset": "v1"}, {"Weight": 10, "ServiceSubset": "v2"}]}),
            ),
        ];
        let c = compile_with(&entries, "web", &Overrides::default());
        assert_eq!(c["StartNode"], "splitter:web");
        assert_eq!(
            c["Nodes"]["splitter:web"]["Splits"][1]["NextNode"],
            "resolver:v2.web.default.default.dc1"
        );
        assert_eq!(c["Targets"]["v1.web.default.default.dc1"]["Subset"], json!({"Filter": "a"}));
        // Overriding to tcp drops the splitter.
        let c = compile_with(&entries, "web", &Overrides { protocol: "tcp".into(), ..Default::default() });
        assert_eq!(c["StartNode"], "resolver:web.default.default.dc1");
    }
}
