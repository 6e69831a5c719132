//! `consul lock`: mutual exclusion between real processes, the semaphore
//! limit, stopping the child when the lock is lost, and exit codes.

use super::{is_dead, lines, read, spawn_cli, stop, wait_node};
use crate::harness::{wait_exit, wait_until, Agent};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Four `consul lock` processes on one prefix: their children's run
/// intervals (start/end stamps written by the children) never overlap.
#[tokio::test]
async fn lock_children_never_overlap() {
    let a = Agent::dev(&["-node=lock-a"]);
    a.wait_ready().await;
    wait_node(&a, "lock-a").await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let child = format!(
        "echo \"start $(date +%s%N) $$ $CONSUL_LOCK_HELD\" >> {l}; sleep 0.3; echo \"end $(date +%s%N) $$\" >> {l}",
        l = log.display()
    );
    let mut procs: Vec<_> = (0..4)
        .map(|i| spawn_cli(&a, dir.path(), &format!("lock{i}"), &["lock", "mutex/p", &child]))
        .collect();
    for (i, p) in procs.iter_mut().enumerate() {
        let code = wait_exit(p, Duration::from_secs(60));
        assert_eq!(code, Some(0), "lock {i}: {}", read(&dir.path().join(format!("lock{i}.err"))));
    }
    let mut runs: HashMap<String, (u128, u128)> = HashMap::new();
    for line in lines(&log) {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["start", t, pid, held] => {
                assert_eq!(*held, "true", "CONSUL_LOCK_HELD in the child's environment");
                runs.entry(pid.to_string()).or_default().0 = t.parse().unwrap();
            }
            ["end", t, pid] => runs.entry(pid.to_string()).or_default().1 = t.parse().unwrap(),
            other => panic!("unexpected log line {other:?}"),
        }
    }
    assert_eq!(runs.len(), 4, "every child ran once: {}", read(&log));
    let mut spans: Vec<(u128, u128)> = runs.into_values().collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 > w[0].0, "a child ended before it started");
        assert!(w[1].0 >= w[0].1, "children overlapped: {:?} and {:?}", w[0], w[1]);
    }
    // Cleanup removed the lock key once nobody wanted it.
    assert_eq!(a.get("/v1/kv/mutex/p/.lock").await.status, 404);
}

/// Five contenders for a semaphore of three: never more than three
/// children at once (counted with marker files), three at once at some
/// point, and the coordination key always agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semaphore_admits_at_most_its_limit() {
    let a = Agent::dev(&["-node=sem-a"]);
    a.wait_ready().await;
    wait_node(&a, "sem-a").await;
    let dir = tempfile::tempdir().unwrap();
    let markers = dir.path().join("markers");
    std::fs::create_dir(&markers).unwrap();
    let counts = dir.path().join("counts");
    let child = format!(
        "touch {m}/$$; ls {m} | wc -l >> {c}; sleep 1.5; rm {m}/$$",
        m = markers.display(),
        c = counts.display()
    );
    let mut procs: Vec<_> = (0..5)
        .map(|i| spawn_cli(&a, dir.path(), &format!("sem{i}"), &["lock", "-n", "3", "sem/p", &child]))
        .collect();
    // Watch the coordination key while they run.
    let mut samples = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while procs.iter_mut().any(|p| p.try_wait().unwrap().is_none()) {
        assert!(Instant::now() < deadline, "semaphore holders never finished");
        let r = a.get("/v1/kv/sem/p/.lock").await;
        if r.status == 200 {
            let v: Vec<Value> = r.json().unwrap();
            assert_eq!(v[0]["Flags"].as_u64(), Some(0xe0f6_9a2b_aa41_4de0), "semaphore flag");
            let raw = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                v[0]["Value"].as_str().unwrap(),
            )
            .unwrap();
            let lock: Value = serde_json::from_slice(&raw).unwrap();
            assert_eq!(lock["Limit"], 3);
            assert!(lock["Holders"].as_object().unwrap().len() <= 3, "too many holders: {lock}");
            samples += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (i, p) in procs.iter_mut().enumerate() {
        assert_eq!(
            wait_exit(p, Duration::from_secs(5)),
            Some(0),
            "sem {i}: {}",
            read(&dir.path().join(format!("sem{i}.err")))
        );
    }
    assert!(samples > 0, "never saw the coordination key");
    let seen: Vec<usize> = lines(&counts).iter().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(seen.len(), 5, "every contender ran once");
    let max = seen.iter().copied().max().unwrap();
    assert!(max <= 3, "more than three children at once: {seen:?}");
    assert_eq!(max, 3, "the semaphore never admitted three at once: {seen:?}");
    // Contender keys are gone; the lock key was cleaned up by the last one out.
    assert_eq!(a.get("/v1/kv/sem/p?recurse").await.status, 404);
}

fn session_of(v: &[Value]) -> String {
    v[0]["Session"].as_str().unwrap_or_default().to_string()
}

