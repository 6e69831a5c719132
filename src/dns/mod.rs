//! The DNS interface: `*.service.<domain>`, `*.node.<domain>`, `.addr.`,
//! reverse lookups, SOA/NS at the apex, and forwarding of other names to
//! recursors, on UDP and TCP (port 8600 by default).
//!
//! Owns: everything between a DNS packet and the `DnsBackend` trait. Must
//! not read or write the catalog directly: the agent implements
//! `DnsBackend` and starts the server with `serve`.
//!
//! Flow: `server` (sockets) → `handler` (request checks, flags, EDNS) →
//! `name` (typed query) → `answer` (records, codes; `records` + `cache` +
//! `truncate` for services) or `recursor` (names outside our domains);
//! `wire` encodes the reply. Hot path: a UDP service answer is also left
//! pre-encoded (`compiled`) in `hot`, and later packets of the same plain
//! shape (`packet`) are answered from it by the receive loop directly,
//! while the catalog index and the DNS token's ACL state are unchanged.
//! See docs/dns.md.

pub mod answer;
pub mod backend;
pub mod cache;
pub mod compiled;
pub mod config;
pub mod handler;
pub mod hot;
pub mod name;
pub mod packet;
pub mod records;
pub mod recursor;
pub mod server;
pub mod truncate;
pub mod udp_batch;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use backend::{BackendError, BoxFut, DnsBackend, Health, NodeInfo, ReverseHit, ServiceInstance};
pub use config::{default_dns_settings, DnsConfigError, DnsServerConfig};
pub use handler::DnsHandler;
pub use name::DnsQuery;

/// Starts the DNS server on every address (UDP and TCP each) and returns the
/// bound UDP addresses (TCP uses the same ports; port 0 picks one). Runs
/// until `shutdown` is cancelled; every task is spawned on `tasks`, so
/// `tasks.close(); tasks.wait().await` waits for a graceful stop.
pub async fn serve(
    backend: Arc<dyn DnsBackend>,
    settings: DnsServerConfig,
    addrs: &[SocketAddr],
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Result<Vec<SocketAddr>, String> {
    let handler = DnsHandler::new(backend, settings).map_err(|e| e.to_string())?;
    server::serve_handler(handler, addrs, shutdown, tasks).await
}
