//! SWIM wire messages: what travels inside a compound UDP packet and what a
//! push-pull stream carries. Encoded with postcard; see `codec` for the
//! framing around them.
//!
//! Owns: message shapes and their validation limits. Must not hold any
//! membership logic.

use crate::gossip::codec::{self, CodecError};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Longest node name accepted from the network (Consul node names are DNS
/// labels; WAN names add `.dc`).
pub const MAX_NAME_LEN: usize = 256;
/// Largest node metadata (Serf tags) accepted, as memberlist's MetaMaxSize.
pub const MAX_META_LEN: usize = 512;

/// One SWIM message. Sequence numbers pair probes with acks.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Direct probe; `target` is the name the sender believes lives at the
    /// destination address (a restarted node under another name ignores it).
    Ping {
        seq: u32,
        target: String,
    },
    /// Ask the receiver to probe `target` for us; `nack` asks it to tell us
    /// when it got no answer either (Lifeguard).
    IndirectPing {
        seq: u32,
        target: String,
        target_addr: SocketAddr,
        nack: bool,
    },
    Ack {
        seq: u32,
    },
    Nack {
        seq: u32,
    },
    Alive {
        incarnation: u32,
        node: String,
        addr: SocketAddr,
        meta: Vec<u8>,
    },
    Suspect {
        incarnation: u32,
        node: String,
        from: String,
    },
    Dead {
        incarnation: u32,
        node: String,
        from: String,
    },
    /// An opaque payload for the layer above (Serf).
    User(Vec<u8>),
}

impl Msg {
    pub fn encode(&self) -> Vec<u8> {
        codec::to_bytes(self)
    }

    /// Decodes one message and enforces the field limits.
    pub fn decode(bytes: &[u8]) -> Result<Msg, CodecError> {
        let m: Msg = codec::from_bytes(bytes)?;
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), CodecError> {
        let names: &[&String] = match self {
            Msg::Ping { target, .. } | Msg::IndirectPing { target, .. } => &[target],
            Msg::Alive { node, meta, .. } => {
                if meta.len() > MAX_META_LEN {
                    return Err(CodecError::Invalid(format!(
                        "node meta of {} bytes exceeds {MAX_META_LEN}",
                        meta.len()
                    )));
                }
                if node.is_empty() {
                    return Err(CodecError::Invalid("empty node name".into()));
                }
                &[node]
            }
            Msg::Suspect { node, from, .. } | Msg::Dead { node, from, .. } => &[node, from],
            Msg::Ack { .. } | Msg::Nack { .. } | Msg::User(_) => &[],
        };
        check_names(names)
    }
}

fn check_names(names: &[&String]) -> Result<(), CodecError> {
    for n in names {
        if n.len() > MAX_NAME_LEN {
            return Err(CodecError::Invalid(format!(
                "node name of {} bytes exceeds {MAX_NAME_LEN}",
                n.len()
            )));
        }
    }
    Ok(())
}

/// A node's state as exchanged in push-pull.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PushNode {
    pub name: String,
    pub addr: SocketAddr,
    pub meta: Vec<u8>,
    pub incarnation: u32,
    /// 0 alive, 1 suspect, 2 dead, 3 left.
    pub state: u8,
}

/// Full-state exchange sent over a stream (TCP) on join and periodically.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PushPull {
    pub join: bool,
    pub nodes: Vec<PushNode>,
    /// The Serf layer's own state (clocks, intents, recent events).
    pub user: Vec<u8>,
}

/// What a stream (one TCP connection: one request, one reply) carries.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum StreamMsg {
    PushPull(PushPull),
    /// A message for the layer above that was too large for UDP.
    User(Vec<u8>),
    /// Reply to `User`.
    Ok,
    /// The receiver refused the request.
    Error(String),
}

impl StreamMsg {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode_stream(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<StreamMsg, CodecError> {
        let m: StreamMsg = codec::decode_stream(bytes)?;
        if let StreamMsg::PushPull(pp) = &m {
            for n in &pp.nodes {
                check_names(&[&n.name])?;
                if n.meta.len() > MAX_META_LEN || n.state > 3 || n.name.is_empty() {
                    return Err(CodecError::Invalid(format!("bad push-pull entry for node {:?}", n.name)));
                }
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let addr: SocketAddr = "127.0.0.1:8301".parse().unwrap();
        let msgs = vec![
            Msg::Ping { seq: 1, target: "a".into() },
            Msg::IndirectPing { seq: 2, target: "b".into(), target_addr: addr, nack: true },
            Msg::Ack { seq: 3 },
            Msg::Nack { seq: 4 },
            Msg::Alive { incarnation: 5, node: "c".into(), addr, meta: vec![1, 2] },
            Msg::Suspect { incarnation: 6, node: "d".into(), from: "e".into() },
            Msg::Dead { incarnation: 7, node: "f".into(), from: "f".into() },
            Msg::User(vec![9; 10]),
        ];
        for m in msgs {
            assert_eq!(Msg::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn limits_are_enforced() {
        let addr: SocketAddr = "127.0.0.1:8301".parse().unwrap();
        let big = Msg::Alive { incarnation: 1, node: "x".into(), addr, meta: vec![0; 513] };
        assert!(Msg::decode(&big.encode()).is_err());
        let long = Msg::Ping { seq: 1, target: "n".repeat(300) };
        assert!(Msg::decode(&long.encode()).is_err());
        assert!(Msg::decode(&[0xff, 0xff]).is_err());
        assert!(StreamMsg::decode(b"Gx").is_err());
    }
}
