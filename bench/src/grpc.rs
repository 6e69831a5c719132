//! etcd's native API: unary gRPC calls (KV/Put, KV/Range) over one HTTP/2
//! connection per client, with the few protobuf fields we send encoded by
//! hand. This shows what etcd's JSON gateway costs, without a protobuf
//! toolchain or a gRPC framework in the build.
//!
//! Owns: gRPC framing and the request encodings. Must not interpret
//! responses beyond the gRPC status.

use bytes::{BufMut, Bytes, BytesMut};
use std::net::SocketAddr;
use std::time::Duration;

fn varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// A length-delimited protobuf field (wire type 2).
fn pb_bytes(buf: &mut BytesMut, field: u32, data: &[u8]) {
    varint(buf, u64::from(field << 3 | 2));
    varint(buf, data.len() as u64);
    buf.put_slice(data);
}

/// A varint protobuf field (wire type 0).
fn pb_varint(buf: &mut BytesMut, field: u32, v: u64) {
    varint(buf, u64::from(field << 3));
    varint(buf, v);
}

/// etcdserverpb.PutRequest{key = 1, value = 2}
pub fn put_request(key: &[u8], value: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(key.len() + value.len() + 8);
    pb_bytes(&mut b, 1, key);
    pb_bytes(&mut b, 2, value);
    b.freeze()
}

/// etcdserverpb.RangeRequest{key = 1, serializable = 7}
pub fn range_request(key: &[u8], serializable: bool) -> Bytes {
    let mut b = BytesMut::with_capacity(key.len() + 8);
    pb_bytes(&mut b, 1, key);
    if serializable {
        pb_varint(&mut b, 7, 1);
    }
    b.freeze()
}

pub const PUT: &str = "/etcdserverpb.KV/Put";
pub const RANGE: &str = "/etcdserverpb.KV/Range";

pub struct GrpcConn {
    addr: SocketAddr,
    sender: Option<h2::client::SendRequest<Bytes>>,
    timeout: Duration,
}

impl GrpcConn {
    pub fn new(addr: SocketAddr) -> GrpcConn {
        GrpcConn { addr, sender: None, timeout: Duration::from_secs(15) }
    }

    async fn connect(&mut self) -> Result<h2::client::SendRequest<Bytes>, String> {
        if let Some(s) = &self.sender {
            return Ok(s.clone());
        }
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect to {}: {e}", self.addr))?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = h2::client::handshake(tcp)
            .await
            .map_err(|e| format!("HTTP/2 handshake with {}: {e}", self.addr))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender.clone());
        Ok(sender)
    }

    /// One unary call; returns the response message bytes (without the
    /// 5-byte gRPC prefix) when grpc-status is 0.
    pub async fn unary(&mut self, path: &str, msg: Bytes) -> Result<Bytes, String> {
        let addr = self.addr;
        let timeout = self.timeout;
        let r = tokio::time::timeout(timeout, async {
            let sender = self.connect().await?;
            let mut sender = sender.ready().await.map_err(|e| format!("{addr}: HTTP/2 not ready: {e}"))?;
            let req = http::Request::builder()
                .method("POST")
                .uri(format!("http://{addr}{path}"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .map_err(|e| format!("bad gRPC request: {e}"))?;
            let (resp, mut stream) =
                sender.send_request(req, false).map_err(|e| format!("{addr}{path}: {e}"))?;
            let mut framed = BytesMut::with_capacity(msg.len() + 5);
            framed.put_u8(0);
            framed.put_u32(msg.len() as u32);
            framed.put_slice(&msg);
            stream.send_data(framed.freeze(), true).map_err(|e| format!("{addr}{path}: sending: {e}"))?;
            let resp = resp.await.map_err(|e| format!("{addr}{path}: {e}"))?;
            let header_status =
                resp.headers().get("grpc-status").and_then(|v| v.to_str().ok()).map(str::to_string);
            let mut body = resp.into_body();
            let mut data = BytesMut::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.map_err(|e| format!("{addr}{path}: reading: {e}"))?;
                let _ = body.flow_control().release_capacity(chunk.len());
                data.extend_from_slice(&chunk);
            }
            let trailers = body.trailers().await.map_err(|e| format!("{addr}{path}: trailers: {e}"))?;
            let status = trailers
                .as_ref()
                .and_then(|t| t.get("grpc-status"))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or(header_status)
                .unwrap_or_else(|| "missing".into());
            if status != "0" {
                let message = trailers
                    .as_ref()
                    .and_then(|t| t.get("grpc-message"))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                return Err(format!("{addr}{path}: grpc-status {status} {message}"));
            }
            Ok(if data.len() >= 5 { data.freeze().slice(5..) } else { Bytes::new() })
        })
        .await;
        match r {
            Ok(Ok(b)) => Ok(b),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_put_and_range() {
        assert_eq!(put_request(b"k", b"vv").as_ref(), &[0x0a, 1, b'k', 0x12, 2, b'v', b'v']);
        assert_eq!(range_request(b"k", true).as_ref(), &[0x0a, 1, b'k', 0x38, 1]);
        assert_eq!(range_request(b"k", false).as_ref(), &[0x0a, 1, b'k']);
        let mut b = BytesMut::new();
        varint(&mut b, 300);
        assert_eq!(b.as_ref(), &[0xac, 0x02]);
    }
}
