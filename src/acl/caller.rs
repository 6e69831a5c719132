//! A resolved caller: the token's AccessorID and what it may do, and
//! Consul's text for what it may not.

use super::authorizer::Authorizer;

/// Who a caller is and what they may do.
pub struct Identity {
    /// The token's AccessorID (the anonymous token's for no token); ""
    /// when ACLs are off.
    pub accessor_id: String,
    pub authz: Authorizer,
    /// Unix ms after which the token is no longer valid.
    expires_ms: Option<u64>,
    /// A digest of what decided `authz` (the token's resolved rules): two
    /// resolutions of one secret with equal fingerprints grant the same.
    /// A parked blocking query compares it after any ACL change to tell
    /// whether the change was to its caller's token (issue 22).
    fingerprint: u64,
}

impl Identity {
    pub fn new(accessor_id: String, authz: Authorizer, expires_ms: Option<u64>) -> Identity {
        Identity { accessor_id, authz, expires_ms, fingerprint: 0 }
    }

    /// Sets the digest of the resolved rules `authz` was built from.
    pub fn with_fingerprint(mut self, fingerprint: u64) -> Identity {
        self.fingerprint = fingerprint;
        self
    }

    /// The digest of what decided `authz` (0: not tracked).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Unix ms after which the token is no longer valid.
    pub fn expires_ms(&self) -> Option<u64> {
        self.expires_ms
    }

    /// The answer when ACLs are disabled: everything is allowed.
    pub fn unrestricted() -> Identity {
        Identity::new(String::new(), Authorizer::management(), None)
    }

    /// Whether the token is still valid at `now_ms` (Unix milliseconds).
    pub fn valid_at(&self, now_ms: u64) -> bool {
        self.expires_ms.is_none_or(|t| t > now_ms)
    }

    /// Consul's refusal text for a missing permission, `on` naming the
    /// segment (key, service, node...) when there is one.
    pub fn denied_text(&self, permission: &str, on: Option<&str>) -> String {
        let accessor = &self.accessor_id;
        match on {
            Some(seg) => format!(
                "Permission denied: token with AccessorID '{accessor}' lacks permission '{permission}' on {seg:?}"
            ),
            None => format!("Permission denied: token with AccessorID '{accessor}' lacks permission '{permission}'"),
        }
    }
}
