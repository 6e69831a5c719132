//! The `http` watch handler: sends the watch's JSON to a URL (`POST` by
//! default) with `X-Consul-Index`, the configured headers and a timeout,
//! as Consul's `http_handler_config` describes. Owns the config parsing and
//! the one request per change; nothing else.

use super::WatchError;
use crate::checks::tls;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpStream;

/// Consul's default handler timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How much of a handler's response body is kept for the log.
const OUTPUT_LIMIT: usize = 4 * 1024;

/// `http_handler_config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpHandlerConfig {
    pub path: String,
    pub method: String,
    pub header: BTreeMap<String, Vec<String>>,
    pub timeout: Duration,
    pub tls_skip_verify: bool,
}

impl HttpHandlerConfig {
    /// Reads the config object (or HCL's one-element list of objects).
    /// Unknown keys are ignored, as Consul's decoder does.
    pub fn parse(raw: &Value) -> Result<HttpHandlerConfig, WatchError> {
        let obj = match raw {
            Value::Object(m) => m,
            Value::Array(items) if items.len() == 1 => match items.first() {
                Some(Value::Object(m)) => m,
                _ => return Err(WatchError::ConfigNotObject),
            },
            _ => return Err(WatchError::ConfigNotObject),
        };
        let text = |name: &str| -> Result<Option<String>, WatchError> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => {
                    Err(WatchError::ConfigNotString { field: name.to_string(), got: other.to_string() })
                }
            }
        };
        let path = text("path")?.unwrap_or_default();
        if path.is_empty() {
            return Err(WatchError::NoPath);
        }
        let method = text("method")?.filter(|m| !m.is_empty()).unwrap_or_else(|| "POST".into());
        Method::from_bytes(method.as_bytes()).map_err(|_| WatchError::InvalidMethod(method.clone()))?;
        let timeout = match text("timeout")?.filter(|t| !t.is_empty()) {
            None => DEFAULT_TIMEOUT,
            Some(t) => crate::duration::parse(&t).map_err(WatchError::InvalidTimeout)?,
        };
        let tls_skip_verify = match obj.get("tls_skip_verify") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            // Consul decodes this field weakly: "true", 1 and friends work.
            Some(Value::String(s)) => {
                parse_go_bool(s).ok_or_else(|| WatchError::TlsSkipVerifyText(s.clone()))?
            }
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(other) => return Err(WatchError::TlsSkipVerifyType(other.to_string())),
        };
        let header = parse_headers(obj.get("header"))?;
        Ok(HttpHandlerConfig { path, method, header, timeout, tls_skip_verify })
    }

    /// Sends one change. Returns the response status and (the tail of)
    /// its body; errors name the handler's URL and the cause.
    pub async fn invoke(&self, index: u64, body: Bytes) -> Result<(u16, String), WatchError> {
        match tokio::time::timeout(self.timeout, self.send(index, body)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(WatchError::Invoke { path: self.path.clone(), source: Box::new(e) }),
            Err(_) => Err(WatchError::InvokeTimeout { path: self.path.clone(), after: self.timeout }),
        }
    }

    async fn send(&self, index: u64, body: Bytes) -> Result<(u16, String), WatchError> {
        let uri: Uri = self.path.parse().map_err(WatchError::InvalidUrl)?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            other => return Err(WatchError::UnsupportedScheme(other.unwrap_or("").to_string())),
        };
        let host =
            uri.host().ok_or(WatchError::NoHost)?.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|source| WatchError::Dial {
            host: host.clone(),
            port,
            source,
        })?;
        let _ = tcp.set_nodelay(true);
        let method = Method::from_bytes(self.method.as_bytes())
            .map_err(|_| WatchError::InvalidMethod(self.method.clone()))?;
        let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host.as_str());
        let mut req = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("X-Consul-Index", index.to_string());
        for (name, values) in &self.header {
            for v in values {
                req = req.header(name.as_str(), v.as_str());
            }
        }
        let req = req.body(Full::new(body)).map_err(WatchError::InvalidRequest)?;
        if https {
            // The checks' TLS client: system roots, or `tls_skip_verify`.
            static ROOTS: std::sync::OnceLock<tls::TlsRoots> = std::sync::OnceLock::new();
            let roots = ROOTS.get_or_init(tls::TlsRoots::default);
            let params = tls::TlsParams { skip_verify: self.tls_skip_verify, server_name: None, alpn: &[] };
            let stream = tls::connect(roots, &params, &host, tcp).await.map_err(WatchError::Tls)?;
            exchange(TokioIo::new(stream), req).await
        } else {
            exchange(TokioIo::new(tcp), req).await
        }
    }
}

