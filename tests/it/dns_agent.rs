//! DNS against a real agent: the DNS token's policy changes and catalog
//! writes are visible on the very next query (hot answers are re-checked
//! per query), and a prepared query with `Near = "_ip"` sorts by the node
//! at the DNS client's address.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::{json, Value};
use tokio::net::UdpSocket;

use crate::dns_common::build_query;
use crate::harness::{unique_ip, wait_until, Agent};

const ROOT: &str = "3a4f1c2e-6b7d-4e8f-9a0b-1c2d3e4f5a61";
const DNS_SECRET: &str = "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d02";

/// One UDP query sent from `src` (any local address), no EDNS.
async fn ask_from(src: Ipv4Addr, server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let sock = UdpSocket::bind((src, 0)).await.unwrap();
    let q = build_query(name, qtype, None);
    sock.send_to(&q.to_vec().unwrap(), server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .expect("DNS reply within 5s")
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

fn addresses(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

fn client_with(a: &Agent, token: &str) -> consul::api::Client {
    consul::api::Client::new(consul::api::ClientConfig {
        address: a.addr(),
        token: Some(token.into()),
        ..Default::default()
    })
    .unwrap()
}

async fn put(c: &consul::api::Client, path: &str, body: Value) -> (u16, String) {
    let r = c.request(hyper::Method::PUT, path, Some(body.to_string().into_bytes().into())).await.unwrap();
    (r.status.as_u16(), r.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_token_policy_and_catalog_changes_show_at_once() {
    let hcl = format!(
        r#"acl {{ enabled = true default_policy = "deny"
                 tokens {{ initial_management = "{ROOT}" dns = "{DNS_SECRET}" }} }}"#
    );
    let a = Agent::dev(&["-hcl", &hcl]);
    let root = client_with(&a, ROOT);
    let ok = wait_until(Duration::from_secs(30), || async {
        root.request(hyper::Method::GET, "/v1/acl/token/self", None).await.is_ok_and(|r| r.status == 200)
    })
    .await;
    assert!(ok, "ACLs never came up\n{}", a.output_text());
    let reads = r#"service_prefix "" { policy = "read" } node_prefix "" { policy = "read" }"#;
    let (status, text) = put(&root, "/v1/acl/policy", json!({"Name": "dns", "Rules": reads})).await;
    assert_eq!(status, 200, "{text}");
    let policy_id = serde_json::from_str::<Value>(&text).unwrap()["ID"].as_str().unwrap().to_string();
    let token = json!({"SecretID": DNS_SECRET, "Policies": [{"Name": "dns"}]});
    assert_eq!(put(&root, "/v1/acl/token", token).await.0, 200);
    let reg = json!({"Node": "web-1", "Address": "10.4.0.1", "Service": {"Service": "web", "Port": 80}});
    assert_eq!(put(&root, "/v1/catalog/register", reg).await.0, 200);

    let dns = SocketAddr::from((a.ip, 8600));
    let here = Ipv4Addr::LOCALHOST;
    let ok = wait_until(Duration::from_secs(20), || async {
        addresses(&ask_from(here, dns, "web.service.consul.", RecordType::A).await) == ["10.4.0.1"]
    })
    .await;
    assert!(ok, "the DNS token never saw web\n{}", a.output_text());
    for _ in 0..5 {
        assert_eq!(addresses(&ask_from(here, dns, "web.service.consul.", RecordType::A).await), ["10.4.0.1"]);
    }

    // The token's policy loses service:read: the next answer hides web.
    let nodes_only = r#"node_prefix "" { policy = "read" }"#;
    let path = format!("/v1/acl/policy/{policy_id}");
    assert_eq!(put(&root, &path, json!({"Name": "dns", "Rules": nodes_only})).await.0, 200);
    let m = ask_from(here, dns, "web.service.consul.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{m:?}");
    assert!(m.answers.is_empty());

    // Given back, and a second instance registered: both show at once.
    assert_eq!(put(&root, &path, json!({"Name": "dns", "Rules": reads})).await.0, 200);
    assert_eq!(addresses(&ask_from(here, dns, "web.service.consul.", RecordType::A).await), ["10.4.0.1"]);
    let reg = json!({"Node": "web-2", "Address": "10.4.0.2", "Service": {"Service": "web", "Port": 80}});
    assert_eq!(put(&root, "/v1/catalog/register", reg).await.0, 200);
    let mut got = addresses(&ask_from(here, dns, "web.service.consul.", RecordType::A).await);
    got.sort();
    assert_eq!(got, ["10.4.0.1", "10.4.0.2"]);
}

/// `Near = "_ip"`: the instances nearest (by network coordinates) to the
/// node whose address sent the DNS query come first, in order; from an
/// address no node has, the answer is shuffled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_query_near_ip_sorts_by_the_dns_client() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let client_ip = unique_ip();
    let nodes = [("client", client_ip.to_string(), 0.0), ("far", "10.5.0.3".into(), 0.3)];
    let nodes = nodes.into_iter().chain([("near", "10.5.0.1".into(), 0.1), ("mid", "10.5.0.2".into(), 0.2)]);
    for (node, address, x) in nodes {
        let mut reg = json!({"Node": node, "Address": address});
        if node != "client" {
            reg["Service"] = json!({"Service": "db", "Port": 5432});
        }
        assert_eq!(a.put("/v1/catalog/register", reg.to_string().as_bytes()).await.status, 200);
        let coord = json!({"Node": node, "Coord": {"Vec": [x, 0, 0, 0, 0, 0, 0, 0], "Error": 0.2, "Adjustment": 0, "Height": 0.0001}});
        let r = a.put("/v1/coordinate/update", coord.to_string().as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let ok = wait_until(Duration::from_secs(30), || async {
        a.try_get("/v1/coordinate/nodes").await.and_then(|r| r.json::<Vec<Value>>().ok()).is_some_and(|c| {
            ["client", "near", "mid", "far"].iter().all(|n| c.iter().any(|e| e["Node"] == *n))
        })
    })
    .await;
    assert!(ok, "coordinates never stored: {}", a.get("/v1/coordinate/nodes").await.text());
    let q = json!({"Name": "db-ip", "Service": {"Service": "db", "Near": "_ip"}});
    let r =
        a.client().request(hyper::Method::POST, "/v1/query", Some(q.to_string().into_bytes().into())).await;
    assert_eq!(r.unwrap().status, 200);

    let dns = SocketAddr::from((a.ip, 8600));
    for _ in 0..5 {
        let m = ask_from(client_ip, dns, "db-ip.query.consul.", RecordType::A).await;
        assert_eq!(addresses(&m), ["10.5.0.1", "10.5.0.2", "10.5.0.3"]);
    }
    // Asked from an address with no node: the server shuffles.
    let mut orders = std::collections::HashSet::new();
    for _ in 0..30 {
        orders.insert(addresses(
            &ask_from(Ipv4Addr::LOCALHOST, dns, "db-ip.query.consul.", RecordType::A).await,
        ));
    }
    assert!(orders.len() > 1, "{orders:?}");
}
