//! Health-check runners: execute the checks registered on this agent
//! (script, HTTP(S), TCP, UDP, gRPC, TTL, alias) and report each check's
//! status and output on a channel.
//!
//! Owns: running checks, their timeouts (killing script process groups),
//! output capture and Consul's output wording, the success/failure
//! counters. Must not touch: the agent's local state, the catalog, anti-
//! entropy, the HTTP API, config parsing, or the `enable_script_checks` /
//! `enable_local_script_checks` gate: the agent validates a definition,
//! applies the gate and defaults, then hands a `CheckSpec` to `Runner`.
//!
//! See docs/checks.md for every kind's statuses and outputs.
//!
//! Layout: `spec` (the data), `runner` (start/stop/TTL updates),
//! `schedule` (the periodic loop), `counters`, `reporter` (the result
//! gate), one file per probe (`script`, `http`, `tcp`, `udp`, `grpc`),
//! `ttl`, `alias`, and support (`output`, `tls`, `neterr`).

mod alias;
mod counters;
mod grpc;
mod http;
mod neterr;
mod output;
mod reporter;
mod runner;
mod schedule;
mod script;
mod spec;
mod tcp;
pub(crate) mod tls;
mod ttl;
mod udp;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future (what `AliasSource` returns).
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub use alias::{alias_health, AliasHealth, AliasSource, AliasedCheck};
pub use runner::Runner;
pub use spec::{CheckKind, CheckResult, CheckSpec, Status, MIN_INTERVAL};
