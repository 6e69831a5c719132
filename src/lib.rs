//! consul-rs: a Consul-compatible service-discovery and configuration agent.
//!
//! # Layout
//! Modules the tests, examples and benchmarks use are `pub`; the rest are
//! `pub(crate)`. Dependencies point down this list (`tidy` checks it).
//! - `cli`: the `consul` command line (Go-style flags, one file per command).
//! - `daemon`: the composition root of `consul agent` (start, signals, stop);
//!   `cluster`: the gossip pools it starts and what membership triggers.
//! - `http`: the `/v1` API on axum; `accept`: the one TCP accept loop.
//! - `agent`: this node's handle; its local services and checks, anti-entropy,
//!   events, remote exec; `Agent::call` routes RPC methods to its delegate.
//! - `server`: the RPC methods' handlers, consistency, blocking queries,
//!   forwarding, and the leader's loops.
//! - `consensus`: openraft with our WAL, state machine and snapshots.
//! - `rpc`: the method table, request context, wire frames and connections.
//! - `authmethod`: `jwt` auth methods: token checks, JWKS fetching,
//!   binding-rule selectors and bind names (`consul login`).
//! - `catalog`: the replicated state and its Raft commands (no IO, no clock).
//! - `definition`: service and check definitions, validated.
//! - `gossip`: SWIM/serf membership; `dns`: the DNS interface; `checks`:
//!   health checks; `watch`: watch plans; `event`: user events; `filter`:
//!   the `?filter=` language; `snapshot`: snapshot archives.
//! - `api`: an HTTP client of our API (CLI, examples, tests).
//! - `config`, `datadir`, `logging`, `metrics`, `duration`, `fsutil`,
//!   `proc_group`, `sdnotify`, `version`: support.
//! - `fuzzing` (feature `test-hooks` only), `inject`: test tooling; the
//!   linearizability checker is the workspace crate `crates/lincheck`.
//!
//! See docs/ARCHITECTURE.md for the map, the invariants and request flows.

#![allow(clippy::result_large_err)]

pub(crate) mod accept;
pub mod acl;
pub(crate) mod agent;
pub mod api;
pub(crate) mod authmethod;
pub mod catalog;
pub(crate) mod checks;
pub mod cli;
pub(crate) mod cluster;
pub mod config;
pub mod config_entry;
pub mod consensus;
pub mod coordinate;
pub(crate) mod daemon;
pub(crate) mod datadir;
pub(crate) mod definition;
pub mod dns;
pub mod duration;
pub mod event;
pub mod filter;
pub(crate) mod fsutil;
#[cfg(feature = "test-hooks")]
pub mod fuzzing;
pub mod gossip;
pub(crate) mod http;
pub mod inject;
pub(crate) mod logging;
pub mod metrics;
pub(crate) mod proc_group;
pub(crate) mod reply;
pub mod rpc;
pub(crate) mod sdnotify;
pub mod server;
pub mod snapshot;
#[cfg(test)]
mod tidy;
pub(crate) mod tls;
pub(crate) mod version;
pub(crate) mod watch;
