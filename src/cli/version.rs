//! `consul version`.

use clap::Args;

#[derive(Args, Debug, Default)]
pub struct VersionArgs {
    #[arg(long = "format", help = "Output format {pretty|json}")]
    pub format: Option<String>,
}

pub fn run(args: &VersionArgs) -> i32 {
    match args.format.as_deref() {
        None | Some("pretty") => {
            println!("Consul v{}", crate::version::CONSUL_VERSION);
            println!("Revision {}", crate::version::revision());
            println!(
                "Protocol {} spoken by default, understands {} to {} (agent will automatically use protocol >2 when speaking to compatible agents)",
                crate::version::PROTOCOL,
                crate::version::PROTOCOL_MIN,
                crate::version::PROTOCOL_MAX
            );
            0
        }
        Some("json") => {
            let v = serde_json::json!({
                "Version": crate::version::CONSUL_VERSION,
                "Revision": crate::version::revision(),
                "Prerelease": "",
                "FIPS": "",
                "RPC": {"Default": crate::version::PROTOCOL, "Min": crate::version::PROTOCOL_MIN, "Max": crate::version::PROTOCOL_MAX},
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            0
        }
        Some(other) => {
            eprintln!("Invalid format: {other}");
            1
        }
    }
}
