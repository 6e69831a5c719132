//! Gossip at scale: consul-rs's real SWIM core (`consul::gossip::swim`)
//! driven by its deterministic simulator (`consul::gossip::sim`, virtual
//! time, seeded, 0.5–1 ms one-way latency) with LAN settings. Measures time
//! and gossip rounds until all members know of a join and of a crash, bytes
//! and packets per member per second, and false failures under 5 % packet
//! loss, next to SWIM theory and memberlist's formulas.
//!
//! Every simulated member holds the whole member table, so memory grows as
//! N²; an entry is kept at 32 bytes plus a 4-byte index slot, with names,
//! addresses and metadata shared between members (10,000 members: about
//! 4 GB). Sizes that would not fit in the memory available are skipped with
//! the estimate that says why.
//!
//! Owns: the simulated scenarios and their table.

use crate::results::{num, Section, Table};
use consul::config::runtime::GossipSettings;
use consul::gossip::sim::{sim_addr, Sim, SwimMachine};
use consul::gossip::swim::state::{Meta, NodeState, NodeStatus};
use consul::gossip::swim::suspicion::suspicion_timeout;
use consul::gossip::swim::{push_pull_scale, LocalNode, Swim, SwimConfig, SwimEvent};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn name(i: usize) -> String {
    format!("m{i}")
}

fn self_rss_kb() -> u64 {
    crate::procs::rss_kb(std::process::id()).unwrap_or(0)
}

fn mem_available_kb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn seed_for(seed: u64, i: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i as u64)
}

/// `n` members that already know each other (a converged table).
fn cluster(n: usize, cfg: &SwimConfig, seed: u64) -> Sim<SwimMachine> {
    let mut sim = Sim::new(seed);
    let meta: Meta = Vec::new().into();
    let table: Vec<NodeState> = (0..n)
        .map(|i| {
            NodeState::new(name(i).into(), sim_addr(i), meta.clone(), 1, NodeStatus::Alive, Duration::ZERO)
        })
        .collect();
    for i in 0..n {
        let local = LocalNode { name: name(i), addr: sim_addr(i), meta: vec![], incarnation: 1 };
        let cfg = cfg.clone();
        let t = &table;
        sim.add(|_addr, now| SwimMachine { swim: Swim::with_members(cfg, local, t, seed_for(seed, i), now) });
    }
    sim.run_for(Duration::from_secs(3));
    sim
}

struct Figures {
    n: usize,
    join_s: f64,
    detect_s: f64,
    udp_bytes: f64,
    packets: f64,
    tcp_bytes: f64,
    rss_growth_kb: f64,
    wall_s: f64,
}

fn measure(n: usize, seed: u64) -> Result<Figures, String> {
    let wall = Instant::now();
    let rss0 = self_rss_kb();
    let cfg = SwimConfig::from_settings(&GossipSettings::lan());
    let mut sim = cluster(n, &cfg, seed);
    let rss_growth_kb = self_rss_kb().saturating_sub(rss0) as f64;
    if (0..n).any(|i| sim.machine(i).swim.num_alive() != n) {
        return Err(format!("n={n}: the converged cluster lost members during start-up"));
    }
    // Steady state: skip one push-pull interval (every member starts one
    // early on), then count over one scaled push-pull interval.
    sim.run_for(cfg.push_pull_interval);
    let window = push_pull_scale(cfg.push_pull_interval, n);
    let (pb, sb, pk) = (sim.stats.packet_bytes, sim.stats.stream_bytes, sim.stats.packets_sent);
    sim.run_for(window);
    let member_secs = window.as_secs_f64() * n as f64;
    let udp_bytes = (sim.stats.packet_bytes - pb) as f64 / member_secs;
    let tcp_bytes = (sim.stats.stream_bytes - sb) as f64 / member_secs;
    let packets = (sim.stats.packets_sent - pk) as f64 / member_secs;

    // A new member joins through member 0.
    let cfg2 = cfg.clone();
    let j = sim.nodes.len();
    sim.add(|addr, now| SwimMachine {
        swim: Swim::new(
            cfg2,
            LocalNode { name: name(j), addr, meta: vec![], incarnation: 1 },
            seed_for(seed, j),
            now,
        ),
    });
    sim.join(j, 0);
    let newcomer = name(j);
    let join = sim
        .run_until_cond(Duration::from_millis(10), Duration::from_secs(120), |s| {
            (0..s.nodes.len())
                .all(|i| s.machine(i).swim.node(&newcomer).is_some_and(|x| x.status == NodeStatus::Alive))
        })
        .ok_or_else(|| format!("n={n}: the join never reached every member"))?;

    // A member crashes.
    sim.run_for(Duration::from_secs(5));
    let victim = n / 2;
    sim.crash(victim);
    let vname = name(victim);
    let detect = sim
        .run_until_cond(Duration::from_millis(50), Duration::from_secs(600), |s| {
            (0..s.nodes.len())
                .filter(|i| *i != victim)
                .all(|i| s.machine(i).swim.node(&vname).is_none_or(|x| x.status.is_dead_or_left()))
        })
        .ok_or_else(|| format!("n={n}: the crash was never detected everywhere"))?;
    Ok(Figures {
        n,
        join_s: join.as_secs_f64(),
        detect_s: detect.as_secs_f64(),
        udp_bytes,
        packets,
        tcp_bytes,
        rss_growth_kb,
        wall_s: wall.elapsed().as_secs_f64(),
    })
}

