//! The gossip pools one agent runs: the LAN pool of its datacenter, and on
//! servers the WAN pool of every datacenter's servers. A plain pair of
//! handles, shared by the agent (members, joins, events) and the server
//! (`?dc=` routing), which is why it lives here below both.

use super::handle::Gossip;

/// This agent's gossip pools.
#[derive(Clone)]
pub struct Pools {
    pub lan: Gossip,
    /// Servers only (and not with `ports.serf_wan = -1`).
    pub wan: Option<Gossip>,
}
