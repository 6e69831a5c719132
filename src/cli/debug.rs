//! `consul debug`: records a support bundle from a running agent, as
//! Consul's command does: the static targets once (`agent.json` from
//! `/v1/agent/self`, `host.json` from `/v1/agent/host`, `members.json` from
//! `/v1/agent/members?wan=1`), then for `-duration` the agent's log at
//! TRACE (`consul.log`) and a metrics snapshot per `-interval`
//! (`metrics.json`), then `index.json` and, on a server, `listpeers.json`;
//! archived as `<output>.tar.gz` unless `-archive=false`.
//!
//! Differences from Consul, said where they show: `pprof` is accepted as a
//! target but this build has no Go profiler, so it is dropped with a
//! warning; `-since` (Consul hands it to the separate hcdiag tool) is
//! refused. Secrets are redacted before anything is written: JSON fields
//! whose names say token, secret or key material, and the token the
//! command itself used wherever it appears (also in the log).

use super::HttpFlags;
use clap::Args;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_DURATION: Duration = Duration::from_secs(120);
/// Added to the duration so the last interval still lands inside it.
const DURATION_GRACE: Duration = Duration::from_secs(2);
const MIN_INTERVAL: Duration = Duration::from_secs(5);
const MIN_DURATION: Duration = Duration::from_secs(10);
const ARCHIVE_EXTENSION: &str = ".tar.gz";
/// The bundle format version (`index.json` `Version`), as Consul's.
const PROTOCOL_VERSION: u32 = 1;

const TARGET_METRICS: &str = "metrics";
const TARGET_LOGS: &str = "logs";
const TARGET_PPROF: &str = "pprof";
const TARGET_HOST: &str = "host";
const TARGET_AGENT: &str = "agent";
const TARGET_MEMBERS: &str = "members";
/// The old name of `members`.
const TARGET_CLUSTER: &str = "cluster";
const DEFAULT_TARGETS: &[&str] =
    &[TARGET_METRICS, TARGET_LOGS, TARGET_PPROF, TARGET_HOST, TARGET_AGENT, TARGET_MEMBERS];

const REDACTED: &str = "hidden";

#[derive(Args, Debug)]
pub struct DebugArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(
        long = "capture",
        help = "One or more types of information to capture (metrics, logs, pprof, host, agent, members). Can be repeated; defaults to everything available."
    )]
    pub capture: Vec<String>,
    #[arg(
        long = "interval",
        help = "The interval in which to capture dynamic information such as telemetry. Defaults to 30s."
    )]
    pub interval: Option<String>,
    #[arg(long = "duration", help = "The total time to record information. Defaults to 2m0s.")]
    pub duration: Option<String>,
    #[arg(long = "archive", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Whether to archive and compress the files (default true).")]
    pub archive: Option<bool>,
    #[arg(long = "output", help = "The path of the archive (without .tar.gz) to create.")]
    pub output: Option<String>,
    #[arg(
        long = "since",
        help = "Collect information from this far in the past (not supported by this build)."
    )]
    pub since: Option<String>,
    /// Consul rejects positional arguments with its own text.
    #[arg(hide = true)]
    pub rest: Vec<String>,
}

/// Consul's prefixed UI: output `==> `, info four spaces, errors `==> `.
fn output(msg: &str) {
    println!("==> {msg}");
}
fn info(msg: &str) {
    println!("    {msg}");
}
fn error(msg: &str) {
    eprintln!("==> {msg}");
}

/// Go's `time.Time.String()` of a UTC instant, as Consul prints it.
fn go_time(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:09} +0000 UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Consul's default output name: `consul-debug-2006-01-02T15-04-05Z`.
fn default_output(t: time::OffsetDateTime) -> String {
    format!(
        "consul-debug-{:04}-{:02}-{:02}T{:02}-{:02}-{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn parse_duration(flag: &str, v: &Option<String>, default: Duration) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(s) => {
            crate::duration::parse(s).map_err(|e| format!("invalid value {s:?} for flag -{flag}: {e}"))
        }
    }
}

