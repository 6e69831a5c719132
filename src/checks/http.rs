//! HTTP(S) checks: one request (plus redirects) per run over a fresh
//! connection (Consul disables keep-alive for checks). Owns the request,
//! redirect following and the `HTTP <method> <url>: <status> Output: <body>`
//! text. Must not touch anything but its own connection.

use super::neterr;
use super::output::TailBuffer;
use super::spec::Status;
use super::tls::{self, TlsParams, TlsRoots};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, COOKIE, HOST, LOCATION, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Consul's `User-Agent` for HTTP checks.
pub const USER_AGENT: &str = "Consul Health Check";
const DEFAULT_ACCEPT: &str = "text/plain, text/*, */*";
/// Go's client gives up after this many redirects.
const MAX_REDIRECTS: usize = 10;
/// Body bytes read per run at most: only the last `output_max_size` are
/// kept, and an endless body must not keep the probe busy until timeout.
const BODY_READ_LIMIT: u64 = 1024 * 1024;

/// The parts of an HTTP check one run needs.
pub(crate) struct HttpProbe<'a> {
    pub(crate) url: &'a str,
    pub(crate) method: &'a str,
    pub(crate) headers: &'a BTreeMap<String, Vec<String>>,
    pub(crate) body: Option<&'a str>,
    pub(crate) tls_skip_verify: bool,
    pub(crate) tls_server_name: Option<&'a str>,
    pub(crate) disable_redirects: bool,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Aborts a spawned connection driver when the probe is done with it.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Go's `url.Error` operation name: `Get`, `Post`, ...
fn go_op(method: &str) -> String {
    let mut chars = method.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars.flat_map(|c| c.to_lowercase())).collect(),
        None => String::new(),
    }
}

/// An error with its causes, `outer: inner: root`.
pub(crate) fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

type HeaderList = Vec<(HeaderName, HeaderValue)>;

struct Hop {
    url: String,
    method: Method,
    body: Option<Bytes>,
    headers: HeaderList,
    host_header: Option<HeaderValue>,
}

/// Runs one HTTP check; returns the status and output to report.
pub(crate) async fn run(
    probe: &HttpProbe<'_>,
    timeout: Duration,
    max_output: usize,
    roots: &TlsRoots,
) -> (Status, String) {
    let method_text = if probe.method.is_empty() { "GET" } else { probe.method };
    let op = go_op(method_text);
    let method = match Method::from_bytes(method_text.as_bytes()) {
        Ok(m) => m,
        Err(_) => return (Status::Critical, format!("net/http: invalid method {method_text:?}")),
    };
    let (headers, host_header) = match build_headers(probe.headers) {
        Ok(h) => h,
        Err(e) => return (Status::Critical, e),
    };
    let deadline = Instant::now() + timeout;
    let mut hop = Hop {
        url: probe.url.to_string(),
        method,
        body: probe.body.filter(|b| !b.is_empty()).map(|b| Bytes::from(b.to_string())),
        headers,
        host_header,
    };
    let mut redirects = 0;
    loop {
        let uri = match parse_url(&hop.url) {
            Ok(u) => u,
            Err(e) => return (Status::Critical, format!("{op} {:?}: {e}", hop.url)),
        };
        let response = match tokio::time::timeout_at(deadline, send(&uri, &hop, probe, roots)).await {
            Err(_) => {
                return (
                    Status::Critical,
                    format!(
                    "{op} {:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                    hop.url
                ),
                )
            }
            Ok(Err(e)) => return (Status::Critical, format!("{op} {:?}: {e}", hop.url)),
            Ok(Ok(r)) => r,
        };
        let (response, _driver) = response;
        let code = response.status();
        if !probe.disable_redirects && is_redirect(code) {
            if let Some(location) = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()) {
                redirects += 1;
                let next = resolve_location(&uri, location);
                // Go refuses the 10th redirect response (9 are followed).
                if redirects >= MAX_REDIRECTS {
                    return (
                        Status::Critical,
                        format!("{op} {next:?}: stopped after {MAX_REDIRECTS} redirects"),
                    );
                }
                follow(&mut hop, code, &uri, next);
                continue;
            }
        }
        let status_text = status_line(&response);
        let body = read_body(response.into_body(), deadline, max_output).await;
        let status = if code.is_success() {
            Status::Passing
        } else if code == StatusCode::TOO_MANY_REQUESTS {
            Status::Warning
        } else {
            Status::Critical
        };
        return (status, format!("HTTP {method_text} {}: {status_text} Output: {body}", probe.url));
    }
}

