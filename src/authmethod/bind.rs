//! Bind names: `${value.x}` interpolation (the subset of HIL Consul's bind
//! names use) and the check that a computed name is valid for its bind
//! type.

use crate::acl::identity;
use std::collections::BTreeMap;

pub const BIND_TYPES: &[&str] = &["service", "node", "role", "policy", "templated-policy"];

/// Replaces each `${var}` with its value from `vars` (lowercased, as
/// Consul does for bind names). An unknown variable or an unterminated
/// `${` is an error.
pub fn interpolate(template: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unterminated interpolation in {template:?}"))?;
        let name = after[..end].trim();
        let value = vars.get(name).ok_or_else(|| format!("unknown variable accessed: {name}"))?;
        out.push_str(&value.to_lowercase());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `name` is a valid target for `bind_type` (templated policies:
/// a known template that renders with `var_name`).
pub fn valid_for(bind_type: &str, name: &str, var_name: Option<&str>) -> Result<bool, String> {
    Ok(match bind_type {
        "service" => identity::is_valid_service_identity_name(name),
        "node" => identity::is_valid_node_identity_name(name),
        "role" => identity::is_valid_role_name(name),
        "policy" => identity::is_valid_policy_name(name),
        "templated-policy" => match identity::template(name) {
            Some(t) => identity::render(t, var_name).map(|_| true).map_err(|e| e.to_string())?,
            None => false,
        },
        other => return Err(format!("unknown binding rule bind type: {other}")),
    })
}

/// The name (and templated-policy variable) a rule binds for `vars`.
pub fn compute(
    bind_type: &str,
    bind_name: &str,
    bind_var_name: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<(String, Option<String>), String> {
    let name = interpolate(bind_name, vars)?;
    let var = bind_var_name.map(|v| interpolate(v, vars)).transpose()?;
    if !valid_for(bind_type, &name, var.as_deref())? {
        return Err(format!("computed {bind_type:?} bind name for bind target is invalid: {name:?}"));
    }
    Ok((name, var))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_and_validity() {
        let vars: BTreeMap<String, String> = [("value.name".to_string(), "Web".to_string())].into();
        assert_eq!(interpolate("svc-${value.name}", &vars).unwrap(), "svc-web");
        assert_eq!(interpolate("${ value.name }-x", &vars).unwrap(), "web-x");
        assert!(interpolate("${value.nope}", &vars)
            .unwrap_err()
            .contains("unknown variable accessed: value.nope"));
        assert!(interpolate("${value.name", &vars).is_err());
        assert!(compute("service", "${value.name}", None, &vars).is_ok());
        assert!(compute("service", "bad name", None, &vars).unwrap_err().contains("is invalid"));
        assert!(compute("templated-policy", "builtin/service", Some("${value.name}"), &vars).is_ok());
        assert!(compute("templated-policy", "builtin/nope", None, &vars).is_err());
        assert!(compute("other", "x", None, &vars).unwrap_err().contains("unknown binding rule bind type"));
    }
}
