//! What the ACL system stores: tokens, policies and roles, as the state
//! machine keeps them (postcard, append-only field order). The HTTP API's
//! JSON shapes are views built from these (`http::acl`), so what is stored
//! and what a caller may see stay separate (a SecretID is shown only to
//! `acl:write`, names of linked policies are looked up at read time).

use serde::{Deserialize, Serialize};

/// The built-in policy that allows everything (rules and datacenters
/// immutable, never deleted).
pub const GLOBAL_MANAGEMENT_ID: &str = "00000000-0000-0000-0000-000000000001";
pub const GLOBAL_MANAGEMENT_NAME: &str = "global-management";
/// The token used when a request carries none.
pub const ANONYMOUS_ACCESSOR: &str = "00000000-0000-0000-0000-000000000002";
pub const ANONYMOUS_SECRET: &str = "anonymous";

/// A reference from a token or role to a policy or role, by ID. The name
/// is filled in from the referenced object when read back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub id: String,
    pub name: String,
}

/// `ServiceIdentities`: the rules a service instance needs, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceIdentity {
    pub service_name: String,
    /// Empty: every datacenter.
    pub datacenters: Vec<String>,
}

/// `NodeIdentities`: the rules an agent's node needs, in one datacenter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    pub node_name: String,
    pub datacenter: String,
}

/// `TemplatedPolicies`: a built-in template and its variables.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplatedPolicy {
    pub template_name: String,
    /// `TemplateVariables.Name`, when the template takes one.
    pub name: Option<String>,
    /// Empty: every datacenter.
    pub datacenters: Vec<String>,
}

/// What a token or role grants besides plain policy links.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    pub policies: Vec<Link>,
    pub service_identities: Vec<ServiceIdentity>,
    pub node_identities: Vec<NodeIdentity>,
    pub templated_policies: Vec<TemplatedPolicy>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub accessor_id: String,
    pub secret_id: String,
    pub description: String,
    pub grants: Grants,
    pub roles: Vec<Link>,
    /// Valid only in the datacenter that created it.
    pub local: bool,
    /// The auth method that minted it (`consul login`), or "".
    pub auth_method: String,
    /// Unix milliseconds; the leader reaps it after this.
    pub expiration_time_ms: Option<u64>,
    /// The TTL it was created with, in nanoseconds (shown back as given).
    pub expiration_ttl_ns: Option<u64>,
    /// Unix nanoseconds.
    pub create_time_ns: u64,
    pub hash: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Token {
    /// Whether it has expired at `now_ms` (Unix milliseconds).
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.expiration_time_ms.is_some_and(|t| t <= now_ms)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The rule text as given (HCL or JSON).
    pub rules: String,
    /// Empty: valid in every datacenter.
    pub datacenters: Vec<String>,
    pub hash: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub description: String,
    pub grants: Grants,
    pub hash: Vec<u8>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// An auth method (`/v1/acl/auth-method`): how `consul login` checks a
/// bearer token from an outside identity provider. Only type `jwt` is
/// served; its settings (`Config`) are kept as the JSON text the operator
/// gave, so a stored method reads back exactly as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthMethod {
    pub name: String,
    pub method_type: String,
    pub display_name: String,
    pub description: String,
    /// `MaxTokenTTL` in nanoseconds (0: tokens do not expire).
    pub max_token_ttl_ns: u64,
    /// `TokenLocality`: "", "local" or "global".
    pub token_locality: String,
    /// `Config` as a JSON object text.
    pub config: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A binding rule: which logins of an auth method get what.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRule {
    pub id: String,
    pub description: String,
    pub auth_method: String,
    /// A selector over the login's claims ("" matches every login).
    pub selector: String,
    /// service | node | role | policy | templated-policy.
    pub bind_type: String,
    /// May hold `${value.x}` interpolations.
    pub bind_name: String,
    /// `BindVars.Name` of a templated-policy rule (may interpolate too).
    pub bind_vars_name: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
}
