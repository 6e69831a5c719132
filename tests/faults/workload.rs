//! The clients: threads in the client namespace doing KV reads (default,
//! `?consistent`, `?stale`), writes, CAS and deletes on a few keys, and lock
//! acquire/release with sessions, recording every operation into the
//! lincheck history (and lock holds as events). Keeps the checker's
//! workload contract: every written value is unique per key, and a CAS
//! expects the value it read together with the index it sends.

use crate::http::{self, HttpError};
use base64::Engine as _;
use lincheck::locks::LockEvent;
use lincheck::{Call, ReadMode, Recorder, Ret};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longer than `rpc_hold_timeout` (2 s) plus a forwarded call.
pub const TIMEOUT: Duration = Duration::from_secs(4);

/// Lock-delay of the lock clients' sessions.
const LOCK_DELAY: &str = "3s";
/// A lock client acts on an acquire only if it answered within this (see
/// `lock_client`); with holds of at most 250 ms it stays inside LOCK_DELAY.
const LOCK_TRUST: Duration = Duration::from_secs(2);

/// State the fault side shares with the clients.
pub struct Shared {
    pub rec: Recorder,
    /// Servers the clients send to (the fault side updates it).
    pub targets: RwLock<Vec<SocketAddr>>,
    /// Keys rotate every epoch so that per-key histories stay short.
    pub epoch: AtomicU64,
    pub keys_per_epoch: usize,
    pub stop: AtomicBool,
    pub lock_events: Mutex<Vec<LockEvent>>,
    pub used_keys: Mutex<BTreeSet<String>>,
}

impl Shared {
    pub fn new(targets: Vec<SocketAddr>, keys_per_epoch: usize) -> Arc<Shared> {
        Arc::new(Shared {
            rec: Recorder::new(),
            targets: RwLock::new(targets),
            epoch: AtomicU64::new(0),
            keys_per_epoch,
            stop: AtomicBool::new(false),
            lock_events: Mutex::default(),
            used_keys: Mutex::default(),
        })
    }

    pub fn set_targets(&self, t: Vec<SocketAddr>) {
        *self.targets.write().unwrap_or_else(|e| e.into_inner()) = t;
    }

    fn pick(&self, rng: &mut StdRng) -> Option<SocketAddr> {
        let t = self.targets.read().unwrap_or_else(|e| e.into_inner());
        (!t.is_empty()).then(|| t[rng.random_range(0..t.len())])
    }

    pub fn lock_event(&self, e: LockEvent) {
        self.lock_events.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    }
}

/// One KV operation against `addr`, recorded. Returns the read result for reads.
pub fn kv_op(sh: &Shared, client: u64, addr: SocketAddr, call: Call) -> Option<(Option<String>, u64)> {
    let (method, path, body): (&str, String, Option<Vec<u8>>) = match &call {
        Call::Read { key, mode } => {
            let q = match mode {
                ReadMode::Default => "",
                ReadMode::Consistent => "?consistent",
                ReadMode::Stale => "?stale",
            };
            ("GET", format!("/v1/kv/{key}{q}"), None)
        }
        Call::Write { key, value } => ("PUT", format!("/v1/kv/{key}"), Some(value.clone().into_bytes())),
        Call::Cas { key, expected_index, new, .. } => (
            "PUT",
            format!("/v1/kv/{key}?cas={}", expected_index.unwrap_or(0)),
            Some(new.clone().into_bytes()),
        ),
        Call::Delete { key } => ("DELETE", format!("/v1/kv/{key}"), None),
    };
    let is_read = matches!(call, Call::Read { .. });
    let is_cas = matches!(call, Call::Cas { .. });
    let p = sh.rec.invoke(client, call);
    match http::request(addr, method, &path, body.as_deref(), TIMEOUT) {
        Err(HttpError::NotSent(e)) => {
            sh.rec.fail(p, e);
            // The server is down: do not spin on refused connections.
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(e @ HttpError::AfterSend(_)) => sh.rec.indeterminate(p, e.to_string()),
        Ok(r) if r.status >= 500 => sh.rec.indeterminate(p, format!("{} {}", r.status, r.text().trim())),
        Ok(r) if is_read && r.status == 404 => {
            sh.rec.ok(p, Ret::Read { value: None, index: None });
            return Some((None, 0));
        }
        Ok(r) if r.status != 200 => sh.rec.fail(p, format!("{} {}", r.status, r.text().trim())),
        Ok(r) if is_read => match decode_read(&r.body) {
            Ok((value, index)) => {
                sh.rec.ok(p, Ret::Read { value: value.clone(), index: Some(index) });
                return Some((value, index));
            }
            Err(e) => sh.rec.indeterminate(p, e),
        },
        Ok(r) => match r.text().trim() {
            "true" if is_cas => sh.rec.ok(p, Ret::Cas { swapped: true }),
            "false" if is_cas => sh.rec.ok(p, Ret::Cas { swapped: false }),
            "true" => sh.rec.ok(p, Ret::Done),
            other => sh.rec.indeterminate(p, format!("unexpected answer {other:?}")),
        },
    }
    None
}

/// `[{"Value": base64, "ModifyIndex": n, ...}]` → (value, index).
fn decode_read(body: &[u8]) -> Result<(Option<String>, u64), String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("bad KV JSON: {e}"))?;
    let e = v.get(0).ok_or("empty KV answer")?;
    let index = e["ModifyIndex"].as_u64().ok_or("no ModifyIndex")?;
    let value = match e["Value"].as_str() {
        None => None,
        Some(b64) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("bad base64: {e}"))?;
            Some(String::from_utf8(raw).map_err(|e| format!("value not UTF-8: {e}"))?)
        }
    };
    Ok((value, index))
}

