//! In-process tests of the check runners against real loopback servers
//! and real processes. Shared helpers live here; one file per concern.

mod alias_tests;
mod bench_tests;
mod grpc_tests;
mod http_tests;
mod net_tests;
mod runner_tests;
mod script_tests;
mod ttl_tests;

use super::schedule::probe_once;
use super::tls::TlsRoots;
use super::{CheckKind, CheckResult, CheckSpec, Runner, Status};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(super) const CERT_PEM: &str = include_str!("fixtures/cert.pem");
pub(super) const KEY_PEM: &str = include_str!("fixtures/key.pem");

/// A spec with a given timeout and Consul's other defaults.
pub(super) fn spec(id: &str, kind: CheckKind, timeout: Duration) -> CheckSpec {
    let mut spec = CheckSpec::new(id, kind);
    spec.timeout = timeout;
    spec
}

/// One run of a check, outside any runner.
pub(super) async fn probe(spec: &CheckSpec) -> (Status, String) {
    probe_once(spec, &TlsRoots::default()).await
}

pub(super) async fn probe_with_roots(spec: &CheckSpec, roots: &TlsRoots) -> (Status, String) {
    probe_once(spec, roots).await
}

pub(super) struct Harness {
    pub(super) runner: Runner,
    pub(super) results: mpsc::Receiver<CheckResult>,
    pub(super) tasks: TaskTracker,
    pub(super) shutdown: CancellationToken,
}

pub(super) fn harness(alias: Option<std::sync::Arc<dyn super::AliasSource>>) -> Harness {
    let (tx, rx) = mpsc::channel(64);
    let tasks = TaskTracker::new();
    let shutdown = CancellationToken::new();
    Harness { runner: Runner::new(tx, alias, tasks.clone(), shutdown.clone()), results: rx, tasks, shutdown }
}

impl Harness {
    /// The next result, or a test failure after `within`.
    pub(super) async fn next(&mut self, within: Duration) -> CheckResult {
        match tokio::time::timeout(within, self.results.recv()).await {
            Ok(Some(r)) => r,
            Ok(None) => panic!("results channel closed"),
            Err(_) => panic!("no check result within {within:?}"),
        }
    }

    /// Whether a result arrives within `within` (used with paused time).
    pub(super) async fn quiet_for(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, self.results.recv()).await.is_err()
    }

    /// Drops results already queued.
    pub(super) fn drain(&mut self) {
        while self.results.try_recv().is_ok() {}
    }
}

/// Polls `cond` until it holds or `within` passes.
pub(super) async fn wait_until<F, Fut>(within: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A server-side TLS acceptor for the fixture certificate (CN/SAN
/// localhost and 127.0.0.1).
pub(super) fn tls_acceptor(alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(CERT_PEM.as_bytes()).collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY_PEM.as_bytes()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}
