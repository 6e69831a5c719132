//! `consul validate PATH...`: loads config files and directories (JSON
//! and HCL) the way the agent would and reports the first problem.

use crate::config::{self, Format, LoadOptions, SourceSpec};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Default)]
pub struct ValidateArgs {
    #[arg(
        long = "config-format",
        help = "Config files are in this format irrespective of their extension (json or hcl)"
    )]
    pub config_format: Option<String>,
    #[arg(long = "quiet", num_args = 0..=1, require_equals = true, default_missing_value = "true", help = "When given, a successful run will produce no output")]
    pub quiet: Option<bool>,
    /// Files or directories to validate
    pub paths: Vec<PathBuf>,
}

pub fn run(args: &ValidateArgs) -> i32 {
    if args.paths.is_empty() {
        eprintln!("Must specify at least one config file or directory");
        return 1;
    }
    let format = match &args.config_format {
        None => None,
        Some(f) => match Format::parse(f) {
            Some(f) => Some(f),
            None => {
                eprintln!("Invalid config format: {f}");
                return 1;
            }
        },
    };
    let sources = args
        .paths
        .iter()
        .map(|p| if p.is_dir() { SourceSpec::Dir(p.clone()) } else { SourceSpec::File(p.clone()) })
        .collect();
    // Validation must not depend on this machine's interfaces: an unset
    // bind address and go-sockaddr templates are resolved on the machine
    // that runs the agent; here templates are only checked.
    // Like Consul's validate, a fragment without data_dir is still valid.
    let defaults = serde_json::json!({"data_dir": "/tmp/consul-validate"});
    let opts = LoadOptions {
        dev: false,
        sources,
        format,
        flags: None,
        hcl: Vec::new(),
        defaults: Some(defaults),
        validate_only: true,
    };
    match config::load(&opts) {
        Ok(loaded) => {
            // Watches are parsed when the agent starts; a bad one must fail here too.
            if let Err(e) = crate::watch::parse_agent_watches(&loaded.config.watches) {
                eprintln!("Config validation failed: {e}");
                return 1;
            }
            for w in &loaded.warnings {
                eprintln!("[WARN] {w}");
            }
            if !args.quiet.unwrap_or(false) {
                println!("Configuration is valid!");
            }
            0
        }
        Err(e) => {
            eprintln!("Config validation failed: {e}");
            1
        }
    }
}
