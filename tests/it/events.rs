//! User events and remote exec across real agents: a server and clients
//! on their own loopback addresses, joined over gossip.

use crate::harness::{cli_with_env, unique_ip, wait_until, Agent};
use consul::event::id_to_index;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A `-dev` server named s1 plus client agents c1, c2, … joined to it;
/// returns once every agent knows the leader.
async fn cluster(clients: usize, server_extra: &[&str], client_extra: &[&str]) -> (Agent, Vec<Agent>) {
    let mut extra = vec!["-node=s1"];
    extra.extend_from_slice(server_extra);
    let server = Agent::dev(&extra);
    server.wait_ready().await;
    let mut out = Vec::new();
    for i in 1..=clients {
        let ip = unique_ip();
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut args: Vec<String> = vec![
            "agent".into(),
            format!("-data-dir={}", tmp.path().display()),
            format!("-bind={ip}"),
            format!("-client={ip}"),
            format!("-node=c{i}"),
            format!("-retry-join={}", server.ip),
            "-retry-interval=200ms".into(),
        ];
        args.extend(client_extra.iter().map(|s| s.to_string()));
        out.push(Agent::spawn(ip, args, Some(tmp.path().to_path_buf()), Some(tmp)));
    }
    for c in &out {
        c.wait_ready().await;
    }
    // Everyone sees everyone, so a broadcast reaches all of them.
    let n = clients + 1;
    for a in std::iter::once(&server).chain(out.iter()) {
        let ok = wait_until(Duration::from_secs(20), || async {
            let m: Value = a.get("/v1/agent/members").await.json().unwrap_or(Value::Null);
            m.as_array().is_some_and(|m| m.iter().filter(|x| x["Status"] == 1).count() == n)
        })
        .await;
        assert!(ok, "agent {} never saw {n} live members", a.addr());
    }
    (server, out)
}

async fn events(a: &Agent, query: &str) -> Vec<Value> {
    let r = a.get(&format!("/v1/event/list{query}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json::<Vec<Value>>().unwrap()
}

async fn has_event(a: &Agent, id: &str) -> bool {
    events(a, "").await.iter().any(|e| e["ID"] == id)
}

async fn fire(a: &Agent, path_and_query: &str, body: &[u8]) -> Value {
    let r = a.put(&format!("/v1/event/fire/{path_and_query}"), body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().unwrap()
}

/// Waits until `a` has received and turned away `n` events in total.
async fn wait_filtered(a: &Agent, n: u64) {
    let ok = wait_until(Duration::from_secs(15), || async {
        a.counter("consul.agent.user_event.filtered").await >= n
    })
    .await;
    assert!(ok, "agent {} never filtered {n} event(s)", a.addr());
}

#[tokio::test]
async fn events_reach_every_agent_and_filters_select_receivers() {
    let (s1, clients) = cluster(2, &[], &[]).await;
    let (c1, c2) = (&clients[0], &clients[1]);
    let all = [&s1, c1, c2];

    // Unfiltered, fired from a client: every agent lists it, same ID.
    let ev = fire(c2, "deploy", b"v1.2.3").await;
    let id = ev["ID"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{ev}");
    assert_eq!(ev["Name"], "deploy");
    assert_eq!(ev["Payload"], "djEuMi4z");
    assert_eq!(
        (ev["NodeFilter"].as_str(), ev["ServiceFilter"].as_str(), ev["TagFilter"].as_str()),
        (Some(""), Some(""), Some(""))
    );
    assert_eq!((ev["Version"].as_u64(), ev["LTime"].as_u64()), (Some(1), Some(0)));
    for a in all {
        assert!(
            wait_until(Duration::from_secs(15), || has_event(a, &id)).await,
            "{} never got the event",
            a.addr()
        );
        let r = a.get("/v1/event/list?name=deploy").await;
        assert_eq!(r.index(), id_to_index(&id).map(|i| i.max(1)));
        let listed: Vec<Value> = r.json().unwrap();
        assert_eq!(listed[0]["Payload"], "djEuMi4z");
    }

    // Services for the service and tag filters.
    let reg = |name: &str, tags: &[&str]| json!({"Name": name, "Tags": tags, "Port": 80}).to_string();
    assert_eq!(
        c1.put("/v1/agent/service/register", reg("web", &["v1", "blue"]).as_bytes()).await.status,
        200
    );
    assert_eq!(c2.put("/v1/agent/service/register", reg("api", &["v2"]).as_bytes()).await.status, 200);

    // Each filtered event must reach exactly its targets; the others
    // receive it and turn it away (counted), so nothing is left to luck.
    let cases: [(&str, [bool; 3]); 5] = [
        ("only-c1?node=%5Ec1%24", [false, true, false]),
        ("web?service=web", [false, true, false]),
        ("web-blue?service=we&tag=%5Eblue%24", [false, true, false]),
        ("web-v2?service=web&tag=v2", [false, false, false]),
        ("api-or-s?node=c2%7Cs1", [true, false, true]),
    ];
    let mut filtered = [0u64; 3];
    for (path, targets) in cases {
        let id = fire(&s1, path, b"").await["ID"].as_str().unwrap().to_string();
        for (i, a) in all.iter().enumerate() {
            if targets[i] {
                assert!(
                    wait_until(Duration::from_secs(15), || has_event(a, &id)).await,
                    "{path}: {} never got it",
                    a.addr()
                );
            } else {
                filtered[i] += 1;
                wait_filtered(a, filtered[i]).await;
                assert!(!has_event(a, &id).await, "{path}: {} should not list it", a.addr());
            }
        }
    }
}

#[tokio::test]
async fn fire_refuses_bad_requests_with_clear_errors() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let r = a.put("/v1/event/fire/", b"").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (400, "Missing name"));
    let r = a.put("/v1/event/fire/x?tag=v1", b"").await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (400, "Cannot provide tag filter without service filter")
    );
    let r = a.put("/v1/event/fire/x?node=(", b"").await;
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("Invalid node filter: "), "{}", r.text());
    let r = a.put("/v1/event/fire/x", &[b'p'; 600]).await;
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (413, "user event exceeds configured limit of 512 bytes before encoding")
    );
    // Under the body cap but over the limit once encoded.
    let r = a.put("/v1/event/fire/x", &[b'p'; 500]).await;
    assert_eq!(r.status, 413, "{}", r.text());
    let r = a.put("/v1/event/fire/x?dc=elsewhere", b"").await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("No path to datacenter"), "{}", r.text());
    let r = a.get("/v1/event/fire/x").await;
    assert_eq!(r.status, 405);
    let r = a.get("/v1/event/list?index=abc").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (400, "Invalid index"));
    // Nothing was fired by any of these.
    assert!(events(&a, "").await.is_empty());
    // A name with an encoded slash is decoded as Consul does.
    let ev = fire(&a, "a%2Fb", b"").await;
    assert_eq!((ev["Name"].as_str(), &ev["Payload"]), (Some("a/b"), &Value::Null));
}

