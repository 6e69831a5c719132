//! The RPC method table: every call one agent can make of a server, each
//! defined once as an argument struct, a wire number and a reply type.
//!
//! Adding a method is one line in `method_table!` plus its handler (an
//! `impl Serve` in `server/endpoints.rs`); a method without a handler does
//! not compile, because the server's wire dispatcher is generated from the
//! same table. In process, a call on a server goes straight to the handler
//! (`Server::serve::<M>`): no encoding, no enum to match. Over the wire it
//! travels as a `WireCall` (wire number, `RequestContext`, postcard body)
//! and comes back as a `WireReply`.
//!
//! Stable wire format: numbers are never reused or renumbered; a change to
//! an argument or reply type needs a new number (and `frame::VERSION` tells
//! peers apart).

use super::acl::{AclReplicationData, AclReplicationStatus, AclTokenFilter, RemoteToken, ResolvedToken};
use super::context::RequestContext;
use super::message::{NodeDump, QueryExecution, QueryMeta, RaftRpc, RpcError, ServiceFilter, ServiceHealth};
use super::operator::{AutopilotHealth, RaftConfiguration};
use crate::acl::model::{AuthMethod, BindingRule, Policy, Role, Token};
use crate::catalog::acl::AclIndexes;
use crate::catalog::coordinates::{CoordinateEntry, DatacenterCoordinates};
use crate::catalog::operator::AutopilotConfig;
use crate::catalog::queries::PreparedQuery;
use crate::catalog::sessions::Session;
use crate::catalog::txn::{TxnOp, TxnOutcome};
use crate::catalog::types::{Deregistration, HealthCheck, Node, NodeService, Registration};
use crate::catalog::{Command, CommandResult, KvEntry};
use crate::config_entry::gateways::GatewayService;
use crate::config_entry::ConfigEntry;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One RPC method: its arguments are `Self`, its answer `Reply`.
pub trait Method: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The wire number (never reused).
    const ID: u16;
    /// The name in logs and errors.
    const NAME: &'static str;
    type Reply: Serialize + DeserializeOwned + Send + Sync + 'static;
}

