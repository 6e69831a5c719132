//! Running handler commands: through a shell (`$SHELL -c`, else `/bin/sh`)
//! or directly from an argument list, with the watch's JSON on stdin and
//! `CONSUL_INDEX` in the environment. The agent keeps the last 4 KiB of a
//! handler's output for its log; `consul watch` lets it write to the
//! terminal. Also Go's wording for how a process ended, shared with
//! `consul lock`.

use super::http_handler::tail_text;
use super::WatchError;
use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// How much handler output the agent keeps.
const CAPTURE_LIMIT: usize = 4 * 1024;

/// A handler command as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandlerCommand {
    /// One string for the shell (legacy `handler`, CLI `-shell=true`).
    Shell(String),
    /// Program and arguments, no shell (`args`, CLI `-shell=false`).
    Args(Vec<String>),
}

impl HandlerCommand {
    /// The process to start; fails on an empty argument list.
    pub fn command(&self) -> Result<Command, WatchError> {
        match self {
            HandlerCommand::Shell(script) => {
                let shell =
                    std::env::var("SHELL").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "/bin/sh".into());
                let mut c = Command::new(shell);
                c.arg("-c").arg(script);
                Ok(c)
            }
            HandlerCommand::Args(args) => {
                let (program, rest) = args.split_first().ok_or(WatchError::NoCommand)?;
                let mut c = Command::new(program);
                c.args(rest);
                Ok(c)
            }
        }
    }

    /// How the handler is named in logs (Consul prints the value given).
    pub fn describe(&self) -> String {
        match self {
            HandlerCommand::Shell(s) => s.clone(),
            HandlerCommand::Args(a) => format!("{a:?}"),
        }
    }
}

/// Go's `*exec.ExitError` text for a status that is not success.
pub fn describe_exit(status: ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return None;
    }
    if let Some(code) = status.code() {
        return Some(format!("exit status {code}"));
    }
    let sig = status.signal().unwrap_or(0);
    let core = if status.core_dumped() { " (core dumped)" } else { "" };
    Some(format!("signal: {}{core}", signal_name(sig)))
}

/// Go's names for the common signals.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "hangup",
        libc::SIGINT => "interrupt",
        libc::SIGQUIT => "quit",
        libc::SIGILL => "illegal instruction",
        libc::SIGTRAP => "trace/breakpoint trap",
        libc::SIGABRT => "aborted",
        libc::SIGBUS => "bus error",
        libc::SIGFPE => "floating point exception",
        libc::SIGKILL => "killed",
        libc::SIGUSR1 => "user defined signal 1",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGUSR2 => "user defined signal 2",
        libc::SIGPIPE => "broken pipe",
        libc::SIGALRM => "alarm clock",
        libc::SIGTERM => "terminated",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// The end of a run whose output was captured.
#[derive(Debug)]
pub struct Captured {
    /// `None` on success, else Go's exit text or the spawn error.
    pub error: Option<String>,
    /// The last 4 KiB of stdout and stderr together.
    pub output: String,
}

/// Runs the handler with `input` on stdin, keeping the tail of its output
/// (the agent's way).
pub async fn run_captured(cmd: &HandlerCommand, index: u64, input: &[u8]) -> Captured {
    let mut command = match cmd.command() {
        Ok(c) => c,
        Err(e) => return Captured { error: Some(e.to_string()), output: String::new() },
    };
    command
        .env("CONSUL_INDEX", index.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return Captured { error: Some(e.to_string()), output: String::new() },
    };
    let tail = Mutex::new(Tail::default());
    let stdin = child.stdin.take();
    let feed = async move {
        if let Some(mut s) = stdin {
            // A handler that exits without reading its input is fine.
            let _ = s.write_all(input).await;
        }
    };
    let out = drain(child.stdout.take(), &tail);
    let err = drain(child.stderr.take(), &tail);
    let ((), (), ()) = tokio::join!(feed, out, err);
    let error = match child.wait().await {
        Ok(status) => describe_exit(status),
        Err(e) => Some(e.to_string()),
    };
    let output = tail.into_inner().unwrap_or_else(|e| e.into_inner()).text();
    Captured { error, output }
}

/// Runs the handler with `input` on stdin and the terminal as its output
/// (the CLI's way). Returns Go's exit text when it failed.
pub async fn run_inherited(cmd: &HandlerCommand, index: u64, input: &[u8]) -> Result<(), WatchError> {
    let mut command = cmd.command()?;
    command.env("CONSUL_INDEX", index.to_string()).stdin(Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().map_err(WatchError::Spawn)?;
    if let Some(mut s) = child.stdin.take() {
        let _ = s.write_all(input).await;
    }
    let status = child.wait().await.map_err(WatchError::Wait)?;
    match describe_exit(status) {
        None => Ok(()),
        Some(e) => Err(WatchError::Exit(e)),
    }
}

async fn drain<R: AsyncRead + Unpin>(stream: Option<R>, tail: &Mutex<Tail>) {
    let Some(mut s) = stream else { return };
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => tail.lock().unwrap_or_else(|e| e.into_inner()).push(buf.get(..n).unwrap_or_default()),
        }
    }
}

/// The last `CAPTURE_LIMIT` bytes written, and how many there were.
#[derive(Default)]
struct Tail {
    bytes: VecDeque<u8>,
    total: usize,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.total += data.len();
        self.bytes.extend(data);
        let excess = self.bytes.len().saturating_sub(CAPTURE_LIMIT);
        self.bytes.drain(..excess);
    }

    fn text(self) -> String {
        let kept: Vec<u8> = self.bytes.into_iter().collect();
        if self.total > kept.len() {
            return format!(
                "Captured {} of {} bytes\n...\n{}",
                kept.len(),
                self.total,
                String::from_utf8_lossy(&kept)
            );
        }
        tail_text(&kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captured_run_sees_stdin_and_index() {
        let cmd = HandlerCommand::Args(vec![
            "/bin/sh".into(),
            "-c".into(),
            "cat; echo \" $CONSUL_INDEX\"; echo oops >&2; exit 3".into(),
        ]);
        let r = run_captured(&cmd, 42, b"{\"a\":1}").await;
        assert_eq!(r.error.as_deref(), Some("exit status 3"));
        assert!(r.output.contains("{\"a\":1} 42"), "{}", r.output);
        assert!(r.output.contains("oops"), "{}", r.output);
        let r = run_captured(&HandlerCommand::Shell("kill -TERM $$".into()), 1, b"").await;
        assert_eq!(r.error.as_deref(), Some("signal: terminated"));
        let r = run_captured(&HandlerCommand::Args(vec![]), 1, b"").await;
        assert!(r.error.is_some());
        let r = run_captured(&HandlerCommand::Args(vec!["/nonexistent/handler".into()]), 1, b"").await;
        assert!(r.error.is_some());
    }

    #[tokio::test]
    async fn long_output_keeps_the_tail() {
        let cmd = HandlerCommand::Shell("head -c 10000 /dev/zero | tr '\\0' a; echo END".into());
        let r = run_captured(&cmd, 1, b"").await;
        assert!(r.error.is_none());
        assert!(r.output.starts_with("Captured 4096 of 10004 bytes"), "{}", &r.output[..60]);
        assert!(r.output.ends_with("END\n"));
    }
}
