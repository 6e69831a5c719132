//! Gossip with real processes: N consul-rs agents (one server, N−1 client
//! agents) and N serf agents on loopback, both encrypted with LAN timings,
//! in the same run. Measures how long until every member sees a new
//! member, a kill -9'd member as failed, and a gracefully leaving member
//! as left, plus RSS per agent.
//!
//! Observers poll each agent every 50 ms over one kept-open connection:
//! consul-rs `/v1/agent/members`, serf's agent RPC `members`.
//!
//! Owns: the gossip procedure for both systems and its table.

use crate::consul::{self, start_agent, Role};
use crate::ctx::Ctx;
use crate::http::{oneshot, HttpConn};
use crate::procs::Proc;
use crate::results::{median, num, ratio, Section, Table};
use crate::serf::{self as serfsys, SerfRpc};
use base64::Engine;
use hyper::Method;
use rand::RngCore;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Alive,
    Leaving,
    Left,
    Failed,
    Other,
}

enum Obs {
    Consul(HttpConn),
    Serf(Option<SerfRpc>, SocketAddr),
}

impl Obs {
    async fn statuses(&mut self) -> Result<HashMap<String, St>, String> {
        match self {
            Obs::Consul(c) => Ok(consul::members(c)
                .await?
                .into_iter()
                .map(|(n, s)| {
                    (
                        n,
                        match s {
                            1 => St::Alive,
                            2 => St::Leaving,
                            3 => St::Left,
                            4 => St::Failed,
                            _ => St::Other,
                        },
                    )
                })
                .collect()),
            Obs::Serf(conn, addr) => {
                if conn.is_none() {
                    *conn = Some(SerfRpc::connect(*addr).await?);
                }
                let Some(c) = conn.as_mut() else { return Err("serf rpc: not connected".into()) };
                match c.members().await {
                    Ok(m) => Ok(m
                        .into_iter()
                        .map(|(n, s)| {
                            (
                                n,
                                match s.as_str() {
                                    "alive" => St::Alive,
                                    "leaving" => St::Leaving,
                                    "left" => St::Left,
                                    "failed" => St::Failed,
                                    _ => St::Other,
                                },
                            )
                        })
                        .collect()),
                    Err(e) => {
                        *conn = None;
                        Err(e)
                    }
                }
            }
        }
    }
}

/// One member process of either system.
enum Member {
    Consul(consul::ConsulNode),
    Serf(serfsys::SerfNode),
}

impl Member {
    fn proc(&mut self) -> &mut Proc {
        match self {
            Member::Consul(n) => &mut n.proc,
            Member::Serf(n) => &mut n.proc,
        }
    }

    fn name(&self) -> String {
        match self {
            Member::Consul(n) => n.name.clone(),
            Member::Serf(n) => n.name.clone(),
        }
    }

    fn observer(&self) -> Obs {
        match self {
            Member::Consul(n) => Obs::Consul(HttpConn::new(n.http())),
            Member::Serf(n) => Obs::Serf(None, n.rpc()),
        }
    }
}

struct Run {
    serf: bool,
    n: usize,
    key: String,
    dir: std::path::PathBuf,
}

impl Run {
    fn ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(127, if self.serf { 84 } else { 83 }, self.n as u8, i as u8)
    }

    fn start(&self, ctx: &Ctx, i: usize) -> Result<Member, String> {
        let name = format!("{}{i}", if self.serf { "serf" } else { "agent" });
        if self.serf {
            let join = if i == 1 { None } else { Some(self.ip(1)) };
            Ok(Member::Serf(serfsys::start(ctx, &self.dir, &name, self.ip(i), &self.key, join)?))
        } else {
            let role = if i == 1 { Role::Seed } else { Role::Client { join: self.ip(1) } };
            Ok(Member::Consul(start_agent(
                ctx,
                &self.dir,
                &name,
                self.ip(i),
                role,
                &[format!("-encrypt={}", self.key)],
            )?))
        }
    }
}

