//! `consul event`: fires a user event through the local agent and prints
//! `Event ID: <id>`, with Consul's flags, messages and exit codes.

use super::HttpFlags;
use crate::api::encode;
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use serde::Deserialize;

#[derive(Args, Debug)]
pub struct EventArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "Name of the event")]
    pub name: String,
    #[arg(long, default_value = "", help = "Regular expression to filter on node names")]
    pub node: String,
    #[arg(long, default_value = "", help = "Regular expression to filter on service instances")]
    pub service: String,
    #[arg(
        long,
        default_value = "",
        help = "Regular expression to filter on service tags. Must be used with -service"
    )]
    pub tag: String,
    /// The optional payload.
    pub args: Vec<String>,
}

pub const HELP: &str = "Usage: consul event [options] [payload]

  Dispatches a custom user event across a datacenter. An event must provide
  a name, but a payload is optional. Events support filtering using
  regular expressions on node name, service, and tag definitions.";

/// Checks the filter expressions locally, with Consul's CLI messages.
pub fn validate_filters(node: &str, service: &str, tag: &str) -> Result<(), String> {
    for (what, expr) in [("node", node), ("service", service), ("tag", tag)] {
        if !expr.is_empty() {
            if let Err(e) = regex_lite::Regex::new(expr) {
                return Err(format!("Failed to compile {what} filter regexp: {e}"));
            }
        }
    }
    if !tag.is_empty() && service.is_empty() {
        return Err("Cannot provide tag filter without service filter.".into());
    }
    Ok(())
}

/// The path and query of a fire request.
pub fn fire_path(name: &str, node: &str, service: &str, tag: &str) -> String {
    let mut path = format!("/v1/event/fire/{}", encode(name));
    let mut sep = '?';
    for (k, v) in [("node", node), ("service", service), ("tag", tag)] {
        if !v.is_empty() {
            path.push(sep);
            path.push_str(k);
            path.push('=');
            path.push_str(&encode(v));
            sep = '&';
        }
    }
    path
}

#[derive(Deserialize)]
struct Fired {
    #[serde(rename = "ID")]
    id: String,
}

pub fn run(a: EventArgs) -> i32 {
    if a.name.is_empty() {
        eprintln!("Event name must be specified\n\n{HELP}");
        return 1;
    }
    if let Err(e) = validate_filters(&a.node, &a.service, &a.tag) {
        eprintln!("{e}");
        return 1;
    }
    let payload = match a.args.as_slice() {
        [] => None,
        [p] => Some(Bytes::from(p.clone())),
        _ => {
            eprintln!("Too many command line arguments.\n\n{HELP}");
            return 1;
        }
    };
    super::block_on(async move {
        let client = match a.http.client() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("Error connecting to Consul agent: {e}");
                return 1;
            }
        };
        if let Err(e) = client.call(Method::GET, "/v1/agent/self", None).await {
            eprintln!("Error querying Consul agent: {e}");
            return 1;
        }
        let path = fire_path(&a.name, &a.node, &a.service, &a.tag);
        match client.call(Method::PUT, &path, payload).await.and_then(|r| r.json::<Fired>()) {
            Ok(f) => {
                println!("Event ID: {}", f.id);
                0
            }
            Err(e) => {
                eprintln!("Error firing event: {e}");
                1
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_with_consuls_messages() {
        assert!(validate_filters("", "", "").is_ok());
        assert_eq!(
            validate_filters("", "", "x").unwrap_err(),
            "Cannot provide tag filter without service filter."
        );
        assert!(validate_filters("(", "", "")
            .unwrap_err()
            .starts_with("Failed to compile node filter regexp: "));
        assert!(validate_filters("", "[", "")
            .unwrap_err()
            .starts_with("Failed to compile service filter regexp: "));
    }

    #[test]
    fn fire_path_encodes_the_filters() {
        assert_eq!(fire_path("deploy", "", "", ""), "/v1/event/fire/deploy");
        assert_eq!(
            fire_path("deploy", "^web", "api", "v1"),
            "/v1/event/fire/deploy?node=%5Eweb&service=api&tag=v1"
        );
    }
}
