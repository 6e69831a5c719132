//! Serf queries: a request gossiped to every member (optionally filtered by
//! node name or tag regex), answered by direct messages to the asker, which
//! collects acks and responses until the query's timeout. Internal queries
//! (names starting `_serf_`) carry the keyring operations and a ping.
//!
//! Owns: query routing, filters, de-duplication and the response
//! collection state. Must not apply key operations (the runtime does).

use super::message::{QueryMsg, SerfMsg};
use super::{Serf, SerfError, SerfEvent, SerfTimer};
use crate::gossip::codec;
use crate::gossip::swim::broadcast::BroadcastClass;
use crate::gossip::swim::Time;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

/// Internal query names (the keyring travels through these).
pub const QUERY_PING: &str = "_serf_ping";
pub const QUERY_INSTALL_KEY: &str = "_serf_install-key";
pub const QUERY_USE_KEY: &str = "_serf_use-key";
pub const QUERY_REMOVE_KEY: &str = "_serf_remove-key";
pub const QUERY_LIST_KEYS: &str = "_serf_list-keys";
pub(super) const INTERNAL_PREFIX: &str = "_serf_";
/// Longest tag filter pattern we compile.
const MAX_PATTERN: usize = 256;

/// How to run a query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// Only these nodes answer (empty: every node).
    pub filter_nodes: Vec<String>,
    /// Only nodes whose tag `.0` fully matches regex `.1` answer.
    pub filter_tags: Vec<(String, String)>,
    /// Ask every node that receives the query to ack at once.
    pub request_ack: bool,
    /// Default: GossipInterval × QueryTimeoutMult × ceil(log10(N + 1)).
    pub timeout: Option<Duration>,
}

/// Identifies a received query so it can be answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryRef {
    pub id: u32,
    pub ltime: u64,
    /// Where the asker collects responses.
    pub addr: SocketAddr,
    /// Responses after this are useless to the asker.
    pub deadline: Time,
    pub name: String,
}

/// A user query delivered to this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingQuery {
    pub query: QueryRef,
    pub from: String,
    pub payload: Vec<u8>,
}

/// A query this node started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryStarted {
    pub id: u32,
    pub deadline: Time,
}

#[derive(Clone, Debug)]
pub(super) struct PendingQuery {
    ltime: u64,
    deadline: Time,
    acks: HashSet<String>,
    responses: HashSet<String>,
}

/// Key operations carried by internal queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyringOp {
    Install,
    Use,
    Remove,
    List,
}

impl KeyringOp {
    pub fn query_name(self) -> &'static str {
        match self {
            KeyringOp::Install => QUERY_INSTALL_KEY,
            KeyringOp::Use => QUERY_USE_KEY,
            KeyringOp::Remove => QUERY_REMOVE_KEY,
            KeyringOp::List => QUERY_LIST_KEYS,
        }
    }

    fn from_query_name(name: &str) -> Option<KeyringOp> {
        Some(match name {
            QUERY_INSTALL_KEY => KeyringOp::Install,
            QUERY_USE_KEY => KeyringOp::Use,
            QUERY_REMOVE_KEY => KeyringOp::Remove,
            QUERY_LIST_KEYS => KeyringOp::List,
            _ => return None,
        })
    }
}

/// A key operation another node (or we) asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyringRequest {
    pub op: KeyringOp,
    /// Base64 key (empty for `List`).
    pub key: String,
    pub query: QueryRef,
}

/// What each member answers to a key query.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct KeyResponse {
    pub result: bool,
    pub message: String,
    pub keys: Vec<String>,
    pub primary: String,
}

impl KeyResponse {
    pub fn encode(&self) -> Vec<u8> {
        codec::to_bytes(self)
    }

    pub fn decode(b: &[u8]) -> Result<KeyResponse, codec::CodecError> {
        codec::from_bytes(b)
    }
}

