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
use crate::gossip::crypto::{Channel, Crypto, CryptoError};
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

/// How many times `bind` with port 0 tries for a port free for both.
const BIND_ATTEMPTS: u32 = 10;

/// Why sockets could not be bound or a stream exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("failed to bind TCP listener on {addr}: {source}")]
    BindTcp { addr: SocketAddr, source: std::io::Error },
    #[error("failed to bind UDP socket on {addr}: {source}")]
    BindUdp { addr: SocketAddr, source: std::io::Error },
    /// The bound listener could not report its own address.
    #[error(transparent)]
    LocalAddr(std::io::Error),
    #[error("failed to read frame length: {0}")]
    ReadLength(#[source] std::io::Error),
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
    #[error("failed to read a frame: {0}")]
    ReadFrame(#[source] std::io::Error),
    #[error("truncated frame: {got} of {len} bytes")]
    Truncated { got: usize, len: usize },
    /// Sealing the request failed.
    #[error(transparent)]
    Seal(CryptoError),
    #[error("dial tcp {to}: {source}")]
    Dial { to: SocketAddr, source: std::io::Error },
    #[error("failed to send to {to}: {source}")]
    Send { to: SocketAddr, source: std::io::Error },
    #[error("timed out after {timeout:?} talking to {to}")]
    Timeout { to: SocketAddr, timeout: Duration },
    /// The peer answered with a refusal frame.
    #[error("{to} refused the request: {reason}")]
    Refused { to: SocketAddr, reason: String },
    #[error("bad reply from {to}: {source}")]
    BadReply { to: SocketAddr, source: CryptoError },
}

/// Binds UDP and TCP on the same address. With port 0, TCP picks the
/// port and UDP follows it (retrying if another process holds it).
pub async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), TransportError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let tcp = TcpListener::bind(addr).await.map_err(|source| TransportError::BindTcp { addr, source })?;
        let bound = tcp.local_addr().map_err(TransportError::LocalAddr)?;
        match UdpSocket::bind(bound).await {
            Ok(udp) => return Ok((udp, tcp)),
            // A fixed port is not retried; a picked one is, a few times,
            // and the last failure is the one reported.
            Err(source) if addr.port() != 0 || attempt >= BIND_ATTEMPTS => {
                return Err(TransportError::BindUdp { addr: bound, source })
            }
            Err(_) => {}
        }
    }
}

/// Writes one frame.
pub async fn write_frame<S: tokio::io::AsyncWrite + Unpin>(s: &mut S, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    s.write_all(&buf).await?;
    s.flush().await
}

/// Reads one frame of at most `max` bytes.
pub async fn read_frame<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    max: usize,
) -> Result<Vec<u8>, TransportError> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.map_err(TransportError::ReadLength)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(TransportError::FrameTooLarge { len, max });
    }
    // Grow the buffer as bytes arrive, so a peer that announces a large
    // frame must actually send it before we hold that much memory.
    let mut buf = Vec::with_capacity(len.min(64 << 10));
    (&mut *s).take(len as u64).read_to_end(&mut buf).await.map_err(TransportError::ReadFrame)?;
    if buf.len() != len {
        return Err(TransportError::Truncated { got: buf.len(), len });
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
) -> Result<Vec<u8>, TransportError> {
    let wire = {
        let c = crypto.read().unwrap_or_else(|e| e.into_inner());
        c.wrap(plaintext, Channel::Stream).map_err(TransportError::Seal)?
    };
    let work = async {
        let mut s = TcpStream::connect(to).await.map_err(|source| TransportError::Dial { to, source })?;
        let _ = s.set_nodelay(true);
        if let Some(t) = tap {
            t(WireDirection::TcpOut, to, &wire);
        }
        write_frame(&mut s, &wire).await.map_err(|source| TransportError::Send { to, source })?;
        let reply = read_frame(&mut s, MAX_FRAME + crate::gossip::crypto::ENVELOPE_OVERHEAD).await?;
        if let Some(t) = tap {
            t(WireDirection::TcpIn, to, &reply);
        }
        Ok::<Vec<u8>, TransportError>(reply)
    };
    let reply =
        tokio::time::timeout(timeout, work).await.map_err(|_| TransportError::Timeout { to, timeout })??;
    if reply.first() == Some(&REFUSAL_MAGIC) {
        let reason = String::from_utf8_lossy(reply.get(1..).unwrap_or_default()).into_owned();
        return Err(TransportError::Refused { to, reason });
    }
    let c = crypto.read().unwrap_or_else(|e| e.into_inner());
    c.unwrap(&reply, Channel::Stream).map_err(|source| TransportError::BadReply { to, source })
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
        assert_eq!(r[0].as_deref().ok(), Some(&b"hello"[..]));
        assert!(r[1].as_ref().unwrap_err().to_string().contains("exceeds the limit"));
        assert!(r[2].as_ref().unwrap_err().to_string().contains("truncated"));
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
