//! The watcher fleet over HTTP/2 over TLS: every watcher is one stream,
//! 1,000 per connection (the agent's `max_concurrent_streams`), so the
//! number held is not bounded by file descriptors and the agent keeps no
//! per-connection HTTP/1.1 buffers per watcher.
//!
//! The agent gets a throw-away CA and server certificate made by its own
//! `consul tls ca create` / `consul tls cert create -server`, and an HTTPS
//! listener (`ports.https`, `tls.defaults`); the client speaks `h2` by ALPN
//! with hyper's HTTP/2 client over tokio-rustls (ring).
//!
//! Owns: the TLS material, the HTTPS agent configuration and the HTTP/2
//! fleet. The measurements are in `watch.rs`.

use super::watch::Woke;
use crate::ctx::Ctx;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// Streams per connection: the agent's HTTP/2 `max_concurrent_streams`.
pub const STREAMS_PER_CONN: usize = 1_000;

/// The agent's HTTPS port (Consul's default when enabled).
pub const HTTPS_PORT: u16 = 8501;

/// Runs `consul <args>` in `dir` and returns its standard output.
fn consul_cli(ctx: &Ctx, dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(&ctx.consul)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("failed to run consul {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!("consul {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Makes a CA and a server certificate valid for `ip` in `dir`, writes the
/// agent configuration that enables HTTPS with them, and returns
/// (the `-config-file` argument, the CA file for the client).
pub fn https_agent_config(ctx: &Ctx, dir: &Path, ip: Ipv4Addr) -> Result<(String, PathBuf), String> {
    consul_cli(ctx, dir, &["tls", "ca", "create"])?;
    let out = consul_cli(
        ctx,
        dir,
        &["tls", "cert", "create", "-server", "-additional-ipaddress", &ip.to_string()],
    )?;
    // "==> Saved <cert>" then "==> Saved <key>", after the CA's own lines.
    let saved: Vec<PathBuf> =
        out.lines().filter_map(|l| l.strip_prefix("==> Saved ")).map(|f| dir.join(f.trim())).collect();
    let [cert, key] = saved.as_slice() else {
        return Err(format!("consul tls cert create: expected a certificate and a key, got:\n{out}"));
    };
    let ca = dir.join("consul-agent-ca.pem");
    let json = serde_json::json!({
        "ports": {"https": HTTPS_PORT},
        "tls": {"defaults": {"ca_file": ca, "cert_file": cert, "key_file": key}},
    });
    let file = dir.join("https.json");
    std::fs::write(&file, json.to_string())
        .map_err(|e| format!("failed to write {}: {e}", file.display()))?;
    Ok((format!("-config-file={}", file.display()), ca))
}

fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    for c in certs {
        let c = c.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("rustls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Watchers as HTTP/2 streams. Aborts every stream and connection on drop.
pub struct H2Fleet {
    pub woke: Woke,
    pub failed: Arc<Mutex<Vec<String>>>,
    config: Arc<rustls::ClientConfig>,
    https: SocketAddr,
    /// The connection being filled and how many streams it carries.
    current: Option<(SendRequest<Empty<Bytes>>, usize)>,
    pub connections: usize,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl H2Fleet {
    pub fn new(capacity: usize, https: SocketAddr, ca: &Path) -> Result<H2Fleet, String> {
        Ok(H2Fleet {
            woke: Arc::new(Mutex::new(vec![None; capacity])),
            failed: Arc::default(),
            config: client_config(ca)?,
            https,
            current: None,
            connections: 0,
            tasks: Vec::new(),
        })
    }

    async fn connect(&mut self) -> Result<SendRequest<Empty<Bytes>>, String> {
        let tcp = tokio::net::TcpStream::connect(self.https)
            .await
            .map_err(|e| format!("connect {}: {e}", self.https))?;
        let name = ServerName::IpAddress(self.https.ip().into());
        let tls = tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {}: {e}", self.https))?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2".as_slice()) {
            return Err(format!("{} did not negotiate h2 by ALPN", self.https));
        }
        let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP/2 handshake with {}: {e}", self.https))?;
        let failed = self.failed.clone();
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = conn.await {
                if let Ok(mut f) = failed.lock() {
                    f.push(format!("HTTP/2 connection: {e}"));
                }
            }
        }));
        self.connections += 1;
        Ok(sender)
    }

    /// Opens watchers `ids` (`GET /v1/kv/watch/<id>?index=<index>&wait=10m`),
    /// filling each connection to `STREAMS_PER_CONN` streams before the next.
    pub async fn open(&mut self, ids: std::ops::Range<usize>, index: u64) -> Result<(), String> {
        for id in ids {
            let sender = match self.current.take() {
                Some((s, n)) if n < STREAMS_PER_CONN && !s.is_closed() => {
                    self.current = Some((s.clone(), n + 1));
                    s
                }
                _ => {
                    let s = self.connect().await?;
                    self.current = Some((s.clone(), 1));
                    s
                }
            };
            let uri = format!("https://{}/v1/kv/watch/{id}?index={index}&wait=10m", self.https);
            let (woke, failed) = (self.woke.clone(), self.failed.clone());
            self.tasks.push(tokio::spawn(watcher(sender, uri, id, woke, failed)));
        }
        Ok(())
    }

    pub fn failures(&self) -> (usize, Option<String>) {
        self.failed.lock().map(|f| (f.len(), f.first().cloned())).unwrap_or((0, None))
    }
}

async fn watcher(
    mut sender: SendRequest<Empty<Bytes>>,
    uri: String,
    id: usize,
    woke: Woke,
    failed: Arc<Mutex<Vec<String>>>,
) {
    let req = match hyper::Request::get(&uri).body(Empty::new()) {
        Ok(r) => r,
        Err(e) => {
            if let Ok(mut f) = failed.lock() {
                f.push(format!("request {uri}: {e}"));
            }
            return;
        }
    };
    match sender.send_request(req).await {
        Ok(resp) => {
            let at = Instant::now();
            if let Ok(mut w) = woke.lock() {
                if let Some(slot) = w.get_mut(id) {
                    *slot = Some((at, resp.status().as_u16()));
                }
            }
        }
        Err(e) => {
            if let Ok(mut f) = failed.lock() {
                f.push(format!("watcher {id}: {e}"));
            }
        }
    }
}

impl Drop for H2Fleet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
