//! A bounded HTTP(S) GET for JWKS and OIDC discovery documents: one
//! request, a deadline over connect, TLS, headers and body together, and a
//! body size limit, so a slow or hostile key server can delay a login by
//! at most the deadline and never holds the agent.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;

/// How long one fetch may take, start to end.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest document accepted.
pub const MAX_BODY: usize = 1024 * 1024;

fn tls_config(ca_pem: &str) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if ca_pem.trim().is_empty() {
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
    } else {
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|_| "could not parse CA PEM value successfully".to_string())?;
            roots.add(cert).map_err(|e| format!("could not use CA certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("could not parse CA PEM value successfully".into());
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// Checks a CA PEM without fetching anything (method creation).
pub fn check_ca(ca_pem: &str) -> Result<(), String> {
    if ca_pem.trim().is_empty() {
        return Ok(());
    }
    tls_config(ca_pem).map(|_| ())
}

/// GETs `url` (http or https; `ca_pem`: the CA to trust for https, ""
/// the system's), within `FETCH_TIMEOUT`; the body of a 2xx answer.
pub async fn get(url: &str, ca_pem: &str) -> Result<Bytes, String> {
    match tokio::time::timeout(FETCH_TIMEOUT, get_inner(url, ca_pem)).await {
        Ok(r) => r,
        Err(_) => Err(format!("Get {url:?}: no answer within {}", crate::duration::format(FETCH_TIMEOUT))),
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

async fn get_inner(url: &str, ca_pem: &str) -> Result<Bytes, String> {
    let fail = |e: String| format!("Get {url:?}: {e}");
    let uri: hyper::Uri = url.parse().map_err(|e| fail(format!("invalid URL: {e}")))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(fail("unsupported protocol scheme".into())),
    };
    let host = uri.host().ok_or_else(|| fail("URL has no host".into()))?.to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let tcp =
        tokio::net::TcpStream::connect((bare_host.as_str(), port)).await.map_err(|e| fail(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if https {
        let config = tls_config(ca_pem).map_err(fail)?;
        let name = ServerName::try_from(bare_host.clone()).map_err(|e| fail(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| fail(format!("tls: {e}")))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(&host).to_string();
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, "application/json")
        .header(hyper::header::USER_AGENT, "consul-rs")
        .body(Empty::<Bytes>::new())
        .map_err(|e| fail(e.to_string()))?;
    let result = async {
        let resp = sender.send_request(req).await.map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| fail(format!("reading body: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(fail(format!("{status}: {}", String::from_utf8_lossy(&body[..body.len().min(200)]))));
        }
        Ok(body)
    }
    .await;
    driver.abort();
    result
}
