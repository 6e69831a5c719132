//! The hot catalog and health shapes written straight from the records
//! (`ServiceNode`, `NodeService`, `HealthCheck` and a health entry), as
//! `Serialize` impls over references: same keys, same order, same values
//! as the `serde_json::Value` builders in `views`, without building the
//! tree. At 5,000 nodes a `/v1/health/service` answer of 250 instances
//! spent a third of its CPU building that tree and most of the rest
//! freeing it (issue 23). The rare mesh parts (a proxy that is not the
//! empty one, a locality) still go through `mesh_views`, whose output is
//! embedded unchanged.
//! The tests compare every view with its `views` twin, byte for byte.

use super::mesh_views::{self, Flavor};
use super::views::NodeJson;
use crate::catalog::types::{CheckDefinition, HealthCheck, Node, NodeService, ServiceAddress, Weights};
use crate::rpc::ServiceHealth;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// What nearly every service carries: no proxy settings. Its JSON is
/// computed once by `mesh_views` and reused, so it cannot drift.
static EMPTY_PROXY: LazyLock<(crate::catalog::types::ServiceProxy, Value)> = LazyLock::new(|| {
    let p = crate::catalog::types::ServiceProxy::default();
    let v = mesh_views::proxy(&p, Flavor::Catalog);
    (p, v)
});

/// A service's `Proxy` in catalog answers.
struct CatalogProxy<'a>(&'a NodeService);

impl Serialize for CatalogProxy<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (empty, empty_json) = &*EMPTY_PROXY;
        if self.0.proxy == *empty {
            empty_json.serialize(ser)
        } else {
            mesh_views::proxy(&self.0.proxy, Flavor::Catalog).serialize(ser)
        }
    }
}

/// A service's `Connect` block (`{}` unless Connect-native).
struct Connect(bool);

impl Serialize for Connect {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        if self.0 {
            m.serialize_entry("Native", &true)?;
        }
        m.end()
    }
}

/// `{"Passing": n, "Warning": n}`.
struct WeightsJson(Weights);

impl Serialize for WeightsJson {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(2))?;
        m.serialize_entry("Passing", &self.0.passing)?;
        m.serialize_entry("Warning", &self.0.warning)?;
        m.end()
    }
}

/// A service's tagged addresses: Consul's `ServiceAddress` has no JSON
/// tags, so each reads `Address` and `Port`.
struct TaggedJson<'a>(&'a BTreeMap<String, ServiceAddress>);

impl Serialize for TaggedJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        struct One<'a>(&'a ServiceAddress);
        impl Serialize for One<'_> {
            fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                let mut m = ser.serialize_map(Some(2))?;
                m.serialize_entry("Address", &self.0.address)?;
                m.serialize_entry("Port", &self.0.port)?;
                m.end()
            }
        }
        let mut m = ser.serialize_map(Some(self.0.len()))?;
        for (k, a) in self.0 {
            m.serialize_entry(k, &One(a))?;
        }
        m.end()
    }
}

/// `/v1/catalog/service/<name>` entries (Consul's `ServiceNode`): the
/// twin of `views::service_node`.
pub struct ServiceNodeJson<'a>(pub &'a Node, pub &'a NodeService);

