//! `consul lock [options] PREFIX CHILD...`: holds a lock (or, with `-n`
//! above 1, a semaphore slot) under PREFIX while CHILD runs, and stops
//! CHILD if the lock is lost. Flags, messages and exit codes follow
//! Consul's command; see docs/coordination.md for the one deliberate
//! difference (a lost lock exits 1).

mod child;
mod contend;
mod error;
mod kv;
mod mutex;
mod semaphore;
mod session;

use super::HttpFlags;
use child::LockChild;
use clap::Args;
use contend::{CleanupError, Settings, MONITOR_RETRY_TIME};
use error::LockError;
use hyper::Method;
use std::io::Write;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Time a child gets between SIGTERM and SIGKILL (Consul: 5s, set against
/// the default 15s lock-delay).
const KILL_GRACE: Duration = Duration::from_secs(5);

const B: &str = "true";

#[derive(Args, Debug)]
pub struct LockArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long = "child-exit-code", num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Exit with code 2 when the child fails; by default a failing child still exits 0")]
    pub child_exit_code: Option<bool>,
    #[arg(
        long = "n",
        default_value_t = 1,
        allow_negative_numbers = true,
        help = "How many holders may run at once; above 1 a semaphore is used instead of a lock"
    )]
    pub limit: i64,
    #[arg(
        long = "monitor-retry",
        default_value_t = 3,
        allow_negative_numbers = true,
        help = "How many failed reads in a row (1s apart) the lock monitor tolerates before treating the lock as lost; 0 disables retries"
    )]
    pub monitor_retry: i64,
    #[arg(
        long,
        default_value = "",
        help = "Name of the lock's session; derived from the child command when empty"
    )]
    pub name: String,
    #[arg(long = "pass-stdin", num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Give the child this process's stdin")]
    pub pass_stdin: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Run the child through $SHELL -c (default /bin/sh); false runs it directly")]
    pub shell: Option<bool>,
    #[arg(
        long,
        allow_hyphen_values = true,
        help = "Give up acquiring after this long (a duration such as 10s); 0 waits forever"
    )]
    pub timeout: Option<String>,
    #[arg(long = "try", allow_hyphen_values = true, hide = true, help = "Deprecated name of -timeout")]
    pub try_: Option<String>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = B, help = "Print each step of acquiring, running and releasing")]
    pub verbose: Option<bool>,
    /// PREFIX then the child command.
    pub args: Vec<String>,
}

pub fn run(a: LockArgs) -> i32 {
    super::block_on(run_async(a))
}

/// The lock or the semaphore, behind one face.
enum Guard {
    Lock(mutex::Mutex),
    Semaphore(semaphore::Semaphore),
}

impl Guard {
    async fn acquire(&mut self, stop: &CancellationToken) -> Result<Option<CancellationToken>, LockError> {
        match self {
            Guard::Lock(m) => m.acquire(stop).await,
            Guard::Semaphore(s) => s.acquire(stop).await,
        }
    }

    async fn release(&mut self, lost: bool) -> Result<(), LockError> {
        match self {
            Guard::Lock(m) => m.release(lost).await,
            Guard::Semaphore(s) => s.release().await,
        }
    }

    async fn cleanup(&mut self) -> Result<(), CleanupError> {
        match self {
            Guard::Lock(m) => m.cleanup().await,
            Guard::Semaphore(s) => s.cleanup().await,
        }
    }
}

/// Consul's UI: informational lines on stdout, only with `-verbose`.
struct Ui {
    verbose: bool,
}

impl Ui {
    fn info(&self, msg: impl AsRef<str>) {
        if self.verbose {
            let _ = writeln!(std::io::stdout(), "{}", msg.as_ref());
        }
    }
}

/// A Go `flag.Duration` value (`parse error` on bad input, as Go says).
fn parse_timeout(flag: &str, raw: &str) -> Result<Duration, String> {
    match crate::duration::parse_nanos(raw) {
        Ok(n) if n < 0 => Err("Timeout must be positive".into()),
        Ok(n) => Ok(Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))),
        Err(_) => Err(format!("invalid value {raw:?} for flag -{flag}: parse error")),
    }
}