/// Every method, once. The grammar is
/// `/// doc` `NUMBER Name { field: Type, .. } -> Reply;`.
/// `$callback` receives the whole table: `define_methods` below turns it
/// into types, the server turns it into its wire dispatcher.
macro_rules! method_table {
    ($callback:ident) => {
        $callback! {
            /// Liveness of a server's RPC port.
            1 Ping {} -> ();
            /// Raft traffic between servers, for the server whose Raft id
            /// is `target` (a server that came back with a new id at the
            /// same address must not answer traffic meant for its old
            /// self). The payload is encoded by `consensus::network`.
            2 Raft { kind: RaftRpc, target: u64, payload: Bytes } -> Bytes;
            /// A follower forwards a write to the leader.
            3 Propose { command: Command } -> CommandResult;
            /// A follower asks the leader to confirm leadership and return
            /// the index a linearizable read must wait for.
            4 ReadIndex {} -> u64;
            5 KvGet { key: String } -> (QueryMeta, Option<KvEntry>);
            6 KvList { prefix: String } -> (QueryMeta, Vec<KvEntry>);
            7 KvKeys { prefix: String, separator: Option<String> } -> (QueryMeta, Vec<String>);
            8 KvApply { command: Command } -> bool;
            /// `/v1/txn`: no read meta when the transaction wrote.
            9 Txn { ops: Vec<TxnOp> } -> (Option<QueryMeta>, TxnOutcome);
            10 CatalogRegister { registration: Registration } -> ();
            11 CatalogDeregister { deregistration: Deregistration } -> ();
            12 CatalogNodes { node_meta: Vec<(String, String)> } -> (QueryMeta, Vec<Node>);
            /// Shared reply: the server caches it per services-table index.
            13 CatalogServices { node_meta: Vec<(String, String)> }
                -> (QueryMeta, Arc<BTreeMap<String, Vec<String>>>);
            14 CatalogService { name: String, filter: ServiceFilter } -> (QueryMeta, Vec<(Node, NodeService)>);
            15 CatalogNode { name: String } -> (QueryMeta, Option<(Node, Vec<NodeService>)>);
            16 HealthService { name: String, filter: ServiceFilter } -> (QueryMeta, Vec<ServiceHealth>);
            17 HealthNode { name: String } -> (QueryMeta, Vec<HealthCheck>);
            18 HealthChecks { service: String, node_meta: Vec<(String, String)> }
                -> (QueryMeta, Vec<HealthCheck>);
            19 HealthState { state: String, node_meta: Vec<(String, String)> }
                -> (QueryMeta, Vec<HealthCheck>);
            /// The leader's server address, or "".
            20 StatusLeader {} -> String;
            /// The Raft voters' server addresses.
            21 StatusPeers {} -> Vec<String>;
            /// Returns the new session's id.
            22 SessionCreate { session: Session } -> String;
            23 SessionDestroy { id: String } -> ();
            24 SessionInfo { id: String } -> (QueryMeta, Vec<Session>);
            25 SessionNode { node: String } -> (QueryMeta, Vec<Session>);
            26 SessionList {} -> (QueryMeta, Vec<Session>);
            /// Renewed on the leader, where the TTL timers live.
            27 SessionRenew { id: String } -> Vec<Session>;
            /// Removes a server from the Raft configuration (on the leader).
            28 RaftRemovePeer { id: Option<String>, address: Option<String> } -> ();
            /// What an IP address belongs to (DNS PTR): a node, else a
            /// service, as `(is_node, name, datacenter)`.
            29 CatalogReverse { ip: String } -> Option<(bool, String, String)>;
            /// The Raft configuration (`?stale` answers locally, else the leader).
            30 RaftConfigurationGet {} -> RaftConfiguration;
            /// The stored autopilot configuration, or the leader's file settings.
            31 AutopilotGetConfig {} -> AutopilotConfig;
            32 AutopilotSetConfig { config: AutopilotConfig, cas: Option<u64> } -> bool;
            /// Autopilot's health view (answered by the leader).
            33 AutopilotHealthGet {} -> AutopilotHealth;
            /// Every datacenter this server knows over the WAN, its own first.
            34 Datacenters {} -> Vec<String>;
            /// Broadcast an encoded user event in this server's LAN pool (a
            /// `?dc=` event fired in another datacenter).
            35 EventFire { serf_name: String, body: Vec<u8> } -> ();
            /// The encoded state at the applied index (`/v1/snapshot` GET):
            /// `(meta, raft index, raft term, encoded state)`.
            36 SnapshotSave {} -> (QueryMeta, u64, u64, Bytes);
            /// Replaces the state with an encoded one (`/v1/snapshot` PUT).
            37 SnapshotRestore { state: Bytes } -> ();
            /// `/v1/acl/bootstrap`: the new management token. `secret`:
            /// the caller's `BootstrapSecret`, else a random one.
            38 AclBootstrap { secret: Option<String> } -> Token;
            /// Creates (`create`) or updates a token. Unset AccessorID and
            /// SecretID are generated; policy and role links may name
            /// their target by ID or by name.
            39 AclTokenSet { token: Token, create: bool } -> Token;
            /// A token by AccessorID (`None`: not found).
            40 AclTokenRead { accessor: String } -> (QueryMeta, Option<Token>);
            /// The caller's own token (`/v1/acl/token/self`).
            41 AclTokenSelf {} -> Token;
            42 AclTokenList { filter: AclTokenFilter } -> (QueryMeta, Vec<Token>);
            43 AclTokenDelete { accessor: String } -> bool;
            44 AclTokenClone { accessor: String, description: Option<String> } -> Token;
            45 AclPolicySet { policy: Policy, create: bool } -> Policy;
            /// A policy by ID, or by name when `by_name`.
            46 AclPolicyRead { key: String, by_name: bool } -> (QueryMeta, Option<Policy>);
            47 AclPolicyList {} -> (QueryMeta, Vec<Policy>);
            48 AclPolicyDelete { id: String } -> bool;
            49 AclRoleSet { role: Role, create: bool } -> Role;
            50 AclRoleRead { key: String, by_name: bool } -> (QueryMeta, Option<Role>);
            51 AclRoleList { policy: Option<String> } -> (QueryMeta, Vec<Role>);
            52 AclRoleDelete { id: String } -> bool;
            /// What the caller's token allows, for an agent that enforces
            /// its own endpoints (a client agent caches the answer).
            53 AclResolve {} -> ResolvedToken;
            /// A server that is leaving asks to be taken (by its node ID)
            /// out of the Raft configuration; any server passes it on to
            /// the leader. Answers once it is out: removed now, or already
            /// gone. Servers only.
            61 RaftLeave { id: String } -> ();
            /// An agent's network coordinate, queued for the next batch.
            70 CoordinateUpdate { entry: CoordinateEntry } -> bool;
            /// Every node's coordinates (blocking), optionally one segment's.
            71 CoordinateNodes { segment: Option<String> } -> (QueryMeta, Vec<CoordinateEntry>);
            /// One node's coordinates (one per segment; empty: none).
            72 CoordinateNode { node: String } -> (QueryMeta, Vec<CoordinateEntry>);
            /// The WAN coordinates of every datacenter's servers.
            73 CoordinateDatacenters {} -> Vec<DatacenterCoordinates>;
            /// Creates (`create`: a new ID) or updates a prepared query; its ID.
            74 QuerySet { query: PreparedQuery, create: bool } -> String;
            75 QueryDelete { id: String } -> ();
            /// One query by ID (a one-element list, as Consul answers).
            76 QueryGet { id: String } -> (QueryMeta, Vec<PreparedQuery>);
            77 QueryList {} -> (QueryMeta, Vec<PreparedQuery>);
            /// Runs the query `key` names (ID, name or template match).
            /// `near` is the request's `?near`, `agent_node` the asking
            /// agent (`_agent`), `source_ip` the client's address (`_ip`).
            78 QueryExecute { key: String, limit: u64, near: String, agent_node: String, source_ip: String }
                -> (QueryMeta, QueryExecution);
            /// A server of another datacenter runs a rendered query (failover).
            79 QueryExecuteRemote { query: PreparedQuery, limit: u64 } -> QueryExecution;
            /// The query `key` resolves to, rendered.
            80 QueryExplain { key: String } -> (QueryMeta, PreparedQuery);
            /// `/v1/operator/usage`: service, instance and node counts.
            135 OperatorUsage {} -> (QueryMeta, crate::rpc::operator::ServiceUsage);
            // --- ACLs across datacenters (100-109) ---
            /// Asked of the primary datacenter by a server of `datacenter`
            /// that does not hold the caller's token: the token resolved
            /// for that datacenter. A local token of another datacenter
            /// is refused.
            100 AclResolveRemote { datacenter: String } -> RemoteToken;
            /// A secondary's replication loop asks the primary for what
            /// changed since `have` (blocking on the ACL tables); global
            /// tokens only when `tokens`.
            101 AclReplicationFetch { have: AclIndexes, tokens: bool } -> (QueryMeta, AclReplicationData);
            /// `/v1/acl/replication`: the leader's replication status.
            102 AclReplicationStatusGet {} -> AclReplicationStatus;

            // --- issue 22: reads (140-144) ---
            /// As `ReadIndex`, for a `?consistent` read: the leader always
            /// confirms its leadership with a quorum round, never its lease.
            140 ReadIndexConsistent {} -> u64;
            /// Creates (`create`) or updates an auth method (by name).
            90 AclAuthMethodSet { method: AuthMethod, create: bool } -> AuthMethod;
            91 AclAuthMethodRead { name: String } -> (QueryMeta, Option<AuthMethod>);
            92 AclAuthMethodList {} -> (QueryMeta, Vec<AuthMethod>);
            /// Also deletes its binding rules and its logins' tokens.
            93 AclAuthMethodDelete { name: String } -> bool;
            /// Creates (no ID) or updates (an existing ID) a binding rule.
            94 AclBindingRuleSet { rule: BindingRule, create: bool } -> BindingRule;
            95 AclBindingRuleRead { id: String } -> (QueryMeta, Option<BindingRule>);
            96 AclBindingRuleList { auth_method: Option<String> } -> (QueryMeta, Vec<BindingRule>);
            97 AclBindingRuleDelete { id: String } -> bool;
            /// `/v1/acl/login`: a token from a bearer token the method accepts.
            98 AclLogin { auth_method: String, bearer_token: String, meta: BTreeMap<String, String> } -> Token;
            /// `/v1/acl/logout`: deletes the caller's own login token.
            99 AclLogout {} -> bool;
            /// Creates or replaces a config entry (decoded, not yet
            /// validated: the server normalizes and validates it); `cas`:
            /// only if the stored ModifyIndex equals it (0: only if absent).
            110 ConfigEntryApply { entry: ConfigEntry, cas: Option<u64> } -> bool;
            111 ConfigEntryGet { kind: String, name: String } -> (QueryMeta, Option<ConfigEntry>);
            /// The entries of one kind.
            112 ConfigEntryList { kind: String } -> (QueryMeta, Vec<ConfigEntry>);
            /// The entries of these kinds (empty: every kind).
            113 ConfigEntryListAll { kinds: Vec<String> } -> (QueryMeta, Vec<ConfigEntry>);
            /// Whether it was deleted (a plain delete of a missing entry is true).
            114 ConfigEntryDelete { kind: String, name: String, cas: Option<u64> } -> bool;
            /// The compiled discovery chain of `service` (JSON text of Consul's
            /// `Chain` object); `compile_dc` "" = this datacenter; overrides
            /// are `(protocol, connect timeout, mesh gateway mode)`.
            115 DiscoveryChainGet { service: String, compile_dc: String, overrides: (String, String, String) }
                -> (QueryMeta, String);
            /// What `proxy-defaults` and `service-defaults` resolve to for a
            /// service (JSON text; `config_entry::resolved_service_config`).
            116 ResolvedServiceConfig { service: String } -> (QueryMeta, String);
            /// The services a terminating or ingress gateway fronts (from its
            /// config entry; `*` expanded over the catalog).
            155 GatewayServices { gateway: String } -> (QueryMeta, Vec<GatewayService>);
            /// The ingress gateway instances, with health, routing to a service.
            156 HealthIngress { service: String, filter: ServiceFilter } -> (QueryMeta, Vec<ServiceHealth>);
            // The web UI's internal reads (`/v1/internal/ui/*`): every node
            // with its services and checks, or just the named one (none for
            // an unknown name).
            160 InternalNodeDump { node: Option<String> } -> (QueryMeta, Vec<NodeDump>);
        }
    };
}
pub(crate) use method_table;

