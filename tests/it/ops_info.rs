//! Adding a server to a running cluster, watched the way an operator does
//! it: `consul info` on the new server until its raft indexes reach the
//! leader's, then its peer count, state and leader contact.

use crate::harness::{unique_ip, wait_until, Agent};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

/// A server on `ip` with the cluster tests' fast timings.
fn start_server(ip: Ipv4Addr, name: &str, expect: Option<u32>, join: &[Ipv4Addr]) -> Agent {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let others: Vec<Ipv4Addr> = join.iter().copied().filter(|j| *j != ip).collect();
    Agent::spawn(ip, crate::cluster::server_args(ip, &dir, name, expect, &others, &[]), Some(dir), Some(tmp))
}

/// `consul info` parsed into section → key → value.
fn info(a: &Agent) -> BTreeMap<String, BTreeMap<String, String>> {
    let out = a.cli(&["info"]);
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    if out.code != 0 {
        return sections;
    }
    let mut current = String::new();
    for line in out.stdout.lines() {
        if let Some(kv) = line.strip_prefix('\t') {
            if let Some((k, v)) = kv.split_once(" = ") {
                sections.entry(current.clone()).or_default().insert(k.to_string(), v.to_string());
            }
        } else if let Some(name) = line.strip_suffix(':') {
            current = name.to_string();
        }
    }
    sections
}

fn raft_u64(i: &BTreeMap<String, BTreeMap<String, String>>, key: &str) -> u64 {
    i.get("raft").and_then(|r| r.get(key)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn raft_str<'a>(i: &'a BTreeMap<String, BTreeMap<String, String>>, key: &str) -> &'a str {
    i.get("raft").and_then(|r| r.get(key)).map(String::as_str).unwrap_or("")
}

const INDEXES: [&str; 3] = ["commit_index", "applied_index", "last_log_index"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_info_shows_a_new_server_catching_up_with_the_leader() {
    let ips: Vec<Ipv4Addr> = (0..3).map(|_| unique_ip()).collect();
    let servers: Vec<Agent> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| start_server(*ip, &format!("s{}", i + 1), Some(3), &ips))
        .collect();
    for s in &servers {
        s.wait_ready().await;
    }

    // Write N keys, so the new server has a log to catch up on.
    const N: usize = 60;
    for i in 0..N {
        let r = servers[i % 3].put(&format!("/v1/kv/catchup/{i:03}"), format!("value-{i}").as_bytes()).await;
        assert!(r.status.is_success(), "write {i}: {} {}", r.status, r.text());
    }
    let written = servers[0].get("/v1/kv/catchup/059").await.index().expect("X-Consul-Index");

    // A fourth server, no bootstrap_expect, joining the other three.
    let s4 = start_server(unique_ip(), "s4", None, &ips);
    s4.wait_ready().await;

    // Poll `consul info` on both until the new server's indexes equal the
    // leader's (the leader's move too: it registers s4 in the catalog).
    let leader_ip = {
        let l: String = s4.get("/v1/status/leader").await.json().expect("leader");
        l.rsplit_once(':').map(|(h, _)| h.to_string()).expect("leader address")
    };
    let leader =
        servers.iter().find(|s| s.ip.to_string() == leader_ip).expect("leader is one of the first three");
    let mut last = (BTreeMap::new(), BTreeMap::new());
    let converged = wait_until(Duration::from_secs(60), || {
        let (l, n) = (info(leader), info(&s4));
        let same = INDEXES.iter().all(|k| raft_u64(&n, k) == raft_u64(&l, k) && raft_u64(&n, k) > 0);
        last = (l, n);
        async move { same }
    })
    .await;
    let (l, n) = &last;
    assert!(converged, "s4 never caught up:\nleader raft: {:?}\ns4 raft: {:?}", l.get("raft"), n.get("raft"));
    for k in INDEXES {
        assert!(
            raft_u64(n, k) >= written,
            "{k} on s4 is {} but the last key was written at {written}",
            raft_u64(n, k)
        );
    }
    // The new server serves the data it caught up on.
    assert_eq!(s4.get("/v1/kv/catchup/000?raw&stale").await.text(), "value-0");

    // Once autopilot promotes it: four voters, so three peers each; s4
    // follows and hears from the leader often.
    assert!(
        wait_until(Duration::from_secs(30), || async { raft_u64(&info(&s4), "num_peers") == 3 }).await,
        "s4 never counted 3 peers: {:?}",
        info(&s4).get("raft")
    );
    let n = info(&s4);
    assert_eq!(raft_str(&n, "state"), "Follower", "{:?}", n.get("raft"));
    assert_eq!(raft_u64(&info(leader), "num_peers"), 3);
    assert_eq!(raft_str(&info(leader), "state"), "Leader");
    assert_eq!(raft_str(&info(leader), "last_contact"), "0");
    let contact = raft_str(&n, "last_contact");
    let since = consul::duration::parse(contact)
        .unwrap_or_else(|e| panic!("last_contact {contact:?} is not a duration: {e}"));
    assert!(since < Duration::from_secs(3), "s4 last heard from the leader {contact} ago");
    assert_eq!(n.get("consul").and_then(|c| c.get("server")).map(String::as_str), Some("true"));
    assert_eq!(n.get("consul").and_then(|c| c.get("leader")).map(String::as_str), Some("false"));
}
