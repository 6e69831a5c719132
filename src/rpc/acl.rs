//! ACL message types shared by agents and servers.

use serde::{Deserialize, Serialize};

/// `/v1/acl/tokens` filters (each optional; all given must match).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclTokenFilter {
    /// A policy ID the token links directly.
    pub policy: Option<String>,
    /// A role ID the token links.
    pub role: Option<String>,
    /// A service name among its service identities.
    pub service_name: Option<String>,
    /// The auth method that minted it.
    pub auth_method: Option<String>,
}

/// A token as an agent needs it to decide locally: who it is and the rule
/// texts that apply in this datacenter (its policies', its roles' and its
/// identities' expansions), or that it may do everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedToken {
    pub accessor_id: String,
    pub management: bool,
    pub rules: Vec<String>,
}

/// What the primary datacenter answers a secondary's server that asks
/// about a token it does not hold: the token as resolved for the asking
/// datacenter, and when it expires.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteToken {
    pub resolved: ResolvedToken,
    /// Unix milliseconds.
    pub expiration_time_ms: Option<u64>,
}

/// One answer of the primary to a secondary's replication loop: the
/// primary's ACL table indexes, and every table whose index differs from
/// the one the secondary said it has (`None`: unchanged). Tokens are the
/// global ones only, and only when asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclReplicationData {
    pub indexes: crate::catalog::acl::AclIndexes,
    pub policies: Option<Vec<crate::acl::model::Policy>>,
    pub roles: Option<Vec<crate::acl::model::Role>>,
    pub tokens: Option<Vec<crate::acl::model::Token>>,
}

/// `/v1/acl/replication`, as the leader of a datacenter reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclReplicationStatus {
    pub enabled: bool,
    pub running: bool,
    pub source_datacenter: String,
    /// `policies` or `tokens` (Consul's names; "" when not enabled).
    pub replication_type: String,
    /// The primary's policy index last copied.
    pub replicated_index: u64,
    pub replicated_role_index: u64,
    pub replicated_token_index: u64,
    /// Unix milliseconds of the last successful round.
    pub last_success_ms: Option<u64>,
    /// Unix milliseconds of the last failed round, and why.
    pub last_error_ms: Option<u64>,
    pub last_error_message: String,
}