/// Polls every observer until `pred` holds for its view; returns the
/// time (from `t0`) at which the last observer saw it.
async fn all_see(
    observers: &mut [Obs],
    t0: Instant,
    limit: Duration,
    pred: impl Fn(&HashMap<String, St>) -> bool + Copy,
) -> Option<Duration> {
    let futs = observers.iter_mut().map(|o| async move {
        loop {
            if let Ok(m) = o.statuses().await {
                if pred(&m) {
                    return Some(t0.elapsed());
                }
            }
            if t0.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let times = futures::future::join_all(futs).await;
    let mut worst = Duration::ZERO;
    for t in times {
        worst = worst.max(t?);
    }
    Some(worst)
}

struct Figures {
    form_s: f64,
    join_s: f64,
    fail_s: f64,
    leave_s: f64,
    rss_mb: f64,
    trials: usize,
    /// The slowest join of all trials (a single trial: its join).
    join_worst_s: f64,
}

async fn measure(ctx: &Ctx, sec: &mut Section, serf: bool, n: usize, key: &str) -> Result<Figures, String> {
    let run = Run {
        serf,
        n,
        key: key.into(),
        dir: ctx.scratch(&format!("gossip-{}-{n}", if serf { "serf" } else { "consul" }))?,
    };
    let limit = Duration::from_secs(60);
    let t_form = Instant::now();
    let mut members = Vec::new();
    for i in 1..=n {
        members.push(run.start(ctx, i)?);
        if i == 1 {
            // The seed must be listening before the others try to join it.
            let mut o = members[0].observer();
            let deadline = Instant::now() + Duration::from_secs(30);
            while o.statuses().await.is_err() {
                if Instant::now() > deadline {
                    return Err(format!(
                        "{} seed never answered\n{}",
                        if serf { "serf" } else { "consul-rs" },
                        members[0].proc().log_tail(20)
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    if let Some(m) = members.first_mut() {
        sec.commands.push(m.proc().cmdline(&ctx.work));
    }
    if let Some(m) = members.get_mut(1) {
        sec.commands.push(m.proc().cmdline(&ctx.work));
    }
    let names: Vec<String> = members.iter().map(|m| m.name()).collect();
    let mut obs: Vec<Obs> = members.iter().map(|m| m.observer()).collect();
    let nm = names.clone();
    let formed = all_see(&mut obs, t_form, limit, |m| nm.iter().all(|x| m.get(x) == Some(&St::Alive))).await;
    let Some(formed) = formed else {
        return Err(format!(
            "{} cluster of {n} never formed\n{}",
            if serf { "serf" } else { "consul-rs" },
            members[n - 1].proc().log_tail(20)
        ));
    };
    // Idle RSS: client agents for consul-rs (the seed is a server), every serf agent.
    tokio::time::sleep(ctx.secs(3.0, 1.0)).await;
    let rss: Vec<f64> = members
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| serf || *i > 0)
        .filter_map(|(_, m)| m.proc().rss_kb())
        .map(|kb| kb as f64 / 1024.0)
        .collect();

    // Join: a new member, from process start until every member lists it alive.
    let t_join = Instant::now();
    members.push(run.start(ctx, n + 1)?);
    let newcomer = members[n].name();
    obs.push(members[n].observer());
    let nc = newcomer.clone();
    let join = all_see(&mut obs, t_join, limit, |m| m.get(&nc) == Some(&St::Alive))
        .await
        .ok_or_else(|| format!("join of {newcomer} not seen by all"))?;
    if ctx.gossip_join_only {
        drop(members);
        return Ok(Figures {
            form_s: formed.as_secs_f64(),
            join_s: join.as_secs_f64(),
            fail_s: f64::NAN,
            leave_s: f64::NAN,
            rss_mb: median(&rss),
            trials: 1,
            join_worst_s: join.as_secs_f64(),
        });
    }

    // Failure: kill -9 member 2; every other member must list it failed.
    let victim = members[1].name();
    let t_fail = Instant::now();
    members[1].proc().kill9();
    let mut others: Vec<Obs> =
        members.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, m)| m.observer()).collect();
    let v = victim.clone();
    let fail = all_see(&mut others, t_fail, limit, |m| m.get(&v) == Some(&St::Failed))
        .await
        .ok_or_else(|| format!("failure of {victim} not seen by all"))?;

    // Leave: member 3 leaves gracefully; the rest must list it left.
    let leaver = members[2].name();
    let t_leave = Instant::now();
    match &members[2] {
        Member::Consul(c) => {
            let addr = c.http();
            tokio::spawn(async move {
                oneshot(addr, Method::PUT, "/v1/agent/leave", None, Duration::from_secs(30)).await
            });
        }
        Member::Serf(s) => {
            let addr = s.rpc();
            tokio::spawn(async move {
                if let Ok(mut c) = SerfRpc::connect(addr).await {
                    let _ = c.leave().await;
                }
            });
        }
    }
    let mut rest: Vec<Obs> =
        members.iter().enumerate().filter(|(i, _)| *i != 1 && *i != 2).map(|(_, m)| m.observer()).collect();
    let l = leaver.clone();
    let leave = all_see(&mut rest, t_leave, limit, |m| m.get(&l) == Some(&St::Left))
        .await
        .ok_or_else(|| format!("leave of {leaver} not seen by all"))?;
    drop(members);
    Ok(Figures {
        form_s: formed.as_secs_f64(),
        join_s: join.as_secs_f64(),
        fail_s: fail.as_secs_f64(),
        leave_s: leave.as_secs_f64(),
        rss_mb: median(&rss),
        trials: 1,
        join_worst_s: join.as_secs_f64(),
    })
}

/// The median of each figure over the trials that succeeded (an error
/// when none did), plus the number of trials.
fn median_figures(v: Vec<Result<Figures, String>>) -> Result<Figures, String> {
    let ok: Vec<&Figures> = v.iter().filter_map(|r| r.as_ref().ok()).collect();
    if ok.is_empty() {
        return Err(v.into_iter().find_map(|r| r.err()).unwrap_or_else(|| "no trial".into()));
    }
    let med = |f: fn(&Figures) -> f64| median(&ok.iter().map(|x| f(x)).collect::<Vec<_>>());
    Ok(Figures {
        form_s: med(|f| f.form_s),
        join_s: med(|f| f.join_s),
        fail_s: med(|f| f.fail_s),
        leave_s: med(|f| f.leave_s),
        rss_mb: med(|f| f.rss_mb),
        trials: ok.len(),
        join_worst_s: ok.iter().map(|f| f.join_s).fold(0.0, f64::max),
    })
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    crate::ctx::need(&ctx.tools.serf, "serf")?;
    let sizes: Vec<usize> = ctx.gossip_sizes.clone().unwrap_or_else(|| ctx.pick(vec![5, 10, 25], vec![5]));
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let key = base64::engine::general_purpose::STANDARD.encode(raw);
    sec.about.push(
        "Each system gets N processes on its own 127.x.N.i addresses with default ports, gossip encrypted with the \
         same 32-byte key (consul-rs: XChaCha20-Poly1305; serf: AES-256-GCM), LAN timings (probe 1 s, suspicion \
         multiplier 4). consul-rs: agent 1 is a `-server -bootstrap`, the others are client agents with \
         `-retry-join` to it; serf: `serf agent -profile=lan`, the others `-retry-join` agent 1. Every agent is an \
         observer, polled every 50 ms (consul-rs `/v1/agent/members` over keep-alive HTTP, serf's msgpack RPC \
         `members` over one connection). Times are to the *last* observer: join = from starting a new process until \
         every member lists it alive; failure = from kill -9 of agent 2 until every other member lists it failed; \
         leave = from asking agent 3 to leave (consul-rs `PUT /v1/agent/leave`, serf RPC `leave`) until every \
         remaining member lists it left. RSS is the median over consul-rs client agents / serf agents after the \
         cluster formed and idled. Full mode repeats each N (3 trials for N = 5 and 10, 2 for N = 25, each on a \
         fresh cluster, the systems alternating) and shows the median of each figure."
            .into(),
    );
    if ctx.trials.is_some() || ctx.gossip_join_only {
        sec.about.push(format!(
            "This run: {} trials per N{}; \"worst join\" is the slowest join of all trials.",
            ctx.trials.map(|t| t.to_string()).unwrap_or_else(|| "the default".into()),
            if ctx.gossip_join_only { ", joins only (no kill -9 or leave step)" } else { "" }
        ));
    }
    let mut t = Table::new(
        "Gossip on loopback, real processes",
        &[
            "N",
            "system",
            "trials (medians shown)",
            "formed s",
            "join seen by all s",
            "worst join s",
            "kill -9 → failed everywhere s",
            "leave → left everywhere s",
            "RSS per agent MB",
            "join ratio",
            "failure ratio",
            "leave ratio",
            "RSS ratio",
        ],
    );
    for n in sizes {
        // Several trials (a fresh cluster each, the two systems alternating)
        // and the median of each figure: one trial's failure detection
        // depends on where the victim falls in the probe order.
        let trials = match ctx.trials {
            Some(t) => t.max(1),
            None if ctx.quick => 1,
            None if n >= 25 => 2,
            None => 3,
        };
        let (mut ours_v, mut theirs_v) = (Vec::new(), Vec::new());
        for _ in 0..trials {
            ours_v.push(measure(ctx, sec, false, n, &key).await);
            theirs_v.push(measure(ctx, sec, true, n, &key).await);
        }
        let ours = median_figures(ours_v);
        let theirs = median_figures(theirs_v);
        let (ours, theirs) = match (ours, theirs) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                if let Err(e) = &a {
                    sec.notes.push(format!("consul-rs N={n}: {e}"));
                }
                if let Err(e) = &b {
                    sec.notes.push(format!("serf N={n}: {e}"));
                }
                continue;
            }
        };
        for (sys, f) in [("consul", &ours), ("serf", &theirs)] {
            sec.metric(format!("gossip.n{n}.{sys}.join_s"), f.join_s);
            sec.metric(format!("gossip.n{n}.{sys}.join_worst_s"), f.join_worst_s);
            sec.metric(format!("gossip.n{n}.{sys}.trials"), f.trials as f64);
            sec.metric(format!("gossip.n{n}.{sys}.fail_s"), f.fail_s);
            sec.metric(format!("gossip.n{n}.{sys}.leave_s"), f.leave_s);
            sec.metric(format!("gossip.n{n}.{sys}.rss_mb"), f.rss_mb);
        }
        eprintln!(
            "  gossip N={n}, {} trials: worst join {:.2}/{:.2} s (consul-rs/serf)",
            trials, ours.join_worst_s, theirs.join_worst_s
        );
        eprintln!(
            "  gossip N={n}: join {:.2}/{:.2} s, fail {:.2}/{:.2} s, leave {:.2}/{:.2} s (consul-rs/serf)",
            ours.join_s, theirs.join_s, ours.fail_s, theirs.fail_s, ours.leave_s, theirs.leave_s
        );
        for (name, f) in [("consul-rs", &ours), ("serf", &theirs)] {
            let is_ours = name == "consul-rs";
            t.row(vec![
                n.to_string(),
                name.into(),
                f.trials.to_string(),
                num(f.form_s),
                num(f.join_s),
                num(f.join_worst_s),
                num(f.fail_s),
                num(f.leave_s),
                num(f.rss_mb),
                if is_ours { ratio(ours.join_s, theirs.join_s) } else { String::new() },
                if is_ours { ratio(ours.fail_s, theirs.fail_s) } else { String::new() },
                if is_ours { ratio(ours.leave_s, theirs.leave_s) } else { String::new() },
                if is_ours { ratio(ours.rss_mb, theirs.rss_mb) } else { String::new() },
            ]);
        }
    }
    sec.tables.push(t);
    sec.notes.push("Ratios are consul-rs ÷ serf: below 1× is faster (or smaller) than serf. Polling every 50 ms adds up to 50 ms to every time.".into());
    Ok(())
}
