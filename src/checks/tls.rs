//! TLS client side of HTTPS, TCP+TLS and gRPC+TLS probes (rustls with the
//! `ring` provider). Owns the trust roots (the system store, loaded once,
//! plus CA certificates the agent adds); `tls_skip_verify` uses the API
//! client's verifier (`api::tls::SkipVerify`).
//! Must not know anything about the agent's own TLS listeners.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::sync::{Arc, OnceLock};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Trust roots shared by every check of one runner.
#[derive(Debug, Default)]
pub(crate) struct TlsRoots {
    extra: Vec<CertificateDer<'static>>,
    store: OnceLock<Arc<RootCertStore>>,
    /// The agent's certificate, presented by every TLS probe
    /// (`enable_agent_tls_for_checks`).
    client: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
}

impl TlsRoots {
    /// Trusts these CA certificates too.
    pub(crate) fn add_certs(&mut self, certs: &[CertificateDer<'static>]) {
        self.extra.extend(certs.iter().cloned());
        self.store = OnceLock::new();
    }

    /// Presents this certificate to servers that ask for one.
    pub(crate) fn set_client_cert(
        &mut self,
        chain: Vec<CertificateDer<'static>>,
        key: Arc<PrivateKeyDer<'static>>,
    ) {
        self.client = Some((chain, key));
    }

    /// Adds the certificates of a PEM bundle; returns how many were added.
    pub(crate) fn add_pem(&mut self, pem: &[u8]) -> Result<usize, String> {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("failed to parse CA certificate PEM: {e}"))?;
            self.extra.push(cert);
            added += 1;
        }
        if added == 0 {
            return Err("failed to parse CA certificate PEM: no certificate found".to_string());
        }
        // Rebuild on next use.
        self.store = OnceLock::new();
        Ok(added)
    }

    fn store(&self) -> Arc<RootCertStore> {
        self.store
            .get_or_init(|| {
                let mut store = RootCertStore::empty();
                let native = rustls_native_certs::load_native_certs();
                for err in &native.errors {
                    tracing::warn!(target: "agent", error = %err, "failed to load a system CA certificate for TLS checks");
                }
                let (ok, bad) = store.add_parsable_certificates(native.certs);
                let (extra_ok, extra_bad) = store.add_parsable_certificates(self.extra.iter().cloned());
                if bad + extra_bad > 0 {
                    tracing::warn!(target: "agent", ignored = bad + extra_bad, "ignored unparsable CA certificates for TLS checks");
                }
                tracing::debug!(target: "agent", system = ok, extra = extra_ok, "loaded CA certificates for TLS checks");
                Arc::new(store)
            })
            .clone()
    }
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

/// How one probe wants its TLS.
pub(crate) struct TlsParams<'a> {
    pub(crate) skip_verify: bool,
    /// SNI and the name the certificate must match; defaults to the host.
    pub(crate) server_name: Option<&'a str>,
    pub(crate) alpn: &'a [&'a [u8]],
}

fn client_config(roots: &TlsRoots, params: &TlsParams<'_>) -> Result<ClientConfig, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let builder = if params.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::api::tls::SkipVerify(provider())))
    } else {
        builder.with_root_certificates(roots.store())
    };
    let mut config = match &roots.client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|e| format!("tls: the agent's certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = params.alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Runs a TLS handshake over `tcp`. Errors are check output text.
pub(crate) async fn connect(
    roots: &TlsRoots,
    params: &TlsParams<'_>,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, String> {
    let config = client_config(roots, params)?;
    let name = params.server_name.filter(|n| !n.is_empty()).unwrap_or(host);
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|e| format!("tls: invalid server name {name:?}: {e}"))?;
    TlsConnector::from(Arc::new(config)).connect(server_name, tcp).await.map_err(|e| format!("tls: {e}"))
}
