//! A minimal HTTP/1.1 client: one keep-alive connection per load client
//! (hyper's connection API, no pool), reconnecting after an error. The same
//! code talks to consul-rs's `/v1` API and to etcd's JSON gateway, so the
//! client side costs the same for both.
//!
//! Owns: connection setup and one request/response exchange. Must not know
//! any API's paths or bodies.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("bad JSON in response ({e}): {}", truncate(&self.text(), 200)))
    }

    pub fn header_u64(&self, name: &str) -> Option<u64> {
        self.headers.get(name)?.to_str().ok()?.parse().ok()
    }
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

pub struct HttpConn {
    pub addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    pub timeout: Duration,
    /// Connections opened so far (1 + reconnects).
    pub connects: u64,
}

impl HttpConn {
    pub fn new(addr: SocketAddr) -> HttpConn {
        HttpConn { addr, host: addr.to_string(), sender: None, timeout: Duration::from_secs(15), connects: 0 }
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_some_and(|s| s.is_closed()) {
            self.sender = None;
        }
        if self.sender.is_none() {
            let stream = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(self.addr))
                .await
                .map_err(|_| format!("connect to {}: timed out", self.addr))?
                .map_err(|e| format!("connect to {}: {e}", self.addr))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake with {}: {e}", self.addr))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.connects += 1;
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or_else(|| format!("{}: no connection", self.addr))
    }

    /// One request; `body` None sends no body. JSON content type is set when
    /// a body is given (etcd's gateway wants it; consul-rs ignores it).
    pub async fn request(&mut self, method: Method, path: &str, body: Option<Bytes>) -> Result<Resp, String> {
        let timeout = self.timeout;
        let addr = self.addr;
        let host = self.host.clone();
        let result = tokio::time::timeout(timeout, async {
            let sender = self.connect().await?;
            sender.ready().await.map_err(|e| format!("{addr}: connection not ready: {e}"))?;
            let mut b =
                Request::builder().method(method).uri(path).header(hyper::header::HOST, host.as_str());
            if body.is_some() {
                b = b.header(hyper::header::CONTENT_TYPE, "application/json");
            }
            let req = b
                .body(Full::new(body.unwrap_or_default()))
                .map_err(|e| format!("bad request {path}: {e}"))?;
            let resp = sender.send_request(req).await.map_err(|e| format!("{addr}{path}: {e}"))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{addr}{path}: reading body: {e}"))?
                .to_bytes();
            Ok::<Resp, String>(Resp { status, headers, body })
        })
        .await;
        match result {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err(format!("{addr}{path}: timed out after {timeout:?}"))
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Result<Resp, String> {
        self.request(Method::GET, path, None).await
    }
}

/// A single request on a fresh connection.
pub async fn oneshot(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Bytes>,
    timeout: Duration,
) -> Result<Resp, String> {
    let mut c = HttpConn::new(addr);
    c.timeout = timeout;
    c.request(method, path, body).await
}