impl Serialize for ServiceNodeJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let (n, s) = (self.0, self.1);
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("ID", &n.id)?;
        m.serialize_entry("Node", &n.node)?;
        m.serialize_entry("Address", &n.address)?;
        m.serialize_entry("Datacenter", &n.datacenter)?;
        m.serialize_entry("TaggedAddresses", &n.tagged_addresses)?;
        m.serialize_entry("NodeMeta", &n.meta)?;
        m.serialize_entry("ServiceKind", &s.kind)?;
        m.serialize_entry("ServiceID", &s.id)?;
        m.serialize_entry("ServiceName", &s.service)?;
        m.serialize_entry("ServiceTags", &s.tags)?;
        m.serialize_entry("ServiceAddress", &s.address)?;
        if !s.tagged_addresses.is_empty() {
            m.serialize_entry("ServiceTaggedAddresses", &TaggedJson(&s.tagged_addresses))?;
        }
        m.serialize_entry("ServiceWeights", &WeightsJson(s.weights))?;
        m.serialize_entry("ServiceMeta", &s.meta)?;
        m.serialize_entry("ServicePort", &s.port)?;
        if !s.socket_path.is_empty() {
            m.serialize_entry("ServiceSocketPath", &s.socket_path)?;
        }
        m.serialize_entry("ServiceEnableTagOverride", &s.enable_tag_override)?;
        m.serialize_entry("ServiceProxy", &CatalogProxy(s))?;
        m.serialize_entry("ServiceConnect", &Connect(s.connect.native))?;
        if let Some(l) = &s.locality {
            m.serialize_entry("ServiceLocality", &mesh_views::locality(l))?;
        }
        m.serialize_entry("CreateIndex", &s.create_index)?;
        m.serialize_entry("ModifyIndex", &s.modify_index)?;
        m.end()
    }
}

/// A service as the catalog's node views and the health view show it
/// (Consul's `NodeService`): the twin of `views::node_service`.
pub struct NodeServiceJson<'a>(pub &'a NodeService);

impl Serialize for NodeServiceJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let s = self.0;
        let mut m = ser.serialize_map(None)?;
        if !s.kind.is_empty() {
            m.serialize_entry("Kind", &s.kind)?;
        }
        m.serialize_entry("ID", &s.id)?;
        m.serialize_entry("Service", &s.service)?;
        m.serialize_entry("Tags", &s.tags)?;
        m.serialize_entry("Address", &s.address)?;
        if !s.tagged_addresses.is_empty() {
            m.serialize_entry("TaggedAddresses", &TaggedJson(&s.tagged_addresses))?;
        }
        m.serialize_entry("Meta", &s.meta)?;
        m.serialize_entry("Port", &s.port)?;
        if !s.socket_path.is_empty() {
            m.serialize_entry("SocketPath", &s.socket_path)?;
        }
        m.serialize_entry("Weights", &WeightsJson(s.weights))?;
        m.serialize_entry("EnableTagOverride", &s.enable_tag_override)?;
        m.serialize_entry("Proxy", &CatalogProxy(s))?;
        m.serialize_entry("Connect", &Connect(s.connect.native))?;
        if let Some(l) = &s.locality {
            m.serialize_entry("Locality", &mesh_views::locality(l))?;
        }
        m.serialize_entry("CreateIndex", &s.create_index)?;
        m.serialize_entry("ModifyIndex", &s.modify_index)?;
        m.end()
    }
}

/// A check's `Interval` or `Timeout`: Go's duration text; an unset one
/// reads `"0s"` for checks the agent runs (they have a type) and `""` for
/// serf and catalog-registered checks (see `views::health_check`).
struct CheckDuration {
    ns: u64,
    agent_run: bool,
}

impl Serialize for CheckDuration {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self.ns {
            0 if self.agent_run => ser.serialize_str("0s"),
            0 => ser.serialize_str(""),
            ns => ser.serialize_str(&crate::duration::format_nanos(ns as i128)),
        }
    }
}

/// A check's `Definition`: only the parts that are set.
struct DefinitionJson<'a>(&'a CheckDefinition);

impl Serialize for DefinitionJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut m = ser.serialize_map(None)?;
        for (k, v) in [
            ("HTTP", &d.http),
            ("TLSServerName", &d.tls_server_name),
            ("Method", &d.method),
            ("Body", &d.body),
            ("TCP", &d.tcp),
            ("UDP", &d.udp),
            ("GRPC", &d.grpc),
        ] {
            if !v.is_empty() {
                m.serialize_entry(k, v)?;
            }
        }
        if d.tls_skip_verify {
            m.serialize_entry("TLSSkipVerify", &true)?;
        }
        if !d.header.is_empty() {
            m.serialize_entry("Header", &d.header)?;
        }
        if d.grpc_use_tls {
            m.serialize_entry("GRPCUseTLS", &true)?;
        }
        for (k, ns) in [
            ("Interval", d.interval_ns),
            ("Timeout", d.timeout_ns),
            ("DeregisterCriticalServiceAfter", d.deregister_critical_service_after_ns),
        ] {
            if ns > 0 {
                m.serialize_entry(k, &crate::duration::format_nanos(ns as i128))?;
            }
        }
        m.end()
    }
}

