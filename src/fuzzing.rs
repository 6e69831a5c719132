//! Fuzz entry points: one function per input surface an outsider (or a
//! damaged disk) can feed us, each driving the real decoder on arbitrary
//! bytes. The fuzzer package in `fuzz/` calls them, and
//! `tests/it/fuzz_corpus.rs` replays every saved input through them, so a
//! regression fails the tests without a fuzzer installed. Compiled only
//! with the `test-hooks` feature: the agent never calls it.
//!
//! Owns: the mapping from raw bytes to a call into each decoder. Must not
//! hold decoding logic of its own (a bug found here must be a bug in the
//! decoder) and must not touch the network: DNS answers come from a small
//! in-memory catalog, gossip runs the sans-IO Serf state machine, files go
//! to a private temporary directory.
//!
//! Contract of every function: it returns normally for every input. A
//! panic, a hang or an allocation beyond the surface's documented bound is
//! a bug in the decoder, never an acceptable answer to bad input.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The names of every target, as `fuzz/fuzz_targets/<name>.rs` and the
/// corpus directories spell them.
pub const TARGETS: &[&str] = &[
    "http_kv_path",
    "http_body",
    "filter_expr",
    "dns_request",
    "gossip_packet",
    "rpc_frame",
    "config_json",
    "config_hcl",
    "raft_log",
    "snapshot_archive",
    "peers_json",
];

/// Runs the target called `name` on `data`; `false` if there is no such
/// target (the corpus replay uses this to catch a misnamed directory).
pub fn run(name: &str, data: &[u8]) -> bool {
    let f: fn(&[u8]) = match name {
        "http_kv_path" => http_kv_path,
        "http_body" => http_body,
        "filter_expr" => filter_expr,
        "dns_request" => dns_request,
        "gossip_packet" => gossip_packet,
        "rpc_frame" => rpc_frame,
        "config_json" => config_json,
        "config_hcl" => config_hcl,
        "raft_log" => raft_log,
        "snapshot_archive" => snapshot_archive,
        "peers_json" => peers_json,
        _ => return false,
    };
    f(data);
    true
}

/// A KV request line: `data` is the part after `/v1/kv/`, path and query
/// string, exactly as a client may send it. Parses the URI the way hyper
/// does, then the key (traversal and UTF-8 checks), then every query
/// parameter the KV endpoint reads.
pub fn http_kv_path(data: &[u8]) {
    use crate::http::query::{node_meta, passing, request_context, token, Params};
    let mut raw = b"/v1/kv/".to_vec();
    raw.extend_from_slice(data);
    let Ok(uri) = axum::http::Uri::try_from(raw) else { return };
    let _ = crate::http::kv::key_from_path(&uri);
    let params = Params::parse(uri.query());
    let headers = axum::http::HeaderMap::new();
    let _ = request_context(&params, &headers);
    let _ = token(&params, &headers);
    let _ = params.conflicting(&["recurse", "cas"]);
    let _ = params.u64("cas", "cas index");
    let _ = params.u64("flags", "flags");
    let _ = params.dc();
    let _ = params.encode();
    let _ = node_meta(&params);
    let _ = passing(&params);
    let _ = crate::http::query::filter(&params, crate::filter::schemas::service_node());
}

