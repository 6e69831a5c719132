#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The integration test binary: every test starts real `consul` processes
//! (see `harness`) and talks to them over loopback.

mod golden;
mod harness;

mod blocking;
mod catalog;
mod checks_reap;
mod cli;
mod cluster;
mod config_errors;
mod coord;
mod discovery_cluster;
mod durability;
mod events;
mod filter;
mod gossip_faults;
mod http_api;
mod kv;
mod limits;
mod monitor;
mod multidc;
mod netns;
mod operator;
mod ops_cluster;
mod ops_info;
mod ops_netenv;
mod ops_recovery;
mod ops_signals;
mod ops_systemd;
mod raft_cluster;
mod sessions;
mod txn;
