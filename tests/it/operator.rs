//! Operator commands against real agents: `consul reload` and SIGHUP,
//! `consul maint`, `consul keyring` across an encrypted pool, `consul join`
//! and `consul force-leave`, autopilot configuration.

use crate::harness::{unique_ip, wait_until, Agent};
use serde_json::Value;
use std::time::Duration;

fn write(dir: &std::path::Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).expect("write config");
}

async fn local_services(a: &Agent) -> Vec<String> {
    let v: Value = a.get("/v1/agent/services").await.json().expect("json");
    v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_config_services_and_keeps_api_ones() {
    let cfg = tempfile::tempdir().expect("tempdir");
    write(cfg.path(), "web.json", r#"{"service": {"name": "web", "port": 80}}"#);
    let agent = Agent::dev(&[&format!("-config-dir={}", cfg.path().display())]);
    agent.wait_ready().await;
    assert!(local_services(&agent).await.contains(&"web".to_string()));
    // A service registered over the API must survive reloads.
    let r = agent.put("/v1/agent/service/register", br#"{"Name": "api-svc"}"#).await;
    assert!(r.status.is_success());

    // consul reload: web goes away, db and a check arrive.
    std::fs::remove_file(cfg.path().join("web.json")).expect("rm");
    write(
        cfg.path(),
        "db.json",
        r#"{"service": {"name": "db", "port": 5432, "check": {"ttl": "30s"}}, "log_level": "debug"}"#,
    );
    let out = agent.cli(&["reload"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "Configuration reload triggered");
    let svcs = local_services(&agent).await;
    assert!(svcs.contains(&"db".to_string()) && svcs.contains(&"api-svc".to_string()), "{svcs:?}");
    assert!(!svcs.contains(&"web".to_string()), "{svcs:?}");
    let checks: Value = agent.get("/v1/agent/checks").await.json().expect("json");
    assert!(checks.as_object().is_some_and(|m| m.values().any(|c| c["ServiceID"] == "db")), "{checks}");

    // A broken file: reload fails, the running configuration stays.
    write(cfg.path(), "broken.json", r#"{"service": {"name": 5}"#);
    let out = agent.cli(&["reload"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("broken.json"), "the error names the file: {out:?}");
    assert!(local_services(&agent).await.contains(&"db".to_string()));

    // SIGHUP does the same once the file is fixed.
    write(cfg.path(), "broken.json", r#"{"service": {"name": "cache", "port": 6379}}"#);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(agent.pid() as i32, libc::SIGHUP) };
    assert!(
        wait_until(Duration::from_secs(10), || async {
            local_services(&agent).await.contains(&"cache".to_string())
        })
        .await,
        "SIGHUP did not reload:\n{}",
        agent.output_text()
    );
    // And it shows in the catalog through anti-entropy.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            agent
                .get("/v1/catalog/service/cache")
                .await
                .json::<Vec<Value>>()
                .map(|v| v.len() == 1)
                .unwrap_or(false)
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maint_enables_lists_and_disables() {
    let agent = Agent::dev(&[]);
    agent.wait_ready().await;
    assert!(agent
        .put("/v1/agent/service/register", br#"{"Name": "web", "ID": "web1"}"#)
        .await
        .status
        .is_success());
    let on = agent.cli(&["maint", "-enable", "-reason", "disk swap"]);
    assert_eq!((on.code, on.stdout.trim()), (0, "Node maintenance is now enabled"), "{on:?}");
    let svc = agent.cli(&["maint", "-enable", "-service", "web1"]);
    assert_eq!(svc.stdout.trim(), "Service maintenance is now enabled for \"web1\"", "{svc:?}");
    let list = agent.cli(&["maint"]);
    assert!(list.stdout.contains("Node:\n  Name:   dev\n  Reason: disk swap"), "{}", list.stdout);
    assert!(list.stdout.contains("Service:\n  ID:     web1"), "{}", list.stdout);
    // The catalog learns of the maintenance check through anti-entropy.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            let crit: Vec<Value> = agent.get("/v1/health/state/critical").await.json().unwrap_or_default();
            crit.iter().any(|c| c["CheckID"] == "_node_maintenance")
        })
        .await,
        "node maintenance check never reached the catalog"
    );
    let off = agent.cli(&["maint", "-disable"]);
    assert_eq!(off.stdout.trim(), "Node maintenance is now disabled");
    let both = agent.cli(&["maint", "-enable", "-disable"]);
    assert_eq!(both.code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_rotates_keys_across_an_encrypted_pool_and_join_force_leave_work() {
    let k1 = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
    let k2 = "HS5lJ+XuTlYKWaeGYyG+/A==";
    let server = Agent::dev(&[&format!("-encrypt={k1}")]);
    server.wait_ready().await;
    let ip = unique_ip();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let args: Vec<String> = vec![
        "agent".into(),
        format!("-data-dir={}", dir.display()),
        format!("-bind={ip}"),
        format!("-client={ip}"),
        "-node=c1".into(),
        format!("-encrypt={k1}"),
    ];
    let client = Agent::spawn(ip, args, Some(dir), Some(tmp));
    // consul join from the client's CLI.
    let up = || async {
        client
            .client()
            .request(hyper::Method::GET, "/v1/agent/self", None)
            .await
            .is_ok_and(|r| r.status == 200)
    };
    assert!(wait_until(Duration::from_secs(10), up).await, "client agent never served HTTP");
    let joined = client.cli(&["join", &server.ip.to_string()]);
    assert_eq!(joined.code, 0, "{joined:?}");
    assert_eq!(joined.stdout.trim(), "Successfully joined cluster by contacting 1 nodes.");
    assert!(
        wait_until(Duration::from_secs(20), || async {
            server.get("/v1/agent/members").await.json::<Vec<Value>>().map(|m| m.len() == 2).unwrap_or(false)
        })
        .await
    );

    let list = server.cli(&["keyring", "-list"]);
    assert_eq!(list.code, 0, "{list:?}");
    assert!(list.stdout.contains("==> Gathering installed encryption keys..."), "{}", list.stdout);
    assert!(list.stdout.contains(&format!("dc1 (LAN):\n  {k1} [2/2]")), "{}", list.stdout);

    for (args, check) in [
        (vec!["keyring", "-install", k2], format!("{k2} [2/2]")),
        (vec!["keyring", "-use", k2], format!("{k2} [2/2]")),
        (vec!["keyring", "-remove", k1], format!("{k2} [2/2]")),
    ] {
        let out = server.cli(&args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        let list = server.cli(&["keyring", "-list"]);
        assert!(list.stdout.contains(&check), "after {args:?}: {}", list.stdout);
    }
    let primary = client.cli(&["keyring", "-list-primary"]);
    assert!(primary.stdout.contains(&format!("{k2} [2/2]")), "{}", primary.stdout);
    assert!(!primary.stdout.contains(k1), "{}", primary.stdout);
    // Removing the primary key is refused.
    let refused = server.cli(&["keyring", "-remove", k2]);
    assert_ne!(refused.code, 0, "{refused:?}");
    let bad = server.cli(&["keyring", "-list", "-install", k1]);
    assert_eq!(bad.code, 1);

    // force-leave of a failed member marks it left.
    let mut client = client;
    client.kill9();
    assert!(
        wait_until(Duration::from_secs(30), || async {
            server
                .get("/v1/agent/members")
                .await
                .json::<Vec<Value>>()
                .map(|m| m.iter().any(|m| m["Name"] == "c1" && m["Status"] == 4))
                .unwrap_or(false)
        })
        .await,
        "client never failed"
    );
    let fl = server.cli(&["force-leave", "c1"]);
    assert_eq!(fl.code, 0, "{fl:?}");
    assert!(
        wait_until(Duration::from_secs(10), || async {
            server
                .get("/v1/agent/members")
                .await
                .json::<Vec<Value>>()
                .map(|m| m.iter().any(|m| m["Name"] == "c1" && m["Status"] == 3))
                .unwrap_or(false)
        })
        .await,
        "force-leave did not mark the member left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopilot_configuration_round_trips_with_cas() {
    let agent = Agent::dev(&[]);
    agent.wait_ready().await;
    let get = agent.cli(&["operator", "autopilot", "get-config"]);
    assert!(
        get.stdout.contains("CleanupDeadServers = true\nLastContactThreshold = 200ms\nMaxTrailingLogs = 250"),
        "{}",
        get.stdout
    );
    let set = agent.cli(&[
        "operator",
        "autopilot",
        "set-config",
        "-max-trailing-logs=42",
        "-last-contact-threshold=1s",
    ]);
    assert_eq!(set.stdout.trim(), "Configuration updated!", "{set:?}");
    let v: Value = agent.get("/v1/operator/autopilot/configuration").await.json().expect("json");
    assert_eq!(v["MaxTrailingLogs"], 42);
    assert_eq!(v["LastContactThreshold"], "1s");
    let index = v["ModifyIndex"].as_u64().expect("index");
    let stale_cas = agent
        .put(&format!("/v1/operator/autopilot/configuration?cas={}", index - 1), br#"{"MaxTrailingLogs": 7}"#)
        .await;
    assert_eq!(stale_cas.text().trim(), "false");
    let good_cas = agent
        .put(
            &format!("/v1/operator/autopilot/configuration?cas={index}"),
            br#"{"MaxTrailingLogs": 7, "CleanupDeadServers": true}"#,
        )
        .await;
    assert_eq!(good_cas.text().trim(), "true");
    let bad = agent.put("/v1/operator/autopilot/configuration", br#"{"LastContactThreshold": "soon"}"#).await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let peers = agent.cli(&["operator", "raft", "list-peers"]);
    assert!(peers.stdout.starts_with("Node  ID"), "{}", peers.stdout);
    assert!(peers.stdout.contains("leader  true   3"), "{}", peers.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_saved_on_one_cluster_restores_on_a_fresh_one() {
    let a = Agent::server(None, &[]);
    a.wait_ready().await;
    for i in 0..200 {
        assert!(a
            .put(&format!("/v1/kv/app/key{i}"), format!("value-{i}").as_bytes())
            .await
            .status
            .is_success());
    }
    let reg = br#"{"Node": "ext-1", "Address": "10.1.2.3", "Service": {"Service": "billing", "Port": 9000, "Tags": ["v2"]}}"#;
    assert!(a.put("/v1/catalog/register", reg).await.status.is_success());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup.snap");
    let file_s = file.to_string_lossy().to_string();
    let saved = a.cli(&["snapshot", "save", &file_s]);
    assert_eq!(saved.code, 0, "{saved:?}");
    assert!(saved.stdout.starts_with("Saved and verified snapshot to index "), "{saved:?}");

    let inspect = crate::harness::cli(&["snapshot", "inspect", &file_s]);
    assert_eq!(inspect.code, 0, "{inspect:?}");
    assert!(
        inspect.stdout.lines().any(|l| l.trim_start().starts_with("KVS") && l.contains(" 200 ")),
        "{}",
        inspect.stdout
    );

    // A corrupted copy is refused before anything is sent.
    let mut bad = std::fs::read(&file).expect("read");
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    let bad_file = dir.path().join("bad.snap");
    std::fs::write(&bad_file, &bad).expect("write");

    let b = Agent::server(None, &[]);
    b.wait_ready().await;
    let refused = b.cli(&["snapshot", "restore", &bad_file.to_string_lossy()]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert_eq!(b.get("/v1/kv/app/key7").await.status, 404);

    let restored = b.cli(&["snapshot", "restore", &file_s]);
    assert_eq!(restored.code, 0, "{restored:?}");
    assert_eq!(restored.stdout.trim(), "Restored snapshot");
    for i in [0, 7, 199] {
        assert_eq!(b.get(&format!("/v1/kv/app/key{i}?raw")).await.text(), format!("value-{i}"));
    }
    let svc: Vec<Value> = b.get("/v1/catalog/service/billing").await.json().expect("json");
    assert_eq!(svc.len(), 1, "{svc:?}");
    assert_eq!(svc[0]["Address"], "10.1.2.3");
    assert_eq!(svc[0]["ServiceTags"][0], "v2");

    // The restored state survives a restart of the fresh server (it went through Raft).
    let mut b = b;
    b.restart();
    b.wait_ready().await;
    assert_eq!(b.get("/v1/kv/app/key199?raw").await.text(), "value-199");
}
