//! Service identities, node identities and templated policies, expanded
//! into rule text exactly as Consul 1.2x expands them, and the name rules
//! Consul applies to policies, roles and identities.
//!
//! The template texts, schemas and descriptions are API-visible data
//! (`/v1/acl/templated-policies` returns them, previews return the rendered
//! rules), so they are kept byte for byte as Consul serves them.
//!
//! A synthetic policy's ID is what Consul computes: the hex of the rule
//! text followed by the hex of an FNV-128a hash of nothing (Consul calls
//! `Sum(rules)` on a fresh hasher, which appends the empty input's hash to
//! the rule bytes). So the ID is long and determined by the rules alone,
//! and two identities with the same rules share one synthetic policy.

use super::model::{NodeIdentity, ServiceIdentity, TemplatedPolicy};

/// A built-in templated policy.
#[derive(Debug, PartialEq, Eq)]
pub struct Template {
    /// `TemplateName`, e.g. `builtin/service`.
    pub name: &'static str,
    /// Consul's internal `TemplateID` (never shown by the HTTP API).
    pub id: &'static str,
    pub description: &'static str,
    /// The JSON schema of the variables as Consul serves it; `""` when the
    /// template takes none.
    pub schema: &'static str,
    /// The template text, with `{{.Name}}` where the name goes.
    pub template: &'static str,
    /// Whether `TemplateVariables.Name` must be given.
    pub requires_name: bool,
}

/// The schema of every template that takes a name (tab-indented, as
/// Consul's `service.json`, `node.json` and `api-gateway.json`).
const NAME_SCHEMA: &str = "{\n\t\"type\": \"object\",\n\t\"properties\": {\n\t\t\"name\": { \"type\": \"string\", \"$ref\": \"#/definitions/min-length-one\" }\n\t},\n\t\"required\": [\"name\"],\n\t\"definitions\": {\n\t\t\"min-length-one\": {\n\t\t\t\t\"type\": \"string\",\n\t\t\t\t\"minLength\": 1\n\t\t}\n\t}\n}";

/// `workload-identity.json` is indented with spaces.
const WORKLOAD_IDENTITY_SCHEMA: &str = "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"name\": { \"type\": \"string\", \"$ref\": \"#/definitions/min-length-one\" }\n  },\n  \"required\": [\"name\"],\n  \"definitions\": {\n    \"min-length-one\": {\n      \"type\": \"string\",\n      \"minLength\": 1\n    }\n  }\n}";

const SERVICE_RULES: &str = "\nservice \"{{.Name}}\" {\n\tpolicy = \"write\"\n}\nservice \"{{.Name}}-sidecar-proxy\" {\n\tpolicy = \"write\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}";

const NODE_RULES: &str =
    "\nnode \"{{.Name}}\" {\n\tpolicy = \"write\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}";

/// Sorted by name (the order `templates()` lists them in).
static TEMPLATES: [Template; 7] = [
    Template {
        name: "builtin/api-gateway",
        id: "00000000-0000-0000-0000-000000000008",
        description: "Gives the token or role permissions for a Consul api gateway",
        schema: NAME_SCHEMA,
        template: "mesh = \"read\"\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice \"{{.Name}}\" {\n\tpolicy = \"write\"\n}",
        requires_name: true,
    },
    Template {
        name: "builtin/dns",
        id: "00000000-0000-0000-0000-000000000005",
        description: "Gives the token or role permissions for the Consul DNS to query services in the network.",
        schema: "",
        template: "\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nquery_prefix \"\" {\n\tpolicy = \"read\"\n}",
        requires_name: false,
    },
    Template {
        name: "builtin/node",
        id: "00000000-0000-0000-0000-000000000004",
        description: "Gives the token or role permissions for a register an agent/node into the catalog. A node is typically a consul agent but can also be a physical server, cloud instance or a container.",
        schema: NAME_SCHEMA,
        template: NODE_RULES,
        requires_name: true,
    },
    Template {
        name: "builtin/nomad-client",
        id: "00000000-0000-0000-0000-000000000009",
        description: "Gives the token or role permissions required for integration with a nomad client.",
        schema: "",
        template: "agent_prefix \"\" {\n  policy = \"read\"\n}\nnode_prefix \"\" {\n  policy = \"read\"\n}\nservice_prefix \"\" {\n  policy = \"write\"\n}\nkey_prefix \"\" {\n  policy = \"read\"\n}",
        requires_name: false,
    },
    Template {
        name: "builtin/nomad-server",
        id: "00000000-0000-0000-0000-000000000006",
        description: "Gives the token or role permissions required for integration with a nomad server.",
        schema: "",
        template: "\nacl = \"write\"\nagent_prefix \"\" {\n  policy = \"read\"\n}\nnode_prefix \"\" {\n  policy = \"read\"\n}\nservice_prefix \"\" {\n  policy = \"write\"\n}",
        requires_name: false,
    },
    Template {
        name: "builtin/service",
        id: "00000000-0000-0000-0000-000000000003",
        description: "Gives the token or role permissions to register a service and discover services in the Consul catalog. It also gives the specified service's sidecar proxy the permission to discover and route traffic to other services.",
        schema: NAME_SCHEMA,
        template: SERVICE_RULES,
        requires_name: true,
    },
    Template {
        name: "builtin/workload-identity",
        id: "00000000-0000-0000-0000-000000000007",
        description: "Gives the token or role permissions for a specific workload identity.",
        schema: WORKLOAD_IDENTITY_SCHEMA,
        template: "identity \"{{.Name}}\" {\n\tpolicy = \"write\"\n}",
        requires_name: true,
    },
];