/// One HTTP/1.1 request on a fresh connection.
async fn exchange<IO>(io: IO, req: Request<Full<Bytes>>) -> Result<(u16, String), WatchError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(WatchError::Http)?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await.map_err(WatchError::Http);
    let out = match resp {
        Ok(resp) => {
            let status = resp.status().as_u16();
            // Read at most a little more than we keep, then keep the tail.
            let body = Limited::new(resp.into_body(), 64 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok((status, tail_text(&body)))
        }
        Err(e) => Err(e),
    };
    driver.abort();
    out
}

/// The last `OUTPUT_LIMIT` bytes as text, with Consul's truncation note.
pub fn tail_text(all: &[u8]) -> String {
    if all.len() <= OUTPUT_LIMIT {
        return String::from_utf8_lossy(all).into_owned();
    }
    let start = all.len() - OUTPUT_LIMIT;
    format!(
        "Captured {OUTPUT_LIMIT} of {} bytes\n...\n{}",
        all.len(),
        String::from_utf8_lossy(all.get(start..).unwrap_or_default())
    )
}

fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Some(false),
        _ => None,
    }
}

fn parse_headers(raw: Option<&Value>) -> Result<BTreeMap<String, Vec<String>>, WatchError> {
    let mut out = BTreeMap::new();
    let obj = match raw {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(m)) => m,
        Some(Value::Array(items)) if items.len() == 1 => match items.first() {
            Some(Value::Object(m)) => m,
            _ => return Err(WatchError::HeaderNotMap),
        },
        Some(_) => return Err(WatchError::HeaderNotMap),
    };
    for (name, v) in obj {
        hyper::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| WatchError::HeaderName(name.clone()))?;
        let values: Vec<String> = match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    other => {
                        Err(WatchError::HeaderValueNotString { name: name.clone(), got: other.to_string() })
                    }
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(WatchError::HeaderValuesNotList { name: name.clone(), got: other.to_string() })
            }
        };
        for val in &values {
            hyper::header::HeaderValue::from_str(val)
                .map_err(|_| WatchError::HeaderValue { name: name.clone(), value: val.clone() })?;
        }
        out.insert(name.clone(), values);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_fields() {
        let c = HttpHandlerConfig::parse(&json!({"path": "http://127.0.0.1:1/x"})).unwrap();
        assert_eq!(c.method, "POST");
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert!(!c.tls_skip_verify);
        let c = HttpHandlerConfig::parse(&json!([{
            "path": "https://h/x", "method": "PUT", "timeout": "2s", "tls_skip_verify": "true",
            "header": {"X-A": ["1", "2"], "X-B": "3"}
        }]))
        .unwrap();
        assert_eq!(c.method, "PUT");
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert!(c.tls_skip_verify);
        assert_eq!(c.header.get("X-A"), Some(&vec!["1".to_string(), "2".to_string()]));
        assert_eq!(c.header.get("X-B"), Some(&vec!["3".to_string()]));
    }

    #[test]
    fn refusals() {
        let err = |v: Value| HttpHandlerConfig::parse(&v).unwrap_err().to_string();
        assert_eq!(err(json!({})), "Requires 'path' to be set");
        assert!(err(json!({"path": "http://x", "timeout": "soon"})).starts_with("Failed to parse timeout"));
        assert!(err(json!({"path": "http://x", "header": {"bad name": "v"}})).contains("invalid header name"));
        assert!(err(json!("http://x")).contains("expected an object"));
    }

    #[test]
    fn output_tail() {
        assert_eq!(tail_text(b"ok"), "ok");
        let big = vec![b'a'; OUTPUT_LIMIT + 10];
        assert!(
            tail_text(&big).starts_with(&format!("Captured {OUTPUT_LIMIT} of {} bytes", OUTPUT_LIMIT + 10))
        );
    }
}
