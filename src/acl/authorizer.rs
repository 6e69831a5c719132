//! What a token may do: built once from its policies' [`Rules`], then asked
//! many times (a `?recurse` over 10,000 keys asks `key_read` 10,000 times).
//!
//! Semantics are Consul's policy authorizer chained with its default
//! authorizer:
//! * for a name, an exact rule wins, else the longest matching prefix rule,
//!   else the default policy;
//! * `write` grants read, list and write; `list` grants list and read;
//!   `read` grants read; `deny` grants nothing;
//! * several policies merge per (type, exact/prefix, name) before lookup,
//!   the strongest disposition winning: deny > write > list > read;
//! * with no matching rule, `default_policy = allow` allows everything
//!   except `acl` (and snapshots, which need `acl = "write"`), exactly as
//!   Consul's allow-all authorizer; only management allows those unasked;
//! * `mesh` and `peering` fall back to `operator` when the token's policies
//!   say nothing about them;
//! * intentions on a service follow the rule's `intentions` if given, else
//!   `read` when the service rule is `read` or `write`, `deny` when `deny`.
//!
//! Rules live in a compressed radix tree per resource type, so a lookup
//! walks the name once whatever the number of rules (see the microbench in
//! the tests).

pub use super::rules::Access;
use super::rules::{Kind, Rules};
use std::collections::HashMap;
use std::sync::Arc;

/// `acl.default_policy`: one type from the config to the decision.
pub use crate::config::acl::DefaultPolicy;

/// What the rules alone decide; `Default` hands over to the default
/// policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Allow,
    Deny,
    Default,
}

fn enforce(rule: Option<Access>, needed: Access) -> Decision {
    match rule {
        Some(a) if a.grants(needed) => Decision::Allow,
        Some(_) => Decision::Deny,
        None => Decision::Default,
    }
}

/// The permissions of one token. `Send + Sync`, immutable once built.
pub struct Authorizer {
    default: DefaultPolicy,
    enable_key_list_policy: bool,
    /// `None`: management (everything allowed, `acl` included).
    rules: Option<Compiled>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rules {
            None => f.write_str("Authorizer(management)"),
            Some(c) => f
                .debug_struct("Authorizer")
                .field("default", &self.default)
                .field("enable_key_list_policy", &self.enable_key_list_policy)
                .field("rules", &c.count)
                .finish(),
        }
    }
}

#[derive(Default)]
struct Compiled {
    agent: Tree,
    event: Tree,
    identity: Tree,
    identity_intention: Tree,
    key: Tree,
    node: Tree,
    query: Tree,
    service: Tree,
    intention: Tree,
    session: Tree,
    acl: Option<Access>,
    keyring: Option<Access>,
    operator: Option<Access>,
    mesh: Option<Access>,
    peering: Option<Access>,
    /// Named rules after merging (for Debug).
    count: usize,
}

impl Compiled {
    fn tree_mut(&mut self, kind: Kind) -> &mut Tree {
        match kind {
            Kind::Agent => &mut self.agent,
            Kind::Event => &mut self.event,
            Kind::Identity => &mut self.identity,
            Kind::Key => &mut self.key,
            Kind::Node => &mut self.node,
            Kind::Query => &mut self.query,
            Kind::Service => &mut self.service,
            Kind::Session => &mut self.session,
        }
    }
}

/// Keeps the strongest of two optional dispositions (unset is weakest).
fn strongest(a: Option<Access>, b: Option<Access>) -> Option<Access> {
    a.max(b)
}

impl Authorizer {
    /// Merges the policies' rules (strongest disposition per segment) and
    /// indexes them. `enable_key_list_policy` is the agent's
    /// `acl.enable_key_list_policy`: it decides whether [`key_list`]
    /// checks `list` on the prefix at all.
    ///
    /// [`key_list`]: Authorizer::key_list
    pub fn new(policies: &[Arc<Rules>], default: DefaultPolicy, enable_key_list_policy: bool) -> Authorizer {
        // Merge first, as Consul does: per (type, exact/prefix, name) the
        // strongest policy, and for services separately the strongest
        // explicit `intentions`; only then derive the implied intentions.
        let mut merged: HashMap<(Kind, bool, &str), (Access, Option<Access>)> = HashMap::new();
        let mut c = Compiled::default();
        for rules in policies {
            for r in &rules.rules {
                merged
                    .entry((r.kind, r.prefix, r.name.as_str()))
                    .and_modify(|(policy, intentions)| {
                        *policy = (*policy).max(r.policy);
                        *intentions = strongest(*intentions, r.intentions);
                    })
                    .or_insert((r.policy, r.intentions));
            }
            c.acl = strongest(c.acl, rules.acl);
            c.keyring = strongest(c.keyring, rules.keyring);
            c.operator = strongest(c.operator, rules.operator);
            c.mesh = strongest(c.mesh, rules.mesh);
            c.peering = strongest(c.peering, rules.peering);
        }
        c.count = merged.len();
        for ((kind, prefix, name), (policy, intentions)) in merged {
            c.tree_mut(kind).set(name.as_bytes(), prefix, policy);
            let intention_tree = match kind {
                Kind::Service => &mut c.intention,
                Kind::Identity => &mut c.identity_intention,
                _ => continue,
            };
            let implied = match policy {
                Access::Read | Access::Write => Access::Read,
                Access::List | Access::Deny => Access::Deny,
            };
            intention_tree.set(name.as_bytes(), prefix, intentions.unwrap_or(implied));
        }
        Authorizer { default, enable_key_list_policy, rules: Some(c) }
    }

    /// Allows everything, `acl` included.
    pub fn management() -> Authorizer {
        Authorizer { default: DefaultPolicy::Allow, enable_key_list_policy: false, rules: None }
    }

