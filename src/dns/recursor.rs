//! Forwarding names outside our domains to the configured recursors.
//!
//! Owns: the upstream exchange (UDP with a TCP retry on TC, or TCP when the
//! client used TCP), per-recursor timeout, sequential or random order, and
//! accepting only NOERROR/NXDOMAIN answers that match our question and ID.
//! Must not answer names under our domains or cache upstream answers.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::serialize::binary::DecodeError;
use hickory_proto::ProtoError;
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout, Instant};

/// EDNS payload we advertise upstream when the client used EDNS.
const UPSTREAM_EDNS_PAYLOAD: u16 = 4096;

/// Why one recursor gave no usable answer (logged, then the next is asked).
#[derive(Debug, thiserror::Error)]
enum RecursorError {
    #[error("failed to encode query for {upstream}: {source}")]
    Encode { upstream: SocketAddr, source: ProtoError },
    #[error("query for {0} too large")]
    TooLarge(SocketAddr),
    #[error("failed to bind UDP socket: {0}")]
    Bind(#[source] io::Error),
    #[error("failed to reach {upstream}: {source}")]
    Reach { upstream: SocketAddr, source: io::Error },
    #[error("failed to connect to {upstream}: {source}")]
    Connect { upstream: SocketAddr, source: io::Error },
    #[error("failed to send to {upstream}: {source}")]
    Send { upstream: SocketAddr, source: io::Error },
    #[error("failed to read from {upstream}: {source}")]
    Read { upstream: SocketAddr, source: io::Error },
    #[error("timed out waiting for {0}")]
    Timeout(SocketAddr),
    #[error("failed to decode reply from {upstream}: {source}")]
    Decode { upstream: SocketAddr, source: DecodeError },
    #[error("reply from {0} does not match the query")]
    Mismatch(SocketAddr),
}

/// The recursors and how to use them.
#[derive(Clone, Debug)]
pub struct Recursors {
    addrs: Vec<SocketAddr>,
    timeout: Duration,
    random: bool,
}

impl Recursors {
    pub fn new(addrs: Vec<SocketAddr>, timeout: Duration, random: bool) -> Self {
        Recursors { addrs, timeout, random }
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// Asks the recursors in turn; the first NOERROR or NXDOMAIN answer
    /// wins. `None` when every recursor failed or timed out.
    pub async fn forward(
        &self,
        query: &Query,
        recursion_desired: bool,
        client_edns: bool,
        tcp: bool,
    ) -> Option<Message> {
        let mut order = self.addrs.clone();
        if self.random {
            order.shuffle(&mut rand::rng());
        }
        let request = build_request(query, recursion_desired, client_edns);
        for upstream in order {
            let deadline = Instant::now() + self.timeout;
            let result = if tcp {
                exchange_tcp(upstream, &request, deadline).await
            } else {
                match exchange_udp(upstream, &request, deadline).await {
                    // Truncated: the full answer needs TCP.
                    Ok(m) if m.metadata.truncation => exchange_tcp(upstream, &request, deadline).await,
                    other => other,
                }
            };
            match result {
                Ok(m)
                    if matches!(m.metadata.response_code, ResponseCode::NoError | ResponseCode::NXDomain) =>
                {
                    return Some(m);
                }
                Ok(m) => {
                    tracing::debug!(target: "agent.dns", recursor = %upstream, rcode = %m.metadata.response_code,
                        "recursor answered with an error code, trying the next");
                }
                Err(e) => {
                    crate::metrics::incr("consul.dns.recursor_failures", 1);
                    tracing::warn!(target: "agent.dns", recursor = %upstream, error = %e, "recursor failed");
                }
            }
        }
        None
    }
}

fn build_request(query: &Query, recursion_desired: bool, client_edns: bool) -> Message {
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = recursion_desired;
    m.add_query(query.clone());
    if client_edns {
        let mut e = Edns::new();
        e.set_max_payload(UPSTREAM_EDNS_PAYLOAD);
        m.set_edns(e);
    }
    m
}

/// A reply belongs to our request: same ID, a response, same question.
fn is_reply_to(reply: &Message, request: &Message) -> bool {
    reply.metadata.id == request.metadata.id
        && reply.metadata.message_type == MessageType::Response
        && reply.queries.len() == request.queries.len()
        && reply.queries.iter().zip(&request.queries).all(|(a, b)| {
            a.query_type() == b.query_type()
                && a.name().eq_ignore_root(b.name())
                && a.query_class() == b.query_class()
        })
}

async fn exchange_udp(
    upstream: SocketAddr,
    request: &Message,
    deadline: Instant,
) -> Result<Message, RecursorError> {
    let local: IpAddr = match upstream {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let bytes = request.to_vec().map_err(|source| RecursorError::Encode { upstream, source })?;
    // A fresh socket per query: a random source port, and replies from
    // anyone but the recursor are filtered by `connect`.
    let sock = UdpSocket::bind((local, 0)).await.map_err(RecursorError::Bind)?;
    sock.connect(upstream).await.map_err(|source| RecursorError::Reach { upstream, source })?;
    sock.send(&bytes).await.map_err(|source| RecursorError::Send { upstream, source })?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = match timeout(deadline.saturating_duration_since(Instant::now()), sock.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(source)) => return Err(RecursorError::Read { upstream, source }),
            Err(_) => return Err(RecursorError::Timeout(upstream)),
        };
        // Garbage or a stale reply: keep waiting for ours until the deadline.
        if let Ok(reply) = Message::from_vec(buf.get(..n).unwrap_or_default()) {
            if is_reply_to(&reply, request) {
                return Ok(reply);
            }
        }
    }
}

async fn exchange_tcp(
    upstream: SocketAddr,
    request: &Message,
    deadline: Instant,
) -> Result<Message, RecursorError> {
    let left = || deadline.saturating_duration_since(Instant::now());
    let bytes = request.to_vec().map_err(|source| RecursorError::Encode { upstream, source })?;
    let len = u16::try_from(bytes.len()).map_err(|_| RecursorError::TooLarge(upstream))?;
    let exchange = async {
        let mut stream = TcpStream::connect(upstream)
            .await
            .map_err(|source| RecursorError::Connect { upstream, source })?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).await.map_err(|source| RecursorError::Send { upstream, source })?;
        let mut len_buf = [0u8; 2];
        stream.read_exact(&mut len_buf).await.map_err(|source| RecursorError::Read { upstream, source })?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len_buf))];
        stream.read_exact(&mut reply).await.map_err(|source| RecursorError::Read { upstream, source })?;
        let reply = Message::from_vec(&reply).map_err(|source| RecursorError::Decode { upstream, source })?;
        if !is_reply_to(&reply, request) {
            return Err(RecursorError::Mismatch(upstream));
        }
        Ok(reply)
    };
    timeout(left(), exchange).await.map_err(|_| RecursorError::Timeout(upstream))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{Name, RecordType};

    fn request() -> Message {
        build_request(&Query::query(Name::from_ascii("example.com.").unwrap(), RecordType::A), true, false)
    }

    /// The log line's `error` field, word for word.
    #[tokio::test]
    async fn failures_name_the_recursor() {
        // Bound but silent: the UDP exchange runs out of time.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_millis(50);
        let e = exchange_udp(addr, &request(), deadline).await.unwrap_err();
        assert_eq!(e.to_string(), format!("timed out waiting for {addr}"));
        // Nobody listening: the TCP connect is refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let e = exchange_tcp(closed, &request(), deadline).await.unwrap_err();
        assert!(e.to_string().starts_with(&format!("failed to connect to {closed}: ")), "{e}");
        assert_eq!(
            RecursorError::Mismatch(addr).to_string(),
            format!("reply from {addr} does not match the query")
        );
        assert_eq!(RecursorError::TooLarge(addr).to_string(), format!("query for {addr} too large"));
    }
}
