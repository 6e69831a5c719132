//! Policy rule text (HCL or JSON, as a policy's `Rules` field holds it) →
//! a validated, immutable [`Rules`] value.
//!
//! Shapes accepted, as Consul 1.2x accepts them:
//! * blocks with a label: `key_prefix "app/" { policy = "read" }`;
//! * objects: `key_prefix = { "app/" = { policy = "read" } }`, the same in
//!   JSON `{"key_prefix": {"app/": {"policy": "read"}}}`, and JSON lists of
//!   such objects;
//! * scalars: `acl`, `keyring`, `operator`, `mesh`, `peering` = `"read" |
//!   "write" | "deny"` (`""` means unset, as in Consul).
//!
//! Dispositions are `read`, `write`, `deny`, and `list` on `key` and
//! `key_prefix` only (whether `list` is *enforced* is the agent's
//! `enable_key_list_policy`, an authorizer setting, not a parse setting).
//! Like Consul, values are case-insensitive (`"READ"` is read).
//!
//! Where we are stricter than Consul (whose HCL decoder ignores keys it does
//! not know): an unknown rule type (`servce "web" {}`) or an unknown field in
//! a rule (`polcy = "read"`) is refused with its line, because a typo that
//! silently grants nothing is what people then debug for an hour. The
//! Enterprise-only types (`namespace`, `partition` and their `_prefix`
//! forms) and the Enterprise `sentinel` field are accepted and ignored, as
//! Consul CE does.

use crate::config::hcl;
use serde_json::{Map, Value};

/// The largest rule text accepted. Consul sets no bound of its own beyond
/// its request size limits; rule text lives in every snapshot and is parsed
/// on every token resolution after a cache miss, so we refuse more than
/// Consul's default `kv_max_value_size` (512 KiB), far above any real
/// policy (the largest built-in one is under 1 KiB).
pub const MAX_RULES_BYTES: usize = 512 * 1024;

/// A rule's disposition. The order is the precedence when several policies
/// set the same segment: `Deny > Write > List > Read` (so `max` merges).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read,
    List,
    Write,
    Deny,
}

impl Access {
    /// Parses a disposition as Consul does (case-insensitive).
    pub fn parse(s: &str) -> Option<Access> {
        match s.to_ascii_lowercase().as_str() {
            "read" => Some(Access::Read),
            "list" => Some(Access::List),
            "write" => Some(Access::Write),
            "deny" => Some(Access::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::List => "list",
            Access::Write => "write",
            Access::Deny => "deny",
        }
    }

    /// Whether a rule with this disposition grants `needed` (read, list or
    /// write).
    pub fn grants(self, needed: Access) -> bool {
        match self {
            Access::Write => true,
            Access::List => matches!(needed, Access::List | Access::Read),
            Access::Read => needed == Access::Read,
            Access::Deny => false,
        }
    }
}

/// A resource kind that names things (exact and `_prefix` forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Agent,
    Event,
    /// `identity` / `identity_prefix`: workload identities (Consul 1.17's
    /// `builtin/workload-identity` template renders them). Parsed and
    /// merged like `service`; nothing in consul-rs enforces them.
    Identity,
    Key,
    Node,
    Query,
    Service,
    Session,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Agent,
        Kind::Event,
        Kind::Identity,
        Kind::Key,
        Kind::Node,
        Kind::Query,
        Kind::Service,
        Kind::Session,
    ];

    /// The rule's keyword (the exact form).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Event => "event",
            Kind::Identity => "identity",
            Kind::Key => "key",
            Kind::Node => "node",
            Kind::Query => "query",
            Kind::Service => "service",
            Kind::Session => "session",
        }
    }

    fn prefix_str(self) -> &'static str {
        match self {
            Kind::Agent => "agent_prefix",
            Kind::Event => "event_prefix",
            Kind::Identity => "identity_prefix",
            Kind::Key => "key_prefix",
            Kind::Node => "node_prefix",
            Kind::Query => "query_prefix",
            Kind::Service => "service_prefix",
            Kind::Session => "session_prefix",
        }
    }

    /// The keyword as written: `key` or `key_prefix`.
    pub fn keyword(self, prefix: bool) -> &'static str {
        if prefix {
            self.prefix_str()
        } else {
            self.as_str()
        }
    }

    fn allows_list(self) -> bool {
        self == Kind::Key
    }

    fn has_intentions(self) -> bool {
        matches!(self, Kind::Service | Kind::Identity)
    }

    fn from_keyword(word: &str) -> Option<(Kind, bool)> {
        Kind::ALL.into_iter().find_map(|k| {
            if word == k.as_str() {
                Some((k, false))
            } else if word == k.prefix_str() {
                Some((k, true))
            } else {
                None
            }
        })
    }
}

