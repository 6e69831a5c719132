//! The services a gateway fronts, from its `ingress-gateway` or
//! `terminating-gateway` entry (Consul's gateway-services mappings, as
//! `/v1/catalog/gateway-services/:gateway` shows them and
//! `/v1/health/ingress/:service` uses them). A `*` service name stands for
//! every typical service in the catalog except `consul`; an explicit
//! mapping of the same service (on the same listener port) wins over it.

use super::{ConfigEntry, INGRESS_GATEWAY, TERMINATING_GATEWAY};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One gateway → service mapping (Consul's `GatewayService`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayService {
    pub gateway: String,
    pub service: String,
    /// `ingress-gateway` or `terminating-gateway`.
    pub gateway_kind: String,
    /// Ingress only: the listener's port and protocol, the service's hosts.
    pub port: i64,
    pub protocol: String,
    pub hosts: Vec<String>,
    /// Terminating only: TLS origination towards the service.
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
    pub sni: String,
    pub from_wildcard: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

impl GatewayService {
    /// Consul's JSON (empty optional fields omitted, as its `omitempty`).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("Gateway".into(), serde_json::json!({ "Name": self.gateway }));
        m.insert("Service".into(), serde_json::json!({ "Name": self.service }));
        m.insert("GatewayKind".into(), Value::String(self.gateway_kind.clone()));
        if self.port != 0 {
            m.insert("Port".into(), Value::from(self.port));
        }
        let texts = [
            ("Protocol", &self.protocol),
            ("CAFile", &self.ca_file),
            ("CertFile", &self.cert_file),
            ("KeyFile", &self.key_file),
            ("SNI", &self.sni),
        ];
        for (k, v) in texts.iter().take(1) {
            if !v.is_empty() {
                m.insert((*k).into(), Value::String((*v).clone()));
            }
        }
        if !self.hosts.is_empty() {
            m.insert("Hosts".into(), Value::from(self.hosts.clone()));
        }
        for (k, v) in texts.iter().skip(1) {
            if !v.is_empty() {
                m.insert((*k).into(), Value::String((*v).clone()));
            }
        }
        if self.from_wildcard {
            m.insert("FromWildcard".into(), Value::Bool(true));
        }
        m.insert("CreateIndex".into(), Value::from(self.create_index));
        m.insert("ModifyIndex".into(), Value::from(self.modify_index));
        Value::Object(m)
    }
}

fn text(m: &Map<String, Value>, k: &str) -> String {
    m.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn objects<'a>(m: &'a Map<String, Value>, k: &str) -> impl Iterator<Item = &'a Map<String, Value>> {
    m.get(k).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

/// Whether the entry names the `*` wildcard for any of its services.
pub fn has_wildcard(entry: &ConfigEntry) -> bool {
    let fields = entry.fields();
    let star = |s: &Map<String, Value>| s.get("Name").and_then(Value::as_str) == Some("*");
    match entry.kind.as_str() {
        INGRESS_GATEWAY => objects(&fields, "Listeners").any(|l| objects(l, "Services").any(star)),
        TERMINATING_GATEWAY => objects(&fields, "Services").any(star),
        _ => false,
    }
}

/// The mappings of one gateway entry, by service name then port.
/// `catalog` lists the catalog's services a wildcard can stand for: each
/// typical service's name with the index it was first registered at.
pub fn mappings(entry: &ConfigEntry, catalog: &[(String, u64)]) -> Vec<GatewayService> {
    let fields = entry.fields();
    let base = GatewayService {
        gateway: entry.name.clone(),
        gateway_kind: entry.kind.clone(),
        create_index: entry.modify_index,
        modify_index: entry.modify_index,
        ..Default::default()
    };
    // (template, port) for each service entry as written.
    let mut written: Vec<GatewayService> = Vec::new();
    match entry.kind.as_str() {
        INGRESS_GATEWAY => {
            for l in objects(&fields, "Listeners") {
                for s in objects(l, "Services") {
                    written.push(GatewayService {
                        service: text(s, "Name"),
                        port: l.get("Port").and_then(Value::as_i64).unwrap_or(0),
                        protocol: text(l, "Protocol"),
                        hosts: s
                            .get("Hosts")
                            .and_then(Value::as_array)
                            .map(|h| h.iter().filter_map(Value::as_str).map(str::to_string).collect())
                            .unwrap_or_default(),
                        ..base.clone()
                    });
                }
            }
        }
        TERMINATING_GATEWAY => {
            for s in objects(&fields, "Services") {
                written.push(GatewayService {
                    service: text(s, "Name"),
                    ca_file: text(s, "CAFile"),
                    cert_file: text(s, "CertFile"),
                    key_file: text(s, "KeyFile"),
                    sni: text(s, "SNI"),
                    ..base.clone()
                });
            }
        }
        _ => return Vec::new(),
    }
    let mut out: Vec<GatewayService> = written.iter().filter(|g| g.service != "*").cloned().collect();
    for wild in written.iter().filter(|g| g.service == "*") {
        for (name, registered) in catalog {
            if name == "consul" || out.iter().any(|g| g.service == *name && g.port == wild.port) {
                continue;
            }
            let index = entry.modify_index.max(*registered);
            out.push(GatewayService {
                service: name.clone(),
                from_wildcard: true,
                create_index: index,
                modify_index: index,
                ..wild.clone()
            });
        }
    }
    out.sort_by(|a, b| (&a.service, a.port).cmp(&(&b.service, b.port)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(kind: &str, name: &str, body: Value, index: u64) -> ConfigEntry {
        let mut e = ConfigEntry::new(kind, name, body.as_object().unwrap());
        e.create_index = index;
        e.modify_index = index;
        e
    }

    #[test]
    fn ingress_listeners_and_wildcards() {
        let e = entry(
            INGRESS_GATEWAY,
            "ing",
            json!({"Listeners": [
                {"Port": 8080, "Protocol": "http", "Services": [{"Name": "api", "Hosts": ["api.example"]}, {"Name": "*"}]},
                {"Port": 9090, "Protocol": "tcp", "Services": [{"Name": "db"}]},
            ]}),
            10,
        );
        let catalog = vec![("api".to_string(), 3), ("consul".to_string(), 1), ("web".to_string(), 12)];
        let m = mappings(&e, &catalog);
        let got: Vec<(&str, i64, bool, u64)> =
            m.iter().map(|g| (g.service.as_str(), g.port, g.from_wildcard, g.modify_index)).collect();
        assert_eq!(got, vec![("api", 8080, false, 10), ("db", 9090, false, 10), ("web", 8080, true, 12)]);
        assert_eq!(
            m[0].to_json(),
            json!({"Gateway": {"Name": "ing"}, "Service": {"Name": "api"}, "GatewayKind": "ingress-gateway",
                "Port": 8080, "Protocol": "http", "Hosts": ["api.example"], "CreateIndex": 10, "ModifyIndex": 10})
        );
        assert_eq!(m[2].to_json()["FromWildcard"], json!(true));
    }

    #[test]
    fn terminating_tls_fields() {
        let e = entry(
            TERMINATING_GATEWAY,
            "term",
            json!({"Services": [{"Name": "billing", "CAFile": "/ca.pem", "SNI": "billing.example"}]}),
            7,
        );
        let m = mappings(&e, &[]);
        assert_eq!(
            m[0].to_json(),
            json!({"Gateway": {"Name": "term"}, "Service": {"Name": "billing"}, "GatewayKind": "terminating-gateway",
                "CAFile": "/ca.pem", "SNI": "billing.example", "CreateIndex": 7, "ModifyIndex": 7})
        );
    }
}