struct LossFigures {
    failed: u64,
    suspected: u64,
    refutations: u64,
    lost: u64,
    sent: u64,
}

fn loss_run(n: usize, secs: u64, seed: u64) -> LossFigures {
    let cfg = SwimConfig::from_settings(&GossipSettings::lan());
    let mut sim = cluster(n, &cfg, seed);
    sim.loss = 0.05;
    let seen = Rc::new(RefCell::new((0u64, 0u64)));
    let s2 = seen.clone();
    sim.observer = Some(Box::new(move |_i, _t, ev: &SwimEvent| {
        let mut s = s2.borrow_mut();
        match ev {
            SwimEvent::Failed(_) => s.0 += 1,
            SwimEvent::Suspected { .. } => s.1 += 1,
            _ => {}
        }
    }));
    let (lost0, sent0) = (sim.stats.packets_lost, sim.stats.packets_sent);
    sim.run_for(Duration::from_secs(secs));
    let refutations = (0..n).map(|i| sim.machine(i).swim.counters().refutations).sum();
    let (failed, suspected) = *seen.borrow();
    LossFigures {
        failed,
        suspected,
        refutations,
        lost: sim.stats.packets_lost - lost0,
        sent: sim.stats.packets_sent - sent0,
    }
}

/// Rounds of push gossip (fanout f) to reach all N: log_{f+1}(N) + ln(N)/f
/// (the spreading phase plus the coupon-collector tail).
fn model_rounds(n: usize, fanout: usize) -> f64 {
    let n = n as f64;
    let f = fanout as f64;
    n.ln() / (f + 1.0).ln() + n.ln() / f
}

