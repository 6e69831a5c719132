//! Firing a user event: validate, stamp an ID, and broadcast it on this
//! agent's LAN pool.
//!
//! Every agent (client or server) broadcasts directly on the LAN pool it
//! belongs to. Consul instead sends a client's event to a server over RPC
//! and lets the server broadcast it, so that the server can check ACLs;
//! we enforce no ACLs, and the LAN pool of a datacenter holds every agent
//! of it, so the result is the same set of receivers with one hop less.
//! A `?dc=` naming another datacenter is refused (no cross-datacenter
//! path exists).
//!
//! Owns validation and encoding (`prepare`); the agent broadcasts the
//! result (`agent::events`), so the HTTP layer only talks to the agent.

use super::filter::Filters;
use super::types::UserEvent;
use super::{wire, EVENT_VERSION, USER_EVENT_SIZE_LIMIT};
use crate::rpc::RpcError;

/// What the caller asks to fire.
#[derive(Clone, Debug, Default)]
pub struct FireRequest {
    pub name: String,
    /// `None` when the request had no body.
    pub payload: Option<Vec<u8>>,
    pub node_filter: String,
    pub service_filter: String,
    pub tag_filter: String,
}

/// Why an event was not fired.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("{0}")]
    BadRequest(String),
    /// Over serf's user-event limit.
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("{0}")]
    Internal(String),
}

/// Serf's message for an event over its limit (Consul passes it through).
pub fn too_large_message() -> String {
    format!("user event exceeds configured limit of {USER_EVENT_SIZE_LIMIT} bytes before encoding")
}

impl FireRequest {
    /// Bytes the request occupies before encoding: enough to refuse an
    /// oversized request before compiling its expressions.
    fn raw_size(&self) -> usize {
        wire::SERF_PREFIX.len()
            + self.name.len()
            + self.payload.as_ref().map_or(0, Vec::len)
            + self.node_filter.len()
            + self.service_filter.len()
            + self.tag_filter.len()
    }
}

/// An event ready to broadcast: what the API answers, and its serf name
/// and encoded body.
pub struct Prepared {
    pub event: UserEvent,
    pub serf_name: String,
    pub body: Vec<u8>,
}

/// Validates a request (size, filter expressions), stamps an ID and
/// encodes it. The caller has checked the name and the datacenter.
pub fn prepare(req: FireRequest) -> Result<Prepared, EventError> {
    if req.raw_size() > USER_EVENT_SIZE_LIMIT {
        return Err(EventError::TooLarge(too_large_message()));
    }
    Filters::compile(&req.node_filter, &req.service_filter, &req.tag_filter)
        .map_err(EventError::BadRequest)?;
    let event = UserEvent {
        id: uuid::Uuid::new_v4(),
        name: req.name,
        payload: req.payload,
        node_filter: req.node_filter,
        service_filter: req.service_filter,
        tag_filter: req.tag_filter,
        version: EVENT_VERSION,
        ltime: 0,
    };
    let serf_name = wire::serf_name(&event.name);
    let body = wire::encode(&event).map_err(EventError::Internal)?;
    if serf_name.len() + body.len() > USER_EVENT_SIZE_LIMIT {
        return Err(EventError::TooLarge(too_large_message()));
    }
    Ok(Prepared { event, serf_name, body })
}
