//! gRPC checks: the standard health protocol, `grpc.health.v1.Health/Check`,
//! over HTTP/2 (h2c, or TLS with ALPN `h2` when `grpc_use_tls`). The two
//! protobuf messages are one field each, so they are encoded by hand.
//! SERVING is passing; anything else, and any error, is critical. Owns
//! only its own connection.

use super::http::{error_chain, AbortOnDrop};
use super::neterr;
use super::spec::Status;
use super::tls::{self, TlsParams, TlsRoots};
use bytes::Bytes;
use h2::client::SendRequest;
use hyper::{HeaderMap, Request};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub(crate) const HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
/// A health response is a few bytes; anything bigger is refused unread.
const MAX_MESSAGE: usize = 64 * 1024;

pub(crate) struct GrpcProbe<'a> {
    /// `host:port` or `host:port/service`.
    pub(crate) target: &'a str,
    pub(crate) use_tls: bool,
    pub(crate) tls_skip_verify: bool,
    pub(crate) tls_server_name: Option<&'a str>,
}

/// `HealthCheckResponse.ServingStatus`.
pub(crate) fn serving_status_name(status: u64) -> String {
    match status {
        0 => "UNKNOWN".to_string(),
        1 => "SERVING".to_string(),
        2 => "NOT_SERVING".to_string(),
        3 => "SERVICE_UNKNOWN".to_string(),
        other => other.to_string(),
    }
}

/// gRPC status code names as grpc-go prints them.
fn code_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES.get(code as usize).map_or_else(|| format!("Code({code})"), |n| n.to_string())
}

fn rpc_error(code: &str, desc: &str) -> String {
    format!("rpc error: code = {code} desc = {desc}")
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&byte, rest)) = buf.split_first() else {
            return Err("truncated varint".to_string());
        };
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint overflows 64 bits".to_string())
}

/// A length-prefixed gRPC message (uncompressed).
pub(crate) fn frame(message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

/// `HealthCheckRequest { string service = 1; }`.
pub(crate) fn encode_request(service: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if !service.is_empty() {
        out.push(0x0a);
        put_varint(&mut out, service.len() as u64);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

/// Reads field 1 (`string service`) of a `HealthCheckRequest`; for the
/// test server.
#[cfg(test)]
pub(crate) fn decode_request(mut buf: &[u8]) -> Result<String, String> {
    let mut service = String::new();
    while !buf.is_empty() {
        let key = get_varint(&mut buf)?;
        if key == 0x0a {
            let len = usize::try_from(get_varint(&mut buf)?).map_err(|_| "length too large".to_string())?;
            if len > buf.len() {
                return Err("truncated string".to_string());
            }
            service = String::from_utf8_lossy(&buf[..len]).into_owned();
            buf = &buf[len..];
        } else {
            skip_field(&mut buf, key)?;
        }
    }
    Ok(service)
}

/// `HealthCheckResponse { ServingStatus status = 1; }`; for the test server.
#[cfg(test)]
pub(crate) fn encode_response(status: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if status != 0 {
        out.push(0x08);
        put_varint(&mut out, status);
    }
    out
}

/// The serving status in a `HealthCheckResponse` (absent = 0 = UNKNOWN);
/// unknown fields are skipped as protobuf requires.
pub(crate) fn decode_response(mut buf: &[u8]) -> Result<u64, String> {
    let mut status = 0;
    while !buf.is_empty() {
        let key = get_varint(&mut buf)?;
        if key == 0x08 {
            status = get_varint(&mut buf)?;
        } else {
            skip_field(&mut buf, key)?;
        }
    }
    Ok(status)
}

fn skip_field(buf: &mut &[u8], key: u64) -> Result<(), String> {
    let skip = match key & 7 {
        0 => {
            get_varint(buf)?;
            0
        }
        1 => 8,
        2 => usize::try_from(get_varint(buf)?).map_err(|_| "length too large".to_string())?,
        5 => 4,
        wire => return Err(format!("unsupported wire type {wire}")),
    };
    if skip > buf.len() {
        return Err("truncated field".to_string());
    }
    *buf = &buf[skip..];
    Ok(())
}

/// Splits one gRPC message off `data` (5-byte prefix + body).
pub(crate) fn unframe(data: &[u8]) -> Result<&[u8], String> {
    if data.len() < 5 {
        return Err("message shorter than its 5-byte prefix".to_string());
    }
    if data[0] != 0 {
        return Err("compressed messages are not supported".to_string());
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    data.get(5..5 + len).ok_or_else(|| "message shorter than its length prefix".to_string())
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) async fn run(probe: &GrpcProbe<'_>, timeout: Duration, roots: &TlsRoots) -> (Status, String) {
    let (server, service) = probe.target.split_once('/').unwrap_or((probe.target, ""));
    match tokio::time::timeout(timeout, check(probe, server, service, roots)).await {
        Err(_) => (Status::Critical, rpc_error("DeadlineExceeded", "context deadline exceeded")),
        Ok(Err(e)) => (Status::Critical, e),
        Ok(Ok(1)) => (Status::Passing, format!("gRPC check {}: success", probe.target)),
        Ok(Ok(other)) => (
            Status::Critical,
            format!("gRPC {} serving status: {}", probe.target, serving_status_name(other)),
        ),
    }
}

async fn check(probe: &GrpcProbe<'_>, server: &str, service: &str, roots: &TlsRoots) -> Result<u64, String> {
    let unavailable =
        |what: String| rpc_error("Unavailable", &format!("connection error: desc = \"transport: {what}\""));
    let tcp = TcpStream::connect(server)
        .await
        .map_err(|e| unavailable(format!("Error while dialing: {}", neterr::dial("tcp", server, &e))))?;
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if probe.use_tls {
        let host = neterr::split_host_port(server).map_or(server, |(h, _)| h);
        let params = TlsParams {
            skip_verify: probe.tls_skip_verify,
            server_name: probe.tls_server_name,
            alpn: &[b"h2"],
        };
        Box::new(
            tls::connect(roots, &params, host, tcp)
                .await
                .map_err(|e| unavailable(format!("authentication handshake failed: {e}")))?,
        )
    } else {
        Box::new(tcp)
    };
    let (client, connection) = h2::client::handshake(io).await.map_err(|e| unavailable(error_chain(&e)))?;
    let _driver = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::trace!(target: "agent", error = %e, "grpc check connection ended");
        }
    }));
    call(client, probe.use_tls, server, service).await
}

