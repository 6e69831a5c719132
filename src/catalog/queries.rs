//! Prepared queries (Consul's `/v1/query`): stored service lookups with
//! filters and datacenter failover, optionally templates that match a
//! family of names. This module holds the stored shape, the table with its
//! integrity rules (unique names, one catch-all template, a live session),
//! and template rendering; executing a query is the server's job.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Watch topic of the whole table.
pub const TOPIC_QUERIES: &str = "queries";
/// The only template type Consul has.
pub const TEMPLATE_NAME_PREFIX_MATCH: &str = "name_prefix_match";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryTemplate {
    /// "" (not a template) or `name_prefix_match`.
    pub kind: String,
    /// Matched against the full requested name; `${match(N)}` are its groups.
    pub regexp: String,
    /// Drop tags that render empty.
    pub remove_empty_tags: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryFailover {
    /// Try this many other datacenters, nearest (median WAN RTT) first.
    pub nearest_n: i64,
    /// Then these, in order.
    pub datacenters: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceQuery {
    pub service: String,
    pub failover: QueryFailover,
    pub ignore_check_ids: Vec<String>,
    pub only_passing: bool,
    /// A node name, `_agent` or `_ip`: sort results by RTT from it.
    pub near: String,
    /// Every tag must be present; `!tag` must be absent.
    pub tags: Vec<String>,
    pub node_meta: BTreeMap<String, String>,
    pub service_meta: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedQuery {
    pub id: String,
    pub name: String,
    /// The query is deleted when this session ends ("" = none).
    pub session: String,
    /// The token the query executes with ("" = the caller's).
    pub token: String,
    pub template: QueryTemplate,
    pub service: ServiceQuery,
    /// The DNS answer TTL ("" = the agent's service TTL).
    pub dns_ttl: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl PreparedQuery {
    pub fn is_template(&self) -> bool {
        !self.template.kind.is_empty()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryTable {
    by_id: BTreeMap<String, PreparedQuery>,
    /// Raft index of the last change.
    pub index: u64,
}

impl QueryTable {
    pub fn get(&self, id: &str) -> Option<&PreparedQuery> {
        self.by_id.get(id)
    }

    pub fn list(&self) -> impl Iterator<Item = &PreparedQuery> {
        self.by_id.values()
    }

    /// Creates or replaces a query. `session_exists` checks the binding.
    pub fn set(
        &mut self,
        index: u64,
        mut q: PreparedQuery,
        session_exists: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        if q.id.is_empty() {
            return Err("Missing query ID".into());
        }
        if !q.session.is_empty() && !session_exists(&q.session) {
            return Err(format!("invalid session {:?}", q.session));
        }
        for other in self.by_id.values().filter(|o| o.id != q.id) {
            if !q.name.is_empty() && other.id == q.name {
                return Err(format!("name '{}' aliases an existing query ID", q.name));
            }
            if other.name == q.name && (other.is_template() == q.is_template()) {
                if q.name.is_empty() && q.is_template() {
                    return Err("a query template with an empty name already exists".into());
                }
                if !q.name.is_empty() {
                    return Err(format!("name '{}' aliases an existing query name", q.name));
                }
            }
        }
        q.create_index = self.by_id.get(&q.id).map_or(index, |old| old.create_index);
        q.modify_index = index;
        self.by_id.insert(q.id.clone(), q);
        self.index = index;
        Ok(())
    }

    pub fn delete(&mut self, index: u64, id: &str) -> bool {
        let gone = self.by_id.remove(id).is_some();
        if gone {
            self.index = index;
        }
        gone
    }

    /// Deletes the queries bound to a session that ended.
    pub fn session_ended(&mut self, index: u64, session: &str) -> bool {
        let before = self.by_id.len();
        self.by_id.retain(|_, q| q.session != session);
        let changed = before != self.by_id.len();
        if changed {
            self.index = index;
        }
        changed
    }

    /// The query `key` names: an ID, else a query's exact name, else the
    /// template with the longest name that prefixes `key` (a template with
    /// an empty name catches everything).
    pub fn lookup(&self, key: &str) -> Option<&PreparedQuery> {
        if let Some(q) = self.by_id.get(key) {
            return Some(q);
        }
        if key.is_empty() {
            return None;
        }
        if let Some(q) = self.by_id.values().find(|q| !q.is_template() && q.name == key) {
            return Some(q);
        }
        self.by_id
            .values()
            .filter(|q| q.is_template() && key.starts_with(&q.name))
            .max_by_key(|q| q.name.len())
    }
}

/// Fills a template's `${...}` variables for the requested `name`:
/// `name.full`, `name.prefix` (the template's name), `name.suffix`, and
/// `match(N)` (group N of the template's regexp on the full name).
pub fn render(template: &PreparedQuery, name: &str) -> Result<PreparedQuery, String> {
    if !template.is_template() {
        return Ok(template.clone());
    }
    let groups: Vec<String> = if template.template.regexp.is_empty() {
        Vec::new()
    } else {
        let re = regex_lite::Regex::new(&template.template.regexp).map_err(|e| format!("Bad Regexp: {e}"))?;
        match re.captures(name) {
            Some(c) => c.iter().map(|m| m.map_or(String::new(), |m| m.as_str().to_string())).collect(),
            None => Vec::new(),
        }
    };
    let suffix = name.strip_prefix(template.name.as_str()).unwrap_or("");
    let fill = |s: &str| interpolate(s, name, &template.name, suffix, &groups);
    let mut q = template.clone();
    let svc = &mut q.service;
    svc.service = fill(&svc.service)?;
    svc.near = fill(&svc.near)?;
    for t in svc.tags.iter_mut() {
        *t = fill(t)?;
    }
    if template.template.remove_empty_tags {
        svc.tags.retain(|t| !t.is_empty());
    }
    for id in svc.ignore_check_ids.iter_mut() {
        *id = fill(id)?;
    }
    for dc in svc.failover.datacenters.iter_mut() {
        *dc = fill(dc)?;
    }
    for v in svc.node_meta.values_mut().chain(svc.service_meta.values_mut()) {
        *v = fill(v)?;
    }
    Ok(q)
}

fn interpolate(s: &str, full: &str, prefix: &str, suffix: &str, groups: &[String]) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unterminated variable in {s:?}"))?;
        let var = after[..end].trim();
        let value = match var {
            "name.full" => full.to_string(),
            "name.prefix" => prefix.to_string(),
            "name.suffix" => suffix.to_string(),
            _ => match var.strip_prefix("match(").and_then(|v| v.strip_suffix(')')) {
                Some(n) => {
                    let n: usize = n.trim().parse().map_err(|_| format!("bad match index in {var:?}"))?;
                    groups.get(n).cloned().unwrap_or_default()
                }
                None => return Err(format!("unknown variable {var:?}")),
            },
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str, name: &str, template: bool) -> PreparedQuery {
        PreparedQuery {
            id: id.into(),
            name: name.into(),
            template: QueryTemplate {
                kind: if template { TEMPLATE_NAME_PREFIX_MATCH.into() } else { String::new() },
                ..Default::default()
            },
            service: ServiceQuery { service: "svc".into(), ..Default::default() },
            ..Default::default()
        }
    }

    #[test]
    fn names_are_unique_and_one_catch_all() {
        let mut t = QueryTable::default();
        t.set(1, q("a", "web", false), |_| true).unwrap();
        assert!(t
            .set(2, q("b", "web", false), |_| true)
            .unwrap_err()
            .contains("aliases an existing query name"));
        assert!(t.set(2, q("b", "a", false), |_| true).unwrap_err().contains("aliases an existing query ID"));
        // A template may share a prefix name with a query.
        t.set(3, q("c", "web", true), |_| true).unwrap();
        t.set(4, q("d", "", true), |_| true).unwrap();
        assert_eq!(
            t.set(5, q("e", "", true), |_| true).unwrap_err(),
            "a query template with an empty name already exists"
        );
        // Updating keeps the create index.
        t.set(6, q("a", "web", false), |_| true).unwrap();
        assert_eq!((t.get("a").unwrap().create_index, t.get("a").unwrap().modify_index), (1, 6));
        let mut bound = q("s", "bound", false);
        bound.session = "sess".into();
        assert!(t.set(7, bound.clone(), |_| false).unwrap_err().contains("invalid session"));
        t.set(7, bound, |_| true).unwrap();
        assert!(t.session_ended(8, "sess"));
        assert!(t.get("s").is_none());
    }

    #[test]
    fn lookup_prefers_id_then_name_then_longest_prefix() {
        let mut t = QueryTable::default();
        t.set(1, q("id1", "geo", false), |_| true).unwrap();
        t.set(2, q("id2", "geo-", true), |_| true).unwrap();
        t.set(3, q("id3", "", true), |_| true).unwrap();
        assert_eq!(t.lookup("id1").unwrap().id, "id1");
        assert_eq!(t.lookup("geo").unwrap().id, "id1");
        assert_eq!(t.lookup("geo-web").unwrap().id, "id2");
        assert_eq!(t.lookup("other").unwrap().id, "id3");
        assert!(t.lookup("").is_none());
    }

    #[test]
    fn templates_render_names_and_matches() {
        let mut tpl = q("t", "geo-", true);
        tpl.template.regexp = "^geo-(.+?)-(.+)$".into();
        tpl.template.remove_empty_tags = true;
        tpl.service.service = "${match(1)}".into();
        tpl.service.tags = vec!["${match(2)}".into(), "${match(7)}".into(), "x-${name.suffix}".into()];
        tpl.service.failover.datacenters = vec!["${name.prefix}dc".into()];
        let r = render(&tpl, "geo-db-primary").unwrap();
        assert_eq!(r.service.service, "db");
        assert_eq!(r.service.tags, vec!["primary", "x-db-primary"]);
        assert_eq!(r.service.failover.datacenters, vec!["geo-dc"]);
        tpl.service.service = "${name.full}".into();
        assert_eq!(render(&tpl, "geo-x").unwrap().service.service, "geo-x");
        tpl.service.service = "${nope}".into();
        assert!(render(&tpl, "geo-x").is_err());
        tpl.service.service = "${name.full".into();
        assert!(render(&tpl, "geo-x").is_err());
    }
}
