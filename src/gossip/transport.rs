//! Sockets: one UDP socket and one TCP listener on the same address and
//! port, length-prefixed stream frames with size limits and timeouts, the
//! client side of a stream exchange (connect, send one request frame, read
//! one reply frame), and rate-limited logging of dropped input.
//!
//! Stream frame: `u32 big-endian length | payload`, where payload is a
//! plaintext (`b'G'…`) or sealed (`b'E'…`) message, or a plaintext refusal
//! `b'X' | utf-8 reason` that a receiver sends when it cannot accept the
//! request (for example: it cannot decrypt it), so the requester can report
//! why.
//!
//! Owns: byte movement and limits. Must not interpret gossip messages.

use crate::gossip::config::{WireDirection, WireTap};
use crate::gossip::crypto::{Channel, Crypto};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Largest UDP datagram we send or accept (memberlist's UDPBufferSize).
pub const MAX_UDP: usize = 1400;
/// Largest stream frame (push-pull state included), memberlist's limit.
pub const MAX_FRAME: usize = 20 << 20;
/// First byte of a refusal frame.
pub const REFUSAL_MAGIC: u8 = b'X';
/// Longest refusal reason we send or read.
const MAX_REFUSAL: usize = 512;

/// Binds UDP and TCP on the same address. With port 0, TCP picks the
/// port and UDP follows it (retrying if another process holds it).
pub async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), String> {
    let mut last = String::new();
    for _ in 0..10 {
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("failed to bind TCP listener on {addr}: {e}"))?;
        let bound = tcp.local_addr().map_err(|e| e.to_string())?;
        match UdpSocket::bind(bound).await {
            Ok(udp) => return Ok((udp, tcp)),
            Err(e) => {
                last = format!("failed to bind UDP socket on {bound}: {e}");
                if addr.port() != 0 {
                    return Err(last);
                }
            }
        }
    }
    Err(last)
}

/// Writes one frame.
pub async fn write_frame(s: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    s.write_all(&buf).await?;
    s.flush().await
}

/// Reads one frame of at most `max` bytes.
pub async fn read_frame(s: &mut TcpStream, max: usize) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.map_err(|e| format!("failed to read frame length: {e}"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(format!("frame of {len} bytes exceeds the limit of {max} bytes"));
    }
    // Grow the buffer as bytes arrive, so a peer that announces a large
    // frame must actually send it before we hold that much memory.
    let mut buf = Vec::with_capacity(len.min(64 << 10));
    (&mut *s)
        .take(len as u64)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| format!("failed to read a frame: {e}"))?;
    if buf.len() != len {
        return Err(format!("truncated frame: {} of {len} bytes", buf.len()));
    }
    Ok(buf)
}

/// A refusal frame.
pub fn refusal(reason: &str) -> Vec<u8> {
    let mut v = vec![REFUSAL_MAGIC];
    v.extend(reason.as_bytes().iter().take(MAX_REFUSAL));
    v
}

/// Client side of a stream exchange: connect, send `plaintext` (sealed by
/// the keyring policy), return the reply's plaintext. Everything is bounded
/// by `timeout`.
pub async fn exchange(
    to: SocketAddr,
    plaintext: Vec<u8>,
    crypto: &Arc<RwLock<Crypto>>,
    timeout: Duration,
    tap: Option<&WireTap>,
) -> Result<Vec<u8>, String> {
    let wire = {
        let c = crypto.read().unwrap_or_else(|e| e.into_inner());
        c.wrap(plaintext, Channel::Stream).map_err(|e| e.to_string())?
    };
    let work = async {
        let mut s = TcpStream::connect(to).await.map_err(|e| format!("dial tcp {to}: {e}"))?;
        let _ = s.set_nodelay(true);
        if let Some(t) = tap {
            t(WireDirection::TcpOut, to, &wire);
        }
        write_frame(&mut s, &wire).await.map_err(|e| format!("failed to send to {to}: {e}"))?;
        let reply = read_frame(&mut s, MAX_FRAME + crate::gossip::crypto::ENVELOPE_OVERHEAD).await?;
        if let Some(t) = tap {
            t(WireDirection::TcpIn, to, &reply);
        }
        Ok::<Vec<u8>, String>(reply)
    };
    let reply = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("timed out after {timeout:?} talking to {to}"))??;
    if reply.first() == Some(&REFUSAL_MAGIC) {
        let reason = String::from_utf8_lossy(reply.get(1..).unwrap_or_default());
        return Err(format!("{to} refused the request: {reason}"));
    }
    let c = crypto.read().unwrap_or_else(|e| e.into_inner());
    c.unwrap(&reply, Channel::Stream).map_err(|e| format!("bad reply from {to}: {e}"))
}

/// Logs at most one line per `every` for a class of dropped input and
/// says how many were suppressed in between.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Self {
        Throttle { every, last: None, suppressed: 0 }
    }

    /// `Some(suppressed since the last line)` when a line may be logged now.
    pub fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_bounded_and_truncation_is_an_error() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..3 {
                let (mut s, _) = l.accept().await.unwrap();
                out.push(read_frame(&mut s, 16).await);
            }
            out
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        write_frame(&mut c, b"hello").await.unwrap();
        let mut c2 = TcpStream::connect(addr).await.unwrap();
        write_frame(&mut c2, &[0u8; 17]).await.unwrap();
        let mut c3 = TcpStream::connect(addr).await.unwrap();
        c3.write_all(&[0, 0, 0, 10, 1, 2]).await.unwrap();
        drop(c3);
        let r = server.await.unwrap();
        assert_eq!(r[0].as_deref(), Ok(&b"hello"[..]));
        assert!(r[1].as_ref().unwrap_err().contains("exceeds the limit"));
        assert!(r[2].as_ref().unwrap_err().contains("truncated"));
    }

    #[test]
    fn throttle_suppresses_and_counts() {
        let mut t = Throttle::new(Duration::from_secs(60));
        assert_eq!(t.allow(), Some(0));
        assert_eq!(t.allow(), None);
        assert_eq!(t.allow(), None);
        t.last = Some(Instant::now() - Duration::from_secs(61));
        assert_eq!(t.allow(), Some(2));
    }
}
