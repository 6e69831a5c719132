//! User events (`/v1/event/fire`, `/v1/event/list`, `consul event`) and the
//! `_rexec` event that starts a remote execution.
//!
//! - `types`: the event as the API shows it, and the index derived from its ID.
//! - `filter`: the node / service / tag regular expressions.
//! - `wire`: how an event rides inside a serf user event.
//! - `ring`: the last 256 events this agent accepted, with change wake-ups.
//! - `fire`: validating and encoding a new event.
//! - `rexec`: the remote-exec protocol (KV layout, job spec) shared by
//!   `consul exec` and the agents.
//!
//! Owns the event shapes and semantics. Must not touch sockets, the agent
//! or the replicated state: gossip carries the bytes, `agent::events`
//! fires and receives them, `agent::exec` runs commands.
//! See docs/events.md.

pub mod filter;
pub mod fire;
pub mod rexec;
pub mod ring;
pub mod types;
pub mod wire;

pub use filter::Filters;
pub use fire::{EventError, FireRequest};
pub use ring::EventRing;
pub use types::{id_to_index, index_of, UserEvent};

/// The event name `consul exec` uses; agents never store it in the ring.
pub const REMOTE_EXEC_NAME: &str = "_rexec";

/// Serf's default user-event limit (name + payload, before and after
/// encoding), which Consul keeps.
pub const USER_EVENT_SIZE_LIMIT: usize = 512;

/// How many events an agent remembers (Consul's ring size).
pub const RING_SIZE: usize = 256;

/// The highest event version this agent understands.
pub const EVENT_VERSION: u8 = 1;
