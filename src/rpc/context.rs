//! The request context: what every call carries besides its own arguments.
//! Who is asking (the ACL token), where the call is going (`?dc=`), how a
//! read wants to be served (consistency mode, blocking index and wait),
//! and how far it has travelled between servers. One value, built once by
//! the front end, passed unchanged in process and over the wire, so a rule
//! that depends on any of these (ACLs, routing, blocking) reads it in one
//! place.

use super::message::QueryOptions;
use serde::{Deserialize, Serialize};

/// What a caller sends along with every RPC method.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestContext {
    /// The ACL token the caller presented (`X-Consul-Token`, `Authorization:
    /// Bearer`, `?token`); `None` for an anonymous caller.
    pub token: Option<String>,
    /// The datacenter the call is for; `None` (or this server's own name)
    /// means the local one. A server relays a call for another datacenter
    /// to a server of that datacenter over the WAN.
    pub datacenter: Option<String>,
    /// Consistency mode and blocking parameters (reads; ignored by writes).
    pub query: QueryOptions,
    /// Set by a server that forwarded the call to the server it believes
    /// leads: that server serves it only while it is the leader and never
    /// forwards it again (stale views cannot bounce a call between servers).
    pub leader_only: bool,
    /// Set by a server that relayed the call to another datacenter: it is
    /// never relayed a second time.
    pub relayed: bool,
}

impl RequestContext {
    /// A context with these read options and nothing else.
    pub fn query(query: QueryOptions) -> RequestContext {
        RequestContext { query, ..Default::default() }
    }

    /// The same caller and options, for the datacenter `dc` unless the
    /// context already names one.
    pub fn routed_to(mut self, dc: Option<String>) -> RequestContext {
        if self.datacenter.is_none() {
            self.datacenter = dc;
        }
        self
    }

    /// The foreign datacenter this call must be relayed to, if any.
    pub fn foreign_dc(&self, local: &str) -> Option<&str> {
        self.datacenter.as_deref().filter(|dc| !dc.is_empty() && !dc.eq_ignore_ascii_case(local))
    }
}
