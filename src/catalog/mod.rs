//! The replicated state (Consul's state store): KV and the catalog of
//! nodes, services and checks. It defines the Raft log payload
//! (`Command`, `Proposal`) and how it applies, and the watch hub that wakes
//! blocking queries.
//!
//! Invariant: this module does no IO, reads no clock, uses no randomness and
//! spawns no tasks. The leader stamps any time-dependent value into a
//! `Command` before proposing it, so every replica applies identically.

pub mod acl;
pub mod auth;
pub mod before_mesh;
pub mod command;
pub mod config_entries;
pub mod coordinates;
pub mod kv;
pub mod mesh;
pub mod operator;
pub mod queries;
pub mod registry;
pub mod sessions;
pub mod state;
pub mod txn;
pub mod txn_catalog;
pub mod txn_result;
pub mod types;
pub mod watch;

pub use command::{Command, CommandResult, Proposal};
pub use kv::{KvEntry, KvTable};
pub use state::{Changes, State};
pub use watch::{Watch, WatchHub};
