//! Autopilot (leader only): keeps the Raft configuration equal to the
//! healthy servers gossip knows. A new server joins as a non-voter and is
//! promoted once it has caught up and stayed healthy for
//! `server_stabilization_time`; servers that left are removed; failed
//! servers are removed with `cleanup_dead_servers` only while the healthy
//! voters keep a quorum, never below `min_quorum` and never more than a
//! minority at once; a stale entry (a server that came back with a new ID
//! at the same address) is removed.
//!
//! Each round first decides (`plan`, a pure function of what the leader
//! sees), then makes the changes one after another, each awaited until
//! committed. Rounds and every other configuration change (peer removal,
//! a server's own leave) hold `Server::membership_changes`, and a round
//! acts only on a configuration that is committed: so a round never undoes
//! a change still in flight and never issues one twice.

use super::bootstrap::ServerMember;
use super::Server;
use crate::config::runtime::Autopilot as AutopilotSettings;
use crate::consensus::status::Membership;
use crate::consensus::typ::RaftNode;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Autopilot's memory between rounds.
#[derive(Default)]
pub struct AutopilotState {
    /// When each non-voter was first seen healthy (for stabilization).
    healthy_since: BTreeMap<u64, Instant>,
    /// The last reason dead servers were kept, so it is logged once.
    kept_dead: Option<String>,
    /// Servers gossip reaped (`force-leave -prune`, or the reconnect
    /// timeout): gone from the member list, so only this remembers them.
    reaped: BTreeSet<u64>,
}

impl AutopilotState {
    /// Gossip dropped this server from its member list: it is to leave
    /// the Raft configuration as a server that left does.
    pub fn note_reaped(&mut self, member: &ServerMember) {
        if let Some(id) = member.raft_id() {
            self.reaped.insert(id);
        }
    }
}

/// What the leader sees at the start of a round.
pub(crate) struct View<'a> {
    pub me: u64,
    /// The configuration, committed (a round never acts on a pending one).
    pub membership: &'a Membership,
    pub servers: &'a [ServerMember],
    /// The leader's last log index.
    pub last_log: u64,
    /// How far each other server has replicated.
    pub matched: BTreeMap<u64, u64>,
    /// When each other server last answered the leader.
    pub contact: BTreeMap<u64, Duration>,
}

/// Why a server leaves the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    Left,
    Stale,
    Dead,
}

/// What one round decided, before any of it is done.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Servers gossip shows alive that Raft does not have: added as non-voters.
    pub add: Vec<(u64, RaftNode)>,
    /// Servers to take out of the configuration, and why.
    pub remove: BTreeMap<u64, Removal>,
    /// Non-voters that have been healthy long enough to vote.
    pub promote: BTreeSet<u64>,
    /// Why failed voters are kept this round, if they are.
    pub kept_dead: Option<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.promote.is_empty()
    }
}

/// Whether a server is fit to vote: alive in gossip (and not leaving),
/// answering the leader within `last_contact_threshold`, and no more than
/// `max_trailing_logs` behind.
pub(crate) fn healthy(
    view: &View,
    id: u64,
    member: Option<&ServerMember>,
    settings: &AutopilotSettings,
) -> bool {
    if id == view.me {
        return member.is_none_or(|m| m.alive && !m.leaving);
    }
    let alive = member.is_some_and(|m| m.alive && !m.leaving);
    let contact = view.contact.get(&id).is_some_and(|c| *c <= settings.last_contact_threshold);
    let caught_up =
        view.matched.get(&id).is_some_and(|m| view.last_log.saturating_sub(*m) <= settings.max_trailing_logs);
    alive && contact && caught_up
}