pub fn run(a: DebugArgs) -> i32 {
    if !a.rest.is_empty() {
        error("debug: Too many arguments provided, expected 0");
        return 1;
    }
    if a.since.as_deref().is_some_and(|s| !s.is_empty()) {
        error("-since is not supported by this build: Consul runs the separate hcdiag tool for it");
        return 1;
    }
    let interval = match parse_duration("interval", &a.interval, DEFAULT_INTERVAL) {
        Ok(d) => d,
        Err(e) => {
            error(&format!("Error parsing flags: {e}"));
            return 1;
        }
    };
    let duration = match parse_duration("duration", &a.duration, DEFAULT_DURATION) {
        Ok(d) => d,
        Err(e) => {
            error(&format!("Error parsing flags: {e}"));
            return 1;
        }
    };
    super::block_on(async move {
        let client = match a.http.client() {
            Ok(c) => c,
            Err(e) => {
                error(&format!("Error connecting to Consul agent: {e}"));
                return 1;
            }
        };
        let token = a.http.client_config().ok().and_then(|c| c.token).filter(|t| !t.is_empty());
        let now = time::OffsetDateTime::now_utc();
        let output_base = a.output.clone().unwrap_or_else(|| default_output(now));
        let mut run = Debug {
            client,
            token,
            interval,
            duration,
            output: PathBuf::from(&output_base),
            capture: a.capture.clone(),
        };
        let version = match run.prepare().await {
            Ok(v) => v,
            Err(e) => {
                error(&format!("Capture validation failed: {e}"));
                return 1;
            }
        };
        let archive = a.archive.unwrap_or(true);
        let shown_name =
            if archive { format!("{output_base}{ARCHIVE_EXTENSION}") } else { output_base.clone() };
        output("Starting debugger and capturing static information...");
        info(&format!(" Agent Version: '{version}'"));
        info(&format!("      Interval: '{}'", crate::duration::format(interval)));
        info(&format!("      Duration: '{}'", crate::duration::format(duration)));
        info(&format!("        Output: '{shown_name}'"));
        info(&format!("       Capture: '{}'", run.capture.join(", ")));
        run.duration += DURATION_GRACE;

        if let Err(e) = run.capture_static().await {
            error(&format!("Static capture failed: {e}"));
        }
        if run.wants(TARGET_METRICS) || run.wants(TARGET_LOGS) {
            if let Err(e) = run.capture_dynamic().await {
                error(&format!("Error encountered during collection: {e}"));
            }
        }
        let index = json!({
            "Version": PROTOCOL_VERSION,
            "AgentVersion": version,
            "Interval": crate::duration::format(run.interval),
            "Duration": crate::duration::format(run.duration),
            "Targets": run.capture,
        });
        if let Err(e) = run.write_json("index.json", &index) {
            error(&format!("Error creating index document: {e}"));
            return 1;
        }
        if let Err(e) = run.capture_raft().await {
            error(&format!("Raft list peers capture failed: {e}"));
        }
        if archive {
            if let Err(e) = create_archive(&run.output) {
                error(&format!("Archive creation failed: {e}"));
                return 1;
            }
        }
        info(&format!("Saved debug archive: {shown_name}"));
        0
    })
}

struct Debug {
    client: crate::api::Client,
    token: Option<String>,
    interval: Duration,
    duration: Duration,
    output: PathBuf,
    capture: Vec<String>,
}

impl Debug {
    fn wants(&self, target: &str) -> bool {
        self.capture.iter().any(|t| t == target || (target == TARGET_MEMBERS && t == TARGET_CLUSTER))
    }

    /// Checks the timing flags and the targets, reads the agent's version
    /// and creates the output directory (which must not exist yet).
    async fn prepare(&mut self) -> Result<String, String> {
        if self.duration < MIN_DURATION {
            return Err(format!("duration must be longer than {}", crate::duration::format(MIN_DURATION)));
        }
        if self.interval < MIN_INTERVAL {
            // Consul's text names the minimum duration here too.
            return Err(format!("interval must be longer than {}", crate::duration::format(MIN_DURATION)));
        }
        if self.duration < self.interval {
            return Err(format!(
                "duration ({}) must be longer than interval ({})",
                crate::duration::format(self.duration),
                crate::duration::format(self.interval)
            ));
        }
        let me = self.get_json("/v1/agent/self").await.map_err(|e| {
            format!("error querying target agent: {e}. verify connectivity and agent address")
        })?;
        let version =
            me["Config"]["Version"].as_str().ok_or("agent response did not contain version key")?.to_string();
        if self.capture.is_empty() {
            self.capture = DEFAULT_TARGETS.iter().map(|t| t.to_string()).collect();
        }
        if self.capture.iter().any(|t| t == TARGET_PPROF) {
            self.capture.retain(|t| t != TARGET_PPROF);
            error("[WARN] Unable to capture pprof: profiling is not available in this build.");
        }
        for t in &self.capture {
            if !DEFAULT_TARGETS.contains(&t.as_str()) && t != TARGET_CLUSTER {
                return Err(format!("target not found: {t}"));
            }
        }
        if self.output.exists() {
            return Err(format!("output directory already exists: {}", self.output.display()));
        }
        std::fs::create_dir_all(&self.output)
            .map_err(|e| format!("could not create output directory: {e}"))?;
        Ok(version)
    }

