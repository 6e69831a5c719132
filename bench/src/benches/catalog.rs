//! Catalog at scale: register services × 3 instances across synthetic nodes
//! through `/v1/catalog/register` (each with a passing service check), then
//! measure `/v1/catalog/services` and `/v1/health/service/<name>?passing`
//! latency and the server's RSS.
//!
//! Owns: the catalog load and its table. consul-rs only: etcd has no
//! catalog API.

use crate::consul::{start_agent, Role};
use crate::ctx::Ctx;
use crate::http::{oneshot, truncate, HttpConn};
use crate::load::{self, Worker};
use crate::procs::wait_until;
use crate::results::{num, Section, Table};
use hyper::Method;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn register_body(svc: usize, inst: usize, nodes: usize) -> String {
    let node = (svc * 3 + inst) % nodes;
    let addr = Ipv4Addr::new(127, 82, (node / 250) as u8, 1 + (node % 250) as u8);
    format!(
        r#"{{"Node":"node-{node}","Address":"{addr}","Service":{{"ID":"svc-{svc}-{inst}","Service":"svc-{svc}","Port":{port},"Tags":["v1","bench"]}},"Check":{{"CheckID":"svc-{svc}-{inst}-alive","Name":"alive","Status":"passing","ServiceID":"svc-{svc}-{inst}"}}}}"#,
        port = 20000 + inst
    )
}

struct ReadWorker {
    conn: HttpConn,
    services: usize,
    health: bool,
    rng: SmallRng,
    bytes: usize,
}

impl Worker for ReadWorker {
    async fn step(&mut self, _seq: u64) -> Result<(), String> {
        let path = if self.health {
            format!("/v1/health/service/svc-{}?passing", self.rng.random_range(0..self.services))
        } else {
            "/v1/catalog/services".to_string()
        };
        let r = self.conn.get(&path).await?;
        if r.status != 200 {
            return Err(format!("GET {path}: {} {}", r.status, truncate(&r.text(), 200)));
        }
        if self.health && r.json().ok().and_then(|v| v.as_array().map(|a| a.len())) != Some(3) {
            return Err(format!(
                "GET {path}: expected 3 passing instances, got {}",
                truncate(&r.text(), 200)
            ));
        }
        self.bytes = r.body.len();
        Ok(())
    }
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let services = ctx.pick(10_000usize, 500);
    let nodes = ctx.pick(1_000usize, 50);
    let writers = 64usize;
    sec.about.push(format!(
        "One durable consul-rs server. {services} services × 3 instances = {} registrations on {nodes} synthetic \
         nodes, each `PUT /v1/catalog/register` carrying one node, one service instance and one passing service \
         check, sent by {writers} concurrent clients. Then `GET /v1/catalog/services` and \
         `GET /v1/health/service/svc-<random>?passing` (3 instances each) at 1 and 16 clients.",
        services * 3
    ));
    let dir = ctx.scratch("catalog")?;
    let ip = Ipv4Addr::new(127, 82, 200, 1);
    let node = start_agent(ctx, &dir, "c1", ip, Role::Single, &[])?;
    sec.commands.push(node.proc.cmdline(&ctx.work));
    let http: SocketAddr = node.http();
    let ready = wait_until(Duration::from_secs(30), Duration::from_millis(100), || async move {
        oneshot(http, Method::PUT, "/v1/kv/catalog-ready", Some("1".into()), Duration::from_secs(2))
            .await
            .map(|r| r.status == 200)
            .unwrap_or(false)
    })
    .await;
    if ready.is_none() {
        return Err(format!("catalog agent never became ready\n{}", node.proc.log_tail(20)));
    }
    let rss0 = node.proc.rss_kb().unwrap_or(0) as f64 / 1024.0;
    let total = services * 3;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = HttpConn::new(http);
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t0 = Instant::now();
                let r = c
                    .request(
                        Method::PUT,
                        "/v1/catalog/register",
                        Some(register_body(i / 3, i % 3, nodes).into()),
                    )
                    .await?;
                if r.status != 200 {
                    return Err(format!("catalog register #{i}: {} {}", r.status, truncate(&r.text(), 200)));
                }
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<Vec<f64>, String>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.map_err(|e| format!("register task: {e}"))??);
    }
    let reg_secs = started.elapsed().as_secs_f64();
    let rss1 = node.proc.rss_kb().unwrap_or(0) as f64 / 1024.0;
    let mut reg = Table::new(
        "Registration",
        &[
            "registrations",
            "clients",
            "total time s",
            "registrations/s",
            "p50 ms",
            "p99 ms",
            "server RSS before → after MB",
        ],
    );
    reg.row(vec![
        num(total as f64),
        writers.to_string(),
        num(reg_secs),
        num(total as f64 / reg_secs),
        num(crate::results::quantile(&lat, 0.5)),
        num(crate::results::quantile(&lat, 0.99)),
        format!("{} → {}", num(rss0), num(rss1)),
    ]);
    sec.metric("catalog.register_secs", reg_secs);
    sec.metric("catalog.rss_mb", rss1);
    sec.tables.push(reg);
    let mut t = Table::new(
        "Reads with the catalog loaded",
        &["endpoint", "clients", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "response bytes", "errors"],
    );
    for health in [false, true] {
        for clients in [1usize, 16] {
            let (r, workers) = load::run(clients, ctx.secs(1.0, 0.2), ctx.secs(8.0, 0.5), |i| ReadWorker {
                conn: HttpConn::new(http),
                services,
                health,
                rng: SmallRng::seed_from_u64(i as u64),
                bytes: 0,
            })
            .await;
            let bytes = workers.iter().map(|w| w.bytes).max().unwrap_or(0);
            let name = if health { "/v1/health/service/<name>?passing" } else { "/v1/catalog/services" };
            let key = if health { "health_service" } else { "catalog_services" };
            sec.metric(format!("catalog.{key}.c{clients}.p50_ms"), r.ms(0.5));
            if let Some(e) = &r.first_error {
                sec.notes.push(format!(
                    "{name} at {clients} clients: {} errors; first: `{}`",
                    r.errors,
                    truncate(e, 300)
                ));
            }
            t.row(vec![
                name.into(),
                clients.to_string(),
                num(r.throughput()),
                num(r.ms(0.5)),
                num(r.ms(0.99)),
                num(r.ms(0.999)),
                num(bytes as f64),
                r.errors.to_string(),
            ]);
        }
    }
    sec.tables.push(t);
    let rss2 = node.proc.rss_kb().unwrap_or(0) as f64 / 1024.0;
    sec.notes.push(format!("server RSS after the reads: {rss2:.1} MB"));
    Ok(())
}