/// The JSON body of a write endpoint. The first byte picks the endpoint
/// (agent service, agent check, catalog register, catalog deregister,
/// session create, txn, check update), the rest is the body, decoded and
/// converted exactly as the handler does before it touches the agent.
pub fn http_body(data: &[u8]) {
    use crate::http::decode::from_slice;
    use crate::http::input::{AgentServiceIn, CatalogDeregisterIn, CatalogRegisterIn, CheckIn};
    let Some((&which, body)) = data.split_first() else { return };
    match which % 7 {
        0 => {
            if let Ok(s) = from_slice::<AgentServiceIn>(body) {
                if let Ok(def) = s.into_def() {
                    let _ = crate::definition::validate_meta(&def.meta);
                }
            }
        }
        1 => {
            if let Ok(c) = from_slice::<CheckIn>(body) {
                let _ = c.into_def();
            }
        }
        2 => {
            if let Ok(r) = from_slice::<CatalogRegisterIn>(body) {
                let _ = r.into_registration("dc1");
            }
        }
        3 => {
            if let Ok(d) = from_slice::<CatalogDeregisterIn>(body) {
                let _ = d.into_deregistration();
            }
        }
        4 => {
            if let Ok(s) = from_slice::<crate::http::session::SessionIn>(body) {
                let _ = crate::http::session::lock_delay(s.lock_delay);
            }
        }
        5 => {
            let _ = from_slice::<Vec<crate::http::txn::OpIn>>(body);
        }
        _ => {
            let _ = from_slice::<serde_json::Value>(body);
        }
    }
}

/// A `?filter=` expression, bound to each endpoint schema and, when it
/// compiles, evaluated against a representative record.
pub fn filter_expr(data: &[u8]) {
    use crate::filter::{schemas, Filter};
    let Ok(expr) = std::str::from_utf8(data) else { return };
    let record = serde_json::json!({
        "Node": "n1", "Address": "10.0.0.1", "Datacenter": "dc1",
        "Meta": {"env": "prod", "rack": "r1"}, "TaggedAddresses": {"lan": "10.0.0.1"},
        "ServiceName": "web", "ServiceID": "web-1", "ServiceTags": ["a", "b"], "ServicePort": 8080,
        "ServiceMeta": {"v": "1"}, "ID": "web-1", "Service": "web", "Tags": ["a"], "Port": 80,
        "Status": "passing", "CheckID": "c1", "Name": "web", "Checks": [{"Status": "passing"}],
    });
    for schema in [
        schemas::node(),
        schemas::service_node(),
        schemas::node_service(),
        schemas::agent_service(),
        schemas::health_check(),
        schemas::service_health(),
        schemas::member(),
    ] {
        if let Ok(f) = Filter::parse(expr, schema) {
            let _ = f.matches(&record);
        }
    }
}

/// One DNS packet as it arrives on UDP (first byte even) or TCP, answered
/// by the real handler against a small in-memory catalog (no recursors, so
/// nothing leaves the process).
pub fn dns_request(data: &[u8]) {
    use hickory_server::net::xfer::Protocol;
    let Some((&mode, packet)) = data.split_first() else { return };
    let protocol = if mode % 2 == 0 { Protocol::Udp } else { Protocol::Tcp };
    let handler = dns_fixture::handler();
    let src = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), 5353));
    let fut = crate::dns::server::handle_packet(&handler, packet.to_vec(), src, protocol);
    if let Some(reply) = block_on(fut) {
        // The wire bound the handler promises: 512 bytes on UDP unless the
        // client's EDNS allows more, and never over 64 KiB.
        let edns =
            hickory_proto::op::Message::from_vec(packet).ok().and_then(|m| m.edns.map(|e| e.max_payload()));
        let limit = match (protocol, edns) {
            (Protocol::Udp, None) => 512,
            (Protocol::Udp, Some(p)) => usize::from(crate::dns::truncate::clamp_edns_payload(p)),
            _ => usize::from(u16::MAX),
        };
        if reply.len() > limit {
            fuzz_fail(format!("dns reply of {} bytes exceeds {limit}", reply.len()));
        }
        // The same packet again on UDP may now be answered from the hot
        // table: same bound, and a message hickory decodes with our ID.
        if protocol == Protocol::Udp {
            let mut scratch = crate::dns::compiled::Scratch::default();
            if handler.serve_hot(packet, &mut scratch) {
                if scratch.buf.len() > limit {
                    fuzz_fail(format!("hot dns reply of {} bytes exceeds {limit}", scratch.buf.len()));
                }
                match hickory_proto::op::Message::from_vec(&scratch.buf) {
                    Ok(m) if packet.get(..2) == Some(&m.metadata.id.to_be_bytes()[..]) => {}
                    other => fuzz_fail(format!("hot dns reply does not decode to our ID: {other:?}")),
                }
            }
        }
    }
}

