//! A userspace delaying TCP proxy for server-to-server Raft RPC (`tc netem`
//! is not available on this kernel). It listens in the client namespace on
//! one port per destination server; nftables in each server namespace DNATs
//! that server's outgoing connections to port 8300 of its peers to the
//! proxy (and resets the connections it already had, so the RPC pool
//! reconnects through it). Every chunk is forwarded after a random delay,
//! in order, in both directions.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct DelayProxy {
    stop: Arc<AtomicBool>,
    listeners: Vec<JoinHandle<()>>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    pub connections: Arc<AtomicU64>,
    pub bytes: Arc<AtomicU64>,
}

impl DelayProxy {
    /// Listens on `listen` (ip, port → destination) inside namespace `ns`;
    /// each chunk waits `base` ± `jitter`.
    pub fn start(
        ns: &str,
        routes: &[(SocketAddr, SocketAddr)],
        base: Duration,
        jitter: Duration,
        seed: u64,
    ) -> Result<DelayProxy, String> {
        let p = DelayProxy {
            stop: Arc::default(),
            listeners: Vec::new(),
            streams: Arc::default(),
            connections: Arc::default(),
            bytes: Arc::default(),
        };
        let mut p = p;
        for (n, (listen, dest)) in routes.iter().copied().enumerate() {
            let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
            let ns = ns.to_string();
            let (stop, streams, conns, bytes) =
                (p.stop.clone(), p.streams.clone(), p.connections.clone(), p.bytes.clone());
            let seed = seed.wrapping_add(n as u64);
            let h = std::thread::spawn(move || {
                let listener = match crate::common::netns::enter(&ns)
                    .and_then(|()| TcpListener::bind(listen).map_err(|e| format!("bind {listen}: {e}")))
                {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = listener.set_nonblocking(true);
                let _ = ready_tx.send(Ok(()));
                let mut rng = StdRng::seed_from_u64(seed);
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((inbound, _)) => {
                            let _ = inbound.set_nonblocking(false);
                            let Ok(outbound) = TcpStream::connect_timeout(&dest, Duration::from_secs(1))
                            else {
                                continue;
                            };
                            conns.fetch_add(1, Ordering::Relaxed);
                            let mut keep = streams.lock().unwrap_or_else(|e| e.into_inner());
                            for s in [&inbound, &outbound] {
                                if let Ok(c) = s.try_clone() {
                                    keep.push(c);
                                }
                            }
                            drop(keep);
                            for (from, to) in [(&inbound, &outbound), (&outbound, &inbound)] {
                                if let (Ok(f), Ok(t)) = (from.try_clone(), to.try_clone()) {
                                    pump(f, t, base, jitter, rng.random(), bytes.clone());
                                }
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(20))
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            });
            p.listeners.push(h);
            ready_rx.recv().map_err(|_| "delay proxy listener died".to_string())??;
        }
        Ok(p)
    }

    /// Stops listening and cuts every proxied connection.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.listeners {
            let _ = h.join();
        }
        for s in self.streams.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` → `to`, each chunk held until its due time (never earlier
/// than the previous chunk's, so order is kept).
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    base: Duration,
    jitter: Duration,
    seed: u64,
    bytes: Arc<AtomicU64>,
) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut last_due = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let j = jitter.as_micros() as i64;
                    let offset = if j > 0 { rng.random_range(-j..=j) } else { 0 };
                    let d = Duration::from_micros((base.as_micros() as i64 + offset).max(0) as u64);
                    let due = (Instant::now() + d).max(last_due);
                    last_due = due;
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok((due, chunk)) = rx.recv() {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                break;
            }
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