/// Whether `value` fully matches `pattern` (bounded DFA; a pattern that is
/// too large or invalid matches nothing).
pub fn tag_matches(pattern: &str, value: &str) -> bool {
    use regex_automata::dfa::{dense, regex::Regex};
    if pattern.len() > MAX_PATTERN {
        return false;
    }
    let limits = dense::Config::new().dfa_size_limit(Some(1 << 20)).determinize_size_limit(Some(1 << 20));
    match Regex::builder().dense(limits).build(&format!("^(?:{pattern})$")) {
        Ok(re) => re.is_match(value),
        Err(_) => false,
    }
}

impl Serf {
    /// The default query timeout for the current pool size.
    pub fn default_query_timeout(&self) -> Duration {
        let n = self.members.len().max(1);
        let scale = ((n + 1) as f64).log10().ceil().max(1.0) as u32;
        self.cfg.swim.gossip_interval * self.cfg.query_timeout_mult * scale
    }

    /// Starts a user query. Internal names (`_serf_…`) are refused here;
    /// key operations use `keyring_query`.
    pub fn query(
        &mut self,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
        now: Time,
    ) -> Result<QueryStarted, SerfError> {
        if name.starts_with(INTERNAL_PREFIX) {
            return Err(SerfError::ReservedQueryName);
        }
        self.start_query(name, payload, params, now)
    }

    /// Starts an internal key query.
    pub fn keyring_query(
        &mut self,
        op: KeyringOp,
        key: &str,
        timeout: Option<Duration>,
        now: Time,
    ) -> Result<QueryStarted, SerfError> {
        let payload = codec::to_bytes(&key.to_string());
        let params = QueryParams { timeout, ..Default::default() };
        self.start_query(op.query_name(), &payload, &params, now)
    }

    fn start_query(
        &mut self,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
        now: Time,
    ) -> Result<QueryStarted, SerfError> {
        if name.len() + payload.len() > self.cfg.query_size_limit {
            return Err(SerfError::QueryTooLarge(self.cfg.query_size_limit));
        }
        let ltime = self.query_clock.time();
        self.query_clock.increment();
        let id: u32 = self.rng.random();
        let timeout = params.timeout.unwrap_or_else(|| self.default_query_timeout());
        let q = QueryMsg {
            ltime,
            id,
            addr: self.cfg.addr,
            from: self.cfg.name.clone(),
            filter_nodes: params.filter_nodes.clone(),
            filter_tags: params.filter_tags.clone(),
            ack: params.request_ack,
            timeout_ms: timeout.as_millis().min(u128::from(u64::MAX)) as u64,
            name: name.to_string(),
            payload: payload.to_vec(),
        };
        let deadline = now + timeout;
        self.pending_queries
            .insert(id, PendingQuery { ltime, deadline, acks: HashSet::new(), responses: HashSet::new() });
        self.timer(deadline, SerfTimer::QueryTimeout(id));
        let msg = SerfMsg::Query(q.clone());
        self.handle_query(q, now);
        self.swim.queue_broadcast(None, BroadcastClass::Query, msg.encode());
        self.pump(now);
        Ok(QueryStarted { id, deadline })
    }

    /// Answers a query (user or internal) with `payload`.
    pub fn respond(&mut self, q: &QueryRef, payload: Vec<u8>, now: Time) -> Result<(), SerfError> {
        if now > q.deadline {
            return Err(SerfError::ResponsePastDeadline);
        }
        if payload.len() > self.cfg.query_response_size_limit {
            return Err(SerfError::ResponseTooLarge(self.cfg.query_response_size_limit));
        }
        self.send_response(q, false, payload, now);
        self.pump(now);
        Ok(())
    }

    fn send_response(&mut self, q: &QueryRef, ack: bool, payload: Vec<u8>, now: Time) {
        let from = self.cfg.name.clone();
        if q.addr == self.cfg.addr {
            self.handle_query_response(q.ltime, q.id, from, ack, payload, now);
            return;
        }
        let msg = SerfMsg::QueryResponse { ltime: q.ltime, id: q.id, from, ack, payload };
        self.swim.send_user(q.addr, msg.encode());
    }