const NAME_PLACEHOLDER: &str = "{{.Name}}";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("acl templated policy does not exist: {0}")]
    UnknownTemplate(String),
    /// The schema's `required` (Consul's JSON-schema validator says it so).
    #[error("name is required")]
    MissingName,
    #[error(
        "service identity {0:?} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed"
    )]
    InvalidServiceName(String),
    /// The double space is Consul's.
    #[error(
        "node identity {0:?}  has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed"
    )]
    InvalidNodeName(String),
    /// Consul checks only the length for the other templates and pastes the
    /// name into a quoted HCL string; a quote there would let a name write
    /// its own rules, so we refuse what could end the string.
    #[error("templated policy {template} cannot use the name {name:?}: quotes, backslashes and control characters are not allowed")]
    UnsafeName { template: &'static str, name: String },
}

/// Every built-in template, sorted by name.
pub fn templates() -> &'static [Template] {
    &TEMPLATES
}

pub fn template(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// The rule text of `t` for `name` (ignored by templates that take none),
/// after Consul's checks of the name.
pub fn render(t: &Template, name: Option<&str>) -> Result<String, IdentityError> {
    if !t.requires_name {
        return Ok(t.template.to_string());
    }
    let name = name.filter(|n| !n.is_empty()).ok_or(IdentityError::MissingName)?;
    match t.name {
        "builtin/service" if !is_valid_service_identity_name(name) => {
            return Err(IdentityError::InvalidServiceName(name.to_string()))
        }
        "builtin/node" if !is_valid_node_identity_name(name) => {
            return Err(IdentityError::InvalidNodeName(name.to_string()))
        }
        _ => {}
    }
    if name.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
        return Err(IdentityError::UnsafeName { template: t.name, name: name.to_string() });
    }
    Ok(t.template.replace(NAME_PLACEHOLDER, name))
}

/// The rules a service identity grants: write on the service and its
/// `-sidecar-proxy`, read on every service and node. `name` must already
/// be valid ([`is_valid_service_identity_name`]); it is pasted as is.
pub fn service_identity_rules(name: &str) -> String {
    SERVICE_RULES.replace(NAME_PLACEHOLDER, name)
}

/// The rules a node identity grants: write on the node, read on every
/// service. `name` must already be valid ([`is_valid_node_identity_name`]).
pub fn node_identity_rules(name: &str) -> String {
    NODE_RULES.replace(NAME_PLACEHOLDER, name)
}

/// A policy made up from an identity or a template: never stored, shown
/// by `?expanded` token reads and by the templated-policy preview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntheticPolicy {
    pub id: String,
    /// `synthetic-policy-<id>`.
    pub name: String,
    pub description: String,
    pub rules: String,
    /// Empty: every datacenter.
    pub datacenters: Vec<String>,
}

