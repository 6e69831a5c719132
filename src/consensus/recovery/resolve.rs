//! Turning the servers peers.json names into Raft members (id + node).
//!
//! Rules, in order, for an entry given by address only (the old format):
//! 1. this server's own RPC address → this server;
//! 2. an address in this server's last Raft configuration → that server;
//! 3. an address whose IP belongs to exactly one member of this server's
//!    gossip snapshot (`serf/local.snapshot`), whose name belongs to
//!    exactly one server of the last configuration → that server, now at
//!    this address (a server that moved);
//! 4. otherwise a server nobody knows yet (a replacement): it becomes a
//!    voter under a placeholder id derived from the address, so that every
//!    survivor counts the same quorum. The server that answers at that
//!    address votes and receives the log in its place; when it joins
//!    gossip, autopilot swaps the placeholder for its real id (a Raft entry
//!    whose address now belongs to another live server is stale) and
//!    promotes it after `server_stabilization_time`.
//!
//! An entry with an id keeps that id and the address given; its node name
//! comes from this server, the last configuration or the gossip snapshot.
//!
//! Owns: these rules and the checks that need this server's knowledge
//! (this server is listed, at its real address; no server twice). Must not
//! read files: the caller passes what this server knows.

use super::peers_file::PeerSpec;
use crate::consensus::typ::{raft_id, NodeId, RaftNode};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

/// This server, as far as it is known. The agent knows all of it; the
/// offline `recover` command knows the address only from the last
/// configuration.
#[derive(Clone, Debug)]
pub struct Me {
    pub id: NodeId,
    /// The node ID (UUID string).
    pub node_id: String,
    pub name: String,
    pub addr: Option<SocketAddr>,
}

/// What this server knows about the others.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// The newest Raft configuration on disk (voters and non-voters).
    pub config: BTreeMap<NodeId, RaftNode>,
    /// Members of the gossip snapshot: name and IP.
    pub gossip: Vec<(String, IpAddr)>,
}

/// How an entry's id was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    ThisServer,
    /// peers.json (or `-peers`) gave the id.
    GivenId,
    LastConfiguration,
    GossipSnapshot,
    /// Nobody knows this address yet: a placeholder until a server joins there.
    AwaitingServer,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::ThisServer => "this server",
            Source::GivenId => "id given",
            Source::LastConfiguration => "last raft configuration",
            Source::GossipSnapshot => "gossip snapshot (server moved)",
            Source::AwaitingServer => "unknown yet: admitted when a server joins at this address",
        }
    }
}

/// One member of the recovered configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredServer {
    pub id: NodeId,
    pub node: RaftNode,
    pub voter: bool,
    pub source: Source,
}

impl RecoveredServer {
    pub fn addr(&self) -> String {
        self.node.addr.clone()
    }
}