#[tokio::test]
async fn list_blocks_until_a_new_event_or_the_wait_ends() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let r = a.get("/v1/event/list").await;
    assert_eq!((r.index(), r.text().as_str()), (Some(1), "[]"));

    let first = fire(&a, "e1", b"1").await["ID"].as_str().unwrap().to_string();
    assert!(wait_until(Duration::from_secs(10), || has_event(&a, &first)).await);
    let idx = id_to_index(&first).unwrap().max(1);
    assert_eq!(a.get("/v1/event/list").await.index(), Some(idx));

    // Same index: blocks for the whole wait, then answers unchanged.
    let t0 = Instant::now();
    let r = a.get(&format!("/v1/event/list?index={idx}&wait=400ms")).await;
    assert!(t0.elapsed() >= Duration::from_millis(390), "answered after {:?}", t0.elapsed());
    assert_eq!(r.index(), Some(idx));
    // Any other index answers at once (the index is not monotonic).
    let t0 = Instant::now();
    let r = a.get(&format!("/v1/event/list?index={}&wait=30s", idx.wrapping_add(1))).await;
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(r.index(), Some(idx));

    // A blocked reader wakes when a new event arrives.
    let client = a.client();
    let path = format!("/v1/event/list?index={idx}&wait=60s");
    let reader = tokio::spawn(async move {
        let t0 = Instant::now();
        let r = client.request(hyper::Method::GET, &path, None).await.unwrap();
        (t0.elapsed(), r.index(), r.json::<Vec<Value>>().unwrap())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!reader.is_finished(), "the reader should still be blocked");
    let second = fire(&a, "e2", b"2").await["ID"].as_str().unwrap().to_string();
    let (took, index, listed) = tokio::time::timeout(Duration::from_secs(15), reader).await.unwrap().unwrap();
    assert!(took < Duration::from_secs(30));
    assert_eq!(index, id_to_index(&second).map(|i| i.max(1)));
    assert_eq!(listed.iter().map(|e| e["Name"].as_str().unwrap()).collect::<Vec<_>>(), ["e1", "e2"]);

    // The name filter sees only its events; none at all answers index 1.
    assert_eq!(events(&a, "?name=e1").await.len(), 1);
    let r = a.get("/v1/event/list?name=none").await;
    assert_eq!((r.index(), r.text().as_str()), (Some(1), "[]"));
}

