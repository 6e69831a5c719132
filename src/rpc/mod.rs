//! The server RPC port (8300): typed messages (`message`), framing
//! (`frame`), the listener (`server`) and a multiplexing connection pool
//! (`client`). In-process calls use the same types, so a request is the
//! same whether it came from HTTP on this agent or over the wire.
//!
//! Must not decide what a request means: dispatch belongs to `server/`.

pub mod client;
pub mod frame;
pub mod message;
pub mod operator;
pub mod server;

pub use message::{
    Consistency, QueryMeta, QueryOptions, Request, Response, RpcError, ServiceFilter, ServiceHealth,
};