/// Decides one round. Updates the stabilization clocks in `state`.
pub(crate) fn plan(
    view: &View,
    settings: &AutopilotSettings,
    state: &mut AutopilotState,
    now: Instant,
) -> Plan {
    let nodes = &view.membership.nodes;
    let voters = &view.membership.voters;
    let by_id: BTreeMap<u64, &ServerMember> =
        view.servers.iter().filter_map(|s| Some((s.raft_id()?, s))).collect();
    let mut out = Plan::default();

    // Servers gossip shows alive and Raft does not have. A server that
    // announced it is leaving is not taken back while it goes.
    for (id, s) in &by_id {
        if s.alive && !s.leaving && !nodes.contains_key(id) {
            out.add.push((*id, s.raft_node()));
        }
    }

    // Servers that left, and stale entries.
    for id in nodes.keys().filter(|id| **id != view.me) {
        match by_id.get(id) {
            Some(s) if s.left => {
                out.remove.insert(*id, Removal::Left);
            }
            Some(_) => {}
            None if state.reaped.contains(id) => {
                out.remove.insert(*id, Removal::Left);
            }
            None => {
                let addr = &nodes[id].addr;
                if view.servers.iter().any(|s| s.alive && s.rpc_addr.to_string() == *addr) {
                    out.remove.insert(*id, Removal::Stale);
                }
            }
        }
    }

    // Failed non-voters always go; failed voters only within the limits.
    if settings.cleanup_dead_servers {
        let failed = |id: &&u64| **id != view.me && by_id.get(*id).is_some_and(|s| !s.alive && !s.left);
        for id in nodes.keys().filter(failed).filter(|id| !voters.contains(id)) {
            out.remove.insert(*id, Removal::Dead);
        }
        let dead_voters: Vec<u64> =
            voters.iter().filter(failed).filter(|id| !out.remove.contains_key(id)).copied().collect();
        if !dead_voters.is_empty() {
            match dead_voter_removals(
                voters.len(),
                out.remove.keys().filter(|id| voters.contains(id)).count(),
                dead_voters.len(),
                settings.min_quorum,
            ) {
                Ok(()) => {
                    for id in dead_voters {
                        out.remove.insert(id, Removal::Dead);
                    }
                }
                Err(why) => out.kept_dead = Some(why),
            }
        }
    }

    // Promotions: non-voters healthy for `server_stabilization_time`.
    for id in nodes.keys().filter(|id| !voters.contains(id)) {
        let fit = !out.remove.contains_key(id) && healthy(view, *id, by_id.get(id).copied(), settings);
        if fit {
            let since = *state.healthy_since.entry(*id).or_insert(now);
            if now.duration_since(since) >= settings.server_stabilization_time {
                out.promote.insert(*id);
            }
        } else {
            state.healthy_since.remove(id);
        }
    }
    state.healthy_since.retain(|id, _| nodes.contains_key(id) && !voters.contains(id));
    // Forget a reaped server once it is out of the configuration, or back.
    state.reaped.retain(|id| nodes.contains_key(id) && !by_id.contains_key(id));
    out
}

/// Whether `dead` failed voters may be removed from `voters` voters of
/// which `leaving` are being removed anyway: the rest must still be a
/// quorum of the current configuration (or the change cannot commit),
/// the removal must be a minority of the voters, and at least `min_quorum`
/// voters must remain.
fn dead_voter_removals(voters: usize, leaving: usize, dead: usize, min_quorum: u32) -> Result<(), String> {
    let remaining = voters - leaving - dead;
    if remaining * 2 <= voters {
        return Err(format!(
            "too many dead servers: removing {dead} of {voters} voters would leave no quorum of healthy ones"
        ));
    }
    if dead * 2 >= voters {
        return Err(format!("too many dead servers: {dead} of {voters} voters is not a minority"));
    }
    if remaining < min_quorum as usize {
        return Err(format!(
            "removing {dead} dead servers would leave {remaining} voters, fewer than min_quorum ({min_quorum})"
        ));
    }
    Ok(())
}

impl Server {
    /// One reconcile round; a no-op unless this server is the leader (and
    /// not itself leaving).
    pub async fn autopilot_round(
        &self,
        servers: &[ServerMember],
        settings: &AutopilotSettings,
        state: &mut AutopilotState,
    ) -> Result<(), String> {
        if !self.consensus.is_leader() || self.is_leaving() {
            state.healthy_since.clear();
            return Ok(());
        }
        let _changing = self.membership_changes.lock().await;
        let status = self.consensus.status();
        // A change still being committed (a joint configuration a previous
        // leader left, say): act on nothing until it is.
        if self.consensus.applied_membership().index != status.membership.index {
            return Ok(());
        }
        let view = View {
            me: self.consensus.node_id,
            membership: &status.membership,
            servers,
            last_log: self.consensus.last_log().map(|l| l.index).unwrap_or(0),
            matched: status.replication.iter().flatten().map(|(id, m)| (*id, m.unwrap_or(0))).collect(),
            contact: status
                .membership
                .nodes
                .keys()
                .filter_map(|id| Some((*id, self.consensus.peer_contacts.since(*id)?)))
                .collect(),
        };
        let plan = plan(&view, settings, state, Instant::now());
        if plan.kept_dead != state.kept_dead {
            if let Some(why) = &plan.kept_dead {
                tracing::warn!(target: "agent.server.autopilot", reason = %why, "not removing dead servers");
            }
            state.kept_dead = plan.kept_dead.clone();
        }
        if plan.is_empty() {
            return Ok(());
        }
        self.apply_plan(&status.membership, servers, plan).await
    }

