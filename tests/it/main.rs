#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The integration test binary of the `consul` package. One binary rather
//! than one per file: each links the whole library, so every extra binary
//! costs a link on every change. Most tests start real `consul` processes
//! (see `harness`) and talk to them over loopback; the rest drive the
//! library in process: config loading (`config_hcl`), the DNS server with
//! an in-memory backend (`dns_*`), gossip on real sockets (`gossip_net`)
//! and in the simulator (`gossip_sim`), and the corpus replays
//! (`filter_corpus`, and `fuzz_corpus` with the `test-hooks` feature).

#[path = "../common/mod.rs"]
mod common;

mod dns_common;
mod golden;
mod harness;

mod acl;
mod acl_api;
mod acl_cli;
mod acl_cluster;
mod acl_login;
mod acl_repl;
mod blocking;
mod catalog;
mod checks_reap;
mod cli;
mod cluster;
mod config_entries;
mod config_errors;
mod config_hcl;
mod config_hcl_cli;
mod coord;
mod coordinates;
mod coordinates_netns;
mod discovery_cluster;
mod dns_agent;
mod dns_bench;
mod dns_dig;
mod dns_hot;
mod dns_server;
mod durability;
mod events;
mod filter;
mod filter_corpus;
// The replay drives `consul::fuzzing`, which only the feature compiles in.
#[cfg(feature = "test-hooks")]
mod fuzz_corpus;
mod gossip_faults;
mod gossip_net;
mod gossip_sim;
mod http_api;
mod kv;
mod limits;
mod mesh;
mod monitor;
mod multidc;
mod operator;
mod ops_churn;
mod ops_cluster;
mod ops_info;
mod ops_netenv;
mod ops_recovery;
mod ops_signals;
mod ops_systemd;
mod prepared_queries;
mod raft_cluster;
// Reads vs a held log append (needs the test-hooks feature for the hold).
#[cfg(feature = "test-hooks")]
mod reads;
mod sessions;
mod tls;
mod txn;
mod ui;
mod ui_acl;
// Idle blocking queries at scale (an ignored measurement).
mod watchers;
mod webdriver;
