//! KV load clients for both systems through the same driver: consul-rs's
//! `/v1/kv`, etcd's JSON gateway (`/v3/kv/put`, `/v3/kv/range`, base64 keys
//! and values) and etcd's native gRPC API.
//!
//! Owns: request shapes and response checks of the KV benchmarks. Must not
//! start processes.

use crate::etcd::b64;
use crate::grpc::{self, GrpcConn};
use crate::http::{truncate, HttpConn};
use crate::load::Worker;
use bytes::Bytes;
use hyper::Method;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Api {
    Consul,
    EtcdHttp,
    EtcdGrpc,
}

impl Api {
    pub fn label(self) -> &'static str {
        match self {
            Api::Consul => "consul-rs (HTTP/JSON)",
            Api::EtcdHttp => "etcd (HTTP/JSON gateway)",
            Api::EtcdGrpc => "etcd (gRPC)",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Api::Consul => "consul",
            Api::EtcdHttp => "etcd_http",
            Api::EtcdGrpc => "etcd_grpc",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KvOp {
    Put,
    /// `relaxed`: consul-rs `?stale`, etcd serializable. Otherwise consul-rs's
    /// default (linearizable) and etcd's default (linearizable).
    Get {
        relaxed: bool,
    },
    /// consul-rs `?consistent` (leadership always confirmed with a quorum
    /// round, never a lease); etcd has no stronger read than its default
    /// linearizable one, so it is that.
    GetConsistent,
}

pub const VALUE_SIZE: usize = 256;

pub fn key_name(i: u64) -> String {
    format!("bench/k{i:06}")
}

/// Where a worker's keys come from.
#[derive(Clone, Copy)]
pub enum Keys {
    /// uniformly random in 0..n
    Random(u64),
    /// uniformly random in from..to (e.g. every key but a hot one)
    Range { from: u64, to: u64 },
    /// always this key
    Fixed(u64),
    /// start, start + stride, … (preloading: every key written once)
    Sequence { start: u64, stride: u64 },
}

pub struct KvWorker {
    api: Api,
    op: KvOp,
    http: HttpConn,
    grpc: GrpcConn,
    rng: SmallRng,
    keys: Keys,
    value: Bytes,
    value_b64: Arc<str>,
}

impl KvWorker {
    pub fn new(api: Api, op: KvOp, addr: SocketAddr, keys: Keys, seed: u64) -> KvWorker {
        let mut rng = SmallRng::seed_from_u64(seed);
        let raw: Vec<u8> = (0..VALUE_SIZE).map(|_| rng.random_range(b'a'..=b'z')).collect();
        let value_b64: Arc<str> = b64(&raw).into();
        KvWorker {
            api,
            op,
            http: HttpConn::new(addr),
            grpc: GrpcConn::new(addr),
            rng,
            keys,
            value: raw.into(),
            value_b64,
        }
    }

    fn pick(&mut self, seq: u64) -> u64 {
        match self.keys {
            Keys::Random(n) => self.rng.random_range(0..n.max(1)),
            Keys::Range { from, to } => self.rng.random_range(from..to.max(from + 1)),
            Keys::Fixed(k) => k,
            Keys::Sequence { start, stride } => start + seq * stride,
        }
    }
}

impl Worker for KvWorker {
    async fn step(&mut self, seq: u64) -> Result<(), String> {
        let key = key_name(self.pick(seq));
        match (self.api, self.op) {
            (Api::Consul, KvOp::Put) => {
                let r = self
                    .http
                    .request(Method::PUT, &format!("/v1/kv/{key}"), Some(self.value.clone()))
                    .await?;
                if r.status != 200 || r.body.as_ref() != b"true" {
                    return Err(format!("PUT {key}: {} {}", r.status, truncate(&r.text(), 200)));
                }
            }
            (Api::Consul, KvOp::Get { .. } | KvOp::GetConsistent) => {
                let path = match self.op {
                    KvOp::Get { relaxed: true } => format!("/v1/kv/{key}?stale"),
                    KvOp::GetConsistent => format!("/v1/kv/{key}?consistent"),
                    _ => format!("/v1/kv/{key}"),
                };
                let r = self.http.get(&path).await?;
                if r.status != 200 {
                    return Err(format!("GET {path}: {} {}", r.status, truncate(&r.text(), 200)));
                }
            }
            (Api::EtcdHttp, KvOp::Put) => {
                let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64(key.as_bytes()), self.value_b64);
                let r = self.http.request(Method::POST, "/v3/kv/put", Some(body.into())).await?;
                if r.status != 200 {
                    return Err(format!("etcd put {key}: {} {}", r.status, truncate(&r.text(), 200)));
                }
            }
            (Api::EtcdHttp, KvOp::Get { .. } | KvOp::GetConsistent) => {
                let relaxed = self.op == KvOp::Get { relaxed: true };
                let body = if relaxed {
                    format!(r#"{{"key":"{}","serializable":true}}"#, b64(key.as_bytes()))
                } else {
                    format!(r#"{{"key":"{}"}}"#, b64(key.as_bytes()))
                };
                let r = self.http.request(Method::POST, "/v3/kv/range", Some(body.into())).await?;
                if r.status != 200 || !r.text().contains("\"kvs\"") {
                    return Err(format!("etcd range {key}: {} {}", r.status, truncate(&r.text(), 200)));
                }
            }
            (Api::EtcdGrpc, KvOp::Put) => {
                self.grpc.unary(grpc::PUT, grpc::put_request(key.as_bytes(), &self.value)).await?;
            }
            (Api::EtcdGrpc, KvOp::Get { .. } | KvOp::GetConsistent) => {
                let relaxed = self.op == KvOp::Get { relaxed: true };
                let r = self.grpc.unary(grpc::RANGE, grpc::range_request(key.as_bytes(), relaxed)).await?;
                // A RangeResponse with a key-value has field 2 (kvs); an
                // empty one only carries the header.
                if r.len() < VALUE_SIZE {
                    return Err(format!("etcd gRPC range {key}: no value in a {}-byte response", r.len()));
                }
            }
        }
        Ok(())
    }
}

/// Writes keys 0..n once each with `clients` parallel writers.
pub async fn preload(api: Api, addrs: &[SocketAddr], n: u64, clients: usize) -> Result<(), String> {
    let clients = clients.max(1);
    let per = n.div_ceil(clients as u64);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let addr = addrs[c % addrs.len()];
        let mut w = KvWorker::new(
            api,
            KvOp::Put,
            addr,
            Keys::Sequence { start: c as u64, stride: clients as u64 },
            c as u64,
        );
        tasks.push(tokio::spawn(async move {
            for s in 0..per {
                if c as u64 + s * clients as u64 >= n {
                    break;
                }
                let mut tries = 0;
                loop {
                    match w.step(s).await {
                        Ok(()) => break,
                        Err(e) if tries >= 5 => return Err(format!("preload: {e}")),
                        Err(_) => {
                            tries += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                    }
                }
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("preload task: {e}"))??;
    }
    Ok(())
}
