//! `consul snapshot save|restore|inspect`: point-in-time archives of the
//! replicated state. Transfers longer than a second print progress on
//! stderr, so an operator can tell a big restore from a hung one.

use super::HttpFlags;
use crate::snapshot::inspect::{human_bytes, kv_stats, type_stats, TypeStat};
use crate::snapshot::{read_archive, Archive};
use bytes::Bytes;
use clap::{Args, Subcommand};
use hyper::Method;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Saves snapshot of Consul server state
    Save(SaveArgs),
    /// Restores snapshot of Consul server state
    Restore(RestoreArgs),
    /// Displays information about a Consul snapshot file
    Inspect(InspectArgs),
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(
        long = "append-filename",
        default_value = "",
        help = "Append info to the file name: version,dc,node,status"
    )]
    pub append_filename: String,
    pub file: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    pub file: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Provides a detailed KV space usage breakdown")]
    pub kvdetails: Option<bool>,
    #[arg(long, default_value_t = 2, help = "The key prefix depth used to break down KV store data")]
    pub kvdepth: usize,
    #[arg(long, default_value = "", help = "Filter KV keys using this prefix filter")]
    pub kvfilter: String,
    #[arg(long, default_value = "pretty", help = "Output format: pretty or json")]
    pub format: String,
    pub file: Vec<PathBuf>,
}

pub fn run(a: SnapshotArgs) -> i32 {
    match a.command {
        SnapshotCommand::Save(s) => super::block_on(save(s)),
        SnapshotCommand::Restore(r) => super::block_on(restore(r)),
        SnapshotCommand::Inspect(i) => inspect(i),
    }
}

fn one_file(files: &[PathBuf]) -> Result<&PathBuf, i32> {
    match files {
        [f] => Ok(f),
        [] => {
            eprintln!("Missing FILE argument");
            Err(1)
        }
        _ => {
            eprintln!("Too many arguments (expected 1, got {})", files.len());
            Err(1)
        }
    }
}

/// Prints a progress line at most once a second, after the first second.
struct Progress {
    what: &'static str,
    started: Instant,
    last: Instant,
    printed: bool,
}

impl Progress {
    fn new(what: &'static str) -> Progress {
        let now = Instant::now();
        Progress { what, started: now, last: now, printed: false }
    }

    fn update(&mut self, detail: &str) {
        let now = Instant::now();
        if now.duration_since(self.started) >= Duration::from_secs(1)
            && now.duration_since(self.last) >= Duration::from_secs(1)
        {
            eprintln!("==> {}: {detail} ({}s)", self.what, now.duration_since(self.started).as_secs());
            self.last = now;
            self.printed = true;
        }
    }
}

fn with_suffix(path: &std::path::Path, parts: &[String]) -> PathBuf {
    if parts.is_empty() {
        return path.to_path_buf();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    path.with_file_name(format!("{stem}-{}{ext}", parts.join("-")))
}

async fn save(a: SaveArgs) -> i32 {
    let file = match one_file(&a.file) {
        Ok(f) => f.clone(),
        Err(code) => return code,
    };
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let path = if a.http.stale() { "/v1/snapshot?stale" } else { "/v1/snapshot" };
    let mut progress = Progress::new("Saving snapshot");
    let resp = match client.download(path, |n| progress.update(&format!("{} received", human_bytes(n)))).await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error saving snapshot: {e}");
            return 1;
        }
    };
    let archive = match read_archive(&resp.body) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("Error verifying snapshot file: {e}");
            return 1;
        }
    };
    // Consul's -append-filename: version, dc, node and status, in that order.
    let mut parts = Vec::new();
    if !a.append_filename.is_empty() {
        let me: serde_json::Value =
            match client.call(Method::GET, "/v1/agent/self", None).await.and_then(|r| r.json()) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("Error getting agent information: {e}");
                    return 1;
                }
            };
        let want: Vec<&str> = a.append_filename.split(',').map(str::trim).collect();
        for (key, value) in [
            ("version", me["Config"]["Version"].as_str().unwrap_or_default().to_string()),
            ("dc", me["Config"]["Datacenter"].as_str().unwrap_or_default().to_string()),
            ("node", me["Config"]["NodeName"].as_str().unwrap_or_default().to_string()),
            (
                "status",
                if me["Stats"]["consul"]["leader"] == "true" { "leader".into() } else { "follower".into() },
            ),
        ] {
            if want.contains(&key) {
                parts.push(value);
            }
        }
    }
    let file = with_suffix(&file, &parts);
    // write_atomic writes beside the target and renames, so a failed save
    // never leaves a half-written file under the final name.
    if let Err(e) = crate::fsutil::write_atomic(&file, &resp.body, true) {
        eprintln!("Error writing snapshot file {}: {e}", file.display());
        return 1;
    }
    println!("Saved and verified snapshot to index {}", archive.meta.index);
    0
}

