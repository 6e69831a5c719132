//! The child `consul lock` runs while it holds the lock: started through
//! the shell or directly, with `CONSUL_LOCK_HELD=true`, the terminal as its
//! output and stdin only with `-pass-stdin`. Unless it needs the terminal's
//! input it gets its own process group, so stopping it also stops anything
//! it started (a shell's children would otherwise keep running after the
//! lock is gone). On Linux the child also gets SIGTERM if `consul lock`
//! itself dies.

use super::LockError;
use crate::watch::script::HandlerCommand;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::Child;

pub struct LockChild {
    child: Child,
    pid: i32,
    /// Signals go to the whole process group.
    group: bool,
}

impl LockChild {
    pub fn start(args: &[String], shell: bool, pass_stdin: bool) -> Result<LockChild, LockError> {
        let spec =
            if shell { HandlerCommand::Shell(args.join(" ")) } else { HandlerCommand::Args(args.to_vec()) };
        let mut cmd = spec.command()?;
        cmd.env("CONSUL_LOCK_HELD", "true")
            .stdin(if pass_stdin { Stdio::inherit() } else { Stdio::null() })
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        // A background process group cannot read the terminal, so a child
        // given our stdin stays in our group.
        let group = !pass_stdin;
        if group {
            cmd.process_group(0);
        }
        #[cfg(target_os = "linux")]
        {
            // If `consul lock` itself dies (SIGKILL, OOM) nobody would stop
            // the child, which would go on running without the lock; ask
            // the kernel to send it SIGTERM when we are gone.
            // SAFETY: prctl(2) is async-signal-safe and touches no memory
            // shared with the parent.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().map_err(LockError::Spawn)?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).ok_or(LockError::Untracked)?;
        Ok(LockChild { child, pid, group })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig` to the child (and its group).
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        let target = if self.group { -self.pid } else { self.pid };
        // SAFETY: kill(2) touches no memory of ours; the target is the
        // child we started (or the process group it leads).
        let rc = unsafe { libc::kill(target, sig) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        // Already gone is fine.
        if err.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        Err(err)
    }

    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Waits at most `limit`; `None` if it is still running.
    pub async fn wait_for(&mut self, limit: Duration) -> Option<io::Result<ExitStatus>> {
        tokio::time::timeout(limit, self.wait()).await.ok()
    }
}