    /// No rules at all: `Allow` allows everything except `acl` read/write
    /// (and snapshots); `Deny` denies everything. Key listing is not
    /// checked unless [`with_key_list_policy`] turns it on.
    ///
    /// [`with_key_list_policy`]: Authorizer::with_key_list_policy
    pub fn default_only(default: DefaultPolicy) -> Authorizer {
        Authorizer { default, enable_key_list_policy: false, rules: Some(Compiled::default()) }
    }

    /// The same authorizer with the agent's `acl.enable_key_list_policy`
    /// (for [`default_only`], which does not take it).
    ///
    /// [`default_only`]: Authorizer::default_only
    pub fn with_key_list_policy(mut self, enable: bool) -> Authorizer {
        self.enable_key_list_policy = enable;
        self
    }

    pub fn is_management(&self) -> bool {
        self.rules.is_none()
    }

    /// The default policy this authorizer falls back to.
    pub fn default_policy(&self) -> DefaultPolicy {
        self.default
    }

    fn finish(&self, decision: Decision) -> bool {
        match decision {
            Decision::Allow => true,
            Decision::Deny => false,
            Decision::Default => self.default == DefaultPolicy::Allow,
        }
    }

    /// Named lookup: exact, else longest prefix, else default.
    fn named(&self, tree: impl Fn(&Compiled) -> &Tree, name: &str, needed: Access) -> bool {
        match &self.rules {
            None => true,
            Some(c) => self.finish(enforce(tree(c).lookup(name.as_bytes()), needed)),
        }
    }

    fn scalar(&self, rule: impl Fn(&Compiled) -> Option<Access>, needed: Access) -> bool {
        match &self.rules {
            None => true,
            Some(c) => self.finish(enforce(rule(c), needed)),
        }
    }

    // ----- keys -----

    pub fn key_read(&self, key: &str) -> bool {
        self.named(|c| &c.key, key, Access::Read)
    }

    /// Listing keys under `prefix` (`?keys`, `?recurse`). Consul checks
    /// `list` on the prefix only when `enable_key_list_policy` is set;
    /// without it the prefix is not checked at all (this returns true) and
    /// the caller filters the results per key with [`key_read`]. Callers
    /// should filter in both cases.
    ///
    /// [`key_read`]: Authorizer::key_read
    pub fn key_list(&self, prefix: &str) -> bool {
        if !self.enable_key_list_policy {
            return true;
        }
        self.named(|c| &c.key, prefix, Access::List)
    }

    pub fn key_write(&self, key: &str) -> bool {
        self.named(|c| &c.key, key, Access::Write)
    }

    /// Write on every key under `prefix` (a recursive delete): the longest
    /// prefix rule covering `prefix` grants write (or none covers it and the
    /// default allows), and no rule at or under `prefix`, exact or prefix,
    /// grants less than write. Consul's `KeyWritePrefix`.
    pub fn key_write_prefix(&self, prefix: &str) -> bool {
        let Some(c) = &self.rules else { return true };
        let mut base = Decision::Default;
        c.key.walk_path(prefix.as_bytes(), |_, leaf| {
            if let Some(p) = leaf.prefix {
                base = if p == Access::Write { Decision::Allow } else { Decision::Deny };
            }
            false
        });
        if base == Decision::Deny {
            return false;
        }
        let mut weaker_below = false;
        c.key.walk_under(prefix.as_bytes(), |leaf| {
            weaker_below = leaf.prefix.is_some_and(|a| a != Access::Write)
                || leaf.exact.is_some_and(|a| a != Access::Write);
            weaker_below
        });
        if weaker_below {
            return false;
        }
        self.finish(base)
    }

    // ----- catalog -----

    pub fn node_read(&self, n: &str) -> bool {
        self.named(|c| &c.node, n, Access::Read)
    }

    pub fn node_write(&self, n: &str) -> bool {
        self.named(|c| &c.node, n, Access::Write)
    }

    /// Read on every node (Consul's `NodeReadAll`): no node rule, exact or
    /// prefix, denies read, and either `node_prefix ""` grants it or the
    /// default allows.
    pub fn node_read_all(&self) -> bool {
        match &self.rules {
            None => true,
            Some(c) => self.finish(c.node.all_allowed(Access::Read)),
        }
    }

    pub fn service_read(&self, s: &str) -> bool {
        self.named(|c| &c.service, s, Access::Read)
    }

    pub fn service_write(&self, s: &str) -> bool {
        self.named(|c| &c.service, s, Access::Write)
    }

    /// Read on every service (Consul's `ServiceReadAll`).
    pub fn service_read_all(&self) -> bool {
        match &self.rules {
            None => true,
            Some(c) => self.finish(c.service.all_allowed(Access::Read)),
        }
    }

    /// Write on at least one service (Consul's `ServiceWriteAny`, which
    /// marks a request as coming from a local service, e.g. to read
    /// imported peer data).
    pub fn service_write_any(&self) -> bool {
        match &self.rules {
            None => true,
            Some(c) => self.finish(c.service.any_allowed(Access::Write)),
        }
    }

    /// Intentions whose destination is `s`. `"*"` (a wildcard intention)
    /// needs read on any one service's intentions, as in Consul.
    pub fn intention_read(&self, s: &str) -> bool {
        match &self.rules {
            None => true,
            Some(c) if s == "*" => self.finish(c.intention.any_allowed(Access::Read)),
            Some(c) => self.finish(enforce(c.intention.lookup(s.as_bytes()), Access::Read)),
        }
    }

