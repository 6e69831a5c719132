//! Server membership under churn (issue 21): a server killed and
//! restarted, a fourth server joining with `retry_join`, a rejoined server
//! leaving on SIGINT, and SIGTERM without leave. Every server's log must
//! show each membership change once: no "adding server as non-voter"
//! repeated for the same server, no leave that cannot find its server.

use crate::harness::wait_until;
use crate::ops_cluster::*;
use libc::{SIGINT, SIGTERM};
use std::time::{Duration, Instant};

/// How many times any of `nodes` logged autopilot adding `name` as a
/// non-voter, from byte `from[i]` of node i's output on.
fn adds_of(nodes: &[&Node], from: &[usize], name: &str) -> usize {
    let needle = format!("server={name} ");
    nodes
        .iter()
        .zip(from)
        .map(|(n, f)| {
            let out = n.agent.output_text();
            out.get(*f..)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("adding server as non-voter") && l.contains(&needle))
                .count()
        })
        .sum()
}

fn all_output(nodes: &[&Node]) -> String {
    nodes.iter().map(|n| format!("----- {} -----\n{}", n.spec.name, n.agent.output_text())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_added_once_and_leaves_cleanly() {
    let mut nodes = cluster(3, &[]).await;
    let all: Vec<String> = nodes.iter().map(|n| n.spec.rpc()).collect();
    let from: Vec<usize> = nodes.iter().map(|n| n.agent.output_text().len()).collect();

    // Kill s2: autopilot removes it as dead once gossip marks it failed.
    let killed = Instant::now();
    nodes[1].agent.kill9();
    let others = [nodes[0].spec.rpc(), nodes[2].spec.rpc()];
    wait_peers(&nodes[0].agent, &others).await;
    eprintln!("dead server removed {:?} after the kill", killed.elapsed());

    // It comes back on the same data dir: added once, promoted once.
    nodes[1].restart();
    let back = Instant::now();
    wait_peers(&nodes[0].agent, &all).await;
    eprintln!("restarted server a voter again {:?} after the restart", back.elapsed());
    // Give a fighting reconcile the rounds it needs to show itself.
    let refs: Vec<&Node> = nodes.iter().collect();
    let settled = wait_until(Duration::from_secs(3), || async { adds_of(&refs, &from, "s2") > 1 }).await;
    assert!(!settled, "s2 was added as a non-voter more than once:\n{}", all_output(&refs));
    assert_eq!(adds_of(&refs, &from, "s2"), 1, "{}", all_output(&refs));

    // SIGINT with skip_leave_on_interrupt = false: a clean leave.
    nodes[1].spec.hcl.push("skip_leave_on_interrupt = false".into());
    nodes[1].restart();
    wait_peers(&nodes[1].agent, &all).await;
    wait_peers(&nodes[0].agent, &all).await;
    let from_s2 = nodes[1].agent.output_text().len();
    let t = Instant::now();
    signal(&nodes[1].agent, SIGINT);
    let code = wait_exit(&mut nodes[1].agent, Duration::from_secs(30));
    eprintln!("s2 left in {:?}", t.elapsed());
    let refs: Vec<&Node> = nodes.iter().collect();
    let s2_out = nodes[1].agent.output_text().get(from_s2..).unwrap_or_default().to_string();
    assert_eq!(code, Some(0), "{}", all_output(&refs));
    assert!(s2_out.contains("server starting leave"), "{s2_out}");
    assert!(!s2_out.contains("failed to leave the raft configuration"), "{}", all_output(&refs));
    wait_peers(&nodes[0].agent, &others).await;
    eprintln!(
        "{}",
        all_output(&refs)
            .lines()
            .filter(|l| l.contains("leave") || l.contains("remov") || l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_server_is_added_once_and_sigterm_exits_at_once() {
    let nodes = cluster(3, &[]).await;
    let mut all: Vec<String> = nodes.iter().map(|n| n.spec.rpc()).collect();
    let from: Vec<usize> = nodes.iter().map(|n| n.agent.output_text().len()).collect();
    let mut spec = Spec::server("s4");
    spec.join = nodes.iter().map(|n| n.spec.ip).collect();
    let s4 = Node::start(spec);
    all.push(s4.spec.rpc());
    wait_peers(&nodes[0].agent, &all).await;
    let refs: Vec<&Node> = nodes.iter().collect();
    let again = wait_until(Duration::from_secs(3), || async { adds_of(&refs, &from, "s4") > 1 }).await;
    assert!(!again, "s4 was added as a non-voter more than once:\n{}", all_output(&refs));
    assert_eq!(adds_of(&refs, &from, "s4"), 1, "{}", all_output(&refs));

    // SIGTERM with the server default (leave_on_terminate = false): exits
    // at once, without leaving, also while it serves a client agent's
    // blocking query (which used to hold the exit for 5 s).
    let mut c = Spec::client("c1");
    c.join = vec![nodes[0].spec.ip];
    let c = Node::start(c);
    c.agent.wait_ready().await;
    let cl = c.agent.client();
    let blocking = tokio::spawn(async move {
        loop {
            let _ = cl.request(hyper::Method::GET, "/v1/kv/x?index=1000000&wait=60s", None).await;
        }
    });
    let mut servers: Vec<Node> = nodes;
    servers.push(s4);
    for s in servers.iter_mut().rev() {
        let t = Instant::now();
        signal(&s.agent, SIGTERM);
        let code = wait_exit(&mut s.agent, Duration::from_secs(30));
        let took = t.elapsed();
        eprintln!("SIGTERM without leave: {} exited after {took:?}", s.spec.name);
        assert_eq!(code, Some(1), "{}", s.agent.output_text());
        assert!(
            took < Duration::from_secs(2),
            "SIGTERM without leave took {took:?}\n{}",
            s.agent.output_text()
        );
    }
    blocking.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_leaves_cleanly_and_is_not_added_back() {
    let mut nodes = cluster(3, &[]).await;
    let from: Vec<usize> = nodes.iter().map(|n| n.agent.output_text().len()).collect();
    let leader = nodes[0].agent.get("/v1/status/leader").await.text();
    let li = nodes.iter().position(|n| leader.contains(&n.spec.rpc())).expect("a leader among the servers");
    let name = nodes[li].spec.name.clone();
    let rest: Vec<String> =
        nodes.iter().enumerate().filter(|(i, _)| *i != li).map(|(_, n)| n.spec.rpc()).collect();

    let t = Instant::now();
    let out = nodes[li].agent.cli(&["leave"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(wait_exit(&mut nodes[li].agent, Duration::from_secs(20)), Some(0));
    eprintln!("the leader left in {:?}", t.elapsed());
    let other = (li + 1) % 3;
    wait_peers(&nodes[other].agent, &rest).await;
    eprintln!("a new leader of the other two {:?} after the leave started", t.elapsed());

    let refs: Vec<&Node> = nodes.iter().collect();
    let leaver = nodes[li].agent.output_text();
    assert!(leaver.contains("left the raft configuration"), "{}", all_output(&refs));
    assert!(!leaver.contains("failed to leave the raft configuration"), "{}", all_output(&refs));
    // Nobody takes the leaver back while it goes, or after.
    let again = wait_until(Duration::from_secs(3), || async { adds_of(&refs, &from, &name) > 0 }).await;
    assert!(!again, "{name} was added back:\n{}", all_output(&refs));
    assert_eq!(peers(&nodes[other].agent).await.map(|p| p.len()), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopilot_health_answers_as_soon_as_there_is_a_leader() {
    let dev = crate::harness::Agent::dev(&[]);
    let c = dev.client();
    let led = wait_until(Duration::from_secs(30), || async {
        matches!(c.request(hyper::Method::GET, "/v1/status/leader", None).await, Ok(r) if r.text().len() > 2)
    })
    .await;
    assert!(led, "{}", dev.output_text());
    let r = dev.get("/v1/operator/autopilot/health").await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v["Healthy"], true, "{v}");
    assert_eq!(v["Servers"].as_array().map(|s| s.len()), Some(1), "{v}");
    assert_eq!(v["Servers"][0]["Leader"], true, "{v}");
    let r = dev.get("/v1/operator/autopilot/state").await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_that_stops_answering_is_reported_unhealthy_and_recovers() {
    let nodes = cluster(3, &["autopilot { max_trailing_logs = 2 }"]).await;
    let leader = nodes[0].agent.get("/v1/status/leader").await.text();
    let fi = nodes.iter().position(|n| !leader.contains(&n.spec.rpc())).unwrap();
    let li = nodes.iter().position(|n| leader.contains(&n.spec.rpc())).unwrap();
    let health = || async {
        let r = nodes[li].agent.get("/v1/operator/autopilot/health").await;
        let v: serde_json::Value = r.json().unwrap();
        (r.status.as_u16(), v)
    };
    let follower = |v: &serde_json::Value| {
        v["Servers"].as_array().and_then(|s| s.iter().find(|s| s["Name"] == nodes[fi].spec.name).cloned())
    };
    assert!(
        wait_until(Duration::from_secs(10), || async { health().await.0 == 200 }).await,
        "{:?}",
        health().await
    );
    // Frozen: no answers, and writes go past it.
    signal(&nodes[fi].agent, libc::SIGSTOP);
    for i in 0..5 {
        let r = nodes[li].agent.put(&format!("/v1/kv/k{i}"), b"v").await;
        assert_eq!(r.status.as_u16(), 200);
    }
    let unhealthy = wait_until(Duration::from_secs(10), || async {
        let (code, v) = health().await;
        code == 429 && follower(&v).is_some_and(|f| f["Healthy"] == false)
    })
    .await;
    // Everything about the frozen state is read before the follower runs
    // again: it catches up within milliseconds once continued.
    let (code, v) = health().await;
    assert!(unhealthy, "{code} {v:#}");
    assert_eq!(v["FailureTolerance"], 0, "{v:#}");
    let f = follower(&v).unwrap();
    assert_eq!(f["StableSince"], "0001-01-01T00:00:00Z", "{f}");
    let behind = v["Servers"].as_array().unwrap().iter().find(|s| s["Leader"] == true).unwrap()["LastIndex"]
        .as_u64()
        .unwrap()
        - f["LastIndex"].as_u64().unwrap();
    assert!(behind > 2, "{v:#}");
    let state: serde_json::Value = nodes[li].agent.get("/v1/operator/autopilot/state").await.json().unwrap();
    assert_eq!(state["Healthy"], false, "{state:#}");
    assert_eq!(state["Voters"].as_array().map(|v| v.len()), Some(3), "{state:#}");
    signal(&nodes[fi].agent, libc::SIGCONT);
    // Back: healthy again, and nothing was removed meanwhile.
    assert!(
        wait_until(Duration::from_secs(10), || async { health().await.0 == 200 }).await,
        "{:?}",
        health().await
    );
    assert_eq!(peers(&nodes[li].agent).await.map(|p| p.len()), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_servers_go_by_remove_peer_and_force_leave_prune() {
    // Without dead-server cleanup, only the operator removes them.
    let nodes = cluster(3, &["autopilot { cleanup_dead_servers = false }"]).await;
    let mut spec = Spec::server("s4");
    spec.join = nodes.iter().map(|n| n.spec.ip).collect();
    spec.hcl.push("autopilot { cleanup_dead_servers = false }".into());
    let mut s4 = Node::start(spec);
    let mut all: Vec<String> = nodes.iter().map(|n| n.spec.rpc()).collect();
    all.push(s4.spec.rpc());
    wait_peers(&nodes[0].agent, &all).await;
    let from: Vec<usize> = nodes.iter().map(|n| n.agent.output_text().len()).collect();

    s4.agent.kill9();
    wait_member_status(&nodes[0].agent, "s4", "failed").await;
    let out =
        nodes[0].agent.cli(&["operator", "raft", "remove-peer", &format!("-address={}", s4.spec.rpc())]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Removed peer with address"), "{out:?}");
    all.pop();
    wait_peers(&nodes[0].agent, &all).await;

    let mut nodes = nodes;
    nodes[2].agent.kill9();
    wait_member_status(&nodes[0].agent, "s3", "failed").await;
    let out = nodes[0].agent.cli(&["force-leave", "-prune", "s3"]);
    assert_eq!(out.code, 0, "{out:?}");
    wait_peers(&nodes[0].agent, &[nodes[0].spec.rpc(), nodes[1].spec.rpc()]).await;
    let refs: Vec<&Node> = nodes.iter().collect();
    assert_eq!(adds_of(&refs, &from, "s3") + adds_of(&refs, &from, "s4"), 0, "{}", all_output(&refs));
    // Still a working cluster of two.
    let r = nodes[0].agent.put("/v1/kv/after", b"1").await;
    assert_eq!(r.status.as_u16(), 200, "{}", all_output(&refs));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_leaves_cleanly_with_acls_on_and_default_deny() {
    // The leaving server's request to the leader is a server's, not a
    // user's: it needs no token the operator gave it.
    let acl = r#"acl { enabled = true default_policy = "deny" tokens { initial_management = "root" } }"#;
    let mut nodes = cluster(3, &[acl, "skip_leave_on_interrupt = false"]).await;
    let leader = nodes[0].agent.get("/v1/status/leader").await.text();
    let fi = nodes.iter().position(|n| !leader.contains(&n.spec.rpc())).unwrap();
    let rest: Vec<String> =
        nodes.iter().enumerate().filter(|(i, _)| *i != fi).map(|(_, n)| n.spec.rpc()).collect();
    signal(&nodes[fi].agent, SIGINT);
    assert_eq!(wait_exit(&mut nodes[fi].agent, Duration::from_secs(30)), Some(0));
    let refs: Vec<&Node> = nodes.iter().collect();
    let out = nodes[fi].agent.output_text();
    assert!(out.contains("left the raft configuration"), "{}", all_output(&refs));
    assert!(!out.contains("failed to leave the raft configuration"), "{}", all_output(&refs));
    let other = (fi + 1) % 3;
    wait_peers(&nodes[other].agent, &rest).await;
    // Writes through a follower (forwarded to the leader as a server's
    // request) work too.
    let leader = nodes[other].agent.get("/v1/status/leader").await.text();
    let follower = nodes.iter().find(|n| n.agent.pid() > 0 && !leader.contains(&n.spec.rpc())).unwrap();
    let r = follower.agent.put("/v1/kv/after-leave?token=root", b"1").await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
}
