//! Replays every saved fuzz input (fuzz/corpus/<target>/ and
//! fuzz/regressions/<target>/) through `consul::fuzzing::<target>`, so
//! `cargo test` catches a regression in any decoder without a fuzzer.
//! A panic in any target fails the test and names the file.
//!
//! `write_seeds` (ignored; run by hand) regenerates the hand-made seed
//! inputs from the real encoders: `cargo test --features test-hooks --test it fuzz_corpus::write_seeds -- --ignored`.

use std::path::{Path, PathBuf};
use std::time::Instant;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn every_saved_fuzz_input_is_handled_without_panic() {
    let started = Instant::now();
    let mut per_target = std::collections::BTreeMap::<String, usize>::new();
    for kind in ["corpus", "regressions"] {
        let base = fuzz_dir().join(kind);
        let Ok(dirs) = std::fs::read_dir(&base) else { continue };
        for dir in dirs {
            let dir = dir.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            let target = dir.file_name().unwrap().to_string_lossy().to_string();
            let mut files: Vec<PathBuf> =
                std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            for file in files {
                let data = std::fs::read(&file).unwrap();
                let outcome = std::panic::catch_unwind(|| consul::fuzzing::run(&target, &data));
                match outcome {
                    Ok(true) => *per_target.entry(target.clone()).or_default() += 1,
                    Ok(false) => panic!("{}: no fuzz target named {target:?}", dir.display()),
                    Err(_) => panic!("fuzz target {target} panicked on {}", file.display()),
                }
            }
        }
    }
    // Every target has a seed corpus: a missing directory would silently
    // turn this test into a no-op for that surface.
    for t in consul::fuzzing::TARGETS {
        assert!(per_target.get(*t).copied().unwrap_or(0) > 0, "no saved inputs for fuzz target {t}");
    }
    eprintln!("replayed {per_target:?} in {:?}", started.elapsed());
}

/// Writes the hand-made seeds that need a real encoder (binary formats).
#[test]
#[ignore]
fn write_seeds() {
    seeds::write_all(&fuzz_dir().join("corpus"));
}