/// A health check (Consul's `HealthCheck`): the twin of
/// `views::health_check`.
pub struct HealthCheckJson<'a>(pub &'a HealthCheck);

impl Serialize for HealthCheckJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let agent_run = !c.check_type.is_empty();
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("Node", &c.node)?;
        m.serialize_entry("CheckID", &c.check_id)?;
        m.serialize_entry("Name", &c.name)?;
        m.serialize_entry("Status", &c.status)?;
        m.serialize_entry("Notes", &c.notes)?;
        m.serialize_entry("Output", &c.output)?;
        m.serialize_entry("ServiceID", &c.service_id)?;
        m.serialize_entry("ServiceName", &c.service_name)?;
        m.serialize_entry("ServiceTags", &c.service_tags)?;
        m.serialize_entry("Type", &c.check_type)?;
        m.serialize_entry("Interval", &CheckDuration { ns: c.interval_ns, agent_run })?;
        m.serialize_entry("Timeout", &CheckDuration { ns: c.timeout_ns, agent_run })?;
        m.serialize_entry("ExposedPort", &0)?;
        m.serialize_entry("Definition", &DefinitionJson(&c.definition))?;
        m.serialize_entry("CreateIndex", &c.create_index)?;
        m.serialize_entry("ModifyIndex", &c.modify_index)?;
        m.end()
    }
}

/// A list of checks as `[HealthCheck]`.
pub struct HealthChecksJson<'a>(pub &'a [HealthCheck]);

impl Serialize for HealthChecksJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut seq = ser.serialize_seq(Some(self.0.len()))?;
        for c in self.0 {
            seq.serialize_element(&HealthCheckJson(c))?;
        }
        seq.end()
    }
}

/// One `/v1/health/service/<name>` entry: the instance with its node and
/// the checks that decide its health (Consul's `CheckServiceNode`).
pub struct HealthEntryJson<'a>(pub &'a ServiceHealth);

impl Serialize for HealthEntryJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = ser.serialize_map(Some(3))?;
        m.serialize_entry("Node", &NodeJson::new(&e.node))?;
        m.serialize_entry("Service", &NodeServiceJson(&e.service))?;
        m.serialize_entry("Checks", &HealthChecksJson(&e.checks))?;
        m.end()
    }
}

