//! What one successful transaction op returns: shared by the KV ops
//! (`txn`) and the catalog verbs (`txn_catalog`), so neither imports the
//! other for it.

use super::kv::KvEntry;
use super::types::{HealthCheck, Node, NodeService};
use serde::{Deserialize, Serialize};

/// The result of one successful op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnResultItem {
    /// A KV entry; `with_value` is false for writes, whose results carry a null value.
    Kv {
        entry: KvEntry,
        with_value: bool,
    },
    Node(Box<Node>),
    Service(Box<NodeService>),
    Check(Box<HealthCheck>),
}
