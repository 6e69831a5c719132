//! consul-rs: a Consul-compatible service-discovery and configuration agent.
//!
//! # Layout
//! - `cli`: the `consul` command line (Go-style flags, one file per command).
//! - `config`: config files and flags → `RuntimeConfig`.
//! - `daemon`: the composition root of `consul agent` (start, signals, stop).
//! - `agent`: this node's handle; routes requests to its delegate.
//! - `server`: server-mode endpoints, consistency and blocking queries.
//! - `consensus`: openraft with our WAL, state machine and snapshots.
//! - `catalog`: the replicated state and its Raft commands (no IO).
//! - `rpc`: request options, metadata and errors shared by every endpoint.
//! - `http`: the `/v1` API on axum.
//! - `api`: an HTTP client of that API (CLI, examples, tests).
//! - `gossip`, `cluster`: SWIM/serf membership and what the agent does with it.
//! - `dns`: the DNS interface; `checks`: health checks; `watch`: watch plans.
//! - `snapshot`: snapshot archives (save, restore, inspect).
//! - `datadir`, `logging`, `metrics`, `duration`, `version`: support.
//!
//! See docs/ARCHITECTURE.md for the map, the invariants and request flows.

#![allow(clippy::result_large_err)]

pub mod agent;
pub mod api;
pub mod catalog;
pub mod checks;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod consensus;
pub mod daemon;
pub mod datadir;
pub mod dns;
pub mod duration;
pub mod event;
pub mod filter;
pub mod fsutil;
#[cfg(feature = "test-hooks")]
pub mod fuzzing;
pub mod gossip;
pub mod http;
pub mod inject;
pub mod logging;
pub mod metrics;
pub mod rpc;
pub mod sdnotify;
pub mod server;
pub mod snapshot;
pub mod version;
pub mod watch;
