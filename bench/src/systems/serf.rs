//! serf agents (Debian's `serf`, memberlist LAN profile, encrypted) and a
//! small client of serf's msgpack agent RPC (handshake, members, leave),
//! so serf is polled over one kept-open connection like consul-rs's HTTP.
//!
//! Owns: serf command lines and the RPC encoding. Must not measure.

use crate::ctx::{need, Ctx};
use crate::procs::Proc;
use rmpv::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct SerfNode {
    pub proc: Proc,
    pub ip: Ipv4Addr,
    pub name: String,
}

impl SerfNode {
    pub fn rpc(&self) -> SocketAddr {
        SocketAddr::from((self.ip, 7373))
    }
}

/// Starts `serf agent` on `ip` (gossip 7946, RPC 7373), joining `join` if given.
pub fn start(
    ctx: &Ctx,
    dir: &Path,
    name: &str,
    ip: Ipv4Addr,
    key: &str,
    join: Option<Ipv4Addr>,
) -> Result<SerfNode, String> {
    let serf = need(&ctx.tools.serf, "serf")?;
    let mut args: Vec<String> = vec![
        "agent".into(),
        format!("-node={name}"),
        format!("-bind={ip}:7946"),
        format!("-rpc-addr={ip}:7373"),
        format!("-encrypt={key}"),
        "-profile=lan".into(),
        "-log-level=warn".into(),
    ];
    if let Some(j) = join {
        args.push(format!("-retry-join={j}:7946"));
        args.push("-retry-interval=1s".into());
    }
    let log = dir.join(format!("{name}.log"));
    Ok(SerfNode { proc: Proc::spawn(name, serf, &args, &log)?, ip, name: name.into() })
}

pub struct SerfRpc {
    stream: TcpStream,
    buf: Vec<u8>,
    seq: u64,
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
}

impl SerfRpc {
    pub async fn connect(addr: SocketAddr) -> Result<SerfRpc, String> {
        let stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
            .await
            .map_err(|_| format!("serf rpc {addr}: connect timed out"))?
            .map_err(|e| format!("serf rpc {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut c = SerfRpc { stream, buf: Vec::new(), seq: 0 };
        c.call("handshake", Some(map(vec![("Version", Value::from(1))]))).await?;
        Ok(c)
    }

    async fn send(&mut self, v: &Value) -> Result<(), String> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).map_err(|e| format!("msgpack encode: {e}"))?;
        self.stream.write_all(&out).await.map_err(|e| format!("serf rpc write: {e}"))
    }

    /// Reads one msgpack value, waiting for more bytes while it is incomplete.
    async fn read_value(&mut self) -> Result<Value, String> {
        loop {
            let mut cur = std::io::Cursor::new(&self.buf[..]);
            match rmpv::decode::read_value(&mut cur) {
                Ok(v) => {
                    let used = cur.position() as usize;
                    self.buf.drain(..used);
                    return Ok(v);
                }
                Err(e) => {
                    let incomplete = matches!(&e, rmpv::decode::Error::InvalidMarkerRead(io) | rmpv::decode::Error::InvalidDataRead(io) if io.kind() == std::io::ErrorKind::UnexpectedEof);
                    if !incomplete {
                        return Err(format!("serf rpc: bad msgpack: {e}"));
                    }
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
                .await
                .map_err(|_| "serf rpc: read timed out".to_string())?
                .map_err(|e| format!("serf rpc read: {e}"))?;
            if n == 0 {
                return Err("serf rpc: connection closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a command; returns the response header. Bodies are read by the caller.
    async fn call(&mut self, command: &str, body: Option<Value>) -> Result<(), String> {
        let seq = self.seq;
        self.seq += 1;
        self.send(&map(vec![("Command", Value::from(command)), ("Seq", Value::from(seq))])).await?;
        if let Some(b) = body {
            self.send(&b).await?;
        }
        let header = self.read_value().await?;
        let err = get(&header, "Error").and_then(|e| e.as_str()).unwrap_or("");
        if !err.is_empty() {
            return Err(format!("serf rpc {command}: {err}"));
        }
        Ok(())
    }

    /// (name, status) of every member: "alive", "leaving", "left", "failed".
    pub async fn members(&mut self) -> Result<Vec<(String, String)>, String> {
        self.call("members", None).await?;
        let body = self.read_value().await?;
        let list = get(&body, "Members").and_then(|m| m.as_array()).ok_or("serf rpc members: no Members")?;
        Ok(list
            .iter()
            .filter_map(|m| {
                Some((get(m, "Name")?.as_str()?.to_string(), get(m, "Status")?.as_str()?.to_string()))
            })
            .collect())
    }

    pub async fn leave(&mut self) -> Result<(), String> {
        self.call("leave", None).await
    }
}
