//! A small client for the `/v1` HTTP API, used by the CLI, the examples and
//! the tests, like Consul's own `api` package. It is a client of the
//! boundary: it depends on nothing server-side.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub mod token;

/// Where to reach an agent and with which token.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `host:port` or `http://host:port`.
    pub address: String,
    pub token: Option<String>,
    pub datacenter: Option<String>,
}

impl ClientConfig {
    /// Applies Consul's CLI rules: flag, else `CONSUL_HTTP_ADDR`, else
    /// `127.0.0.1:8500`; the token as `token::resolve` picks it from the
    /// flags and `CONSUL_HTTP_TOKEN` / `CONSUL_HTTP_TOKEN_FILE`.
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
        Ok(ClientConfig { address, token, datacenter: datacenter.map(str::to_string) })
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
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Client, String> {
        let addr = cfg.address.trim_end_matches('/');
        let base = if let Some(rest) = addr.strip_prefix("http://") {
            format!("http://{rest}")
        } else if addr.starts_with("https://") || addr.starts_with("unix://") {
            return Err(format!("{addr}: only http:// addresses are supported by this client yet"));
        } else {
            format!("http://{addr}")
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
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
