//! The typed messages agents and servers exchange: query options and
//! metadata, and the errors every endpoint can return. Today they pass
//! in-process from the HTTP layer to this server; the server RPC port will
//! carry the same types between agents.

pub mod message;

pub use message::{Consistency, QueryMeta, QueryOptions, RpcError};
