//! `consul operator raft recover`: writes a checked `raft/peers.json` for a
//! stopped server, instead of editing JSON by hand during an outage.
//!
//! consul-rs's own command (Consul has none): it lives under `operator
//! raft` next to `list-peers` and `remove-peer`, which do the same job while
//! a leader exists; this one is for when none can be elected.
//!
//! Unlike every other command it does not talk to an agent: it reads the
//! data dir of a stopped server. It refuses while an agent holds the data
//! dir's lock, resolves `-peers` with the same rules the agent applies at
//! start (`consensus::recovery`), prints the resulting configuration and
//! writes the file. The agent applies it at its next start.
//!
//! Owns: flags, output and the file write. Must not change Raft state: the
//! agent does that when it starts.

use crate::cli::columnize;
use crate::consensus::recovery::{self, Me, PeerSpec, RecoveredServer, Source, Written};
use crate::consensus::typ::raft_id;
use crate::datadir::{DataDir, DataDirError};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Default)]
#[command(about = "Writes raft/peers.json for a stopped server to recover from an outage")]
pub struct RecoverArgs {
    #[arg(long = "data-dir", help = "The stopped server's data directory")]
    pub data_dir: Option<PathBuf>,
    #[arg(
        long = "peers",
        action = clap::ArgAction::Append,
        help = "Servers of the recovered configuration, comma-separated or repeated: ip:port, a node ID, or ID@ip:port; this server must be one of them"
    )]
    pub peers: Vec<String>,
    #[arg(long = "non-voters", action = clap::ArgAction::Append, help = "Servers (as in -peers) to add as non-voters")]
    pub non_voters: Vec<String>,
    #[arg(long = "dry-run", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Print the configuration without writing the file")]
    pub dry_run: Option<bool>,
}

/// Parses one `-peers` item: `ip:port`, `<node-id>` or `<node-id>@ip:port`.
pub fn parse_peer(item: &str, non_voter: bool) -> Result<PeerSpec, String> {
    let item = item.trim();
    if let Some((id, addr)) = item.split_once('@') {
        return Ok(PeerSpec {
            id: Some(recovery::parse_id(id)?),
            address: Some(recovery::parse_address(addr)?),
            non_voter,
        });
    }
    if let Ok(addr) = recovery::parse_address(item) {
        return Ok(PeerSpec { id: None, address: Some(addr), non_voter });
    }
    match uuid::Uuid::parse_str(item) {
        Ok(id) => Ok(PeerSpec { id: Some(id), address: None, non_voter }),
        Err(_) => Err(format!("-peers: {item:?} is neither ip:port, a node ID nor ID@ip:port")),
    }
}

fn parse_list(values: &[String], non_voter: bool, out: &mut Vec<PeerSpec>) -> Result<(), String> {
    for item in values.iter().flat_map(|v| v.split(',')).filter(|s| !s.trim().is_empty()) {
        out.push(parse_peer(item, non_voter)?);
    }
    Ok(())
}

fn read_node_id(data_dir: &Path) -> Result<uuid::Uuid, String> {
    let path = data_dir.join("node-id");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    uuid::Uuid::parse_str(text.trim()).map_err(|e| format!("{}: invalid node ID: {e}", path.display()))
}

fn table(servers: &[RecoveredServer]) -> String {
    let mut rows =
        vec![vec!["Node".to_string(), "ID".into(), "Address".into(), "Voter".into(), "Known from".into()]];
    for s in servers {
        rows.push(vec![
            if s.node.name.is_empty() { "(new server)".into() } else { s.node.name.clone() },
            if s.node.node_id.is_empty() { "-".into() } else { s.node.node_id.clone() },
            s.node.addr.clone(),
            s.voter.to_string(),
            s.source.describe().to_string(),
        ]);
    }
    columnize::format(&rows)
}

