//! Coordination on top of KV and sessions: `consul lock` (lock and
//! semaphore) with real child processes, and watches (`consul watch` and
//! the agent's configured `watches`) with real handlers.

mod lock;
mod watch;

use crate::common::proc::{self, Proc};
use crate::harness::{Agent, BIN};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A background command, killed with its process group and reaped when the
/// test ends, even when the test fails.
pub type Bg = Proc;

/// Starts a CLI command against `a` in the background; its stdout and
/// stderr go to `<dir>/<name>.out` / `.err`.
pub fn spawn_cli(a: &Agent, dir: &Path, name: &str, args: &[&str]) -> Bg {
    let out = std::fs::File::create(dir.join(format!("{name}.out"))).unwrap();
    let err = std::fs::File::create(dir.join(format!("{name}.err"))).unwrap();
    proc::spawn(
        Command::new(BIN)
            .args(args)
            .env("CONSUL_HTTP_ADDR", a.addr())
            .env("SHELL", "/bin/sh")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err),
    )
    .unwrap()
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub fn lines(path: &Path) -> Vec<String> {
    read(path).lines().map(str::to_string).collect()
}

/// Waits for the node's own catalog entry (sessions need it).
pub async fn wait_node(a: &Agent, node: &str) {
    let ok = crate::harness::wait_until(Duration::from_secs(15), || async {
        a.get(&format!("/v1/catalog/node/{node}")).await.text() != "null"
    })
    .await;
    assert!(ok, "node {node} never reached the catalog");
}

/// Whether a pid is gone (or only a zombie waiting for its reaper).
pub fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').map(|(_, r)| r.trim_start().starts_with('Z')).unwrap_or(false),
    }
}

/// Stops a background command started by a test: SIGKILL to it alone (not
/// its group: a test may check what becomes of its children), and reap it.
pub fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