/// A stable id for a server known only by its address: the same on every
/// survivor that reads the same address (FNV-1a, 64 bit).
pub fn placeholder_id(addr: &SocketAddr) -> NodeId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "consul-rs peers.json placeholder ".bytes().chain(addr.to_string().into_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn node_addr(n: &RaftNode) -> Option<SocketAddr> {
    n.addr.parse().ok()
}

fn gossip_name(known: &Known, ip: IpAddr) -> Option<String> {
    let names: BTreeSet<&String> = known.gossip.iter().filter(|(_, a)| *a == ip).map(|(n, _)| n).collect();
    match names.into_iter().collect::<Vec<_>>().as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

fn resolve_id(
    uuid: uuid::Uuid,
    addr: Option<SocketAddr>,
    me: &Me,
    known: &Known,
) -> Result<RecoveredServer, String> {
    let id = raft_id(&uuid);
    let node_id = uuid.to_string();
    if id == me.id {
        let addr =
            addr.or(me.addr).ok_or_else(|| format!("give this server's address as {node_id}@ip:port"))?;
        let node = RaftNode { addr: addr.to_string(), name: me.name.clone(), node_id: me.node_id.clone() };
        return Ok(RecoveredServer { id, node, voter: true, source: Source::ThisServer });
    }
    if let Some(n) = known.config.get(&id) {
        if !n.node_id.is_empty() && !n.node_id.eq_ignore_ascii_case(&node_id) {
            return Err(format!("id {node_id} shares its Raft id with server {} ({}); node IDs must differ in their first 8 bytes", n.name, n.node_id));
        }
        let addr = match addr {
            Some(a) => a,
            None => node_addr(n)
                .ok_or_else(|| format!("server {node_id} has an unusable address {:?}", n.addr))?,
        };
        let node = RaftNode { addr: addr.to_string(), name: n.name.clone(), node_id };
        return Ok(RecoveredServer { id, node, voter: true, source: Source::GivenId });
    }
    let addr = addr.ok_or_else(|| format!("server {node_id} is not in this server's last Raft configuration; give its address as {node_id}@ip:port"))?;
    let name = gossip_name(known, addr.ip()).unwrap_or_default();
    Ok(RecoveredServer {
        id,
        node: RaftNode { addr: addr.to_string(), name, node_id },
        voter: true,
        source: Source::GivenId,
    })
}

fn resolve_address(addr: SocketAddr, me: &Me, known: &Known) -> Result<RecoveredServer, String> {
    if me.addr == Some(addr) {
        let node = RaftNode { addr: addr.to_string(), name: me.name.clone(), node_id: me.node_id.clone() };
        return Ok(RecoveredServer { id: me.id, node, voter: true, source: Source::ThisServer });
    }
    let at_addr: Vec<(&NodeId, &RaftNode)> =
        known.config.iter().filter(|(_, n)| node_addr(n) == Some(addr)).collect();
    match at_addr.as_slice() {
        [(id, n)] => {
            let source = if **id == me.id { Source::ThisServer } else { Source::LastConfiguration };
            return Ok(RecoveredServer { id: **id, node: (*n).clone(), voter: true, source });
        }
        [] => {}
        _ => {
            return Err(format!(
                "address {addr} belongs to several servers of the last Raft configuration; list them by id"
            ))
        }
    }
    if let Some(name) = gossip_name(known, addr.ip()) {
        let named: Vec<(&NodeId, &RaftNode)> = known.config.iter().filter(|(_, n)| n.name == name).collect();
        if let [(id, n)] = named.as_slice() {
            let node = RaftNode { addr: addr.to_string(), name: n.name.clone(), node_id: n.node_id.clone() };
            let source = if **id == me.id { Source::ThisServer } else { Source::GossipSnapshot };
            return Ok(RecoveredServer { id: **id, node, voter: true, source });
        }
    }
    let node = RaftNode { addr: addr.to_string(), name: String::new(), node_id: String::new() };
    Ok(RecoveredServer { id: placeholder_id(&addr), node, voter: true, source: Source::AwaitingServer })
}

/// Resolves every entry and checks the result as a whole.
pub fn resolve(specs: &[PeerSpec], me: &Me, known: &Known) -> Result<Vec<RecoveredServer>, String> {
    let mut out: Vec<RecoveredServer> = Vec::with_capacity(specs.len());
    for spec in specs {
        let mut s = match (spec.id, spec.address) {
            (Some(uuid), addr) => resolve_id(uuid, addr, me, known)?,
            (None, Some(addr)) => resolve_address(addr, me, known)?,
            (None, None) => return Err("an entry names neither an id nor an address".into()),
        };
        s.voter = !spec.non_voter;
        if let Some(prev) = out.iter().find(|o| o.id == s.id) {
            return Err(format!(
                "{} and {} are the same server ({})",
                prev.node.addr,
                s.node.addr,
                describe(&s)
            ));
        }
        if let Some(prev) = out.iter().find(|o| o.node.addr == s.node.addr) {
            return Err(format!("{} and {} share the address {}", describe(prev), describe(&s), s.node.addr));
        }
        out.push(s);
    }
    let Some(mine) = out.iter().find(|s| s.id == me.id) else {
        let at = me.addr.map(|a| format!(" at {a}")).unwrap_or_default();
        return Err(format!(
            "this server ({}{at}, id {}) is not listed; a server only recovers into a configuration that includes it",
            if me.name.is_empty() { "unnamed" } else { &me.name },
            me.node_id
        ));
    };
    if let Some(real) = me.addr {
        if node_addr(&mine.node) != Some(real) {
            return Err(format!(
                "this server is listed at {}, but it serves Raft on {real}; list it at {real}",
                mine.node.addr
            ));
        }
    }
    if !out.iter().any(|s| s.voter) {
        return Err("the configuration has no voter".into());
    }
    Ok(out)
}

fn describe(s: &RecoveredServer) -> String {
    match (s.node.name.is_empty(), s.node.node_id.is_empty()) {
        (false, _) => format!("server {}", s.node.name),
        (true, false) => format!("server {}", s.node.node_id),
        (true, true) => format!("the server at {}", s.node.addr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(n: u8) -> uuid::Uuid {
        uuid::Uuid::from_bytes([n, 1, 2, 3, 4, 5, 0x46, 7, 0x88, 9, 10, 11, 12, 13, 14, n])
    }

    fn node(n: u8, ip: &str) -> (NodeId, RaftNode) {
        let u = uuid(n);
        (raft_id(&u), RaftNode { addr: format!("{ip}:8300"), name: format!("s{n}"), node_id: u.to_string() })
    }

    fn me() -> Me {
        let (id, n) = node(1, "10.0.0.1");
        Me { id, node_id: n.node_id, name: n.name, addr: Some("10.0.0.1:8300".parse().unwrap()) }
    }

    fn known() -> Known {
        Known {
            config: [node(1, "10.0.0.1"), node(2, "10.0.0.2"), node(3, "10.0.0.3")].into_iter().collect(),
            gossip: vec![
                ("s2".into(), "10.0.0.2".parse().unwrap()),
                ("s3".into(), "10.0.0.33".parse().unwrap()),
            ],
        }
    }

    fn addr(s: &str) -> PeerSpec {
        PeerSpec { id: None, address: Some(s.parse().unwrap()), non_voter: false }
    }

    #[test]
    fn addresses_map_to_known_servers_and_placeholders() {
        let specs =
            [addr("10.0.0.1:8300"), addr("10.0.0.2:8300"), addr("10.0.0.33:8300"), addr("10.0.0.4:8300")];
        let out = resolve(&specs, &me(), &known()).unwrap();
        let sources: Vec<Source> = out.iter().map(|s| s.source).collect();
        assert_eq!(
            sources,
            vec![
                Source::ThisServer,
                Source::LastConfiguration,
                Source::GossipSnapshot,
                Source::AwaitingServer
            ]
        );
        assert_eq!(out[1].id, node(2, "x").0);
        // s3 moved to .33: same id, new address, name kept.
        assert_eq!(out[2].id, node(3, "x").0);
        assert_eq!(out[2].node.addr, "10.0.0.33:8300");
        assert_eq!(out[2].node.name, "s3");
        // The replacement gets the same placeholder id on every survivor.
        assert_eq!(out[3].id, placeholder_id(&"10.0.0.4:8300".parse().unwrap()));
        assert_ne!(out[3].id, placeholder_id(&"10.0.0.5:8300".parse().unwrap()));
        assert!(out[3].node.node_id.is_empty() && out[3].voter);
    }

    #[test]
    fn ids_keep_the_given_address() {
        let specs = [
            PeerSpec { id: Some(uuid(1)), address: Some("10.0.0.1:8300".parse().unwrap()), non_voter: false },
            PeerSpec { id: Some(uuid(2)), address: Some("10.0.0.22:8300".parse().unwrap()), non_voter: true },
            PeerSpec { id: Some(uuid(9)), address: Some("10.0.0.9:8300".parse().unwrap()), non_voter: false },
            PeerSpec { id: Some(uuid(3)), address: None, non_voter: false },
        ];
        let out = resolve(&specs, &me(), &known()).unwrap();
        assert_eq!(out[1].node.addr, "10.0.0.22:8300");
        assert_eq!(out[1].node.name, "s2");
        assert!(!out[1].voter);
        assert_eq!(out[2].node.node_id, uuid(9).to_string());
        assert_eq!(out[2].source, Source::GivenId);
        assert_eq!(out[3].node.addr, "10.0.0.3:8300", "address taken from the last configuration");
        let unknown_no_addr = [
            PeerSpec { id: Some(uuid(1)), address: None, non_voter: false },
            PeerSpec { id: Some(uuid(8)), address: None, non_voter: false },
        ];
        assert!(resolve(&unknown_no_addr, &me(), &known()).unwrap_err().contains("give its address"));
    }

    #[test]
    fn this_server_must_be_listed_at_its_real_address() {
        let e = resolve(&[addr("10.0.0.2:8300")], &me(), &known()).unwrap_err();
        assert!(e.contains("this server (s1 at 10.0.0.1:8300") && e.contains("not listed"), "{e}");
        let moved = [PeerSpec {
            id: Some(uuid(1)),
            address: Some("10.9.9.9:8300".parse().unwrap()),
            non_voter: false,
        }];
        let e = resolve(&moved, &me(), &known()).unwrap_err();
        assert!(e.contains("serves Raft on 10.0.0.1:8300"), "{e}");
    }

    #[test]
    fn the_same_server_twice_is_refused() {
        // s3 by its old address and by its gossip (new) address.
        let e =
            resolve(&[addr("10.0.0.1:8300"), addr("10.0.0.3:8300"), addr("10.0.0.33:8300")], &me(), &known())
                .unwrap_err();
        assert!(e.contains("same server"), "{e}");
        let both = [
            addr("10.0.0.1:8300"),
            PeerSpec { id: Some(uuid(2)), address: Some("10.0.0.1:8300".parse().unwrap()), non_voter: false },
        ];
        assert!(resolve(&both, &me(), &known()).unwrap_err().contains("share the address"));
    }

    #[test]
    fn a_voter_is_required() {
        let specs = [PeerSpec { id: Some(uuid(1)), address: None, non_voter: true }];
        assert!(resolve(&specs, &me(), &known()).unwrap_err().contains("no voter"));
    }
}