pub fn key_name(epoch: u64, k: usize) -> String {
    format!("faults/e{epoch}/k{k}")
}

/// A KV client thread (already inside the client namespace).
fn kv_client(sh: Arc<Shared>, client: u64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seq = 0u64;
    // What this client last read per key: CAS expects exactly that.
    let mut last: HashMap<String, (Option<String>, u64)> = HashMap::new();
    while !sh.stop.load(Ordering::Relaxed) {
        let Some(addr) = sh.pick(&mut rng) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let epoch = sh.epoch.load(Ordering::Relaxed);
        let key = key_name(epoch, rng.random_range(0..sh.keys_per_epoch));
        sh.used_keys.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone());
        let dice: u32 = rng.random_range(0..100);
        let mut value = || {
            seq += 1;
            format!("c{client}-{seq}")
        };
        let call = match dice {
            0..25 => Call::Write { key: key.clone(), value: value() },
            25..45 => match last.get(&key) {
                Some((expected, index)) => Call::Cas {
                    key: key.clone(),
                    expected: expected.clone(),
                    expected_index: Some(if expected.is_none() { 0 } else { *index }),
                    new: value(),
                },
                None => Call::Read { key: key.clone(), mode: ReadMode::Consistent },
            },
            45..50 => Call::Delete { key: key.clone() },
            50..72 => Call::Read { key: key.clone(), mode: ReadMode::Default },
            72..88 => Call::Read { key: key.clone(), mode: ReadMode::Consistent },
            _ => Call::Read { key: key.clone(), mode: ReadMode::Stale },
        };
        let mutates = call.is_mutation();
        match kv_op(&sh, client, addr, call) {
            Some(read) => {
                last.insert(key, read);
            }
            None if mutates => {
                // The key changed (or may have): the old expectation is stale.
                last.remove(&key);
            }
            None => {}
        }
    }
}