/// Destroying the holder's session: the child (and what it started) is
/// stopped at once and `consul lock` exits non-zero.
#[tokio::test]
async fn child_is_stopped_when_the_lock_is_lost() {
    let a = Agent::dev(&["-node=lost-a"]);
    a.wait_ready().await;
    wait_node(&a, "lost-a").await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let child = format!("sleep 300 & echo \"$$ $!\" > {}; wait", pid_file.display());
    let mut lock = spawn_cli(&a, dir.path(), "lost", &["lock", "-verbose", "lost/p", &child]);
    assert!(
        wait_until(Duration::from_secs(20), || async { read(&pid_file).ends_with('\n') }).await,
        "child never started"
    );
    let pids: Vec<u32> = read(&pid_file).split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert!(pids.iter().all(|p| !is_dead(*p)));
    // The holder is visible to `consul kv get -detailed`.
    let detailed = a.cli(&["kv", "get", "-detailed", "lost/p/.lock"]);
    let v: Vec<Value> = a.get("/v1/kv/lost/p/.lock").await.json().unwrap();
    let session = session_of(&v);
    assert!(!session.is_empty());
    assert!(detailed.stdout.contains(&format!("Session          {session}\n")), "{}", detailed.stdout);
    assert!(detailed.stdout.contains("Flags            3304740253564472344\n"), "{}", detailed.stdout);

    let t0 = Instant::now();
    assert_eq!(a.put(&format!("/v1/session/destroy/{session}"), b"").await.text(), "true");
    let code = wait_exit(&mut lock, Duration::from_secs(20));
    assert_eq!(code, Some(1), "exit code after a lost lock; stderr: {}", read(&dir.path().join("lost.err")));
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "took {:?}: SIGTERM should have been enough",
        t0.elapsed()
    );
    for p in &pids {
        assert!(
            wait_until(Duration::from_secs(5), || async { is_dead(*p) }).await,
            "pid {p} survived the lost lock"
        );
    }
    let out = read(&dir.path().join("lost.out"));
    assert!(out.contains("Lock lost, killing child"), "{out}");
    assert!(read(&dir.path().join("lost.err")).contains("Error running handler: signal: terminated"));
}

/// A semaphore slot is lost when its session goes: the contender key is
/// deleted with it, the holder is pruned, and the child is stopped.
#[tokio::test]
async fn semaphore_slot_loss_stops_the_child() {
    let a = Agent::dev(&["-node=semlost-a"]);
    a.wait_ready().await;
    wait_node(&a, "semlost-a").await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let child = format!("echo $$ > {}; exec sleep 300", pid_file.display());
    let mut lock = spawn_cli(&a, dir.path(), "semlost", &["lock", "-n=2", "semlost/p", &child]);
    assert!(wait_until(Duration::from_secs(20), || async { read(&pid_file).ends_with('\n') }).await);
    let pid: u32 = read(&pid_file).trim().parse().unwrap();
    let entries: Vec<Value> = a.get("/v1/kv/semlost/p?recurse").await.json().unwrap();
    let contender = entries.iter().find(|e| e["Key"] != "semlost/p/.lock").expect("contender key");
    let session = contender["Session"].as_str().unwrap().to_string();
    assert_eq!(contender["Key"], format!("semlost/p/{session}"), "contender key layout");
    a.put(&format!("/v1/session/destroy/{session}"), b"").await;
    assert_eq!(
        wait_exit(&mut lock, Duration::from_secs(20)),
        Some(1),
        "{}",
        read(&dir.path().join("semlost.err"))
    );
    assert!(wait_until(Duration::from_secs(5), || async { is_dead(pid) }).await);
    // Our holder entry was removed and the key cleaned up.
    assert_eq!(a.get("/v1/kv/semlost/p?recurse").await.status, 404);
}

/// A child that ignores SIGTERM gets SIGKILL after the 5s grace period.
#[tokio::test]
async fn stubborn_child_is_killed_after_the_grace_period() {
    let a = Agent::dev(&["-node=stubborn-a"]);
    a.wait_ready().await;
    wait_node(&a, "stubborn-a").await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let child = format!("trap '' TERM; echo $$ > {}; while :; do sleep 0.2; done", pid_file.display());
    let mut lock = spawn_cli(&a, dir.path(), "stubborn", &["lock", "-verbose", "stubborn/p", &child]);
    assert!(wait_until(Duration::from_secs(20), || async { read(&pid_file).ends_with('\n') }).await);
    let pid: u32 = read(&pid_file).trim().parse().unwrap();
    let v: Vec<Value> = a.get("/v1/kv/stubborn/p/.lock").await.json().unwrap();
    let t0 = Instant::now();
    a.put(&format!("/v1/session/destroy/{}", session_of(&v)), b"").await;
    assert_eq!(wait_exit(&mut lock, Duration::from_secs(30)), Some(1));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(4500) && took < Duration::from_secs(12), "killed after {took:?}");
    assert!(wait_until(Duration::from_secs(5), || async { is_dead(pid) }).await);
    let out = read(&dir.path().join("stubborn.out"));
    assert!(out.contains("Child did not exit after grace period of 5s"), "{out}");
    assert!(out.contains(&format!("Killing child pid {pid}")), "{out}");
}

