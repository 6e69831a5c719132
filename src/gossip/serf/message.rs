//! Serf wire messages (carried inside SWIM `User` messages) and the Serf
//! part of push-pull state, plus the encoding of tags as node metadata.
//!
//! Owns: shapes and limits. Must not apply anything.

use super::SerfError;
use crate::coordinate::Coordinate;
use crate::gossip::codec::{self, CodecError};
use crate::gossip::swim::message::MAX_META_LEN;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// One Serf message. Variants are only ever appended: older agents of ours
/// count a variant they do not know as a bad message and carry on.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum SerfMsg {
    /// `node` is leaving (or is force-left; `prune` also erases it).
    Leave {
        ltime: u64,
        node: String,
        prune: bool,
    },
    /// `node` is (again) a member as of `ltime`: overrides older leaves.
    Join {
        ltime: u64,
        node: String,
    },
    UserEvent {
        ltime: u64,
        name: String,
        payload: Vec<u8>,
        coalesce: bool,
    },
    Query(QueryMsg),
    QueryResponse {
        ltime: u64,
        id: u32,
        from: String,
        ack: bool,
        payload: Vec<u8>,
    },
    /// The sender's network coordinate, sent in the same packet as its ack
    /// of our ping (never broadcast).
    Coordinate(Coordinate),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct QueryMsg {
    pub ltime: u64,
    pub id: u32,
    /// Where responses go.
    pub addr: SocketAddr,
    pub from: String,
    /// Only these nodes answer (empty: all).
    pub filter_nodes: Vec<String>,
    /// Only nodes whose tag matches the anchored regex answer.
    pub filter_tags: Vec<(String, String)>,
    pub ack: bool,
    pub timeout_ms: u64,
    pub name: String,
    pub payload: Vec<u8>,
}

impl SerfMsg {
    pub fn encode(&self) -> Vec<u8> {
        codec::to_bytes(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<SerfMsg, CodecError> {
        codec::from_bytes(bytes)
    }
}

/// User events sharing one Lamport time.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct EventsAt {
    pub ltime: u64,
    pub events: Vec<(String, Vec<u8>)>,
}

/// Serf's half of a push-pull exchange.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct SerfState {
    pub member_ltime: u64,
    pub status_ltimes: Vec<(String, u64)>,
    pub left_members: Vec<String>,
    pub event_ltime: u64,
    pub events: Vec<EventsAt>,
    pub query_ltime: u64,
}

impl SerfState {
    pub fn encode(&self) -> Vec<u8> {
        codec::to_bytes(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<SerfState, CodecError> {
        codec::from_bytes(bytes)
    }
}

/// Encodes tags as node metadata; refuses more than 512 bytes.
pub fn encode_tags(tags: &BTreeMap<String, String>) -> Result<Vec<u8>, SerfError> {
    let bytes = codec::to_bytes(tags);
    if bytes.len() > MAX_META_LEN {
        return Err(SerfError::TagsTooLarge { limit: MAX_META_LEN, got: bytes.len() });
    }
    Ok(bytes)
}

/// Decodes node metadata into tags.
pub fn decode_tags(meta: &[u8]) -> Result<BTreeMap<String, String>, CodecError> {
    if meta.is_empty() {
        return Ok(BTreeMap::new());
    }
    codec::from_bytes(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_limit() {
        let mut t = BTreeMap::new();
        t.insert("role".to_string(), "consul".to_string());
        t.insert("dc".to_string(), "dc1".to_string());
        assert_eq!(decode_tags(&encode_tags(&t).unwrap()).unwrap(), t);
        assert!(decode_tags(&[]).unwrap().is_empty());
        t.insert("big".into(), "x".repeat(600));
        assert!(encode_tags(&t).unwrap_err().to_string().contains("512"));
        assert!(decode_tags(&[5, 1]).is_err());
    }
}