/// Consul's synthetic policy ID for `rules` (see the module comment).
pub fn synthetic_policy_id(rules: &str) -> String {
    /// FNV-128a's offset basis: the "hash" of no input, which Consul's
    /// `hasher.Sum(rules)` appends to the rule bytes.
    const FNV128A_EMPTY: &str = "6c62272e07bb014262b821756295c58d";
    let mut id = String::with_capacity(rules.len() * 2 + FNV128A_EMPTY.len());
    for b in rules.bytes() {
        id.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        id.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    id.push_str(FNV128A_EMPTY);
    id
}

fn synthetic(rules: String, description: String, datacenters: Vec<String>) -> SyntheticPolicy {
    let id = synthetic_policy_id(&rules);
    SyntheticPolicy { name: format!("synthetic-policy-{id}"), id, description, rules, datacenters }
}

pub fn service_identity_policy(si: &ServiceIdentity) -> SyntheticPolicy {
    synthetic(
        service_identity_rules(&si.service_name),
        format!("synthetic policy for service identity {:?}", si.service_name),
        si.datacenters.clone(),
    )
}

/// Valid only in the identity's datacenter.
pub fn node_identity_policy(ni: &NodeIdentity) -> SyntheticPolicy {
    synthetic(
        node_identity_rules(&ni.node_name),
        format!("synthetic policy for node identity {:?}", ni.node_name),
        vec![ni.datacenter.clone()],
    )
}

/// The synthetic policy of a token's or role's templated policy.
pub fn templated_policy(tp: &TemplatedPolicy) -> Result<SyntheticPolicy, IdentityError> {
    let t = template(&tp.template_name)
        .ok_or_else(|| IdentityError::UnknownTemplate(tp.template_name.clone()))?;
    let mut p = preview(t, tp.name.as_deref())?;
    p.datacenters = tp.datacenters.clone();
    Ok(p)
}

/// What `/v1/acl/templated-policy/preview/:name` answers (every
/// datacenter).
pub fn preview(t: &Template, name: Option<&str>) -> Result<SyntheticPolicy, IdentityError> {
    Ok(synthetic(
        render(t, name)?,
        format!("synthetic policy generated from templated policy: {}", t.name),
        Vec::new(),
    ))
}

// ----- names -----

pub const SERVICE_IDENTITY_NAME_MAX: usize = 256;
pub const NODE_IDENTITY_NAME_MAX: usize = 256;
pub const POLICY_NAME_MAX: usize = 128;
pub const ROLE_NAME_MAX: usize = 256;
pub const AUTH_METHOD_NAME_MAX: usize = 128;

/// Policy names starting with this are Consul's own (`builtin/...`).
pub const RESERVED_BUILTIN_PREFIX: &str = "builtin/";

/// Consul's text for a policy name [`is_valid_policy_name`] refuses.
pub const INVALID_POLICY_NAME: &str =
    "Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed";

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?$`, 1 to 256 bytes.
fn is_identity_name(name: &str, max: usize) -> bool {
    let b = name.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) if b.len() <= max => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-' || c == b'_')
        }
        _ => false,
    }
}

/// A service identity's (and `builtin/service`'s) name: lowercase
/// alphanumerics, `-` and `_`, starting and ending alphanumeric.
pub fn is_valid_service_identity_name(name: &str) -> bool {
    is_identity_name(name, SERVICE_IDENTITY_NAME_MAX)
}

/// A node identity's (and `builtin/node`'s) name: as a service identity's.
pub fn is_valid_node_identity_name(name: &str) -> bool {
    is_identity_name(name, NODE_IDENTITY_NAME_MAX)
}

/// `^[A-Za-z0-9\-_]+/?[A-Za-z0-9\-_]*$`, 1 to 128 bytes, not starting with
/// `builtin/` (Consul's reserved prefix). One `/` is allowed, for names
/// such as `team/readers`.
pub fn is_valid_policy_name(name: &str) -> bool {
    if name.is_empty() || name.len() > POLICY_NAME_MAX || name.starts_with(RESERVED_BUILTIN_PREFIX) {
        return false;
    }
    let (head, tail) = name.split_once('/').unwrap_or((name, ""));
    !head.is_empty() && head.bytes().all(is_name_byte) && tail.bytes().all(is_name_byte)
}

/// `^[A-Za-z0-9\-_]{1,256}$`.
pub fn is_valid_role_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= ROLE_NAME_MAX && name.bytes().all(is_name_byte)
}

/// `^[A-Za-z0-9\-_]{1,128}$`.
pub fn is_valid_auth_method_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= AUTH_METHOD_NAME_MAX && name.bytes().all(is_name_byte)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::authorizer::{Authorizer, DefaultPolicy};
    use crate::acl::rules::parse;
    use std::sync::Arc;

    fn authz(rules: &str) -> Authorizer {
        Authorizer::new(&[Arc::new(parse(rules).unwrap())], DefaultPolicy::Deny, false)
    }

    #[test]
    fn service_identity_expands_as_consul() {
        let rules = service_identity_rules("web");
        assert_eq!(
            rules,
            "\nservice \"web\" {\n\tpolicy = \"write\"\n}\nservice \"web-sidecar-proxy\" {\n\tpolicy = \"write\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}"
        );
        let a = authz(&rules);
        assert!(a.service_write("web") && a.service_write("web-sidecar-proxy") && !a.service_write("web2"));
        assert!(a.service_read("db") && a.node_read("n1") && !a.node_write("n1") && !a.key_read("k"));
        assert!(a.intention_read("web") && !a.intention_write("web"));
        let p = service_identity_policy(&ServiceIdentity {
            service_name: "web".into(),
            datacenters: vec!["dc2".into()],
        });
        assert_eq!(p.description, "synthetic policy for service identity \"web\"");
        assert_eq!(p.datacenters, ["dc2"]);
        assert_eq!(p.rules, rules);
        assert_eq!(p.name, format!("synthetic-policy-{}", p.id));
    }

    #[test]
    fn node_identity_expands_as_consul() {
        let rules = node_identity_rules("node-1");
        assert_eq!(
            rules,
            "\nnode \"node-1\" {\n\tpolicy = \"write\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}"
        );
        let a = authz(&rules);
        assert!(
            a.node_write("node-1")
                && !a.node_read("node-2")
                && a.service_read("any")
                && !a.service_write("any")
        );
        let p = node_identity_policy(&NodeIdentity { node_name: "node-1".into(), datacenter: "dc1".into() });
        assert_eq!(p.description, "synthetic policy for node identity \"node-1\"");
        assert_eq!(p.datacenters, ["dc1"]);
    }

    /// Consul's documented preview of `builtin/service` for "web" starts
    /// its ID with the hex of the rules.
    #[test]
    fn synthetic_ids_are_consuls() {
        let p = preview(template("builtin/service").unwrap(), Some("web")).unwrap();
        assert!(p.id.starts_with("0a73657276696365202277656222207"), "{}", p.id);
        assert!(p.name.starts_with("synthetic-policy-0a73657276"), "{}", p.name);
        assert!(p.id.ends_with("6c62272e07bb014262b821756295c58d"));
        assert_eq!(p.id.len(), p.rules.len() * 2 + 32);
        assert_eq!(p.description, "synthetic policy generated from templated policy: builtin/service");
        assert!(p.datacenters.is_empty());
        assert_eq!(synthetic_policy_id(""), "6c62272e07bb014262b821756295c58d");
        assert_eq!(synthetic_policy_id("a\n"), "610a6c62272e07bb014262b821756295c58d");
        // A service identity and builtin/service share rules, so an ID.
        let si =
            service_identity_policy(&ServiceIdentity { service_name: "web".into(), datacenters: vec![] });
        assert_eq!(si.id, p.id);
    }

    #[test]
    fn the_seven_builtin_templates() {
        let names: Vec<_> = templates().iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [
                "builtin/api-gateway",
                "builtin/dns",
                "builtin/node",
                "builtin/nomad-client",
                "builtin/nomad-server",
                "builtin/service",
                "builtin/workload-identity"
            ]
        );
        for t in templates() {
            assert_eq!(template(t.name), Some(t));
            assert_eq!(t.requires_name, !t.schema.is_empty(), "{}", t.name);
            assert_eq!(t.requires_name, t.template.contains(NAME_PLACEHOLDER), "{}", t.name);
            if !t.schema.is_empty() {
                let schema: serde_json::Value = serde_json::from_str(t.schema).unwrap();
                assert_eq!(schema["required"], serde_json::json!(["name"]), "{}", t.name);
            }
            assert!(t.id.starts_with("00000000-0000-0000-0000-0000000000"));
            // Every rendering is a valid policy.
            let rules = render(t, Some("some-name")).unwrap();
            parse(&rules).unwrap_or_else(|e| panic!("{}: {e}\n{rules}", t.name));
        }
        assert_eq!(template("builtin/nope"), None);
        assert_eq!(template("service"), None);
    }

    #[test]
    fn every_template_renders_as_consul() {
        let r = |name: &str, var: Option<&str>| render(template(name).unwrap(), var).unwrap();
        assert_eq!(r("builtin/service", Some("api")), service_identity_rules("api"));
        assert_eq!(r("builtin/node", Some("web")), node_identity_rules("web"));
        assert_eq!(
            r("builtin/dns", None),
            "\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nquery_prefix \"\" {\n\tpolicy = \"read\"\n}"
        );
        // A name given to a template without variables is ignored.
        assert_eq!(r("builtin/dns", Some("x")), r("builtin/dns", None));
        assert_eq!(
            r("builtin/api-gateway", Some("api-gateway")),
            "mesh = \"read\"\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice \"api-gateway\" {\n\tpolicy = \"write\"\n}"
        );
        assert_eq!(r("builtin/workload-identity", Some("w1")), "identity \"w1\" {\n\tpolicy = \"write\"\n}");

        let dns = authz(&r("builtin/dns", None));
        assert!(dns.node_read("n") && dns.service_read("s") && dns.query_read("q") && !dns.key_read("k"));
        assert!(!dns.node_write("n") && !dns.acl_read());

        let nomad_server = authz(&r("builtin/nomad-server", None));
        assert!(nomad_server.acl_write() && nomad_server.agent_read("a") && !nomad_server.agent_write("a"));
        assert!(
            nomad_server.node_read("n") && nomad_server.service_write("s") && !nomad_server.key_read("k")
        );

        let nomad_client = authz(&r("builtin/nomad-client", None));
        assert!(
            nomad_client.agent_read("a") && nomad_client.node_read("n") && nomad_client.service_write("s")
        );
        assert!(nomad_client.key_read("k") && !nomad_client.key_write("k") && !nomad_client.acl_read());

        let gw = authz(&r("builtin/api-gateway", Some("gw")));
        assert!(gw.mesh_read() && !gw.mesh_write() && gw.service_write("gw") && !gw.service_write("other"));
        assert!(gw.service_read("other") && gw.node_read("n"));

        let wi = authz(&r("builtin/workload-identity", Some("w1")));
        assert!(wi.identity_write("w1") && !wi.identity_read("w2") && !wi.service_read("w1"));
    }

    #[test]
    fn render_checks_names_as_consul_does() {
        let service = template("builtin/service").unwrap();
        assert_eq!(render(service, None), Err(IdentityError::MissingName));
        assert_eq!(render(service, Some("")), Err(IdentityError::MissingName));
        assert_eq!(render(service, Some("Web")), Err(IdentityError::InvalidServiceName("Web".into())));
        assert_eq!(
            render(service, Some("Web")).unwrap_err().to_string(),
            "service identity \"Web\" has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed"
        );
        let node = template("builtin/node").unwrap();
        assert_eq!(render(node, Some("n.1")), Err(IdentityError::InvalidNodeName("n.1".into())));
        assert!(render(node, Some("n-1")).is_ok());
        // The others take any non-empty name, but nothing that could end
        // the quoted string it is pasted into.
        let gw = template("builtin/api-gateway").unwrap();
        assert!(render(gw, Some("Gateway.One")).is_ok());
        for bad in ["a\" {}\nacl = \"write", "a\\", "a\nb"] {
            assert!(matches!(render(gw, Some(bad)), Err(IdentityError::UnsafeName { .. })), "{bad:?}");
        }
        assert_eq!(render(gw, None), Err(IdentityError::MissingName));
        let tp = TemplatedPolicy { template_name: "builtin/nope".into(), name: None, datacenters: vec![] };
        assert_eq!(
            templated_policy(&tp).unwrap_err().to_string(),
            "acl templated policy does not exist: builtin/nope"
        );
        let tp = TemplatedPolicy {
            template_name: "builtin/node".into(),
            name: Some("n1".into()),
            datacenters: vec!["dc1".into()],
        };
        let p = templated_policy(&tp).unwrap();
        assert_eq!(p.datacenters, ["dc1"]);
        assert_eq!(p.description, "synthetic policy generated from templated policy: builtin/node");
    }

    #[test]
    fn identity_names() {
        for ok in ["a", "0", "web", "web-1", "web_1", "a-b_c-9", &"a".repeat(256)] {
            assert!(is_valid_service_identity_name(ok) && is_valid_node_identity_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "_a", "a_", "Web", "a.b", "a b", "a/b", "é", &"a".repeat(257)] {
            assert!(!is_valid_service_identity_name(bad) && !is_valid_node_identity_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn policy_role_and_auth_method_names() {
        for ok in ["a", "Read-Only_1", "team/readers", "team/", &"a".repeat(128)] {
            assert!(is_valid_policy_name(ok), "{ok:?}");
        }
        for bad in ["", "/a", "a/b/c", "a b", "a.b", "builtin/x", "builtin/", "é", &"a".repeat(129)] {
            assert!(!is_valid_policy_name(bad), "{bad:?}");
        }
        assert!(is_valid_policy_name("builtin"));
        for ok in ["a", "Role_1-x", &"r".repeat(256)] {
            assert!(is_valid_role_name(ok), "{ok:?}");
        }
        for bad in ["", "a/b", "a b", &"r".repeat(257)] {
            assert!(!is_valid_role_name(bad), "{bad:?}");
        }
        assert!(is_valid_auth_method_name("minikube") && !is_valid_auth_method_name(&"m".repeat(129)));
        assert!(!is_valid_auth_method_name("a.b") && !is_valid_auth_method_name(""));
    }
}
