//! `consul join`, `consul leave` and `consul force-leave`.

use super::HttpFlags;
use crate::api::encode;
use clap::Args;
use hyper::Method;

#[derive(Args, Debug)]
pub struct JoinArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Joins a server to another server in the WAN pool")]
    pub wan: Option<bool>,
    /// Addresses of agents to join.
    pub addresses: Vec<String>,
}

pub fn join(a: JoinArgs) -> i32 {
    if a.addresses.is_empty() {
        eprintln!("At least one address to join must be specified.");
        return 1;
    }
    super::block_on(async move {
        let client = match a.http.connect() {
            Ok(c) => c,
            Err(code) => return code,
        };
        let wan = if a.wan.unwrap_or(false) { "?wan=1" } else { "" };
        let mut joined = 0;
        for addr in &a.addresses {
            match client.call(Method::PUT, &format!("/v1/agent/join/{}{wan}", encode(addr)), None).await {
                Ok(_) => joined += 1,
                Err(e) => eprintln!("Error joining address '{addr}': {e}"),
            }
        }
        if joined == 0 {
            eprintln!("Failed to join any nodes.");
            return 1;
        }
        println!("Successfully joined cluster by contacting {joined} nodes.");
        0
    })
}

#[derive(Args, Debug)]
pub struct LeaveArgs {
    #[command(flatten)]
    pub http: HttpFlags,
}

pub fn leave(a: LeaveArgs) -> i32 {
    super::block_on(async move {
        let client = match a.http.connect() {
            Ok(c) => c,
            Err(code) => return code,
        };
        match client.call(Method::PUT, "/v1/agent/leave", None).await {
            Ok(_) => {
                println!("Graceful leave complete");
                0
            }
            Err(e) => {
                eprintln!("Error leaving: {e}");
                1
            }
        }
    })
}

#[derive(Args, Debug)]
pub struct ForceLeaveArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Remove agent forcibly from list of members")]
    pub prune: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Exclusively leave the agent from the WAN serf pool")]
    pub wan: Option<bool>,
    /// The node to remove.
    pub node: Vec<String>,
}

pub fn force_leave(a: ForceLeaveArgs) -> i32 {
    let [node] = a.node.as_slice() else {
        eprintln!("A single node name must be specified to force leave.");
        return 1;
    };
    super::block_on(async move {
        let client = match a.http.connect() {
            Ok(c) => c,
            Err(code) => return code,
        };
        let mut params = Vec::new();
        if a.prune.unwrap_or(false) {
            params.push("prune=1");
        }
        if a.wan.unwrap_or(false) {
            params.push("wan=1");
        }
        let q = if params.is_empty() { String::new() } else { format!("?{}", params.join("&")) };
        match client.call(Method::PUT, &format!("/v1/agent/force-leave/{}{q}", encode(node)), None).await {
            Ok(_) => 0,
            Err(e) => {
                eprintln!("Error force leaving: {e}");
                1
            }
        }
    })
}
