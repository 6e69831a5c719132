//! Remote execution on this agent (`consul exec`), started by an accepted
//! `_rexec` user event when `disable_remote_exec` is false.
//!
//! Reads the job spec from KV (stale read first, then a consistent one),
//! acknowledges, runs the command through `$SHELL -c` (else `/bin/sh -c`),
//! or the argv directly, or a script spilled to a temporary file, and
//! streams its output back into KV in chunks of up to 4 KiB (flushed after
//! 500 ms of quiet, an empty chunk as heartbeat after the job's wait
//! without output), then writes the exit code. Keys and shapes are in
//! `event::rexec`.
//!
//! Unlike Consul, the command's process group is killed if its results
//! can no longer be written (the CLI went away and its session with it)
//! or the agent shuts down, so no orphan keeps running unobserved.
//!
//! Owns the child process and the result keys. Must not decide whether
//! remote exec is allowed (the event dispatcher checks the config).

use super::Agent;
use crate::catalog::Command;
use crate::event::rexec::{self, ExecEvent, JobSpec};
use crate::event::UserEvent;
use crate::proc_group;
use crate::rpc::{method, Consistency, QueryOptions, RequestContext, RpcError};
use bytes::Bytes;
use std::io;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// The largest output chunk written to one key.
const OUTPUT_CHUNK: usize = 4 * 1024;
/// Buffered output is written after this long without new output.
const OUTPUT_IDLE: Duration = Duration::from_millis(500);
/// Heartbeat interval when a spec carries no usable wait.
const DEFAULT_WAIT: Duration = Duration::from_secs(2);
/// The exit code reported when the command could not run.
const FAILED: i32 = 255;

/// Why a job's results could not be written (logged; the job then stops).
#[derive(Debug, thiserror::Error)]
enum ExecError {
    /// Our session lost the key: the CLI's session ended.
    #[error("write of {key} failed: the lock is held by another session")]
    LockHeld { key: String },
    #[error("write of {key} failed: {source}")]
    Write { key: String, source: RpcError },
    #[error("agent is shutting down")]
    ShuttingDown,
}

/// Handles one accepted `_rexec` event from start to exit code.
pub async fn run(agent: Agent, ev: UserEvent) {
    tracing::debug!(target: "agent", event_id = %ev.id, "received remote exec event");
    let job: ExecEvent = match serde_json::from_slice(ev.payload.as_deref().unwrap_or_default()) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(target: "agent", event_id = %ev.id, error = %e, "failed to decode remote exec event");
            return;
        }
    };
    if job.session.is_empty() {
        tracing::error!(target: "agent", event_id = %ev.id, "remote exec event names no session");
        return;
    }
    let Some(spec) = get_spec(&agent, &job).await else { return };
    if let Err(e) = write_key(&agent, &job, rexec::ACK, Bytes::new()).await {
        tracing::error!(target: "agent", error = %e, "failed to ack remote exec job");
        return;
    }
    let code = execute(&agent, &job, &spec).await;
    if let Err(e) = write_key(&agent, &job, rexec::EXIT, Bytes::from(code.to_string())).await {
        tracing::error!(target: "agent", error = %e, "failed to write exit code for remote exec job");
    }
}

async fn get_spec(agent: &Agent, job: &ExecEvent) -> Option<JobSpec> {
    let key = rexec::job_key(&job.prefix, &job.session);
    // A stale read scales; the CLI waits for replication before firing, and
    // a miss is retried as a consistent read.
    for consistency in [Consistency::Stale, Consistency::Default] {
        let opts = QueryOptions { consistency, ..Default::default() };
        match agent
            .call(RequestContext { query: opts, ..agent.own_context() }, method::KvGet { key: key.clone() })
            .await
        {
            Ok((_, Some(entry))) => {
                return match serde_json::from_slice(&entry.value) {
                    Ok(spec) => Some(spec),
                    Err(e) => {
                        tracing::error!(target: "agent", key = %key, error = %e, "failed to decode remote exec spec");
                        None
                    }
                };
            }
            Ok((_, None)) => {
                tracing::debug!(target: "agent", key = %key, ?consistency, "remote exec job spec not found")
            }
            Err(e) => {
                tracing::error!(target: "agent", key = %key, error = %e, "failed to get remote exec job");
                return None;
            }
        }
    }
    tracing::debug!(target: "agent", key = %key, "remote exec aborted, job spec missing");
    None
}

/// Writes `<prefix>/<session>/<node>/<suffix>` holding the job's session.
async fn write_key(agent: &Agent, job: &ExecEvent, suffix: &str, value: Bytes) -> Result<(), ExecError> {
    let key = rexec::node_key(&job.prefix, &job.session, &agent.node_name(), suffix);
    let cmd = Command::KvLock { key: key.clone(), value, flags: 0, session: job.session.clone() };
    match agent.call(agent.own_context(), method::KvApply { command: cmd }).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ExecError::LockHeld { key }),
        Err(source) => Err(ExecError::Write { key, source }),
    }
}

/// Removes the spilled script when the run ends, however it ends.
struct TempScript(std::path::PathBuf);

impl Drop for TempScript {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn spill_script(script: &[u8]) -> io::Result<TempScript> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::env::temp_dir().join(format!("rexec{}", uuid::Uuid::new_v4().simple()));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o750).open(&path)?;
    let guard = TempScript(path);
    f.write_all(script)?;
    f.sync_all()?;
    Ok(guard)
}