    /// Makes the planned changes, each committed before the next.
    async fn apply_plan(&self, m: &Membership, servers: &[ServerMember], plan: Plan) -> Result<(), String> {
        let name = |id: u64| {
            m.nodes.get(&id).map(|n| n.name.clone()).unwrap_or_else(|| {
                servers.iter().find(|s| s.raft_id() == Some(id)).map(|s| s.name.clone()).unwrap_or_default()
            })
        };
        for (id, node) in plan.add {
            tracing::info!(target: "agent.server.autopilot", server = %node.name, address = %node.addr, "adding server as non-voter");
            self.consensus.add_nonvoter(id, node).await.map_err(|e| e.to_string())?;
        }
        for (id, why) in &plan.remove {
            let server = name(*id);
            match why {
                Removal::Left => {
                    tracing::info!(target: "agent.server.autopilot", server = %server, "removing server that left")
                }
                Removal::Dead => {
                    tracing::info!(target: "agent.server.autopilot", server = %server, "removing dead server")
                }
                Removal::Stale => {
                    tracing::info!(target: "agent.server.autopilot", server = %server, address = %m.nodes.get(id).map(|n| n.addr.as_str()).unwrap_or_default(), "removing stale server entry (its address now belongs to another server ID)")
                }
            }
        }
        for id in &plan.promote {
            tracing::info!(target: "agent.server.autopilot", server = %name(*id), "promoting server to voter");
        }
        let voters: BTreeSet<u64> = m
            .voters
            .iter()
            .filter(|id| !plan.remove.contains_key(id))
            .chain(plan.promote.iter())
            .copied()
            .collect();
        if voters != m.voters {
            self.consensus.set_voters(voters).await.map_err(|e| e.to_string())?;
        }
        let learners: BTreeSet<u64> =
            plan.remove.keys().filter(|id| !m.voters.contains(id)).copied().collect();
        if !learners.is_empty() {
            self.consensus.remove_nonvoters(learners).await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(n: u8) -> String {
        format!("{n:02x}000000-0000-4000-8000-000000000000")
    }

    fn id(n: u8) -> u64 {
        member(n).raft_id().unwrap()
    }

    fn member(n: u8) -> ServerMember {
        ServerMember {
            name: format!("s{n}"),
            id: uuid(n),
            rpc_addr: format!("127.0.0.{n}:8300").parse().unwrap(),
            alive: true,
            expect: None,
            left: false,
            leaving: false,
            version: "1.20.0".into(),
        }
    }

    fn config(voters: &[u8], learners: &[u8]) -> Membership {
        let nodes = voters.iter().chain(learners).map(|n| (id(*n), member(*n).raft_node())).collect();
        Membership { index: Some(10), nodes, voters: voters.iter().map(|n| id(*n)).collect() }
    }

    fn settings() -> AutopilotSettings {
        AutopilotSettings {
            cleanup_dead_servers: true,
            last_contact_threshold: Duration::from_millis(200),
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time: Duration::from_secs(10),
        }
    }

    fn view<'a>(m: &'a Membership, servers: &'a [ServerMember]) -> View<'a> {
        let others = m.nodes.keys().filter(|i| **i != id(1));
        View {
            me: id(1),
            membership: m,
            servers,
            last_log: 100,
            matched: others.clone().map(|i| (*i, 100)).collect(),
            contact: others.map(|i| (*i, Duration::from_millis(10))).collect(),
        }
    }

    #[test]
    fn a_leaving_server_is_not_added_back_and_a_left_one_is_removed() {
        let m = config(&[1, 3], &[]);
        let mut s2 = member(2);
        s2.leaving = true;
        let servers = [member(1), s2.clone(), member(3)];
        let p = plan(&view(&m, &servers), &settings(), &mut AutopilotState::default(), Instant::now());
        assert!(p.is_empty(), "{p:?}");

        let m = config(&[1, 2, 3], &[]);
        s2.leaving = false;
        s2.alive = false;
        s2.left = true;
        let servers = [member(1), s2, member(3)];
        let p = plan(&view(&m, &servers), &settings(), &mut AutopilotState::default(), Instant::now());
        assert_eq!(p.remove, [(id(2), Removal::Left)].into_iter().collect());
        assert!(p.add.is_empty() && p.promote.is_empty());
    }

    #[test]
    fn a_new_server_is_added_then_promoted_after_stabilization() {
        let servers = [member(1), member(2), member(3), member(4)];
        let m = config(&[1, 2, 3], &[]);
        let t0 = Instant::now();
        let mut st = AutopilotState::default();
        let p = plan(&view(&m, &servers), &settings(), &mut st, t0);
        assert_eq!(p.add, vec![(id(4), member(4).raft_node())]);

        let m = config(&[1, 2, 3], &[4]);
        let p = plan(&view(&m, &servers), &settings(), &mut st, t0);
        assert!(p.is_empty(), "not before server_stabilization_time: {p:?}");
        let p = plan(&view(&m, &servers), &settings(), &mut st, t0 + Duration::from_secs(10));
        assert_eq!(p.promote, [id(4)].into_iter().collect());
        assert!(p.add.is_empty(), "{p:?}");
    }

    #[test]
    fn an_unhealthy_non_voter_restarts_its_stabilization_clock() {
        let servers = [member(1), member(2), member(3), member(4)];
        let m = config(&[1, 2, 3], &[4]);
        let t0 = Instant::now();
        let mut st = AutopilotState::default();
        plan(&view(&m, &servers), &settings(), &mut st, t0);
        let mut behind = view(&m, &servers);
        behind.last_log = 100 + 251;
        let p = plan(&behind, &settings(), &mut st, t0 + Duration::from_secs(5));
        assert!(p.promote.is_empty());
        let mut silent = view(&m, &servers);
        silent.contact.insert(id(4), Duration::from_secs(1));
        assert!(plan(&silent, &settings(), &mut st, t0 + Duration::from_secs(6)).promote.is_empty());
        let p = plan(&view(&m, &servers), &settings(), &mut st, t0 + Duration::from_secs(11));
        assert!(p.promote.is_empty(), "the clock restarted at 11 s: {p:?}");
        let p = plan(&view(&m, &servers), &settings(), &mut st, t0 + Duration::from_secs(21));
        assert_eq!(p.promote, [id(4)].into_iter().collect());
    }

    #[test]
    fn dead_voters_go_only_as_a_minority_keeping_quorum_and_min_quorum() {
        let failed = |ns: &[u8]| -> Vec<ServerMember> {
            (1..=5)
                .map(|n| {
                    let mut m = member(n);
                    m.alive = !ns.contains(&n);
                    m
                })
                .collect()
        };
        let m = config(&[1, 2, 3, 4, 5], &[]);
        let mut st = AutopilotState::default();
        let servers = failed(&[4, 5]);
        let p = plan(&view(&m, &servers), &settings(), &mut st, Instant::now());
        assert_eq!(p.remove, [(id(4), Removal::Dead), (id(5), Removal::Dead)].into_iter().collect());

        let servers = failed(&[3, 4, 5]);
        let p = plan(&view(&m, &servers), &settings(), &mut st, Instant::now());
        assert!(p.remove.is_empty() && p.kept_dead.is_some(), "{p:?}");

        let servers = failed(&[5]);
        let mut s = settings();
        s.min_quorum = 5;
        let p = plan(&view(&m, &servers), &s, &mut st, Instant::now());
        assert!(p.remove.is_empty(), "{p:?}");
        assert!(p.kept_dead.as_deref().is_some_and(|w| w.contains("min_quorum")), "{p:?}");

        s.cleanup_dead_servers = false;
        s.min_quorum = 0;
        assert!(plan(&view(&m, &servers), &s, &mut st, Instant::now()).is_empty());
    }

    #[test]
    fn a_reaped_server_is_removed_and_one_gossip_never_knew_is_kept() {
        let m = config(&[1, 2, 3], &[]);
        let servers = [member(1), member(2)];
        let mut st = AutopilotState::default();
        assert!(plan(&view(&m, &servers), &settings(), &mut st, Instant::now()).is_empty());
        st.note_reaped(&member(3));
        let p = plan(&view(&m, &servers), &settings(), &mut st, Instant::now());
        assert_eq!(p.remove, [(id(3), Removal::Left)].into_iter().collect());
        let m = config(&[1, 2], &[]);
        plan(&view(&m, &servers), &settings(), &mut st, Instant::now());
        assert!(st.reaped.is_empty());
    }

    #[test]
    fn a_stale_entry_at_a_live_servers_address_is_removed() {
        let m = config(&[1, 2, 3], &[]);
        let mut wiped = member(9);
        wiped.rpc_addr = member(3).rpc_addr;
        let servers = [member(1), member(2), wiped.clone()];
        let p = plan(&view(&m, &servers), &settings(), &mut AutopilotState::default(), Instant::now());
        assert_eq!(p.remove, [(id(3), Removal::Stale)].into_iter().collect());
        assert_eq!(p.add, vec![(id(9), wiped.raft_node())]);
    }
}
