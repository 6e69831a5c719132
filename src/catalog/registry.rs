//! The catalog tables: nodes, service instances and checks, with the
//! per-table, per-service and per-node indexes that blocking queries report
//! and wait on. Registration rules follow Consul's state store.

use super::types::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub mod before_mesh;
mod journal;

/// Raft indexes of the catalog's last changes, by scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogIndexes {
    pub nodes: u64,
    pub services: u64,
    pub checks: u64,
    /// Last change to any instance of a service name, its checks or its nodes.
    pub by_service: BTreeMap<String, u64>,
    /// Last change to a node, its services or its checks.
    pub by_node: BTreeMap<String, u64>,
}

/// Watch topics the catalog publishes (see `State::apply`). Service names
/// are matched case-insensitively, as Consul's indexes do.
pub fn topic_service(name: &str) -> String {
    format!("svc:{}", name.to_ascii_lowercase())
}
pub fn topic_node(name: &str) -> String {
    format!("node:{name}")
}
pub const TOPIC_NODES: &str = "nodes";
pub const TOPIC_SERVICES: &str = "services";
pub const TOPIC_CHECKS: &str = "checks";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "RegistryWire")]
pub struct Registry {
    nodes: BTreeMap<String, Node>,
    /// (node, service id) → instance.
    services: BTreeMap<(String, String), NodeService>,
    /// Service name → its instances.
    by_name: BTreeMap<String, BTreeSet<(String, String)>>,
    /// (node, check id) → check.
    checks: BTreeMap<(String, String), HealthCheck>,
    pub index: CatalogIndexes,
    /// The undo journal of the transaction being applied, if any (see
    /// `journal`). Never part of a snapshot: it only lives inside one apply.
    #[serde(skip)]
    journal: Option<Box<journal::Journal>>,
    /// (lower-cased node ID, node name) of every node with an ID: the
    /// rename check of each registration (real agents always send their
    /// ID) looked for the ID by scanning every node. Derived from `nodes`,
    /// so never encoded; rebuilt when a registry is decoded.
    #[serde(skip)]
    by_id: BTreeSet<(String, String)>,
}

/// The encoded form of `Registry` (the same fields in the same order, so
/// snapshots do not change); decoding goes through it to rebuild `by_id`.
#[derive(Deserialize)]
struct RegistryWire {
    nodes: BTreeMap<String, Node>,
    services: BTreeMap<(String, String), NodeService>,
    by_name: BTreeMap<String, BTreeSet<(String, String)>>,
    checks: BTreeMap<(String, String), HealthCheck>,
    index: CatalogIndexes,
}

impl From<RegistryWire> for Registry {
    fn from(w: RegistryWire) -> Registry {
        let by_id = w
            .nodes
            .values()
            .filter(|n| !n.id.is_empty())
            .map(|n| (n.id.to_ascii_lowercase(), n.node.clone()))
            .collect();
        Registry {
            nodes: w.nodes,
            services: w.services,
            by_name: w.by_name,
            checks: w.checks,
            index: w.index,
            journal: None,
            by_id,
        }
    }
}

/// Records what changed during one apply.
#[derive(Clone, Debug, Default)]
struct Touch {
    nodes: bool,
    services: bool,
    checks: bool,
    service_names: BTreeSet<String>,
    node_names: BTreeSet<String>,
}

impl Touch {
    /// A change to instance `s` wakes queries on its name and, for a
    /// proxy, the Connect queries on its destination.
    fn service(&mut self, s: &NodeService) {
        self.service_names.insert(s.service.clone());
        if s.kind == super::mesh::KIND_CONNECT_PROXY && !s.proxy.destination_service_name.is_empty() {
            self.service_names.insert(s.proxy.destination_service_name.clone());
        }
    }
}

impl Registry {
    // ----- reads -------------------------------------------------------

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// The first node (by name) whose ID is `id`, ignoring case, other than
    /// `except`.
    pub fn node_by_id(&self, id: &str, except: Option<&str>) -> Option<&Node> {
        let id = id.to_ascii_lowercase();
        self.by_id
            .range((id.clone(), String::new())..)
            .take_while(|(i, _)| *i == id)
            .filter(|(_, name)| Some(name.as_str()) != except)
            .find_map(|(_, name)| self.nodes.get(name))
    }

