//! Registrator-style discovery across a cluster: the `registrator` example
//! (compiled here as a module, so the test drives its very functions)
//! registers container services on one client agent; another client
//! agent's DNS interface and health API must find them, and lose them
//! once they are deregistered. One server and two clients, each on its own
//! loopback address with Consul's default ports.

#[path = "../../examples/registrator.rs"]
mod registrator;

use crate::harness::{wait_until, Agent};
use consul::api::Client;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

fn spawn_agent(name: &str, server: bool, join: Option<Ipv4Addr>) -> Agent {
    let mut extra: Vec<String> = Vec::new();
    if server {
        extra.extend(["-server".to_string(), "-bootstrap-expect=1".to_string()]);
    }
    extra.extend(join.map(|j| format!("-retry-join={j}")));
    Agent::on_own_ip(name, &extra)
}

/// The A records for `name` from the DNS server at `server:8600`: `dig`
/// when installed, else a direct query built with hickory-proto.
async fn resolve_a(server: Ipv4Addr, name: &str) -> Vec<IpAddr> {
    let out = tokio::process::Command::new("dig")
        .args([
            format!("@{server}"),
            "-p".into(),
            "8600".into(),
            name.to_string(),
            "A".into(),
            "+short".into(),
            "+time=2".into(),
            "+tries=1".into(),
        ])
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => {
            String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
        }
        Ok(_) => Vec::new(),
        Err(_) => resolve_a_with_hickory(SocketAddr::from((server, 8600)), name).await,
    }
}

async fn resolve_a_with_hickory(server: SocketAddr, name: &str) -> Vec<IpAddr> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let Ok(qname) = Name::from_ascii(name) else { return Vec::new() };
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(qname, RecordType::A));
    let Ok(bytes) = m.to_vec() else { return Vec::new() };
    let Ok(sock) = tokio::net::UdpSocket::bind("0.0.0.0:0").await else { return Vec::new() };
    if sock.send_to(&bytes, server).await.is_err() {
        return Vec::new();
    }
    let mut buf = vec![0u8; 4096];
    let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf)).await else {
        return Vec::new();
    };
    let Ok(reply) = Message::from_vec(&buf[..n]) else { return Vec::new() };
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn registrator_services_resolve_across_the_cluster() {
    let server = spawn_agent("disc-s1", true, None);
    let c1 = spawn_agent("disc-c1", false, Some(server.ip));
    let c2 = spawn_agent("disc-c2", false, Some(server.ip));
    for a in [&server, &c1, &c2] {
        a.wait_ready().await;
    }

    // Registrator runs next to c1 and talks to it; its "containers" listen
    // on c1's loopback address, which is what gets registered.
    let client1 = c1.client();
    let host_ip = IpAddr::V4(c1.ip);
    let containers = registrator::demo_containers("dockerhost1", host_ip).await.unwrap();
    for c in &containers {
        registrator::register(&client1, c).await.unwrap();
    }
    let listed = registrator::list(&client1).await.unwrap();
    let web = &containers[0];
    assert_eq!(web.service, "web");
    let web_id = web.service_id();
    assert!(web_id.starts_with("dockerhost1:web-1:"), "{web_id}");
    assert!(
        listed.iter().any(|(id, name, addr, port)| *id == web_id
            && name == "web"
            && *addr == c1.ip.to_string()
            && *port == u64::from(web.port)),
        "{listed:?}"
    );
    let worker = containers.iter().find(|c| c.service == "worker").unwrap();
    registrator::pass_ttl(&client1, &worker.check_id()).await.unwrap();

    // Seen from c2: the health API lists every service as passing once its
    // real check has run, and DNS answers with the registered address.
    let client2: Client = c2.client();
    for svc in ["web", "redis", "worker"] {
        let path = format!("/v1/health/service/{svc}?passing");
        let passing = wait_until(Duration::from_secs(30), || async {
            let Ok(r) = client2.request(hyper::Method::GET, &path, None).await else { return false };
            let v: Value = r.json().unwrap_or(Value::Null);
            v.as_array().is_some_and(|a| a.len() == 1 && a[0]["Node"]["Node"] == "disc-c1")
        })
        .await;
        assert!(passing, "{svc} never became passing on c2\n{}", c1.output_text());
    }
    let resolved = wait_until(Duration::from_secs(20), || async {
        resolve_a(c2.ip, "web.service.consul").await == vec![host_ip]
    })
    .await;
    assert!(
        resolved,
        "web.service.consul never resolved on c2: {:?}",
        resolve_a(c2.ip, "web.service.consul").await
    );
    let catalog: Value =
        client2.call(hyper::Method::GET, "/v1/catalog/service/redis", None).await.unwrap().json().unwrap();
    assert_eq!(catalog[0]["ServiceID"], containers[1].service_id());
    assert_eq!(catalog[0]["ServiceTags"], serde_json::json!(["cache"]));

    // The containers stop: their services vanish everywhere.
    for c in &containers {
        registrator::deregister(&client1, &c.service_id()).await.unwrap();
    }
    assert!(registrator::list(&client1)
        .await
        .unwrap()
        .iter()
        .all(|(_, name, _, _)| name == "consul" || name.is_empty()));
    let vanished = wait_until(Duration::from_secs(20), || async {
        resolve_a(c2.ip, "web.service.consul").await.is_empty()
    })
    .await;
    assert!(vanished, "web.service.consul still resolves after deregistration");
    let empty = wait_until(Duration::from_secs(20), || async {
        let Ok(r) = client2.request(hyper::Method::GET, "/v1/catalog/service/web", None).await else {
            return false;
        };
        r.json::<Value>().ok() == Some(serde_json::json!([]))
    })
    .await;
    assert!(empty, "the catalog still lists web");
}

