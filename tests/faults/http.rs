//! A small blocking HTTP/1.1 client for the workload: one connection per
//! request (`Connection: close`), a hard deadline for the whole exchange,
//! and errors that say whether the request can have reached the server
//! (a refused or timed-out connect sent nothing; anything later may have).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug)]
pub enum HttpError {
    /// The connection was never established: the server saw nothing.
    NotSent(String),
    /// The request may have been delivered; its effect is unknown.
    AfterSend(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::NotSent(e) => write!(f, "not sent: {e}"),
            HttpError::AfterSend(e) => write!(f, "no answer: {e}"),
        }
    }
}

pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Resp, HttpError> {
    let deadline = Instant::now() + timeout;
    let connect_timeout = timeout.min(Duration::from_secs(1));
    let mut s = TcpStream::connect_timeout(&addr, connect_timeout)
        .map_err(|e| HttpError::NotSent(format!("connect {addr}: {e}")))?;
    let after = |e: std::io::Error| HttpError::AfterSend(format!("{method} {path} on {addr}: {e}"));
    let body = body.unwrap_or(&[]);
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut req = head.into_bytes();
    req.extend_from_slice(body);
    s.set_write_timeout(Some(remaining(deadline)?)).map_err(after)?;
    s.write_all(&req).map_err(after)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        s.set_read_timeout(Some(remaining(deadline)?)).map_err(after)?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(after(e)),
        }
    }
    parse(&raw).map_err(|e| HttpError::AfterSend(format!("{method} {path} on {addr}: {e}")))
}

fn remaining(deadline: Instant) -> Result<Duration, HttpError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(HttpError::AfterSend("deadline passed".into()))
    } else {
        Ok(left)
    }
}

fn parse(raw: &[u8]) -> Result<Resp, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("response cut short before the end of its headers")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length: Option<usize> = None;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse().ok();
            }
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        if rest.len() < n {
            return Err(format!("body cut short: {} of {n} bytes", rest.len()));
        }
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Resp { status, body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").ok_or("chunk size line cut short")?;
        let size_txt = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size: {e}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err("chunk cut short".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
