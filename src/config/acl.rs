//! The `acl` block: ACL settings with Consul's defaults, and the older
//! spellings (`acl.tokens.master`, top-level `acl_*` keys) mapped onto the
//! current ones with one warning each.

use super::file::{Acl, FileConfig};
use super::ConfigError;
use serde_json::Value;
use std::time::Duration;

/// `acl.default_policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DefaultPolicy {
    #[default]
    Allow,
    Deny,
}

impl DefaultPolicy {
    /// As written in config files and Consul's answers.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPolicy::Allow => "allow",
            DefaultPolicy::Deny => "deny",
        }
    }
}

/// `acl.down_policy`: what a token resolves to while no server answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DownPolicy {
    Allow,
    Deny,
    /// Keep using cached answers past their TTL; unknown tokens are denied.
    #[default]
    ExtendCache,
    /// As `ExtendCache`, but an expired entry is served at once while it is
    /// refreshed in the background.
    AsyncCache,
}

impl DownPolicy {
    /// As written in config files and Consul's answers.
    pub fn as_str(self) -> &'static str {
        match self {
            DownPolicy::Allow => "allow",
            DownPolicy::Deny => "deny",
            DownPolicy::ExtendCache => "extend-cache",
            DownPolicy::AsyncCache => "async-cache",
        }
    }
}

/// `acl.tokens`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclTokens {
    pub initial_management: Option<String>,
    pub default: Option<String>,
    pub agent: Option<String>,
    pub agent_recovery: Option<String>,
    pub config_file_service_registration: Option<String>,
    pub dns: Option<String>,
    pub replication: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclSettings {
    pub enabled: bool,
    pub default_policy: DefaultPolicy,
    pub down_policy: DownPolicy,
    pub policy_ttl: Duration,
    pub role_ttl: Duration,
    pub token_ttl: Duration,
    pub enable_key_list_policy: bool,
    pub enable_token_persistence: bool,
    pub enable_token_replication: bool,
    pub tokens: AclTokens,
}

impl Default for AclSettings {
    fn default() -> Self {
        AclSettings {
            enabled: false,
            default_policy: DefaultPolicy::Allow,
            down_policy: DownPolicy::ExtendCache,
            policy_ttl: Duration::from_secs(30),
            role_ttl: Duration::from_secs(30),
            token_ttl: Duration::from_secs(30),
            enable_key_list_policy: false,
            enable_token_persistence: false,
            enable_token_replication: false,
            tokens: AclTokens::default(),
        }
    }
}

