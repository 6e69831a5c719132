//! Recovery against real on-disk Raft state: a WAL and vote written the
//! way a server leaves them, then peers.json applied, then a real openraft
//! node started on the result.

use super::*;
use crate::catalog::Command;
use crate::consensus::snapshot::StoredSnapshot;
use crate::consensus::typ::{SnapshotMeta, StoredMembership};
use crate::consensus::{Consensus, ConsensusConfig};
use std::time::Duration;

fn uuid(n: u8) -> uuid::Uuid {
    uuid::Uuid::from_bytes([n, 0xa1, 2, 3, 4, 5, 0x46, 7, 0x88, 9, 10, 11, 12, 13, 14, n])
}

fn node(n: u8, ip: &str) -> (NodeId, RaftNode) {
    let u = uuid(n);
    (raft_id(&u), RaftNode { addr: format!("{ip}:8300"), name: format!("s{n}"), node_id: u.to_string() })
}

fn lid(term: u64, leader: NodeId, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, leader), index)
}

/// A server's raft dir after a 3-server cluster ran: the membership entry
/// at index 0 (where openraft's `initialize` puts it), blank entries, and a
/// committed vote for the leader.
async fn cluster_log(raft_dir: &Path, leader: NodeId, term: u64, last_index: u64) {
    let members: BTreeMap<NodeId, RaftNode> = (1..=3).map(|n| node(n, &format!("127.0.0.{n}"))).collect();
    let voters: BTreeSet<NodeId> = members.keys().copied().collect();
    let mut records = Vec::new();
    for i in 0..=last_index {
        let (log_id, payload) = if i == 0 {
            (lid(0, 0, 0), EntryPayload::Membership(Membership::new(vec![voters.clone()], members.clone())))
        } else {
            (lid(term, leader, i), EntryPayload::Blank)
        };
        records.push((i, postcard::to_allocvec(&Entry { log_id, payload }).unwrap()));
    }
    let (mut wal, _) = Wal::open(&raft_dir.join("wal")).unwrap();
    wal.append(&records).unwrap();
    drop(wal);
    let (mut log, _) = LogStore::open(raft_dir).unwrap();
    log.save_vote(&Vote::new_committed(term, leader)).await.unwrap();
}

async fn on_disk(raft_dir: &Path) -> LocalState {
    let (_, _, state) = open(raft_dir).await.unwrap();
    state
}

async fn start(raft_dir: &Path, me: &RaftNode) -> Consensus {
    let tasks = tokio_util::task::TaskTracker::new();
    let uuid = uuid::Uuid::parse_str(&me.node_id).unwrap();
    Consensus::start(
        ConsensusConfig {
            raft_dir: Some(raft_dir.to_path_buf()),
            node_id: raft_id(&uuid),
            node: me.clone(),
            datacenter: "dc1".into(),
            raft_multiplier: 1,
            dev: true,
            snapshot_threshold: 16384,
            trailing_logs: 10240,
            bootstrap: false,
        },
        crate::rpc::client::RpcClient::new(),
        &tasks,
    )
    .await
    .unwrap()
}

#[test]
fn recovery_ids_order_like_the_last_entries() {
    let (a, _) = node(1, "x");
    let (b, _) = node(2, "x");
    let servers =
        vec![RecoveredServer { id: a, node: RaftNode::default(), voter: true, source: Source::ThisServer }];
    let entry_for = |last: LogId, vote_term: u64, me: NodeId| {
        let st =
            LocalState { log_last: Some(last), vote: Some(Vote::new(vote_term, me)), ..Default::default() };
        recovery_entry(&st, &servers, me).unwrap()
    };
    // Same last term and leader, different lengths: the longer log wins,
    // whatever the survivors' own ids and votes are.
    let (short, v_short) = entry_for(lid(5, a, 100), 9, b);
    let (long, v_long) = entry_for(lid(5, a, 101), 5, a);
    assert!(long.log_id > short.log_id);
    assert_eq!(short.log_id, lid(5 + TERM_GAP, a, 101));
    // A newer last term wins over a longer log of an older term.
    let (newer, _) = entry_for(lid(6, b, 90), 6, a);
    assert!(newer.log_id > long.log_id);
    // Identical last entries give identical ids (and identical logs before them).
    assert_eq!(entry_for(lid(5, a, 100), 7, a).0.log_id, short.log_id);
    // The vote is above the entry, for this server.
    assert!(v_short.leader_id().term > short.log_id.leader_id.term);
    assert_eq!(v_long.leader_id().node_id, a);
    // A membership with exactly the listed voter.
    let EntryPayload::Membership(m) = &long.payload else { panic!("not a membership entry") };
    assert_eq!(m.voter_ids().collect::<Vec<_>>(), vec![a]);
}