/// A lock client: a session (with lock-delay), then acquire, hold briefly,
/// release, forever. Records its holds as lock events.
fn lock_client(sh: Arc<Shared>, client: u64, seed: u64, lock: String) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut session: Option<(String, SocketAddr)> = None;
    while !sh.stop.load(Ordering::Relaxed) {
        let Some(addr) = sh.pick(&mut rng) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let (sid, home) = match &session {
            Some(s) => s.clone(),
            None => match create_session(addr, LOCK_DELAY) {
                Ok(id) => {
                    eprintln!(
                        "[faults] {:>6.1}s lock client {client}: session {id} on {addr}",
                        sh.rec.now() as f64 / 1e9
                    );
                    session = Some((id.clone(), addr));
                    (id, addr)
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            },
        };
        let _ = home;
        let path = format!("/v1/kv/{lock}?acquire={sid}");
        let invoked = std::time::Instant::now();
        match http::request(addr, "PUT", &path, Some(format!("lock-client-{client}").as_bytes()), TIMEOUT) {
            // The discipline lock-delay supports: the session cannot have
            // been invalidated before the acquire was sent, so nobody else
            // can take the lock until LOCK_DELAY after that. An answer that
            // took longer than LOCK_TRUST leaves too little of that window:
            // give the lock back without acting on it.
            Ok(r) if r.status == 200 && r.text().trim() == "true" && invoked.elapsed() > LOCK_TRUST => {
                abandon(addr, &sid);
                session = None;
            }
            Ok(r) if r.status == 200 && r.text().trim() == "true" => {
                let at = sh.rec.now();
                // The sequencer, for the LockIndex check: only trusted if
                // the key still names this session.
                let lock_index =
                    http::request(addr, "GET", &format!("/v1/kv/{lock}?consistent"), None, TIMEOUT)
                        .ok()
                        .and_then(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
                        .and_then(|v| {
                            (v[0]["Session"].as_str() == Some(sid.as_str()))
                                .then(|| v[0]["LockIndex"].as_u64())
                                .flatten()
                        });
                sh.lock_event(LockEvent::Acquired {
                    lock: lock.clone(),
                    holder: sid.clone(),
                    at,
                    lock_index,
                });
                std::thread::sleep(Duration::from_millis(rng.random_range(50..250)));
                let at = sh.rec.now();
                sh.lock_event(LockEvent::ReleaseInvoked { lock: lock.clone(), holder: sid.clone(), at });
                let released =
                    http::request(addr, "PUT", &format!("/v1/kv/{lock}?release={sid}"), None, TIMEOUT);
                if !released.is_ok_and(|r| r.status == 200 && r.text().trim() == "true") {
                    // The session may still hold the lock, and a re-acquire
                    // by the same session keeps its LockIndex: start over.
                    abandon(addr, &sid);
                    session = None;
                }
                std::thread::sleep(Duration::from_millis(rng.random_range(20..100)));
            }
            Ok(r) if r.status == 200 => std::thread::sleep(Duration::from_millis(50)),
            // An invalidated session (its node failed) or no leader: start over with a new session.
            Ok(r) => {
                eprintln!("[faults] {:>6.1}s lock client {client}: acquire with {sid} on {addr}: {} {}; new session", sh.rec.now() as f64 / 1e9, r.status, r.text().trim());
                abandon(addr, &sid);
                session = None;
            }
            Err(_) => {
                abandon(addr, &sid);
                session = None;
            }
        }
    }
}

/// Gives up a session: destroys it (best effort), so a lock it may hold
/// after an acquire whose answer was lost does not stay taken forever.
fn abandon(addr: SocketAddr, sid: &str) {
    let _ = http::request(addr, "PUT", &format!("/v1/session/destroy/{sid}"), None, TIMEOUT);
    std::thread::sleep(Duration::from_millis(100));
}

pub fn create_session(addr: SocketAddr, lock_delay: &str) -> Result<String, String> {
    let body = format!(r#"{{"Name":"faults","LockDelay":"{lock_delay}"}}"#);
    let r = http::request(addr, "PUT", "/v1/session/create", Some(body.as_bytes()), TIMEOUT)
        .map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!("session create: {} {}", r.status, r.text()));
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).map_err(|e| format!("session create: {e}"))?;
    v["ID"].as_str().map(str::to_string).ok_or_else(|| format!("session create: no ID in {}", r.text()))
}

pub struct Workload {
    handles: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts `kv` KV clients and `locks` lock clients, each in namespace `ns`.
    pub fn start(sh: &Arc<Shared>, ns: &str, kv: usize, locks: usize, seed: u64) -> Result<Workload, String> {
        let mut handles = Vec::new();
        for c in 0..kv + locks {
            let sh = sh.clone();
            let ns = ns.to_string();
            let seed = seed.wrapping_mul(1_000_003).wrapping_add(c as u64);
            let h = std::thread::Builder::new()
                .name(format!("client-{c}"))
                .spawn(move || {
                    if let Err(e) = crate::common::netns::enter(&ns) {
                        eprintln!("client {c}: {e}");
                        return;
                    }
                    if c < kv {
                        kv_client(sh, c as u64, seed)
                    } else {
                        lock_client(sh, c as u64, seed, "faults-locks/a".into())
                    }
                })
                .map_err(|e| format!("spawning client: {e}"))?;
            handles.push(h);
        }
        Ok(Workload { handles })
    }

    pub fn stop(self, sh: &Shared) {
        sh.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            let _ = h.join();
        }
    }
}