/// Runs the job and streams its output; returns the exit code to report.
async fn execute(agent: &Agent, job: &ExecEvent, spec: &JobSpec) -> i32 {
    let mut _script = None;
    let argv = if !spec.script.is_empty() {
        match spill_script(&spec.script) {
            Ok(t) => {
                let argv = proc_group::shell_args(&t.0.to_string_lossy(), None);
                _script = Some(t);
                argv
            }
            Err(e) => {
                tracing::error!(target: "agent", error = %e, "failed to write the remote exec script to a temporary file");
                return FAILED;
            }
        }
    } else if !spec.args.is_empty() {
        spec.args.clone()
    } else {
        proc_group::shell_args(&spec.command, None)
    };
    tracing::info!(target: "agent", command = %argv.join(" "), "remote exec");
    let spawned = match argv.split_first() {
        Some((program, args)) => proc_group::spawn(program, args),
        None => Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command")),
    };
    let (mut child, mut pipe) = match spawned {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(target: "agent", error = %e, "failed to start remote exec");
            return FAILED;
        }
    };
    let pgid = proc_group::group_of(&child);
    let wait = if spec.wait.is_zero() { DEFAULT_WAIT } else { spec.wait };
    let streamed = stream_output(agent, job, &mut pipe, wait).await;
    if let Err(e) = streamed {
        tracing::error!(target: "agent", error = %e, "stopping remote exec: its output cannot be delivered");
        if let Some(pgid) = pgid {
            if let Err(err) = proc_group::kill(pgid) {
                tracing::warn!(target: "agent", pgid, error = %err, "failed to kill remote exec process group");
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        return FAILED;
    }
    match child.wait().await {
        Ok(status) => exit_code(status),
        Err(e) => {
            tracing::error!(target: "agent", error = %e, "failed to wait for the remote exec process");
            FAILED
        }
    }
}

/// Go's `WaitStatus.ExitStatus()`: the code, or -1 when killed by a signal.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    status.code().unwrap_or(-1)
}

/// Writes output chunk `num` (empty: a heartbeat) and advances `num`.
async fn upload(agent: &Agent, job: &ExecEvent, num: &mut u32, data: Vec<u8>) -> Result<(), ExecError> {
    write_key(agent, job, &rexec::output_suffix(*num), Bytes::from(data)).await?;
    *num = num.wrapping_add(1);
    Ok(())
}

/// Reads the pipe until EOF, writing chunks and heartbeats to KV. Fails
/// when a write fails or the agent shuts down.
async fn stream_output(
    agent: &Agent,
    job: &ExecEvent,
    pipe: &mut tokio::net::unix::pipe::Receiver,
    wait: Duration,
) -> Result<(), ExecError> {
    let shutdown = agent.shutdown_token();
    let mut pending: Vec<u8> = Vec::with_capacity(OUTPUT_CHUNK);
    let mut buf = vec![0u8; 8192];
    let mut num: u32 = 0;
    let mut last_output = Instant::now();
    let mut last_upload = Instant::now();
    loop {
        let flush_at = (!pending.is_empty()).then(|| last_output + OUTPUT_IDLE);
        let heartbeat_at = last_upload + wait;
        tokio::select! {
            r = pipe.read(&mut buf) => match r {
                Ok(0) => break,
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    last_output = Instant::now();
                    while pending.len() >= OUTPUT_CHUNK {
                        let chunk: Vec<u8> = pending.drain(..OUTPUT_CHUNK).collect();
                        upload(agent, job, &mut num, chunk).await?;
                        last_upload = Instant::now();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(target: "agent", error = %e, "failed to read remote exec output");
                    break;
                }
            },
            _ = tokio::time::sleep_until(flush_at.unwrap_or(heartbeat_at)), if flush_at.is_some() => {
                upload(agent, job, &mut num, std::mem::take(&mut pending)).await?;
                last_upload = Instant::now();
            }
            _ = tokio::time::sleep_until(heartbeat_at) => {
                upload(agent, job, &mut num, Vec::new()).await?;
                last_upload = Instant::now();
            }
            _ = shutdown.cancelled() => return Err(ExecError::ShuttingDown),
        }
    }
    if !pending.is_empty() {
        upload(agent, job, &mut num, pending).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log lines' `error` field, word for word.
    #[test]
    fn messages() {
        assert_eq!(
            ExecError::LockHeld { key: "_rexec/s/n/exit".into() }.to_string(),
            "write of _rexec/s/n/exit failed: the lock is held by another session"
        );
        assert_eq!(ExecError::ShuttingDown.to_string(), "agent is shutting down");
    }

    #[test]
    fn shell_and_exit_codes() {
        let argv = proc_group::shell_args("echo hi", None);
        assert_eq!(&argv[1..], &["-c".to_string(), "echo hi".to_string()]);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(9)), -1, "killed by SIGKILL");
    }

    #[test]
    fn spilled_script_is_executable_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let t = spill_script(b"#!/bin/sh\necho x\n").unwrap();
        let path = t.0.clone();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o700, 0o700, "owner may run it");
        assert_eq!(mode & 0o007, 0, "others may not touch it");
        assert_eq!(std::fs::read(&path).unwrap(), b"#!/bin/sh\necho x\n");
        drop(t);
        assert!(!path.exists());
    }
}
