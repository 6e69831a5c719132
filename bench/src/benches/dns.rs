//! DNS: `<service>.service.consul` A and SRV over UDP with dnsperf against a
//! consul-rs agent holding services of 1, 10 and 100 instances, and the same
//! query mix against NSD serving a static zone with the same answers.
//!
//! Owns: catalog setup for DNS, the NSD zone and config, dnsperf runs and
//! parsing, and a tiny DNS probe that checks both servers answer alike.

use crate::consul::{start_agent, Role};
use crate::ctx::{need, Ctx};
use crate::http::{oneshot, HttpConn};
use crate::procs::{wait_until, Proc};
use crate::results::{num, ratio, ratio_val, Section, Table};
use hyper::Method;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const SIZES: [usize; 3] = [1, 10, 100];
/// What consul-rs answers over UDP without EDNS (dns_config.udp_answer_limit).
const UDP_ANSWER_LIMIT: usize = 3;

fn node_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 81, (i / 250) as u8, 1 + (i % 250) as u8)
}

/// A DNS query for `name`/`qtype` (no EDNS, RD clear), id 0x4242.
fn query_packet(name: &str, qtype: u16) -> Vec<u8> {
    let mut p = vec![0x42, 0x42, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    p
}

/// (rcode, answer count, additional count, reply bytes) of one UDP query.
async fn probe(server: SocketAddr, name: &str, qtype: u16) -> Result<(u8, u16, u16, usize), String> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.map_err(|e| format!("udp bind: {e}"))?;
    sock.send_to(&query_packet(name, qtype), server).await.map_err(|e| format!("send to {server}: {e}"))?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf))
        .await
        .map_err(|_| format!("{server}: no answer to {name}"))?
        .map_err(|e| format!("recv from {server}: {e}"))?;
    if n < 12 {
        return Err(format!("{server}: short reply ({n} bytes)"));
    }
    Ok((buf[3] & 0x0f, u16::from_be_bytes([buf[6], buf[7]]), u16::from_be_bytes([buf[10], buf[11]]), n))
}

struct PerfResult {
    qps: f64,
    avg_ms: f64,
    lost: u64,
    completed: u64,
}

fn parse_dnsperf(text: &str) -> Result<PerfResult, String> {
    let find = |key: &str| -> Option<String> {
        text.lines().find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
    };
    let first_num = |s: &str| s.split_whitespace().next().and_then(|v| v.parse::<f64>().ok());
    let qps = find("Queries per second:")
        .and_then(|v| first_num(&v))
        .ok_or_else(|| format!("no QPS in dnsperf output:\n{text}"))?;
    let avg = find("Average Latency (s):").and_then(|v| first_num(&v)).unwrap_or(f64::NAN);
    let lost = find("Queries lost:").and_then(|v| first_num(&v)).unwrap_or(0.0) as u64;
    let completed = find("Queries completed:").and_then(|v| first_num(&v)).unwrap_or(0.0) as u64;
    Ok(PerfResult { qps, avg_ms: avg * 1000.0, lost, completed })
}

fn dnsperf(
    bin: &Path,
    server: SocketAddr,
    file: &Path,
    secs: f64,
    clients: u32,
    outstanding: u32,
) -> Result<PerfResult, String> {
    let out = Command::new(bin)
        .args(["-s", &server.ip().to_string(), "-p", &server.port().to_string(), "-d"])
        .arg(file)
        .args([
            "-l",
            &format!("{secs}"),
            "-c",
            &clients.to_string(),
            "-q",
            &outstanding.to_string(),
            "-t",
            "2",
        ])
        .output()
        .map_err(|e| format!("failed to run dnsperf: {e}"))?;
    parse_dnsperf(&String::from_utf8_lossy(&out.stdout))
}

/// A zone with, for each service, what consul-rs answers over plain UDP:
/// min(instances, 3) A records, as many SRV records with node targets, and
/// the targets' A records (glue in the additional section).
fn nsd_zone() -> String {
    let mut z = String::from(
        "$ORIGIN consul.\n$TTL 0\n@ IN SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0\n@ IN NS ns.consul.\nns IN A 127.0.0.1\n",
    );
    for &n in &SIZES {
        for i in 0..n.min(UDP_ANSWER_LIMIT) {
            z.push_str(&format!("svc{n}.service IN A {}\n", node_ip(i)));
            z.push_str(&format!("svc{n}.service IN SRV 1 1 {} node-{i}.node.dc1.consul.\n", 8000 + i));
        }
    }
    for i in 0..*SIZES.iter().max().unwrap_or(&1) {
        z.push_str(&format!("node-{i}.node.dc1 IN A {}\n", node_ip(i)));
    }
    z
}