/// A gossip datagram or stream. The first byte picks how it arrives:
/// a UDP packet (plaintext), a UDP packet through the encrypted keyring
/// (the raw bytes, then the bytes sealed with the key so the content is
/// reached too), a TCP stream request, a push-pull/join reply, or a
/// stream reply. Runs the real Serf/SWIM state machine.
pub fn gossip_packet(data: &[u8]) {
    use crate::config::runtime::GossipSettings;
    use crate::gossip::crypto::{Channel, Crypto, Keyring};
    use crate::gossip::serf::{Serf, SerfConfig};
    use crate::gossip::swim::SwimConfig;
    let Some((&mode, bytes)) = data.split_first() else { return };
    let local = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 2), 8301));
    let from = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 3), 8301));
    let cfg = SerfConfig::new(
        "fuzz-node".into(),
        local,
        BTreeMap::new(),
        SwimConfig::from_settings(&GossipSettings::lan()),
    );
    let now = Duration::from_secs(100);
    let Ok(mut serf) = Serf::new(cfg, 1, now, None) else { return };
    match mode % 5 {
        0 => {
            if let Ok(plain) = Crypto::plaintext().unwrap(bytes, Channel::Packet) {
                let _ = serf.handle_packet(from, &plain, now);
            }
        }
        1 => {
            let Ok(ring) = Keyring::new(&["pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=".to_string()]) else {
                return;
            };
            let _ = ring.open(bytes, Channel::Packet);
            let crypto = Crypto { keyring: Some(ring), verify_incoming: true, verify_outgoing: true };
            if let Ok(sealed) = crypto.wrap(bytes.to_vec(), Channel::Packet) {
                if let Ok(plain) = crypto.unwrap(&sealed, Channel::Packet) {
                    let _ = serf.handle_packet(from, &plain, now);
                }
            }
        }
        2 => {
            let _ = serf.handle_stream(from, bytes, now);
        }
        3 => {
            let _ = serf.handle_join_reply(bytes, now);
        }
        _ => serf.handle_stream_reply(1, Ok(bytes.to_vec()), now),
    }
    // Whatever the input did, the state machine must keep running.
    while serf.poll_output().is_some() {}
    while serf.poll_event().is_some() {}
}

/// Bytes on the server RPC port (8300): preamble, then frames, each
/// payload decoded as a request and as a response, and Raft payloads as
/// the Raft RPCs they claim to be.
pub fn rpc_frame(data: &[u8]) {
    use crate::rpc::frame::{read_frame, read_preamble};
    use crate::rpc::method::{self, Method, WireCall, WireReply};
    let mut cur = std::io::Cursor::new(data);
    if block_on(read_preamble(&mut cur)).is_err() {
        // Also read the input as frames without a preamble.
        cur.set_position(0);
    }
    for _ in 0..16 {
        let Ok(frame) = block_on(read_frame(&mut cur)) else { return };
        let call = postcard::from_bytes::<WireCall>(&frame.payload);
        if let Ok(call) = &call {
            let _ = method::check_args(call);
        }
        let raft =
            call.ok().filter(|c| c.method == method::Raft::ID).and_then(|c| c.args::<method::Raft>().ok());
        if let Some(method::Raft { kind, payload, .. }) = raft {
            let _ = crate::consensus::network::check_request(kind, &payload);
        }
        let _ = postcard::from_bytes::<WireReply>(&frame.payload);
    }
}

/// A JSON config file, loaded (parsed, merged, validated and resolved)
/// the way `consul agent -config-file` does, with a fixed interface list.
pub fn config_json(data: &[u8]) {
    config_file(data, "json");
}

