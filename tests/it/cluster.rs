//! Multi-server clusters of real `consul` processes, each on its own
//! loopback address with Consul's default ports: `bootstrap_expect`, a
//! client agent, forwarding, leader failure, a wiped server, late servers
//! and graceful leave, the operator commands, and reads without a leader.

use crate::harness::{unique_ip, wait_until, Agent};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Short autopilot and RPC-hold timings so the scenarios run in seconds.
pub(crate) const FAST: &str = r#"autopilot { server_stabilization_time = "1s" } performance { rpc_hold_timeout = "2s" } retry_interval = "1s""#;

pub(crate) fn server_args(
    ip: Ipv4Addr,
    dir: &std::path::Path,
    name: &str,
    expect: Option<u32>,
    join: &[Ipv4Addr],
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "agent".into(),
        "-server".into(),
        format!("-data-dir={}", dir.display()),
        format!("-bind={ip}"),
        format!("-client={ip}"),
        format!("-node={name}"),
        "-hcl".into(),
        FAST.into(),
    ];
    if let Some(n) = expect {
        args.push(format!("-bootstrap-expect={n}"));
    }
    for j in join {
        args.push(format!("-retry-join={j}"));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn start_server(name: &str, expect: Option<u32>, join: &[Ipv4Addr], extra: &[&str]) -> Agent {
    let ip = unique_ip();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let mut join: Vec<Ipv4Addr> = join.to_vec();
    join.retain(|j| *j != ip);
    Agent::spawn(ip, server_args(ip, &dir, name, expect, &join, extra), Some(dir), Some(tmp))
}

/// Three servers with `bootstrap_expect = 3` that all retry-join each other.
pub(crate) fn start_three(extra: &[&str]) -> Vec<Agent> {
    let ips: Vec<Ipv4Addr> = (0..3).map(|_| unique_ip()).collect();
    ips.iter()
        .enumerate()
        .map(|(i, ip)| {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = tmp.path().to_path_buf();
            let others: Vec<Ipv4Addr> = ips.iter().filter(|o| *o != ip).copied().collect();
            let args = server_args(*ip, &dir, &format!("s{}", i + 1), Some(3), &others, extra);
            Agent::spawn(*ip, args, Some(dir), Some(tmp))
        })
        .collect()
}

fn start_client(name: &str, join: &[Ipv4Addr]) -> Agent {
    let joins: Vec<String> = join.iter().map(|j| format!("-retry-join={j}")).collect();
    Agent::on_own_ip(name, &joins)
}

async fn leader_of(a: &Agent) -> Option<String> {
    let r = a.client().request(hyper::Method::GET, "/v1/status/leader", None).await.ok()?;
    let l: String = r.json().ok()?;
    (!l.is_empty()).then_some(l)
}

/// Waits until every agent names the same leader; returns its RPC address.
pub(crate) async fn agreed_leader(agents: &[&Agent], timeout: Duration) -> String {
    agreed_leader_other_than(agents, "", timeout).await
}

/// Like `agreed_leader`, but a leader at `old` does not count: right after
/// a leader dies its followers still name it until they elect another.
async fn agreed_leader_other_than(agents: &[&Agent], old: &str, timeout: Duration) -> String {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let mut leaders = Vec::new();
        for a in agents {
            leaders.push(leader_of(a).await);
        }
        if let Some(Some(l)) = leaders.first() {
            if l != old && leaders.iter().all(|x| x.as_deref() == Some(l.as_str())) {
                return l.clone();
            }
        }
        assert!(std::time::Instant::now() < deadline, "agents never agreed on a leader: {leaders:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn raft_servers(a: &Agent) -> Vec<Value> {
    let r = a.get("/v1/operator/raft/configuration").await;
    assert!(r.status.is_success(), "raft configuration: {} {}", r.status, r.text());
    let v: Value = r.json().expect("json");
    v["Servers"].as_array().cloned().unwrap_or_default()
}

async fn voters(a: &Agent) -> usize {
    match a.client().request(hyper::Method::GET, "/v1/operator/raft/configuration", None).await {
        Ok(r) if r.status.is_success() => r
            .json::<Value>()
            .ok()
            .and_then(|v| v["Servers"].as_array().map(|s| s.iter().filter(|s| s["Voter"] == true).count()))
            .unwrap_or(0),
        _ => 0,
    }
}

fn server_rpc(a: &Agent) -> String {
    format!("{}:8300", a.ip)
}

async fn alive_members(a: &Agent) -> usize {
    match a.client().request(hyper::Method::GET, "/v1/agent/members", None).await {
        Ok(r) => r.json::<Vec<Value>>().map(|m| m.iter().filter(|m| m["Status"] == 1).count()).unwrap_or(0),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_and_a_client_survive_the_leader_being_killed() {
    let mut servers = start_three(&[]);
    let server_ips: Vec<Ipv4Addr> = servers.iter().map(|s| s.ip).collect();
    let client = start_client("c1", &server_ips);

    // One leader, the same for everyone; four members everywhere.
    let all: Vec<&Agent> = servers.iter().chain(std::iter::once(&client)).collect();
    let leader = agreed_leader(&all, Duration::from_secs(60)).await;
    for a in &all {
        assert!(
            wait_until(Duration::from_secs(30), || async { alive_members(a).await == 4 }).await,
            "{} never saw 4 members",
            a.addr()
        );
    }
    let members = client.cli(&["members"]);
    assert_eq!(members.code, 0, "{members:?}");
    assert_eq!(members.stdout.lines().count(), 5, "header + 4 members:\n{}", members.stdout);
    assert_eq!(members.stdout.lines().filter(|l| l.contains(" server ")).count(), 3, "{}", members.stdout);

    // Writes through the client agent, reads on every server.
    for i in 0..20 {
        let r = client.put(&format!("/v1/kv/acked/{i}"), format!("v{i}").as_bytes()).await;
        assert!(r.status.is_success(), "{} {}", r.status, r.text());
    }
    for s in &servers {
        let r = s.get("/v1/kv/acked/19?raw").await;
        assert_eq!(r.text(), "v19", "read on {}", s.addr());
    }

    // Operator views agree with the cluster.
    let peers = servers[0].cli(&["operator", "raft", "list-peers"]);
    assert_eq!(peers.code, 0, "{peers:?}");
    assert_eq!(peers.stdout.lines().filter(|l| l.contains("leader")).count(), 1, "{}", peers.stdout);
    assert_eq!(peers.stdout.lines().filter(|l| l.contains("follower")).count(), 2, "{}", peers.stdout);
    assert!(peers.stdout.contains(&leader), "{}", peers.stdout);
    let follower = servers.iter().find(|s| server_rpc(s) != leader).expect("a follower");
    let info = follower.cli(&["info"]);
    assert!(info.stdout.contains("\tstate = Follower"), "{}", info.stdout);
    assert!(!info.stdout.contains("\tlast_contact = never"), "{}", info.stdout);
    assert!(
        wait_until(Duration::from_secs(15), || async {
            let r = servers[0].get("/v1/operator/autopilot/health").await;
            r.status == 200 && r.json::<Value>().map(|v| v["FailureTolerance"] == 1).unwrap_or(false)
        })
        .await,
        "autopilot never reported a healthy cluster tolerating one failure"
    );

    // kill -9 the leader: the others elect a new one and lose nothing acknowledged.
    let li = servers.iter().position(|s| server_rpc(s) == leader).expect("leader is a server");
    let old_name = format!("s{}", li + 1);
    servers[li].kill9();
    let survivors: Vec<&Agent> = servers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != li)
        .map(|(_, s)| s)
        .chain(std::iter::once(&client))
        .collect();
    let new_leader = agreed_leader_other_than(&survivors, &leader, Duration::from_secs(30)).await;
    assert_ne!(new_leader, leader);
    // A survivor found the dead leader's port closed and campaigned once
    // its lease was over, instead of a randomised timeout later.
    assert!(
        servers.iter().enumerate().any(|(i, s)| i != li
            && s.output_text().contains("campaigning: the leader is gone and its lease is over")),
        "no survivor campaigned early on the dead leader's closed port"
    );
    for i in 0..20 {
        let r = client.get(&format!("/v1/kv/acked/{i}?raw")).await;
        assert_eq!(r.text(), format!("v{i}"), "acknowledged write acked/{i} lost");
    }
    let r = client.put("/v1/kv/after-failover", b"yes").await;
    assert!(r.status.is_success(), "write after failover: {} {}", r.status, r.text());

    // The dead server's node turns critical in the catalog.
    let path = format!("/v1/health/node/{old_name}");
    assert!(
        wait_until(Duration::from_secs(30), || async {
            let r = client.get(&path).await;
            r.json::<Vec<Value>>()
                .map(|cs| cs.iter().any(|c| c["CheckID"] == "serfHealth" && c["Status"] == "critical"))
                .unwrap_or(false)
        })
        .await,
        "serfHealth of the killed server never went critical"
    );
    // Its services leave the passing set with it (here the `consul` service).
    let passing: Vec<Value> = client.get("/v1/health/service/consul?passing").await.json().expect("json");
    let nodes: Vec<&str> = passing.iter().filter_map(|e| e["Node"]["Node"].as_str()).collect();
    assert_eq!(nodes.len(), 2, "passing consul instances: {nodes:?}");
    assert!(!nodes.contains(&old_name.as_str()), "killed server still passing: {nodes:?}");

    // The old leader restarts, rejoins as a follower and catches up.
    servers[li].restart();
    let all: Vec<&Agent> = servers.iter().chain(std::iter::once(&client)).collect();
    agreed_leader(&all, Duration::from_secs(30)).await;
    let back = &servers[li];
    assert!(
        wait_until(Duration::from_secs(30), || async {
            back.get("/v1/kv/after-failover?raw").await.text() == "yes"
        })
        .await,
        "restarted server never caught up"
    );
    assert!(
        wait_until(Duration::from_secs(30), || async { voters(back).await == 3 }).await,
        "raft has not 3 voters again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_server_joins_the_existing_cluster_instead_of_forming_a_new_one() {
    wipe_and_rejoin(false).await;
}

/// With `-node-id` configured the wiped server comes back under its old Raft
/// id with an empty log; the leader must re-send the log, not fall over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_server_with_a_configured_node_id_rejoins() {
    wipe_and_rejoin(true).await;
}

async fn wipe_and_rejoin(keep_node_id: bool) {
    let mut servers = start_three(&[]);
    let refs: Vec<&Agent> = servers.iter().collect();
    agreed_leader(&refs, Duration::from_secs(60)).await;
    let r = servers[0].put("/v1/kv/before-wipe", b"1").await;
    assert!(r.status.is_success());

    // Stop a follower, wipe its data dir, start it with the same flags.
    let leader = leader_of(&servers[0]).await.expect("leader");
    let wi = servers.iter().position(|s| server_rpc(s) != leader).expect("follower");
    servers[wi].kill9();
    let dir = servers[wi].data_dir.clone().expect("data dir");
    if keep_node_id {
        let id = std::fs::read_to_string(dir.join("node-id")).expect("node-id file");
        servers[wi].args.push(format!("-node-id={}", id.trim()));
    }
    for entry in std::fs::read_dir(&dir).expect("read data dir") {
        let p = entry.expect("entry").path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).expect("wipe");
        } else {
            std::fs::remove_file(&p).expect("wipe");
        }
    }
    let before_restart = servers[wi].output_text().len();
    servers[wi].restart();

    // It must end up in the one existing cluster: it sees the old data and
    // everyone agrees on one leader with three voters.
    let wiped = &servers[wi];
    assert!(
        wait_until(Duration::from_secs(60), || async {
            wiped.try_get("/v1/kv/before-wipe?raw").await.is_some_and(|r| r.text() == "1")
        })
        .await,
        "wiped server never received the existing cluster's data"
    );
    let refs: Vec<&Agent> = servers.iter().collect();
    agreed_leader(&refs, Duration::from_secs(30)).await;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            voters(&servers[0]).await == 3 && raft_servers(&servers[0]).await.len() == 3
        })
        .await,
        "raft configuration is not 3 voters: {:?}",
        raft_servers(&servers[0]).await
    );
    let since_restart = wiped.output_text().get(before_restart..).unwrap_or_default().to_string();
    assert!(
        !since_restart.contains("bootstrapped the cluster"),
        "the wiped server bootstrapped a second cluster:\n{since_restart}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_servers_are_promoted_and_a_graceful_leave_removes_one() {
    let servers = start_three(&[]);
    let refs: Vec<&Agent> = servers.iter().collect();
    agreed_leader(&refs, Duration::from_secs(60)).await;
    let ips: Vec<Ipv4Addr> = servers.iter().map(|s| s.ip).collect();
    // As the handbook adds servers 4 and 5: no bootstrap_expect, join the others.
    let s4 = start_server("s4", None, &ips, &[]);
    let mut s5 = start_server("s5", None, &ips, &[]);
    assert!(
        wait_until(Duration::from_secs(60), || async { voters(&servers[0]).await == 5 }).await,
        "late servers were never promoted: {:?}",
        raft_servers(&servers[0]).await
    );
    assert!(wait_until(Duration::from_secs(30), || async { leader_of(&s4).await.is_some() }).await);

    // server 5 leaves gracefully: it is removed from Raft and shown as left.
    let out = s5.cli(&["leave"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Graceful leave complete"), "{out:?}");
    assert_eq!(s5.signal_and_wait(0), Some(0), "the agent must exit 0 after leaving");
    assert!(
        wait_until(Duration::from_secs(30), || async {
            raft_servers(&servers[0]).await.len() == 4 && voters(&servers[0]).await == 4
        })
        .await,
        "the server that left is still in raft: {:?}",
        raft_servers(&servers[0]).await
    );
    // The leave intent reaches s1 by gossip: "leaving" until it has.
    let left = || servers[0].cli(&["members"]).stdout;
    assert!(
        wait_until(Duration::from_secs(30), || async {
            left().lines().any(|l| l.starts_with("s5 ") && l.contains(" left "))
        })
        .await,
        "{}",
        left()
    );
    drop(s4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_leader_stale_reads_work_and_others_fail() {
    // Dead servers are not cleaned up here, so losing two of three leaves
    // the last one without a quorum.
    let mut servers = start_three(&["-hcl", "autopilot { cleanup_dead_servers = false }"]);
    let refs: Vec<&Agent> = servers.iter().collect();
    let leader = agreed_leader(&refs, Duration::from_secs(60)).await;
    // The survivor is a follower (a leader cut off from its quorum is the
    // next test's case).
    let keep = servers.iter().position(|s| server_rpc(s) != leader).expect("a follower");
    assert!(servers[0].put("/v1/kv/k", b"v").await.status.is_success());
    assert!(
        wait_until(Duration::from_secs(10), || async {
            servers[keep].get("/v1/kv/k?stale&raw").await.text() == "v"
        })
        .await
    );

    // Operator remove-peer works while there is a quorum (and is refused
    // for an unknown address).
    let bad = servers[keep].cli(&["operator", "raft", "remove-peer", "-address=127.0.0.1:1"]);
    assert_ne!(bad.code, 0, "{bad:?}");

    for i in (0..3).filter(|i| *i != keep) {
        servers[i].kill9();
    }
    let last = &servers[keep];
    assert!(
        wait_until(Duration::from_secs(20), || async { leader_of(last).await.is_none() }).await,
        "the last server still reports a leader"
    );
    let stale = last.get("/v1/kv/k?stale").await;
    assert_eq!(stale.status, 200, "{}", stale.text());
    assert!(stale.headers.get("X-Consul-LastContact").is_some());
    assert_eq!(stale.headers.get("X-Consul-KnownLeader").and_then(|v| v.to_str().ok()), Some("false"));
    let strict = last.get("/v1/kv/k").await;
    assert_eq!(strict.status, 500, "{}", strict.text());
    assert!(strict.text().contains("No cluster leader"), "{}", strict.text());
    let strict = last.get("/v1/catalog/nodes").await;
    assert_eq!(strict.status, 500, "{}", strict.text());
    let cfg = last.get("/v1/operator/raft/configuration?stale").await;
    assert_eq!(cfg.status, 200, "{}", cfg.text());
}

/// The leader itself survives the loss of both followers: it cannot commit
/// or confirm leadership, so writes fail after the commit timeout instead
/// of hanging, default reads answer "No cluster leader", stale reads work,
/// and `/v1/status/leader` stops naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_its_quorum_fails_requests_instead_of_hanging() {
    let mut servers = start_three(&["-hcl", "autopilot { cleanup_dead_servers = false }"]);
    let refs: Vec<&Agent> = servers.iter().collect();
    let leader = agreed_leader(&refs, Duration::from_secs(60)).await;
    assert!(servers[0].put("/v1/kv/k", b"v").await.status.is_success());
    let li = servers.iter().position(|s| server_rpc(s) == leader).expect("leader is a server");
    for i in (0..3).filter(|i| *i != li) {
        servers[i].kill9();
    }
    let last = &servers[li];
    let t0 = std::time::Instant::now();
    let put = last.put("/v1/kv/k", b"lost").await;
    assert_eq!(put.status, 500, "{}", put.text());
    assert!(t0.elapsed() < Duration::from_secs(20), "write took {:?}", t0.elapsed());
    assert!(
        wait_until(Duration::from_secs(20), || async {
            let r = last.get("/v1/kv/k").await;
            r.status == 500 && r.text().contains("No cluster leader")
        })
        .await,
        "default read never answered No cluster leader: {}",
        last.get("/v1/kv/k").await.text()
    );
    assert_eq!(last.get("/v1/kv/k?stale&raw").await.text(), "v");
    // It stops naming itself leader once it has lost touch with its quorum.
    assert_eq!(last.get("/v1/status/leader").await.text(), "\"\"");
    assert_eq!(last.get("/v1/status/leader?stale").await.text(), "\"\"");
}