    /// `"*"` needs write on every service's intentions, as in Consul.
    pub fn intention_write(&self, s: &str) -> bool {
        match &self.rules {
            None => true,
            Some(c) if s == "*" => self.finish(c.intention.all_allowed(Access::Write)),
            Some(c) => self.finish(enforce(c.intention.lookup(s.as_bytes()), Access::Write)),
        }
    }

    /// `identity` rules (workload identities); nothing enforces them yet.
    pub fn identity_read(&self, name: &str) -> bool {
        self.named(|c| &c.identity, name, Access::Read)
    }

    pub fn identity_write(&self, name: &str) -> bool {
        self.named(|c| &c.identity, name, Access::Write)
    }

    // ----- sessions, events, queries, agents -----

    pub fn session_read(&self, node: &str) -> bool {
        self.named(|c| &c.session, node, Access::Read)
    }

    pub fn session_write(&self, node: &str) -> bool {
        self.named(|c| &c.session, node, Access::Write)
    }

    pub fn event_read(&self, name: &str) -> bool {
        self.named(|c| &c.event, name, Access::Read)
    }

    pub fn event_write(&self, name: &str) -> bool {
        self.named(|c| &c.event, name, Access::Write)
    }

    pub fn query_read(&self, name: &str) -> bool {
        self.named(|c| &c.query, name, Access::Read)
    }

    pub fn query_write(&self, name: &str) -> bool {
        self.named(|c| &c.query, name, Access::Write)
    }

    pub fn agent_read(&self, node: &str) -> bool {
        self.named(|c| &c.agent, node, Access::Read)
    }

    pub fn agent_write(&self, node: &str) -> bool {
        self.named(|c| &c.agent, node, Access::Write)
    }

    // ----- scalars -----

    pub fn operator_read(&self) -> bool {
        self.scalar(|c| c.operator, Access::Read)
    }

    pub fn operator_write(&self) -> bool {
        self.scalar(|c| c.operator, Access::Write)
    }

    pub fn keyring_read(&self) -> bool {
        self.scalar(|c| c.keyring, Access::Read)
    }

    pub fn keyring_write(&self) -> bool {
        self.scalar(|c| c.keyring, Access::Write)
    }

    /// `acl = "read"`; never granted by `default_policy = allow` alone.
    pub fn acl_read(&self) -> bool {
        match &self.rules {
            None => true,
            Some(c) => enforce(c.acl, Access::Read) == Decision::Allow,
        }
    }

    /// `acl = "write"`; never granted by `default_policy = allow` alone.
    pub fn acl_write(&self) -> bool {
        match &self.rules {
            None => true,
            Some(c) => enforce(c.acl, Access::Write) == Decision::Allow,
        }
    }

    /// Snapshot save and restore: `acl = "write"` (Consul's `Snapshot`).
    pub fn snapshot(&self) -> bool {
        self.acl_write()
    }

    pub fn mesh_read(&self) -> bool {
        self.scalar(|c| c.mesh.or(c.operator), Access::Read)
    }

    pub fn mesh_write(&self) -> bool {
        self.scalar(|c| c.mesh.or(c.operator), Access::Write)
    }

    pub fn peering_read(&self) -> bool {
        self.scalar(|c| c.peering.or(c.operator), Access::Read)
    }

    pub fn peering_write(&self) -> bool {
        self.scalar(|c| c.peering.or(c.operator), Access::Write)
    }
}

// ---------------------------------------------------------------------------
// Radix tree of rule names
// ---------------------------------------------------------------------------

/// The rules set on one name: `key "a"` (exact) and `key_prefix "a"`.
#[derive(Clone, Copy, Debug, Default)]
struct Leaf {
    exact: Option<Access>,
    prefix: Option<Access>,
}

struct Node {
    /// The bytes from the parent to this node.
    label: Box<[u8]>,
    leaf: Option<Leaf>,
    /// Indexes into `Tree::nodes`, sorted by the first byte of their label
    /// (labels of siblings never share a first byte).
    children: Vec<u32>,
}

/// A compressed radix tree over rule names; node 0 is the root (the empty
/// name).
struct Tree {
    nodes: Vec<Node>,
}