async fn call(client: SendRequest<Bytes>, tls: bool, authority: &str, service: &str) -> Result<u64, String> {
    let internal = |what: String| rpc_error("Internal", &what);
    let mut client = client.ready().await.map_err(|e| rpc_error("Unavailable", &error_chain(&e)))?;
    let scheme = if tls { "https" } else { "http" };
    let request = Request::builder()
        .method("POST")
        .uri(format!("{scheme}://{authority}{HEALTH_CHECK_PATH}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", concat!("consul-rs/", env!("CARGO_PKG_VERSION"), " grpc-health-probe"))
        .body(())
        .map_err(|e| internal(e.to_string()))?;
    let (response, mut send) =
        client.send_request(request, false).map_err(|e| rpc_error("Unavailable", &error_chain(&e)))?;
    send.send_data(frame(&encode_request(service)), true)
        .map_err(|e| rpc_error("Unavailable", &error_chain(&e)))?;
    let response = response.await.map_err(|e| rpc_error("Unavailable", &error_chain(&e)))?;
    let (head, mut body) = response.into_parts();
    if head.status != hyper::StatusCode::OK {
        let code = match head.status.as_u16() {
            400 => "Internal",
            401 => "Unauthenticated",
            403 => "PermissionDenied",
            404 => "Unimplemented",
            429 | 502..=504 => "Unavailable",
            _ => "Unknown",
        };
        let reason = head.status.canonical_reason().unwrap_or("");
        return Err(rpc_error(
            code,
            &format!("unexpected HTTP status code received from server: {} ({reason})", head.status.as_u16()),
        ));
    }
    // A "trailers-only" answer carries grpc-status in the headers.
    if head.headers.contains_key("grpc-status") {
        grpc_status(&head.headers)?;
        return Err(internal("server closed the stream without sending a response".to_string()));
    }
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| rpc_error("Unavailable", &error_chain(&e)))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if data.len() + chunk.len() > MAX_MESSAGE + 5 {
            return Err(rpc_error("ResourceExhausted", "grpc: received message larger than max"));
        }
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.map_err(|e| rpc_error("Unavailable", &error_chain(&e)))?;
    match trailers {
        Some(t) => grpc_status(&t)?,
        None => return Err(internal("server closed the stream without sending trailers".to_string())),
    }
    let message = unframe(&data)
        .map_err(|e| internal(format!("grpc: failed to unmarshal the received message: {e}")))?;
    decode_response(message)
        .map_err(|e| internal(format!("grpc: failed to unmarshal the received message: {e}")))
}

/// Ok for `grpc-status: 0`, else the call's error.
fn grpc_status(headers: &HeaderMap) -> Result<(), String> {
    let code =
        headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u32>().ok());
    let message = headers
        .get("grpc-message")
        .map(|v| percent_encoding::percent_decode(v.as_bytes()).decode_utf8_lossy().into_owned())
        .unwrap_or_default();
    match code {
        Some(0) => Ok(()),
        Some(code) => Err(rpc_error(&code_name(code), &message)),
        None => Err(rpc_error("Internal", "malformed grpc-status in trailers")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        assert_eq!(decode_request(&encode_request("")).unwrap(), "");
        assert_eq!(decode_request(&encode_request("my.svc")).unwrap(), "my.svc");
        for status in [0, 1, 2, 3, 300] {
            assert_eq!(decode_response(&encode_response(status)).unwrap(), status);
        }
        let framed = frame(&encode_response(2));
        assert_eq!(decode_response(unframe(&framed).unwrap()).unwrap(), 2);
    }

    #[test]
    fn unknown_fields_are_skipped_and_garbage_rejected() {
        // field 2 (len-delimited "xy"), field 3 (fixed32), then status = 1.
        let msg = [0x12, 2, b'x', b'y', 0x1d, 1, 2, 3, 4, 0x08, 1];
        assert_eq!(decode_response(&msg).unwrap(), 1);
        assert!(decode_response(&[0x08]).is_err());
        assert!(decode_response(&[0x12, 9, 1]).is_err());
        assert!(decode_response(&[0x0b]).is_err());
        assert!(decode_response(&[0xff; 11]).is_err());
        assert!(unframe(&[0, 0, 0, 0, 9, 1]).is_err());
        assert!(unframe(&[1, 0, 0, 0, 0]).is_err());
        assert!(unframe(&[0, 0]).is_err());
    }

    #[test]
    fn code_names_match_grpc_go() {
        assert_eq!(code_name(14), "Unavailable");
        assert_eq!(code_name(12), "Unimplemented");
        assert_eq!(code_name(99), "Code(99)");
    }
}
