//! Gossip membership for consul-rs: a SWIM failure detector with Lifeguard
//! (`swim`), a Serf layer above it (`serf`), encryption (`crypto`), and the
//! tokio transport and handle the agent uses.
//!
//! See docs/gossip.md for the design, defaults, wire formats and measured
//! figures.

pub mod codec;
pub mod crypto;
pub mod sim;
pub mod swim;
pub mod member;
pub mod serf;