/// Builds the ACL settings from a merged config, pushing a warning for
/// each deprecated key used.
pub(super) fn build(c: &FileConfig, warnings: &mut Vec<String>) -> Result<AclSettings, ConfigError> {
    let mut s = AclSettings::default();
    let empty = Acl::default();
    let acl = c.acl.as_ref().unwrap_or(&empty);
    let mut deprecated = |old: &str, new: &str| {
        warnings.push(format!("The '{old}' field is deprecated. Use the '{new}' field instead."));
    };

    if c.acl_datacenter.is_some() {
        deprecated("acl_datacenter", "primary_datacenter");
    }
    // Consul: setting the (legacy) ACL datacenter turned ACLs on.
    s.enabled = acl.enabled.unwrap_or(false) || c.acl_datacenter.is_some();

    let default_policy = pick(
        &acl.default_policy,
        &c.acl_default_policy,
        "acl_default_policy",
        "acl.default_policy",
        &mut deprecated,
    );
    if let Some(p) = default_policy {
        s.default_policy = match p.as_str() {
            "allow" => DefaultPolicy::Allow,
            "deny" => DefaultPolicy::Deny,
            other => {
                return Err(ConfigError::Invalid(format!(
                    "Invalid acl.default_policy {other:?}: must be \"allow\" or \"deny\""
                )))
            }
        };
    }
    let down_policy =
        pick(&acl.down_policy, &c.acl_down_policy, "acl_down_policy", "acl.down_policy", &mut deprecated);
    if let Some(p) = down_policy {
        s.down_policy = match p.as_str() {
            "allow" => DownPolicy::Allow,
            "deny" => DownPolicy::Deny,
            "extend-cache" => DownPolicy::ExtendCache,
            "async-cache" => DownPolicy::AsyncCache,
            other => {
                return Err(ConfigError::Invalid(format!(
                    "Invalid acl.down_policy {other:?}: must be one of \"allow\", \"deny\", \"extend-cache\" or \"async-cache\""
                )))
            }
        };
    }
    let token_ttl = pick(&acl.token_ttl, &c.acl_ttl, "acl_ttl", "acl.token_ttl", &mut deprecated);
    if let Some(t) = token_ttl {
        s.token_ttl = ttl("acl.token_ttl", &t)?;
    }
    if let Some(t) = &acl.policy_ttl {
        s.policy_ttl = ttl("acl.policy_ttl", t)?;
    }
    if let Some(t) = &acl.role_ttl {
        s.role_ttl = ttl("acl.role_ttl", t)?;
    }
    if c.acl_enable_key_list_policy.is_some() {
        deprecated("acl_enable_key_list_policy", "acl.enable_key_list_policy");
    }
    s.enable_key_list_policy = acl.enable_key_list_policy.or(c.acl_enable_key_list_policy).unwrap_or(false);
    s.enable_token_persistence = acl.enable_token_persistence.unwrap_or(false);
    if c.enable_acl_replication.is_some() {
        deprecated("enable_acl_replication", "acl.enable_token_replication");
    }
    s.enable_token_replication = acl.enable_token_replication.or(c.enable_acl_replication).unwrap_or(false);

    let tokens = tokens_block(acl.tokens.as_ref())?;
    let mut token =
        |new: &str, old_in_block: Option<&str>, old_top: (&Option<String>, &str)| -> Option<String> {
            let current = tokens.get(new).cloned();
            let legacy =
                old_in_block.and_then(|o| tokens.get(o).cloned().map(|v| (v, format!("acl.tokens.{o}"))));
            let top = old_top.0.clone().map(|v| (v, old_top.1.to_string()));
            for (_, name) in legacy.iter().chain(top.iter()) {
                warnings.push(format!(
                    "The '{name}' field is deprecated. Use the 'acl.tokens.{new}' field instead."
                ));
            }
            current.or(legacy.map(|l| l.0)).or(top.map(|t| t.0)).filter(|t| !t.is_empty())
        };
    s.tokens.initial_management =
        token("initial_management", Some("master"), (&c.acl_master_token, "acl_master_token"));
    s.tokens.agent_recovery =
        token("agent_recovery", Some("agent_master"), (&c.acl_agent_master_token, "acl_agent_master_token"));
    s.tokens.default = token("default", None, (&c.acl_token, "acl_token"));
    s.tokens.agent = token("agent", None, (&c.acl_agent_token, "acl_agent_token"));
    s.tokens.replication = token("replication", None, (&c.acl_replication_token, "acl_replication_token"));
    s.tokens.config_file_service_registration = token("config_file_service_registration", None, (&None, ""));
    s.tokens.dns = token("dns", None, (&None, ""));
    Ok(s)
}

/// The current key's value, else the deprecated one's (with a warning).
fn pick(
    current: &Option<String>,
    old: &Option<String>,
    old_name: &str,
    new_name: &str,
    deprecated: &mut impl FnMut(&str, &str),
) -> Option<String> {
    if old.is_some() {
        deprecated(old_name, new_name);
    }
    current.clone().or_else(|| old.clone())
}

fn ttl(key: &str, text: &str) -> Result<Duration, ConfigError> {
    crate::duration::parse(text)
        .map_err(|e| ConfigError::Invalid(format!("{key}: invalid duration {text:?}: {e}")))
}

const TOKEN_KEYS: &[&str] = &[
    "initial_management",
    "master",
    "default",
    "agent",
    "agent_recovery",
    "agent_master",
    "config_file_service_registration",
    "dns",
    "replication",
    // Enterprise-only, accepted and ignored as Consul CE does.
    "managed_service_provider",
];

/// `acl.tokens` as a flat map of strings (an HCL block may arrive as a list
/// of one object); unknown keys and non-strings are refused.
fn tokens_block(v: Option<&Value>) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
    let mut out = std::collections::BTreeMap::new();
    let objects: Vec<&Value> = match v {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
    };
    for o in objects {
        let Some(map) = o.as_object() else {
            return Err(ConfigError::Invalid("acl.tokens must be an object".into()));
        };
        for (k, v) in map {
            if !TOKEN_KEYS.contains(&k.as_str()) {
                return Err(ConfigError::Invalid(format!("invalid config key acl.tokens.{k}")));
            }
            if k == "managed_service_provider" {
                continue;
            }
            let Some(s) = v.as_str() else {
                return Err(ConfigError::Invalid(format!("acl.tokens.{k} must be a string")));
            };
            out.insert(k.clone(), s.to_string());
        }
    }
    Ok(out)
}