async fn run_async(a: LockArgs) -> i32 {
    let ui = Ui { verbose: a.verbose.unwrap_or(false) };
    if a.limit <= 0 {
        eprintln!("Lock holder limit must be positive");
        return 1;
    }
    let (prefix, child_args) = match a.args.split_first() {
        Some((prefix, rest)) if !rest.is_empty() => {
            (prefix.strip_prefix('/').unwrap_or(prefix).to_string(), rest.to_vec())
        }
        _ => {
            eprintln!("Key prefix and child command must be specified");
            return 1;
        }
    };
    let timeout = match (&a.timeout, &a.try_) {
        (Some(t), _) => parse_timeout("timeout", t),
        (None, Some(t)) => parse_timeout("try", t),
        (None, None) => Ok(Duration::ZERO),
    };
    let timeout = match timeout {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let name = if a.name.is_empty() {
        format!("Consul lock for '{}' at '{prefix}'", child_args.join(" "))
    } else {
        a.name.clone()
    };
    let Ok(monitor_retries) = u32::try_from(a.monitor_retry) else {
        eprintln!("Number for 'monitor-retry' must be >= 0");
        return 1;
    };
    let client = match a.http.client() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error connecting to Consul agent: {e}");
            return 1;
        }
    };
    if let Err(e) = client.call(Method::GET, "/v1/agent/self", None).await {
        eprintln!("Error querying Consul agent: {e}");
        return 1;
    }
    let settings = Settings {
        session_name: name,
        monitor_retries,
        monitor_retry_time: MONITOR_RETRY_TIME,
        timeout: (!timeout.is_zero()).then_some(timeout),
    };
    let mut guard = if a.limit == 1 {
        let key = kv::join(&prefix, semaphore::LOCK_KEY);
        ui.info(format!("Setting up lock at path: {key}"));
        Guard::Lock(mutex::Mutex::new(client, key, settings))
    } else {
        ui.info(format!("Setting up semaphore (limit {}) at prefix: {prefix}", a.limit));
        match semaphore::Semaphore::new(client, prefix, a.limit, settings) {
            Ok(s) => Guard::Semaphore(s),
            Err(e) => {
                eprintln!("Lock setup failed: {e}");
                return 1;
            }
        }
    };

    // SIGINT/SIGTERM: remembered for forwarding, and they end the run.
    let shutdown = CancellationToken::new();
    let received = std::sync::Arc::new(std::sync::atomic::AtomicI32::new(0));
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        eprintln!("Error installing signal handlers");
        return 1;
    };
    {
        let shutdown = shutdown.clone();
        let received = received.clone();
        tokio::spawn(async move {
            loop {
                let sig = tokio::select! {
                    _ = int.recv() => libc::SIGINT,
                    _ = term.recv() => libc::SIGTERM,
                };
                received.store(sig, std::sync::atomic::Ordering::SeqCst);
                shutdown.cancel();
            }
        });
    }

    ui.info("Attempting lock acquisition");
    let lost = match guard.acquire(&shutdown).await {
        Ok(Some(lost)) => lost,
        Ok(None) => {
            eprintln!("Shutdown triggered or timeout during lock acquisition");
            return 1;
        }
        Err(e) => {
            eprintln!("Lock acquisition failed: {e}");
            return 1;
        }
    };

    let mut child_code = 0;
    let mut lock_lost = false;
    if shutdown.is_cancelled() {
        eprintln!("Shutdown triggered during lock acquisition");
    } else {
        ui.info("Starting handler");
        if a.pass_stdin.unwrap_or(false) {
            ui.info("Stdin passed to handler process");
        }
        match LockChild::start(&child_args, a.shell.unwrap_or(true), a.pass_stdin.unwrap_or(false)) {
            Err(e) => {
                eprintln!("Error starting handler: {e}");
                child_code = 2;
            }
            Ok(mut child) => {
                tokio::select! {
                    status = child.wait() => {
                        if let Some(err) = exit_error(status) {
                            eprintln!("Error running handler: {err}");
                            child_code = 2;
                        }
                        ui.info("Child terminated, releasing lock");
                    }
                    _ = shutdown.cancelled() => {
                        // Consul forwards the signal to the child, then stops it.
                        let sig = received.load(std::sync::atomic::Ordering::SeqCst);
                        if sig != 0 {
                            if let Err(e) = child.signal(sig) {
                                eprintln!("Warning, could not forward signal: {e}");
                            }
                        }
                        ui.info("Shutdown triggered, killing child");
                        stop_child(&ui, &mut child).await;
                    }
                    _ = lost.cancelled() => {
                        ui.info("Lock lost, killing child");
                        lock_lost = true;
                        stop_child(&ui, &mut child).await;
                    }
                }
            }
        }
    }

    if let Err(e) = guard.release(lock_lost).await {
        eprintln!("Lock release failed: {e}");
        return 1;
    }
    match guard.cleanup().await {
        Ok(()) => ui.info("Cleanup succeeded"),
        Err(CleanupError::InUse) => ui.info("Cleanup aborted, lock in use"),
        Err(CleanupError::Failed(e)) => {
            eprintln!("Lock cleanup failed: {e}");
            return 1;
        }
    }
    if lock_lost {
        // Consul exits 0 here; a wrapper could not tell the child was cut short.
        eprintln!("Lock lost while the child was running: child terminated");
        return 1;
    }
    if a.child_exit_code.unwrap_or(false) {
        return child_code;
    }
    0
}

fn exit_error(status: std::io::Result<std::process::ExitStatus>) -> Option<String> {
    match status {
        Ok(s) => crate::watch::script::describe_exit(s),
        Err(e) => Some(e.to_string()),
    }
}

/// SIGTERM, then SIGKILL after the grace period.
async fn stop_child(ui: &Ui, child: &mut LockChild) {
    ui.info(format!("Terminating child pid {}", child.pid()));
    if let Err(e) = child.signal(libc::SIGTERM) {
        eprintln!("Failed to terminate {}: {e}", child.pid());
        return;
    }
    if let Some(status) = child.wait_for(KILL_GRACE).await {
        report_stopped(ui, status);
        return;
    }
    ui.info(format!("Child did not exit after grace period of {}", crate::duration::format(KILL_GRACE)));
    ui.info(format!("Killing child pid {}", child.pid()));
    if let Err(e) = child.signal(libc::SIGKILL) {
        eprintln!("Failed to kill {}: {e}", child.pid());
        return;
    }
    let status = child.wait().await;
    report_stopped(ui, status);
}

fn report_stopped(ui: &Ui, status: std::io::Result<std::process::ExitStatus>) {
    if let Some(err) = exit_error(status) {
        eprintln!("Error running handler: {err}");
    }
    ui.info("Child terminated");
}
