//! Watch plans: Consul's `watch` data views (`key`, `keyprefix`,
//! `services`, `nodes`, `service`, `checks`, `event`) run as blocking-query
//! loops against an agent's HTTP API, with the handlers that react to them
//! (`script`, `http`). Shared by `consul watch` and the agent's configured
//! `watches`.
//!
//! Owns: parsing a watch's parameters (`spec`), the query each type makes
//! (`query`), change detection and the retry loop (`plan`), handlers
//! (`script`, `http_handler`, `json`) and agent config watches (`agent`).
//! Talks to the agent only through `api::Client`; must not reach into the
//! agent, server or catalog directly.

pub mod agent;
mod error;
pub mod http_handler;
pub mod json;
pub mod params;
pub mod plan;
pub mod query;
pub mod script;
pub mod spec;

pub use agent::{parse_agent_watches, AgentWatches};
pub use error::WatchError;