#[tokio::test]
async fn the_ring_keeps_the_newest_256_events_oldest_first() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    for i in 0..260 {
        fire(&a, &format!("n{i}"), b"").await;
    }
    let ok = wait_until(Duration::from_secs(15), || async {
        let e = events(&a, "").await;
        e.len() == 256 && e.last().is_some_and(|l| l["Name"] == "n259")
    })
    .await;
    assert!(ok, "the ring never settled at 256 events ending with n259");
    let e = events(&a, "").await;
    assert_eq!(e[0]["Name"], "n4");
    let ltimes: Vec<u64> = e.iter().map(|x| x["LTime"].as_u64().unwrap()).collect();
    assert!(ltimes.windows(2).all(|w| w[0] < w[1]), "oldest first: {ltimes:?}");
}

#[tokio::test]
async fn consul_event_cli_fires_and_prints_the_id() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let out = a.cli(&["event", "-name=deploy", "-node=dev", "payload-1"]);
    assert_eq!(out.code, 0, "{out:?}");
    let id = out.stdout.trim().strip_prefix("Event ID: ").expect("Event ID line").to_string();
    assert!(wait_until(Duration::from_secs(10), || has_event(&a, &id)).await);
    let e = events(&a, "?name=deploy").await;
    assert_eq!((e[0]["NodeFilter"].as_str(), e[0]["Payload"].as_str()), (Some("dev"), Some("cGF5bG9hZC0x")));
    let out = a.cli(&["event"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("Event name must be specified"), "{out:?}");
    let out = a.cli(&["event", "-name=x", "-tag=v1"]);
    assert_eq!((out.code, out.stderr.trim()), (1, "Cannot provide tag filter without service filter."));
    let out = a.cli(&["event", "-name=x", "a", "b"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("Too many command line arguments."), "{out:?}");
}

#[tokio::test]
async fn exec_is_refused_by_default_and_runs_where_enabled() {
    // s1 keeps the default (remote exec disabled); c1 allows it.
    let (s1, clients) = cluster(1, &[], &["-hcl=disable_remote_exec = false"]).await;
    let c1 = &clients[0];
    let env = [("CONSUL_HTTP_ADDR", s1.addr())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Both targeted: c1 runs it, s1 ignores it and is named.
    let out = cli_with_env(&["exec", "-wait=1s", "echo", "hello", "from", "exec"], &env, None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("    c1: hello from exec\n"), "{out:?}");
    assert!(out.stdout.contains("==> c1: finished with exit code 0\n"), "{out:?}");
    assert!(out.stdout.contains("1 / 1 node(s) completed / acknowledged"), "{out:?}");
    assert!(!out.stdout.contains("s1:"), "{out:?}");
    assert!(out.stderr.contains("1 node(s) did not acknowledge: s1"), "{out:?}");
    assert!(out.stderr.contains("disable_remote_exec = false"), "{out:?}");
    assert!(s1.output_text().contains("ignoring remote exec event, disabled."));
    assert!(c1.output_text().contains("remote exec"), "c1 should log the command it ran");

    // Only c1: success, and exit codes are collected.
    let out = cli_with_env(&["exec", "-node=^c1$", "-wait=1s", "echo ok; exit 3"], &env, None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("    c1: ok\n"), "{out:?}");
    assert!(out.stdout.contains("==> c1: finished with exit code 3"), "{out:?}");
    let out = cli_with_env(&["exec", "-node=^c1$", "-wait=1s", "-verbose", "true"], &env, None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("==> c1: acknowledged"), "{out:?}");
    assert!(out.stdout.contains("1 / 1 node(s) completed / acknowledged"), "{out:?}");

    // A script from stdin, run without a shell argument list.
    let out =
        cli_with_env(&["exec", "-node=^c1$", "-wait=1s", "-"], &env, Some(b"#!/bin/sh\necho from-script\n"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("    c1: from-script"), "{out:?}");

    // Nothing is left behind in KV.
    let ok =
        wait_until(Duration::from_secs(10), || async { s1.get("/v1/kv/_rexec?recurse").await.status == 404 })
            .await;
    assert!(ok, "remote exec data was left in KV");

    // Only s1 targeted: nobody runs it, the CLI says why and fails.
    let out = cli_with_env(&["exec", "-node=^s1$", "-wait=1s", "true"], &env, None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("0 / 0 node(s) completed / acknowledged"), "{out:?}");
    assert!(
        out.stderr.contains("did not acknowledge: s1") && out.stderr.contains("disable_remote_exec"),
        "{out:?}"
    );
}
