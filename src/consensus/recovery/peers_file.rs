//! The `raft/peers.json` file: parsing both formats operators write, and
//! writing the current one.
//!
//! * Current (Consul 1.x, raft protocol 3): a list of objects
//!   `{"id": "<node-id UUID>", "address": "ip:port", "non_voter": false}`;
//!   `non_voter` may be left out.
//! * Old (the handbook's, Consul ≤ 0.8): a list of `"ip:port"` strings,
//!   every one a voter.
//!
//! Owns: the syntax and the checks that need nothing but the file (one
//! format per file, IP literals with a port, no duplicates, at least one
//! voter). Must not look at this server's state: turning addresses into
//! servers is `resolve.rs`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;

/// One server named by peers.json (or by `consul operator raft recover
/// -peers`): an id, an address, or both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    pub id: Option<uuid::Uuid>,
    pub address: Option<SocketAddr>,
    pub non_voter: bool,
}

/// The current format's entry, as written and read.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdEntry {
    id: String,
    address: String,
    #[serde(default)]
    non_voter: bool,
}

/// Parses `ip:port`; host names are refused (a recovery must not depend
/// on DNS, and Raft addresses are IP literals).
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    let addr: SocketAddr = t.parse().map_err(|_| {
        if t.parse::<std::net::IpAddr>().is_ok() {
            format!("{t:?} has no port (write it as ip:port, e.g. {t}:8300)")
        } else {
            format!("{t:?} is not an ip:port address (host names are not accepted)")
        }
    })?;
    if addr.port() == 0 {
        return Err(format!("{t:?} has port 0"));
    }
    if addr.ip().is_unspecified() {
        return Err(format!("{t:?} is not an address servers can reach"));
    }
    Ok(addr)
}