fn nsd_conf(dir: &Path, ip: Ipv4Addr) -> String {
    let d = dir.display();
    format!(
        "server:\n  ip-address: {ip}@8600\n  server-count: 2\n  username: \"\"\n  chroot: \"\"\n  zonesdir: \"{d}\"\n  \
         zonelistfile: \"{d}/zone.list\"\n  database: \"\"\n  xfrdfile: \"{d}/xfrd.state\"\n  pidfile: \"{d}/nsd.pid\"\n  \
         logfile: \"{d}/nsd.log\"\n  rrl-ratelimit: 0\n  verbosity: 0\n  hide-version: yes\n\
         remote-control:\n  control-enable: no\n\
         zone:\n  name: \"consul.\"\n  zonefile: \"consul.zone\"\n"
    )
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    let dnsperf_bin = need(&ctx.tools.dnsperf, "dnsperf")?.to_path_buf();
    let nsd_bin = need(&ctx.tools.nsd, "nsd")?.to_path_buf();
    let secs = ctx.pick(10.0, 1.0);
    let loads: Vec<(u32, u32)> = ctx.pick(vec![(1, 10), (4, 100)], vec![(4, 100)]);
    sec.about.push(format!(
        "consul-rs: one durable server with DNS on port 8600; services `svc1`, `svc10`, `svc100` with 1, 10 and 100 \
         instances registered through `/v1/catalog/register` on synthetic nodes (no checks: all passing). NSD 4 \
         (`server-count: 2`, response-rate limiting off) serves a static `consul.` zone holding, for each service, what \
         consul-rs answers over UDP without EDNS: min(instances, {UDP_ANSWER_LIMIT}) A records, as many SRV records \
         targeting `node-<i>.node.dc1.consul.`, and those targets' A records (which both put in the additional section). \
         The reply sizes below are read from both servers. dnsperf sends `svcN.service.consul A` and `… SRV` \
         alternately without EDNS for {secs} s per row, at two loads: 1 client with 10 queries outstanding, and \
         4 clients with 100 outstanding (saturating)."
    ));
    // consul-rs agent with the services.
    let dir = ctx.scratch("dns-consul")?;
    let ip = Ipv4Addr::new(127, 80, 0, 1);
    let node = start_agent(ctx, &dir, "d1", ip, Role::Single, &[])?;
    sec.commands.push(node.proc.cmdline(&ctx.work));
    let http = node.http();
    let ready = wait_until(Duration::from_secs(30), Duration::from_millis(100), || async move {
        oneshot(http, Method::PUT, "/v1/kv/dns-ready", Some("1".into()), Duration::from_secs(2))
            .await
            .map(|r| r.status == 200)
            .unwrap_or(false)
    })
    .await;
    if ready.is_none() {
        return Err(format!("DNS agent never became ready\n{}", node.proc.log_tail(20)));
    }
    let mut c = HttpConn::new(http);
    for &n in &SIZES {
        for i in 0..n {
            let body = format!(
                r#"{{"Node":"node-{i}","Address":"{}","Service":{{"ID":"svc{n}-{i}","Service":"svc{n}","Port":{}}}}}"#,
                node_ip(i),
                8000 + i
            );
            let r = c.request(Method::PUT, "/v1/catalog/register", Some(body.into())).await?;
            if r.status != 200 {
                return Err(format!("catalog register svc{n}-{i}: {} {}", r.status, r.text()));
            }
        }
    }
    // NSD.
    let ndir = ctx.scratch("dns-nsd")?;
    let nip = Ipv4Addr::new(127, 80, 0, 2);
    std::fs::write(ndir.join("consul.zone"), nsd_zone()).map_err(|e| format!("failed to write zone: {e}"))?;
    let conf = ndir.join("nsd.conf");
    std::fs::write(&conf, nsd_conf(&ndir, nip)).map_err(|e| format!("failed to write nsd.conf: {e}"))?;
    let nsd = Proc::spawn(
        "nsd",
        &nsd_bin,
        &["-d".into(), "-c".into(), conf.display().to_string()],
        &ndir.join("nsd.stdout"),
    )?;
    sec.commands.push(nsd.cmdline(&ctx.work));
    let consul_dns = node.dns();
    let nsd_dns = SocketAddr::from((nip, 8600));
    for (who, server) in [("consul-rs", consul_dns), ("nsd", nsd_dns)] {
        let ok = wait_until(Duration::from_secs(20), Duration::from_millis(100), || async move {
            matches!(probe(server, "svc100.service.consul", 1).await, Ok((0, a, _, _)) if a > 0)
        })
        .await;
        if ok.is_none() {
            let tail = if who == "nsd" {
                crate::procs::log_tail(&ndir.join("nsd.log"), 20) + &nsd.log_tail(10)
            } else {
                node.proc.log_tail(20)
            };
            return Err(format!("{who} DNS at {server} never answered svc100.service.consul\n{tail}"));
        }
    }
    let mut sizes = Table::new(
        "Answers (one UDP query each, no EDNS)",
        &["query", "consul-rs answers / additional / bytes", "nsd answers / additional / bytes"],
    );
    for &n in &SIZES {
        for (qt, qname) in [(1u16, "A"), (33u16, "SRV")] {
            let name = format!("svc{n}.service.consul");
            let a = probe(consul_dns, &name, qt).await?;
            let b = probe(nsd_dns, &name, qt).await?;
            sizes.row(vec![
                format!("{name} {qname}"),
                format!("{} / {} / {}", a.1, a.2, a.3),
                format!("{} / {} / {}", b.1, b.2, b.3),
            ]);
            if a.1 != b.1 {
                sec.notes.push(format!("{name} {qname}: consul-rs answered {} records, nsd {}", a.1, b.1));
            }
        }
    }
    sec.tables.push(sizes);
    let mut t = Table::new(
        "DNS queries per second (dnsperf, UDP)",
        &[
            "instances",
            "load (clients × outstanding)",
            "consul-rs QPS",
            "consul-rs avg ms",
            "consul-rs lost",
            "nsd QPS",
            "nsd avg ms",
            "nsd lost",
            "consul-rs ÷ nsd",
        ],
    );
    for &n in &SIZES {
        let file = ctx.work.join(format!("dns-queries-{n}.txt"));
        std::fs::write(&file, format!("svc{n}.service.consul A\nsvc{n}.service.consul SRV\n"))
            .map_err(|e| format!("failed to write query file: {e}"))?;
        for &(clients, outstanding) in &loads {
            let ours = dnsperf(&dnsperf_bin, consul_dns, &file, secs, clients, outstanding)?;
            let theirs = dnsperf(&dnsperf_bin, nsd_dns, &file, secs, clients, outstanding)?;
            sec.metric(format!("dns.svc{n}.c{clients}q{outstanding}.consul_qps"), ours.qps);
            sec.metric(format!("dns.svc{n}.c{clients}q{outstanding}.nsd_qps"), theirs.qps);
            sec.metric(format!("dns.svc{n}.c{clients}q{outstanding}.ratio"), ratio_val(ours.qps, theirs.qps));
            eprintln!(
                "  dns svc{n} c={clients} q={outstanding}: consul-rs {:.0} qps, nsd {:.0} qps",
                ours.qps, theirs.qps
            );
            t.row(vec![
                n.to_string(),
                format!("{clients} × {outstanding}"),
                num(ours.qps),
                num(ours.avg_ms),
                format!("{} / {}", ours.lost, ours.completed + ours.lost),
                num(theirs.qps),
                num(theirs.avg_ms),
                format!("{} / {}", theirs.lost, theirs.completed + theirs.lost),
                ratio(ours.qps, theirs.qps),
            ]);
        }
    }
    sec.tables.push(t);
    // Where the agent's time goes when answering: a CPU profile of one
    // more saturating run on the largest service.
    if let Some(perf) = crate::benches::profile::perf_bin() {
        let n = *SIZES.iter().max().unwrap_or(&1);
        let file = ctx.work.join(format!("dns-queries-{n}.txt"));
        let data = ctx.work.join("perf-dns.data");
        let pid = node.proc.pid();
        let cpu0 = crate::procs::cpu_secs(pid).unwrap_or(0.0);
        let rec = crate::benches::profile::start_record(&perf, pid, &data)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let ours = dnsperf(&dnsperf_bin, consul_dns, &file, secs.min(5.0), 4, 100)?;
        let cpu = crate::procs::cpu_secs(pid).unwrap_or(0.0) - cpu0;
        let rows = crate::benches::profile::finish_record(&perf, rec, &data)?;
        let queries = (ours.completed.max(1)) as f64;
        sec.metric(format!("dns.svc{n}.cpu_us_per_query"), 1e6 * cpu / queries);
        let head = format!(
            "consul-rs agent under dnsperf, svc{n} A+SRV, 4 × 100 outstanding: {} QPS, {} CPU µs per query (perf record -e cpu-clock)",
            num(ours.qps),
            num(1e6 * cpu / queries)
        );
        let (kernel, alloc, copy) = crate::benches::profile::shares(&rows);
        sec.metric("dns.profile.kernel_pct", kernel);
        sec.metric("dns.profile.alloc_pct", alloc);
        sec.metric("dns.profile.memcpy_pct", copy);
        sec.tables.extend(crate::benches::profile::profile_tables(
            &rows,
            &head,
            &format!("consul-rs DNS, svc{n}"),
        ));
    }
    sec.notes.push(format!(
        "consul-rs agent RSS after the DNS runs: {:.1} MB; nsd (main process): {:.1} MB",
        node.proc.rss_kb().unwrap_or(0) as f64 / 1024.0,
        nsd.rss_kb().unwrap_or(0) as f64 / 1024.0
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dnsperf_output() {
        let text = "Statistics:\n\n  Queries sent:         1000\n  Queries completed:    990 (99.00%)\n  Queries lost:         10 (1.00%)\n\n  \
                    Response codes:       NOERROR 990 (100.00%)\n  Queries per second:   49500.123\n\n  Average Latency (s):  0.000150 (min 0.000010, max 0.002000)\n";
        let r = parse_dnsperf(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.lost, 10);
        assert_eq!(r.completed, 990);
        assert!((r.qps - 49500.123).abs() < 1e-6);
        assert!((r.avg_ms - 0.15).abs() < 1e-9);
    }

    #[test]
    fn builds_a_query() {
        let p = query_packet("a.bc", 33);
        assert_eq!(&p[12..], &[1, b'a', 2, b'b', b'c', 0, 0, 33, 0, 1]);
    }
}
