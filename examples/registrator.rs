//! Plays Registrator's part against a local agent, without Docker: each
//! "container" is a real listener this program opens (a tiny HTTP server,
//! a TCP acceptor, or nothing for a TTL-checked worker). It registers one
//! service per published port through `PUT /v1/agent/service/register`
//! with Registrator's ID scheme `host:container:port`, a name, tags, port,
//! address and a check, lists what the agent holds, keeps the TTL check
//! alive, and on exit (Ctrl-C or `--hold`) deregisters everything through
//! `PUT /v1/agent/service/deregister/<id>`, as Registrator does when a
//! container stops.
//!
//! ```sh
//! consul agent -dev &
//! cargo run --example registrator -- --host docker1 --hold 60
//! ```
//!
//! Flags: `--host NAME` (default: this machine's hostname), `--bind IP`
//! (where the listeners open and the address registered; default
//! 127.0.0.1), `--hold SECS` (default: until Ctrl-C). The agent comes from
//! `CONSUL_HTTP_ADDR`, else 127.0.0.1:8500. See docs/registrator.md.
//!
//! The integration test `tests/it/discovery_cluster.rs` compiles this file
//! as a module and drives the same functions.

#![allow(dead_code)] // the integration test uses only part of this file

use consul::api::{encode, Client, ClientConfig};
use hyper::Method;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How a container's service is health-checked.
#[derive(Clone, Debug)]
pub enum Check {
    /// `GET url` every `interval`, failing after `timeout`.
    Http { url: String, interval: Duration, timeout: Duration },
    /// A TCP connect to `addr` every `interval`.
    Tcp { addr: String, interval: Duration, timeout: Duration },
    /// The program itself reports in at least every `ttl`.
    Ttl { ttl: Duration },
}

/// One published port of one container, as Registrator sees it.
#[derive(Clone, Debug)]
pub struct Container {
    /// The Docker host's name (Registrator's `-hostname`).
    pub host: String,
    /// The container's name.
    pub name: String,
    /// The published port.
    pub port: u16,
    /// The service name (Registrator: the image name or `SERVICE_NAME`).
    pub service: String,
    pub tags: Vec<String>,
    /// The address registered for the service (Registrator: the host IP).
    pub address: String,
    pub check: Check,
}

/// Go's duration syntax for whole seconds or milliseconds.
fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl Container {
    /// Registrator's service ID: `host:container:port`.
    pub fn service_id(&self) -> String {
        format!("{}:{}:{}", self.host, self.name, self.port)
    }

    /// The ID the agent gives the service's only check.
    pub fn check_id(&self) -> String {
        format!("service:{}", self.service_id())
    }

    /// The `/v1/agent/service/register` body.
    pub fn registration(&self) -> Value {
        let check = match &self.check {
            Check::Http { url, interval, timeout } => {
                json!({"HTTP": url, "Interval": go_duration(*interval), "Timeout": go_duration(*timeout)})
            }
            Check::Tcp { addr, interval, timeout } => {
                json!({"TCP": addr, "Interval": go_duration(*interval), "Timeout": go_duration(*timeout)})
            }
            Check::Ttl { ttl } => json!({"TTL": go_duration(*ttl)}),
        };
        json!({
            "ID": self.service_id(),
            "Name": self.service,
            "Tags": self.tags,
            "Port": self.port,
            "Address": self.address,
            "Check": check,
        })
    }
}

/// Registers one container's service with the agent.
pub async fn register(client: &Client, c: &Container) -> Result<(), String> {
    let body =
        serde_json::to_vec(&c.registration()).map_err(|e| format!("failed to encode registration: {e}"))?;
    client
        .call(Method::PUT, "/v1/agent/service/register", Some(body.into()))
        .await
        .map_err(|e| format!("failed to register {}: {e}", c.service_id()))?;
    Ok(())
}

/// Removes a service (and its check) from the agent.
pub async fn deregister(client: &Client, service_id: &str) -> Result<(), String> {
    let path = format!("/v1/agent/service/deregister/{}", encode(service_id));
    client
        .call(Method::PUT, &path, None)
        .await
        .map_err(|e| format!("failed to deregister {service_id}: {e}"))?;
    Ok(())
}

/// Tells the agent a TTL check is passing.
pub async fn pass_ttl(client: &Client, check_id: &str) -> Result<(), String> {
    let path = format!("/v1/agent/check/pass/{}", encode(check_id));
    client
        .call(Method::PUT, &path, None)
        .await
        .map_err(|e| format!("failed to update check {check_id}: {e}"))?;
    Ok(())
}

