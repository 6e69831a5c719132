//! Running one template action: each function of the pipeline in turn,
//! the previous result piped in as its last argument.
//!
//! Owns: the function table (names, argument counts, what each returns)
//! and go-sockaddr's composite functions (`GetPrivateIP` and friends).

use super::parse::{Arg, Command};
use super::{rfc, select, TemplateError};
use crate::config::netif::IfAddr;

/// A value flowing through a pipeline.
enum Val {
    Str(String),
    List(Vec<IfAddr>),
}

impl Val {
    fn kind(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::List(_) => "a list of interfaces",
        }
    }
}

/// Evaluates one action and returns the text it prints.
pub fn run(pipeline: &[Command], interfaces: &[IfAddr]) -> Result<String, TemplateError> {
    let mut value: Option<Val> = None;
    for cmd in pipeline {
        value = Some(call(cmd, value, interfaces)?);
    }
    match value {
        Some(Val::Str(s)) => Ok(s),
        Some(Val::List(_)) => Err(TemplateError::EndsInList),
        None => Err(TemplateError::EmptyAction),
    }
}

fn call(cmd: &Command, input: Option<Val>, ifs: &[IfAddr]) -> Result<Val, TemplateError> {
    let name = cmd.name.as_str();
    let args = &cmd.args;
    let arity = |n: usize| -> Result<(), TemplateError> {
        if args.len() == n {
            Ok(())
        } else {
            Err(TemplateError::Arity { function: name.to_string(), want: n, got: args.len() })
        }
    };
    let source = |n: usize| -> Result<(), TemplateError> {
        if input.is_some() {
            return Err(TemplateError::PipedInput(name.to_string()));
        }
        arity(n)
    };
    match name {
        "GetAllInterfaces" => {
            source(0)?;
            Ok(Val::List(ifs.to_vec()))
        }
        "GetDefaultInterfaces" => {
            source(0)?;
            Ok(Val::List(ifs.iter().filter(|a| a.default_route).cloned().collect()))
        }
        "GetPrivateInterfaces" => {
            source(0)?;
            Ok(Val::List(reachable(ifs, true)?))
        }
        "GetPublicInterfaces" => {
            source(0)?;
            Ok(Val::List(reachable(ifs, false)?))
        }
        "GetPrivateIP" | "GetPublicIP" => {
            source(0)?;
            let list = reachable(ifs, name == "GetPrivateIP")?;
            Ok(Val::Str(list.first().map(|a| a.addr.to_string()).unwrap_or_default()))
        }
        "GetPrivateIPs" | "GetPublicIPs" => {
            source(0)?;
            let private = name == "GetPrivateIPs";
            let list = select::sort("type,size", ifs.to_vec())?;
            let list: Vec<_> = list
                .into_iter()
                .filter(|a| rfc::is_rfc6890(a.addr) == private && (!private || rfc::is_forwardable(a.addr)))
                .collect();
            Ok(Val::Str(join_addresses(&list)))
        }
        "GetInterfaceIP" | "GetInterfaceIPs" => {
            source(1)?;
            let pattern = string_arg(name, &args[0])?;
            let list = select::filter("name", &pattern, true, ifs.to_vec())?;
            let list = if name == "GetInterfaceIP" {
                select::filter("flag", "forwardable", true, list)?
            } else {
                list
            };
            let list = select::sort("type,size", list)?;
            Ok(Val::Str(if name == "GetInterfaceIP" {
                list.first().map(|a| a.addr.to_string()).unwrap_or_default()
            } else {
                join_addresses(&list)
            }))
        }
        "include" | "exclude" => {
            arity(2)?;
            let list = list_input(name, input)?;
            let selector = string_arg(name, &args[0])?;
            let param = string_arg(name, &args[1])?;
            Ok(Val::List(select::filter(&selector, &param, name == "include", list)?))
        }
        "sort" => {
            arity(1)?;
            let list = list_input(name, input)?;
            Ok(Val::List(select::sort(&string_arg(name, &args[0])?, list)?))
        }
        "unique" => {
            arity(1)?;
            let list = list_input(name, input)?;
            Ok(Val::List(select::unique(&string_arg(name, &args[0])?, list)?))
        }
        "limit" | "offset" => {
            arity(1)?;
            let list = list_input(name, input)?;
            let n = int_arg(name, &args[0])?;
            Ok(Val::List(if name == "limit" { select::limit(n, list)? } else { select::offset(n, list)? }))
        }
        "attr" => {
            arity(1)?;
            let list = list_input(name, input)?;
            let attr = string_arg(name, &args[0])?;
            select::check_attr(&attr)?;
            Ok(Val::Str(match list.first() {
                Some(a) => select::attr(&attr, a)?,
                None => String::new(),
            }))
        }
        "join" => {
            arity(2)?;
            let list = list_input(name, input)?;
            let attr = string_arg(name, &args[0])?;
            let sep = string_arg(name, &args[1])?;
            select::check_attr(&attr)?;
            let parts = list.iter().map(|a| select::attr(&attr, a)).collect::<Result<Vec<_>, _>>()?;
            Ok(Val::Str(parts.join(&sep)))
        }
        "math" | "Attr" | "GetIfAddr" | "GetIfAddrs" | "printf" | "print" | "println" => {
            Err(TemplateError::UnsupportedFunction(name.to_string()))
        }
        other => Err(TemplateError::UnknownFunction(other.to_string())),
    }
}

/// go-sockaddr's private/public interface lists: IP addresses that are
/// forwardable, on interfaces that are up, default-route interface first
/// then IPv4 before IPv6 then larger networks first, and inside (private)
/// or outside (public) RFC 6890's special-purpose blocks.
fn reachable(ifs: &[IfAddr], private: bool) -> Result<Vec<IfAddr>, TemplateError> {
    let list: Vec<IfAddr> =
        ifs.iter().filter(|a| a.flags.up && rfc::is_forwardable(a.addr)).cloned().collect();
    let list = select::sort("default,type,size", list)?;
    Ok(list.into_iter().filter(|a| rfc::is_rfc6890(a.addr) == private).collect())
}

fn join_addresses(list: &[IfAddr]) -> String {
    list.iter().map(|a| a.addr.to_string()).collect::<Vec<_>>().join(" ")
}

fn list_input(name: &str, input: Option<Val>) -> Result<Vec<IfAddr>, TemplateError> {
    match input {
        Some(Val::List(l)) => Ok(l),
        Some(other) => Err(TemplateError::NotAList { function: name.to_string(), got: other.kind() }),
        None => Err(TemplateError::NeedsList(name.to_string())),
    }
}

/// A string argument; a number is taken as its decimal text, so
/// `include "size" 24` works like `include "size" "24"`.
fn string_arg(_name: &str, arg: &Arg) -> Result<String, TemplateError> {
    Ok(match arg {
        Arg::Str(s) => s.clone(),
        Arg::Int(i) => i.to_string(),
    })
}

fn int_arg(name: &str, arg: &Arg) -> Result<i64, TemplateError> {
    match arg {
        Arg::Int(i) => Ok(*i),
        Arg::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| TemplateError::NotANumber { function: name.to_string(), got: arg.describe() }),
    }
}