impl Default for Tree {
    fn default() -> Self {
        Tree { nodes: vec![Node { label: Box::default(), leaf: None, children: Vec::new() }] }
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Tree {
    fn child(&self, node: usize, first: u8) -> Option<usize> {
        let children = &self.nodes[node].children;
        children
            .binary_search_by_key(&first, |&c| self.nodes[c as usize].label[0])
            .ok()
            .map(|i| children[i] as usize)
    }

    fn push(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX)
    }

    fn attach(&mut self, parent: usize, child: u32) {
        let first = self.nodes[child as usize].label[0];
        let nodes = &self.nodes;
        let at = nodes[parent].children.partition_point(|&c| nodes[c as usize].label[0] < first);
        self.nodes[parent].children.insert(at, child);
    }

    fn set(&mut self, key: &[u8], prefix: bool, access: Access) {
        let leaf = self.leaf_mut(key);
        if prefix {
            leaf.prefix = Some(access);
        } else {
            leaf.exact = Some(access);
        }
    }

    fn leaf_mut(&mut self, key: &[u8]) -> &mut Leaf {
        let mut node = 0usize;
        let mut rest = key;
        loop {
            if rest.is_empty() {
                return self.nodes[node].leaf.get_or_insert_with(Leaf::default);
            }
            let Some(child) = self.child(node, rest[0]) else {
                let new =
                    self.push(Node { label: rest.into(), leaf: Some(Leaf::default()), children: Vec::new() });
                self.attach(node, new);
                return self.nodes[new as usize].leaf.get_or_insert_with(Leaf::default);
            };
            let label = &self.nodes[child].label;
            let common = common_prefix(label, rest);
            if common == label.len() {
                node = child;
                rest = &rest[common..];
                continue;
            }
            // Split the edge: parent → mid (shared part) → child (the rest).
            let (shared, tail): (Box<[u8]>, Box<[u8]>) = (label[..common].into(), label[common..].into());
            self.nodes[child].label = tail;
            let mid = self.push(Node { label: shared, leaf: None, children: vec![child as u32] });
            let slot =
                self.nodes[node].children.iter().position(|&c| c as usize == child).unwrap_or_default();
            self.nodes[node].children[slot] = mid;
            node = mid as usize;
            rest = &rest[common..];
        }
    }

    /// Visits, root first, every node with rules whose name is a prefix of
    /// `key`; `f(is_whole_key, leaf)` returns true to stop.
    fn walk_path(&self, key: &[u8], mut f: impl FnMut(bool, &Leaf) -> bool) {
        let mut node = 0usize;
        let mut depth = 0usize;
        loop {
            if let Some(leaf) = &self.nodes[node].leaf {
                if f(depth == key.len(), leaf) {
                    return;
                }
            }
            let rest = &key[depth..];
            if rest.is_empty() {
                return;
            }
            let Some(child) = self.child(node, rest[0]) else { return };
            let label = &self.nodes[child].label;
            if !rest.starts_with(label) {
                return;
            }
            depth += label.len();
            node = child;
        }
    }

    /// The rule that applies to `name`: its exact rule, else the longest
    /// prefix rule (Consul's `getPolicy`).
    fn lookup(&self, name: &[u8]) -> Option<Access> {
        let mut found = None;
        self.walk_path(name, |whole, leaf| {
            if whole && leaf.exact.is_some() {
                found = leaf.exact;
                return true;
            }
            if leaf.prefix.is_some() {
                found = leaf.prefix;
            }
            false
        });
        found
    }

    /// Visits every node with rules whose name starts with `prefix`
    /// (including `prefix` itself); `f` returns true to stop.
    fn walk_under(&self, prefix: &[u8], mut f: impl FnMut(&Leaf) -> bool) {
        let mut node = 0usize;
        let mut rest = prefix;
        while !rest.is_empty() {
            let Some(child) = self.child(node, rest[0]) else { return };
            let label = &self.nodes[child].label;
            if rest.starts_with(label) {
                rest = &rest[label.len()..];
            } else if label.starts_with(rest) {
                rest = &[];
            } else {
                return;
            }
            node = child;
        }
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            if let Some(leaf) = &self.nodes[n].leaf {
                if f(leaf) {
                    return;
                }
            }
            stack.extend(self.nodes[n].children.iter().rev().map(|&c| c as usize));
        }
    }

    fn root_leaf(&self) -> Option<&Leaf> {
        self.nodes[0].leaf.as_ref()
    }

    /// Consul's `allAllowed`: Deny if any rule denies `needed`; else Allow
    /// when `prefix ""` grants it; else Default.
    fn all_allowed(&self, needed: Access) -> Decision {
        let mut decision = Decision::Default;
        if let Some(root) = self.root_leaf() {
            decision = enforce(root.prefix, needed);
            if decision == Decision::Deny {
                return Decision::Deny;
            }
        }
        let mut denied = false;
        self.walk_under(b"", |leaf| {
            let by_prefix = enforce(leaf.prefix, needed);
            let d = match leaf.exact {
                Some(exact) if by_prefix != Decision::Deny => enforce(Some(exact), needed),
                _ => by_prefix,
            };
            denied = d == Decision::Deny;
            denied
        });
        if denied {
            Decision::Deny
        } else {
            decision
        }
    }