/// The agent's services as `(ID, name, address, port)`, sorted by ID.
pub async fn list(client: &Client) -> Result<Vec<(String, String, String, u64)>, String> {
    let resp = client.call(Method::GET, "/v1/agent/services", None).await?;
    let services: serde_json::Map<String, Value> = resp.json()?;
    let mut out: Vec<(String, String, String, u64)> = services
        .into_iter()
        .map(|(id, s)| {
            let name = s["Service"].as_str().unwrap_or_default().to_string();
            let address = s["Address"].as_str().unwrap_or_default().to_string();
            (id, name, address, s["Port"].as_u64().unwrap_or(0))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// A tiny HTTP server that answers every request with `200 OK`; it runs
/// until the runtime stops. Returns the address it listens on.
pub async fn start_http_listener(ip: IpAddr) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind((ip, 0)).await.map_err(|e| format!("failed to listen on {ip}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request head (enough for a health check's GET),
                // then answer and close.
                let mut buf = vec![0u8; 4096];
                let mut seen = 0;
                while seen < buf.len() {
                    match conn.read(&mut buf[seen..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen += n,
                    }
                    if buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
                let _ = conn.write_all(reply.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(addr)
}

/// A TCP acceptor that takes connections and closes them (all a TCP check
/// needs). Returns the address it listens on.
pub async fn start_tcp_listener(ip: IpAddr) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind((ip, 0)).await.map_err(|e| format!("failed to listen on {ip}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn);
        }
    });
    Ok(addr)
}

/// The demo's three containers: a web server (HTTP check), a cache (TCP
/// check) and a worker without a port of its own (TTL check).
pub async fn demo_containers(host: &str, ip: IpAddr) -> Result<Vec<Container>, String> {
    let http = start_http_listener(ip).await?;
    let tcp = start_tcp_listener(ip).await?;
    let every = Duration::from_secs(2);
    let timeout = Duration::from_secs(1);
    Ok(vec![
        Container {
            host: host.to_string(),
            name: "web-1".into(),
            port: http.port(),
            service: "web".into(),
            tags: vec!["http".into(), "v1".into()],
            address: ip.to_string(),
            check: Check::Http { url: format!("http://{http}/health"), interval: every, timeout },
        },
        Container {
            host: host.to_string(),
            name: "redis-1".into(),
            port: tcp.port(),
            service: "redis".into(),
            tags: vec!["cache".into()],
            address: ip.to_string(),
            check: Check::Tcp { addr: tcp.to_string(), interval: every, timeout },
        },
        Container {
            host: host.to_string(),
            name: "worker-1".into(),
            port: 9000,
            service: "worker".into(),
            tags: vec![],
            address: ip.to_string(),
            check: Check::Ttl { ttl: Duration::from_secs(15) },
        },
    ])
}

struct Args {
    host: String,
    bind: IpAddr,
    hold: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_default(),
        bind: IpAddr::from([127, 0, 0, 1]),
        hold: None,
    };
    if args.host.is_empty() {
        args.host = "localhost".into();
    }
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => args.host = value()?,
            "--bind" => args.bind = value()?.parse().map_err(|e| format!("--bind: {e}"))?,
            "--hold" => {
                let secs: u64 = value()?.parse().map_err(|e| format!("--hold: {e}"))?;
                args.hold = Some(Duration::from_secs(secs));
            }
            other => {
                return Err(format!(
                    "unknown flag {other}; usage: registrator [--host NAME] [--bind IP] [--hold SECS]"
                ))
            }
        }
    }
    Ok(args)
}

fn print_services(title: &str, services: &[(String, String, String, u64)]) {
    println!("{title}:");
    for (id, name, address, port) in services {
        println!("  {id:<32} {name:<8} {address}:{port}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    let client = Client::new(ClientConfig::resolve(None, None, None, None)?)?;
    let containers = demo_containers(&args.host, args.bind).await?;
    for c in &containers {
        register(&client, c).await?;
        println!("registered {} ({})", c.service_id(), c.service);
    }
    print_services("services on the agent", &list(&client).await?);

    // Keep the TTL checks alive until it is time to stop.
    let stop = async {
        match args.hold {
            Some(d) => tokio::time::sleep(d).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    let mut beat = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = beat.tick() => {
                for c in containers.iter().filter(|c| matches!(c.check, Check::Ttl { .. })) {
                    if let Err(e) = pass_ttl(&client, &c.check_id()).await {
                        eprintln!("{e}");
                    }
                }
            }
        }
    }

    // The containers "stop": take their services away, as Registrator does.
    for c in &containers {
        deregister(&client, &c.service_id()).await?;
        println!("deregistered {}", c.service_id());
    }
    print_services("services left on the agent", &list(&client).await?);
    Ok(())
}
