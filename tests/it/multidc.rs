//! Two datacenters joined over the WAN: `?dc=` reaches the other one from
//! a server and from a client agent (KV, catalog, health, blocking reads),
//! `/v1/catalog/datacenters` lists both, DNS answers
//! `<service>.service.<dc>.consul`, and an unknown datacenter is refused.

use crate::harness::{wait_until, Agent};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::Duration;

fn agent(name: &str, dc: &str, server: bool, extra: &[String]) -> Agent {
    let mut args = vec![format!("-datacenter={dc}"), "-retry-interval-wan=1s".to_string()];
    if server {
        args.extend(["-server".to_string(), "-bootstrap".to_string()]);
    }
    args.extend(extra.iter().cloned());
    Agent::on_own_ip(name, &args)
}

fn dig(a: &Agent, name: &str) -> String {
    let out = std::process::Command::new("dig")
        .args([
            format!("@{}", a.ip),
            "-p".into(),
            "8600".into(),
            "+short".into(),
            "+time=3".into(),
            "+tries=1".into(),
            name.into(),
        ])
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_another_datacenter_over_the_wan() {
    let dc1 = agent("one", "dc1", true, &[]);
    let dc1_ip: Ipv4Addr = dc1.ip;
    let dc2 = agent("two", "dc2", true, &[format!("-retry-join-wan={dc1_ip}")]);
    let client = agent("c1", "dc1", false, &[format!("-retry-join={dc1_ip}")]);
    dc1.wait_ready().await;
    dc2.wait_ready().await;
    client.wait_ready().await;

    // Both datacenters known, from a server and through a client.
    for a in [&dc1, &client] {
        assert!(
            wait_until(Duration::from_secs(30), || async {
                a.try_get("/v1/catalog/datacenters").await.and_then(|r| r.json::<Vec<String>>().ok())
                    == Some(vec!["dc1".into(), "dc2".into()])
            })
            .await,
            "datacenters never listed both: {}",
            a.get("/v1/catalog/datacenters").await.text()
        );
    }
    let wan = dc1.cli(&["members", "-wan"]);
    assert_eq!(wan.code, 0, "{wan:?}");
    assert!(
        wan.stdout.lines().any(|l| l.starts_with("one.dc1") && l.contains("alive") && l.contains("dc1")),
        "{}",
        wan.stdout
    );
    assert!(
        wan.stdout.lines().any(|l| l.starts_with("two.dc2") && l.contains("alive") && l.contains("dc2")),
        "{}",
        wan.stdout
    );
    let info = dc1.cli(&["info"]);
    assert!(info.stdout.contains("\tknown_datacenters = 2"), "{}", info.stdout);
    let from_dc2: Vec<String> = dc2.get("/v1/catalog/datacenters").await.json().expect("json");
    assert_eq!(from_dc2, vec!["dc2".to_string(), "dc1".to_string()]);

    // KV written through a dc1 client lands in dc2 only.
    let r = client.put("/v1/kv/where?dc=dc2", b"in-two").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "true"));
    assert_eq!(dc2.get("/v1/kv/where?raw").await.text(), "in-two");
    assert_eq!(dc1.get("/v1/kv/where").await.status, 404);
    let r = dc1.get("/v1/kv/where?dc=dc2&raw").await;
    assert_eq!(r.text(), "in-two");
    let index: u64 = r
        .headers
        .get("x-consul-index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("index header");

    // A blocking read across the WAN wakes on a write in dc2.
    let waiter = {
        let c = client.client();
        tokio::spawn(async move {
            c.request(hyper::Method::GET, &format!("/v1/kv/where?dc=dc2&raw&index={index}&wait=20s"), None)
                .await
                .map(|r| r.text())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(dc2.put("/v1/kv/where", b"changed").await.text(), "true");
    let woke = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("blocking read never woke")
        .expect("join");
    assert_eq!(woke.expect("GET"), "changed");

    // A service registered in dc2 is visible from dc1 by catalog, health and DNS.
    let reg = r#"{"Name": "web", "ID": "web1", "Port": 8080, "Address": "10.2.0.7"}"#;
    assert_eq!(dc2.put("/v1/agent/service/register", reg.as_bytes()).await.status, 200);
    assert!(
        wait_until(Duration::from_secs(15), || async {
            client
                .get("/v1/catalog/service/web?dc=dc2")
                .await
                .json::<Vec<Value>>()
                .is_ok_and(|v| v.len() == 1 && v[0]["Datacenter"] == "dc2")
        })
        .await,
        "dc2's service never visible from dc1"
    );
    let h: Vec<Value> = dc1.get("/v1/health/service/web?dc=dc2&passing").await.json().expect("json");
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["Service"]["Port"], 8080);
    assert_eq!(dc1.get("/v1/catalog/service/web").await.text(), "[]", "dc1's own catalog has no web");
    if std::process::Command::new("dig").arg("-v").output().is_ok_and(|o| o.status.success()) {
        assert_eq!(dig(&dc1, "web.service.dc2.consul"), "10.2.0.7");
        assert_eq!(dig(&client, "web.service.dc2.consul"), "10.2.0.7");
        assert_eq!(dig(&dc1, "web.service.consul"), "", "no web in dc1");
        assert_eq!(dig(&dc1, "two.node.dc2.consul"), dc2.ip.to_string());
    } else {
        eprintln!("NOTICE: dig not found (apt-get install -y bind9-dnsutils); skipping the DNS part");
    }

    // An event fired with ?dc=dc2 from dc1 reaches dc2's agents, not dc1's.
    let r = client.put("/v1/event/fire/deploy?dc=dc2", b"v2").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        wait_until(Duration::from_secs(10), || async {
            dc2.get("/v1/event/list?name=deploy").await.json::<Vec<Value>>().is_ok_and(|v| v.len() == 1)
        })
        .await,
        "the event never reached dc2"
    );
    assert_eq!(client.get("/v1/event/list?name=deploy").await.text(), "[]", "the event leaked into dc1");

    // An unknown datacenter has no path.
    let r = client.get("/v1/kv/where?dc=nowhere").await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("No path to datacenter"), "{}", r.text());
    let r = dc1.get("/v1/catalog/nodes?dc=nowhere").await;
    assert_eq!(r.status, 500);
}
