//! The agent's own TLS: certificates, keys and CAs read from the files the
//! `tls` settings name, turned into rustls settings for the HTTPS listener,
//! the server port (accepting and dialing) and the agent's checks; and
//! swapped whole on reload.
//!
//! Owns: loading (`files.rs`), what a peer's certificate proves
//! (`identity.rs`: a server's certificate names `server.<dc>.<domain>`),
//! the dialing side's verifier (`verify.rs`), and the reloadable `Tls`
//! handle the listeners and the RPC pool ask once per connection. Must not
//! know protocols: the listeners and the RPC pool decide what to do with a
//! connection; this module only says which settings apply.
//!
//! Security rules kept here:
//! * `verify_incoming`: a client must present a certificate chained to the
//!   CA; without it the listener asks for none (and the server port then
//!   also accepts plain text, for rolling upgrades).
//! * `verify_outgoing`: the server port is dialed with TLS and the server's
//!   chain is verified against the CA.
//! * `verify_server_hostname`: the dialed server's certificate must name
//!   `server.<dc>.<domain>` (the target's datacenter), and, with
//!   `verify_incoming`, server-only calls (Raft, forwarded writes and
//!   reads) are accepted only from peers whose certificate names
//!   `server.<this dc>.<domain>`.

mod files;
pub mod identity;
mod verify;

use crate::accept;
use crate::config::tls::{CipherSuite, TlsProtocol, TlsSettings, TlsVersion};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

const TARGET: &str = "agent.tlsutil";

/// Why certificates could not be loaded; the agent refuses to start, and a
/// reload keeps the running certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("failed to read {what} file {}: {source}", .path.display())]
    Read { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("failed to parse {what} file {}: {reason}", .path.display())]
    Parse { what: &'static str, path: PathBuf, reason: String },
    #[error("tls.{surface}: {reason}")]
    Config { surface: &'static str, reason: String },
}

/// What one agent's TLS looks like right now; replaced whole on reload.
struct Loaded {
    settings: TlsSettings,
    https: Option<Arc<ServerConfig>>,
    rpc_server: Option<Arc<ServerConfig>>,
    rpc_client: Option<Arc<ClientConfig>>,
    checks: Option<CheckIdentity>,
}

/// The agent's certificate and CA for its checks
/// (`enable_agent_tls_for_checks`).
#[derive(Clone, Debug)]
pub struct CheckIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
    pub ca: Vec<CertificateDer<'static>>,
}

/// The agent's TLS handle: cheap to clone; every clone sees reloads.
#[derive(Clone)]
pub struct Tls {
    state: Arc<RwLock<Arc<Loaded>>>,
    datacenter: Arc<str>,
    /// The DNS domain without its trailing dot (`consul`).
    domain: Arc<str>,
}

impl Tls {
    /// Loads every file the settings name; any error stops the agent.
    pub fn load(settings: &TlsSettings, datacenter: &str, domain: &str) -> Result<Tls, TlsError> {
        let domain = domain.trim_end_matches('.');
        let loaded = build(settings)?;
        log_loaded(&loaded, "loaded");
        Ok(Tls {
            state: Arc::new(RwLock::new(Arc::new(loaded))),
            datacenter: datacenter.into(),
            domain: domain.into(),
        })
    }

    fn current(&self) -> Arc<Loaded> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the files again (renewed certificates) with `settings`. New
    /// connections use the new certificates; open ones keep theirs. On an
    /// error the running certificates stay and the error says why.
    pub fn reload(&self, settings: &TlsSettings) -> Result<(), TlsError> {
        let loaded = build(settings)?;
        log_loaded(&loaded, "reloaded");
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        Ok(())
    }

    /// The HTTPS listener's TLS.
    pub fn https_accept(&self, handshake_timeout: std::time::Duration) -> accept::TlsAccept {
        accept::TlsAccept {
            source: Arc::new(HttpsSource(self.clone())),
            mode: accept::TlsMode::Required,
            handshake_timeout,
        }
    }