/// An HCL config file, as `config_json`.
pub fn config_hcl(data: &[u8]) {
    config_file(data, "hcl");
}

fn config_file(data: &[u8], ext: &str) {
    use crate::config::{load_with_interfaces, netif::IfAddr, LoadOptions, SourceSpec};
    let Some(dir) = scratch_dir() else { return };
    let path = dir.path().join(format!("config.{ext}"));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let opts =
        LoadOptions { sources: vec![SourceSpec::File(path)], validate_only: true, ..Default::default() };
    let _ = load_with_interfaces(&opts, &|| IfAddr::from_ips(&[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5))]));
}

/// The Raft log on disk: the bytes as one WAL segment, opened the way a
/// server opens its log at start (torn-tail recovery, record checks, last
/// entry decoded), every record then read back the way Raft reads it;
/// and the bytes as one postcard-encoded log entry.
pub fn raft_log(data: &[u8]) {
    use crate::consensus::log_store::LogStore;
    let _ = postcard::from_bytes::<crate::consensus::typ::Entry>(data);
    let Some(dir) = scratch_dir() else { return };
    let wal = dir.path().join("raft").join("wal");
    if std::fs::create_dir_all(&wal).is_err()
        || std::fs::write(wal.join(format!("{:020}.seg", 1)), data).is_err()
    {
        return;
    }
    let Ok((store, _torn)) = LogStore::open(&dir.path().join("raft")) else { return };
    if let Some(last) = store.last_log_id() {
        let _ = store.read_entries(1, last.index.saturating_add(1).min(1 << 16));
    }
}

/// A snapshot archive (`consul snapshot restore` / `PUT /v1/snapshot`)
/// and a stored Raft snapshot file, with the state they carry decoded.
pub fn snapshot_archive(data: &[u8]) {
    if let Ok(a) = crate::snapshot::read_archive(data) {
        let _ = crate::catalog::State::decode(&a.state);
    }
    if let Ok(s) = crate::consensus::snapshot::decode(data) {
        let _ = crate::catalog::State::decode(&s.data);
    }
}

/// `raft/peers.json`, parsed and checked as outage recovery does.
pub fn peers_json(data: &[u8]) {
    use crate::consensus::recovery::{check_specs, parse_peers_json};
    if let Ok(specs) = parse_peers_json(data) {
        let _ = check_specs(&specs);
    }
}

/// A private directory in memory-backed storage when the machine has it,
/// removed with everything in it when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir() -> Option<ScratchDir> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir =
        base.join(format!("consul-fuzz-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).ok().map(|_| ScratchDir(dir))
}

/// Runs a future to completion on a per-thread current-thread runtime.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RT: Option<tokio::runtime::Runtime> =
            tokio::runtime::Builder::new_current_thread().enable_all().build().ok();
    }
    RT.with(|rt| match rt {
        Some(rt) => rt.block_on(f),
        None => futures::executor::block_on(f),
    })
}

/// A property the decoder promises did not hold: the fuzzer must see it
/// as a crash.
#[allow(clippy::panic)]
fn fuzz_fail(msg: String) -> ! {
    panic!("{msg}")
}

mod dns_fixture {
    //! A fixed three-node catalog for the DNS target.
    use super::*;
    use crate::dns::{
        default_dns_settings, BackendError, BoxFut, DnsBackend, DnsHandler, DnsServerConfig, Health,
        NodeInfo, ReverseHit, ServiceInstance,
    };

    struct Catalog {
        nodes: Vec<NodeInfo>,
        web: Arc<Vec<ServiceInstance>>,
    }

    fn node(i: u8) -> NodeInfo {
        NodeInfo {
            node: format!("node{i}"),
            address: format!("10.0.0.{i}"),
            datacenter: "dc1".into(),
            meta: BTreeMap::from([("rack".to_string(), format!("r{i}"))]),
            tagged_addresses: BTreeMap::from([("wan".to_string(), format!("192.0.2.{i}"))]),
        }
    }

