//! The ACL objects as the `/v1/acl` API carries them. Field order and the
//! omitted-when-empty fields follow Consul's Go `api` package, because
//! `-format=json` prints what that package would marshal.

use serde::{Deserialize, Serialize};

/// A policy or role named on a token or role. On the way in either field
/// may be empty (the server resolves the other); Consul always prints both.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct Link {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceIdentity {
    pub service_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeIdentity {
    pub node_name: String,
    pub datacenter: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TemplateVariables {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct TemplatedPolicy {
    pub template_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_variables: Option<TemplateVariables>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
}

impl TemplatedPolicy {
    /// The `name` variable, when the template takes one and it is set.
    pub fn var_name(&self) -> Option<&str> {
        self.template_variables.as_ref().map(|v| v.name.as_str()).filter(|n| !n.is_empty())
    }
}

/// A token (`api.ACLToken`).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Token {
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<ServiceIdentity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<NodeIdentity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub templated_policies: Vec<TemplatedPolicy>,
    pub local: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_method: String,
    /// Sent as a Go duration string ("15m0s"); the server turns it into
    /// `ExpirationTime` and does not return it.
    #[serde(rename = "ExpirationTTL", skip_serializing_if = "Option::is_none")]
    pub expiration_ttl: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub create_time: String,
    /// Base64, as Go marshals a byte slice.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hash: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rules: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub partition: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_method_namespace: String,
}

/// `GET /v1/acl/token/:id?expanded`: the token and everything it grants.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct TokenExpanded {
    pub expanded_policies: Option<Vec<Policy>>,
    pub expanded_roles: Option<Vec<Role>>,
    #[serde(rename = "NamespaceDefaultPolicyIDs")]
    pub namespace_default_policy_ids: Option<Vec<String>>,
    #[serde(rename = "NamespaceDefaultRoleIDs")]
    pub namespace_default_role_ids: Option<Vec<String>>,
    #[serde(rename = "AgentACLDefaultPolicy")]
    pub agent_acl_default_policy: String,
    #[serde(rename = "AgentACLDownPolicy")]
    pub agent_acl_down_policy: String,
    pub resolved_by_agent: String,
    #[serde(flatten)]
    pub token: Token,
}

/// An entry of `GET /v1/acl/tokens` (`api.ACLTokenListEntry`).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct TokenListEntry {
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<ServiceIdentity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<NodeIdentity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub templated_policies: Vec<TemplatedPolicy>,
    pub local: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    pub create_time: String,
    pub hash: String,
    pub legacy: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub partition: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_method_namespace: String,
}

/// A policy (`api.ACLPolicy`); list entries carry no `Rules`.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Policy {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub description: String,
    pub rules: String,
    pub datacenters: Option<Vec<String>>,
    pub hash: String,
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub partition: String,
}

/// An entry of `GET /v1/acl/policies` (`api.ACLPolicyListEntry`).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct PolicyListEntry {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub description: String,
    pub datacenters: Option<Vec<String>>,
    pub hash: String,
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub partition: String,
}

/// A role (`api.ACLRole`).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Role {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_identities: Vec<ServiceIdentity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<NodeIdentity>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub templated_policies: Vec<TemplatedPolicy>,
    pub hash: String,
    pub create_index: u64,
    pub modify_index: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub partition: String,
}

/// One built-in template (`api.ACLTemplatedPolicyResponse`).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct TemplatedPolicyResponse {
    pub template_name: String,
    pub schema: String,
    pub template: String,
    pub description: String,
}

/// The body of `PUT /v1/agent/token/:type`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct AgentTokenBody<'a> {
    pub token: &'a str,
}

/// `PUT /v1/acl/token/:id/clone`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct CloneBody<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    pub description: &'a str,
}

/// `PUT /v1/acl/bootstrap` with a chosen secret.
#[derive(Serialize, Debug)]
pub struct BootstrapBody<'a> {
    #[serde(rename = "BootstrapSecret")]
    pub bootstrap_secret: &'a str,
}
