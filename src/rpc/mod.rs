//! The server RPC port (8300): the method table (`method`: one argument
//! struct, wire number and reply type per call), the request context every
//! call carries (`context`), shared message types (`message`, `operator`),
//! framing (`frame`), the listener (`server`) and a multiplexing connection
//! pool (`client`). In-process calls use the same argument and reply types,
//! so a request is the same whether it came from HTTP on this agent or over
//! the wire.
//!
//! Must not decide what a request means: handlers belong to `server/`.

pub mod acl;
pub mod client;
pub mod context;
pub mod frame;
pub mod message;
pub mod method;
pub mod operator;
pub mod server;

pub use context::RequestContext;
pub use message::{Consistency, NodeDump, QueryMeta, QueryOptions, RpcError, ServiceFilter, ServiceHealth};
pub use method::{Method, WireCall, WireReply};