    /// The server port's TLS: sniffed, so plain-text clients keep working
    /// while `verify_incoming` is off.
    pub fn rpc_accept(&self, handshake_timeout: std::time::Duration) -> accept::TlsAccept {
        accept::TlsAccept {
            source: Arc::new(RpcSource(self.clone())),
            mode: accept::TlsMode::Sniff,
            handshake_timeout,
        }
    }

    /// The name a server's certificate carries: `server.<dc>.<domain>`.
    pub fn server_name_for(&self, datacenter: &str) -> String {
        format!("server.{}.{}", datacenter.to_ascii_lowercase(), self.domain)
    }

    /// How to dial a server of `datacenter` (this one when `None`): the
    /// client settings and the name to ask for and verify; `None` when the
    /// server port is dialed in plain text (`verify_outgoing` off).
    pub fn rpc_dial(&self, datacenter: Option<&str>) -> Option<(Arc<ClientConfig>, ServerName<'static>)> {
        let loaded = self.current();
        let config = loaded.rpc_client.clone()?;
        let expected = self.server_name_for(datacenter.unwrap_or(&self.datacenter));
        let name = if loaded.settings.internal_rpc.verify_server_hostname {
            expected
        } else {
            loaded.settings.server_name.clone().unwrap_or(expected)
        };
        let name = ServerName::try_from(name).ok()?;
        Some((config, name))
    }

    /// The name a peer must prove to make server-only calls on the server
    /// port, when the settings ask for that check (`verify_incoming` and
    /// `verify_server_hostname` on `internal_rpc`).
    pub fn required_server_identity(&self) -> Option<String> {
        let s = &self.current().settings.internal_rpc;
        (s.verify_incoming && s.verify_server_hostname).then(|| self.server_name_for(&self.datacenter))
    }

    /// The agent's certificate and CA for HTTP and gRPC checks, when
    /// `enable_agent_tls_for_checks` is on.
    pub fn check_identity(&self) -> Option<CheckIdentity> {
        self.current().checks.clone()
    }
}

struct HttpsSource(Tls);

impl accept::TlsSource for HttpsSource {
    fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.0.current().https.clone()
    }
}

struct RpcSource(Tls);

impl accept::TlsSource for RpcSource {
    fn server_config(&self) -> Option<Arc<ServerConfig>> {
        self.0.current().rpc_server.clone()
    }

    fn plain_allowed(&self) -> bool {
        !self.0.current().settings.internal_rpc.verify_incoming
    }
}

fn log_loaded(l: &Loaded, verb: &str) {
    for (surface, p, has) in [
        ("https", &l.settings.https, l.https.is_some()),
        ("internal_rpc", &l.settings.internal_rpc, l.rpc_server.is_some()),
    ] {
        if !has {
            continue;
        }
        let Some(cert) = p.cert_file.as_ref().and_then(|f| files::cert_chain(f).ok()) else { continue };
        let Some(leaf) = cert.first() else { continue };
        let (serial, not_after) = identity::describe(leaf);
        tracing::info!(
            target: TARGET,
            surface,
            cert_file = %p.cert_file.as_deref().unwrap_or_else(|| std::path::Path::new("")).display(),
            serial = %serial,
            not_after = %not_after,
            verify_incoming = p.verify_incoming,
            "{verb} TLS certificate"
        );
    }
}

fn provider(p: &TlsProtocol) -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !p.cipher_suites.is_empty() {
        use rustls::crypto::ring::cipher_suite as cs;
        let wanted: Vec<rustls::SupportedCipherSuite> = p
            .cipher_suites
            .iter()
            .map(|s| match s {
                CipherSuite::EcdheEcdsaAes128Gcm => cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                CipherSuite::EcdheEcdsaAes256Gcm => cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                CipherSuite::EcdheEcdsaChacha20 => cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                CipherSuite::EcdheRsaAes128Gcm => cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                CipherSuite::EcdheRsaAes256Gcm => cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                CipherSuite::EcdheRsaChacha20 => cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            })
            .collect();
        // TLS 1.3 suites are not configurable (as in Go); the TLS 1.2 ones
        // are exactly the chosen ones, in the chosen order.
        let mut suites: Vec<_> = provider
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .copied()
            .collect();
        suites.extend(wanted);
        provider.cipher_suites = suites;
    }
    Arc::new(provider)
}

