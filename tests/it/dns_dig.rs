//! The DNS server as seen by `dig` (Debian `bind9-dnsutils`): a real,
//! independent resolver client. Each test prints a notice and passes when
//! dig is not installed; CI installs it.

use std::net::SocketAddr;

use crate::dns_common::*;
use consul::dns::Health;

fn have_dig() -> bool {
    let ok = std::process::Command::new("dig").arg("-v").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("NOTICE: dig not found (apt-get install -y bind9-dnsutils); skipping dig test");
    }
    ok
}

async fn dig(server: SocketAddr, args: &[&str]) -> String {
    let mut cmd = tokio::process::Command::new("dig");
    cmd.arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+time=3", "+tries=1"])
        .args(args);
    let out = cmd.output().await.expect("run dig");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `<section>: ` in dig's header line, e.g. "ANSWER: 3".
fn count(out: &str, section: &str) -> usize {
    let key = format!("{section}: ");
    out.split(&key)
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

fn flags(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(";; flags:"))
        .map(|l| l.split(';').nth(2).unwrap_or("").to_string())
        .unwrap_or_default()
}

fn backend() -> std::sync::Arc<FakeBackend> {
    let b = FakeBackend::new();
    b.set_service(DC, "web", 2, many(40));
    b.set_service(DC, "big", 3, many(1000));
    let mut warn = instance("node-w", "10.8.0.1", 7000, Health::Warning);
    warn.service_name = "api".into();
    let mut crit = instance("node-c", "10.8.0.2", 7000, Health::Critical);
    crit.service_name = "api".into();
    b.set_service(DC, "api", 4, vec![warn, crit]);
    b.add_node(node("node-a", "10.0.0.1"));
    b.servers.lock().unwrap().push(node("server-1", "10.1.0.1"));
    b
}

#[tokio::test]
async fn dig_sees_consul_answers() {
    if !have_dig() {
        return;
    }
    let s = start(backend(), "127.0.0.50", |_| {}).await;

    // A over plain UDP without EDNS: 3 answers, AA, no TC.
    let out = dig(s.addr, &["+noedns", "web.service.consul", "A"]).await;
    assert!(out.contains("status: NOERROR"), "{out}");
    assert_eq!(count(&out, "ANSWER"), 3, "{out}");
    assert!(flags(&out).contains("aa") && !flags(&out).contains("tc"), "{out}");

    // dig's default EDNS buffer (1232) takes all 40.
    let out = dig(s.addr, &["web.service.consul", "A"]).await;
    assert_eq!(count(&out, "ANSWER"), 40, "{out}");
    assert!(out.contains("udp: 1232"), "OPT echoed: {out}");

    // SRV with glue in ADDITIONAL.
    let out = dig(s.addr, &["+noedns", "_web._tcp.service.consul", "SRV"]).await;
    assert_eq!(count(&out, "ANSWER"), 3, "{out}");
    let glue = out.lines().filter(|l| l.contains(".node.dc1.consul.") && l.contains("\tIN\tA\t")).count();
    assert!(out.contains(";; ADDITIONAL SECTION:") && glue == 3, "{out}");

    // TCP: all 1,000 addresses.
    let out = dig(s.addr, &["+tcp", "big.service.consul", "A"]).await;
    assert_eq!(count(&out, "ANSWER"), 1000, "{out}");

    // Warning included, critical excluded.
    let out = dig(s.addr, &["+short", "api.service.consul"]).await;
    assert_eq!(out.trim(), "10.8.0.1", "{out}");

    // NXDOMAIN and NODATA both carry the SOA.
    let out = dig(s.addr, &["nosuch.service.consul", "A"]).await;
    assert!(out.contains("status: NXDOMAIN") && count(&out, "AUTHORITY") == 1, "{out}");
    assert!(out.contains("ns.consul. hostmaster.consul."), "{out}");
    let out = dig(s.addr, &["web.service.consul", "AAAA"]).await;
    assert!(
        out.contains("status: NOERROR") && count(&out, "ANSWER") == 0 && count(&out, "AUTHORITY") == 1,
        "{out}"
    );

    // Node, PTR, SOA.
    let out = dig(s.addr, &["+short", "node-a.node.consul"]).await;
    assert_eq!(out.trim(), "10.0.0.1", "{out}");
    let out = dig(s.addr, &["+short", "-x", "10.0.0.1"]).await;
    assert_eq!(out.trim(), "node-a.node.dc1.consul.", "{out}");
    let out = dig(s.addr, &["consul", "SOA"]).await;
    assert!(
        out.contains("status: NOERROR") && count(&out, "ANSWER") == 1 && count(&out, "AUTHORITY") == 1,
        "{out}"
    );

    // Outside our domain without recursors: REFUSED.
    let out = dig(s.addr, &["example.com", "A"]).await;
    assert!(out.contains("status: REFUSED"), "{out}");
    s.stop().await;
}

#[tokio::test]
async fn dig_sees_tc_only_with_enable_truncate() {
    if !have_dig() {
        return;
    }
    let s = start(backend(), "127.0.0.51", |c| c.settings.enable_truncate = true).await;
    // +ignore: show the truncated UDP reply instead of retrying over TCP.
    let out = dig(s.addr, &["+noedns", "+ignore", "web.service.consul", "A"]).await;
    assert!(flags(&out).contains("tc"), "{out}");
    assert_eq!(count(&out, "ANSWER"), 3, "{out}");
    // Without +ignore dig follows TC to TCP and gets everything.
    let out = dig(s.addr, &["+noedns", "web.service.consul", "A"]).await;
    assert_eq!(count(&out, "ANSWER"), 40, "{out}");
    s.stop().await;
}
