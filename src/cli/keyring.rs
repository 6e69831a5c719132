//! `consul keyring`: list, install, use and remove gossip encryption keys
//! across every member, through `/v1/operator/keyring`.

use super::HttpFlags;
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct KeyringArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "List all keys currently in use within the cluster")]
    pub list: Option<bool>,
    #[arg(long = "list-primary", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "List all primary keys currently in use within the cluster")]
    pub list_primary: Option<bool>,
    #[arg(long, help = "Install a new encryption key")]
    pub install: Option<String>,
    #[arg(long = "use", help = "Change the primary encryption key")]
    pub use_key: Option<String>,
    #[arg(long, help = "Remove the given key from the cluster")]
    pub remove: Option<String>,
    #[arg(
        long = "relay-factor",
        default_value_t = 0,
        help = "Number of nodes to relay each response through (0-5)"
    )]
    pub relay_factor: u8,
    #[arg(long = "local-only", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "List keys from the local agent only (list only)")]
    pub local_only: Option<bool>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct PoolKeys {
    #[serde(rename = "WAN")]
    wan: bool,
    datacenter: String,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    keys: BTreeMap<String, usize>,
    #[serde(default)]
    primary_keys: BTreeMap<String, usize>,
    num_nodes: usize,
}

fn pool_name(p: &PoolKeys) -> String {
    if p.wan {
        "WAN".to_string()
    } else if p.segment.is_empty() {
        format!("{} (LAN)", p.datacenter)
    } else {
        format!("{} (LAN) [{}]", p.datacenter, p.segment)
    }
}

pub fn run(a: KeyringArgs) -> i32 {
    let list = a.list.unwrap_or(false);
    let list_primary = a.list_primary.unwrap_or(false);
    let chosen = [list, list_primary, a.install.is_some(), a.use_key.is_some(), a.remove.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if chosen != 1 {
        eprintln!("Exactly one of -list, -list-primary, -install, -use, or -remove must be provided");
        return 1;
    }
    if a.relay_factor > 5 {
        eprintln!("Error parsing relay factor: relay factor must be in range: [0, 5]");
        return 1;
    }
    let local_only = a.local_only.unwrap_or(false);
    if local_only && !(list || list_primary) {
        eprintln!("Local-only can only be used with the list operation");
        return 1;
    }
    super::block_on(async move {
        let client = match a.http.connect() {
            Ok(c) => c,
            Err(code) => return code,
        };
        if list || list_primary {
            println!("==> Gathering installed encryption keys...");
            let mut path = format!("/v1/operator/keyring?relay-factor={}", a.relay_factor);
            if local_only {
                path.push_str("&local-only=1");
            }
            let pools: Vec<PoolKeys> =
                match client.call(Method::GET, &path, None).await.and_then(|r| r.json()) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return 1;
                    }
                };
            for p in &pools {
                println!();
                println!("{}:", pool_name(p));
                let keys = if list_primary { &p.primary_keys } else { &p.keys };
                for (k, n) in keys {
                    println!("  {k} [{n}/{}]", p.num_nodes);
                }
            }
            return 0;
        }
        let (method, key, banner) = if let Some(k) = &a.install {
            (Method::POST, k, "==> Installing new gossip encryption key...")
        } else if let Some(k) = &a.use_key {
            (Method::PUT, k, "==> Changing primary gossip encryption key...")
        } else if let Some(k) = &a.remove {
            (Method::DELETE, k, "==> Removing gossip encryption key...")
        } else {
            return 1;
        };
        println!("{banner}");
        let body = serde_json::json!({ "Key": key }).to_string();
        let path = format!("/v1/operator/keyring?relay-factor={}", a.relay_factor);
        match client.call(method, &path, Some(Bytes::from(body))).await {
            Ok(_) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        }
    })
}