/// Serializes each item of a slice through a borrowed view.
pub struct ListJson<'a, T, V>(pub &'a [T], pub fn(&'a T) -> V);

impl<'a, T, V: Serialize> Serialize for ListJson<'a, T, V> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut seq = ser.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&(self.1)(item))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::mesh::{TransparentProxy, Upstream};
    use crate::catalog::types::Locality;
    use serde_json::json;

    fn node() -> Node {
        Node {
            id: "0000002a-0000-4000-8000-00000000002a".into(),
            node: "node-00042".into(),
            address: "10.0.0.43".into(),
            datacenter: "dc1".into(),
            tagged_addresses: [("lan".to_string(), "10.0.0.43".to_string())].into(),
            meta: [("rack".to_string(), "r2".to_string()), ("a\"b".to_string(), "ü\n".to_string())].into(),
            create_index: 17,
            modify_index: 19,
        }
    }

    fn plain_service() -> NodeService {
        NodeService {
            id: "svc-10-0".into(),
            service: "svc-10".into(),
            tags: vec!["v1".into(), "zone-1".into()],
            meta: [("version".to_string(), "1.3".to_string())].into(),
            port: 20000,
            weights: Weights { passing: 3, warning: 1 },
            create_index: 18,
            modify_index: 18,
            ..Default::default()
        }
    }

    /// A service that sets every optional part, mesh parts included.
    fn full_service() -> NodeService {
        let mut s = plain_service();
        s.kind = crate::catalog::mesh::KIND_CONNECT_PROXY.into();
        s.address = "10.1.1.1".into();
        s.tagged_addresses =
            [("wan".to_string(), ServiceAddress { address: "1.2.3.4".into(), port: 8080 })].into();
        s.socket_path = "/run/s.sock".into();
        s.enable_tag_override = true;
        s.proxy.destination_service_name = "web".into();
        s.proxy.local_service_port = 8080;
        s.proxy.mode = "transparent".into();
        s.proxy.transparent_proxy = TransparentProxy { outbound_listener_port: 15001, dialed_directly: true };
        s.proxy.config = r#"{"protocol":"http"}"#.into();
        s.proxy.upstreams =
            vec![Upstream { destination_name: "db".into(), local_bind_port: 9191, ..Default::default() }];
        s.connect.native = true;
        s.locality = Some(Locality { region: "eu".into(), zone: "a".into() });
        s
    }

    fn checks() -> Vec<HealthCheck> {
        let serf = HealthCheck {
            node: "node-00042".into(),
            check_id: "serfHealth".into(),
            name: "Serf Health Status".into(),
            status: "passing".into(),
            output: "Agent alive and reachable".into(),
            create_index: 17,
            modify_index: 17,
            ..Default::default()
        };
        let mut http = HealthCheck {
            node: "node-00042".into(),
            check_id: "svc-10-0-c0".into(),
            name: "check 0".into(),
            status: "critical".into(),
            notes: "n".into(),
            output: "HTTP GET \"x\": 500 <html>".into(),
            service_id: "svc-10-0".into(),
            service_name: "svc-10".into(),
            service_tags: vec!["v1".into()],
            check_type: "http".into(),
            interval_ns: 10_000_000_000,
            create_index: 20,
            modify_index: 25,
            ..Default::default()
        };
        http.definition.http = "http://127.0.0.1:8080/health".into();
        http.definition.method = "GET".into();
        http.definition.tls_skip_verify = true;
        http.definition.header = [("X-A".to_string(), vec!["1".to_string(), "2".to_string()])].into();
        http.definition.grpc_use_tls = true;
        http.definition.interval_ns = 10_000_000_000;
        http.definition.deregister_critical_service_after_ns = 90_000_000_000;
        let ttl = HealthCheck { check_type: "ttl".into(), check_id: "t".into(), ..serf.clone() };
        vec![serf, http, ttl]
    }

    /// Both JSON forms Consul's handlers write: minified and `?pretty`.
    fn same_bytes(fast: &impl Serialize, slow: &Value) {
        assert_eq!(serde_json::to_string(fast).unwrap(), serde_json::to_string(slow).unwrap());
        assert_eq!(serde_json::to_string_pretty(fast).unwrap(), serde_json::to_string_pretty(slow).unwrap());
    }

    #[test]
    fn service_node_matches_the_value_builder() {
        let n = node();
        for s in [plain_service(), full_service()] {
            same_bytes(&ServiceNodeJson(&n, &s), &super::super::views::service_node(&n, &s));
        }
    }

    #[test]
    fn node_service_matches_the_value_builder() {
        for s in [plain_service(), full_service()] {
            same_bytes(&NodeServiceJson(&s), &super::super::views::node_service(&s));
        }
    }

    #[test]
    fn health_check_matches_the_value_builder() {
        for c in checks() {
            same_bytes(&HealthCheckJson(&c), &super::super::views::health_check(&c));
        }
    }

    #[test]
    fn health_entry_matches_the_old_shape() {
        for s in [plain_service(), full_service()] {
            let e = ServiceHealth { node: node(), service: s, checks: checks() };
            let old = json!({
                "Node": NodeJson::new(&e.node),
                "Service": super::super::views::node_service(&e.service),
                "Checks": e.checks.iter().map(super::super::views::health_check).collect::<Vec<_>>(),
            });
            same_bytes(&HealthEntryJson(&e), &old);
            let list = [e];
            let old_list = Value::Array(vec![old]);
            same_bytes(&ListJson(&list, HealthEntryJson), &old_list);
        }
    }
}