async fn restore(a: RestoreArgs) -> i32 {
    let file = match one_file(&a.file) {
        Ok(f) => f.clone(),
        Err(code) => return code,
    };
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("Error opening snapshot file: {e}");
            return 1;
        }
    };
    // Check it locally first: a corrupt file fails here, not on the server.
    if let Err(e) = read_archive(&bytes) {
        eprintln!("Error verifying snapshot file: {e}");
        return 1;
    }
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let size = bytes.len() as u64;
    let call = client.call(Method::PUT, "/v1/snapshot", Some(Bytes::from(bytes)));
    tokio::pin!(call);
    let mut progress = Progress::new("Restoring snapshot");
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let result = loop {
        tokio::select! {
            r = &mut call => break r,
            _ = tick.tick() => progress.update(&format!("{} sent, waiting for the servers to apply it", human_bytes(size))),
        }
    };
    match result {
        Ok(_) => {
            println!("Restored snapshot");
            0
        }
        Err(e) => {
            eprintln!("Error restoring snapshot: {e}");
            1
        }
    }
}

fn print_table(title: &str, stats: &[TypeStat]) {
    let mut rows = vec![
        vec![title.to_string(), "Count".into(), "Size".into()],
        vec!["----".into(), "----".into(), "----".into()],
    ];
    let mut total = 0;
    for s in stats {
        total += s.sum;
        rows.push(vec![s.name.clone(), s.count.to_string(), human_bytes(s.sum)]);
    }
    rows.push(vec!["----".into(), "----".into(), "----".into()]);
    rows.push(vec!["Total".into(), String::new(), human_bytes(total)]);
    for line in super::columnize::format(&rows).lines() {
        println!(" {line}");
    }
}

fn inspect(a: InspectArgs) -> i32 {
    let file = match one_file(&a.file) {
        Ok(f) => f.clone(),
        Err(code) => return code,
    };
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("Error opening snapshot file: {e}");
            return 1;
        }
    };
    let Archive { meta, state } = match read_archive(&bytes) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("Error verifying snapshot file: {e}");
            return 1;
        }
    };
    let state: crate::catalog::State = match crate::catalog::State::decode(&state) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error reading snapshot state: {e}");
            return 1;
        }
    };
    let types = type_stats(&state);
    let kv = if a.kvdetails.unwrap_or(false) { Some(kv_stats(&state, a.kvdepth, &a.kvfilter)) } else { None };
    match a.format.as_str() {
        "json" => {
            let out = serde_json::json!({
                "Meta": {"ID": meta.id, "Size": meta.size, "Index": meta.index, "Term": meta.term, "Version": meta.version},
                "Stats": types,
                "KStats": kv,
                "TotalSize": types.iter().map(|t| t.sum).sum::<u64>(),
            });
            match serde_json::to_string_pretty(&out) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("Error formatting output: {e}");
                    return 1;
                }
            }
        }
        "pretty" => {
            let rows = vec![
                vec!["ID".to_string(), meta.id.clone()],
                vec!["Size".into(), meta.size.to_string()],
                vec!["Index".into(), meta.index.to_string()],
                vec!["Term".into(), meta.term.to_string()],
                vec!["Version".into(), meta.version.to_string()],
            ];
            for line in super::columnize::format(&rows).lines() {
                println!(" {line}");
            }
            println!();
            print_table("Type", &types);
            if let Some(kv) = kv {
                println!();
                print_table("Key Name", &kv);
            }
        }
        other => {
            eprintln!("Invalid format {other:?}: must be pretty or json");
            return 1;
        }
    }
    0
}