/// `-child-exit-code`, `-timeout` against a held lock, a lock/semaphore
/// conflict, `-shell=false` and argument errors.
#[tokio::test]
async fn exit_codes_and_messages() {
    let a = Agent::dev(&["-node=codes-a"]);
    a.wait_ready().await;
    wait_node(&a, "codes-a").await;
    let out = a.cli(&["lock", "-child-exit-code", "codes/p", "exit 3"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("Error running handler: exit status 3"), "{out:?}");
    assert_eq!(a.cli(&["lock", "codes/p", "exit 3"]).code, 0, "not propagated without the flag");
    assert_eq!(a.cli(&["lock", "-child-exit-code", "codes/p", "true"]).code, 0);
    let out = a.cli(&["lock", "-shell=false", "codes/p", "/bin/sh", "-c", "echo held=$CONSUL_LOCK_HELD"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "held=true\n"), "{out:?}");

    // Hold the lock while others try.
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let started = dir.path().join("started");
    let child =
        format!("touch {}; while [ ! -e {} ]; do sleep 0.05; done", started.display(), gate.display());
    let mut holder = spawn_cli(&a, dir.path(), "holder", &["lock", "codes/p", &child]);
    assert!(wait_until(Duration::from_secs(20), || async { started.exists() }).await);
    let t0 = Instant::now();
    let out = a.cli(&["lock", "-timeout=700ms", "codes/p", "echo never"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "Shutdown triggered or timeout during lock acquisition\n");
    assert!(out.stdout.is_empty());
    assert!(t0.elapsed() >= Duration::from_millis(600), "gave up after {:?}", t0.elapsed());
    let out = a.cli(&["lock", "-n", "2", "codes/p", "echo never"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "Lock acquisition failed: Existing key does not match semaphore use\n")
    );
    std::fs::write(&gate, b"").unwrap();
    assert_eq!(wait_exit(&mut holder, Duration::from_secs(20)), Some(0));
    stop(&mut holder);

    let bad = |args: &[&str], msg: &str| {
        let out = a.cli(args);
        assert_eq!(out.code, 1, "{args:?}");
        assert!(out.stderr.contains(msg), "{args:?}: {}", out.stderr);
    };
    bad(&["lock", "codes/p"], "Key prefix and child command must be specified");
    bad(&["lock", "-n=0", "codes/p", "true"], "Lock holder limit must be positive");
    bad(&["lock", "-timeout=-10s", "codes/p", "true"], "Timeout must be positive");
    bad(&["lock", "-try=blah", "codes/p", "true"], "parse error");
    bad(&["lock", "-monitor-retry=-5", "codes/p", "true"], "must be >= 0");
}

/// SIGINT to `consul lock`: forwarded to the child (which then also gets
/// the usual SIGTERM), the lock is released and the command exits 0, as
/// Consul's does.
#[tokio::test]
async fn interrupt_is_forwarded_and_the_lock_released() {
    let a = Agent::dev(&["-node=int-a"]);
    a.wait_ready().await;
    wait_node(&a, "int-a").await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let got = dir.path().join("got");
    let child = format!(
        "trap 'echo INT >> {g}' INT; trap 'echo TERM >> {g}; exit 0' TERM; echo $$ > {p}; while :; do sleep 0.1; done",
        g = got.display(),
        p = pid_file.display()
    );
    let mut lock = spawn_cli(&a, dir.path(), "int", &["lock", "int/p", &child]);
    assert!(wait_until(Duration::from_secs(20), || async { read(&pid_file).ends_with('\n') }).await);
    // SAFETY: kill(2) on a process this test started.
    unsafe { libc::kill(lock.id() as i32, libc::SIGINT) };
    assert_eq!(
        wait_exit(&mut lock, Duration::from_secs(20)),
        Some(0),
        "{}",
        read(&dir.path().join("int.err"))
    );
    assert!(
        wait_until(Duration::from_secs(5), || async { read(&got).contains("TERM") }).await,
        "child never got SIGTERM"
    );
    assert!(read(&got).contains("INT\n"), "the interrupt was not forwarded: {:?}", read(&got));
    assert_eq!(a.get("/v1/kv/int/p/.lock").await.status, 404, "released and cleaned up");
    assert_eq!(a.get("/v1/session/list").await.text(), "[]", "the lock's session is gone");
}

/// `consul lock` killed with SIGKILL: its child does not keep running
/// without the lock.
#[tokio::test]
async fn child_does_not_outlive_a_killed_lock_command() {
    let a = Agent::dev(&["-node=orphan-a"]);
    a.wait_ready().await;
    wait_node(&a, "orphan-a").await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let child = format!("echo $$ > {}; exec sleep 300", pid_file.display());
    let mut lock = spawn_cli(&a, dir.path(), "orphan", &["lock", "orphan/p", &child]);
    assert!(wait_until(Duration::from_secs(20), || async { read(&pid_file).ends_with('\n') }).await);
    let pid: u32 = read(&pid_file).trim().parse().unwrap();
    stop(&mut lock);
    assert!(
        wait_until(Duration::from_secs(5), || async { is_dead(pid) }).await,
        "child {pid} outlived consul lock"
    );
}
