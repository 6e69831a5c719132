//! Operator messages carried by the server RPC port: the Raft
//! configuration and autopilot's view of the servers. Plain data; the HTTP
//! layer renders them in Consul's JSON shapes.

use serde::{Deserialize, Serialize};

/// One server of the Raft configuration (`/v1/operator/raft/configuration`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftServer {
    /// The server's node ID (UUID).
    pub id: String,
    pub node: String,
    /// `ip:port` of its server RPC listener.
    pub address: String,
    pub leader: bool,
    pub voter: bool,
    /// The last log index this server is known to hold (the leader knows
    /// its followers' match indexes; other servers know only their own).
    pub last_index: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftConfiguration {
    pub servers: Vec<RaftServer>,
    /// The log index of the configuration entry.
    pub index: u64,
    /// The commit index on the answering server.
    pub commit_index: u64,
}

/// One server as autopilot judges it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHealth {
    pub id: String,
    pub name: String,
    pub address: String,
    /// Gossip status: alive, left, failed or none.
    pub serf_status: String,
    pub version: String,
    pub leader: bool,
    pub voter: bool,
    pub healthy: bool,
    pub last_index: u64,
    pub last_term: u64,
    /// Nanoseconds since the leader last heard from it (0 for the leader).
    pub last_contact_ns: u64,
    /// Unix milliseconds since when it has been healthy, if it is.
    pub stable_since_ms: Option<u64>,
}

/// Autopilot's summary (`/v1/operator/autopilot/health` and `/state`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutopilotHealth {
    pub healthy: bool,
    pub failure_tolerance: u32,
    pub servers: Vec<ServerHealth>,
}

/// `/v1/operator/usage`: one datacenter's service and node counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceUsage {
    /// Distinct service names.
    pub services: u64,
    pub service_instances: u64,
    /// Instances by mesh kind (`connect-native` for native services).
    pub connect_service_instances: std::collections::BTreeMap<String, u64>,
    /// Instances that are neither mesh proxies/gateways nor `consul`.
    pub billable_service_instances: u64,
    pub nodes: u64,
}
