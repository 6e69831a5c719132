//! Config entries on a server: normalize and validate (one entry, then the
//! graph of routers and splitters as it would be after the write), propose
//! through Raft with Consul's CAS rules, blocking reads, and the discovery
//! chain compiled from the stored entries.

use super::Server;
use crate::catalog::config_entries::TOPIC_CONFIG_ENTRIES;
use crate::catalog::{Command, CommandResult, State};
use crate::config_entry::{self as ce, chain, ConfigEntry, EntryError};
use crate::rpc::{QueryMeta, QueryOptions, RpcError};
use serde_json::{Map, Value};

/// The SNI trust domain named in discovery chain targets. This agent runs
/// no Connect CA, so there is no cluster ID to name: the nil UUID says so.
pub const TRUST_DOMAIN: &str = "00000000-0000-0000-0000-000000000000.consul";

fn entry_error(e: EntryError) -> RpcError {
    match e {
        EntryError::Decode(t) => RpcError::BadRequest(t),
        // Consul's RPC returns validation errors as plain errors: a 500.
        EntryError::Invalid(t) => RpcError::Internal(t),
    }
}

/// The names of every chain a router or splitter defines, plus `extra`.
fn chains(state: &State, extra: &str) -> Vec<String> {
    let mut out: Vec<String> = state
        .config_entries
        .of_kind(ce::SERVICE_ROUTER)
        .chain(state.config_entries.of_kind(ce::SERVICE_SPLITTER))
        .map(|e| e.name.clone())
        .collect();
    if !extra.is_empty() {
        out.push(extra.to_string());
    }
    out.sort();
    out.dedup();
    out
}

/// A lookup over the stored entries with one proposed change applied
/// (`Some(entry)`: written; `None`: deleted).
fn lookup_with<'a>(
    state: &'a State,
    change: (&'a str, &'a str, Option<&'a ConfigEntry>),
) -> impl Fn(&str, &str) -> Option<Map<String, Value>> + 'a {
    move |kind: &str, name: &str| {
        if kind == change.0 && name == change.1 {
            return change.2.map(ConfigEntry::fields);
        }
        state.config_entries.get(kind, name).map(ConfigEntry::fields)
    }
}

/// What `service-defaults` and `proxy-defaults` resolve to for a service
/// (Consul's resolved service config, as used by `?merge-central-config`):
/// see `config_entry::resolved_service_config`.
pub fn resolved_service_config(state: &State, service: &str) -> Value {
    let lookup = |k: &str, n: &str| state.config_entries.get(k, n).map(ConfigEntry::fields);
    ce::resolved_service_config(service, &lookup)
}

impl Server {
    /// `config_entries.bootstrap`, on gaining leadership: each entry that
    /// does not exist yet is written (check-and-set on absence, so one a
    /// user wrote or changed meanwhile is left alone), as Consul's leader
    /// does, and only in the primary datacenter. Failures are logged; the
    /// next leadership change tries again.
    pub async fn bootstrap_config_entries(&self) {
        let primary = &self.settings.acl.primary_datacenter;
        if !primary.is_empty() && *primary != self.settings.datacenter {
            return;
        }
        for entry in &self.settings.config_entry_bootstrap {
            let exists =
                self.consensus.store.read(|s| s.config_entries.get(&entry.kind, &entry.name).is_some());
            if exists {
                continue;
            }
            match self.config_entry_apply(entry.clone(), Some(0)).await {
                Ok(true) => {
                    tracing::info!(target: "agent.server", kind = %entry.kind, name = %entry.name, "bootstrapped config entry")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(target: "agent.server", kind = %entry.kind, name = %entry.name, error = %e, "failed to bootstrap config entry")
                }
            }
        }
    }

    pub async fn config_entry_apply(&self, entry: ConfigEntry, cas: Option<u64>) -> Result<bool, RpcError> {
        let mut name = entry.name.clone();
        let mut fields = entry.fields();
        ce::normalize_and_validate(&entry.kind, &mut name, &mut fields).map_err(entry_error)?;
        let entry = ConfigEntry::new(&entry.kind, &name, &fields);
        self.consensus.store.read(|s| {
            let lookup = lookup_with(s, (&entry.kind, &entry.name, Some(&entry)));
            let own = if matches!(entry.kind.as_str(), ce::SERVICE_ROUTER | ce::SERVICE_SPLITTER) {
                entry.name.as_str()
            } else {
                ""
            };
            ce::validate_graph(&chains(s, own), &lookup).map_err(|e| RpcError::Internal(e.0))
        })?;
        self.propose_config(Command::ConfigEntrySet { entry: Box::new(entry), cas }).await
    }