/// Turns the table into one argument struct and one `Method` impl per
/// method, plus `ALL`.
macro_rules! define_methods {
    ($( $(#[$doc:meta])* $id:literal $name:ident { $($field:ident : $ty:ty),* $(,)? } -> $reply:ty; )*) => {
        $(
            $(#[$doc])*
            #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
            pub struct $name { $(pub $field: $ty),* }

            impl Method for $name {
                const ID: u16 = $id;
                const NAME: &'static str = stringify!($name);
                type Reply = $reply;
            }
        )*

        /// Every method as `(wire number, name)`, in table order.
        pub const ALL: &[(u16, &str)] = &[$(($id, stringify!($name))),*];

        /// Decodes a call's arguments as its method's type, without serving
        /// it (the fuzzer's view of the RPC port).
        pub fn check_args(call: &WireCall) -> Result<(), RpcError> {
            match call.method {
                $($id => call.args::<$name>().map(|_| ()),)*
                other => Err(RpcError::BadRequest(format!("unknown RPC method {other}"))),
            }
        }
    };
}
method_table!(define_methods);

/// A method call as it travels between agents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireCall {
    /// `Method::ID`.
    pub method: u16,
    pub ctx: RequestContext,
    /// The postcard-encoded arguments.
    pub body: Bytes,
}

/// A method's answer as it travels back: the postcard-encoded reply or
/// the error that ended the call.
pub type WireReply = Result<Bytes, RpcError>;

impl WireCall {
    pub fn new<M: Method>(ctx: RequestContext, args: &M) -> Result<WireCall, RpcError> {
        let body = postcard::to_allocvec(args)
            .map_err(|e| RpcError::Internal(format!("encoding {} request: {e}", M::NAME)))?;
        Ok(WireCall { method: M::ID, ctx, body: body.into() })
    }

    /// The arguments, if this call is method `M`.
    pub fn args<M: Method>(&self) -> Result<M, RpcError> {
        postcard::from_bytes(&self.body)
            .map_err(|e| RpcError::BadRequest(format!("malformed {} request: {e}", M::NAME)))
    }
}

/// Encodes a handler's answer.
pub fn encode_reply<M: Method>(reply: Result<M::Reply, RpcError>) -> WireReply {
    let reply = reply?;
    postcard::to_allocvec(&reply)
        .map(Bytes::from)
        .map_err(|e| RpcError::Internal(format!("encoding {} reply: {e}", M::NAME)))
}

/// Decodes the answer to a call of method `M`.
pub fn decode_reply<M: Method>(reply: WireReply) -> Result<M::Reply, RpcError> {
    postcard::from_bytes(&reply?).map_err(|e| RpcError::Internal(format!("malformed {} reply: {e}", M::NAME)))
}

/// Whether a method is part of the servers' own protocol (Raft, writes and
/// read-index checks forwarded to the leader): with
/// `verify_server_hostname` only a peer with a server's certificate may
/// call it.
pub fn is_server_only(id: u16) -> bool {
    id == Raft::ID || id == Propose::ID || id == ReadIndex::ID || id == ReadIndexConsistent::ID
}

/// The name of a wire number, for errors about unknown methods.
pub fn name_of(id: u16) -> Option<&'static str> {
    ALL.iter().find(|(i, _)| *i == id).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_numbers_are_unique_and_named_once() {
        let mut ids: Vec<u16> = ALL.iter().map(|(i, _)| *i).collect();
        let mut names: Vec<&str> = ALL.iter().map(|(_, n)| *n).collect();
        ids.sort_unstable();
        names.sort_unstable();
        let n = ALL.len();
        ids.dedup();
        names.dedup();
        assert_eq!((ids.len(), names.len()), (n, n), "a wire number or name appears twice");
    }

    #[test]
    fn call_and_reply_round_trip() {
        let ctx = RequestContext { token: Some("t".into()), ..Default::default() };
        let call = WireCall::new(ctx.clone(), &KvGet { key: "a/b".into() }).unwrap();
        let bytes = postcard::to_allocvec(&call).unwrap();
        let back: WireCall = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.method, KvGet::ID);
        assert_eq!(back.ctx, ctx);
        assert_eq!(back.args::<KvGet>().unwrap().key, "a/b");
        let reply = encode_reply::<StatusPeers>(Ok(vec!["127.0.0.1:8300".into()]));
        assert_eq!(decode_reply::<StatusPeers>(reply).unwrap(), vec!["127.0.0.1:8300".to_string()]);
        let err = encode_reply::<StatusPeers>(Err(RpcError::NoLeader));
        assert_eq!(decode_reply::<StatusPeers>(err), Err(RpcError::NoLeader));
    }
}
