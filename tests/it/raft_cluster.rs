//! Multi-server Raft over the real server RPC port, in process: three
//! servers on their own loopback addresses replicate, serve linearizable
//! reads from followers (read index), forward writes to the leader, and
//! elect a new leader when the old one stops.

use consul::catalog::Command;
use consul::consensus::typ::{raft_id, RaftNode};
use consul::consensus::{Consensus, ConsensusConfig};
use consul::rpc::client::RpcClient;
use consul::rpc::{Consistency, QueryOptions};
use consul::server::endpoints::RpcEndpoints;
use consul::server::{Server, ServerSettings};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

struct Node {
    server: Arc<Server>,
    addr: SocketAddr,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn start_node(i: usize) -> (Node, u64, RaftNode) {
    let ip = crate::harness::unique_ip();
    let addr: SocketAddr = format!("{ip}:8300").parse().unwrap();
    let uuid = uuid::Uuid::new_v4();
    let raft_node = RaftNode { addr: addr.to_string(), name: format!("s{i}"), node_id: uuid.to_string() };
    let dir = tempfile::tempdir().unwrap();
    let tasks = TaskTracker::new();
    let rpc = RpcClient::new();
    let consensus = Consensus::start(
        ConsensusConfig {
            raft_dir: Some(dir.path().join("raft")),
            node_id: raft_id(&uuid),
            node: raft_node.clone(),
            datacenter: "dc1".into(),
            raft_multiplier: 1,
            dev: false,
            snapshot_threshold: 16384,
            trailing_logs: 10240,
            bootstrap: false,
        },
        rpc.clone(),
        &tasks,
    )
    .await
    .unwrap();
    let settings = ServerSettings {
        datacenter: "dc1".into(),
        default_query_time: Duration::from_secs(300),
        max_query_time: Duration::from_secs(600),
        rpc_hold_timeout: Duration::from_secs(7),
        autopilot: Default::default(),
        acl: Default::default(),
        coordinates: None,
        config_entry_bootstrap: Vec::new(),
    };
    let server = Arc::new(Server::new(consensus, settings, rpc));
    let shutdown = CancellationToken::new();
    consul::rpc::server::serve(addr, Arc::new(RpcEndpoints(server.clone())), 100, shutdown.clone(), &tasks)
        .await
        .unwrap();
    (Node { server, addr, shutdown, _dir: dir }, raft_id(&uuid), raft_node)
}

fn set(key: &str, value: &str) -> Command {
    Command::KvSet { key: key.into(), value: value.as_bytes().to_vec().into(), flags: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_replicate_and_fail_over() {
    let mut nodes = Vec::new();
    let mut members = BTreeMap::new();
    for i in 0..3 {
        let (n, id, rn) = start_node(i).await;
        members.insert(id, rn);
        nodes.push(n);
    }
    nodes[0].server.consensus().initialize(members).await.unwrap();
    for n in &nodes {
        assert!(n.server.consensus().wait_for_leader(Duration::from_secs(15)).await, "no leader");
    }
    let leader_addr = nodes[0].server.leader_addr();
    let follower = nodes.iter().find(|n| n.addr.to_string() != leader_addr).unwrap();

    // A write through a follower is forwarded to the leader.
    assert!(follower.server.kv_apply(set("k", "v1")).await.unwrap());
    // A default read on another follower is linearizable: it sees the write at once.
    for n in &nodes {
        let (meta, e) = n.server.kv_get("k", &QueryOptions::default()).await.unwrap();
        assert_eq!(e.unwrap().value.as_ref(), b"v1", "read on {}", n.addr);
        assert!(meta.known_leader);
    }
    assert_eq!(nodes[0].server.peers().len(), 3);

    // Stop the leader: the others elect a new one and keep serving.
    let leader_idx = nodes.iter().position(|n| n.addr.to_string() == leader_addr).unwrap();
    let old = nodes.remove(leader_idx);
    old.shutdown.cancel();
    old.server.consensus().shutdown().await;
    drop(old);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let l = nodes[0].server.leader_addr();
        if !l.is_empty() && l != leader_addr {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(nodes[1].server.kv_apply(set("k", "v2")).await.unwrap());
    for n in &nodes {
        let (_, e) = n.server.kv_get("k", &QueryOptions::default()).await.unwrap();
        assert_eq!(e.unwrap().value.as_ref(), b"v2");
        let stale = QueryOptions { consistency: Consistency::Stale, ..Default::default() };
        assert!(n.server.kv_get("k", &stale).await.is_ok());
    }
}