    /// Consul's `anyAllowed`: Allow if any rule grants `needed`; else what
    /// `prefix ""` decides (Deny or Default).
    fn any_allowed(&self, needed: Access) -> Decision {
        let mut decision = Decision::Default;
        if let Some(root) = self.root_leaf() {
            decision = enforce(root.prefix, needed);
            if decision == Decision::Allow {
                return Decision::Allow;
            }
        }
        let mut allowed = false;
        self.walk_under(b"", |leaf| {
            allowed = enforce(leaf.prefix, needed) == Decision::Allow
                || enforce(leaf.exact, needed) == Decision::Allow;
            allowed
        });
        if allowed {
            Decision::Allow
        } else {
            decision
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::rules::parse;

    fn authz(texts: &[&str], default: DefaultPolicy) -> Authorizer {
        let policies: Vec<Arc<Rules>> = texts.iter().map(|t| Arc::new(parse(t).unwrap())).collect();
        Authorizer::new(&policies, default, false)
    }

    fn deny(texts: &[&str]) -> Authorizer {
        authz(texts, DefaultPolicy::Deny)
    }

    fn allow(texts: &[&str]) -> Authorizer {
        authz(texts, DefaultPolicy::Allow)
    }

    #[test]
    fn send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Authorizer>();
        check::<Rules>();
    }

    #[test]
    fn precedence_order() {
        assert!(Access::Deny > Access::Write && Access::Write > Access::List && Access::List > Access::Read);
    }

    #[test]
    fn write_implies_list_and_read_list_implies_read() {
        for (rule, read, list, write) in [
            (Access::Read, true, false, false),
            (Access::List, true, true, false),
            (Access::Write, true, true, true),
            (Access::Deny, false, false, false),
        ] {
            assert_eq!(
                (rule.grants(Access::Read), rule.grants(Access::List), rule.grants(Access::Write)),
                (read, list, write),
                "{rule:?}"
            );
        }
    }

    /// Each named resource type: exact beats prefix, the longest prefix
    /// wins, nothing matching falls to the default.
    #[test]
    fn every_named_type_exact_then_longest_prefix_then_default() {
        type Check = fn(&Authorizer, &str) -> bool;
        let types: [(&str, Check, Check); 7] = [
            ("agent", Authorizer::agent_read, Authorizer::agent_write),
            ("event", Authorizer::event_read, Authorizer::event_write),
            ("key", Authorizer::key_read, Authorizer::key_write),
            ("node", Authorizer::node_read, Authorizer::node_write),
            ("query", Authorizer::query_read, Authorizer::query_write),
            ("service", Authorizer::service_read, Authorizer::service_write),
            ("session", Authorizer::session_read, Authorizer::session_write),
        ];
        for (word, read, write) in types {
            let text = format!(
                "{word}_prefix \"\" {{ policy = \"read\" }}\n\
                 {word}_prefix \"foo\" {{ policy = \"write\" }}\n\
                 {word}_prefix \"foo-bar\" {{ policy = \"deny\" }}\n\
                 {word} \"foo-bar-baz\" {{ policy = \"write\" }}\n\
                 {word} \"foo-x\" {{ policy = \"read\" }}\n"
            );
            for default in [DefaultPolicy::Allow, DefaultPolicy::Deny] {
                let a = authz(&[&text], default);
                // "" prefix: read only.
                assert!(read(&a, "other") && !write(&a, "other"), "{word} {default:?}");
                assert!(read(&a, "") && !write(&a, ""), "{word}");
                // Longer prefix: write.
                assert!(read(&a, "foo") && write(&a, "foo") && write(&a, "foo-y"), "{word}");
                // Longest prefix: deny.
                assert!(!read(&a, "foo-bar") && !write(&a, "foo-bar-qux"), "{word}");
                // Exact beats a longer-matching prefix…
                assert!(read(&a, "foo-bar-baz") && write(&a, "foo-bar-baz"), "{word}");
                // …but only for the exact name.
                assert!(!read(&a, "foo-bar-baz2"), "{word}");
                // Exact read under a write prefix: read only.
                assert!(read(&a, "foo-x") && !write(&a, "foo-x"), "{word}");
                assert!(write(&a, "foo-x2"), "{word}");
            }
            // No matching rule: the default decides.
            let a = deny(&[&format!("{word} \"only\" {{ policy = \"write\" }}")]);
            assert!(write(&a, "only") && !read(&a, "onl") && !read(&a, "only2") && !read(&a, ""), "{word}");
            let a = allow(&[&format!("{word} \"only\" {{ policy = \"deny\" }}")]);
            assert!(!read(&a, "only") && read(&a, "onl") && write(&a, "only2"), "{word}");
        }
    }

    #[test]
    fn scalars_and_the_default_policy() {
        type Check = fn(&Authorizer) -> bool;
        let scalars: [(&str, Check, Check); 5] = [
            ("operator", Authorizer::operator_read, Authorizer::operator_write),
            ("keyring", Authorizer::keyring_read, Authorizer::keyring_write),
            ("mesh", Authorizer::mesh_read, Authorizer::mesh_write),
            ("peering", Authorizer::peering_read, Authorizer::peering_write),
            ("acl", Authorizer::acl_read, Authorizer::acl_write),
        ];
        for (word, read, write) in scalars {
            for default in [DefaultPolicy::Allow, DefaultPolicy::Deny] {
                let a = authz(&[&format!("{word} = \"read\"")], default);
                assert!(read(&a) && !write(&a), "{word}");
                let a = authz(&[&format!("{word} = \"write\"")], default);
                assert!(read(&a) && write(&a), "{word}");
                let a = authz(&[&format!("{word} = \"deny\"")], default);
                assert!(!read(&a) && !write(&a), "{word}");
            }
            // Unset: the default, except acl which allow never grants.
            let a = allow(&[""]);
            assert_eq!((read(&a), write(&a)), (word != "acl", word != "acl"), "{word}");
            let a = deny(&[""]);
            assert!(!read(&a) && !write(&a), "{word}");
        }
    }

    #[test]
    fn acl_under_default_allow_needs_a_rule_or_management() {
        let a = Authorizer::default_only(DefaultPolicy::Allow);
        assert!(!a.acl_read() && !a.acl_write() && !a.snapshot());
        assert!(a.key_write("x") && a.operator_write() && a.node_read_all() && a.service_read_all());
        assert!(a.key_write_prefix("") && a.intention_write("*") && a.mesh_write() && a.peering_write());
        let a = allow(&["acl = \"read\""]);
        assert!(a.acl_read() && !a.acl_write() && !a.snapshot());
        let a = allow(&["acl = \"write\""]);
        assert!(a.acl_read() && a.acl_write() && a.snapshot());
    }

    #[test]
    fn default_deny_without_rules_denies_everything() {
        let a = Authorizer::default_only(DefaultPolicy::Deny);
        assert!(!a.is_management());
        assert!(!a.key_read("") && !a.node_read("n") && !a.service_read("s") && !a.agent_read("n"));
        assert!(!a.node_read_all() && !a.service_read_all() && !a.service_write_any());
        assert!(!a.operator_read() && !a.keyring_read() && !a.mesh_read() && !a.peering_read());
        assert!(!a.intention_read("*") && !a.key_write_prefix("") && !a.acl_read());
        // Same as an authorizer built from no policies.
        let b = Authorizer::new(&[], DefaultPolicy::Deny, true);
        assert!(!b.key_read("") && !b.key_list("") && !b.acl_read());
    }

    #[test]
    fn management_allows_everything() {
        let a = Authorizer::management();
        assert!(a.is_management());
        assert!(a.acl_read() && a.acl_write() && a.snapshot() && a.key_write_prefix("") && a.key_list("x"));
        assert!(a.node_read_all() && a.intention_write("*") && a.mesh_write() && a.peering_write());
        assert!(a.agent_write("n") && a.session_write("n") && a.query_write("q") && a.event_write("e"));
    }

    #[test]
    fn global_management_rules_allow_everything() {
        let rules = "\nacl = \"write\"\nagent_prefix \"\" {\n\tpolicy = \"write\"\n}\nevent_prefix \"\" {\n\tpolicy = \"write\"\n}\nkey_prefix \"\" {\n\tpolicy = \"write\"\n}\nkeyring = \"write\"\nnode_prefix \"\" {\n\tpolicy = \"write\"\n}\noperator = \"write\"\nmesh = \"write\"\npeering = \"write\"\nquery_prefix \"\" {\n\tpolicy = \"write\"\n}\nservice_prefix \"\" {\n\tpolicy = \"write\"\n\tintentions = \"write\"\n}\nsession_prefix \"\" {\n\tpolicy = \"write\"\n}";
        let a = deny(&[rules]);
        assert!(!a.is_management());
        assert!(
            a.acl_write()
                && a.snapshot()
                && a.key_write_prefix("")
                && a.node_read_all()
                && a.service_read_all()
        );
        assert!(
            a.intention_write("*") && a.intention_write("web") && a.keyring_write() && a.operator_write()
        );
    }

    #[test]
    fn several_policies_merge_strongest_per_segment() {
        // deny anywhere wins.
        let a = allow(&["key \"a\" { policy = \"write\" }", "key \"a\" { policy = \"deny\" }"]);
        assert!(!a.key_read("a"));
        // write beats read and list.
        let a =
            deny(&["key_prefix \"p/\" { policy = \"read\" }", "key_prefix \"p/\" { policy = \"write\" }"]);
        assert!(a.key_write("p/x"));
        let a = authz(
            &["key_prefix \"p/\" { policy = \"list\" }", "key_prefix \"p/\" { policy = \"read\" }"],
            DefaultPolicy::Deny,
        );
        assert!(a.key_read("p/x") && !a.key_write("p/x"));
        // Merging is per segment: a broader allow elsewhere does not undo a
        // narrower deny, and exact and prefix on one name are separate.
        let a =
            deny(&["key_prefix \"\" { policy = \"write\" }", "key_prefix \"secret/\" { policy = \"deny\" }"]);
        assert!(a.key_write("x") && !a.key_read("secret/x"));
        let a = deny(&["key \"a\" { policy = \"deny\" }", "key_prefix \"a\" { policy = \"write\" }"]);
        assert!(!a.key_read("a") && a.key_write("ab"));
        // Within one policy, the same rule twice merges the same way.
        let a = deny(&["node \"n\" { policy = \"write\" }\nnode \"n\" { policy = \"read\" }"]);
        assert!(a.node_write("n"));
        // Scalars too.
        let a = allow(&["operator = \"write\"", "operator = \"deny\"", "operator = \"read\""]);
        assert!(!a.operator_read());
        let a = deny(&["acl = \"read\"", "acl = \"write\""]);
        assert!(a.acl_write());
    }

    #[test]
    fn intentions_follow_consul_defaults() {
        // No explicit intentions: service read or write → intentions read.
        let a = deny(&["service \"web\" { policy = \"write\" }\nservice_prefix \"api\" { policy = \"read\" }\nservice \"db\" { policy = \"deny\" }"]);
        assert!(a.intention_read("web") && !a.intention_write("web"));
        assert!(a.intention_read("api-1") && !a.intention_write("api-1"));
        assert!(!a.intention_read("db"));
        assert!(!a.intention_read("other"));
        let a = allow(&["service \"db\" { policy = \"deny\" }"]);
        assert!(!a.intention_read("db") && a.intention_read("other") && a.intention_write("other"));
        // Explicit intentions win, even over a weaker service policy.
        let a = deny(&["service \"web\" {\n policy = \"read\"\n intentions = \"write\"\n}\nservice \"api\" {\n policy = \"write\"\n intentions = \"deny\"\n}"]);
        assert!(a.intention_write("web") && !a.service_write("web"));
        assert!(!a.intention_read("api") && a.service_write("api"));
        // Merging: explicit intentions merge separately from the policy.
        let a = deny(&[
            "service \"web\" { policy = \"write\" }",
            "service \"web\" {\n policy = \"read\"\n intentions = \"write\"\n}",
        ]);
        assert!(a.service_write("web") && a.intention_write("web"));
        let a = deny(&["service \"web\" { policy = \"deny\" }", "service \"web\" { policy = \"write\" }"]);
        assert!(!a.service_read("web") && !a.intention_read("web"));
    }

    #[test]
    fn wildcard_intentions() {
        // read on "*": any service's intentions readable.
        let a = deny(&["service \"web\" { policy = \"read\" }"]);
        assert!(a.intention_read("*") && !a.intention_write("*"));
        // write on "*": every intention rule must grant write, plus "" prefix.
        let a = deny(&["service_prefix \"\" {\n policy = \"write\"\n intentions = \"write\"\n}"]);
        assert!(a.intention_write("*"));
        let a = deny(&[
            "service_prefix \"\" {\n policy = \"write\"\n intentions = \"write\"\n}\nservice \"db\" { policy = \"read\" }",
        ]);
        assert!(!a.intention_write("*"));
        let a = deny(&["service_prefix \"\" { policy = \"deny\" }"]);
        assert!(!a.intention_read("*"));
    }

    #[test]
    fn mesh_and_peering_fall_back_to_operator() {
        let a = deny(&["operator = \"write\""]);
        assert!(a.mesh_write() && a.peering_write());
        let a = deny(&["operator = \"read\""]);
        assert!(a.mesh_read() && !a.mesh_write() && a.peering_read() && !a.peering_write());
        let a = deny(&["operator = \"write\"\nmesh = \"deny\"\npeering = \"read\""]);
        assert!(!a.mesh_read() && a.peering_read() && !a.peering_write() && a.operator_write());
        let a = allow(&["operator = \"deny\""]);
        assert!(!a.mesh_read() && !a.peering_read());
        let a = allow(&["mesh = \"read\""]);
        assert!(a.mesh_read() && !a.mesh_write() && a.peering_write() && a.operator_write());
        // Across policies the explicit mesh rule still decides.
        let a = deny(&["operator = \"write\"", "mesh = \"read\""]);
        assert!(!a.mesh_write() && a.peering_write());
    }

    #[test]
    fn read_all_semantics() {
        // Under deny: needs node_prefix "" read and no denial below it.
        let a = deny(&["node_prefix \"\" { policy = \"read\" }"]);
        assert!(a.node_read_all());
        let a = deny(&["node_prefix \"\" { policy = \"read\" }\nnode \"secret\" { policy = \"deny\" }"]);
        assert!(!a.node_read_all());
        let a = deny(&["node_prefix \"a\" { policy = \"read\" }"]);
        assert!(!a.node_read_all());
        // An exact write rule under a read prefix is still fine.
        let a = deny(&["node_prefix \"\" { policy = \"read\" }\nnode \"mine\" { policy = \"write\" }"]);
        assert!(a.node_read_all());
        // Under allow: any denying rule makes it false.
        let a = allow(&["node \"x\" { policy = \"read\" }"]);
        assert!(a.node_read_all());
        let a = allow(&["service_prefix \"x\" { policy = \"deny\" }"]);
        assert!(!a.service_read_all() && a.node_read_all());
        let a = deny(&["service_prefix \"\" { policy = \"write\" }"]);
        assert!(a.service_read_all() && a.service_write_any());
        let a = deny(&["service \"one\" { policy = \"write\" }"]);
        assert!(!a.service_read_all() && a.service_write_any());
    }

    #[test]
    fn key_list_policy_on_and_off() {
        let rules = [
            "key_prefix \"\" { policy = \"deny\" }\nkey_prefix \"listable/\" { policy = \"list\" }\nkey_prefix \"readable/\" { policy = \"read\" }\nkey_prefix \"writable/\" { policy = \"write\" }",
        ];
        let policies: Vec<Arc<Rules>> = rules.iter().map(|t| Arc::new(parse(t).unwrap())).collect();
        let on = Authorizer::new(&policies, DefaultPolicy::Deny, true);
        assert!(on.key_list("listable/") && on.key_list("listable/sub/"));
        assert!(
            !on.key_list("readable/")
                && on.key_list("writable/")
                && !on.key_list("")
                && !on.key_list("other/")
        );
        // `list` grants read on the keys below, not write.
        assert!(on.key_read("listable/k") && !on.key_write("listable/k"));
        // Off: the prefix is not checked (results are filtered per key).
        let off = Authorizer::new(&policies, DefaultPolicy::Deny, false);
        assert!(off.key_list("") && off.key_list("readable/") && off.key_list("other/"));
        assert!(off.key_read("listable/k") && !off.key_read("other/k"));
        // Under default allow with no rule, listing is allowed.
        let a = Authorizer::new(&[], DefaultPolicy::Allow, true);
        assert!(a.key_list("anything/"));
        // Anonymous without policies: the flag decides whether listing is
        // refused up front or filtered.
        let anon = Authorizer::default_only(DefaultPolicy::Deny);
        assert!(anon.key_list("x/") && !anon.key_read("x/k"));
        let anon = Authorizer::default_only(DefaultPolicy::Deny).with_key_list_policy(true);
        assert!(!anon.key_list("x/"));
        assert!(Authorizer::default_only(DefaultPolicy::Allow).with_key_list_policy(true).key_list("x/"));
    }

    #[test]
    fn key_write_prefix_needs_write_on_everything_below() {
        let a = deny(&["key_prefix \"foo/\" { policy = \"write\" }"]);
        assert!(a.key_write_prefix("foo/") && a.key_write_prefix("foo/bar/"));
        assert!(!a.key_write_prefix("fo") && !a.key_write_prefix(""));
        let a = deny(&[
            "key_prefix \"foo/\" { policy = \"write\" }\nkey \"foo/bar/secret\" { policy = \"read\" }",
        ]);
        assert!(
            !a.key_write_prefix("foo/") && !a.key_write_prefix("foo/bar/") && a.key_write_prefix("foo/baz/")
        );
        assert!(a.key_write("foo/bar/other"));
        let a = deny(&[
            "key_prefix \"foo/\" { policy = \"write\" }\nkey_prefix \"foo/ro/\" { policy = \"list\" }",
        ]);
        assert!(!a.key_write_prefix("foo/") && a.key_write_prefix("foo/rw/"));
        // The rule on the prefix itself counts, exact or prefix.
        let a = deny(&["key_prefix \"foo/\" { policy = \"write\" }\nkey \"foo/\" { policy = \"deny\" }"]);
        assert!(!a.key_write_prefix("foo/"));
        // A read prefix above denies even if the deeper rules write.
        let a = deny(&["key_prefix \"\" { policy = \"read\" }\nkey_prefix \"foo/\" { policy = \"write\" }"]);
        assert!(a.key_write_prefix("foo/") && !a.key_write_prefix(""));
        // Default allow with no rule covering: allowed unless a rule below
        // is weaker.
        let a = allow(&["key \"app/locked\" { policy = \"read\" }"]);
        assert!(a.key_write_prefix("other/") && !a.key_write_prefix("app/") && !a.key_write_prefix(""));
        let a = allow(&["key_prefix \"app/\" { policy = \"write\" }"]);
        assert!(a.key_write_prefix("") && a.key_write_prefix("app/x"));
        // Default deny with only write rules below but none covering.
        let a = deny(&["key_prefix \"app/\" { policy = \"write\" }"]);
        assert!(!a.key_write_prefix(""));
    }

    /// Consul's rules documentation example.
    #[test]
    fn documentation_key_example() {
        let a = deny(&[r#"
key_prefix "" {
  policy = "read"
}
key_prefix "foo/" {
  policy = "write"
}
key_prefix "foo/private/" {
  policy = "deny"
}
key "foo/bar/secret" {
  policy = "deny"
}
"#]);
        assert!(a.key_read("anything") && !a.key_write("anything"));
        assert!(a.key_write("foo/x") && a.key_write("foo/bar/public"));
        assert!(!a.key_read("foo/private/x") && !a.key_read("foo/bar/secret"));
        assert!(a.key_read("foo/bar/secret2"));
        assert!(!a.key_write_prefix("foo/"));
    }

    #[test]
    fn names_with_shared_prefixes_and_odd_bytes() {
        let a = deny(&[r#"
key "" { policy = "write" }
key_prefix "a" { policy = "read" }
key_prefix "ab" { policy = "write" }
key_prefix "abc" { policy = "deny" }
key "abcd" { policy = "write" }
key "abd" { policy = "deny" }
key_prefix "b/é/" { policy = "write" }
"#]);
        assert!(a.key_write("") && !a.key_read("x"));
        assert!(a.key_read("a") && !a.key_write("a") && !a.key_write("aa"));
        assert!(a.key_write("ab") && a.key_write("abx") && !a.key_read("abd"));
        assert!(!a.key_read("abc") && a.key_write("abcd") && !a.key_read("abcde"));
        assert!(a.key_write("b/é/x") && !a.key_read("b/e/x"));
    }

    /// The radix tree against a plain scan, on random names and rules.
    #[test]
    fn tree_lookup_matches_a_linear_scan() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        let alphabet = b"ab/";
        let word = |rng: &mut rand::rngs::StdRng, max: usize| -> String {
            let len = rng.random_range(0..=max);
            (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
        };
        for _ in 0..200 {
            let mut rules: Vec<(String, bool, Access)> = Vec::new();
            for _ in 0..rng.random_range(0..20) {
                let access =
                    [Access::Read, Access::List, Access::Write, Access::Deny][rng.random_range(0..4)];
                rules.push((word(&mut rng, 5), rng.random_bool(0.5), access));
            }
            let text: String = rules
                .iter()
                .map(|(n, p, a)| {
                    format!(
                        "key{} \"{n}\" {{ policy = \"{}\" }}\n",
                        if *p { "_prefix" } else { "" },
                        a.as_str()
                    )
                })
                .collect();
            let a = deny(&[&text]);
            // Reference: merge (strongest per name/kind) then scan.
            let mut merged: HashMap<(&str, bool), Access> = HashMap::new();
            for (n, p, acc) in &rules {
                let e = merged.entry((n.as_str(), *p)).or_insert(*acc);
                *e = (*e).max(*acc);
            }
            for _ in 0..50 {
                let key = word(&mut rng, 7);
                let expected = merged.get(&(key.as_str(), false)).copied().or_else(|| {
                    merged
                        .iter()
                        .filter(|((n, p), _)| *p && key.starts_with(n))
                        .max_by_key(|((n, _), _)| n.len())
                        .map(|(_, a)| *a)
                });
                let got = a.rules.as_ref().unwrap().key.lookup(key.as_bytes());
                assert_eq!(got, expected, "key {key:?} rules:\n{text}");
                // key_write_prefix against its definition.
                let base = merged
                    .iter()
                    .filter(|((n, p), _)| *p && key.starts_with(n))
                    .max_by_key(|((n, _), _)| n.len())
                    .map(|(_, a)| *a);
                let below_weaker =
                    merged.iter().any(|((n, _), a)| n.starts_with(&key) && *a != Access::Write);
                let want = base == Some(Access::Write) && !below_weaker;
                assert_eq!(a.key_write_prefix(&key), want, "prefix {key:?} rules:\n{text}");
            }
        }
    }

    /// Microbench: ns per `key_read` with 100 prefix rules (the cost a
    /// filtered 10,000-key `?recurse` pays per key). Measured on the
    /// shared 2-core builder, debug build (what `cargo test` runs):
    /// ~180 ns per call (release builds are several times faster). Here
    /// only a loose bound, so the test fails on an accidental O(rules)
    /// lookup but not on a busy machine.
    #[test]
    fn key_read_microbench_with_100_prefix_rules() {
        let text: String = (0..100)
            .map(|i| {
                format!(
                    "key_prefix \"team-{i:03}/app/\" {{ policy = \"{}\" }}\n",
                    if i % 3 == 0 { "read" } else { "write" }
                )
            })
            .collect();
        let a = deny(&[&text]);
        let keys: Vec<String> =
            (0..10_000).map(|i| format!("team-{:03}/app/config/key-{i}", i % 120)).collect();
        let start = std::time::Instant::now();
        let mut readable = 0;
        for _ in 0..5 {
            for k in &keys {
                readable += usize::from(a.key_read(k));
            }
        }
        let per_call = start.elapsed().as_nanos() / (5 * keys.len() as u128);
        eprintln!("key_read with 100 prefix rules: {per_call} ns per call");
        assert_eq!(readable, 5 * keys.iter().filter(|k| k[5..8].parse::<usize>().unwrap() < 100).count());
        assert!(per_call < 20_000, "{per_call} ns per key_read");
    }
}