fn build_headers(input: &BTreeMap<String, Vec<String>>) -> Result<(HeaderList, Option<HeaderValue>), String> {
    let mut headers = Vec::new();
    let mut host = None;
    let mut has_user_agent = false;
    let mut has_accept = false;
    for (name, values) in input {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("net/http: invalid header field name {name:?}"))?;
        for value in values {
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("net/http: invalid header field value for {name:?}"))?;
            if header == HOST {
                // Go sends the first Host value as the request's Host.
                host.get_or_insert(value);
                continue;
            }
            has_user_agent |= header == hyper::header::USER_AGENT;
            has_accept |= header == hyper::header::ACCEPT;
            headers.push((header.clone(), value));
        }
    }
    if !has_user_agent {
        headers.push((hyper::header::USER_AGENT, HeaderValue::from_static(USER_AGENT)));
    }
    if !has_accept {
        headers.push((hyper::header::ACCEPT, HeaderValue::from_static(DEFAULT_ACCEPT)));
    }
    Ok((headers, host))
}

fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e| format!("parse {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => return Err(format!("unsupported protocol scheme {other:?}")),
        None => return Err("unsupported protocol scheme \"\"".to_string()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("http: no Host in request URL".to_string());
    }
    Ok(uri)
}

fn is_redirect(code: StatusCode) -> bool {
    matches!(code.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// `Location` against the URL that answered (absolute, scheme-relative,
/// absolute-path and relative-path forms).
fn resolve_location(base: &Uri, location: &str) -> String {
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    if has_scheme(location) {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{}", remove_dot_segments(location))
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{scheme}://{authority}{}", remove_dot_segments(&format!("{dir}{location}")))
    }
}

/// Whether a reference starts with `scheme:` (RFC 3986: a letter, then
/// letters, digits, `+`, `-` or `.`).
fn has_scheme(reference: &str) -> bool {
    match reference.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// RFC 3986 §5.2.4 on the path part (the query is left alone), as Go's
/// `ResolveReference` does.
fn remove_dot_segments(reference: &str) -> String {
    let (path, query) = match reference.find(['?', '#']) {
        Some(i) => reference.split_at(i),
        None => (reference, ""),
    };
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *seg {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            other => out.push(other),
        }
    }
    format!("/{}{query}", out.join("/"))
}

/// Rewrites the request for the next hop the way Go's client does.
fn follow(hop: &mut Hop, code: StatusCode, from: &Uri, next: String) {
    let code = code.as_u16();
    if (code == 301 || code == 302 || code == 303) && hop.method != Method::HEAD && hop.method != Method::GET
    {
        hop.method = Method::GET;
        hop.body = None;
    }
    let same_host = next.parse::<Uri>().ok().and_then(|u| u.host().map(str::to_ascii_lowercase))
        == from.host().map(str::to_ascii_lowercase);
    if !same_host {
        // Credentials meant for one host are not forwarded to another.
        hop.headers.retain(|(name, _)| {
            *name != AUTHORIZATION
                && *name != WWW_AUTHENTICATE
                && *name != COOKIE
                && name.as_str() != "cookie2"
        });
        hop.host_header = None;
    }
    hop.url = next;
}

type Response = hyper::Response<hyper::body::Incoming>;

async fn send(
    uri: &Uri,
    hop: &Hop,
    probe: &HttpProbe<'_>,
    roots: &TlsRoots,
) -> Result<(Response, AbortOnDrop), String> {
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or("");
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addr = format!("{host}:{port}");
    let tcp = TcpStream::connect(addr.as_str()).await.map_err(|e| neterr::dial("tcp", &addr, &e))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if https {
        let params = TlsParams {
            skip_verify: probe.tls_skip_verify,
            server_name: probe.tls_server_name,
            alpn: &[b"http/1.1"],
        };
        Box::new(tls::connect(roots, &params, bare_host, tcp).await?)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| error_chain(&e))?;
    let driver = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::trace!(target: "agent", error = %e, "http check connection ended");
        }
    }));

    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut builder = Request::builder().method(hop.method.clone()).uri(target);
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    match &hop.host_header {
        Some(h) => builder = builder.header(HOST, h.clone()),
        None => builder = builder.header(HOST, authority),
    }
    for (name, value) in &hop.headers {
        builder = builder.header(name.clone(), value.clone());
    }
    builder = builder.header(hyper::header::CONNECTION, "close");
    let request = builder
        .body(Full::new(hop.body.clone().unwrap_or_default()))
        .map_err(|e| format!("net/http: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| error_chain(&e))?;
    Ok((response, driver))
}

/// `200 OK`, with the reason phrase the server actually sent.
fn status_line(response: &Response) -> String {
    let code = response.status();
    let reason = match response.extensions().get::<hyper::ext::ReasonPhrase>() {
        Some(r) => String::from_utf8_lossy(r.as_bytes()).into_owned(),
        None => code.canonical_reason().unwrap_or("").to_string(),
    };
    format!("{} {}", code.as_u16(), reason).trim_end().to_string()
}

/// Reads the body until its end, the read limit or the deadline; a body
/// cut short still counts (Consul logs the read error and reports anyway).
async fn read_body(mut body: hyper::body::Incoming, deadline: Instant, max_output: usize) -> String {
    let mut kept = TailBuffer::new(max_output);
    while kept.total() < BODY_READ_LIMIT {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    kept.write(data);
                }
            }
            Ok(Some(Err(e))) => {
                tracing::debug!(target: "agent", error = %e, "http check failed to read body");
                break;
            }
            Ok(None) => break,
            Err(_) => {
                tracing::debug!(target: "agent", "http check body read timed out");
                break;
            }
        }
    }
    kept.text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_op_names() {
        assert_eq!(go_op("GET"), "Get");
        assert_eq!(go_op("post"), "Post");
        assert_eq!(go_op("PROPFIND"), "Propfind");
    }

    #[test]
    fn locations_resolve_against_the_answering_url() {
        let base: Uri = "http://h:8/a/b?q=1".parse().unwrap();
        assert_eq!(resolve_location(&base, "https://x/y"), "https://x/y");
        assert_eq!(resolve_location(&base, "//x/y"), "http://x/y");
        assert_eq!(resolve_location(&base, "/z"), "http://h:8/z");
        assert_eq!(resolve_location(&base, "c"), "http://h:8/a/c");
        assert_eq!(resolve_location(&base, "../c?x=/../y"), "http://h:8/c?x=/../y");
        assert_eq!(resolve_location(&base, "/p/./q/../r/"), "http://h:8/p/r/");
        assert_eq!(resolve_location(&base, "../../.."), "http://h:8/");
        assert_eq!(resolve_location(&base, "c?next=http://x/"), "http://h:8/a/c?next=http://x/");
        assert_eq!(resolve_location(&base, "HTTPS://x/"), "HTTPS://x/");
    }

    #[test]
    fn bad_urls_are_errors_not_panics() {
        assert!(parse_url("ftp://x/").unwrap_err().contains("unsupported protocol scheme \"ftp\""));
        assert!(parse_url("not a url").is_err());
        assert!(parse_url("/relative").is_err());
        assert!(parse_url("http://[::1").is_err());
    }
}
