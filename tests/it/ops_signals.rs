//! SIGINT and SIGTERM against `leave_on_terminate` and
//! `skip_leave_on_interrupt`, with Consul's defaults by role (a client
//! leaves on both signals; a server leaves on neither), as another agent
//! sees the result: `left` or `failed` in `consul members`, and whether a
//! server is still a Raft voter in `/v1/status/peers`. A second signal
//! during a graceful leave abandons it.

use crate::harness::wait_until;
use crate::ops_cluster::*;
use libc::{SIGINT, SIGTERM};

fn with(mut spec: Spec, hcl: &str) -> Spec {
    spec.hcl.push(hcl.to_string());
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_leave_on_both_signals_unless_told_not_to() {
    let s1 = Node::start(with(Spec::server("s1"), "bootstrap = true"));
    s1.agent.wait_ready().await;
    let join = |spec: Spec| {
        let mut spec = spec;
        spec.join = vec![s1.spec.ip];
        Node::start(spec)
    };
    let mut term_default = join(Spec::client("c-term"));
    let mut int_default = join(Spec::client("c-int"));
    let mut int_skip = join(with(Spec::client("c-int-skip"), "skip_leave_on_interrupt = true"));
    let mut term_stay = join(with(Spec::client("c-term-stay"), "leave_on_terminate = false"));
    for name in ["c-term", "c-int", "c-int-skip", "c-term-stay"] {
        wait_member_status(&s1.agent, name, "alive").await;
    }

    let codes = signal_all(&mut [
        (&mut term_default.agent, SIGTERM),
        (&mut int_default.agent, SIGINT),
        (&mut int_skip.agent, SIGINT),
        (&mut term_stay.agent, SIGTERM),
    ]);
    assert_eq!(
        codes,
        vec![Some(0), Some(0), Some(1), Some(1)],
        "exit codes: graceful leave 0, shutdown without leave 1"
    );
    wait_member_status(&s1.agent, "c-term", "left").await;
    wait_member_status(&s1.agent, "c-int", "left").await;
    wait_member_status(&s1.agent, "c-int-skip", "failed").await;
    wait_member_status(&s1.agent, "c-term-stay", "failed").await;

    let out = term_default.agent.output_text();
    assert!(
        out.contains("==> Caught signal: terminated") && out.contains("Gracefully shutting down agent"),
        "{out}"
    );
    let out = int_skip.agent.output_text();
    assert!(
        out.contains("==> Caught signal: interrupt") && out.contains("Graceful shutdown disabled. Exiting"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_stay_in_raft_unless_told_to_leave() {
    // Dead servers stay in the configuration, so what a signal did is
    // visible in /v1/status/peers (autopilot would otherwise prune them).
    let mut nodes = cluster(3, &["autopilot { cleanup_dead_servers = false }"]).await;
    let all: Vec<String> = nodes.iter().map(|n| n.spec.rpc()).collect();
    let mut c0 = Spec::client("c0");
    c0.join = vec![nodes[0].spec.ip];
    let c0 = Node::start(c0);
    wait_member_status(&c0.agent, "s3", "alive").await;

    // Defaults: neither signal makes a server leave.
    let (s1, rest) = nodes.split_at_mut(1);
    let (s2, s3) = rest.split_at_mut(1);
    let (s1, s2, s3) = (&mut s1[0], &mut s2[0], &mut s3[0]);
    let codes = signal_all(&mut [(&mut s2.agent, SIGINT), (&mut s3.agent, SIGTERM)]);
    assert_eq!(codes, vec![Some(1), Some(1)]);
    wait_member_status(&s1.agent, "s2", "failed").await;
    wait_member_status(&s1.agent, "s3", "failed").await;
    assert_eq!(peers(&s1.agent).await, Some(sorted(&all)), "servers that did not leave are still voters");

    // With leave_on_terminate, SIGTERM takes a server out of Raft.
    s2.spec.hcl.push("skip_leave_on_interrupt = false".into());
    s3.spec.hcl.push("leave_on_terminate = true".into());
    s2.restart();
    s3.restart();
    wait_peers(&s1.agent, &all).await;
    wait_member_status(&s1.agent, "s3", "alive").await;
    let codes = signal_all(&mut [(&mut s3.agent, SIGTERM)]);
    assert_eq!(codes, vec![Some(0)]);
    wait_member_status(&s1.agent, "s3", "left").await;
    wait_peers(&s1.agent, &[s1.spec.rpc(), s2.spec.rpc()]).await;

    // A second signal abandons a graceful leave: with no leader, s2 cannot
    // leave Raft (it keeps trying for seconds); the second SIGINT ends it
    // there. (Its leave intent already went out by gossip, as Consul's
    // does, so the others see it go either way.)
    s1.agent.kill9();
    let from = s2.agent.output_text().len();
    signal(&s2.agent, SIGINT);
    wait_output(&s2.agent, from, "Gracefully shutting down agent").await;
    signal(&s2.agent, SIGINT);
    let code = wait_exit(&mut s2.agent, std::time::Duration::from_secs(20));
    assert_eq!(code, Some(1));
    let after = s2.agent.output_text().get(from..).unwrap_or_default().to_string();
    assert!(
        !after.contains("graceful leave complete") && !after.contains("left the raft configuration"),
        "{after}"
    );
    let gone = wait_until(std::time::Duration::from_secs(20), || async {
        matches!(member_status(&c0.agent, "s2").as_deref(), Some("left" | "failed"))
    })
    .await;
    assert!(gone, "{:?}", member_status(&c0.agent, "s2"));
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}