/// One named rule: `key_prefix "app/" { policy = "read" }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub kind: Kind,
    /// `_prefix` form: applies to every name starting with `name`.
    pub prefix: bool,
    pub name: String,
    pub policy: Access,
    /// `intentions = ...` inside `service` / `service_prefix` (and
    /// `identity`); `None` lets the authorizer derive it from `policy`.
    pub intentions: Option<Access>,
}

/// A parsed policy. Immutable; share it as `Arc<Rules>` (the authorizer
/// takes `&[Arc<Rules>]`) so a policy cache hands out clones for free.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// In the order written.
    pub rules: Vec<Rule>,
    pub acl: Option<Access>,
    pub keyring: Option<Access>,
    pub operator: Option<Access>,
    pub mesh: Option<Access>,
    pub peering: Option<Access>,
}

impl Rules {
    /// Grants nothing at all (empty text, or only unset scalars).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
            && self.acl.is_none()
            && self.keyring.is_none()
            && self.operator.is_none()
            && self.mesh.is_none()
            && self.peering.is_none()
    }
}

/// Why rule text was refused. The texts start as Consul's do (`Failed to
/// parse ACL rules: ...` for syntax, `Invalid <type> policy: ...` for a bad
/// disposition) and end with the line when it is known (HCL always; JSON
/// only for syntax errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Failed to parse ACL rules: {message}{}", at(.line))]
    Syntax { message: String, line: Option<usize> },
    #[error("Failed to parse ACL rules: the rules are {size} bytes, more than the {max} allowed")]
    TooLarge { size: usize, max: usize },
    #[error(
        "Failed to parse ACL rules: unknown rule type {name:?}{}; expected one of {}",
        at(.line),
        KNOWN_TYPES
    )]
    UnknownResource { name: String, line: Option<usize> },
    /// `resource` is the keyword (`key_prefix`) or, for a bad `intentions`
    /// value, `service intentions` / `service_prefix intentions`.
    #[error("Invalid {resource} policy: {reason}{}", at(.line))]
    Invalid { resource: String, reason: String, line: Option<usize> },
}

impl RuleError {
    /// The 1-based line in the rule text, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            RuleError::Syntax { line, .. }
            | RuleError::UnknownResource { line, .. }
            | RuleError::Invalid { line, .. } => *line,
            RuleError::TooLarge { .. } => None,
        }
    }
}

const KNOWN_TYPES: &str = "acl, agent, agent_prefix, event, event_prefix, identity, identity_prefix, key, \
     key_prefix, keyring, mesh, node, node_prefix, operator, peering, query, query_prefix, service, \
     service_prefix, session, session_prefix";

/// Consul CE decodes these Enterprise-only types into nothing.
const ENTERPRISE_ONLY: [&str; 4] = ["namespace", "namespace_prefix", "partition", "partition_prefix"];

fn at(line: &Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

/// Parses policy rule text (HCL, or JSON when it starts with `{`).
pub fn parse(text: &str) -> Result<Rules, RuleError> {
    if text.len() > MAX_RULES_BYTES {
        return Err(RuleError::TooLarge { size: text.len(), max: MAX_RULES_BYTES });
    }
    if text.trim().is_empty() {
        return Ok(Rules::default());
    }
    // HCL1, which Consul decodes rules with, reads a text starting with `{`
    // as JSON; HCL2's parser (ours) would refuse it.
    if text.trim_start().starts_with('{') {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| RuleError::Syntax { message: json_message(&e), line: Some(e.line()) })?;
        Walker { locate: &|_| None }.top(&value)
    } else {
        let doc =
            hcl::parse(text).map_err(|e| RuleError::Syntax { message: e.message, line: Some(e.line) })?;
        Walker { locate: &|path| doc.position(path).map(|(line, _)| line) }.top(&doc.value)
    }
}

