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
use std::io;
use std::path::{Path, PathBuf};

/// An error from `consensus::recovery`, whose own error type is not
/// settled: kept whole, shown as it shows itself.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why no recovery file was written (printed after "Error: ").
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("Missing -data-dir: the stopped server's data directory")]
    NoDataDir,
    #[error("Missing -peers: list the servers of the recovered configuration, this one included")]
    NoPeers,
    #[error("-peers: {0:?} is neither ip:port, a node ID nor ID@ip:port")]
    BadPeer(String),
    /// Checking, resolving or rendering the peers, or reading Raft's data.
    #[error("{0}")]
    Recovery(#[source] Cause),
    #[error("{} has no raft/ directory: is it a server's data directory?", .0.display())]
    NoRaftDir(PathBuf),
    /// An agent runs on the data dir.
    #[error("{0}. Stop that agent first: recovery only works on a stopped server")]
    InUse(#[source] DataDirError),
    #[error(transparent)]
    DataDir(DataDirError),
    #[error("reading {}: {source}", .path.display())]
    ReadNodeId { path: PathBuf, source: io::Error },
    #[error("{}: invalid node ID: {source}", .path.display())]
    BadNodeId { path: PathBuf, source: uuid::Error },
    #[error("starting the runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("{} holds no Raft data: there is nothing to recover", .0.display())]
    NoRaftData(PathBuf),
    #[error(
        "non-voters need an id, but some servers are only known by address; give every non-voter as ID@ip:port"
    )]
    NonVoterWithoutId,
    #[error("writing {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
}

fn from_recovery(e: impl Into<Cause>) -> RecoverError {
    RecoverError::Recovery(e.into())
}

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
pub fn parse_peer(item: &str, non_voter: bool) -> Result<PeerSpec, RecoverError> {
    let item = item.trim();
    if let Some((id, addr)) = item.split_once('@') {
        return Ok(PeerSpec {
            id: Some(recovery::parse_id(id).map_err(from_recovery)?),
            address: Some(recovery::parse_address(addr).map_err(from_recovery)?),
            non_voter,
        });
    }
    if let Ok(addr) = recovery::parse_address(item) {
        return Ok(PeerSpec { id: None, address: Some(addr), non_voter });
    }
    match uuid::Uuid::parse_str(item) {
        Ok(id) => Ok(PeerSpec { id: Some(id), address: None, non_voter }),
        Err(_) => Err(RecoverError::BadPeer(item.to_string())),
    }
}

fn parse_list(values: &[String], non_voter: bool, out: &mut Vec<PeerSpec>) -> Result<(), RecoverError> {
    for item in values.iter().flat_map(|v| v.split(',')).filter(|s| !s.trim().is_empty()) {
        out.push(parse_peer(item, non_voter)?);
    }
    Ok(())
}

fn read_node_id(data_dir: &Path) -> Result<uuid::Uuid, RecoverError> {
    let path = data_dir.join("node-id");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(source) => return Err(RecoverError::ReadNodeId { path, source }),
    };
    uuid::Uuid::parse_str(text.trim()).map_err(|source| RecoverError::BadNodeId { path, source })
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
fn render(servers: &[RecoveredServer]) -> Result<(String, &'static str), RecoverError> {
    if servers.iter().all(|s| s.source != Source::AwaitingServer) {
        let mut written = Vec::with_capacity(servers.len());
        for s in servers {
            let address = recovery::parse_address(&s.node.addr).map_err(from_recovery)?;
            written.push(Written { id: s.node.node_id.clone(), address, non_voter: !s.voter });
        }
        return Ok((recovery::render_ids(&written).map_err(from_recovery)?, "id format"));
    }
    if servers.iter().any(|s| !s.voter) {
        return Err(RecoverError::NonVoterWithoutId);
    }
    let addrs = servers
        .iter()
        .map(|s| recovery::parse_address(&s.node.addr))
        .collect::<Result<Vec<_>, _>>()
        .map_err(from_recovery)?;
    Ok((
        recovery::render_addresses(&addrs).map_err(from_recovery)?,
        "address format, because some servers are not known yet",
    ))
}

