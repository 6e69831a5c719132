//! A small client for the `/v1` HTTP API, used by the CLI, the examples and
//! the tests, like Consul's own `api` package. It is a client of the
//! boundary: it depends on nothing server-side.

pub mod tls;
pub mod token;

pub use tls::TlsOptions;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Where to reach an agent and with which token.
#[derive(Clone, Debug, Default)]
pub struct ClientConfig {
    /// `host:port`, `http://host:port` or `https://host:port`.
    pub address: String,
    pub token: Option<String>,
    pub datacenter: Option<String>,
    /// HTTPS settings (used for `https://` addresses, or any address with
    /// `use_https`).
    pub tls: TlsOptions,
}

impl ClientConfig {
    /// Applies Consul's CLI rules: flag, else `CONSUL_HTTP_ADDR`, else
    /// `127.0.0.1:8500`; the token as `token::resolve` picks it from the
    /// flags and `CONSUL_HTTP_TOKEN` / `CONSUL_HTTP_TOKEN_FILE`; TLS options
    /// from the environment (`TlsOptions::from_env`; callers with flags
    /// apply them over it).
    pub fn resolve(
        http_addr: Option<&str>,
        token: Option<&str>,
        token_file: Option<&str>,
        datacenter: Option<&str>,
    ) -> Result<ClientConfig, String> {
        let address = http_addr
            .map(str::to_string)
            .or_else(|| std::env::var("CONSUL_HTTP_ADDR").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "127.0.0.1:8500".to_string());
        let token = token::resolve(token, token_file, token::process_env).map_err(|e| e.to_string())?;
        Ok(ClientConfig {
            address,
            token,
            datacenter: datacenter.map(str::to_string),
            tls: TlsOptions::from_env()?,
        })
    }
}

/// A response: status, headers and the whole body.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl ApiResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn index(&self) -> Option<u64> {
        self.headers.get("X-Consul-Index")?.to_str().ok()?.parse().ok()
    }

    /// Parses the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("Unexpected response: {e}: {}", self.text()))
    }
}

#[derive(Clone)]
pub struct Client {
    base: String,
    cfg: ClientConfig,
    http: HyperClient<tls::Connector, Full<Bytes>>,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Client, String> {
        let addr = cfg.address.trim_end_matches('/');
        let base = if let Some(rest) = addr.strip_prefix("http://") {
            // CONSUL_HTTP_SSL=true upgrades only addresses without a scheme.
            format!("http://{rest}")
        } else if let Some(rest) = addr.strip_prefix("https://") {
            format!("https://{rest}")
        } else if addr.starts_with("unix://") {
            return Err(format!("{addr}: unix:// addresses are not supported by this client yet"));
        } else if cfg.tls.use_https {
            format!("https://{addr}")
        } else {
            format!("http://{addr}")
        };
        let tls = if base.starts_with("https://") {
            Some((std::sync::Arc::new(cfg.tls.client_config()?), cfg.tls.server_name.clone()))
        } else {
            None
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let http = HyperClient::builder(TokioExecutor::new()).build(tls::Connector::new(connector, tls));
        Ok(Client { base, cfg, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request to `path_and_query` (which starts with `/v1/`).
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
    ) -> Result<ApiResponse, String> {
        let mut url = format!("{}{}", self.base, path_and_query);
        if let Some(dc) = &self.cfg.datacenter {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("dc=");
            url.push_str(&encode(dc));
        }
        let mut req = Request::builder().method(method.clone()).uri(&url);
        if let Some(t) = &self.cfg.token {
            req = req.header("X-Consul-Token", t);
        }
        let req = req.body(Full::new(body.unwrap_or_default())).map_err(|e| e.to_string())?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| format!("{method} \"{url}\": {}", describe_hyper(&e)))?;
        let (parts, body) = resp.into_parts();
        let body =
            body.collect().await.map_err(|e| format!("{method} \"{url}\": reading body: {e}"))?.to_bytes();
        Ok(ApiResponse { status: parts.status, headers: parts.headers, body })
    }

    /// Like `call`, but reports the body's bytes as they arrive, for
    /// progress display of long transfers (snapshots).
    pub async fn download(
        &self,
        path_and_query: &str,
        mut progress: impl FnMut(u64),
    ) -> Result<ApiResponse, String> {
        let mut url = format!("{}{}", self.base, path_and_query);
        if let Some(dc) = &self.cfg.datacenter {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("dc=");
            url.push_str(&encode(dc));
        }
        let mut req = Request::builder().method(Method::GET).uri(&url);
        if let Some(t) = &self.cfg.token {
            req = req.header("X-Consul-Token", t);
        }
        let req = req.body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
        let resp =
            self.http.request(req).await.map_err(|e| format!("GET \"{url}\": {}", describe_hyper(&e)))?;
        let (parts, mut body) = resp.into_parts();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("GET \"{url}\": reading body: {e}"))?;
            if let Some(data) = frame.data_ref() {
                buf.extend_from_slice(data);
                progress(buf.len() as u64);
            }
        }
        let resp = ApiResponse { status: parts.status, headers: parts.headers, body: Bytes::from(buf) };
        if !resp.status.is_success() {
            return Err(format!(
                "Unexpected response code: {} ({})",
                resp.status.as_u16(),
                resp.text().trim_end()
            ));
        }
        Ok(resp)
    }

    /// Opens a long-lived GET (`/v1/agent/monitor`): the body as it
    /// arrives, once the agent has answered 2xx.
    pub async fn stream(&self, path_and_query: &str) -> Result<hyper::body::Incoming, String> {
        let url = format!("{}{}", self.base, path_and_query);
        let mut req = Request::builder().method(Method::GET).uri(&url);
        if let Some(t) = &self.cfg.token {
            req = req.header("X-Consul-Token", t);
        }
        let req = req.body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
        let resp =
            self.http.request(req).await.map_err(|e| format!("GET \"{url}\": {}", describe_hyper(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let text = match resp.into_body().collect().await {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim_end().to_string(),
                Err(e) => e.to_string(),
            };
            return Err(format!("Unexpected response code: {} ({text})", status.as_u16()));
        }
        Ok(resp.into_body())
    }

    /// Sends a request and turns any non-2xx status into Consul's
    /// `Unexpected response code: N (body)` error.
    pub async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
    ) -> Result<ApiResponse, String> {
        let resp = self.request(method, path_and_query, body).await?;
        if !resp.status.is_success() {
            return Err(format!(
                "Unexpected response code: {} ({})",
                resp.status.as_u16(),
                resp.text().trim_end()
            ));
        }
        Ok(resp)
    }
}

fn describe_hyper(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error;
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// Percent-encodes a path segment or query value (keeps `/` in keys).
pub fn encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}
