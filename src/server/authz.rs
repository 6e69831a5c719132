//! The one authorisation hook every RPC method passes before its handler.
//!
//! `Server::serve` calls `authorize` for each call, in process or from the
//! wire, and a handler (`endpoints::Serve::serve`) cannot be called without
//! the `Authorized` proof it returns: the type has no public constructor, so
//! a path that skips the hook does not compile. Until ACLs land the hook
//! allows everything; the ACL work decides here, with the caller's token
//! from the `RequestContext` and the method's arguments.

use super::Server;
use crate::rpc::{Method, RequestContext, RpcError};

/// Proof that a call passed `Server::authorize`. Deliberately neither
/// `Clone` nor constructible outside this module: one proof per call.
pub struct Authorized(());

/// What the hook decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// No ACL system: every call is allowed (Consul with ACLs disabled).
    #[default]
    AllowAll,
    /// Every call is refused: lets a test prove that no method reaches its
    /// handler around the hook.
    #[cfg(test)]
    DenyAll,
}

impl Server {
    /// Decides whether the caller of `ctx` may make this call of `M`.
    pub(crate) fn authorize<M: Method>(
        &self,
        _ctx: &RequestContext,
        _args: &M,
    ) -> Result<Authorized, RpcError> {
        match self.authz {
            Policy::AllowAll => Ok(Authorized(())),
            #[cfg(test)]
            Policy::DenyAll => Err(RpcError::PermissionDenied(format!("Permission denied: {}", M::NAME))),
        }
    }
}
