//! `consul rtt [-wan] node1 [node2]`: the round trip between two nodes as
//! the network coordinates estimate it (LAN coordinates of this
//! datacenter's nodes, or with `-wan` the servers' WAN coordinates).

use super::HttpFlags;
use crate::coordinate::Coordinate;
use clap::Args;
use hyper::Method;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct RttArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Use WAN coordinates instead of LAN coordinates.")]
    pub wan: Option<bool>,
    /// node1 [node2]
    pub nodes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    node: String,
    #[serde(default)]
    segment: String,
    coord: Coordinate,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Datacenter {
    datacenter: String,
    #[serde(rename = "AreaID")]
    area_id: String,
    coordinates: Vec<Entry>,
}

const USAGE: &str = "Usage: consul rtt [options] node1 [node2]

  Estimates the round trip time between two nodes from the cluster's network
  coordinates. Without a second node, the agent's own node is used. With
  -wan, servers' WAN coordinates are used and names are <node>.<datacenter>.";

pub fn run(a: RttArgs) -> i32 {
    super::block_on(async move {
        let mut nodes = a.nodes.clone();
        if nodes.is_empty() || nodes.len() > 2 {
            eprintln!("One or two node names must be specified\n\n{USAGE}");
            return 1;
        }
        let client = match a.http.client() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("Error connecting to Consul agent: {e}");
                return 1;
            }
        };
        let wan = a.wan.unwrap_or(false);
        if nodes.len() < 2 {
            let me: serde_json::Value =
                match client.call(Method::GET, "/v1/agent/self", None).await.and_then(|r| r.json()) {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("Unable to look up agent info: {e}");
                        return 1;
                    }
                };
            let name = me["Config"]["NodeName"].as_str().unwrap_or_default();
            let dc = me["Config"]["Datacenter"].as_str().unwrap_or_default();
            nodes.push(if wan { format!("{name}.{dc}") } else { name.to_string() });
        }
        let found = if wan { wan_pair(&client, &nodes).await } else { lan_pair(&client, &nodes).await };
        let (c1, c2) = match found {
            Ok(pair) => pair,
            Err(msg) => {
                eprintln!("{msg}");
                return 1;
            }
        };
        let ms = c1.distance_secs(&c2).unwrap_or(f64::NAN) * 1000.0;
        let source = if wan { "WAN" } else { "LAN" };
        println!("Estimated {} <-> {} rtt: {ms:.3} ms (using {source} coordinates)", nodes[0], nodes[1]);
        0
    })
}

fn missing(node: &str) -> String {
    format!("Could not find a coordinate for node {node:?}")
}

async fn lan_pair(client: &crate::api::Client, nodes: &[String]) -> Result<(Coordinate, Coordinate), String> {
    let entries: Vec<Entry> = client
        .call(Method::GET, "/v1/coordinate/nodes", None)
        .await
        .and_then(|r| r.json())
        .map_err(|e| format!("Error getting coordinates: {e}"))?;
    let mut by_segment: [BTreeMap<String, Coordinate>; 2] = Default::default();
    for e in entries {
        for (i, n) in nodes.iter().enumerate() {
            if e.node.eq_ignore_ascii_case(n) {
                by_segment[i].insert(e.segment.clone(), e.coord.clone());
            }
        }
    }
    // Coordinates are comparable only within one segment; the default
    // segment ("") is tried first.
    for (seg, c1) in &by_segment[0] {
        if let Some(c2) = by_segment[1].get(seg) {
            return Ok((c1.clone(), c2.clone()));
        }
    }
    if by_segment[0].is_empty() {
        return Err(missing(&nodes[0]));
    }
    Err(missing(&nodes[1]))
}

async fn wan_pair(client: &crate::api::Client, nodes: &[String]) -> Result<(Coordinate, Coordinate), String> {
    let split = |n: &str| -> Option<(String, String)> {
        let mut parts = n.split('.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => Some((a.to_string(), b.to_string())),
            _ => None,
        }
    };
    let (Some((n1, dc1)), Some((n2, dc2))) = (split(&nodes[0]), split(&nodes[1])) else {
        return Err("Node names must be specified as <node name>.<datacenter> with -wan".into());
    };
    let dcs: Vec<Datacenter> = client
        .call(Method::GET, "/v1/coordinate/datacenters", None)
        .await
        .and_then(|r| r.json())
        .map_err(|e| format!("Error getting coordinates: {e}"))?;
    let find = |node: &str, dc: &str| {
        dcs.iter().filter(|d| d.datacenter == dc).find_map(|d| {
            d.coordinates
                .iter()
                .find(|e| e.node.eq_ignore_ascii_case(node))
                .map(|e| (d.area_id.clone(), e.coord.clone()))
        })
    };
    match (find(&n1, &dc1), find(&n2, &dc2)) {
        (Some((a1, c1)), Some((a2, c2))) if a1 == a2 => Ok((c1, c2)),
        (None, _) | (Some(_), Some(_)) => Err(missing(&nodes[0])),
        (Some(_), None) => Err(missing(&nodes[1])),
    }
}
