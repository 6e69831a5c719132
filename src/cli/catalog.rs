//! `consul catalog datacenters|nodes|services`.

use super::columnize;
use super::HttpFlags;
use crate::api::{encode, Client};
use clap::{Args, Subcommand};
use hyper::Method;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct CatalogArgs {
    #[command(subcommand)]
    pub command: CatalogCommand,
}

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Lists all known datacenters
    Datacenters(DcArgs),
    /// Lists all nodes in the given datacenter
    Nodes(NodesArgs),
    /// Lists all registered services in a datacenter
    Services(ServicesArgs),
}

#[derive(Args, Debug)]
pub struct DcArgs {
    #[command(flatten)]
    pub http: HttpFlags,
}

#[derive(Args, Debug)]
pub struct NodesArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Output detailed information about the nodes")]
    pub detailed: Option<bool>,
    #[arg(long, default_value = "", help = "Node name to sort the node list by estimated round-trip time")]
    pub near: String,
    #[arg(long = "node-meta", action = clap::ArgAction::Append, help = "Metadata to filter nodes with, key=value")]
    pub node_meta: Vec<String>,
    #[arg(long, default_value = "", help = "Service id or name to filter nodes")]
    pub service: String,
    #[arg(long, default_value = "", help = "Filter to use with the request")]
    pub filter: String,
}

#[derive(Args, Debug)]
pub struct ServicesArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "Node id or name for which to list services")]
    pub node: String,
    #[arg(long = "node-meta", action = clap::ArgAction::Append, help = "Metadata to filter nodes with, key=value")]
    pub node_meta: Vec<String>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Display each service's tags")]
    pub tags: Option<bool>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
struct NodeOut {
    #[serde(rename = "ID")]
    id: String,
    node: String,
    address: String,
    datacenter: String,
    #[serde(default)]
    tagged_addresses: BTreeMap<String, String>,
    #[serde(default)]
    meta: BTreeMap<String, String>,
}

pub fn run(args: CatalogArgs) -> i32 {
    super::block_on(async move {
        match args.command {
            CatalogCommand::Datacenters(a) => datacenters(a).await,
            CatalogCommand::Nodes(a) => nodes(a).await,
            CatalogCommand::Services(a) => services(a).await,
        }
    })
}

fn client(http: &HttpFlags) -> Result<Client, i32> {
    http.client().map_err(|e| {
        eprintln!("Error connecting to Consul agent: {e}");
        1
    })
}

fn meta_query(meta: &[String]) -> String {
    meta.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            format!("&node-meta={}", encode(&format!("{k}:{v}")))
        })
        .collect()
}

async fn datacenters(a: DcArgs) -> i32 {
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match c.call(Method::GET, "/v1/catalog/datacenters", None).await.and_then(|r| r.json::<Vec<String>>()) {
        Ok(dcs) if dcs.is_empty() => {
            eprintln!("No datacenters found");
            1
        }
        Ok(dcs) => {
            for dc in dcs {
                println!("{dc}");
            }
            0
        }
        Err(e) => {
            eprintln!("Error listing datacenters: {e}");
            1
        }
    }
}

async fn nodes(a: NodesArgs) -> i32 {
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let stale = if a.http.stale() { "&stale" } else { "" };
    let meta = meta_query(&a.node_meta);
    let mut nodes: Vec<NodeOut> = if a.service.is_empty() {
        match c
            .call(Method::GET, &format!("/v1/catalog/nodes?{stale}{meta}"), None)
            .await
            .and_then(|r| r.json())
        {
            Ok(n) => n,
            Err(e) => {
                eprintln!("Error listing nodes: {e}");
                return 1;
            }
        }
    } else {
        let path = format!("/v1/catalog/service/{}?{stale}{meta}", encode(&a.service));
        let entries: Vec<serde_json::Value> =
            match c.call(Method::GET, &path, None).await.and_then(|r| r.json()) {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("Error listing nodes for service: {e}");
                    return 1;
                }
            };
        entries
            .into_iter()
            .filter_map(|e| {
                Some(NodeOut {
                    id: e["ID"].as_str()?.to_string(),
                    node: e["Node"].as_str()?.to_string(),
                    address: e["Address"].as_str()?.to_string(),
                    datacenter: e["Datacenter"].as_str()?.to_string(),
                    tagged_addresses: serde_json::from_value(e["TaggedAddresses"].clone())
                        .unwrap_or_default(),
                    meta: serde_json::from_value(e["NodeMeta"].clone()).unwrap_or_default(),
                })
            })
            .collect()
    };
    if nodes.is_empty() {
        eprintln!("No nodes match the given query - try expanding your search.");
        return 0;
    }
    nodes.sort_by(|x, y| x.node.cmp(&y.node));
    nodes.dedup_by(|x, y| x.node == y.node);
    let detailed = a.detailed.unwrap_or(false);
    let mut rows = Vec::new();
    if detailed {
        rows.push(vec![
            "Node".into(),
            "ID".into(),
            "Address".into(),
            "DC".into(),
            "TaggedAddresses".into(),
            "Meta".into(),
        ]);
    } else {
        rows.push(vec!["Node".into(), "ID".into(), "Address".into(), "DC".into()]);
    }
    for n in &nodes {
        if detailed {
            let tagged: Vec<String> = n.tagged_addresses.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let meta: Vec<String> = n.meta.iter().map(|(k, v)| format!("{k}={v}")).collect();
            rows.push(vec![
                n.node.clone(),
                n.id.clone(),
                n.address.clone(),
                n.datacenter.clone(),
                tagged.join(", "),
                meta.join(", "),
            ]);
        } else {
            let short: String = n.id.chars().take(8).collect();
            rows.push(vec![n.node.clone(), short, n.address.clone(), n.datacenter.clone()]);
        }
    }
    println!("{}", columnize::format(&rows));
    0
}

async fn services(a: ServicesArgs) -> i32 {
    let c = match client(&a.http) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let stale = if a.http.stale() { "&stale" } else { "" };
    let services: BTreeMap<String, Vec<String>> = if a.node.is_empty() {
        let path = format!("/v1/catalog/services?{stale}{}", meta_query(&a.node_meta));
        match c.call(Method::GET, &path, None).await.and_then(|r| r.json()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("Error listing services: {e}");
                return 1;
            }
        }
    } else {
        let path = format!("/v1/catalog/node/{}?{stale}", encode(&a.node));
        let v: serde_json::Value = match c.call(Method::GET, &path, None).await.and_then(|r| r.json()) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("Error listing services for node: {e}");
                return 1;
            }
        };
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(map) = v["Services"].as_object() {
            for s in map.values() {
                let name = s["Service"].as_str().unwrap_or("").to_string();
                let tags: Vec<String> = serde_json::from_value(s["Tags"].clone()).unwrap_or_default();
                let entry = out.entry(name).or_default();
                for t in tags {
                    if !entry.contains(&t) {
                        entry.push(t);
                    }
                }
            }
        }
        out
    };
    if services.is_empty() {
        eprintln!("No services match the given query - try expanding your search.");
        return 0;
    }
    if a.tags.unwrap_or(false) {
        let rows: Vec<Vec<String>> = services
            .iter()
            .map(|(name, tags)| {
                let mut t = tags.clone();
                t.sort();
                vec![name.clone(), t.join(",")]
            })
            .collect();
        println!("{}", columnize::format(&rows));
    } else {
        for name in services.keys() {
            println!("{name}");
        }
    }
    0
}
