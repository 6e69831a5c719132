//! The member view the rest of the agent sees: `Member`, its status codes
//! (as `/v1/agent/members` reports them) and membership events.
//!
//! Owns: these public shapes. Must not hold protocol state.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// Serf member status; the numbers are Consul's API codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberStatus {
    None = 0,
    Alive = 1,
    Leaving = 2,
    Left = 3,
    Failed = 4,
}

impl MemberStatus {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The word `consul members` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::None => "none",
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// memberlist protocol versions Consul 1.x reports (min/max/cur).
pub const PROTOCOL_VERSIONS: (u8, u8, u8) = (1, 5, 2);
/// Serf (delegate) protocol versions Consul 1.x reports (min/max/cur).
pub const DELEGATE_VERSIONS: (u8, u8, u8) = (2, 5, 4);

/// One member of a gossip pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub addr: IpAddr,
    pub port: u16,
    pub tags: BTreeMap<String, String>,
    pub status: MemberStatus,
    pub protocol_min: u8,
    pub protocol_max: u8,
    pub protocol_cur: u8,
    pub delegate_min: u8,
    pub delegate_max: u8,
    pub delegate_cur: u8,
}

impl Member {
    pub fn new(
        name: String,
        addr: std::net::SocketAddr,
        tags: BTreeMap<String, String>,
        status: MemberStatus,
    ) -> Member {
        Member {
            name,
            addr: addr.ip(),
            port: addr.port(),
            tags,
            status,
            protocol_min: PROTOCOL_VERSIONS.0,
            protocol_max: PROTOCOL_VERSIONS.1,
            protocol_cur: PROTOCOL_VERSIONS.2,
            delegate_min: DELEGATE_VERSIONS.0,
            delegate_max: DELEGATE_VERSIONS.1,
            delegate_cur: DELEGATE_VERSIONS.2,
        }
    }

    pub fn socket_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.addr, self.port)
    }
}

/// A change in membership, as Serf reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberEvent {
    Join(Member),
    /// Left gracefully (or was force-left).
    Leave(Member),
    Failed(Member),
    /// Tags or address changed.
    Update(Member),
    /// Removed from the member list (reconnect or tombstone timeout, or
    /// `force_leave` with prune).
    Reap(Member),
}

impl MemberEvent {
    pub fn member(&self) -> &Member {
        match self {
            MemberEvent::Join(m)
            | MemberEvent::Leave(m)
            | MemberEvent::Failed(m)
            | MemberEvent::Update(m)
            | MemberEvent::Reap(m) => m,
        }
    }
}