mod seeds {
    use bytes::Bytes;
    use consul::catalog::{Command, Proposal};
    use consul::config::runtime::GossipSettings;
    use consul::consensus::typ::{Entry, RaftNode, TypeConfig};
    use consul::gossip::serf::{Serf, SerfConfig};
    use consul::gossip::swim::{Output, SwimConfig};
    use consul::rpc::frame::{self, Kind};
    use consul::rpc::message::RaftRpc;
    use consul::rpc::method::{self, WireCall};
    use consul::rpc::RequestContext;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership};
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::SocketAddr;
    use std::path::Path;
    use std::str::FromStr;
    use std::time::Duration;

    fn put(dir: &Path, target: &str, name: &str, data: &[u8]) {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("seed-{name}")), data).unwrap();
    }

    pub fn write_all(dir: &Path) {
        dns(dir);
        gossip(dir);
        rpc(dir);
        raft_log(dir);
        snapshot(dir);
    }

    fn dns(dir: &Path) {
        let cases: &[(&str, RecordType, bool)] = &[
            ("web.service.consul.", RecordType::A, false),
            ("web.service.consul.", RecordType::SRV, true),
            ("web.service.consul.", RecordType::ANY, false),
            ("primary.web.service.dc1.consul.", RecordType::AAAA, false),
            ("_web._tcp.service.consul.", RecordType::SRV, false),
            ("node1.node.consul.", RecordType::A, false),
            ("node2.node.dc1.alt.test.", RecordType::TXT, true),
            ("1.0.0.10.in-addr.arpa.", RecordType::PTR, false),
            ("0a000001.addr.dc1.consul.", RecordType::A, false),
            ("consul.", RecordType::SOA, false),
            ("consul.", RecordType::NS, true),
            ("nope.service.dc9.consul.", RecordType::A, false),
            ("example.com.", RecordType::A, false),
        ];
        for (i, (name, qtype, edns)) in cases.iter().enumerate() {
            let mut m = Message::new(0x1234 + i as u16, MessageType::Query, OpCode::Query);
            m.metadata.recursion_desired = true;
            m.add_query(Query::query(Name::from_str(name).unwrap(), *qtype));
            if *edns {
                let mut e = Edns::new();
                e.set_max_payload(4096);
                m.set_edns(e);
            }
            let bytes = m.to_vec().unwrap();
            // Mode byte: even = UDP, odd = TCP.
            let mut input = vec![(i % 2) as u8];
            input.extend_from_slice(&bytes);
            put(dir, "dns_request", &format!("{i:02}-{}-{qtype}", name.trim_end_matches('.')), &input);
        }
    }

    fn serf(i: u8) -> Serf {
        let addr = SocketAddr::from(([127, 0, 0, 10 + i], 8301));
        let mut tags = BTreeMap::new();
        tags.insert("role".to_string(), "consul".to_string());
        tags.insert("dc".to_string(), "dc1".to_string());
        let cfg = SerfConfig::new(
            format!("seed-{i}"),
            addr,
            tags,
            SwimConfig::from_settings(&GossipSettings::lan()),
        );
        Serf::new(cfg, u64::from(i), Duration::from_secs(100), None).unwrap()
    }

    fn gossip(dir: &Path) {
        let now = Duration::from_secs(100);
        let mut a = serf(1);
        let mut b = serf(2);
        let join = a.join_request(now);
        put(dir, "gossip_packet", "stream-join", &[&[2u8][..], &join].concat());
        let from = SocketAddr::from(([127, 0, 0, 11], 8301));
        let reply = b.handle_stream(from, &join, now).unwrap();
        put(dir, "gossip_packet", "join-reply", &[&[3u8][..], &reply].concat());
        put(dir, "gossip_packet", "stream-reply", &[&[4u8][..], &reply].concat());
        a.handle_join_reply(&reply, now).unwrap();
        // Run a's timers for a while and keep the first few packets it sends.
        let mut n = 0;
        let mut timers = Vec::new();
        for _ in 0..50 {
            while let Some(o) = a.poll_output() {
                match o {
                    Output::Packet { bytes, .. } if n < 6 => {
                        put(dir, "gossip_packet", &format!("packet-{n}"), &[&[0u8][..], &bytes].concat());
                        put(dir, "gossip_packet", &format!("sealed-{n}"), &[&[1u8][..], &bytes].concat());
                        n += 1;
                    }
                    Output::Timer { at, timer } => timers.push((at, timer)),
                    _ => {}
                }
            }
            timers.sort_by_key(|(at, _)| *at);
            if timers.is_empty() {
                break;
            }
            let (at, t) = timers.remove(0);
            a.handle_timer(t, at.max(now));
        }
        assert!(n > 0, "no gossip packets produced");
    }

    fn rpc(dir: &Path) {
        let mut pre = frame::MAGIC.to_vec();
        pre.push(frame::VERSION);
        let vote = openraft::raft::VoteRequest::<u64>::new(
            openraft::Vote::new(3, 1),
            Some(LogId::new(CommittedLeaderId::new(2, 1), 10)),
        );
        let ae = openraft::raft::AppendEntriesRequest::<TypeConfig> {
            vote: openraft::Vote::new_committed(3, 1),
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(2, 1), 10)),
            entries: vec![entry(11, 3, EntryPayload::Blank)],
            leader_commit: None,
        };
        let ctx = RequestContext::default;
        let raft = |kind, payload: Vec<u8>| method::Raft { kind, target: 7, payload: payload.into() };
        let reqs: Vec<(&str, WireCall)> = vec![
            ("ping", WireCall::new(ctx(), &method::Ping {}).unwrap()),
            ("kvget", WireCall::new(ctx(), &method::KvGet { key: "a/b".into() }).unwrap()),
            (
                "vote",
                WireCall::new(ctx(), &raft(RaftRpc::Vote, postcard::to_allocvec(&vote).unwrap())).unwrap(),
            ),
            (
                "append",
                WireCall::new(ctx(), &raft(RaftRpc::AppendEntries, postcard::to_allocvec(&ae).unwrap()))
                    .unwrap(),
            ),
            (
                "kvapply",
                WireCall::new(
                    ctx(),
                    &method::KvApply {
                        command: Command::KvSet {
                            key: "k".into(),
                            value: Bytes::from_static(b"v"),
                            flags: 1,
                        },
                    },
                )
                .unwrap(),
            ),
        ];
        for (name, r) in reqs {
            let payload = postcard::to_allocvec(&r).unwrap();
            let f = frame::encode(9, Kind::Request, &payload).unwrap();
            put(dir, "rpc_frame", name, &[&pre[..], &f].concat());
        }
    }

    fn entry(index: u64, term: u64, payload: EntryPayload<TypeConfig>) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(term, 1), index), payload }
    }

    fn raft_log(dir: &Path) {
        let tmp = tempfile::tempdir().unwrap();
        let (mut wal, _) = consul::consensus::wal::Wal::open(tmp.path()).unwrap();
        let members = BTreeMap::from([(
            1u64,
            RaftNode { addr: "127.0.0.1:8300".into(), name: "s1".into(), node_id: "x".into() },
        )]);
        let membership = Membership::new(vec![BTreeSet::from([1u64])], members);
        let entries = [
            entry(1, 1, EntryPayload::Blank),
            entry(2, 1, EntryPayload::Membership(membership)),
            entry(
                3,
                1,
                EntryPayload::Normal(Proposal::V1(vec![Command::KvSet {
                    key: "k".into(),
                    value: Bytes::from_static(b"v"),
                    flags: 0,
                }])),
            ),
        ];
        let recs: Vec<(u64, Vec<u8>)> =
            entries.iter().map(|e| (e.log_id.index, postcard::to_allocvec(e).unwrap())).collect();
        wal.append(&recs).unwrap();
        drop(wal);
        let seg = std::fs::read_dir(tmp.path()).unwrap().next().unwrap().unwrap().path();
        let bytes = std::fs::read(seg).unwrap();
        put(dir, "raft_log", "segment-3", &bytes);
        put(dir, "raft_log", "entry-membership", &recs[1].1);
        put(dir, "raft_log", "torn-tail", &bytes[..bytes.len() - 3]);
    }

    fn snapshot(dir: &Path) {
        let state = postcard::to_allocvec(&consul::catalog::State::default()).unwrap();
        put(
            dir,
            "snapshot_archive",
            "archive-empty",
            &consul::snapshot::write_archive(5, 2, &state).unwrap(),
        );
        let tmp = tempfile::tempdir().unwrap();
        let snap = consul::consensus::snapshot::StoredSnapshot { meta: Default::default(), data: state };
        let path = consul::consensus::snapshot::save(tmp.path(), &snap).unwrap();
        put(dir, "snapshot_archive", "stored", &std::fs::read(path).unwrap());
    }
}
