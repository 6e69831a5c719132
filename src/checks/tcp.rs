//! TCP checks: passing when a connection (and, with `tcp_use_tls`, a TLS
//! handshake) completes within the timeout. Owns only its own socket.

use super::neterr;
use super::spec::Status;
use super::tls::{self, TlsParams, TlsRoots};
use std::time::Duration;
use tokio::net::TcpStream;

pub(crate) struct TcpProbe<'a> {
    pub(crate) address: &'a str,
    pub(crate) use_tls: bool,
    pub(crate) tls_skip_verify: bool,
    pub(crate) tls_server_name: Option<&'a str>,
}

pub(crate) async fn run(probe: &TcpProbe<'_>, timeout: Duration, roots: &TlsRoots) -> (Status, String) {
    let attempt = async {
        // Tries every resolved address in turn, like Go's dialer.
        let tcp =
            TcpStream::connect(probe.address).await.map_err(|e| neterr::dial("tcp", probe.address, &e))?;
        if probe.use_tls {
            let host = neterr::split_host_port(probe.address).map_or(probe.address, |(h, _)| h);
            let params = TlsParams {
                skip_verify: probe.tls_skip_verify,
                server_name: probe.tls_server_name,
                alpn: &[],
            };
            let _stream = tls::connect(roots, &params, host, tcp).await?;
        }
        Ok::<(), String>(())
    };
    let kind = if probe.use_tls { "TCP+TLS" } else { "TCP" };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(())) => (Status::Passing, format!("{kind} connect {}: Success", probe.address)),
        Ok(Err(e)) => (Status::Critical, e),
        Err(_) => (Status::Critical, neterr::dial_timeout("tcp", probe.address)),
    }
}
