//! Child processes that cannot outlive their test. `spawn` starts a
//! command as the leader of a process group of its own; `Proc` kills that
//! whole group and reaps the child when it is dropped, also while a test
//! panics. The group matters when the child starts processes of its own:
//! killing `strace` alone leaves the agent it traces running, orphaned.

use std::io::{self, Read};
use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output};

/// A child process leading its own process group; see the module doc.
/// Derefs to the `Child` for everything else (pid, pipes, `try_wait`).
pub struct Proc {
    child: Child,
}

/// Starts `cmd` in a new process group whose id is the child's pid.
pub fn spawn(cmd: &mut Command) -> io::Result<Proc> {
    let child = cmd.process_group(0).spawn()?;
    Ok(Proc { child })
}

impl Proc {
    /// SIGKILL to every process of the group (the child included). Only
    /// while the child is not reaped yet: until then its pid, and so the
    /// group id, cannot be given to another process. Once it is reaped
    /// (`wait`, `try_wait`, `wait_exit`) the id may be reused (pid_max can
    /// be as small as 32768) by another process group, perhaps not ours,
    /// so nothing is sent.
    pub fn kill_group(&mut self) {
        if !self.unreaped() {
            return;
        }
        let Ok(pgid) = i32::try_from(self.child.id()) else { return };
        // SAFETY: kill(2) on the process group this child leads; the child
        // is not reaped, so the id is still its own.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }

    /// Whether the child is running or a zombie, i.e. not reaped: asked
    /// with `WNOWAIT`, so asking reaps nothing.
    fn unreaped(&self) -> bool {
        // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid(2) writes only into `info`; WNOWAIT leaves the
        // child waitable for `Child::wait`.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                self.child.id(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        rc == 0
    }

    /// Kills the group and waits for the child to exit.
    pub fn kill_and_reap(&mut self) {
        self.kill_group();
        let _ = self.child.wait();
    }

    /// `Child::wait_with_output` (which needs to own the `Child`): reads
    /// stdout and stderr to their end, then waits for the exit.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut buf);
                }
                buf
            })
        }
        drop(self.child.stdin.take());
        let out = drain(self.child.stdout.take());
        let err = drain(self.child.stderr.take());
        let status = self.child.wait()?;
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        Ok(Output { status, stdout, stderr })
    }
}

impl Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}
