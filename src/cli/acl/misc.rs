//! `consul acl bootstrap` and `consul acl set-agent-token`.

use super::model::{AgentTokenBody, BootstrapBody, Token};
use super::{api, emit, fail, format, input, output_format};
use crate::cli::HttpFlags;
use clap::Args;
use format::Format;
use std::io::Read;

#[derive(Args, Debug)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "pretty", help = "Output format {pretty|json}")]
    pub format: String,
    /// Optional file (or `-` for stdin) holding the secret to bootstrap with.
    pub args: Vec<String>,
}

/// Consul's `LoadDataSourceNoRaw`: a file path or `-`, never the value.
fn load_no_raw(source: &str) -> Result<String, String> {
    if source.is_empty() {
        return Err("Failed to load data: must specify a file path or '-' for stdin".to_string());
    }
    if source == "-" {
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf).map_err(|e| format!("Failed to read stdin: {e}"))?;
        return Ok(buf);
    }
    input::load_data_source(&format!("@{source}"))
}

pub async fn bootstrap(a: BootstrapArgs) -> i32 {
    let fmt = match output_format(&a.format) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let secret = match a.args.as_slice() {
        [] => String::new(),
        [source] => match load_no_raw(source) {
            Ok(s) => s.trim().to_string(),
            Err(e) => return fail(format!("Error reading provided token: {e}")),
        },
        _ => return fail("This command takes up to one argument"),
    };
    let client = match a.http.connect() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let body = (!secret.is_empty()).then(|| BootstrapBody { bootstrap_secret: &secret });
    let token: Token = match api::put(&client, "/v1/acl/bootstrap", body.as_ref()).await {
        Ok(t) => t,
        Err(e) => return fail(format!("Failed ACL bootstrapping: {e}")),
    };
    emit(&match fmt {
        Format::Pretty => format::token(&token, false),
        Format::Json => format::json(&token),
    })
}

#[derive(Args, Debug)]
pub struct SetAgentTokenArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// TYPE and TOKEN (TOKEN may be `@file` or `-` for stdin).
    pub args: Vec<String>,
}

/// The CLI's token types and the `/v1/agent/token/:type` each sets.
pub const AGENT_TOKEN_TYPES: &[(&str, &str)] = &[
    ("default", "default"),
    ("agent", "agent"),
    ("recovery", "agent_recovery"),
    ("replication", "replication"),
    ("config_file_service_registration", "config_file_service_registration"),
    ("dns", "dns"),
];

fn agent_token_path(kind: &str) -> Option<&'static str> {
    AGENT_TOKEN_TYPES.iter().find(|(k, _)| *k == kind).map(|(_, p)| *p)
}

/// TYPE and TOKEN from the arguments, with Consul's messages.
pub fn agent_token_args(args: &[String]) -> Result<(String, String), String> {
    match args {
        [] => Err("Missing TYPE and TOKEN arguments".to_string()),
        [kind] if agent_token_path(kind).is_some() => Err("Missing TOKEN argument".to_string()),
        [_] => Err("MISSING TYPE argument".to_string()),
        [kind, token] => Ok((kind.clone(), input::load_data_source(token)?)),
        more => Err(format!("Too many arguments: expected 2 got {}", more.len())),
    }
}

pub async fn set_agent_token(a: SetAgentTokenArgs) -> i32 {
    let (kind, token) = match agent_token_args(&a.args) {
        Ok(v) => v,
        Err(e) => return fail(format!("Error! {e}")),
    };
    let client = match a.http.client() {
        Ok(c) => c,
        Err(e) => return fail(format!("Error connecting to Consul Agent: {e}")),
    };
    let Some(path) = agent_token_path(&kind) else { return fail("Unknown token type") };
    let body = serde_json::to_vec(&AgentTokenBody { token: &token }).unwrap_or_default();
    let url = format!("/v1/agent/token/{path}");
    if let Err(e) = client.call(hyper::Method::PUT, &url, Some(body.into())).await {
        return fail(format!("Failed to set ACL token {kind:?}: {e}"));
    }
    println!("ACL token {kind:?} set successfully");
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn agent_token_arguments() {
        assert_eq!(agent_token_args(&[]).unwrap_err(), "Missing TYPE and TOKEN arguments");
        assert_eq!(agent_token_args(&s(&["dns"])).unwrap_err(), "Missing TOKEN argument");
        assert_eq!(agent_token_args(&s(&["bogus"])).unwrap_err(), "MISSING TYPE argument");
        assert_eq!(
            agent_token_args(&s(&["a", "b", "c"])).unwrap_err(),
            "Too many arguments: expected 2 got 3"
        );
        assert_eq!(agent_token_args(&s(&["agent", "t"])).unwrap(), ("agent".to_string(), "t".to_string()));
        assert_eq!(agent_token_path("recovery"), Some("agent_recovery"));
        assert_eq!(
            agent_token_path("config_file_service_registration"),
            Some("config_file_service_registration")
        );
        assert_eq!(agent_token_path("master"), None);
    }
}
