//! `consul operator`: `raft list-peers|remove-peer` and
//! `autopilot get-config|set-config|state`.

use super::columnize;
use super::HttpFlags;
use bytes::Bytes;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::Value;

#[derive(Args, Debug)]
pub struct OperatorArgs {
    #[command(subcommand)]
    pub command: OperatorCommand,
}

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Provides cluster-level tools for Consul operators
    Raft(RaftArgs),
    /// Provides tools for modifying Autopilot configuration
    Autopilot(AutopilotArgs),
}

#[derive(Args, Debug)]
pub struct RaftArgs {
    #[command(subcommand)]
    pub command: RaftCommand,
}

#[derive(Subcommand, Debug)]
pub enum RaftCommand {
    /// Display the current Raft peer configuration
    ListPeers(ListPeersArgs),
    /// Remove a Consul server from the Raft configuration
    RemovePeer(RemovePeerArgs),
    /// Writes raft/peers.json for a stopped server to recover from an outage
    Recover(super::operator_recover::RecoverArgs),
}

#[derive(Args, Debug)]
pub struct ListPeersArgs {
    #[command(flatten)]
    pub http: HttpFlags,
}

#[derive(Args, Debug)]
pub struct RemovePeerArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, help = "The address to remove from the Raft configuration")]
    pub address: Option<String>,
    #[arg(long, help = "The ID to remove from the Raft configuration")]
    pub id: Option<String>,
}

#[derive(Args, Debug)]
pub struct AutopilotArgs {
    #[command(subcommand)]
    pub command: AutopilotCommand,
}

#[derive(Subcommand, Debug)]
pub enum AutopilotCommand {
    /// Display the current Autopilot configuration
    GetConfig(GetConfigArgs),
    /// Modify the current Autopilot configuration
    SetConfig(SetConfigArgs),
    /// Display the current Autopilot state
    State(GetConfigArgs),
}

#[derive(Args, Debug)]
pub struct GetConfigArgs {
    #[command(flatten)]
    pub http: HttpFlags,
}

#[derive(Args, Debug)]
pub struct SetConfigArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long = "cleanup-dead-servers", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Controls whether Consul will automatically remove dead servers")]
    pub cleanup_dead_servers: Option<bool>,
    #[arg(
        long = "max-trailing-logs",
        help = "Controls the maximum number of log entries that a server can trail the leader by before being considered unhealthy"
    )]
    pub max_trailing_logs: Option<u64>,
    #[arg(
        long = "min-quorum",
        help = "Sets the minimum number of servers required in a cluster before autopilot can prune dead servers"
    )]
    pub min_quorum: Option<u32>,
    #[arg(
        long = "last-contact-threshold",
        help = "Controls the maximum amount of time a server can go without contact from the leader before being considered unhealthy"
    )]
    pub last_contact_threshold: Option<String>,
    #[arg(
        long = "server-stabilization-time",
        help = "Controls the minimum amount of time a server must be stable in the 'healthy' state before being added to the cluster"
    )]
    pub server_stabilization_time: Option<String>,
    #[arg(long = "redundancy-zone-tag", hide = true)]
    pub redundancy_zone_tag: Option<String>,
    #[arg(long = "disable-upgrade-migration", hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub disable_upgrade_migration: Option<bool>,
    #[arg(long = "upgrade-version-tag", hide = true)]
    pub upgrade_version_tag: Option<String>,
}

pub fn run(a: OperatorArgs) -> i32 {
    // `recover` reads a stopped server's data dir with its own runtime.
    let a = match a.command {
        OperatorCommand::Raft(RaftArgs { command: RaftCommand::Recover(r) }) => {
            return super::operator_recover::run(r)
        }
        other => OperatorArgs { command: other },
    };
    super::block_on(async move {
        match a.command {
            OperatorCommand::Raft(r) => match r.command {
                RaftCommand::ListPeers(l) => list_peers(l).await,
                RaftCommand::RemovePeer(r) => remove_peer(r).await,
                RaftCommand::Recover(_) => unreachable!("handled before the runtime starts"),
            },
            OperatorCommand::Autopilot(ap) => match ap.command {
                AutopilotCommand::GetConfig(g) => get_config(g).await,
                AutopilotCommand::SetConfig(s) => set_config(s).await,
                AutopilotCommand::State(g) => state(g).await,
            },
        }
    })
}

