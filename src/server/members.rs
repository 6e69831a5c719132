//! Gossip members as the server sees them: the servers of a datacenter
//! (from their `role`, `dc`, `port`, `id`, `expect` and `build` tags) for
//! bootstrap, autopilot and `?dc=` routing, and every member of this
//! datacenter as the leader reconciles them into the catalog. Gossip itself
//! knows nothing of Consul roles; this is where the tags get their meaning.

use super::bootstrap::ServerMember;
use super::leader::{MemberInfo, MemberState};
use crate::gossip::{Member, MemberStatus};
use std::net::SocketAddr;

fn is_server_in(m: &Member, dc: &str) -> bool {
    m.tags.get("role").map(String::as_str) == Some("consul")
        && m.tags.get("dc").map(String::as_str) == Some(dc)
}

/// The servers of `dc` as gossip shows them.
pub fn server_members(members: &[Member], dc: &str) -> Vec<ServerMember> {
    members
        .iter()
        .filter(|m| is_server_in(m, dc))
        .filter_map(|m| {
            let port: u16 = m.tags.get("port")?.parse().ok()?;
            Some(ServerMember {
                name: m.name.clone(),
                id: m.tags.get("id").cloned().unwrap_or_default(),
                rpc_addr: SocketAddr::new(m.addr, port),
                alive: matches!(m.status, MemberStatus::Alive | MemberStatus::Leaving),
                expect: m.tags.get("expect").and_then(|e| e.parse().ok()),
                left: m.status == MemberStatus::Left,
                leaving: m.status == MemberStatus::Leaving,
                version: m
                    .tags
                    .get("build")
                    .map(|b| b.split(':').next().unwrap_or_default().to_string())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Every LAN member of our datacenter, as the leader reconciles them.
pub fn member_infos(members: &[Member], dc: &str) -> Vec<MemberInfo> {
    members
        .iter()
        .filter(|m| m.tags.get("dc").map(String::as_str) == Some(dc))
        .map(|m| MemberInfo {
            name: m.name.clone(),
            id: m.tags.get("id").cloned().unwrap_or_default(),
            address: m.addr.to_string(),
            status: match m.status {
                MemberStatus::Alive | MemberStatus::Leaving | MemberStatus::None => MemberState::Alive,
                MemberStatus::Failed => MemberState::Failed,
                MemberStatus::Left => MemberState::Left,
            },
            server_port: if m.tags.get("role").map(String::as_str) == Some("consul") {
                m.tags.get("port").and_then(|p| p.parse().ok())
            } else {
                None
            },
        })
        .collect()
}