/// serde_json's text without its " at line L column C" tail (we add the
/// line ourselves, in the same place as for HCL).
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

struct Walker<'a> {
    /// Key path (`key.app/.policy`, `service[1].web`) → line.
    locate: &'a dyn Fn(&str) -> Option<usize>,
}

impl Walker<'_> {
    fn top(&self, value: &Value) -> Result<Rules, RuleError> {
        let Value::Object(top) = value else {
            return Err(RuleError::Syntax {
                message: "rules must be an object of rule types".into(),
                line: None,
            });
        };
        let mut out = Rules::default();
        for (key, value) in top {
            let word = key.to_ascii_lowercase();
            let scalar = match word.as_str() {
                "acl" => Some(&mut out.acl),
                "keyring" => Some(&mut out.keyring),
                "operator" => Some(&mut out.operator),
                "mesh" => Some(&mut out.mesh),
                "peering" => Some(&mut out.peering),
                _ => None,
            };
            if let Some(slot) = scalar {
                *slot = self.scalar(&word, value, key)?;
                continue;
            }
            if let Some((kind, prefix)) = Kind::from_keyword(&word) {
                self.resource(kind, prefix, value, key, &mut out.rules)?;
                continue;
            }
            if ENTERPRISE_ONLY.contains(&word.as_str()) {
                continue;
            }
            return Err(RuleError::UnknownResource { name: key.clone(), line: (self.locate)(key) });
        }
        Ok(out)
    }

    /// `acl = "write"` and its siblings.
    fn scalar(&self, word: &str, value: &Value, path: &str) -> Result<Option<Access>, RuleError> {
        let invalid = |reason: String| RuleError::Invalid {
            resource: word.to_string(),
            reason,
            line: (self.locate)(path),
        };
        let Value::String(s) = value else {
            return Err(invalid(format!(
                "{word} must be one of \"read\", \"write\" or \"deny\", not {}",
                describe(value)
            )));
        };
        if s.is_empty() {
            return Ok(None);
        }
        match Access::parse(s) {
            Some(Access::List) | None => {
                Err(invalid(format!("{s:?} is not one of \"read\", \"write\" or \"deny\"")))
            }
            Some(a) => Ok(Some(a)),
        }
    }

    /// `key "a" { ... }`, `key = { "a" = { ... } }`, or a list of those.
    fn resource(
        &self,
        kind: Kind,
        prefix: bool,
        value: &Value,
        path: &str,
        out: &mut Vec<Rule>,
    ) -> Result<(), RuleError> {
        match value {
            Value::Object(named) => self.named(kind, prefix, named, path, out),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    match item {
                        Value::Object(named) => self.named(kind, prefix, named, &item_path, out)?,
                        other => return Err(self.shape_error(kind, prefix, other, &item_path)),
                    }
                }
                Ok(())
            }
            other => Err(self.shape_error(kind, prefix, other, path)),
        }
    }

    fn shape_error(&self, kind: Kind, prefix: bool, value: &Value, path: &str) -> RuleError {
        let word = kind.keyword(prefix);
        RuleError::Invalid {
            resource: word.to_string(),
            reason: format!(
                "expected a block such as {word} \"name\" {{ policy = \"read\" }}, not {}",
                describe(value)
            ),
            line: (self.locate)(path),
        }
    }

    fn named(
        &self,
        kind: Kind,
        prefix: bool,
        named: &Map<String, Value>,
        path: &str,
        out: &mut Vec<Rule>,
    ) -> Result<(), RuleError> {
        for (name, body) in named {
            let rule_path = format!("{path}.{name}");
            match body {
                Value::Object(fields) => out.push(self.rule(kind, prefix, name, fields, &rule_path)?),
                // The same name given as several blocks inside one object.
                Value::Array(bodies) if bodies.iter().all(Value::is_object) => {
                    for (i, body) in bodies.iter().enumerate() {
                        let Value::Object(fields) = body else { continue };
                        out.push(self.rule(kind, prefix, name, fields, &format!("{rule_path}[{i}]"))?);
                    }
                }
                other => {
                    let word = kind.keyword(prefix);
                    return Err(RuleError::Invalid {
                        resource: word.to_string(),
                        reason: format!(
                            "the rule for {name:?} must be a block such as {word} {name:?} {{ policy = \"read\" }}, not {}",
                            describe(other)
                        ),
                        line: (self.locate)(&rule_path),
                    });
                }
            }
        }
        Ok(())
    }

    fn rule(
        &self,
        kind: Kind,
        prefix: bool,
        name: &str,
        fields: &Map<String, Value>,
        path: &str,
    ) -> Result<Rule, RuleError> {
        let word = kind.keyword(prefix);
        let invalid = |resource: String, reason: String, at: &str| RuleError::Invalid {
            resource,
            reason,
            line: (self.locate)(at),
        };
        let mut policy = None;
        let mut intentions = None;
        for (field, value) in fields {
            let field_path = format!("{path}.{field}");
            match field.to_ascii_lowercase().as_str() {
                "policy" => policy = Some((value, field_path)),
                "intentions" if kind.has_intentions() => intentions = Some((value, field_path)),
                // Enterprise-only; Consul CE ignores it.
                "sentinel" => {}
                _ => {
                    let hint = if field.eq_ignore_ascii_case("intentions") {
                        " (intentions are only valid in service and service_prefix rules)"
                    } else {
                        ""
                    };
                    return Err(invalid(
                        word.to_string(),
                        format!("unknown field {field:?} in the rule for {name:?}{hint}"),
                        &field_path,
                    ));
                }
            }
        }
        let Some((value, policy_path)) = policy else {
            return Err(invalid(word.to_string(), format!("no policy given for {name:?}"), path));
        };
        let policy = self.disposition(kind, word, name, value, &policy_path, kind.allows_list())?;
        let intentions = match intentions {
            // `intentions = ""` is unset, like Consul's empty string.
            Some((Value::String(s), _)) if s.is_empty() => None,
            Some((value, at)) => {
                Some(self.disposition(kind, &format!("{word} intentions"), name, value, &at, false)?)
            }
            None => None,
        };
        Ok(Rule { kind, prefix, name: name.to_string(), policy, intentions })
    }

    fn disposition(
        &self,
        kind: Kind,
        resource: &str,
        name: &str,
        value: &Value,
        path: &str,
        allow_list: bool,
    ) -> Result<Access, RuleError> {
        let invalid = |reason: String| RuleError::Invalid {
            resource: resource.to_string(),
            reason,
            line: (self.locate)(path),
        };
        let choices = if allow_list {
            "\"read\", \"write\", \"list\" or \"deny\""
        } else {
            "\"read\", \"write\" or \"deny\""
        };
        let Value::String(s) = value else {
            return Err(invalid(format!(
                "the policy for {name:?} must be one of {choices}, not {}",
                describe(value)
            )));
        };
        match Access::parse(s) {
            Some(Access::List) if !allow_list => Err(invalid(if kind.allows_list() {
                // `intentions = "list"` inside a key rule cannot happen
                // (no intentions there); this is for completeness.
                format!("{s:?} for {name:?} is not one of {choices}")
            } else {
                format!("{s:?} for {name:?} is only valid in key and key_prefix rules")
            })),
            Some(a) => Ok(a),
            None if s.is_empty() => Err(invalid(format!("no policy given for {name:?}"))),
            None => Err(invalid(format!("{s:?} for {name:?} is not one of {choices}"))),
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Rules {
        match parse(text) {
            Ok(r) => r,
            Err(e) => panic!("{text}\n=> {e}"),
        }
    }

    fn err(text: &str) -> RuleError {
        match parse(text) {
            Ok(r) => panic!("{text}\n=> parsed: {r:?}"),
            Err(e) => e,
        }
    }

    fn rule(kind: Kind, prefix: bool, name: &str, policy: Access) -> Rule {
        Rule { kind, prefix, name: name.into(), policy, intentions: None }
    }

    /// The same policy in HCL blocks, HCL objects and JSON gives the same
    /// rules (Consul's own parse test covers every type this way).
    #[test]
    fn every_type_in_hcl_blocks_hcl_objects_and_json() {
        let hcl_blocks = r#"
agent_prefix "bar" {
  policy = "write"
}
agent "foo" {
  policy = "read"
}
event_prefix "" {
  policy = "read"
}
event "foo" {
  policy = "write"
}
event "bar" {
  policy = "deny"
}
key_prefix "" {
  policy = "read"
}
key_prefix "foo/" {
  policy = "write"
}
key_prefix "foo/bar/" {
  policy = "list"
}
key "foo/bar/baz" {
  policy = "deny"
}
keyring = "deny"
node_prefix "" {
  policy = "read"
}
node "foo" {
  policy = "write"
}
operator = "deny"
mesh = "read"
peering = "write"
acl = "read"
service_prefix "" {
  policy = "write"
}
service "foo" {
  policy = "read"
  intentions = "write"
}
session "foo" {
  policy = "write"
}
session_prefix "baz" {
  policy = "deny"
}
query_prefix "" {
  policy = "read"
}
query "foo" {
  policy = "write"
}
identity_prefix "" {
  policy = "read"
}
identity "w" {
  policy = "write"
}
"#;
        let hcl_objects = r#"
agent_prefix = { "bar" = { policy = "write" } }
agent = { foo = { policy = "read" } }
event_prefix = { "" = { policy = "read" } }
event = { "foo" = { policy = "write" }, "bar" = { policy = "deny" } }
key_prefix = {
  "" = { policy = "read" }
  "foo/" = { policy = "write" }
  "foo/bar/" = { policy = "list" }
}
key = { "foo/bar/baz" = { policy = "deny" } }
keyring = "deny"
node_prefix = { "" = { policy = "read" } }
node = { "foo" = { policy = "write" } }
operator = "deny"
mesh = "read"
peering = "write"
acl = "read"
service_prefix = { "" = { policy = "write" } }
service = { "foo" = { policy = "read", intentions = "write" } }
session = { "foo" = { policy = "write" } }
session_prefix = { "baz" = { policy = "deny" } }
query_prefix = { "" = { policy = "read" } }
query = { "foo" = { policy = "write" } }
identity_prefix = { "" = { policy = "read" } }
identity = { "w" = { policy = "write" } }
"#;
        let json = r#"{
  "agent_prefix": {"bar": {"policy": "write"}},
  "agent": {"foo": {"policy": "read"}},
  "event_prefix": {"": {"policy": "read"}},
  "event": {"foo": {"policy": "write"}, "bar": {"policy": "deny"}},
  "key_prefix": {"": {"policy": "read"}, "foo/": {"policy": "write"}, "foo/bar/": {"policy": "list"}},
  "key": {"foo/bar/baz": {"policy": "deny"}},
  "keyring": "deny",
  "node_prefix": {"": {"policy": "read"}},
  "node": {"foo": {"policy": "write"}},
  "operator": "deny",
  "mesh": "read",
  "peering": "write",
  "acl": "read",
  "service_prefix": {"": {"policy": "write"}},
  "service": {"foo": {"policy": "read", "intentions": "write"}},
  "session": {"foo": {"policy": "write"}},
  "session_prefix": {"baz": {"policy": "deny"}},
  "query_prefix": {"": {"policy": "read"}},
  "query": {"foo": {"policy": "write"}},
  "identity_prefix": {"": {"policy": "read"}},
  "identity": {"w": {"policy": "write"}}
}"#;
        let mut expected = vec![
            rule(Kind::Agent, true, "bar", Access::Write),
            rule(Kind::Agent, false, "foo", Access::Read),
            rule(Kind::Event, true, "", Access::Read),
            rule(Kind::Event, false, "foo", Access::Write),
            rule(Kind::Event, false, "bar", Access::Deny),
            rule(Kind::Key, true, "", Access::Read),
            rule(Kind::Key, true, "foo/", Access::Write),
            rule(Kind::Key, true, "foo/bar/", Access::List),
            rule(Kind::Key, false, "foo/bar/baz", Access::Deny),
            rule(Kind::Node, true, "", Access::Read),
            rule(Kind::Node, false, "foo", Access::Write),
            rule(Kind::Service, true, "", Access::Write),
            Rule { intentions: Some(Access::Write), ..rule(Kind::Service, false, "foo", Access::Read) },
            rule(Kind::Session, false, "foo", Access::Write),
            rule(Kind::Session, true, "baz", Access::Deny),
            rule(Kind::Query, true, "", Access::Read),
            rule(Kind::Query, false, "foo", Access::Write),
            rule(Kind::Identity, true, "", Access::Read),
            rule(Kind::Identity, false, "w", Access::Write),
        ];
        let key = |r: &Rule| (r.kind, r.prefix, r.name.clone());
        expected.sort_by_key(key);
        for text in [hcl_blocks, hcl_objects, json] {
            let mut got = ok(text);
            got.rules.sort_by_key(key);
            assert_eq!(got.rules, expected, "{text}");
            assert_eq!(got.acl, Some(Access::Read));
            assert_eq!(got.keyring, Some(Access::Deny));
            assert_eq!(got.operator, Some(Access::Deny));
            assert_eq!(got.mesh, Some(Access::Read));
            assert_eq!(got.peering, Some(Access::Write));
        }
    }

    #[test]
    fn empty_text_and_empty_scalars_grant_nothing() {
        for text in [
            "",
            "  \n\t",
            "{}",
            "# just a comment\n",
            "keyring = \"\"\noperator = \"\"",
            r#"{"mesh": "", "peering": ""}"#,
        ] {
            let r = ok(text);
            assert!(r.is_empty(), "{text}: {r:?}");
        }
    }

    /// The examples of Consul's rules reference page.
    #[test]
    fn documentation_examples() {
        let r = ok(r#"
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
operator = "read"
"#);
        assert_eq!(r.rules.len(), 4);
        assert_eq!(r.operator, Some(Access::Read));

        let r = ok(r#"
service "app" {
  policy = "write"
}
service "admin" {
  policy = "deny"
}
service_prefix "" {
  policy = "read"
}
service "web" {
  policy = "read"
  intentions = "write"
}
node_prefix "" {
  policy = "read"
}
session_prefix "" {
  policy = "write"
}
event_prefix "" {
  policy = "read"
}
query_prefix "" {
  policy = "read"
}
agent_prefix "" {
  policy = "read"
}
agent "foo" {
  policy = "write"
}
"#);
        assert_eq!(r.rules.len(), 10);
        let web = r.rules.iter().find(|r| r.name == "web").unwrap();
        assert_eq!((web.policy, web.intentions), (Access::Read, Some(Access::Write)));

        // JSON form from the same page.
        let r = ok(
            r#"{"key_prefix": {"": {"policy": "read"}, "foo/": {"policy": "write"}}, "operator": "read"}"#,
        );
        assert_eq!(r.rules.len(), 2);
    }

    #[test]
    fn repeated_blocks_of_one_type_and_one_name() {
        let r = ok("key \"a\" { policy = \"read\" }\nkey \"b\" { policy = \"write\" }\nkey \"a\" { policy = \"deny\" }\n");
        let names: Vec<_> = r.rules.iter().map(|r| (r.name.as_str(), r.policy)).collect();
        assert_eq!(names, [("a", Access::Read), ("b", Access::Write), ("a", Access::Deny)]);
        // JSON lists of objects, as HCL1's JSON decoding takes them.
        let r = ok(r#"{"node": [{"a": {"policy": "read"}}, {"b": {"policy": "write"}}]}"#);
        assert_eq!(r.rules.len(), 2);
    }

    #[test]
    fn values_and_field_names_are_case_insensitive_like_consul() {
        let r = ok("key \"a\" { Policy = \"WRITE\" }\nACL = \"Read\"\n");
        assert_eq!(r.rules[0].policy, Access::Write);
        assert_eq!(r.acl, Some(Access::Read));
    }

    #[test]
    fn enterprise_only_parts_are_ignored_as_consul_ce_does() {
        let r = ok(r#"
namespace "team" {
  key_prefix "" { policy = "write" }
}
partition_prefix "" { mesh = "write" }
key "a" {
  policy = "write"
  sentinel {
    code = "main = rule { true }"
    enforcementlevel = "soft-mandatory"
  }
}
"#);
        assert_eq!(r.rules, vec![rule(Kind::Key, false, "a", Access::Write)]);
    }

    #[test]
    fn bad_dispositions_name_the_type_as_consul_does() {
        for (text, prefix) in [
            ("acl = \"list\"", "Invalid acl policy"),
            ("agent \"foo\" { policy = \"nope\" }", "Invalid agent policy"),
            ("agent_prefix \"foo\" { policy = \"nope\" }", "Invalid agent_prefix policy"),
            ("key \"foo\" { policy = \"nope\" }", "Invalid key policy"),
            ("key_prefix \"foo\" { policy = \"nope\" }", "Invalid key_prefix policy"),
            ("node \"foo\" { policy = \"nope\" }", "Invalid node policy"),
            ("node_prefix \"foo\" { policy = \"nope\" }", "Invalid node_prefix policy"),
            ("service \"foo\" { policy = \"nope\" }", "Invalid service policy"),
            ("service_prefix \"foo\" { policy = \"nope\" }", "Invalid service_prefix policy"),
            ("session \"foo\" { policy = \"nope\" }", "Invalid session policy"),
            ("session_prefix \"foo\" { policy = \"nope\" }", "Invalid session_prefix policy"),
            ("event \"foo\" { policy = \"nope\" }", "Invalid event policy"),
            ("event_prefix \"foo\" { policy = \"nope\" }", "Invalid event_prefix policy"),
            ("query \"foo\" { policy = \"nope\" }", "Invalid query policy"),
            ("query_prefix \"foo\" { policy = \"nope\" }", "Invalid query_prefix policy"),
            ("keyring = \"nope\"", "Invalid keyring policy"),
            ("operator = \"nope\"", "Invalid operator policy"),
            ("mesh = \"nope\"", "Invalid mesh policy"),
            ("peering = \"nope\"", "Invalid peering policy"),
            (
                "service \"foo\" { policy = \"write\" intentions = \"foo\" }",
                "Invalid service intentions policy",
            ),
            (
                "service_prefix \"\" {\n policy = \"write\"\n intentions = \"list\"\n}",
                "Invalid service_prefix intentions policy",
            ),
        ] {
            let e = err(text).to_string();
            assert!(e.starts_with(prefix), "{text}\n=> {e}");
            assert!(e.ends_with("(line 1)") || text.contains('\n'), "{text}\n=> {e}");
            // And the JSON spelling of the same thing.
            let json = hcl_to_json(text);
            let e = err(&json).to_string();
            assert!(e.starts_with(prefix), "{json}\n=> {e}");
        }
    }

    /// Re-spells a one-rule HCL test text as JSON through our HCL reader.
    fn hcl_to_json(text: &str) -> String {
        hcl::parse(text).unwrap().value.to_string()
    }

    #[test]
    fn list_is_only_for_keys() {
        assert_eq!(ok("key_prefix \"\" { policy = \"list\" }").rules[0].policy, Access::List);
        assert_eq!(ok("key \"a\" { policy = \"list\" }").rules[0].policy, Access::List);
        for word in ["agent", "event", "node", "query", "service", "session", "service_prefix"] {
            let e = err(&format!("{word} \"x\" {{\n  policy = \"list\"\n}}"));
            assert_eq!(e.line(), Some(2), "{e}");
            assert!(e.to_string().contains("only valid in key and key_prefix rules"), "{e}");
        }
        for word in ["acl", "keyring", "operator", "mesh", "peering"] {
            assert!(err(&format!("{word} = \"list\""))
                .to_string()
                .starts_with(&format!("Invalid {word} policy")));
        }
    }

    #[test]
    fn errors_carry_the_line_and_the_reason() {
        let e = err("key_prefix \"\" {\n  policy = \"read\"\n}\n\nkey \"a\" {\n  policy = \"wirte\"\n}\n");
        assert_eq!(e.line(), Some(6), "{e}");
        assert_eq!(
            e.to_string(),
            "Invalid key policy: \"wirte\" for \"a\" is not one of \"read\", \"write\", \"list\" or \"deny\" (line 6)"
        );

        let e =
            err("node_prefix \"\" {\n  policy = \"read\"\n}\nservce \"web\" {\n  policy = \"write\"\n}\n");
        assert_eq!(e.line(), Some(4), "{e}");
        assert!(
            e.to_string().starts_with("Failed to parse ACL rules: unknown rule type \"servce\" (line 4)"),
            "{e}"
        );

        let e = err("service \"web\" {\n  intentions = \"read\"\n}\n");
        assert_eq!(e.to_string(), "Invalid service policy: no policy given for \"web\" (line 1)");

        let e = err("service \"web\" {\n  policy = \"\"\n}\n");
        assert_eq!(e.to_string(), "Invalid service policy: no policy given for \"web\" (line 2)");

        let e = err("key \"a\" {\n  policy = \"read\"\n  polcy = \"write\"\n}\n");
        assert_eq!(
            e.to_string(),
            "Invalid key policy: unknown field \"polcy\" in the rule for \"a\" (line 3)"
        );

        let e = err("key \"a\" {\n  policy = \"read\"\n  intentions = \"write\"\n}\n");
        assert!(e.to_string().contains("only valid in service"), "{e}");
        assert_eq!(e.line(), Some(3));

        let e = err("key \"a\" {\n  policy = 1\n}\n");
        assert!(e.to_string().contains("must be one of") && e.line() == Some(2), "{e}");

        let e = err("node = \"read\"\n");
        assert!(e.to_string().starts_with("Invalid node policy: expected a block"), "{e}");

        let e = err("node \"a\" = \"read\"\n");
        assert!(e.to_string().starts_with("Failed to parse ACL rules:") && e.line() == Some(1), "{e}");

        // Syntax errors, HCL and JSON.
        let e = err("key \"a\" {\n  policy = \"read\"\n\n");
        assert!(e.to_string().starts_with("Failed to parse ACL rules:") && e.line().is_some(), "{e}");
        let e = err("acl = \"read\"\nacl = \"write\"\n");
        assert!(e.to_string().starts_with("Failed to parse ACL rules:") && e.line() == Some(2), "{e}");
        let e = err("{\n  \"key\": {\"a\": {\"policy\": \"read\"}},\n  \"node\": \n}");
        assert_eq!(e.line(), Some(4), "{e}");
        assert!(!e.to_string().contains("column"), "{e}");
        let e = err("[1, 2]");
        assert!(e.to_string().starts_with("Failed to parse ACL rules:"), "{e}");
    }

    #[test]
    fn oversized_text_is_refused_before_parsing() {
        let big = "key \"a\" { policy = \"read\" }\n".repeat(MAX_RULES_BYTES / 20);
        assert!(big.len() > MAX_RULES_BYTES);
        let e = err(&big);
        assert!(matches!(e, RuleError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("more than the 524288 allowed"), "{e}");
        // Just under the bound is fine.
        let fits = "key \"a\" { policy = \"read\" }\n".repeat(MAX_RULES_BYTES / 40);
        assert!(parse(&fits).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "{",
            "}",
            "\"",
            "key",
            "key \"a\"",
            "key \"a\" {",
            "key \"a\" { policy }",
            "key = [1]",
            "key = [[]]",
            "key = { a = 1 }",
            "key = { a = [1] }",
            "key = { a = [] }",
            "acl = [\"read\"]",
            "acl = {}",
            "{\"acl\": null}",
            "{\"key\": null}",
            "{\"key\": {\"a\": null}}",
            "{\"key\": {\"a\": {\"policy\": null}}}",
            "\u{0}",
            "key \"\u{0}\" { policy = \"read\" }",
            "key \"a\" \"b\" { policy = \"read\" }",
        ] {
            let _ = parse(text);
        }
    }
}
