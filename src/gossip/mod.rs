//! Gossip membership for consul-rs: one module per concern, two sans-IO
//! cores and a tokio driver.
//!
//! - `swim`: the SWIM failure detector with Lifeguard (no IO, no clock).
//! - `serf`: tags, leave intents, Lamport clocks, user events, queries,
//!   reaping and reconnect on top of `swim` (no IO, no clock).
//! - `codec`, `crypto`, `transport`, `files`: bytes, the encryption
//!   envelope and keyring, sockets and frames, the keyring/snapshot files.
//! - `runtime` (private), `handle`, `config`, `member`: the driver task and
//!   the `Gossip` handle the agent uses. The driver defines what it hands
//!   back (`QueryEvent`, `KeyringResponse`), so `handle` depends on
//!   `runtime` and not the reverse.
//! - `error`: `GossipError`, the one error type of the handle API; each
//!   layer below has its own (`KeyringError`, `FileError`,
//!   `TransportError`, `SerfError`, `CodecError`), which it wraps.
//! - `sim`: a deterministic network + virtual clock for tests and
//!   measurements.
//!
//! Must not reach into the agent, catalog or consensus: the agent wires
//! membership into them. See docs/gossip.md for the design, defaults, wire
//! formats and measured figures.

/// Which pool and agent role log lines belong to; picks Consul's log
/// targets (`agent.server.memberlist.lan`, `agent.client.serf.lan`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogScope {
    #[default]
    ServerLan,
    ServerWan,
    ClientLan,
}

/// `glog!(scope, memberlist|serf, level, fields…, "message")`: a tracing
/// event with the Consul target for that scope and layer.
macro_rules! glog {
    ($scope:expr, memberlist, $lvl:ident, $($arg:tt)+) => {
        match $scope {
            $crate::gossip::LogScope::ServerLan => tracing::$lvl!(target: "agent.server.memberlist.lan", $($arg)+),
            $crate::gossip::LogScope::ServerWan => tracing::$lvl!(target: "agent.server.memberlist.wan", $($arg)+),
            $crate::gossip::LogScope::ClientLan => tracing::$lvl!(target: "agent.client.memberlist.lan", $($arg)+),
        }
    };
    ($scope:expr, serf, $lvl:ident, $($arg:tt)+) => {
        match $scope {
            $crate::gossip::LogScope::ServerLan => tracing::$lvl!(target: "agent.server.serf.lan", $($arg)+),
            $crate::gossip::LogScope::ServerWan => tracing::$lvl!(target: "agent.server.serf.wan", $($arg)+),
            $crate::gossip::LogScope::ClientLan => tracing::$lvl!(target: "agent.client.serf.lan", $($arg)+),
        }
    };
}

pub mod codec;
pub mod config;
pub mod crypto;
pub mod error;
pub mod files;
pub mod handle;
pub mod member;
pub mod pools;
pub mod serf;
pub mod sim;
pub mod swim;
pub mod transport;

mod runtime;

pub use config::{GossipConfig, Pool, WireDirection, WireTap};
pub use error::GossipError;
pub use handle::{Gossip, QueryResponses, QueryResult};
pub use member::{Member, MemberEvent, MemberStatus};
pub use pools::Pools;
pub use runtime::{KeyringResponse, QueryEvent};
pub use serf::query::{IncomingQuery, QueryParams, QueryRef};
pub use serf::UserEvent;
