//! The agent's side of user events: firing one (`Agent::fire_user_event`:
//! the event module validates and encodes, this broadcasts on the LAN pool
//! or asks a server of another datacenter to), and the receive loop (every
//! serf user event of the LAN pool is decoded, checked against this agent's
//! node name and local services, then stored in the ring, or, for `_rexec`,
//! handed to the remote-exec runner when `disable_remote_exec` is false).
//!
//! Owns acceptance and broadcast. Must not run commands itself (`exec`
//! does) nor touch the gossip layer beyond its subscription and broadcast.

use super::Agent;
use crate::event::filter::{Filters, ServiceView};
use crate::event::fire::{self, EventError, FireRequest};
use crate::event::types::UserEvent;
use crate::event::{wire, EVENT_VERSION, REMOTE_EXEC_NAME};
use crate::gossip::Gossip;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

impl Agent {
    /// Validates and broadcasts a user event to every agent of the
    /// datacenter (this one included); returns the event as fired
    /// (`LTime` 0, as Consul answers).
    /// `token`: the caller's, for a server of another datacenter to check.
    pub async fn fire_user_event(
        &self,
        dc: Option<&str>,
        token: Option<String>,
        req: FireRequest,
    ) -> Result<UserEvent, EventError> {
        if req.name.is_empty() {
            return Err(EventError::BadRequest("User event missing name".into()));
        }
        self.check_dc(dc)?;
        let fire::Prepared { event, serf_name, body } = fire::prepare(req)?;
        if super::dc::target_dc().is_some() {
            // `?dc=` another datacenter: a server there broadcasts it.
            let args = crate::rpc::method::EventFire { serf_name, body };
            self.call(crate::rpc::RequestContext { token, ..Default::default() }, args).await?;
        } else {
            let pools = self.gossip().ok_or_else(|| EventError::Internal("gossip is not running".into()))?;
            pools
                .lan
                .user_event(&serf_name, &body, false)
                .await
                .map_err(|e| EventError::Internal(format!("failed to broadcast user event: {e}")))?;
        }
        crate::metrics::incr("consul.agent.user_event.fired", 1);
        tracing::debug!(target: "agent", event_name = %event.name, event_id = %event.id, "fired user event");
        Ok(event)
    }
}

/// Subscribes to the LAN pool's user events now (so none fired after
/// this call is missed) and spawns the loop that dispatches them.
pub fn start(agent: Agent, lan: &Gossip, tasks: &TaskTracker, shutdown: CancellationToken) {
    let mut rx = lan.subscribe_user_events();
    let spawner = tasks.clone();
    tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = rx.recv() => match r {
                    Ok(ue) => dispatch(&agent, &spawner, &ue.name, &ue.payload, ue.ltime),
                    Err(RecvError::Lagged(n)) => {
                        crate::metrics::incr("consul.agent.user_event.dropped", n);
                        tracing::warn!(target: "agent", missed = n, "user events arrived faster than they were processed; some were dropped");
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    });
}

/// Handles one serf user event.
pub fn dispatch(agent: &Agent, tasks: &TaskTracker, serf_name: &str, payload: &[u8], ltime: u64) {
    let ev = match wire::decode(serf_name, payload, ltime) {
        Ok(Some(ev)) => ev,
        Ok(None) => return,
        Err(e) => {
            crate::metrics::incr("consul.agent.user_event.decode_errors", 1);
            tracing::error!(target: "agent", serf_event = %serf_name, error = %e, "Failed to decode event");
            return;
        }
    };
    if !should_process(agent, &ev) {
        crate::metrics::incr("consul.agent.user_event.filtered", 1);
        return;
    }
    if ev.name == REMOTE_EXEC_NAME {
        if agent.config().disable_remote_exec {
            tracing::info!(target: "agent", event_name = %ev.name, event_id = %ev.id, "ignoring remote exec event, disabled.");
        } else {
            tasks.spawn(super::exec::run(agent.clone(), ev));
        }
        return;
    }
    tracing::debug!(target: "agent", event_name = %ev.name, event_id = %ev.id, "new event");
    crate::metrics::incr("consul.agent.user_event.received", 1);
    agent.events().push(ev);
}

/// Whether the event's filters select this agent.
fn should_process(agent: &Agent, ev: &UserEvent) -> bool {
    if ev.version > EVENT_VERSION {
        tracing::warn!(target: "agent", version = ev.version, event = %ev.name, "Event version may have unsupported features");
    }
    let filters = match Filters::compile(&ev.node_filter, &ev.service_filter, &ev.tag_filter) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(target: "agent", event = %ev.name, error = %e, "Failed to parse the filters of an event");
            return false;
        }
    };
    let services = agent.local().services();
    let views: Vec<ServiceView<'_>> = services
        .iter()
        .map(|s| ServiceView { id: &s.def.id, name: &s.def.name, tags: &s.def.tags })
        .collect();
    filters.matches(&agent.node_name(), &views)
}