    /// Every change to `nodes` goes through here and `take_node`, so that
    /// `by_id` follows.
    fn put_node(&mut self, name: String, node: Node) {
        if !node.id.is_empty() {
            self.by_id.insert((node.id.to_ascii_lowercase(), name.clone()));
        }
        if let Some(old) = self.nodes.insert(name.clone(), node) {
            self.forget_id(&old, &name);
        }
    }

    fn take_node(&mut self, name: &str) -> Option<Node> {
        let old = self.nodes.remove(name)?;
        self.forget_id(&old, name);
        Some(old)
    }

    /// Drops `old`'s ID entry unless the node now under `name` has the same ID.
    fn forget_id(&mut self, old: &Node, name: &str) {
        if old.id.is_empty() {
            return;
        }
        let still = self.nodes.get(name).is_some_and(|n| n.id.eq_ignore_ascii_case(&old.id));
        if !still {
            self.by_id.remove(&(old.id.to_ascii_lowercase(), name.to_string()));
        }
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// The services on one node, by service ID.
    pub fn node_services(&self, node: &str) -> impl Iterator<Item = &NodeService> {
        let n = node.to_string();
        self.services
            .range((n.clone(), String::new())..)
            .take_while(move |((k, _), _)| *k == n)
            .map(|(_, s)| s)
    }

    pub fn service(&self, node: &str, id: &str) -> Option<&NodeService> {
        self.services.get(&(node.to_string(), id.to_string()))
    }

    /// A node by name, ignoring case when there is no exact match.
    pub fn node_ci(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name).or_else(|| self.nodes.values().find(|n| n.node.eq_ignore_ascii_case(name)))
    }