fn versions(p: &TlsProtocol) -> &'static [&'static SupportedProtocolVersion] {
    static BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    static ONLY_13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    match p.min_version {
        TlsVersion::V1_2 => BOTH,
        TlsVersion::V1_3 => ONLY_13,
    }
}

fn roots(p: &TlsProtocol) -> Result<Option<Arc<RootCertStore>>, TlsError> {
    if !p.has_ca() {
        return Ok(None);
    }
    Ok(Some(Arc::new(files::roots(p.ca_file.as_deref(), p.ca_path.as_deref())?)))
}

/// The listener side of one surface; `None` without a certificate.
fn server_config(
    surface: &'static str,
    p: &TlsProtocol,
    alpn: &[&[u8]],
) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    let (Some(cert_file), Some(key_file)) = (&p.cert_file, &p.key_file) else { return Ok(None) };
    let chain = files::cert_chain(cert_file)?;
    let key = files::private_key(key_file)?;
    let provider = provider(p);
    let err = |e: rustls::Error| TlsError::Config { surface, reason: e.to_string() };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(p))
        .map_err(err)?;
    let builder = match (p.verify_incoming, roots(p)?) {
        (true, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| TlsError::Config { surface, reason: e.to_string() })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| TlsError::Config {
        surface,
        reason: format!("certificate {} and key {}: {e}", cert_file.display(), key_file.display()),
    })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Some(Arc::new(config)))
}

/// The dialing side of the server port; `None` unless `verify_outgoing`.
fn rpc_client_config(p: &TlsProtocol) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    if !p.verify_outgoing {
        return Ok(None);
    }
    let surface = "internal_rpc";
    let Some(roots) = roots(p)? else {
        return Err(TlsError::Config {
            surface,
            reason: "verify_outgoing needs a CA (ca_file or ca_path)".into(),
        });
    };
    let provider = provider(p);
    let err = |e: rustls::Error| TlsError::Config { surface, reason: e.to_string() };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(p))
        .map_err(err)?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
        .build()
        .map_err(|e| TlsError::Config { surface, reason: e.to_string() })?;
    let builder = if p.verify_server_hostname {
        builder.with_webpki_verifier(verifier)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(verify::ChainOnly(verifier)))
    };
    let config = match (&p.cert_file, &p.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let chain = files::cert_chain(cert_file)?;
            let key = files::private_key(key_file)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| TlsError::Config {
                surface,
                reason: format!("certificate {} and key {}: {e}", cert_file.display(), key_file.display()),
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

fn check_identity(s: &TlsSettings) -> Result<Option<CheckIdentity>, TlsError> {
    if !s.enable_agent_tls_for_checks {
        return Ok(None);
    }
    let p = &s.https;
    let (chain, key) = match (&p.cert_file, &p.key_file) {
        (Some(c), Some(k)) => (files::cert_chain(c)?, files::private_key(k)?),
        _ => return Ok(None),
    };
    let mut ca = Vec::new();
    if let Some(f) = &p.ca_file {
        ca.extend(files::roots_as_certs(f)?);
    }
    Ok(Some(CheckIdentity { chain, key: Arc::new(key), ca }))
}

fn build(s: &TlsSettings) -> Result<Loaded, TlsError> {
    Ok(Loaded {
        https: server_config("https", &s.https, &[b"h2", b"http/1.1"])?,
        rpc_server: server_config("internal_rpc", &s.internal_rpc, &[])?,
        rpc_client: rpc_client_config(&s.internal_rpc)?,
        checks: check_identity(s)?,
        settings: s.clone(),
    })
}