/// The file content: the current format when every server has an id, else
/// the old address format (the agent then resolves the addresses again, by
/// the same rules, at its start).
fn render(servers: &[RecoveredServer]) -> Result<(String, &'static str), String> {
    if servers.iter().all(|s| s.source != Source::AwaitingServer) {
        let mut written = Vec::with_capacity(servers.len());
        for s in servers {
            let address = recovery::parse_address(&s.node.addr)?;
            written.push(Written { id: s.node.node_id.clone(), address, non_voter: !s.voter });
        }
        return Ok((recovery::render_ids(&written)?, "id format"));
    }
    if servers.iter().any(|s| !s.voter) {
        return Err("non-voters need an id, but some servers are only known by address; give every non-voter as ID@ip:port".into());
    }
    let addrs =
        servers.iter().map(|s| recovery::parse_address(&s.node.addr)).collect::<Result<Vec<_>, _>>()?;
    Ok((recovery::render_addresses(&addrs)?, "address format, because some servers are not known yet"))
}

fn recover(args: &RecoverArgs) -> Result<(), String> {
    let data_dir =
        args.data_dir.as_deref().ok_or("Missing -data-dir: the stopped server's data directory")?;
    let mut specs = Vec::new();
    parse_list(&args.peers, false, &mut specs)?;
    parse_list(&args.non_voters, true, &mut specs)?;
    if specs.is_empty() {
        return Err(
            "Missing -peers: list the servers of the recovered configuration, this one included".into()
        );
    }
    recovery::check_specs(&specs)?;
    let raft_dir = data_dir.join("raft");
    if !raft_dir.is_dir() {
        return Err(format!(
            "{} has no raft/ directory: is it a server's data directory?",
            data_dir.display()
        ));
    }
    // Held until we return: no agent can start on this data dir meanwhile.
    let _lock = DataDir::open(data_dir).map_err(|e| match e {
        DataDirError::Locked { .. } => {
            format!("{e}. Stop that agent first: recovery only works on a stopped server")
        }
        e => e.to_string(),
    })?;
    let uuid = read_node_id(data_dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let (state, known) = runtime.block_on(recovery::inspect(&raft_dir, data_dir))?;
    if state.last().is_none() {
        return Err(format!("{} holds no Raft data: there is nothing to recover", raft_dir.display()));
    }
    let id = raft_id(&uuid);
    let mine = known.config.get(&id);
    let me = Me {
        id,
        node_id: uuid.to_string(),
        name: mine.map(|n| n.name.clone()).unwrap_or_default(),
        addr: mine.and_then(|n| n.addr.parse().ok()),
    };
    let servers = recovery::resolve(&specs, &me, &known)?;
    let (text, format) = render(&servers)?;
    println!("Recovered Raft configuration for {}:", raft_dir.display());
    println!("{}", table(&servers));
    if args.dry_run.unwrap_or(false) {
        println!("\n{text}");
        println!("Dry run: nothing was written.");
        return Ok(());
    }
    let path = recovery::peers_path(&raft_dir);
    crate::fsutil::write_atomic(&path, text.as_bytes(), true)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("\nWrote {} ({format}):\n{text}", path.display());
    println!("Next: put this same file in raft/peers.json of every other surviving server");
    println!("(or run this command there with the same -peers), then start all of them.");
    println!("Each server applies the file at start and deletes it.");
    Ok(())
}

pub fn run(args: RecoverArgs) -> i32 {
    match recover(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_items() {
        let id = "0b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0";
        let p = parse_peer("10.0.0.1:8300", false).unwrap();
        assert_eq!(p.address, Some("10.0.0.1:8300".parse().unwrap()));
        let p = parse_peer(id, false).unwrap();
        assert!(p.id.is_some() && p.address.is_none());
        let p = parse_peer(&format!("{id}@10.0.0.2:8300"), true).unwrap();
        assert!(p.id.is_some() && p.address.is_some() && p.non_voter);
        assert!(parse_peer("server1:8300", false).unwrap_err().contains("neither"));
        assert!(parse_peer("x@10.0.0.2:8300", false).is_err());
        let mut out = Vec::new();
        parse_list(&["10.0.0.1:8300, 10.0.0.2:8300".into(), "10.0.0.3:8300".into()], false, &mut out)
            .unwrap();
        assert_eq!(out.len(), 3);
    }
}