pub async fn run(ctx: &crate::ctx::Ctx, sec: &mut Section) -> Result<(), String> {
    let sizes: Vec<usize> = ctx.pick(vec![1_000, 10_000], vec![100, 300]);
    let (loss_n, loss_secs) = ctx.pick((1_000usize, 120u64), (100, 30));
    let cfg = SwimConfig::from_settings(&GossipSettings::lan());
    sec.about.push(format!(
        "The real SWIM core of consul-rs (probe, suspicion with Lifeguard, piggy-backed dissemination, push-pull) \
         driven by `consul::gossip::sim`: an in-memory network with a virtual clock, 0.5–1 ms one-way latency, \
         seeded, so results do not depend on the machine (only the wall time does). LAN settings: probe every {} ms \
         (timeout {} ms), gossip to {} members every {} ms, suspicion multiplier {}, retransmit multiplier {}. Members \
         start with a converged table; after one push-pull interval traffic is counted over one scaled push-pull \
         interval; then a new member joins through member 0 and later member N/2 crashes. Bytes are plaintext \
         (encryption adds 42 bytes per packet).",
        cfg.probe_interval.as_millis(),
        cfg.probe_timeout.as_millis(),
        cfg.gossip_nodes,
        cfg.gossip_interval.as_millis(),
        cfg.suspicion_mult,
        cfg.retransmit_mult,
    ));
    sec.about.push(
        "Theory columns: push-gossip dissemination needs about log_{f+1}(N) + ln(N)/f rounds with fanout f \
         (spreading plus the last few members); memberlist's suspicion timeout is \
         SuspicionMult × max(1, log10 N) × ProbeInterval at minimum and 6× that before confirmations shrink it, so a \
         crash is declared by all after at least that minimum and within about one probe round plus the maximum; \
         each message is retransmitted RetransmitMult × ceil(log10(N+1)) times; push-pull runs every \
         30 s × (ceil(log2 N − log2 32) + 1) beyond 32 members (formulas as in docs/gossip.md)."
            .into(),
    );
    let mut t = Table::new(
        "SWIM simulation (virtual time)",
        &[
            "N",
            "join known by all s",
            "rounds (÷ gossip interval)",
            "model rounds",
            "crash failed by all s",
            "suspicion min … max s",
            "retransmits",
            "UDP B/member/s",
            "packets/member/s",
            "push-pull B/member/s",
            "push-pull every s",
            "sim memory MB",
            "bytes per table entry",
            "wall s",
        ],
    );
    let mut per_entry_bytes: Option<f64> = None;
    for n in sizes {
        let avail = mem_available_kb() as f64 * 1024.0;
        if let Some(per) = per_entry_bytes {
            let need = per * (n as f64) * (n as f64);
            if need > 0.7 * avail {
                sec.notes.push(format!(
                    "N={n} not simulated: every simulated member holds the whole table, measured at {:.0} bytes per entry \
                     at the previous size, so N={n} needs about {:.1} GB; only {:.1} GB are available (MemAvailable) on \
                     this shared machine",
                    per,
                    need / 1e9,
                    avail / 1e9
                ));
                continue;
            }
        }
        let f = tokio::task::spawn_blocking(move || measure(n, 42))
            .await
            .map_err(|e| format!("simulation task: {e}"))??;
        if f.rss_growth_kb > 0.0 {
            per_entry_bytes = Some(f.rss_growth_kb * 1024.0 / (f.n as f64 * f.n as f64));
        }
        let rounds = f.join_s / cfg.gossip_interval.as_secs_f64();
        let model = model_rounds(f.n + 1, cfg.gossip_nodes);
        let min = suspicion_timeout(cfg.suspicion_mult, f.n + 1, cfg.probe_interval);
        let max = min * cfg.suspicion_max_timeout_mult;
        let retrans = cfg.retransmit_mult * ((f.n as f64 + 1.0).log10().ceil() as u32).max(1);
        let pp = push_pull_scale(cfg.push_pull_interval, f.n);
        sec.metric(format!("sim.n{}.join_s", f.n), f.join_s);
        sec.metric(format!("sim.n{}.join_rounds", f.n), rounds);
        sec.metric(format!("sim.n{}.model_rounds", f.n), model);
        sec.metric(format!("sim.n{}.detect_s", f.n), f.detect_s);
        sec.metric(format!("sim.n{}.udp_bytes", f.n), f.udp_bytes);
        sec.metric(format!("sim.n{}.rss_growth_mb", f.n), f.rss_growth_kb / 1024.0);
        eprintln!(
            "  gossip-sim n={}: join {:.2} s ({rounds:.1} rounds), crash {:.2} s, wall {:.0} s",
            f.n, f.join_s, f.detect_s, f.wall_s
        );
        t.row(vec![
            num(f.n as f64),
            num(f.join_s),
            num(rounds),
            num(model),
            num(f.detect_s),
            format!("{} … {}", num(min.as_secs_f64()), num(max.as_secs_f64())),
            retrans.to_string(),
            num(f.udp_bytes),
            num(f.packets),
            num(f.tcp_bytes),
            num(pp.as_secs_f64()),
            num(f.rss_growth_kb / 1024.0),
            num(f.rss_growth_kb * 1024.0 / (f.n as f64 * f.n as f64)),
            num(f.wall_s),
        ]);
        if f.detect_s < min.as_secs_f64() || f.detect_s > (cfg.probe_interval * 2 + max).as_secs_f64() {
            sec.notes.push(format!(
                "N={}: crash detection {:.2} s is outside the formula's range",
                f.n, f.detect_s
            ));
        }
    }
    sec.tables.push(t);
    let l = tokio::task::spawn_blocking(move || loss_run(loss_n, loss_secs, 7))
        .await
        .map_err(|e| format!("simulation task: {e}"))?;
    let mut lt = Table::new(
        "False failures under 5 % packet loss (no member crashed)",
        &["N", "virtual s", "packets sent", "packets lost", "suspicions", "refutations", "false failures"],
    );
    lt.row(vec![
        num(loss_n as f64),
        loss_secs.to_string(),
        num(l.sent as f64),
        num(l.lost as f64),
        num(l.suspected as f64),
        num(l.refutations as f64),
        l.failed.to_string(),
    ]);
    sec.metric("sim.loss.false_failures", l.failed as f64);
    sec.tables.push(lt);
    if let Some(per) = per_entry_bytes {
        sec.notes
            .push(format!("simulator memory: {per:.0} bytes per member-table entry (N² entries in all)"));
    }
    Ok(())
}
