//! The tokens an agent uses itself and lends to callers without one
//! (`acl.tokens`), changeable at run time through `/v1/agent/token/:type`
//! and, with `acl.enable_token_persistence`, saved to
//! `data_dir/acl-tokens.json` (mode 0600) so they survive a restart.

use crate::config::acl::{AclSettings, AclTokens};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// Which token `/v1/agent/token/:type` sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Default,
    Agent,
    AgentRecovery,
    Replication,
    ConfigFileServiceRegistration,
    Dns,
}

impl TokenKind {
    /// The URL's type, current and legacy names (Consul's list).
    pub fn parse(s: &str) -> Option<TokenKind> {
        Some(match s {
            "default" | "acl_token" => TokenKind::Default,
            "agent" | "acl_agent_token" => TokenKind::Agent,
            "agent_recovery" | "agent_master" | "acl_agent_master_token" => TokenKind::AgentRecovery,
            "replication" | "acl_replication_token" => TokenKind::Replication,
            "config_file_service_registration" => TokenKind::ConfigFileServiceRegistration,
            "dns" => TokenKind::Dns,
            _ => return None,
        })
    }
}

/// The persisted file's shape (only tokens set through the API).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Persisted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    agent_recovery: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replication: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config_file_service_registration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dns: Option<String>,
}

pub struct TokenStore {
    tokens: RwLock<AclTokens>,
    persisted: RwLock<Persisted>,
    /// `Some` when persistence is on and there is a data dir.
    file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenStoreError {
    #[error("failed to persist tokens to {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

impl TokenStore {
    /// The configured tokens, overridden by persisted ones when
    /// persistence is on (as Consul does). A persisted file that does not
    /// read is reported once and ignored.
    pub fn new(cfg: &AclSettings, data_dir: Option<&Path>) -> TokenStore {
        let file =
            cfg.enable_token_persistence.then(|| data_dir.map(|d| d.join("acl-tokens.json"))).flatten();
        let mut tokens = cfg.tokens.clone();
        let mut persisted = Persisted::default();
        if let Some(path) = &file {
            match std::fs::read(path) {
                Ok(bytes) => match serde_json::from_slice::<Persisted>(&bytes) {
                    Ok(p) => persisted = p,
                    Err(e) => {
                        tracing::warn!(target: "agent", path = %path.display(), error = %e, "ignoring unreadable persisted ACL tokens")
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(target: "agent", path = %path.display(), error = %e, "could not read persisted ACL tokens")
                }
            }
            let over = |slot: &mut Option<String>, v: &Option<String>| {
                if let Some(v) = v.clone().filter(|v| !v.is_empty()) {
                    *slot = Some(v);
                }
            };
            over(&mut tokens.agent, &persisted.agent);
            over(&mut tokens.agent_recovery, &persisted.agent_recovery);
            over(&mut tokens.default, &persisted.default);
            over(&mut tokens.replication, &persisted.replication);
            over(&mut tokens.config_file_service_registration, &persisted.config_file_service_registration);
            over(&mut tokens.dns, &persisted.dns);
        }
        TokenStore { tokens: RwLock::new(tokens), persisted: RwLock::new(persisted), file }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, AclTokens> {
        self.tokens.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The token for requests that carry none (`acl.tokens.default`).
    pub fn user_token(&self) -> Option<String> {
        self.read().default.clone()
    }

    /// The agent's own token: `agent`, else `default`.
    pub fn agent_token(&self) -> Option<String> {
        let t = self.read();
        t.agent.clone().or_else(|| t.default.clone())
    }

    pub fn agent_recovery_token(&self) -> Option<String> {
        self.read().agent_recovery.clone()
    }

    /// DNS lookups: `dns`, else `default`.
    pub fn dns_token(&self) -> Option<String> {
        let t = self.read();
        t.dns.clone().or_else(|| t.default.clone())
    }

    /// Services and checks from config files: their own token, else the
    /// agent's, else the default.
    pub fn config_file_registration_token(&self) -> Option<String> {
        let t = self.read();
        t.config_file_service_registration.clone().or_else(|| t.agent.clone()).or_else(|| t.default.clone())
    }

    /// The `agent` token alone (no fallback), for display.
    pub fn agent_token_only(&self) -> Option<String> {
        self.read().agent.clone()
    }

    /// The token a secondary datacenter's servers replicate ACLs with
    /// (`acl.tokens.replication`).
    pub fn replication_token(&self) -> Option<String> {
        self.read().replication.clone()
    }

    pub fn dns_token_only(&self) -> Option<String> {
        self.read().dns.clone()
    }

    pub fn config_file_token_only(&self) -> Option<String> {
        self.read().config_file_service_registration.clone()
    }

    /// Sets one token (an empty value clears it) and persists when on.
    pub fn set(&self, kind: TokenKind, value: &str) -> Result<(), TokenStoreError> {
        let v = Some(value.to_string()).filter(|v| !v.is_empty());
        {
            let mut t = self.tokens.write().unwrap_or_else(|e| e.into_inner());
            let mut p = self.persisted.write().unwrap_or_else(|e| e.into_inner());
            let (slot, saved) = match kind {
                TokenKind::Default => (&mut t.default, &mut p.default),
                TokenKind::Agent => (&mut t.agent, &mut p.agent),
                TokenKind::AgentRecovery => (&mut t.agent_recovery, &mut p.agent_recovery),
                TokenKind::Replication => (&mut t.replication, &mut p.replication),
                TokenKind::ConfigFileServiceRegistration => {
                    (&mut t.config_file_service_registration, &mut p.config_file_service_registration)
                }
                TokenKind::Dns => (&mut t.dns, &mut p.dns),
            };
            *slot = v.clone();
            *saved = v;
        }
        self.persist()
    }

    fn persist(&self) -> Result<(), TokenStoreError> {
        let Some(path) = &self.file else { return Ok(()) };
        let body = serde_json::to_vec(&*self.persisted.read().unwrap_or_else(|e| e.into_inner()))
            .unwrap_or_default();
        let err = |source| TokenStoreError::Write { path: path.display().to_string(), source };
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            #[cfg(unix)]
            use std::os::unix::fs::OpenOptionsExt;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            opts.mode(0o600);
            let mut f = opts.open(&tmp).map_err(err)?;
            f.write_all(&body).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_tokens_override_config_and_stay_private() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = AclSettings { enable_token_persistence: true, ..Default::default() };
        cfg.tokens.agent = Some("from-config".into());
        let store = TokenStore::new(&cfg, Some(dir.path()));
        assert_eq!(store.agent_token().as_deref(), Some("from-config"));
        store.set(TokenKind::Agent, "from-api").unwrap();
        store.set(TokenKind::Dns, "dns-1").unwrap();
        let again = TokenStore::new(&cfg, Some(dir.path()));
        assert_eq!(again.agent_token().as_deref(), Some("from-api"));
        assert_eq!(again.dns_token().as_deref(), Some("dns-1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("acl-tokens.json")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Without persistence nothing is written.
        let plain = AclSettings::default();
        let dir2 = tempfile::tempdir().unwrap();
        TokenStore::new(&plain, Some(dir2.path())).set(TokenKind::Agent, "x").unwrap();
        assert!(!dir2.path().join("acl-tokens.json").exists());
        assert_eq!(TokenKind::parse("agent_master"), Some(TokenKind::AgentRecovery));
        assert_eq!(TokenKind::parse("bogus"), None);
    }
}
