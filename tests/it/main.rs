#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The integration test binary: every test starts real `consul` processes
//! (see `harness`) and talks to them over loopback.

mod golden;
mod harness;

mod blocking;
mod catalog;
mod cluster;
mod cli;
mod config_errors;
mod coord;
mod durability;
mod events;
mod filter;
mod gossip_faults;
mod http_api;
mod kv;
mod monitor;
mod multidc;
mod netns;
mod limits;
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
mod discovery_cluster;
mod checks_reap;
