//! `consul monitor`: follows a running agent's log over
//! `/v1/agent/monitor`, printing each line as it arrives, until interrupted
//! (exit 0) or until the agent ends the stream (exit 1, as Consul does).
//!
//! Reads the body as a stream (`api::Client::stream`). Touches nothing else.

use super::HttpFlags;
use clap::Args;
use http_body_util::BodyExt;
use std::io::Write;

#[derive(Args, Debug)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long = "log-level", default_value = "INFO", help = "Log level of the agent.")]
    pub log_level: String,
    #[arg(long = "log-json", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Output logs in JSON format.")]
    pub log_json: Option<bool>,
}

/// The longest unfinished line kept while waiting for its newline.
const MAX_PARTIAL: usize = 64 * 1024;

/// How the stream ended.
enum End {
    Interrupted,
    RemoteClosed,
    Failed(String),
}

pub fn run(a: MonitorArgs) -> i32 {
    super::block_on(async move {
        let client = match a.http.connect() {
            Ok(c) => c,
            Err(code) => return code,
        };
        let mut path = format!("/v1/agent/monitor?loglevel={}", crate::api::encode(&a.log_level));
        if a.log_json.unwrap_or(false) {
            path.push_str("&logjson");
        }
        let body = match client.stream(&path).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("Error starting monitor: {e}");
                return 1;
            }
        };
        match follow(body).await {
            End::Interrupted => 0,
            End::RemoteClosed => {
                println!();
                println!("Remote side ended the monitor! This usually means that the\nremote side has exited or crashed.");
                1
            }
            End::Failed(e) => {
                eprintln!("Error reading monitor stream: {e}");
                1
            }
        }
    })
}

/// Prints whole lines as they arrive until the body ends or we are told to
/// stop (SIGINT, SIGTERM).
async fn follow(mut body: hyper::body::Incoming) -> End {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => return End::Failed(format!("failed to watch for SIGTERM: {e}")),
    };
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let frame = tokio::select! {
            f = body.frame() => f,
            _ = tokio::signal::ctrl_c() => return End::Interrupted,
            _ = term.recv() => return End::Interrupted,
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => {
                // The agent going away mid-stream is the normal way this ends.
                tracing::debug!(target: "monitor", error = %e, "monitor stream broke");
                break;
            }
            Some(Ok(f)) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue, // trailers carry no log lines
            },
        };
        partial.extend_from_slice(&data);
        // Print up to the last newline; a runaway line without one is
        // printed as it is rather than buffered without limit.
        let cut = partial
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .or((partial.len() > MAX_PARTIAL).then_some(partial.len()));
        if let Some(cut) = cut {
            let rest = partial.split_off(cut);
            let mut out = std::io::stdout().lock();
            // A closed stdout (`consul monitor | head`) ends the monitor quietly.
            if out.write_all(&partial).and_then(|_| out.flush()).is_err() {
                return End::Interrupted;
            }
            partial = rest;
        }
    }
    if !partial.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&partial).and_then(|_| out.write_all(b"\n"));
    }
    End::RemoteClosed
}
