//! Commands run in a process group of their own, so that a timeout or a
//! caller that went away can kill everything the command started (a
//! shell's pipeline, its background jobs), not only the process we
//! spawned. Used by script checks (`checks::script`) and remote exec
//! (`agent::exec`).
//!
//! Owns: the shell choice for a command string, spawning (own group, stdin
//! on /dev/null, stdout and stderr on one pipe) and the group kill. Must
//! not decide when to kill: callers own their timeouts and log failures
//! in their own words.

use std::io;
use std::process::Stdio;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

/// `<shell> -c <command>`, the shell being the given one, else `$SHELL`,
/// else `/bin/sh` (Consul's rule).
pub fn shell_args(command: &str, shell: Option<&str>) -> Vec<String> {
    let shell = match shell.filter(|s| !s.is_empty()) {
        Some(s) => s.to_string(),
        None => {
            std::env::var("SHELL").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".to_string())
        }
    };
    vec![shell, "-c".to_string(), command.to_string()]
}

/// Starts `program` as the leader of a new process group, with stdin on
/// /dev/null and stdout and stderr on the returned pipe. Dropping the
/// child kills it (`kill_on_drop`); the rest of its group only `kill`
/// reaches.
pub fn spawn(program: &str, args: &[String]) -> io::Result<(Child, pipe::Receiver)> {
    // One pipe for both streams keeps their interleaving as the command
    // wrote it (like `2>&1`).
    let (sender, receiver) = pipe::pipe()?;
    let stdout = sender.into_blocking_fd()?;
    let stderr = stdout.try_clone()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn()?;
    // Dropping the command closes our copies of the pipe's write end, so
    // the read side sees EOF once the command's group is done with it.
    drop(cmd);
    Ok((child, receiver))
}

/// The process group `child` leads (`spawn` makes its pid the group id),
/// while it has not been reaped.
pub fn group_of(child: &Child) -> Option<i32> {
    child.id().and_then(|p| i32::try_from(p).ok())
}

/// SIGKILLs every process in group `pgid`. A group that is already gone
/// is not an error. Does nothing for `pgid <= 1`: no group `spawn`
/// creates has such an id, and `kill(-1)` would signal every process we
/// may signal.
pub fn kill(pgid: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Ok(());
    }
    // SAFETY: kill(2) has no memory effects; a negative pid addresses the
    // process group `spawn` created with process_group(0).
    let rc = unsafe { libc::kill(-pgid, libc::SIGKILL) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_choice() {
        assert_eq!(shell_args("echo hi", Some("/bin/bash")), ["/bin/bash", "-c", "echo hi"]);
        let default = shell_args("echo hi", Some(""));
        assert_eq!(&default[1..], ["-c", "echo hi"]);
        assert!(!default[0].is_empty());
    }

    #[test]
    fn ids_no_spawned_group_has_are_left_alone() {
        assert!(kill(0).is_ok());
        assert!(kill(1).is_ok());
        assert!(kill(-5).is_ok());
    }

    #[tokio::test]
    async fn kill_reaches_the_whole_group() {
        use tokio::io::AsyncReadExt;
        // The background sleep holds the pipe too: it reads EOF only once
        // the whole group is dead.
        let args = ["-c".to_string(), "sleep 60 & echo started; wait".to_string()];
        let (mut child, mut out) = spawn("/bin/sh", &args).unwrap();
        let pgid = group_of(&child).unwrap();
        let mut line = [0u8; 8];
        out.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"started\n");
        kill(pgid).unwrap();
        assert!(!child.wait().await.unwrap().success());
        let mut rest = Vec::new();
        let eof = tokio::time::timeout(std::time::Duration::from_secs(10), out.read_to_end(&mut rest)).await;
        assert!(eof.is_ok(), "the background child outlived the group kill");
    }
}
