//! `consul reload`: asks the agent to re-read its configuration.

use super::HttpFlags;
use clap::Args;
use hyper::Method;

#[derive(Args, Debug)]
pub struct ReloadArgs {
    #[command(flatten)]
    pub http: HttpFlags,
}

pub fn run(a: ReloadArgs) -> i32 {
    super::block_on(async move {
        let client = match a.http.connect() {
            Ok(c) => c,
            Err(code) => return code,
        };
        match client.call(Method::PUT, "/v1/agent/reload", None).await {
            Ok(_) => {
                println!("Configuration reload triggered");
                0
            }
            Err(e) => {
                eprintln!("Error reloading: {e}");
                1
            }
        }
    })
}
