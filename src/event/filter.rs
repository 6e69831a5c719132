//! The node / service / tag filters of a user event: regular expressions
//! (unanchored, as Go's `MatchString`) that each agent applies to itself.
//!
//! Owns validation and matching. Must not read agent state itself: the
//! caller passes the node name and the local services.

use regex_lite::Regex;

/// A local service as the filters see it.
#[derive(Clone, Copy, Debug)]
pub struct ServiceView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub tags: &'a [String],
}

/// Compiled filters; an empty expression filters nothing.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    node: Option<Regex>,
    service: Option<Regex>,
    tag: Option<Regex>,
}

fn compile(what: &str, expr: &str) -> Result<Option<Regex>, String> {
    if expr.is_empty() {
        return Ok(None);
    }
    Regex::new(expr).map(Some).map_err(|e| format!("Invalid {what} filter: {e}"))
}

impl Filters {
    /// Validates and compiles the three expressions, with Consul's checks
    /// and messages (a tag filter needs a service filter).
    pub fn compile(node: &str, service: &str, tag: &str) -> Result<Filters, String> {
        if !tag.is_empty() && service.is_empty() {
            return Err("Cannot provide tag filter without service filter".into());
        }
        Ok(Filters {
            node: compile("node", node)?,
            service: compile("service", service)?,
            tag: compile("tag", tag)?,
        })
    }

    /// Whether an agent named `node` with these local services should
    /// process the event: the node filter matches its name, and the service
    /// filter matches one of its services whose tags (if a tag filter is
    /// given) include a match.
    ///
    /// Consul matches the service filter against the service ID (which
    /// defaults to the name); we accept a match on the ID or the name, so
    /// a filter written either way reaches the node.
    pub fn matches(&self, node: &str, services: &[ServiceView<'_>]) -> bool {
        if let Some(re) = &self.node {
            if !re.is_match(node) {
                return false;
            }
        }
        let Some(svc) = &self.service else { return true };
        services.iter().any(|s| {
            (svc.is_match(s.id) || svc.is_match(s.name))
                && match &self.tag {
                    None => true,
                    Some(tag) => s.tags.iter().any(|t| tag.is_match(t)),
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc<'a>(id: &'a str, name: &'a str, tags: &'a [String]) -> ServiceView<'a> {
        ServiceView { id, name, tags }
    }

    #[test]
    fn validation_messages_are_consuls() {
        assert_eq!(
            Filters::compile("", "", "v1").unwrap_err(),
            "Cannot provide tag filter without service filter"
        );
        assert!(Filters::compile("(", "", "").unwrap_err().starts_with("Invalid node filter: "));
        assert!(Filters::compile("", "[", "").unwrap_err().starts_with("Invalid service filter: "));
        assert!(Filters::compile("", "web", "(?P<").unwrap_err().starts_with("Invalid tag filter: "));
        assert!(Filters::compile("", "", "").is_ok());
    }

    #[test]
    fn empty_filters_match_everyone() {
        let f = Filters::compile("", "", "").unwrap();
        assert!(f.matches("any", &[]));
    }

    #[test]
    fn node_filter_is_an_unanchored_regex() {
        let f = Filters::compile("web", "", "").unwrap();
        assert!(f.matches("web-1", &[]));
        assert!(f.matches("prod-web", &[]));
        assert!(!f.matches("db-1", &[]));
        let anchored = Filters::compile("^web-[0-9]+$", "", "").unwrap();
        assert!(anchored.matches("web-12", &[]));
        assert!(!anchored.matches("web-12a", &[]));
    }

    #[test]
    fn service_and_tag_filters_need_one_service_matching_both() {
        let primary = vec!["primary".to_string(), "v2".to_string()];
        let replica = vec!["replica".to_string()];
        let services = [svc("redis-a", "redis", &primary), svc("api", "api", &replica)];
        let f = |s: &str, t: &str| Filters::compile("", s, t).unwrap();
        assert!(f("redis", "").matches("n", &services));
        assert!(f("redis", "prim").matches("n", &services));
        // The tag must be on the service that matched, not on another one.
        assert!(!f("redis", "replica").matches("n", &services));
        assert!(f("api", "replica").matches("n", &services));
        assert!(!f("db", "").matches("n", &services));
        assert!(!f("redis", "").matches("n", &[]));
        // The ID alone matches too.
        assert!(f("^redis-a$", "").matches("n", &services));
    }

    #[test]
    fn node_and_service_filters_combine() {
        let tags: Vec<String> = vec![];
        let services = [svc("web", "web", &tags)];
        let f = Filters::compile("^c1$", "web", "").unwrap();
        assert!(f.matches("c1", &services));
        assert!(!f.matches("c2", &services));
        assert!(!f.matches("c1", &[]));
    }
}