    /// The Connect-capable instances for a service name (any case): proxies
    /// whose destination it is, and Connect-native instances of it
    /// (Consul's `ConnectServiceNodes`). A scan: the catalog keeps no
    /// destination index.
    pub fn connect_instances<'a>(&'a self, name: &str) -> Vec<(&'a Node, &'a NodeService)> {
        self.services
            .iter()
            .filter(|(_, s)| {
                (s.kind == super::mesh::KIND_CONNECT_PROXY
                    && s.proxy.destination_service_name.eq_ignore_ascii_case(name))
                    || (s.connect.native && s.service.eq_ignore_ascii_case(name))
            })
            .filter_map(|(k, s)| Some((self.nodes.get(&k.0)?, s)))
            .collect()
    }

    /// Every instance of a service name (any case), with its node.
    pub fn service_instances<'a>(&'a self, name: &str) -> Vec<(&'a Node, &'a NodeService)> {
        let Some(keys) = self.by_name.get(&name.to_ascii_lowercase()) else { return Vec::new() };
        keys.iter().filter_map(|k| Some((self.nodes.get(&k.0)?, self.services.get(k)?))).collect()
    }

    /// Service names with the union of their tags.
    /// Gathered by reference first: with many instances per name, cloning
    /// the name and tags of every instance dominated this read.
    pub fn service_names(&self) -> BTreeMap<String, Vec<String>> {
        let mut names: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for s in self.services.values() {
            names.entry(s.service.as_str()).or_default().extend(s.tags.iter().map(String::as_str));
        }
        names
            .into_iter()
            .map(|(name, tags)| (name.to_string(), tags.into_iter().map(str::to_string).collect()))
            .collect()
    }

    /// Checks of one node (node-level and service-level).
    pub fn node_checks(&self, node: &str) -> impl Iterator<Item = &HealthCheck> {
        let n = node.to_string();
        self.checks.range((n.clone(), String::new())..).take_while(move |((k, _), _)| *k == n).map(|(_, c)| c)
    }

    /// Checks bound to instances of a service name.
    pub fn service_checks(&self, name: &str) -> Vec<&HealthCheck> {
        let Some(keys) = self.by_name.get(&name.to_ascii_lowercase()) else { return Vec::new() };
        let mut out = Vec::new();
        for (node, id) in keys {
            out.extend(self.node_checks(node).filter(|c| &c.service_id == id));
        }
        out
    }

    pub fn checks(&self) -> impl Iterator<Item = &HealthCheck> {
        self.checks.values()
    }

    pub fn check(&self, node: &str, id: &str) -> Option<&HealthCheck> {
        self.checks.get(&(node.to_string(), id.to_string()))
    }

    /// The checks that decide an instance's health: the node's own checks
    /// and the instance's checks.
    pub fn instance_checks(&self, node: &str, service_id: &str) -> Vec<&HealthCheck> {
        self.node_checks(node).filter(|c| c.service_id.is_empty() || c.service_id == service_id).collect()
    }

    /// The index a query on one service reports.
    pub fn service_index(&self, name: &str) -> u64 {
        self.index
            .by_service
            .get(&name.to_ascii_lowercase())
            .copied()
            .unwrap_or(self.index.services.max(self.index.checks))
    }

    /// The index a query on one node reports.
    pub fn node_index(&self, name: &str) -> u64 {
        self.index.by_node.get(name).copied().unwrap_or(self.index.nodes)
    }

    // ----- writes ------------------------------------------------------

    /// Applies a registration at raft index `idx`; returns the topics whose
    /// watchers must wake.
    pub fn register(&mut self, idx: u64, reg: &Registration) -> Result<Vec<String>, String> {
        let name = reg.node.node.clone();
        if name.is_empty() {
            return Err("Must provide node".into());
        }
        let mut touch = Touch::default();
        // Validate everything first so a failed registration changes nothing.
        if !reg.node.id.is_empty() {
            if let Some(other) = self.node_by_id(&reg.node.id, Some(&name)) {
                return Err(format!(
                    "failed inserting node: Error while renaming Node ID: {:?}: Node name {:?} is reserved by node {:?} with name {:?}",
                    reg.node.id, name, other.id, other.node
                ));
            }
        }
        if let Some(svc) = &reg.service {
            if svc.service.is_empty() {
                return Err("Must provide service name".into());
            }
        }
        for c in &reg.checks {
            if c.check_id.is_empty() {
                return Err("Must provide a check ID".into());
            }
            if !valid_status(&c.status) {
                return Err(format!("Invalid check status {:?}", c.status));
            }
            if !c.service_id.is_empty() {
                let in_this_reg = reg.service.as_ref().is_some_and(|s| s.id == c.service_id);
                if !in_this_reg && !self.services.contains_key(&(name.clone(), c.service_id.clone())) {
                    return Err(format!(
                        "Missing service registration for check {:?} (service {:?})",
                        c.check_id, c.service_id
                    ));
                }
            }
        }

        // Node.
        match self.nodes.get(&name) {
            Some(existing) if reg.skip_node_update => {
                let _ = existing;
            }
            Some(existing) => {
                let mut n = reg.node.clone();
                n.create_index = existing.create_index;
                n.modify_index = idx;
                if reg.preserve_node_extras {
                    n.tagged_addresses = existing.tagged_addresses.clone();
                    n.meta = existing.meta.clone();
                }
                if !existing.same_content(&n) {
                    self.note_node(&name);
                    self.put_node(name.clone(), n);
                    touch.nodes = true;
                    touch.node_names.insert(name.clone());
                    for s in self.node_services(&name) {
                        touch.service(s);
                    }
                }
            }
            None => {
                let mut n = reg.node.clone();
                n.create_index = idx;
                n.modify_index = idx;
                self.note_node(&name);
                self.put_node(name.clone(), n);
                touch.nodes = true;
                touch.node_names.insert(name.clone());
            }
        }

        // Service.
        if let Some(svc) = &reg.service {
            let key = (name.clone(), svc.id.clone());
            let mut s = svc.clone();
            match self.services.get(&key) {
                Some(existing) if existing.same_content(&s) => {}
                Some(existing) => {
                    s.create_index = existing.create_index;
                    s.modify_index = idx;
                    if !existing.service.eq_ignore_ascii_case(&s.service) {
                        touch.service(existing);
                        let old = existing.service.clone();
                        self.unlink_name(&old, &key);
                    }
                    self.link_name(&s.service, &key);
                    touch.service(&s);
                    self.note_service(&key);
                    self.services.insert(key.clone(), s);
                    touch.services = true;
                    touch.node_names.insert(name.clone());
                    // Service checks carry the service's name and tags.
                    self.refresh_service_checks(idx, &key, &mut touch);
                }
                None => {
                    s.create_index = idx;
                    s.modify_index = idx;
                    self.link_name(&s.service, &key);
                    touch.service(&s);
                    self.note_service(&key);
                    self.services.insert(key, s);
                    touch.services = true;
                    touch.node_names.insert(name.clone());
                }
            }
        }

        // Checks.
        for c in &reg.checks {
            let mut c = c.clone();
            c.node = name.clone();
            if !c.service_id.is_empty() {
                if let Some(s) = self.services.get(&(name.clone(), c.service_id.clone())) {
                    c.service_name = s.service.clone();
                    c.service_tags = s.tags.clone();
                }
            } else {
                c.service_name.clear();
                c.service_tags.clear();
            }
            self.put_check(idx, c, &mut touch);
        }
        Ok(self.finish(idx, touch))
    }

    fn put_check(&mut self, idx: u64, mut c: HealthCheck, touch: &mut Touch) {
        let key = (c.node.clone(), c.check_id.clone());
        match self.checks.get(&key) {
            Some(existing) if existing.same_content(&c) => return,
            Some(existing) => {
                c.create_index = existing.create_index;
                c.modify_index = idx;
            }
            None => {
                c.create_index = idx;
                c.modify_index = idx;
            }
        }
        self.touch_check(&c, touch);
        self.note_check(&key);
        self.checks.insert(key, c);
    }

    fn touch_check(&self, c: &HealthCheck, touch: &mut Touch) {
        touch.checks = true;
        touch.node_names.insert(c.node.clone());
        if c.service_id.is_empty() {
            // A node check changes the health of every service on the node.
            for s in self.node_services(&c.node) {
                touch.service(s);
            }
        } else if !c.service_name.is_empty() {
            touch.service_names.insert(c.service_name.clone());
            if let Some(s) = self.services.get(&(c.node.clone(), c.service_id.clone())) {
                touch.service(s);
            }
        }
    }

    fn refresh_service_checks(&mut self, idx: u64, key: &(String, String), touch: &mut Touch) {
        let Some(s) = self.services.get(key).cloned() else { return };
        let ids: Vec<String> =
            self.node_checks(&key.0).filter(|c| c.service_id == key.1).map(|c| c.check_id.clone()).collect();
        for id in ids {
            if let Some(existing) = self.checks.get(&(key.0.clone(), id)).cloned() {
                let mut c = existing;
                c.service_name = s.service.clone();
                c.service_tags = s.tags.clone();
                self.put_check(idx, c, touch);
            }
        }
    }

    fn link_name(&mut self, name: &str, key: &(String, String)) {
        self.by_name.entry(name.to_ascii_lowercase()).or_default().insert(key.clone());
    }

    fn unlink_name(&mut self, name: &str, key: &(String, String)) {
        let lower = name.to_ascii_lowercase();
        if let Some(set) = self.by_name.get_mut(&lower) {
            set.remove(key);
            if set.is_empty() {
                self.by_name.remove(&lower);
            }
        }
    }

    /// Applies a deregistration at raft index `idx`. Removing something
    /// that does not exist is not an error (as Consul).
    pub fn deregister(&mut self, idx: u64, d: &Deregistration) -> Result<Vec<String>, String> {
        if d.node.is_empty() {
            return Err("Must provide node".into());
        }
        let mut touch = Touch::default();
        match (&d.service_id, &d.check_id) {
            (Some(sid), _) if !sid.is_empty() => self.remove_service(&d.node, sid, &mut touch),
            (_, Some(cid)) if !cid.is_empty() => self.remove_check(&d.node, cid, &mut touch),
            _ => self.remove_node(&d.node, &mut touch),
        }
        Ok(self.finish(idx, touch))
    }

    fn remove_check(&mut self, node: &str, id: &str, touch: &mut Touch) {
        let key = (node.to_string(), id.to_string());
        self.note_check(&key);
        if let Some(c) = self.checks.remove(&key) {
            self.touch_check(&c, touch);
        }
    }

    fn remove_service(&mut self, node: &str, id: &str, touch: &mut Touch) {
        let key = (node.to_string(), id.to_string());
        self.note_service(&key);
        let Some(s) = self.services.remove(&key) else { return };
        self.unlink_name(&s.service, &key);
        touch.services = true;
        touch.node_names.insert(node.to_string());
        touch.service(&s);
        let ids: Vec<String> =
            self.node_checks(node).filter(|c| c.service_id == id).map(|c| c.check_id.clone()).collect();
        for cid in ids {
            let key = (node.to_string(), cid);
            self.note_check(&key);
            if let Some(c) = self.checks.remove(&key) {
                touch.checks = true;
                let _ = c;
            }
        }
    }

    fn remove_node(&mut self, node: &str, touch: &mut Touch) {
        self.note_node(node);
        if self.take_node(node).is_none() {
            return;
        }
        touch.nodes = true;
        touch.node_names.insert(node.to_string());
        let sids: Vec<String> = self.node_services(node).map(|s| s.id.clone()).collect();
        for sid in sids {
            self.remove_service(node, &sid, touch);
        }
        let cids: Vec<String> = self.node_checks(node).map(|c| c.check_id.clone()).collect();
        for cid in cids {
            let key = (node.to_string(), cid);
            self.note_check(&key);
            if self.checks.remove(&key).is_some() {
                touch.checks = true;
            }
        }
    }

    /// Bumps indexes for what changed and lists the topics to wake.
    fn finish(&mut self, idx: u64, touch: Touch) -> Vec<String> {
        // Inside a transaction, indexes move (and watchers wake) only once
        // it commits.
        let Some(touch) = self.defer_touch(touch) else { return Vec::new() };
        let mut topics = Vec::new();
        if touch.nodes {
            self.index.nodes = idx;
            topics.push(TOPIC_NODES.to_string());
        }
        if touch.services {
            self.index.services = idx;
            topics.push(TOPIC_SERVICES.to_string());
        }
        if touch.checks {
            self.index.checks = idx;
            topics.push(TOPIC_CHECKS.to_string());
        }
        for name in touch.service_names {
            let lower = name.to_ascii_lowercase();
            if self.by_name.contains_key(&lower) {
                self.index.by_service.insert(lower, idx);
            } else {
                self.index.by_service.remove(&lower);
            }
            topics.push(topic_service(&name));
        }
        for node in touch.node_names {
            if self.nodes.contains_key(&node) {
                self.index.by_node.insert(node.clone(), idx);
            } else {
                self.index.by_node.remove(&node);
            }
            topics.push(topic_node(&node));
        }
        topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> Node {
        Node { node: name.into(), address: "10.0.0.1".into(), datacenter: "dc1".into(), ..Default::default() }
    }

    fn svc(id: &str, name: &str) -> NodeService {
        NodeService { id: id.into(), service: name.into(), port: 80, ..Default::default() }
    }

    fn check(id: &str, service_id: &str, status: &str) -> HealthCheck {
        HealthCheck {
            check_id: id.into(),
            name: id.into(),
            service_id: service_id.into(),
            status: status.into(),
            ..Default::default()
        }
    }

    #[test]
    fn register_query_deregister() {
        let mut r = Registry::default();
        let reg = Registration {
            node: node("n1"),
            service: Some(svc("web1", "web")),
            checks: vec![check("c1", "web1", PASSING), check("serfHealth", "", PASSING)],
            ..Default::default()
        };
        let topics = r.register(5, &reg).unwrap();
        assert!(topics.contains(&"svc:web".to_string()));
        assert_eq!(r.service_instances("web").len(), 1);
        assert_eq!(r.service_index("web"), 5);
        assert_eq!(r.service_checks("web")[0].service_name, "web");
        assert_eq!(r.instance_checks("n1", "web1").len(), 2);

        // Re-registering the same content changes nothing.
        assert!(r.register(6, &reg).unwrap().is_empty());
        assert_eq!(r.service_index("web"), 5);

        // Another service does not move web's index.
        let reg2 = Registration { node: node("n2"), service: Some(svc("db1", "db")), ..Default::default() };
        r.register(7, &reg2).unwrap();
        assert_eq!(r.service_index("web"), 5);
        assert_eq!(r.service_index("db"), 7);

        // A node check on n1 moves web's index (its health changed).
        let reg3 = Registration {
            node: node("n1"),
            checks: vec![check("serfHealth", "", CRITICAL)],
            skip_node_update: true,
            ..Default::default()
        };
        r.register(8, &reg3).unwrap();
        assert_eq!(r.service_index("web"), 8);
        assert_eq!(r.service_index("db"), 7);

        r.deregister(
            9,
            &Deregistration { node: "n1".into(), service_id: Some("web1".into()), check_id: None },
        )
        .unwrap();
        assert!(r.service_instances("web").is_empty());
        assert!(r.check("n1", "c1").is_none());
        assert!(r.check("n1", "serfHealth").is_some());
        r.deregister(10, &Deregistration { node: "n1".into(), ..Default::default() }).unwrap();
        assert!(r.node("n1").is_none());
        assert_eq!(r.node_checks("n1").count(), 0);
    }

    #[test]
    fn node_ids_are_indexed_through_renames_rollbacks_and_decoding() {
        let with_id = |name: &str, id: &str| Registration {
            node: Node { id: id.into(), ..node(name) },
            ..Default::default()
        };
        let mut r = Registry::default();
        r.register(1, &with_id("n1", "AAAA-1")).unwrap();
        r.register(2, &with_id("n2", "bbbb-2")).unwrap();
        assert_eq!(r.node_by_id("aaaa-1", None).map(|n| n.node.as_str()), Some("n1"));
        assert!(r.node_by_id("aaaa-1", Some("n1")).is_none());
        // Another name may not take a registered ID (any case) ...
        let err = r.register(3, &with_id("n3", "BBBB-2")).unwrap_err();
        assert!(err.contains("is reserved by node"), "{err}");
        // ... but a node may change its own ID, which frees the old one.
        r.register(4, &with_id("n2", "cccc-3")).unwrap();
        assert!(r.node_by_id("bbbb-2", None).is_none());
        r.register(5, &with_id("n3", "bbbb-2")).unwrap();
        // A rolled-back transaction leaves the index as it found it.
        r.begin_txn();
        r.register(6, &with_id("n4", "dddd-4")).unwrap();
        r.deregister(6, &Deregistration { node: "n1".into(), ..Default::default() }).unwrap();
        assert!(r.node_by_id("aaaa-1", None).is_none());
        r.rollback_txn();
        assert_eq!(r.node_by_id("AAAA-1", None).map(|n| n.node.as_str()), Some("n1"));
        assert!(r.node_by_id("dddd-4", None).is_none());
        // Decoding rebuilds it (it is never encoded).
        let back: Registry = postcard::from_bytes(&postcard::to_allocvec(&r).unwrap()).unwrap();
        assert_eq!(back.by_id, r.by_id);
        assert_eq!(back.by_id.len(), 3);
        r.deregister(7, &Deregistration { node: "n3".into(), ..Default::default() }).unwrap();
        assert!(r.node_by_id("bbbb-2", None).is_none());
    }

    #[test]
    fn invalid_registrations_change_nothing() {
        let mut r = Registry::default();
        let bad = Registration {
            node: node("n1"),
            checks: vec![check("c", "missing-svc", PASSING)],
            ..Default::default()
        };
        assert!(r.register(3, &bad).is_err());
        assert!(r.node("n1").is_none());
        let bad =
            Registration { node: node("n1"), checks: vec![check("c", "", "sunny")], ..Default::default() };
        assert!(r.register(3, &bad).is_err());
        assert_eq!(r.index, CatalogIndexes::default());
    }
}
