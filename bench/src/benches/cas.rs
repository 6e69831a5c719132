//! CAS contention: 64 clients increment 8 counters (8 clients per counter)
//! with read → compare-and-set → retry on conflict. Counts successful
//! increments per second and checks afterwards that no increment was lost
//! (the counters' sum equals the successes the clients saw).
//!
//! Owns: the CAS client loop for both systems and its table.

use crate::benches::kv::Sys;
use crate::ctx::Ctx;
use crate::etcd::b64;
use crate::http::{truncate, HttpConn};
use crate::load::{self, Worker};
use crate::results::{num, ratio, Section, Table};
use base64::Engine;
use hyper::Method;
use std::net::SocketAddr;

const COUNTERS: usize = 8;
const CLIENTS: usize = 64;

fn counter_key(j: usize) -> String {
    format!("bench/ctr{j}")
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Reads a counter: (its value, the version to compare against).
async fn read(conn: &mut HttpConn, etcd: bool, key: &str) -> Result<(u64, u64), String> {
    if etcd {
        let body = format!(r#"{{"key":"{}"}}"#, b64(key.as_bytes()));
        let r = conn.request(Method::POST, "/v3/kv/range", Some(body.into())).await?;
        if r.status != 200 {
            return Err(format!("etcd range {key}: {} {}", r.status, truncate(&r.text(), 200)));
        }
        let v = r.json()?;
        let kv = &v["kvs"][0];
        let rev = kv["mod_revision"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("etcd range {key}: no mod_revision"))?;
        let val = kv["value"]
            .as_str()
            .and_then(decode_b64)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((val, rev))
    } else {
        let r = conn.get(&format!("/v1/kv/{key}")).await?;
        if r.status != 200 {
            return Err(format!("GET {key}: {} {}", r.status, truncate(&r.text(), 200)));
        }
        let v = r.json()?;
        let e = &v[0];
        let idx = e["ModifyIndex"].as_u64().ok_or_else(|| format!("GET {key}: no ModifyIndex"))?;
        let val = e["Value"]
            .as_str()
            .and_then(decode_b64)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((val, idx))
    }
}

/// Compare-and-set; Ok(true) when it applied.
async fn cas(conn: &mut HttpConn, etcd: bool, key: &str, version: u64, value: u64) -> Result<bool, String> {
    if etcd {
        let body = format!(
            r#"{{"compare":[{{"key":"{k}","target":"MOD","result":"EQUAL","mod_revision":"{version}"}}],"success":[{{"request_put":{{"key":"{k}","value":"{v}"}}}}]}}"#,
            k = b64(key.as_bytes()),
            v = b64(value.to_string().as_bytes())
        );
        let r = conn.request(Method::POST, "/v3/kv/txn", Some(body.into())).await?;
        if r.status != 200 {
            return Err(format!("etcd txn {key}: {} {}", r.status, truncate(&r.text(), 200)));
        }
        // The gateway omits `succeeded` when false.
        Ok(r.json()?["succeeded"].as_bool().unwrap_or(false))
    } else {
        let r = conn
            .request(Method::PUT, &format!("/v1/kv/{key}?cas={version}"), Some(value.to_string().into()))
            .await?;
        if r.status != 200 {
            return Err(format!("PUT {key}?cas: {} {}", r.status, truncate(&r.text(), 200)));
        }
        Ok(r.body.as_ref() == b"true")
    }
}

struct CasWorker {
    etcd: bool,
    conn: HttpConn,
    key: String,
    attempts: u64,
    successes: u64,
}

impl Worker for CasWorker {
    async fn step(&mut self, _seq: u64) -> Result<(), String> {
        // One step = one successful increment, however many tries it takes.
        for _ in 0..10_000 {
            let (v, ver) = read(&mut self.conn, self.etcd, &self.key).await?;
            self.attempts += 1;
            if cas(&mut self.conn, self.etcd, &self.key, ver, v + 1).await? {
                self.successes += 1;
                return Ok(());
            }
        }
        Err(format!("{}: 10,000 CAS conflicts in a row", self.key))
    }
}

pub async fn run(ctx: &Ctx, sec: &mut Section) -> Result<(), String> {
    sec.about.push(format!(
        "{CLIENTS} clients, {COUNTERS} counters, client i increments counter i mod {COUNTERS}: read the counter \
         (consul-rs `GET /v1/kv/<key>` → value and ModifyIndex; etcd `POST /v3/kv/range` → value and mod_revision), \
         then compare-and-set value+1 (consul-rs `PUT /v1/kv/<key>?cas=<ModifyIndex>`; etcd `POST /v3/kv/txn` comparing \
         mod_revision), retrying on conflict. Reads use each system's default (linearizable) consistency. Latency is \
         per successful increment, retries included. After the run the counters are read back: their sum must equal \
         the increments the clients saw acknowledged."
    ));
    let mut t = Table::new(
        "CAS contention (64 clients, 8 counters)",
        &[
            "servers",
            "system",
            "increments/s",
            "CAS attempts/s",
            "success rate",
            "p50 ms",
            "p99 ms",
            "errors",
            "lost increments",
            "consul-rs ÷ etcd",
        ],
    );
    for servers in [1usize, 3] {
        let mut ours = f64::NAN;
        for etcd in [false, true] {
            let sys = Sys::start(ctx, etcd, servers, 77, "cas").await?;
            sec.commands.extend(sys.commands(ctx));
            let addrs: Vec<SocketAddr> = sys.addrs();
            // Create the counters at 0.
            let mut c0 = HttpConn::new(addrs[0]);
            for j in 0..COUNTERS {
                let key = counter_key(j);
                let r = if etcd {
                    let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64(key.as_bytes()), b64(b"0"));
                    c0.request(Method::POST, "/v3/kv/put", Some(body.into())).await?
                } else {
                    c0.request(Method::PUT, &format!("/v1/kv/{key}"), Some("0".into())).await?
                };
                if r.status != 200 {
                    return Err(format!("creating counter {key}: {} {}", r.status, r.text()));
                }
            }
            let (warm, window) = (ctx.secs(2.0, 0.2), ctx.secs(10.0, 0.8));
            let (r, workers) = load::run(CLIENTS, warm, window, |i| CasWorker {
                etcd,
                conn: HttpConn::new(addrs[i % addrs.len()]),
                key: counter_key(i % COUNTERS),
                attempts: 0,
                successes: 0,
            })
            .await;
            let successes: u64 = workers.iter().map(|w| w.successes).sum();
            let attempts: u64 = workers.iter().map(|w| w.attempts).sum();
            let mut sum = 0u64;
            for j in 0..COUNTERS {
                sum += read(&mut c0, etcd, &counter_key(j)).await?.0;
            }
            let lost = successes as i64 - sum as i64;
            let name = if etcd { "etcd (HTTP/JSON gateway)" } else { "consul-rs (HTTP/JSON)" };
            // attempts are counted over warm-up and window alike
            let secs_all = (warm + window).as_secs_f64();
            let tput = r.throughput();
            if !etcd {
                ours = tput;
            }
            let key = if etcd { "etcd_http" } else { "consul" };
            sec.metric(format!("cas.n{servers}.{key}.ops"), tput);
            sec.metric(format!("cas.n{servers}.{key}.lost"), lost as f64);
            eprintln!(
                "  cas n={servers} {name}: {tput:.0} increments/s, {successes} successes, counters sum {sum}"
            );
            t.row(vec![
                servers.to_string(),
                name.into(),
                num(tput),
                num(attempts as f64 / secs_all),
                format!("{:.0} %", 100.0 * successes as f64 / attempts.max(1) as f64),
                num(r.ms(0.5)),
                num(r.ms(0.99)),
                r.errors.to_string(),
                lost.to_string(),
                if etcd { ratio(ours, tput) } else { String::new() },
            ]);
            if lost != 0 {
                sec.notes.push(format!(
                    "{name}, {servers} server(s): clients saw {successes} acknowledged increments but the counters sum to {sum} ({lost} lost)"
                ));
            }
            if let Some(e) = &r.first_error {
                sec.notes.push(format!(
                    "{name}, {servers} server(s): {} errors; first: `{}`",
                    r.errors,
                    truncate(e, 300)
                ));
            }
        }
    }
    sec.tables.push(t);
    Ok(())
}