/// A server answers repeated lookups from its cached answer set (no copy of
/// the instances per query) and still sees every change at once: a new
/// instance, a failing check, a deregistration.
#[tokio::test]
async fn server_dns_answers_follow_every_catalog_change() {
    let a = Agent::dev(&[]);
    a.wait_ready().await;
    let register = |id: &str, addr: &str| {
        let body = format!(
            r#"{{"ID":"{id}","Name":"web","Address":"{addr}","Port":80,"Check":{{"CheckID":"ttl-{id}","TTL":"300s","Status":"passing"}}}}"#
        );
        let client = a.client();
        async move {
            client
                .request(hyper::Method::PUT, "/v1/agent/service/register", Some(body.into_bytes().into()))
                .await
                .expect("register")
        }
    };
    let sorted = |mut v: Vec<IpAddr>| {
        v.sort();
        v
    };
    let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
    let answers_become = |want: Vec<IpAddr>| {
        let a = &a;
        async move {
            let ok = wait_until(Duration::from_secs(10), || {
                let want = want.clone();
                async move { sorted(resolve_a(a.ip, "web.service.consul").await) == want }
            })
            .await;
            assert!(
                ok,
                "web.service.consul never answered {want:?}; last: {:?}",
                resolve_a(a.ip, "web.service.consul").await
            );
            // Served again (from the cache now), the answer is the same.
            for _ in 0..3 {
                assert_eq!(sorted(resolve_a(a.ip, "web.service.consul").await), want);
            }
        }
    };
    assert_eq!(register("web-1", "10.1.0.1").await.status, 200);
    answers_become(vec![ip("10.1.0.1")]).await;
    assert_eq!(register("web-2", "10.1.0.2").await.status, 200);
    answers_become(vec![ip("10.1.0.1"), ip("10.1.0.2")]).await;
    let r =
        a.client().request(hyper::Method::PUT, "/v1/agent/check/fail/ttl-web-1", None).await.expect("fail");
    assert_eq!(r.status, 200, "{}", r.text());
    answers_become(vec![ip("10.1.0.2")]).await;
    let r = a
        .client()
        .request(hyper::Method::PUT, "/v1/agent/service/deregister/web-2", None)
        .await
        .expect("deregister");
    assert_eq!(r.status, 200, "{}", r.text());
    answers_become(Vec::new()).await;
}