#[tokio::test]
async fn one_survivor_recovers_alone_and_serves_writes() {
    let dir = tempfile::tempdir().unwrap();
    let raft = dir.path().join("raft");
    let (a, me) = node(1, "127.0.0.1");
    let (b, _) = node(2, "x");
    cluster_log(&raft, b, 3, 7).await;
    // Current format, this server only.
    std::fs::write(
        peers_path(&raft),
        format!(r#"[{{"id": "{}", "address": "127.0.0.1:8300", "non_voter": false}}]"#, me.node_id),
    )
    .unwrap();
    let servers = recover_at_start(&raft, dir.path(), &me).await.unwrap().unwrap();
    assert_eq!(servers.len(), 1);
    assert!(!peers_path(&raft).exists(), "peers.json is deleted after a recovery");
    let st = on_disk(&raft).await;
    assert_eq!(st.log_last, Some(lid(3 + TERM_GAP, b, 8)));
    assert_eq!(st.vote, Some(Vote::new(3 + TERM_GAP + 1, a)));
    assert_eq!(st.config.unwrap().voter_ids().collect::<Vec<_>>(), vec![a]);

    // A real node on this state elects itself and commits writes.
    let c = start(&raft, &me).await;
    assert!(c.wait_for_leader(Duration::from_secs(10)).await, "no leader after recovery");
    assert!(c.is_leader());
    c.proposer
        .propose(Command::KvSet { key: "k".into(), value: b"v".to_vec().into(), flags: 0 })
        .await
        .unwrap();
    assert_eq!(c.store.membership().membership().voter_ids().collect::<Vec<_>>(), vec![a]);
    c.shutdown().await;
    // Without a file, a second start changes nothing.
    let before = on_disk(&raft).await.log_last;
    assert!(recover_at_start(&raft, dir.path(), &me).await.unwrap().is_none());
    assert_eq!(on_disk(&raft).await.log_last, before);
}

#[tokio::test]
async fn the_old_format_admits_a_replacement_address() {
    let dir = tempfile::tempdir().unwrap();
    let raft = dir.path().join("raft");
    let (a, me) = node(1, "127.0.0.1");
    let (b, _) = node(2, "127.0.0.2");
    cluster_log(&raft, a, 2, 3).await;
    std::fs::write(peers_path(&raft), r#"["127.0.0.1:8300","127.0.0.2:8300","127.0.0.9:8300"]"#).unwrap();
    let servers = recover_at_start(&raft, dir.path(), &me).await.unwrap().unwrap();
    let sources: Vec<Source> = servers.iter().map(|s| s.source).collect();
    assert_eq!(sources, vec![Source::ThisServer, Source::LastConfiguration, Source::AwaitingServer]);
    let m = on_disk(&raft).await.config.unwrap();
    let voters: BTreeSet<NodeId> = m.voter_ids().collect();
    let placeholder = placeholder_id(&"127.0.0.9:8300".parse().unwrap());
    assert_eq!(voters, [a, b, placeholder].into_iter().collect());
    assert_eq!(m.get_node(&placeholder).unwrap().addr, "127.0.0.9:8300");
}

#[tokio::test]
async fn bad_files_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let raft = dir.path().join("raft");
    let (_, me) = node(1, "127.0.0.1");
    let (b, _) = node(2, "x");
    cluster_log(&raft, b, 3, 4).await;
    let before = on_disk(&raft).await;
    let cases: &[(&str, &str)] = &[
        ("null", "recovery failed to parse peers.json"),
        ("[\"127.0.0.1:8300\",", "not valid JSON"),
        ("[\"127.0.0.2:8300\"]", "this server (s1 at 127.0.0.1:8300"),
        ("[\"127.0.0.1:8300\",\"127.0.0.1:8300\"]", "listed twice"),
    ];
    for (text, want) in cases {
        std::fs::write(peers_path(&raft), text).unwrap();
        let e = recover_at_start(&raft, dir.path(), &me).await.unwrap_err();
        assert!(e.contains(want) && e.contains("left in place"), "{text}: {e}");
        assert!(peers_path(&raft).exists(), "the file stays for the operator to fix");
        let now = on_disk(&raft).await;
        assert_eq!((now.log_last, now.vote), (before.log_last, before.vote), "{text}: state changed");
    }
    // A server with no Raft data has nothing to recover.
    let empty = tempfile::tempdir().unwrap();
    let raft2 = empty.path().join("raft");
    std::fs::create_dir_all(&raft2).unwrap();
    std::fs::write(peers_path(&raft2), "[\"127.0.0.1:8300\"]").unwrap();
    let e = recover_at_start(&raft2, empty.path(), &me).await.unwrap_err();
    assert!(e.contains("no Raft data"), "{e}");
}

#[tokio::test]
async fn a_snapshot_newer_than_the_log_is_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let raft = dir.path().join("raft");
    let (a, me) = node(1, "127.0.0.1");
    let (b, nb) = node(2, "127.0.0.2");
    cluster_log(&raft, b, 2, 3).await;
    // A snapshot installed from a leader, far past the local log, with a
    // newer configuration of {s1, s2}.
    let members: BTreeMap<NodeId, RaftNode> = [(a, me.clone()), (b, nb)].into_iter().collect();
    let m = Membership::new(vec![members.keys().copied().collect()], members);
    let snap_last = lid(4, b, 50);
    let meta = SnapshotMeta {
        last_log_id: Some(snap_last),
        last_membership: StoredMembership::new(Some(lid(4, b, 40)), m),
        snapshot_id: "4-50".into(),
    };
    let data = postcard::to_allocvec(&crate::catalog::State::default()).unwrap();
    snapshot::save(&raft.join("snapshots"), &StoredSnapshot { meta, data }).unwrap();
    let st = on_disk(&raft).await;
    assert_eq!(st.config_nodes().len(), 2, "the snapshot's configuration is the newest");

    std::fs::write(peers_path(&raft), "[\"127.0.0.1:8300\"]").unwrap();
    recover_at_start(&raft, dir.path(), &me).await.unwrap().unwrap();
    let st = on_disk(&raft).await;
    assert_eq!(st.log_last, Some(lid(4 + TERM_GAP, b, 51)), "appended right after the snapshot, no gap");
    let c = start(&raft, &me).await;
    assert!(c.wait_for_leader(Duration::from_secs(10)).await, "no leader after recovery");
    c.proposer
        .propose(Command::KvSet { key: "k".into(), value: b"v".to_vec().into(), flags: 0 })
        .await
        .unwrap();
    c.shutdown().await;
    // The log reopens cleanly after more writes.
    assert!(on_disk(&raft).await.log_last.unwrap().index > 51);
}