    fn instance(i: u8) -> ServiceInstance {
        ServiceInstance {
            node: format!("node{i}"),
            node_address: format!("10.0.0.{i}"),
            datacenter: "dc1".into(),
            node_meta: BTreeMap::new(),
            node_tagged_addresses: BTreeMap::new(),
            service_id: format!("web-{i}"),
            service_name: "web".into(),
            service_address: if i == 3 { "web3.example.com".into() } else { String::new() },
            service_port: 8000 + u16::from(i),
            service_tags: vec!["primary".into(), format!("t{i}")],
            weight_passing: 1,
            weight_warning: 1,
            health: if i == 2 { Health::Warning } else { Health::Passing },
        }
    }

    fn dc_ok(dc: Option<&str>) -> Result<(), BackendError> {
        match dc {
            None | Some("dc1") => Ok(()),
            Some(_) => Err(BackendError::NoPathToDatacenter),
        }
    }

    impl DnsBackend for Catalog {
        fn local_datacenter(&self) -> String {
            "dc1".into()
        }

        fn service_instances<'a>(
            &'a self,
            service: &'a str,
            dc: Option<&'a str>,
            _allow_stale: bool,
        ) -> BoxFut<'a, Result<(u64, Arc<Vec<ServiceInstance>>), BackendError>> {
            Box::pin(async move {
                dc_ok(dc)?;
                Ok(if service == "web" { (7, self.web.clone()) } else { (7, Arc::new(Vec::new())) })
            })
        }

        /// As a server would: the index without the instances (enables hot answers).
        fn service_index(&self, _service: &str, dc: Option<&str>, _allow_stale: bool) -> Option<u64> {
            dc_ok(dc).ok().map(|_| 7)
        }

        fn node<'a>(
            &'a self,
            name: &'a str,
            dc: Option<&'a str>,
            _s: bool,
        ) -> BoxFut<'a, Result<Option<NodeInfo>, BackendError>> {
            Box::pin(async move {
                dc_ok(dc)?;
                Ok(self.nodes.iter().find(|n| n.node.eq_ignore_ascii_case(name)).cloned())
            })
        }

        fn reverse<'a>(&'a self, ip: IpAddr) -> BoxFut<'a, Result<Option<ReverseHit>, BackendError>> {
            Box::pin(async move {
                let ip = ip.to_string();
                Ok(self
                    .nodes
                    .iter()
                    .find(|n| n.address == ip)
                    .map(|n| ReverseHit::Node { node: n.node.clone(), datacenter: n.datacenter.clone() }))
            })
        }

        fn servers<'a>(&'a self) -> BoxFut<'a, Result<Vec<NodeInfo>, BackendError>> {
            Box::pin(async move { Ok(self.nodes.iter().take(1).cloned().collect()) })
        }
    }

    /// One handler per thread, so the answer cache is exercised across
    /// inputs as it is in a running agent.
    pub fn handler() -> DnsHandler {
        thread_local! {
            static H: Option<DnsHandler> = {
                let catalog = Catalog { nodes: (1..=3).map(node).collect(), web: Arc::new((1..=3).map(instance).collect()) };
                let mut cfg = DnsServerConfig::new("consul.", default_dns_settings());
                cfg.alt_domain = Some("alt.test.".into());
                DnsHandler::new(Arc::new(catalog), cfg).ok()
            };
        }
        H.with(|h| h.clone()).unwrap_or_else(|| {
            let catalog = Catalog { nodes: Vec::new(), web: Arc::new(Vec::new()) };
            match DnsHandler::new(Arc::new(catalog), DnsServerConfig::new("consul.", default_dns_settings()))
            {
                Ok(h) => h,
                Err(e) => fuzz_fail(format!("dns fixture: {e}")),
            }
        })
    }
}
