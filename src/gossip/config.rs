//! What the agent hands to `Gossip::start`: identity, addresses, tags,
//! timings (Consul's `GossipSettings` for the pool), encryption settings,
//! file locations and timeouts.
//!
//! Owns: the configuration shape and its defaults. Must not read files.

use crate::config::runtime::GossipSettings;
use crate::gossip::LogScope;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which gossip pool this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// One per datacenter, all agents, serf_lan port (8301).
    Lan,
    /// Servers across datacenters, serf_wan port (8302).
    Wan,
}

impl Pool {
    pub fn label(self) -> &'static str {
        match self {
            Pool::Lan => "lan",
            Pool::Wan => "wan",
        }
    }
}

/// Direction of bytes seen by a [`WireTap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireDirection {
    UdpOut,
    UdpIn,
    TcpOut,
    TcpIn,
}

/// Observes every byte string exactly as it is written to or read from a
/// socket (after encryption / before decryption). A diagnostic and test
/// hook; it must be cheap and must not block.
pub type WireTap = Arc<dyn Fn(WireDirection, SocketAddr, &[u8]) + Send + Sync>;

#[derive(Clone)]
pub struct GossipConfig {
    /// LAN: the node name; WAN: `node.datacenter`.
    pub node_name: String,
    /// Address to bind UDP and TCP on (same port for both). Port 0 picks
    /// a free port (tests).
    pub bind: SocketAddr,
    /// Address peers should use; defaults to the bound address. Must be a
    /// specific IP.
    pub advertise: Option<SocketAddr>,
    pub tags: BTreeMap<String, String>,
    /// Consul's per-pool timings (LAN, WAN or dev profile).
    pub settings: GossipSettings,
    pub pool: Pool,
    /// Whether this agent is a server (only picks the log targets).
    pub server: bool,
    /// Initial gossip keys (base64), primary first: Consul's `encrypt`. Used
    /// only when there is no keyring file yet.
    pub keys: Vec<String>,
    /// `data_dir/serf/local.keyring` (LAN) or `remote.keyring` (WAN);
    /// `None` keeps keys in memory (`disable_keyring_file`, `-dev`).
    pub keyring_file: Option<PathBuf>,
    pub verify_incoming: bool,
    pub verify_outgoing: bool,
    /// `data_dir/serf/local.snapshot` (LAN) or `remote.snapshot` (WAN).
    pub snapshot_path: Option<PathBuf>,
    /// Rejoin the snapshot's peers even if we left gracefully last time.
    pub rejoin_after_leave: bool,
    /// Failed members are reaped after this (Consul: 72 h, at least 8 h).
    pub reconnect_timeout: Duration,
    /// Left members are kept this long (24 h).
    pub tombstone_timeout: Duration,
    /// Connect/read/write limit for stream (TCP) exchanges.
    pub tcp_timeout: Duration,
    /// Test hook; see [`WireTap`].
    pub wire_tap: Option<WireTap>,
    /// Consul's `disable_coordinates`.
    pub disable_coordinates: bool,
}

impl std::fmt::Debug for GossipConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GossipConfig")
            .field("node_name", &self.node_name)
            .field("bind", &self.bind)
            .field("advertise", &self.advertise)
            .field("pool", &self.pool)
            .field("keys", &self.keys.len())
            .field("keyring_file", &self.keyring_file)
            .field("snapshot_path", &self.snapshot_path)
            .finish_non_exhaustive()
    }
}

impl GossipConfig {
    /// Defaults for a pool: memberlist's LAN or WAN profile, TCPTimeout
    /// 10 s (LAN) / 30 s (WAN), reconnect 72 h, tombstones 24 h, no
    /// encryption, nothing on disk.
    pub fn new(node_name: impl Into<String>, bind: SocketAddr, pool: Pool) -> Self {
        let (settings, tcp_timeout) = match pool {
            Pool::Lan => (GossipSettings::lan(), Duration::from_secs(10)),
            Pool::Wan => (GossipSettings::wan(), Duration::from_secs(30)),
        };
        GossipConfig {
            node_name: node_name.into(),
            bind,
            advertise: None,
            tags: BTreeMap::new(),
            settings,
            pool,
            server: true,
            keys: Vec::new(),
            keyring_file: None,
            verify_incoming: true,
            verify_outgoing: true,
            snapshot_path: None,
            rejoin_after_leave: false,
            reconnect_timeout: Duration::from_secs(72 * 3600),
            tombstone_timeout: Duration::from_secs(24 * 3600),
            tcp_timeout,
            wire_tap: None,
            disable_coordinates: false,
        }
    }

    pub fn scope(&self) -> LogScope {
        match (self.pool, self.server) {
            (Pool::Wan, _) => LogScope::ServerWan,
            (Pool::Lan, true) => LogScope::ServerLan,
            (Pool::Lan, false) => LogScope::ClientLan,
        }
    }
}
