//! The KV endpoints (Consul's `KVS.*` RPCs) and `/v1/txn` for KV.

use super::blocking::Interest;
use super::Server;
use crate::catalog::txn::{self, TxnOp, TxnOutcome};
use crate::catalog::{Command, CommandResult, KvEntry};
use crate::rpc::{QueryMeta, QueryOptions, RpcError};

impl Server {
    /// One key. The index is the key's modify index, or the KV table's
    /// index when the key does not exist (so a client can block on creation).
    pub async fn kv_get(
        &self,
        key: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Option<KvEntry>), RpcError> {
        let hub = self.consensus.store.kv_hub().clone();
        self.blocking(
            opts,
            || Interest(hub.watch_key(key)),
            |s| match s.kv.get(key) {
                Some(e) => (e.modify_index, Some(e.clone())),
                None => (s.kvs_index(), None),
            },
        )
        .await
    }

    /// Every entry under a prefix, in key order.
    pub async fn kv_list(
        &self,
        prefix: &str,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<KvEntry>), RpcError> {
        let hub = self.consensus.store.kv_hub().clone();
        self.blocking(
            opts,
            || Interest(hub.watch_prefix(prefix)),
            |s| {
                let entries: Vec<KvEntry> = s.kv.list(prefix).cloned().collect();
                (prefix_index(s, prefix), entries)
            },
        )
        .await
    }

    /// Keys under a prefix, optionally collapsed at a separator.
    pub async fn kv_keys(
        &self,
        prefix: &str,
        separator: Option<&str>,
        opts: &QueryOptions,
    ) -> Result<(QueryMeta, Vec<String>), RpcError> {
        let hub = self.consensus.store.kv_hub().clone();
        self.blocking(
            opts,
            || Interest(hub.watch_prefix(prefix)),
            |s| (prefix_index(s, prefix), s.kv.keys(prefix, separator)),
        )
        .await
    }

    /// A KV write (set, cas, delete, delete-cas, delete-tree).
    pub async fn kv_apply(&self, cmd: Command) -> Result<bool, RpcError> {
        match self.apply(cmd).await? {
            CommandResult::Bool(b) => Ok(b),
            CommandResult::Error(e) => Err(RpcError::Internal(e)),
            other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
        }
    }

    /// A transaction. Read-only transactions are served without a Raft
    /// write, under the requested consistency.
    pub async fn txn(
        &self,
        ops: Vec<TxnOp>,
        opts: &QueryOptions,
    ) -> Result<(Option<QueryMeta>, TxnOutcome), RpcError> {
        if ops.iter().all(TxnOp::is_read) {
            let mut meta = self.check_consistency(opts).await?;
            let (index, outcome) =
                self.consensus.store.read(|s| (s.kvs_index(), txn::read(&s.kv, &s.catalog, &ops)));
            meta.index = index;
            return Ok((Some(meta), outcome));
        }
        match self.apply(Command::Txn { ops }).await? {
            CommandResult::Txn(outcome) => Ok((None, outcome)),
            other => Err(RpcError::Internal(format!("unexpected result {other:?}"))),
        }
    }
}

/// The index of a prefix read: the highest modify index under it (counting
/// deletions), or the table's index when nothing is there.
fn prefix_index(s: &crate::catalog::State, prefix: &str) -> u64 {
    match s.kv.max_index_under(prefix) {
        0 => s.kvs_index(),
        i => i,
    }
}