/// Parses a node ID (a UUID, as in `data_dir/node-id`).
pub fn parse_id(text: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(text.trim()).map_err(|e| format!("id {text:?} is not a node ID (a UUID): {e}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Parses the file's bytes into the servers it names and checks what can
/// be checked without this server's state.
pub fn parse(bytes: &[u8]) -> Result<Vec<PeerSpec>, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let items = match value {
        Value::Array(items) => items,
        other => return Err(format!("expected a list of servers, found {}", kind(&other))),
    };
    if items.is_empty() {
        return Err("the list of servers is empty".into());
    }
    let all_strings = items.iter().all(Value::is_string);
    let all_objects = items.iter().all(Value::is_object);
    if !all_strings && !all_objects {
        return Err(
            "entries must be either all \"ip:port\" strings (the old format) or all {\"id\", \"address\", \"non_voter\"} objects"
                .into(),
        );
    }
    let mut specs = Vec::with_capacity(items.len());
    for (n, item) in items.into_iter().enumerate() {
        let at = |e: String| format!("entry {}: {e}", n + 1);
        let spec = match item {
            Value::String(s) => {
                PeerSpec { id: None, address: Some(parse_address(&s).map_err(at)?), non_voter: false }
            }
            other => {
                let e: IdEntry = serde_json::from_value(other).map_err(|e| at(e.to_string()))?;
                PeerSpec {
                    id: Some(parse_id(&e.id).map_err(at)?),
                    address: Some(parse_address(&e.address).map_err(at)?),
                    non_voter: e.non_voter,
                }
            }
        };
        specs.push(spec);
    }
    check_specs(&specs)?;
    Ok(specs)
}

/// No id or address twice, and at least one voter.
pub fn check_specs(specs: &[PeerSpec]) -> Result<(), String> {
    let mut ids = BTreeSet::new();
    let mut addrs = BTreeSet::new();
    for s in specs {
        if let Some(id) = s.id {
            if !ids.insert(id) {
                return Err(format!("id {id} is listed twice"));
            }
        }
        if let Some(a) = s.address {
            if !addrs.insert(a) {
                return Err(format!("address {a} is listed twice"));
            }
        }
    }
    if !specs.iter().any(|s| !s.non_voter) {
        return Err(
            "the configuration has no voter: at least one server must have \"non_voter\": false".into()
        );
    }
    Ok(())
}

/// One server as written to the current format.
pub struct Written {
    pub id: String,
    pub address: SocketAddr,
    pub non_voter: bool,
}

/// The current format, indented as Consul's documentation shows it.
pub fn render_ids(servers: &[Written]) -> Result<String, String> {
    let entries: Vec<IdEntry> = servers
        .iter()
        .map(|s| IdEntry { id: s.id.clone(), address: s.address.to_string(), non_voter: s.non_voter })
        .collect();
    serde_json::to_string_pretty(&entries).map(|s| s + "\n").map_err(|e| e.to_string())
}

/// The old format: voters only, by address.
pub fn render_addresses(addrs: &[SocketAddr]) -> Result<String, String> {
    let list: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
    serde_json::to_string(&list).map(|s| s + "\n").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID1: &str = "0b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0";
    const ID2: &str = "7d3f5e2a-0c1b-4a6d-9e8f-112233445566";

    #[test]
    fn both_formats_parse() {
        let old = parse(br#"["192.168.1.12:8300","192.168.1.11:8300"]"#).unwrap();
        assert_eq!(old.len(), 2);
        assert_eq!(old[0].address, Some("192.168.1.12:8300".parse().unwrap()));
        assert!(old.iter().all(|s| s.id.is_none() && !s.non_voter));

        let text = format!(
            r#"[{{"id": "{ID1}", "address": "10.1.0.1:8300", "non_voter": false}},
                {{"id": "{}", "address": "[fd00::2]:8300", "non_voter": true}}]"#,
            ID2.to_uppercase()
        );
        let new = parse(text.as_bytes()).unwrap();
        assert_eq!(new[0].id, Some(uuid::Uuid::parse_str(ID1).unwrap()));
        assert_eq!(new[1].id, Some(uuid::Uuid::parse_str(ID2).unwrap()), "ids are case-insensitive");
        assert_eq!(new[1].address, Some("[fd00::2]:8300".parse().unwrap()));
        assert!(new[1].non_voter);
        // non_voter may be left out.
        let short = parse(format!(r#"[{{"id": "{ID1}", "address": "10.1.0.1:8300"}}]"#).as_bytes()).unwrap();
        assert!(!short[0].non_voter);
    }

    #[test]
    fn malformed_files_are_refused_with_the_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "not valid JSON"),
            ("null", "found null"),
            ("[]", "empty"),
            ("{\"a\":1}", "found an object"),
            ("[\"10.0.0.1:8300\",", "not valid JSON"),
            ("[\"10.0.0.1\"]", "has no port"),
            ("[\"server1.example.com:8300\"]", "host names are not accepted"),
            ("[\"10.0.0.1:0\"]", "port 0"),
            ("[\"0.0.0.0:8300\"]", "servers can reach"),
            ("[\"10.0.0.1:8300\", \"10.0.0.1:8300\"]", "listed twice"),
            ("[\"10.0.0.1:8300\", 7]", "either all"),
            ("[\"10.0.0.1:8300\", {\"id\": \"x\", \"address\": \"10.0.0.2:8300\"}]", "either all"),
            ("[{\"id\": \"not-a-uuid\", \"address\": \"10.0.0.2:8300\"}]", "not a node ID"),
            ("[{\"address\": \"10.0.0.2:8300\"}]", "missing field `id`"),
            ("[{\"id\": \"0b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0\", \"address\": \"10.0.0.2:8300\", \"nonvoter\": true}]", "unknown field"),
            ("[{\"id\": \"0b1c2d3e-4f50-4172-8394-a5b6c7d8e9f0\", \"address\": \"10.0.0.2:8300\", \"non_voter\": true}]", "no voter"),
        ];
        for (text, want) in cases {
            let e = parse(text.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{text:?} gave {e:?}, wanted {want:?}");
        }
        let dup = format!(
            r#"[{{"id": "{ID1}", "address": "10.0.0.1:8300"}}, {{"id": "{ID1}", "address": "10.0.0.2:8300"}}]"#
        );
        assert!(parse(dup.as_bytes()).unwrap_err().contains("listed twice"));
        // Garbage bytes never panic.
        for seed in 0u8..=255 {
            let junk: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(seed).wrapping_add(seed)).collect();
            let _ = parse(&junk);
        }
    }

    #[test]
    fn rendered_files_parse_back() {
        let w = vec![
            Written { id: ID1.into(), address: "10.0.0.1:8300".parse().unwrap(), non_voter: false },
            Written { id: ID2.into(), address: "10.0.0.2:8300".parse().unwrap(), non_voter: true },
        ];
        let text = render_ids(&w).unwrap();
        let back = parse(text.as_bytes()).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back[1].non_voter);
        let text = render_addresses(&["10.0.0.1:8300".parse().unwrap()]).unwrap();
        assert_eq!(text, "[\"10.0.0.1:8300\"]\n");
    }
}