fn recover(args: &RecoverArgs) -> Result<(), RecoverError> {
    let data_dir = args.data_dir.as_deref().ok_or(RecoverError::NoDataDir)?;
    let mut specs = Vec::new();
    parse_list(&args.peers, false, &mut specs)?;
    parse_list(&args.non_voters, true, &mut specs)?;
    if specs.is_empty() {
        return Err(RecoverError::NoPeers);
    }
    recovery::check_specs(&specs).map_err(from_recovery)?;
    let raft_dir = data_dir.join("raft");
    if !raft_dir.is_dir() {
        return Err(RecoverError::NoRaftDir(data_dir.to_path_buf()));
    }
    // Held until we return: no agent can start on this data dir meanwhile.
    let _lock = DataDir::open(data_dir).map_err(|e| match e {
        DataDirError::Locked { .. } => RecoverError::InUse(e),
        e => RecoverError::DataDir(e),
    })?;
    let uuid = read_node_id(data_dir)?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(RecoverError::Runtime)?;
    let (state, known) = runtime.block_on(recovery::inspect(&raft_dir, data_dir)).map_err(from_recovery)?;
    if state.last().is_none() {
        return Err(RecoverError::NoRaftData(raft_dir));
    }
    let id = raft_id(&uuid);
    let mine = known.config.get(&id);
    let me = Me {
        id,
        node_id: uuid.to_string(),
        name: mine.map(|n| n.name.clone()).unwrap_or_default(),
        addr: mine.and_then(|n| n.addr.parse().ok()),
    };
    let servers = recovery::resolve(&specs, &me, &known).map_err(from_recovery)?;
    let (text, format) = render(&servers)?;
    println!("Recovered Raft configuration for {}:", raft_dir.display());
    println!("{}", table(&servers));
    if args.dry_run.unwrap_or(false) {
        println!("\n{text}");
        println!("Dry run: nothing was written.");
        return Ok(());
    }
    let path = recovery::peers_path(&raft_dir);
    if let Err(source) = crate::fsutil::write_atomic(&path, text.as_bytes(), true) {
        return Err(RecoverError::Write { path, source });
    }
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
        assert!(parse_peer("server1:8300", false).unwrap_err().to_string().contains("neither"));
        assert!(parse_peer("x@10.0.0.2:8300", false).is_err());
        let mut out = Vec::new();
        parse_list(&["10.0.0.1:8300, 10.0.0.2:8300".into(), "10.0.0.3:8300".into()], false, &mut out)
            .unwrap();
        assert_eq!(out.len(), 3);
    }

    /// What the command prints after "Error: ", word for word.
    #[test]
    fn messages() {
        let text = |e: RecoverError| e.to_string();
        assert_eq!(text(RecoverError::NoDataDir), "Missing -data-dir: the stopped server's data directory");
        assert_eq!(
            text(RecoverError::NoPeers),
            "Missing -peers: list the servers of the recovered configuration, this one included"
        );
        assert_eq!(
            text(RecoverError::BadPeer("server1:8300".into())),
            "-peers: \"server1:8300\" is neither ip:port, a node ID nor ID@ip:port"
        );
        assert_eq!(
            text(RecoverError::NoRaftDir("/d".into())),
            "/d has no raft/ directory: is it a server's data directory?"
        );
        assert_eq!(
            text(RecoverError::NoRaftData("/d/raft".into())),
            "/d/raft holds no Raft data: there is nothing to recover"
        );
        assert_eq!(
            text(RecoverError::NonVoterWithoutId),
            "non-voters need an id, but some servers are only known by address; give every non-voter as ID@ip:port"
        );
        assert_eq!(text(from_recovery("duplicate address 10.0.0.1:8300")), "duplicate address 10.0.0.1:8300");

        let dir = tempfile::tempdir().unwrap();
        let held = DataDir::open(dir.path()).unwrap();
        let e = DataDir::open(dir.path()).err().unwrap();
        let plain = e.to_string();
        assert_eq!(
            text(RecoverError::InUse(e)),
            format!("{plain}. Stop that agent first: recovery only works on a stopped server")
        );
        drop(held);
        let e = read_node_id(dir.path()).unwrap_err();
        assert!(matches!(e, RecoverError::ReadNodeId { .. }));
        assert!(text(e).starts_with(&format!("reading {}/node-id: ", dir.path().display())));
        std::fs::write(dir.path().join("node-id"), "x").unwrap();
        assert!(text(read_node_id(dir.path()).unwrap_err())
            .starts_with(&format!("{}/node-id: invalid node ID: ", dir.path().display())));
    }
}
