//! `consul members`.

use super::HttpFlags;
use clap::Args;
use hyper::Method;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct MembersArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Provides detailed information about nodes")]
    pub detailed: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "List the members of the WAN pool (servers only)")]
    pub wan: Option<bool>,
    #[arg(long, default_value = ".*", help = "Only members whose status matches this regular expression")]
    pub status: String,
    #[arg(long, default_value = "_all", help = "(Enterprise-only) segment")]
    pub segment: String,
    #[arg(long, default_value = "", help = "Filter to use with the request")]
    pub filter: String,
    #[arg(long, default_value = "", help = "(Enterprise-only) partition")]
    pub partition: String,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct Member {
    pub name: String,
    pub addr: String,
    pub port: u16,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub status: u8,
}

/// Serf's member status names.
pub fn status_name(code: u8) -> &'static str {
    match code {
        1 => "alive",
        2 => "leaving",
        3 => "left",
        4 => "failed",
        _ => "none",
    }
}

fn addr(m: &Member) -> String {
    if m.addr.contains(':') {
        format!("[{}]:{}", m.addr, m.port)
    } else {
        format!("{}:{}", m.addr, m.port)
    }
}

pub fn run(a: MembersArgs) -> i32 {
    super::block_on(async move {
        let re = match regex_lite::Regex::new(&a.status) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("Failed to compile status regexp: {e}");
                return 1;
            }
        };
        let client = match a.http.client() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("Error connecting to Consul agent: {e}");
                return 1;
            }
        };
        let path = if a.wan.unwrap_or(false) { "/v1/agent/members?wan=1" } else { "/v1/agent/members" };
        let mut members: Vec<Member> = match client.call(Method::GET, path, None).await.and_then(|r| r.json())
        {
            Ok(m) => m,
            Err(e) => {
                eprintln!("Error retrieving members: {e}");
                return 1;
            }
        };
        for m in &mut members {
            m.tags.entry("ap".into()).or_insert_with(|| "default".into());
            let is_server = m.tags.get("role").map(String::as_str) == Some("consul");
            if is_server {
                m.tags.insert("segment".into(), "<all>".into());
            } else if m.tags.get("segment").is_none_or(|s| s.is_empty()) {
                m.tags.insert("segment".into(), "<default>".into());
            }
        }
        members.retain(|m| re.is_match(status_name(m.status)));
        if members.is_empty() {
            return 2;
        }
        members.sort_by(|x, y| {
            let server = |m: &Member| m.tags.get("role").map(String::as_str) != Some("consul");
            (server(x), x.tags.get("segment"), &x.name).cmp(&(server(y), y.tags.get("segment"), &y.name))
        });
        let mut rows = Vec::new();
        if a.detailed.unwrap_or(false) {
            rows.push(vec!["Node".into(), "Address".into(), "Status".into(), "Tags".into()]);
            for m in &members {
                let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                rows.push(vec![m.name.clone(), addr(m), status_name(m.status).into(), tags.join(",")]);
            }
        } else {
            rows.push(
                ["Node", "Address", "Status", "Type", "Build", "Protocol", "DC", "Partition", "Segment"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            );
            for m in &members {
                let build = match m.tags.get("build") {
                    None => "< 0.3".to_string(),
                    Some(b) => b.split(':').next().unwrap_or("").to_string(),
                };
                let kind = match m.tags.get("role").map(String::as_str) {
                    Some("consul") => "server",
                    Some("node") => "client",
                    _ => "unknown",
                };
                let tag = |k: &str| m.tags.get(k).cloned().unwrap_or_default();
                if kind == "unknown" {
                    rows.push(vec![
                        m.name.clone(),
                        addr(m),
                        status_name(m.status).into(),
                        kind.into(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                    ]);
                } else {
                    rows.push(vec![
                        m.name.clone(),
                        addr(m),
                        status_name(m.status).into(),
                        kind.into(),
                        build,
                        tag("vsn"),
                        tag("dc"),
                        tag("ap"),
                        tag("segment"),
                    ]);
                }
            }
        }
        println!("{}", super::columnize::format(&rows));
        0
    })
}
