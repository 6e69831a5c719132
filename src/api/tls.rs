//! HTTPS for the API client: Consul's TLS options (`-ca-file`, `-ca-path`,
//! `-client-cert`, `-client-key`, `-tls-server-name` and their
//! `CONSUL_*` environment variables, `CONSUL_HTTP_SSL`,
//! `CONSUL_HTTP_SSL_VERIFY`), the rustls settings made from them, and the
//! connector that speaks TLS to `https://` addresses. Kept apart from the
//! agent's own TLS: this module is a client of the boundary.

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How the client does TLS. Every field may come from a flag or from its
/// environment variable; flags win.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// `-ca-file` / `CONSUL_CACERT`: PEM bundle of CAs to trust.
    pub ca_file: Option<String>,
    /// `-ca-path` / `CONSUL_CAPATH`: a directory of PEM CA files.
    pub ca_path: Option<String>,
    /// `-client-cert` / `CONSUL_CLIENT_CERT` (for agents with `verify_incoming`).
    pub client_cert: Option<String>,
    /// `-client-key` / `CONSUL_CLIENT_KEY`.
    pub client_key: Option<String>,
    /// `-tls-server-name` / `CONSUL_TLS_SERVER_NAME`: the name to ask for
    /// and verify instead of the address's host.
    pub server_name: Option<String>,
    /// `CONSUL_HTTP_SSL=true`: use HTTPS for an address without a scheme.
    pub use_https: bool,
    /// `CONSUL_HTTP_SSL_VERIFY=false`: accept any server certificate.
    pub skip_verify: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|s| !s.is_empty())
}

fn env_bool(name: &str) -> Result<Option<bool>, String> {
    match env(name) {
        None => Ok(None),
        Some(v) => {
            parse_go_bool(&v).map(Some).ok_or_else(|| format!("Could not parse {name}: invalid syntax {v:?}"))
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl TlsOptions {
    /// The options the environment sets.
    pub fn from_env() -> Result<TlsOptions, String> {
        Ok(TlsOptions {
            ca_file: env("CONSUL_CACERT"),
            ca_path: env("CONSUL_CAPATH"),
            client_cert: env("CONSUL_CLIENT_CERT"),
            client_key: env("CONSUL_CLIENT_KEY"),
            server_name: env("CONSUL_TLS_SERVER_NAME"),
            use_https: env_bool("CONSUL_HTTP_SSL")?.unwrap_or(false),
            skip_verify: !env_bool("CONSUL_HTTP_SSL_VERIFY")?.unwrap_or(true),
        })
    }

    /// Applies flags over these options (a flag given wins over its
    /// environment variable).
    pub fn with_flags(
        mut self,
        ca_file: Option<&str>,
        ca_path: Option<&str>,
        client_cert: Option<&str>,
        client_key: Option<&str>,
        server_name: Option<&str>,
    ) -> TlsOptions {
        let set = |slot: &mut Option<String>, v: Option<&str>| {
            if let Some(v) = v {
                *slot = Some(v.to_string());
            }
        };
        set(&mut self.ca_file, ca_file);
        set(&mut self.ca_path, ca_path);
        set(&mut self.client_cert, client_cert);
        set(&mut self.client_key, client_key);
        set(&mut self.server_name, server_name);
        self
    }

    /// The rustls settings for these options.
    pub(super) fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?;
        let builder = if self.skip_verify {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(SkipVerify(provider)))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let mut config = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .and_then(|it| it.collect::<Result<_, _>>())
                    .map_err(|e| format!("Error loading client certificate {cert}: {e}"))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("Error loading client key {key}: {e}"))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| format!("Error loading client certificate: {e}"))?
            }
            (Some(_), None) => {
                return Err("client certificate given without a client key (-client-key)".into())
            }
            (None, Some(_)) => {
                return Err("client key given without a client certificate (-client-cert)".into())
            }
            (None, None) => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The CAs to trust: `ca_file` and `ca_path` when given, else the
    /// system's.
    fn roots(&self) -> Result<RootCertStore, String> {
        let mut store = RootCertStore::empty();
        let mut add_file = |path: &str| -> Result<(), String> {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| format!("Error loading CA file {path}: {e}"))?;
            if certs.is_empty() {
                return Err(format!("Error loading CA file {path}: no certificate found"));
            }
            for c in certs {
                store.add(c).map_err(|e| format!("Error loading CA file {path}: {e}"))?;
            }
            Ok(())
        };
        if let Some(f) = &self.ca_file {
            add_file(f)?;
        }
        if let Some(dir) = &self.ca_path {
            let entries = std::fs::read_dir(dir).map_err(|e| format!("Error loading CA path {dir}: {e}"))?;
            let mut files: Vec<_> =
                entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
            files.sort();
            for f in files {
                add_file(&f.to_string_lossy())?;
            }
        }
        if self.ca_file.is_none() && self.ca_path.is_none() {
            let native = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(native.certs);
        }
        Ok(store)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `CONSUL_HTTP_SSL_VERIFY=false` (and a check's `tls_skip_verify`): any
/// certificate, but the server must still hold the key of the one it sent.
#[derive(Debug)]
pub struct SkipVerify(pub Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A connection to the agent: plain or TLS.
pub enum ApiStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for ApiStream {
    fn connected(&self) -> Connected {
        match self {
            ApiStream::Plain(s) => s.connected(),
            ApiStream::Tls(s) => s.get_ref().0.connected(),
        }
    }
}

impl AsyncRead for ApiStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ApiStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ApiStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ApiStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ApiStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ApiStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ApiStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ApiStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ApiStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ApiStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens TCP connections and, for `https://`, runs the TLS handshake.
#[derive(Clone)]
pub struct Connector {
    http: HttpConnector,
    tls: Option<(Arc<rustls::ClientConfig>, Option<String>)>,
}

impl Connector {
    pub(super) fn new(http: HttpConnector, tls: Option<(Arc<rustls::ClientConfig>, Option<String>)>) -> Self {
        Connector { http, tls }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<ApiStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_string();
        let tls = self.tls.clone();
        let connecting = self.http.call(uri);
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            if !https {
                return Ok(TokioIo::new(ApiStream::Plain(tcp)));
            }
            let Some((config, server_name)) = tls else {
                return Err("https:// address but the client has no TLS settings".into());
            };
            let name = server_name.unwrap_or(host);
            let name = ServerName::try_from(name.clone())
                .map_err(|e| format!("invalid TLS server name {name:?}: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
            Ok(TokioIo::new(ApiStream::Tls(Box::new(stream))))
        })
    }
}