fn stale_query(http: &HttpFlags) -> &'static str {
    if http.stale() {
        "?stale"
    } else {
        ""
    }
}

async fn get_json(http: &HttpFlags, path: &str, what: &str) -> Result<Value, i32> {
    let client = http.connect()?;
    client.call(Method::GET, path, None).await.and_then(|r| r.json()).map_err(|e| {
        eprintln!("Error getting {what}: {e}");
        1
    })
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

async fn list_peers(a: ListPeersArgs) -> i32 {
    let cfg =
        match get_json(&a.http, &format!("/v1/operator/raft/configuration{}", stale_query(&a.http)), "peers")
            .await
        {
            Ok(v) => v,
            Err(code) => return code,
        };
    let servers = cfg.get("Servers").and_then(Value::as_array).cloned().unwrap_or_default();
    let leader_index = servers
        .iter()
        .find(|s| s.get("Leader").and_then(Value::as_bool) == Some(true))
        .map(|l| u(l, "LastIndex"))
        .unwrap_or(0);
    let mut rows =
        vec![["Node", "ID", "Address", "State", "Voter", "RaftProtocol", "Commit Index", "Trails Leader By"]
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()];
    for srv in &servers {
        let leader = srv.get("Leader").and_then(Value::as_bool) == Some(true);
        let last = u(srv, "LastIndex");
        let trails = if leader {
            "-".to_string()
        } else {
            match leader_index.saturating_sub(last) {
                1 => "1 commit".to_string(),
                n => format!("{n} commits"),
            }
        };
        rows.push(vec![
            s(srv, "Node"),
            s(srv, "ID"),
            s(srv, "Address"),
            if leader { "leader".into() } else { "follower".into() },
            s(srv, "Voter"),
            s(srv, "ProtocolVersion"),
            last.to_string(),
            trails,
        ]);
    }
    println!("{}", columnize::format(&rows));
    0
}

async fn remove_peer(a: RemovePeerArgs) -> i32 {
    let q = match (&a.address, &a.id) {
        (Some(_), Some(_)) => {
            eprintln!("Error removing peer: Cannot specify both -address and -id");
            return 1;
        }
        (Some(addr), None) => format!("address={}", crate::api::encode(addr)),
        (None, Some(id)) => format!("id={}", crate::api::encode(id)),
        (None, None) => {
            eprintln!("Error removing peer: Must specify either -address or -id");
            return 1;
        }
    };
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match client.call(Method::DELETE, &format!("/v1/operator/raft/peer?{q}"), None).await {
        Ok(_) => {
            match (&a.address, &a.id) {
                (Some(addr), _) => println!("Removed peer with address \"{addr}\""),
                (_, Some(id)) => println!("Removed peer with id \"{id}\""),
                _ => {}
            }
            0
        }
        Err(e) => {
            eprintln!("Error removing peer: {e}");
            1
        }
    }
}

async fn get_config(a: GetConfigArgs) -> i32 {
    let c = match get_json(
        &a.http,
        &format!("/v1/operator/autopilot/configuration{}", stale_query(&a.http)),
        "Autopilot configuration",
    )
    .await
    {
        Ok(v) => v,
        Err(code) => return code,
    };
    println!("CleanupDeadServers = {}", s(&c, "CleanupDeadServers"));
    println!("LastContactThreshold = {}", s(&c, "LastContactThreshold"));
    println!("MaxTrailingLogs = {}", s(&c, "MaxTrailingLogs"));
    println!("MinQuorum = {}", s(&c, "MinQuorum"));
    println!("ServerStabilizationTime = {}", s(&c, "ServerStabilizationTime"));
    println!("RedundancyZoneTag = {:?}", s(&c, "RedundancyZoneTag"));
    println!("DisableUpgradeMigration = {}", s(&c, "DisableUpgradeMigration"));
    println!("UpgradeVersionTag = {:?}", s(&c, "UpgradeVersionTag"));
    0
}

async fn set_config(a: SetConfigArgs) -> i32 {
    let mut c =
        match get_json(&a.http, "/v1/operator/autopilot/configuration", "Autopilot configuration").await {
            Ok(v) => v,
            Err(code) => return code,
        };
    for (name, value) in [
        ("LastContactThreshold", &a.last_contact_threshold),
        ("ServerStabilizationTime", &a.server_stabilization_time),
    ] {
        if let Some(v) = value {
            if let Err(e) = crate::duration::parse(v) {
                eprintln!("Error parsing {name}: {e}");
                return 1;
            }
            c[name] = Value::String(v.clone());
        }
    }
    if let Some(b) = a.cleanup_dead_servers {
        c["CleanupDeadServers"] = Value::Bool(b);
    }
    if let Some(n) = a.max_trailing_logs {
        c["MaxTrailingLogs"] = n.into();
    }
    if let Some(n) = a.min_quorum {
        c["MinQuorum"] = n.into();
    }
    if let Some(t) = &a.redundancy_zone_tag {
        c["RedundancyZoneTag"] = Value::String(t.clone());
    }
    if let Some(b) = a.disable_upgrade_migration {
        c["DisableUpgradeMigration"] = Value::Bool(b);
    }
    if let Some(t) = &a.upgrade_version_tag {
        c["UpgradeVersionTag"] = Value::String(t.clone());
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let path = format!("/v1/operator/autopilot/configuration?cas={}", u(&c, "ModifyIndex"));
    let ok = client
        .call(Method::PUT, &path, Some(Bytes::from(c.to_string())))
        .await
        .and_then(|r| r.json::<bool>());
    match ok {
        Ok(true) => {
            println!("Configuration updated!");
            0
        }
        Ok(false) => {
            println!("Configuration could not be atomically updated, please try again");
            1
        }
        Err(e) => {
            eprintln!("Error setting Autopilot configuration: {e}");
            1
        }
    }
}

async fn state(a: GetConfigArgs) -> i32 {
    let st = match get_json(&a.http, "/v1/operator/autopilot/state", "Autopilot state").await {
        Ok(v) => v,
        Err(code) => return code,
    };
    println!("Healthy:                      {}", s(&st, "Healthy"));
    println!("Failure Tolerance:            {}", s(&st, "FailureTolerance"));
    println!("Optimistic Failure Tolerance: {}", s(&st, "OptimisticFailureTolerance"));
    println!("Leader:                       {}", s(&st, "Leader"));
    println!("Voters:");
    for v in st.get("Voters").and_then(Value::as_array).cloned().unwrap_or_default() {
        println!("   {}", v.as_str().unwrap_or_default());
    }
    println!();
    println!("Servers:");
    if let Some(servers) = st.get("Servers").and_then(Value::as_object) {
        for (id, srv) in servers {
            println!("   {id}");
            for (label, key) in [
                ("Name", "Name"),
                ("Address", "Address"),
                ("Version", "Version"),
                ("Status", "Status"),
                ("Node Type", "NodeType"),
                ("Node Status", "NodeStatus"),
                ("Healthy", "Healthy"),
                ("Last Contact", "LastContact"),
                ("Last Term", "LastTerm"),
                ("Last Index", "LastIndex"),
                ("Stable Since", "StableSince"),
            ] {
                println!("      {:<15}{}", format!("{label}:"), s(srv, key));
            }
        }
    }
    0
}
