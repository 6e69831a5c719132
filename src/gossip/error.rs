//! `GossipError`: what the `Gossip` handle returns when it refuses or
//! fails. One enum for the whole handle API, so callers can tell a pool
//! that is shut down from a key that is wrong without reading text; the
//! texts are the ones agents, logs and the HTTP API have always shown.
//!
//! Owns: the error type at the module boundary. The layers below keep
//! their own (`KeyringError`, `FileError`, `TransportError`, `SerfError`,
//! `CodecError`) and this wraps them unchanged.

use crate::gossip::codec::CodecError;
use crate::gossip::crypto::KeyringError;
use crate::gossip::files::FileError;
use crate::gossip::serf::SerfError;
use crate::gossip::transport::TransportError;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum GossipError {
    /// The driver task has stopped; nothing more can be asked of the pool.
    #[error("gossip pool is shut down")]
    ShutDown,
    #[error("gossip node name must not be empty")]
    EmptyNodeName,
    #[error("gossip advertise address {0} must be a specific IP address")]
    UnspecifiedAdvertise(SocketAddr),
    /// A join address that is neither an IP nor a resolvable name.
    #[error("failed to resolve {addr}: {source}")]
    Resolve { addr: String, source: std::io::Error },
    #[error("failed to resolve {0}: no addresses")]
    NoAddresses(String),
    #[error("a leave is already in progress")]
    LeaveInProgress,
    #[error("timeout waiting for the leave to propagate ({0:?})")]
    LeaveTimeout(Duration),
    #[error("gossip stopped before the leave finished")]
    StoppedBeforeLeft,
    /// A keyring operation on an agent without gossip encryption.
    #[error("gossip encryption is not enabled on this agent")]
    EncryptionDisabled,
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Serf(#[from] SerfError),
    /// A join reply that could not be decoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
}
