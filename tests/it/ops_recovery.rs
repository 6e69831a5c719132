//! Outage recovery with real servers: the handbook's kill -9 of a server
//! replaced by a new one at a new address (peers.json in the handbook's
//! address format), the loss of two of three servers recovered with
//! `consul operator raft recover`, and a hand-written peers.json in
//! Consul's current format (after a malformed one was refused).

use crate::harness::wait_until;
use crate::ops_cluster::*;
use libc::SIGTERM;
use std::time::Duration;

async fn kv_get(node: &Node, key: &str) -> String {
    let r = node.agent.get(&format!("/v1/kv/{key}?raw")).await;
    assert!(r.status.is_success(), "GET {key} on {}: {} {}", node.spec.name, r.status, r.text());
    r.text()
}

async fn kv_put(node: &Node, key: &str, value: &str) {
    let r = node.agent.put(&format!("/v1/kv/{key}"), value.as_bytes()).await;
    assert_eq!(r.text(), "true", "PUT {key} on {}", node.spec.name);
}

fn write_peers(node: &Node, text: &str) {
    std::fs::write(node.raft_dir().join("peers.json"), text).unwrap();
}

/// Restarts a stopped server and checks it applied and deleted peers.json.
async fn restart_recovering(node: &mut Node) {
    let from = node.agent.output_text().len();
    node.restart();
    wait_output(&node.agent, from, "deleted peers.json file after successful recovery").await;
    assert!(!node.raft_dir().join("peers.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_replacement_and_loss_of_two_servers() {
    let mut nodes = cluster(3, &[]).await;
    kv_put(&nodes[0], "handbook", "v1").await;
    let mut s3 = nodes.pop().unwrap();
    let mut s2 = nodes.pop().unwrap();
    let mut s1 = nodes.pop().unwrap();

    // s3 dies for good; the replacement s4 will have a new address.
    s3.agent.kill9();
    let mut s4_spec = Spec::server("s4");
    s4_spec.join = vec![s1.spec.ip, s2.spec.ip];
    let s4_rpc = s4_spec.rpc();

    // The handbook's way: stop the survivors, give each the same peers.json
    // in the old format (survivors plus the replacement), start them.
    let codes = signal_all(&mut [(&mut s1.agent, SIGTERM), (&mut s2.agent, SIGTERM)]);
    assert_eq!(codes, vec![Some(1), Some(1)], "servers stop without leaving on SIGTERM");
    let old_format = format!(r#"["{}","{}","{}"]"#, s1.spec.rpc(), s2.spec.rpc(), s4_rpc);
    write_peers(&s1, &old_format);
    write_peers(&s2, &old_format);
    restart_recovering(&mut s1).await;
    restart_recovering(&mut s2).await;
    // The replacement counts as a voter before it exists (same quorum on
    // every survivor); s1 and s2 are a majority of three.
    wait_peers(&s1.agent, &[s1.spec.rpc(), s2.spec.rpc(), s4_rpc.clone()]).await;
    assert_eq!(kv_get(&s1, "handbook").await, "v1");
    assert!(s1.agent.output_text().contains("unknown yet: admitted when a server joins at this address"));

    // The new server joins and takes the placeholder's place under its own id.
    let mut s4 = Node::start(s4_spec);
    let promoted = wait_until(Duration::from_secs(30), || async {
        [&s1, &s2].iter().any(|n| {
            let out = n.agent.output_text();
            out.contains("removing stale server entry")
                && out.contains("promoting server to voter: server=s4")
        })
    })
    .await;
    assert!(
        promoted,
        "s4 never replaced its placeholder\n{}\n{}",
        s1.agent.output_text(),
        s2.agent.output_text()
    );
    wait_peers(&s1.agent, &[s1.spec.rpc(), s2.spec.rpc(), s4_rpc.clone()]).await;
    assert_eq!(kv_get(&s4, "handbook").await, "v1", "the replacement has the data");
    kv_put(&s4, "after-replacement", "v2").await;

    // Now two of three die at once: no quorum is left.
    s2.agent.kill9();
    s4.agent.kill9();
    // The recover command refuses while the server runs...
    let dir = s1.dir.display().to_string();
    let out = crate::harness::cli(&[
        "operator",
        "raft",
        "recover",
        &format!("-data-dir={dir}"),
        &format!("-peers={}", s1.spec.rpc()),
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("in use by another agent") && out.stderr.contains("Stop that agent first"),
        "{}",
        out.stderr
    );
    assert!(!s1.raft_dir().join("peers.json").exists());
    // ...and writes a checked file once it is stopped.
    assert_eq!(signal_all(&mut [(&mut s1.agent, SIGTERM)]), vec![Some(1)]);
    let out = crate::harness::cli(&[
        "operator",
        "raft",
        "recover",
        &format!("-data-dir={dir}"),
        &format!("-peers={}", s1.spec.rpc()),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("this server") && out.stdout.contains("(id format)"), "{}", out.stdout);
    let written = std::fs::read_to_string(s1.raft_dir().join("peers.json")).unwrap();
    assert!(written.contains(&s1.node_id()) && written.contains("\"non_voter\": false"), "{written}");
    restart_recovering(&mut s1).await;
    wait_peers(&s1.agent, &[s1.spec.rpc()]).await;
    assert_eq!(kv_get(&s1, "handbook").await, "v1");
    assert_eq!(
        kv_get(&s1, "after-replacement").await,
        "v2",
        "a write acknowledged before the outage survives"
    );
    kv_put(&s1, "after-recovery", "v3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_peers_json_stops_the_agent_and_changes_nothing() {
    let mut spec = Spec::server("solo");
    spec.hcl.push("bootstrap = true".into());
    let mut s = Node::start(spec);
    s.agent.wait_ready().await;
    kv_put(&s, "k", "before").await;
    assert_eq!(signal_all(&mut [(&mut s.agent, SIGTERM)]), vec![Some(1)]);

    // A file that lists nobody this server can be: refused, left in place.
    let bad = r#"[{"id": "not-a-uuid", "address": "10.0.0.1:8300"}]"#;
    write_peers(&s, bad);
    let from = s.agent.output_text().len();
    s.restart();
    let code = wait_exit(&mut s.agent, Duration::from_secs(20));
    let out = s.agent.output_text().get(from..).unwrap_or_default().to_string();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("recovery failed to parse peers.json")
            && out.contains("not a node ID")
            && out.contains("left in place"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(s.raft_dir().join("peers.json")).unwrap(), bad);

    // Consul's current format by hand works; the data is intact.
    let good = format!(r#"[{{"id": "{}", "address": "{}", "non_voter": false}}]"#, s.node_id(), s.spec.rpc());
    write_peers(&s, &good);
    restart_recovering(&mut s).await;
    wait_peers(&s.agent, &[s.spec.rpc()]).await;
    assert_eq!(kv_get(&s, "k").await, "before");
}
