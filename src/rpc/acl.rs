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
