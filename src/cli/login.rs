//! `consul login` and `consul logout`: trade a bearer token (a JWT) for a
//! Consul token through an auth method, and give such a token back.

use super::HttpFlags;
use clap::{ArgAction, Args};
use serde_json::{json, Map, Value};

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    #[arg(long, default_value = "", help = "Name of the auth method to login to.")]
    pub method: String,
    #[arg(
        long = "bearer-token-file",
        default_value = "",
        help = "Path to a file containing a secret bearer token to use with this auth method."
    )]
    pub bearer_token_file: String,
    #[arg(
        long = "token-sink-file",
        default_value = "",
        help = "The most recent token's SecretID is kept up to date in this file."
    )]
    pub token_sink_file: String,
    #[arg(long, action = ArgAction::Append, help = "Metadata to set on the token, formatted as key=value. This flag may be specified multiple times to set multiple meta fields.")]
    pub meta: Vec<String>,
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("{msg}");
    1
}

pub fn login(a: LoginArgs) -> i32 {
    super::block_on(async move {
        if a.method.is_empty() {
            return fail("Missing required '-method' flag");
        }
        if a.token_sink_file.is_empty() {
            return fail("Missing required '-token-sink-file' flag");
        }
        if a.bearer_token_file.is_empty() {
            return fail("Missing required '-bearer-token-file' flag");
        }
        let mut meta = Map::new();
        for kv in &a.meta {
            let Some((k, v)) = kv.split_once('=') else {
                return fail(format!("invalid value {kv:?} for flag -meta: Missing = in argument"));
            };
            meta.insert(k.to_string(), json!(v));
        }
        let bearer = match std::fs::read_to_string(&a.bearer_token_file) {
            Ok(b) => b.trim().to_string(),
            Err(e) => return fail(format!("Error reading bearer token file: {e}")),
        };
        if bearer.is_empty() {
            return fail(format!("No bearer token found in {}", a.bearer_token_file));
        }
        let client = match a.http.connect() {
            Ok(c) => c,
            Err(code) => return code,
        };
        let body = json!({"AuthMethod": a.method, "BearerToken": bearer, "Meta": meta});
        let token: Value = match client
            .call(hyper::Method::POST, "/v1/acl/login", Some(body.to_string().into()))
            .await
            .and_then(|r| r.json())
        {
            Ok(t) => t,
            Err(e) => return fail(format!("Error logging in: {e}")),
        };
        let secret = token.get("SecretID").and_then(Value::as_str).unwrap_or_default();
        if let Err(e) = write_sink(&a.token_sink_file, secret) {
            return fail(format!("Error writing token to file sink: {e}"));
        }
        0
    })
}

/// Writes the secret readable by its owner only, replacing the file whole.
fn write_sink(path: &str, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = format!("{path}.tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(secret.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub http: HttpFlags,
}

pub fn logout(a: LogoutArgs) -> i32 {
    super::block_on(async move {
        let client = match a.http.connect() {
            Ok(c) => c,
            Err(code) => return code,
        };
        match client.call(hyper::Method::POST, "/v1/acl/logout", None).await {
            Ok(_) => 0,
            Err(e) => fail(format!("Error destroying token: {e}")),
        }
    })
}
