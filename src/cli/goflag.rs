//! Go-style flags on top of clap. Consul's CLI uses Go's `flag` package:
//! `-flag`, `--flag`, `-flag=v` and `-flag v` all work, boolean flags take
//! an optional `=value`, and parsing stops at the first positional argument.
//! clap only knows `--long` flags, so argv is rewritten before clap sees it.

use clap::{ArgAction, Command};
use std::ffi::OsString;

/// Rewrites Go-style argv into clap's `--long` form for the subcommand path
/// it names. Returns Go's error text for flags the command does not define.
pub fn normalize(root: &Command, args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut iter = args.into_iter();
    if let Some(program) = iter.next() {
        out.push(program);
    }
    let rest: Vec<OsString> = iter.collect();
    let mut i = 0;
    let mut cmd = root;
    // Descend through subcommand names.
    while i < rest.len() {
        let Some(tok) = rest[i].to_str() else { break };
        match cmd.find_subcommand(tok) {
            Some(sub) => {
                out.push(rest[i].clone());
                cmd = sub;
                i += 1;
            }
            None => break,
        }
    }
    while i < rest.len() {
        let tok = match rest[i].to_str() {
            Some(t) => t.to_string(),
            None => {
                out.push("--".into());
                out.extend(rest[i..].iter().cloned());
                return Ok(out);
            }
        };
        if tok == "--" {
            out.extend(rest[i..].iter().cloned());
            return Ok(out);
        }
        if !tok.starts_with('-') || tok == "-" {
            // First positional: Go stops parsing flags here.
            out.push("--".into());
            out.extend(rest[i..].iter().cloned());
            return Ok(out);
        }
        let body = tok.trim_start_matches('-');
        if tok.starts_with("---") || body.is_empty() {
            return Err(format!("bad flag syntax: {tok}"));
        }
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        if name == "h" || name == "help" {
            out.push("--help".into());
            i += 1;
            continue;
        }
        let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(name)) else {
            return Err(format!("flag provided but not defined: -{name}"));
        };
        let takes_separate_value =
            matches!(arg.get_action(), ArgAction::Set | ArgAction::Append) && !arg.is_require_equals_set();
        match value {
            Some(v) => out.push(format!("--{name}={v}").into()),
            None => {
                out.push(format!("--{name}").into());
                if takes_separate_value {
                    match rest.get(i + 1) {
                        Some(v) => {
                            // Attach with '=' so values starting with '-' stay values.
                            out.pop();
                            let mut joined = OsString::from(format!("--{name}="));
                            joined.push(v);
                            out.push(joined);
                            i += 1;
                        }
                        None => return Err(format!("flag needs an argument: -{name}")),
                    }
                }
            }
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, Command};

    fn cmd() -> Command {
        Command::new("consul").subcommand(
            Command::new("kv").subcommand(
                Command::new("put")
                    .arg(Arg::new("flags").long("flags").action(ArgAction::Set))
                    .arg(
                        Arg::new("base64")
                            .long("base64")
                            .num_args(0..=1)
                            .require_equals(true)
                            .default_missing_value("true"),
                    )
                    .arg(Arg::new("args").num_args(0..)),
            ),
        )
    }

    fn norm(args: &[&str]) -> Result<Vec<String>, String> {
        normalize(&cmd(), args.iter().map(OsString::from).collect())
            .map(|v| v.into_iter().map(|s| s.into_string().unwrap()).collect())
    }

    #[test]
    fn go_forms() {
        assert_eq!(
            norm(&["consul", "kv", "put", "-flags", "5", "-base64", "k", "-v"]).unwrap(),
            vec!["consul", "kv", "put", "--flags=5", "--base64", "--", "k", "-v"]
        );
        assert_eq!(
            norm(&["consul", "kv", "put", "--flags=-1", "-base64=false", "k"]).unwrap(),
            vec!["consul", "kv", "put", "--flags=-1", "--base64=false", "--", "k"]
        );
    }

    #[test]
    fn undefined_flag_is_go_error() {
        assert_eq!(
            norm(&["consul", "kv", "put", "-nope", "k"]).unwrap_err(),
            "flag provided but not defined: -nope"
        );
        assert_eq!(norm(&["consul", "kv", "put", "-flags"]).unwrap_err(), "flag needs an argument: -flags");
    }
}
