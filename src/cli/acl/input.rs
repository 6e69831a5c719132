//! Turning flag values into request parts, with Consul's error texts:
//! `@file` / `-` data sources, `-service-identity`, `-node-identity`,
//! `-templated-policy` with `-var`, and `-expires-ttl`.

use super::model::{NodeIdentity, ServiceIdentity, TemplateVariables, TemplatedPolicy};
use std::io::Read;

/// Consul's `helpers.LoadDataSource`: `@path` reads a file, a lone `-`
/// reads stdin, anything else is the value itself.
pub fn load_data_source(value: &str) -> Result<String, String> {
    if let Some(path) = value.strip_prefix('@') {
        return std::fs::read_to_string(path)
            .map_err(|e| format!("Failed to read file: open {path}: {}", io_text(&e)));
    }
    if value == "-" {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .map_err(|e| format!("Failed to read stdin: {}", io_text(&e)))?;
        return Ok(buf);
    }
    Ok(value.to_string())
}

/// Go's wording of an IO error: lower case, no " (os error N)".
fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error ").next().unwrap_or_default().to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// `NAME` or `NAME:DC1,DC2`.
pub fn service_identities(raw: &[String]) -> Result<Vec<ServiceIdentity>, String> {
    raw.iter()
        .map(|s| {
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                [name] => Ok(ServiceIdentity { service_name: name.to_string(), datacenters: vec![] }),
                [name, dcs] => Ok(ServiceIdentity {
                    service_name: name.to_string(),
                    datacenters: dcs.split(',').map(str::to_string).collect(),
                }),
                _ => Err(format!("Malformed -service-identity argument: {s:?}")),
            }
        })
        .collect()
}

/// `NODE:DC`.
pub fn node_identities(raw: &[String]) -> Result<Vec<NodeIdentity>, String> {
    raw.iter()
        .map(|s| {
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                [node, dc] => Ok(NodeIdentity { node_name: node.to_string(), datacenter: dc.to_string() }),
                _ => Err(format!("Malformed -node-identity argument: {s:?}")),
            }
        })
        .collect()
}

/// `-templated-policy NAME` with its `-var VAR:VALUE` list (the built-in
/// templates take at most `name`). No template and no variables: none.
pub fn templated_policies(name: &str, vars: &[String]) -> Result<Vec<TemplatedPolicy>, String> {
    if name.is_empty() {
        if !vars.is_empty() {
            return Err("Cannot specify -var without -templated-policy".to_string());
        }
        return Ok(vec![]);
    }
    let mut variables: Option<TemplateVariables> = None;
    for v in vars {
        match v.split_once(':') {
            Some(("name", value)) if !value.contains(':') => {
                variables = Some(TemplateVariables { name: value.to_string() })
            }
            Some((key, value)) if !key.is_empty() && !value.contains(':') => {
                return Err(format!("Unknown templated policy variable: {key:?}"))
            }
            _ => return Err(format!("Malformed -var argument: {v:?}, expecting VariableName:Value")),
        }
    }
    Ok(vec![TemplatedPolicy {
        template_name: name.to_string(),
        template_variables: variables,
        datacenters: vec![],
    }])
}

/// `-expires-ttl` in Go's duration syntax, sent on as Go prints it.
pub fn expires_ttl(raw: &str) -> Result<Option<String>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    let d = crate::duration::parse(raw)
        .map_err(|_| format!("invalid value {raw:?} for flag -expires-ttl: parse error"))?;
    if d.is_zero() {
        return Ok(None);
    }
    Ok(Some(crate::duration::format(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn identities_parse_as_consul() {
        let got = service_identities(&s(&["web", "db:east,west"])).unwrap();
        assert_eq!(got[0], ServiceIdentity { service_name: "web".into(), datacenters: vec![] });
        assert_eq!(got[1].datacenters, vec!["east", "west"]);
        assert_eq!(
            service_identities(&s(&["a:b:c"])).unwrap_err(),
            "Malformed -service-identity argument: \"a:b:c\""
        );
        assert_eq!(node_identities(&s(&["n1:dc1"])).unwrap()[0].datacenter, "dc1");
        assert_eq!(node_identities(&s(&["n1"])).unwrap_err(), "Malformed -node-identity argument: \"n1\"");
    }

    #[test]
    fn templated_policy_with_vars() {
        let got = templated_policies("builtin/service", &s(&["name:api"])).unwrap();
        assert_eq!(got[0].template_name, "builtin/service");
        assert_eq!(got[0].var_name(), Some("api"));
        assert!(templated_policies("", &[]).unwrap().is_empty());
        assert!(templated_policies("builtin/dns", &s(&["nocolon"]))
            .unwrap_err()
            .starts_with("Malformed -var"));
        assert!(templated_policies("", &s(&["name:x"])).is_err());
    }

    #[test]
    fn data_sources() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.hcl");
        std::fs::write(&path, "key \"\" { policy = \"read\" }\n").unwrap();
        assert_eq!(
            load_data_source(&format!("@{}", path.display())).unwrap(),
            "key \"\" { policy = \"read\" }\n"
        );
        assert_eq!(load_data_source("literal").unwrap(), "literal");
        assert_eq!(load_data_source("").unwrap(), "");
        assert_eq!(
            load_data_source("@/nonexistent/r.hcl").unwrap_err(),
            "Failed to read file: open /nonexistent/r.hcl: no such file or directory"
        );
    }

    #[test]
    fn expires_ttl_in_gos_form() {
        assert_eq!(expires_ttl("15m").unwrap().as_deref(), Some("15m0s"));
        assert_eq!(expires_ttl("").unwrap(), None);
        assert!(expires_ttl("soon").is_err());
    }
}
