//! Script checks (`args`, and the legacy shell `script`): one run of one
//! command. Owns the child process: spawns it in its own process group
//! with stdin on /dev/null and stdout+stderr on one pipe (`proc_group`),
//! enforces the timeout by SIGKILLing the whole group, and maps the exit
//! to a status.
//! Must not decide whether scripts are allowed (the agent's gate does).

use super::neterr;
use super::output::TailBuffer;
use super::spec::Status;
use crate::proc_group;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::Child;
use tokio::time::Instant;

/// How long to wait for a killed group's leader to be reaped before the
/// result is reported anyway (a process stuck in the kernel can take long).
const REAP_GRACE: Duration = Duration::from_secs(5);

/// Kills the process group when dropped, unless disarmed: a cancelled or
/// timed-out run must not leave the script's children behind.
struct GroupKiller {
    pgid: Option<i32>,
}

impl GroupKiller {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            if let Err(err) = proc_group::kill(pgid) {
                tracing::warn!(target: "agent", pgid, error = %err, "failed to kill check process group");
            }
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `args` once; returns the status and the output to report.
pub(crate) async fn run(args: &[String], timeout: Duration, max_output: usize) -> (Status, String) {
    let Some((program, rest)) = args.split_first() else {
        return (Status::Critical, "exec: no command".to_string());
    };
    let deadline = Instant::now() + timeout;
    let (mut child, mut pipe) = match proc_group::spawn(program, rest) {
        Ok(spawned) => spawned,
        Err(e) => {
            tracing::error!(target: "agent", program = %program, error = %e, "check failed to invoke");
            return (Status::Critical, spawn_error(program, &e));
        }
    };
    let mut killer = GroupKiller { pgid: proc_group::group_of(&child) };
    let mut output = TailBuffer::new(max_output);

    let finished = tokio::time::timeout_at(deadline, wait_and_read(&mut child, &mut pipe, &mut output)).await;
    match finished {
        Ok(Ok(status)) => {
            // The group may hold leftover background processes; Consul
            // leaves those alone after a normal exit, and so do we.
            killer.pgid = None;
            (exit_to_status(status), output.script_output())
        }
        Ok(Err(e)) => {
            killer.kill();
            reap(&mut child).await;
            (Status::Critical, format!("failed to wait for check process: {e}"))
        }
        Err(_elapsed) => {
            killer.kill();
            reap(&mut child).await;
            // Anything still buffered in the pipe came before the kill.
            drain(&mut pipe, &mut output).await;
            metric_timeout();
            let mut msg = format!("Timed out ({}) running check", crate::duration::format(timeout));
            let captured = output.script_output();
            if !captured.is_empty() {
                msg.push_str("\n\n");
                msg.push_str(&captured);
            }
            (Status::Critical, msg)
        }
    }
}

fn metric_timeout() {
    crate::metrics::incr("consul.checks.script.timeouts", 1);
}

async fn wait_and_read(
    child: &mut Child,
    pipe: &mut tokio::net::unix::pipe::Receiver,
    output: &mut TailBuffer,
) -> io::Result<ExitStatus> {
    let read = async {
        let mut buf = vec![0u8; 8192];
        loop {
            match pipe.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => output.write(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!(target: "agent", error = %e, "failed to read check output");
                    return;
                }
            }
        }
    };
    // Both must finish: a background child holding the pipe keeps the run
    // going until it exits or the timeout kills the group (as in Consul).
    let ((), status) = tokio::join!(read, child.wait());
    status
}

/// Reads what is left in the pipe without waiting for writers.
async fn drain(pipe: &mut tokio::net::unix::pipe::Receiver, output: &mut TailBuffer) {
    let mut buf = vec![0u8; 8192];
    loop {
        match pipe.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => output.write(&buf[..n]),
            Err(_) => return,
        }
    }
}

async fn reap(child: &mut Child) {
    if tokio::time::timeout(REAP_GRACE, child.wait()).await.is_err() {
        // kill_on_drop hands it to tokio's orphan reaper.
        tracing::warn!(target: "agent", pid = ?child.id(), "check process did not exit after SIGKILL");
    }
}

fn exit_to_status(status: ExitStatus) -> Status {
    match status.code() {
        Some(0) => Status::Passing,
        Some(1) => Status::Warning,
        // Other codes, and death by signal (no code).
        _ => Status::Critical,
    }
}

/// Go's wording for a command that cannot start.
fn spawn_error(program: &str, err: &io::Error) -> String {
    if !program.contains('/') && err.kind() == io::ErrorKind::NotFound {
        format!("exec: {program:?}: executable file not found in $PATH")
    } else {
        format!("fork/exec {program}: {}", neterr::reason(err))
    }
}