    fn passes_filters(&self, q: &QueryMsg) -> bool {
        if !q.filter_nodes.is_empty() && !q.filter_nodes.contains(&self.cfg.name) {
            return false;
        }
        q.filter_tags.iter().all(|(tag, pattern)| self.tags.get(tag).is_some_and(|v| tag_matches(pattern, v)))
    }

    /// Returns whether the query was new (and so is re-broadcast).
    pub(super) fn handle_query(&mut self, q: QueryMsg, now: Time) -> bool {
        self.query_clock.witness(q.ltime);
        if q.ltime < self.query_min_time {
            return false;
        }
        if self.query_ring.too_old(q.ltime, self.query_clock.time()) {
            glog!(self.cfg.swim.scope, serf, warn, ltime = q.ltime, name = %q.name, "received an old query; ignoring");
            return false;
        }
        if !self.query_ring.insert(q.ltime, q.id) {
            return false;
        }
        self.dirty = true;
        if !self.passes_filters(&q) {
            return true;
        }
        let timeout = Duration::from_millis(q.timeout_ms.min(3_600_000));
        let qref = QueryRef {
            id: q.id,
            ltime: q.ltime,
            addr: q.addr,
            deadline: now + timeout,
            name: q.name.clone(),
        };
        if q.ack {
            self.send_response(&qref, true, Vec::new(), now);
        }
        if q.name == QUERY_PING {
            self.send_response(&qref, false, Vec::new(), now);
        } else if let Some(op) = KeyringOp::from_query_name(&q.name) {
            let key = if q.payload.is_empty() {
                String::new()
            } else {
                codec::from_bytes::<String>(&q.payload).unwrap_or_default()
            };
            self.out_events.push_back(SerfEvent::Keyring(KeyringRequest { op, key, query: qref }));
        } else if q.name.starts_with(INTERNAL_PREFIX) {
            glog!(self.cfg.swim.scope, serf, debug, name = %q.name, "ignoring unknown internal query");
        } else {
            self.out_events.push_back(SerfEvent::Query(IncomingQuery {
                query: qref,
                from: q.from,
                payload: q.payload,
            }));
        }
        true
    }

    pub(super) fn handle_query_response(
        &mut self,
        ltime: u64,
        id: u32,
        from: String,
        ack: bool,
        payload: Vec<u8>,
        now: Time,
    ) {
        let Some(p) = self.pending_queries.get_mut(&id) else {
            glog!(self.cfg.swim.scope, serf, debug, id, from = %from, "response for an unknown or finished query");
            return;
        };
        if p.ltime != ltime || now > p.deadline {
            return;
        }
        if ack {
            if p.acks.insert(from.clone()) {
                self.out_events.push_back(SerfEvent::QueryAck { id, from });
            }
        } else if p.responses.insert(from.clone()) {
            self.out_events.push_back(SerfEvent::QueryResponse { id, from, payload });
        }
    }

    pub(super) fn query_timeout(&mut self, id: u32, now: Time) {
        if let Some(p) = self.pending_queries.get(&id) {
            if p.deadline <= now {
                self.pending_queries.remove(&id);
                self.out_events.push_back(SerfEvent::QueryDone { id });
            }
        }
    }

    /// Stops collecting responses for a query early.
    pub fn finish_query(&mut self, id: u32) {
        self.pending_queries.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_filters_are_anchored_and_bounded() {
        assert!(tag_matches("consul", "consul"));
        assert!(!tag_matches("consul", "consul2"));
        assert!(tag_matches("con.*", "consul"));
        assert!(tag_matches("dc[0-9]+", "dc12"));
        assert!(!tag_matches("(", "x"), "invalid patterns match nothing");
        assert!(!tag_matches(&"a".repeat(300), "a"));
    }
}
