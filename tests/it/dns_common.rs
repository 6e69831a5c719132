//! Shared by the DNS integration tests: an in-memory `DnsBackend`, a server
//! starter on loopback, and a small client built on hickory-proto over real
//! UDP/TCP sockets. Used by the `dns_server`, `dns_dig` and `dns_bench`
//! modules.
// The fake catalog's map type is spelled out where it is declared.
#![allow(clippy::type_complexity)]

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consul::dns::{
    default_dns_settings, BackendError, BoxFut, DnsBackend, DnsHandler, DnsServerConfig, Health, NodeInfo,
    ReverseHit, ServiceInstance,
};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub const DC: &str = "dc1";

#[derive(Default)]
pub struct FakeBackend {
    /// (dc, service) → (index, instances)
    pub services: Mutex<HashMap<(String, String), (u64, Arc<Vec<ServiceInstance>>)>>,
    pub nodes: Mutex<Vec<NodeInfo>>,
    pub servers: Mutex<Vec<NodeInfo>>,
    pub fail: Mutex<Option<BackendError>>,
    pub other_dcs: Vec<String>,
    /// What `acl_generation` reports (a test bumps it to model a DNS token
    /// whose policies changed).
    pub acl: std::sync::atomic::AtomicU64,
}

impl FakeBackend {
    pub fn new() -> Arc<Self> {
        Arc::new(FakeBackend { other_dcs: vec!["dc2".into()], ..Default::default() })
    }

    pub fn set_service(&self, dc: &str, name: &str, index: u64, instances: Vec<ServiceInstance>) {
        self.services.lock().unwrap().insert((dc.into(), name.into()), (index, Arc::new(instances)));
    }

    pub fn add_node(&self, node: NodeInfo) {
        self.nodes.lock().unwrap().push(node);
    }

    fn check(&self, dc: Option<&str>) -> Result<String, BackendError> {
        if let Some(e) = self.fail.lock().unwrap().clone() {
            return Err(e);
        }
        let dc = dc.unwrap_or(DC).to_string();
        if dc != DC && !self.other_dcs.contains(&dc) {
            return Err(BackendError::NoPathToDatacenter);
        }
        Ok(dc)
    }
}

impl DnsBackend for FakeBackend {
    fn local_datacenter(&self) -> String {
        DC.into()
    }

    fn service_instances<'a>(
        &'a self,
        service: &'a str,
        dc: Option<&'a str>,
        _allow_stale: bool,
    ) -> BoxFut<'a, Result<(u64, Arc<Vec<ServiceInstance>>), BackendError>> {
        Box::pin(async move {
            let dc = self.check(dc)?;
            let services = self.services.lock().unwrap();
            Ok(services.get(&(dc, service.to_string())).cloned().unwrap_or((1, Arc::new(Vec::new()))))
        })
    }

    /// Like a server reading its own state: the index without the instances.
    fn service_index(&self, service: &str, dc: Option<&str>, _allow_stale: bool) -> Option<u64> {
        let dc = self.check(dc).ok()?;
        Some(self.services.lock().unwrap().get(&(dc, service.to_string())).map_or(1, |(index, _)| *index))
    }

    fn acl_generation(&self) -> u64 {
        self.acl.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn node<'a>(
        &'a self,
        name: &'a str,
        dc: Option<&'a str>,
        _s: bool,
    ) -> BoxFut<'a, Result<Option<NodeInfo>, BackendError>> {
        Box::pin(async move {
            let dc = self.check(dc)?;
            let nodes = self.nodes.lock().unwrap();
            Ok(nodes.iter().find(|n| n.node.eq_ignore_ascii_case(name) && n.datacenter == dc).cloned())
        })
    }

    fn reverse<'a>(&'a self, ip: IpAddr) -> BoxFut<'a, Result<Option<ReverseHit>, BackendError>> {
        Box::pin(async move {
            self.check(None)?;
            let ip = ip.to_string();
            if let Some(n) = self.nodes.lock().unwrap().iter().find(|n| n.address == ip) {
                return Ok(Some(ReverseHit::Node { node: n.node.clone(), datacenter: n.datacenter.clone() }));
            }
            let services = self.services.lock().unwrap();
            for (_, list) in services.values() {
                if let Some(i) = list.iter().find(|i| i.service_address == ip) {
                    return Ok(Some(ReverseHit::Service {
                        service: i.service_name.clone(),
                        datacenter: i.datacenter.clone(),
                    }));
                }
            }
            Ok(None)
        })
    }

    fn servers<'a>(&'a self) -> BoxFut<'a, Result<Vec<NodeInfo>, BackendError>> {
        Box::pin(async move {
            self.check(None)?;
            Ok(self.servers.lock().unwrap().clone())
        })
    }
}

pub fn node(name: &str, address: &str) -> NodeInfo {
    NodeInfo {
        node: name.into(),
        address: address.into(),
        datacenter: DC.into(),
        meta: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
        tagged_addresses: BTreeMap::new(),
    }
}

pub fn instance(node: &str, address: &str, port: u16, health: Health) -> ServiceInstance {
    ServiceInstance {
        node: node.into(),
        node_address: address.into(),
        datacenter: DC.into(),
        node_meta: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
        node_tagged_addresses: BTreeMap::new(),
        service_id: format!("web-{node}-{port}"),
        service_name: "web".into(),
        service_address: String::new(),
        service_port: port,
        service_tags: vec!["primary".into()],
        weight_passing: 10,
        weight_warning: 1,
        health,
    }
}

/// `n` passing instances on nodes `node-<i>` at 10.<i/65536>.<..>.<..>.
pub fn many(n: usize) -> Vec<ServiceInstance> {
    (0..n)
        .map(|i| {
            let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
            instance(&format!("node-{i}"), &ip, 8080, Health::Passing)
        })
        .collect()
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub handler: DnsHandler,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

impl TestServer {
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        tokio::time::timeout(Duration::from_secs(5), self.tasks.wait())
            .await
            .expect("server stops within 5s");
    }
}

pub async fn start(
    backend: Arc<FakeBackend>,
    ip: &str,
    tweak: impl FnOnce(&mut DnsServerConfig),
) -> TestServer {
    let mut cfg = DnsServerConfig::new("consul.", default_dns_settings());
    tweak(&mut cfg);
    let handler = DnsHandler::new(backend, cfg).unwrap();
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let addr: SocketAddr = format!("{ip}:0").parse().unwrap();
    let bound =
        consul::dns::server::serve_handler(handler.clone(), &[addr], shutdown.clone(), &tasks).await.unwrap();
    TestServer { addr: bound[0], handler, shutdown, tasks }
}

pub fn build_query(name: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

/// Sends raw bytes over UDP and waits up to `wait` for a reply.
pub async fn udp_raw(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub async fn udp(server: SocketAddr, name: &str, qtype: RecordType, edns: Option<u16>) -> (Message, usize) {
    let q = build_query(name, qtype, edns);
    let raw =
        udp_raw(server, &q.to_vec().unwrap(), Duration::from_secs(5)).await.expect("udp reply within 5s");
    let m = Message::from_vec(&raw).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    (m, raw.len())
}

pub async fn tcp_raw(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(server).await.unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    s.write_all(&framed).await.unwrap();
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len)).await.unwrap().unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    buf
}

pub async fn tcp(server: SocketAddr, name: &str, qtype: RecordType) -> (Message, usize) {
    let q = build_query(name, qtype, None);
    let raw = tcp_raw(server, &q.to_vec().unwrap()).await;
    let m = Message::from_vec(&raw).unwrap();
    assert_eq!(m.metadata.id, q.metadata.id);
    (m, raw.len())
}