    pub async fn config_entry_delete(
        &self,
        kind: &str,
        name: &str,
        cas: Option<u64>,
    ) -> Result<bool, RpcError> {
        ce::check_kind(kind).map_err(entry_error)?;
        let name = match kind {
            ce::PROXY_DEFAULTS if name.is_empty() || name == ce::PROXY_DEFAULTS_NAME => {
                ce::PROXY_DEFAULTS_NAME
            }
            ce::PROXY_DEFAULTS => {
                return Err(RpcError::Internal(format!(
                    "invalid name ({name:?}), only {:?} is supported",
                    ce::PROXY_DEFAULTS_NAME
                )))
            }
            ce::MESH => ce::MESH_NAME,
            _ => name,
        };
        self.consensus.store.read(|s| {
            let lookup = lookup_with(s, (kind, name, None));
            let chains: Vec<String> = chains(s, "")
                .into_iter()
                .filter(|c| !(c == name && matches!(kind, ce::SERVICE_ROUTER | ce::SERVICE_SPLITTER)))
                .collect();
            ce::validate_graph(&chains, &lookup).map_err(|e| RpcError::Internal(e.0))
        })?;
        self.propose_config(Command::ConfigEntryDelete {
            kind: kind.to_string(),
            name: name.to_string(),
            cas,
        })
        .await
    }

    async fn propose_config(&self, cmd: Command) -> Result<bool, RpcError> {
        match self.apply(cmd).await? {
            CommandResult::Bool(ok) => Ok(ok),
            CommandResult::Error(e) => Err(RpcError::BadRequest(e)),
            other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
        }
    }

    fn config_topic(&self) -> impl Fn() -> super::blocking::Interest + '_ {
        let hub = self.consensus.store.catalog_hub().clone();
        move || super::blocking::Interest(hub.watch_key(TOPIC_CONFIG_ENTRIES))
    }

    pub async fn config_entry_get(
        &self,
        kind: &str,
        name: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Option<ConfigEntry>), RpcError> {
        ce::check_kind(kind).map_err(entry_error)?;
        let name = match kind {
            ce::MESH => ce::MESH_NAME,
            _ => name,
        };
        self.blocking(opts, self.config_topic(), |s| {
            (s.config_entries.index, s.config_entries.get(kind, name).cloned())
        })
        .await
    }

    /// The entries of `kinds` (empty: all), by kind then name.
    pub async fn config_entry_list(
        &self,
        kinds: &[String],
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<ConfigEntry>), RpcError> {
        for k in kinds {
            ce::check_kind(k).map_err(entry_error)?;
        }
        self.blocking(opts, self.config_topic(), |s| {
            let list = if kinds.is_empty() {
                s.config_entries.list().cloned().collect()
            } else {
                kinds.iter().flat_map(|k| s.config_entries.of_kind(k).cloned().collect::<Vec<_>>()).collect()
            };
            (s.config_entries.index, list)
        })
        .await
    }

    pub async fn discovery_chain(
        &self,
        service: &str,
        compile_dc: &str,
        overrides: (String, String, String),
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, String), RpcError> {
        let dc = if compile_dc.is_empty() { self.settings.datacenter.as_str() } else { compile_dc };
        let overrides = chain::Overrides {
            protocol: overrides.0,
            connect_timeout: overrides.1,
            mesh_gateway_mode: overrides.2,
        };
        let (meta, compiled) = self
            .blocking(opts, self.config_topic(), |s| {
                let lookup = |k: &str, n: &str| s.config_entries.get(k, n).map(ConfigEntry::fields);
                let ctx =
                    chain::Context { datacenter: dc, trust_domain: TRUST_DOMAIN, overrides: &overrides };
                (s.config_entries.index, chain::compile(service, &ctx, &lookup))
            })
            .await?;
        let compiled = compiled.map_err(RpcError::Internal)?;
        Ok((meta, serde_json::json!({ "Chain": compiled }).to_string()))
    }

    pub async fn resolved_service_config(
        &self,
        service: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, String), RpcError> {
        let (meta, v) = self
            .blocking(opts, self.config_topic(), |s| {
                (s.config_entries.index, resolved_service_config(s, service))
            })
            .await?;
        Ok((meta, v.to_string()))
    }
}