    async fn get_json(&self, path: &str) -> Result<Value, String> {
        self.client.call(Method::GET, path, None).await?.json::<Value>()
    }

    fn redact_text(&self, text: &str) -> String {
        match &self.token {
            Some(t) => text.replace(t.as_str(), REDACTED),
            None => text.to_string(),
        }
    }

    /// Writes `value` (redacted) as `name` in the output directory, indented
    /// with tabs as Consul's files are.
    fn write_json(&self, name: &str, value: &Value) -> Result<(), String> {
        let mut v = value.clone();
        redact(&mut v);
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        serde::Serialize::serialize(&v, &mut ser).map_err(|e| e.to_string())?;
        let text = self.redact_text(&String::from_utf8_lossy(&buf));
        std::fs::write(self.output.join(name), text).map_err(|e| format!("writing {name}: {e}"))
    }

    async fn capture_static(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        for (target, path) in [
            (TARGET_HOST, "/v1/agent/host"),
            (TARGET_AGENT, "/v1/agent/self"),
            (TARGET_MEMBERS, "/v1/agent/members?wan=1"),
        ] {
            if !self.wants(target) {
                continue;
            }
            let got = match self.get_json(path).await {
                // Consul records the WAN pool; an agent that cannot answer
                // for it (a client) still has its LAN members to show.
                Err(e) if target == TARGET_MEMBERS => {
                    error(&format!("[WARN] WAN members unavailable ({e}); recording LAN members"));
                    self.get_json("/v1/agent/members").await
                }
                other => other,
            };
            match got {
                Ok(v) => {
                    if let Err(e) = self.write_json(&format!("{target}.json"), &v) {
                        errs.push(e);
                    }
                }
                Err(e) => errs.push(e),
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }

    /// Logs for the whole duration, a metrics snapshot every interval (the
    /// first at once), one progress line per interval.
    async fn capture_dynamic(&self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + self.duration;
        let logs = async {
            if self.wants(TARGET_LOGS) {
                self.capture_logs(deadline).await
            } else {
                Ok(())
            }
        };
        let intervals = async {
            let start = Instant::now();
            let mut count = 0u64;
            output(&format!(
                "Beginning capture interval {} ({count})",
                go_time(time::OffsetDateTime::now_utc())
            ));
            loop {
                if self.wants(TARGET_METRICS) {
                    self.capture_metrics().await?;
                }
                output(&format!("Capture successful {} ({count})", go_time(time::OffsetDateTime::now_utc())));
                count += 1;
                let next = start + self.interval * count as u32;
                if tokio::time::Instant::from_std(next) >= deadline {
                    tokio::select! {
                        _ = tokio::time::sleep_until(deadline) => return Ok::<(), String>(()),
                        _ = tokio::signal::ctrl_c() => return Err("stopping collection due to shutdown signal".into()),
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(tokio::time::Instant::from_std(next)) => {}
                    _ = tokio::signal::ctrl_c() => return Err("stopping collection due to shutdown signal".into()),
                }
            }
        };
        let (l, i) = tokio::join!(logs, intervals);
        l.and(i)
    }

    async fn capture_metrics(&self) -> Result<(), String> {
        let v = self.get_json("/v1/agent/metrics").await?;
        let mut v = v;
        redact(&mut v);
        let line = self.redact_text(&v.to_string());
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.output.join("metrics.json"))
            .map_err(|e| format!("failed to create metrics file: {e}"))?;
        writeln!(f, "{line}").map_err(|e| format!("failed to write metrics file: {e}"))
    }

    async fn capture_logs(&self, deadline: tokio::time::Instant) -> Result<(), String> {
        let mut body = self.client.stream("/v1/agent/monitor?loglevel=TRACE").await?;
        let mut f = std::fs::File::create(self.output.join("consul.log")).map_err(|e| e.to_string())?;
        let mut partial: Vec<u8> = Vec::new();
        loop {
            let frame = tokio::select! {
                f = body.frame() => f,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| e.to_string())?;
            let Some(data) = frame.data_ref() else { continue };
            partial.extend_from_slice(data);
            while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=pos).collect();
                let text = self.redact_text(&String::from_utf8_lossy(&line));
                f.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
            }
        }
        if !partial.is_empty() {
            let text = self.redact_text(&String::from_utf8_lossy(&partial));
            f.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// `listpeers.json`: the Raft configuration as `consul operator raft
    /// list-peers` shows it (servers only; a client's agent answers 500).
    async fn capture_raft(&self) -> Result<(), String> {
        let v = self
            .get_json("/v1/operator/raft/configuration")
            .await
            .map_err(|e| format!("Failed to retrieve raft configuration: {e}"))?;
        let servers = v["Servers"].as_array().cloned().unwrap_or_default();
        let leader_index = servers
            .iter()
            .find(|s| s["Leader"].as_bool() == Some(true))
            .and_then(|s| s["LastIndex"].as_u64())
            .unwrap_or(0);
        let mut rows = vec![[
            "Node",
            "ID",
            "Address",
            "State",
            "Voter",
            "RaftProtocol",
            "Commit Index",
            "Trails Leader By",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
        for s in &servers {
            let leader = s["Leader"].as_bool() == Some(true);
            let last = s["LastIndex"].as_u64().unwrap_or(0);
            let trails = if leader {
                "-".to_string()
            } else {
                let by = leader_index.saturating_sub(last);
                if by == 1 {
                    "1 commit".to_string()
                } else {
                    format!("{by} commits")
                }
            };
            let proto = s["ProtocolVersion"].as_str().filter(|p| !p.is_empty()).unwrap_or("<=1");
            rows.push(vec![
                s["Node"].as_str().unwrap_or("").to_string(),
                s["ID"].as_str().unwrap_or("").to_string(),
                s["Address"].as_str().unwrap_or("").to_string(),
                if leader { "leader" } else { "follower" }.to_string(),
                s["Voter"].as_bool().unwrap_or(false).to_string(),
                proto.to_string(),
                last.to_string(),
                trails,
            ]);
        }
        let text = super::columnize::format(&rows);
        std::fs::write(self.output.join("listpeers.json"), self.redact_text(&text))
            .map_err(|e| format!("failed to create listpeers file: {e}"))
    }
}

/// Whether a JSON field name names secret material.
fn secret_key(k: &str) -> bool {
    let l = k.to_ascii_lowercase();
    l.contains("token")
        || l.contains("secret")
        || l == "encrypt"
        || l.ends_with("privatekey")
        || l.ends_with("private_key")
}

/// Replaces the values of secret-named fields (non-empty strings, and
/// whole objects/arrays of them) with `hidden`.
fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if secret_key(k) {
                    hide(child);
                } else {
                    redact(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn hide(v: &mut Value) {
    match v {
        Value::String(s) if !s.is_empty() => *s = REDACTED.to_string(),
        Value::Object(m) => m.values_mut().for_each(hide),
        Value::Array(items) => items.iter_mut().for_each(hide),
        _ => {}
    }
}

/// Writes `<dir>.tar.gz` (entries under the directory's base name) through a
/// temporary file renamed into place, then removes the directory.
fn create_archive(dir: &Path) -> Result<(), String> {
    let base = dir.file_name().ok_or("output path has no file name")?.to_string_lossy().to_string();
    let target = PathBuf::from(format!("{}{ARCHIVE_EXTENSION}", dir.display()));
    let tmp = PathBuf::from(format!("{}.tmp", target.display()));
    let write = || -> Result<(), String> {
        let f = std::fs::File::create(&tmp)
            .map_err(|e| format!("failed to create compressed temp archive: {e}"))?;
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.append_dir_all(&base, dir).map_err(|e| format!("failed to walk output path for archive: {e}"))?;
        let gz = tar.into_inner().map_err(|e| e.to_string())?;
        let f = gz.finish().map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &target).map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(dir).map_err(|e| format!("failed to remove archived directory: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_secret_fields_only() {
        let mut v = json!({
            "Config": {"NodeName": "n1", "Token": "s3cret"},
            "DebugConfig": {"ACLTokens": {"Default": "abc", "Agent": ""}, "Encrypt": "k=="},
            "Members": [{"Name": "n1"}],
        });
        redact(&mut v);
        assert_eq!(v["Config"]["NodeName"], "n1");
        assert_eq!(v["Config"]["Token"], REDACTED);
        assert_eq!(v["DebugConfig"]["ACLTokens"]["Default"], REDACTED);
        assert_eq!(v["DebugConfig"]["ACLTokens"]["Agent"], "");
        assert_eq!(v["DebugConfig"]["Encrypt"], REDACTED);
    }

    #[test]
    fn names_and_times_look_like_consuls() {
        let t = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(default_output(t), "consul-debug-2023-11-14T22-13-20Z");
        assert_eq!(go_time(t), "2023-11-14 22:13:20.000000000 +0000 UTC");
    }
}
