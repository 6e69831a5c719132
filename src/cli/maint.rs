//! `consul maint`: node and service maintenance mode, or (without flags)
//! a list of what is in maintenance now.

use super::HttpFlags;
use crate::api::encode;
use crate::catalog::types::{NODE_MAINT, SERVICE_MAINT_PREFIX};
use clap::Args;
use hyper::Method;
use serde_json::Value;

#[derive(Args, Debug)]
pub struct MaintArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Enable maintenance mode")]
    pub enable: Option<bool>,
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "Disable maintenance mode")]
    pub disable: Option<bool>,
    #[arg(long, default_value = "", help = "Text describing the maintenance reason")]
    pub reason: String,
    #[arg(long, default_value = "", help = "Control maintenance mode for a specific service ID")]
    pub service: String,
}

pub fn run(a: MaintArgs) -> i32 {
    let enable = a.enable.unwrap_or(false);
    let disable = a.disable.unwrap_or(false);
    if enable && disable {
        eprintln!("Only one of -enable or -disable may be provided");
        return 1;
    }
    if !enable && !a.reason.is_empty() {
        eprintln!("Reason may only be provided with -enable");
        return 1;
    }
    if !enable && !disable && !a.service.is_empty() {
        eprintln!("Service requires either -enable or -disable");
        return 1;
    }
    super::block_on(async move {
        let client = match a.http.connect() {
            Ok(c) => c,
            Err(code) => return code,
        };
        if !enable && !disable {
            return list(&client).await;
        }
        let mut q = format!("enable={enable}");
        if !a.reason.is_empty() {
            q.push_str(&format!("&reason={}", encode(&a.reason)));
        }
        let what = if enable { "enabled" } else { "disabled" };
        if a.service.is_empty() {
            if let Err(e) = client.call(Method::PUT, &format!("/v1/agent/maintenance?{q}"), None).await {
                eprintln!("Error {} node maintenance: {e}", if enable { "enabling" } else { "disabling" });
                return 1;
            }
            println!("Node maintenance is now {what}");
        } else {
            let path = format!("/v1/agent/service/maintenance/{}?{q}", encode(&a.service));
            if let Err(e) = client.call(Method::PUT, &path, None).await {
                eprintln!("Error {} service maintenance: {e}", if enable { "enabling" } else { "disabling" });
                return 1;
            }
            println!("Service maintenance is now {what} for {:?}", a.service);
        }
        0
    })
}

async fn list(client: &crate::api::Client) -> i32 {
    let checks: serde_json::Map<String, Value> =
        match client.call(Method::GET, "/v1/agent/checks", None).await.and_then(|r| r.json()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("Error getting checks: {e}");
                return 1;
            }
        };
    let str_of = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    for (id, c) in &checks {
        if id == NODE_MAINT {
            println!("Node:");
            println!("  Name:   {}", str_of(c, "Node"));
            println!("  Reason: {}", str_of(c, "Notes"));
            println!();
        } else if let Some(service) = id.strip_prefix(SERVICE_MAINT_PREFIX) {
            println!("Service:");
            println!("  ID:     {service}");
            println!("  Reason: {}", str_of(c, "Notes"));
            println!();
        }
    }
    0
}
