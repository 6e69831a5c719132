//! Consul's pretty output for tokens, policies, roles and templated
//! policies, and its `-format=json` (Go's `MarshalIndent` with four spaces).
//! Every block ends with a newline; the caller prints it with one more, as
//! Consul's UI does.

use super::model::{
    Link, NodeIdentity, Policy, PolicyListEntry, Role, ServiceIdentity, TemplatedPolicy,
    TemplatedPolicyResponse, Token, TokenExpanded, TokenListEntry,
};
use base64::Engine;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// `-format`: Consul's two output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pretty,
    Json,
}

impl Format {
    /// Consul's `Unknown format: x` for anything else.
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "pretty" => Ok(Format::Pretty),
            "json" => Ok(Format::Json),
            other => Err(format!("Unknown format: {other}")),
        }
    }
}

/// Go's `json.MarshalIndent(v, "", "    ")`.
pub fn json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    match value.serialize(&mut ser) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => format!("Failed to marshal: {e}"),
    }
}

/// An RFC 3339 time as Go's `time.Time.String()` prints it after the API
/// client parsed it: `2018-10-22 15:33:39.01789 +0000 UTC` (trailing zeros
/// of the fraction dropped). Anything unparsable is printed as it came.
pub fn go_time(rfc3339: &str) -> String {
    let Some((date, rest)) = rfc3339.split_once('T') else { return rfc3339.to_string() };
    let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => return rfc3339.to_string(),
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, frac.trim_end_matches('0')),
        None => (clock, ""),
    };
    let frac = if frac.is_empty() { String::new() } else { format!(".{frac}") };
    let zone = match zone {
        "Z" | "z" | "+00:00" | "-00:00" => "+0000 UTC".to_string(),
        offset => {
            let compact = offset.replace(':', "");
            format!("{compact} {compact}")
        }
    };
    format!("{date} {hms}{frac} {zone}")
}

/// A base64 hash as Go's `%x` prints the bytes.
pub fn hex_hash(b64: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn links(out: &mut String, title: &str, indent: &str, items: &[Link]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}{title}:");
    for l in items {
        let _ = writeln!(out, "{indent}   {} - {}", l.id, l.name);
    }
}

fn service_identity_line(s: &ServiceIdentity) -> String {
    if s.datacenters.is_empty() {
        format!("{} (Datacenters: all)", s.service_name)
    } else {
        format!("{} (Datacenters: {})", s.service_name, s.datacenters.join(", "))
    }
}

fn node_identity_line(n: &NodeIdentity) -> String {
    format!("{} (Datacenter: {})", n.node_name, n.datacenter)
}

fn identities(
    out: &mut String,
    indent: &str,
    services: &[ServiceIdentity],
    nodes: &[NodeIdentity],
    templated: &[TemplatedPolicy],
) {
    if !services.is_empty() {
        let _ = writeln!(out, "{indent}Service Identities:");
        for s in services {
            let _ = writeln!(out, "{indent}   {}", service_identity_line(s));
        }
    }
    if !nodes.is_empty() {
        let _ = writeln!(out, "{indent}Node Identities:");
        for n in nodes {
            let _ = writeln!(out, "{indent}   {}", node_identity_line(n));
        }
    }
    if !templated.is_empty() {
        let _ = writeln!(out, "{indent}Templated Policies:");
        for t in templated {
            let _ = writeln!(out, "{indent}   {}", t.template_name);
            if let Some(name) = t.var_name() {
                let _ = writeln!(out, "{indent}      Name: {name}");
            }
            if t.datacenters.is_empty() {
                let _ = writeln!(out, "{indent}      Datacenters: all");
            } else {
                let _ = writeln!(out, "{indent}      Datacenters: {}", t.datacenters.join(", "));
            }
        }
    }
}

/// The header lines a token and a token list entry share.
struct TokenHead<'a> {
    accessor_id: &'a str,
    secret_id: &'a str,
    partition: &'a str,
    namespace: &'a str,
    description: &'a str,
    local: bool,
    auth_method: &'a str,
    auth_method_namespace: &'a str,
    create_time: &'a str,
    expiration_time: Option<&'a str>,
}

fn token_head(out: &mut String, h: &TokenHead<'_>) {
    let _ = writeln!(out, "AccessorID:       {}", h.accessor_id);
    let _ = writeln!(out, "SecretID:         {}", h.secret_id);
    if !h.partition.is_empty() {
        let _ = writeln!(out, "Partition:        {}", h.partition);
    }
    if !h.namespace.is_empty() {
        let _ = writeln!(out, "Namespace:        {}", h.namespace);
    }
    let _ = writeln!(out, "Description:      {}", h.description);
    let _ = writeln!(out, "Local:            {}", h.local);
    if !h.auth_method.is_empty() {
        let _ = writeln!(out, "Auth Method:      {} (Namespace: {})", h.auth_method, h.auth_method_namespace);
    }
    let _ = writeln!(out, "Create Time:      {}", go_time(h.create_time));
    if let Some(exp) = h.expiration_time.filter(|e| !e.is_empty() && !e.starts_with("0001-01-01")) {
        let _ = writeln!(out, "Expiration Time:  {}", go_time(exp));
    }
}

fn meta(out: &mut String, indent: &str, width: usize, hash: &str, create: u64, modify: u64) {
    let pad = |label: &str| format!("{label:<width$}");
    let _ = writeln!(out, "{indent}{}{}", pad("Hash:"), hex_hash(hash));
    let _ = writeln!(out, "{indent}{}{create}", pad("Create Index:"));
    let _ = writeln!(out, "{indent}{}{modify}", pad("Modify Index:"));
}

impl<'a> TokenHead<'a> {
    fn of_token(t: &'a Token) -> TokenHead<'a> {
        TokenHead {
            accessor_id: &t.accessor_id,
            secret_id: &t.secret_id,
            partition: &t.partition,
            namespace: &t.namespace,
            description: &t.description,
            local: t.local,
            auth_method: &t.auth_method,
            auth_method_namespace: &t.auth_method_namespace,
            create_time: &t.create_time,
            expiration_time: t.expiration_time.as_deref(),
        }
    }
}

pub fn token(t: &Token, show_meta: bool) -> String {
    let mut out = String::new();
    token_head(&mut out, &TokenHead::of_token(t));
    if show_meta {
        meta(&mut out, "", 18, &t.hash, t.create_index, t.modify_index);
    }
    links(&mut out, "Policies", "", &t.policies);
    links(&mut out, "Roles", "", &t.roles);
    identities(&mut out, "", &t.service_identities, &t.node_identities, &t.templated_policies);
    if !t.rules.is_empty() {
        let _ = writeln!(out, "Rules:\n{}", t.rules);
    }
    out
}

pub fn token_list(entries: &[TokenListEntry], show_meta: bool) -> String {
    let mut out = String::new();
    for (i, t) in entries.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        token_head(
            &mut out,
            &TokenHead {
                accessor_id: &t.accessor_id,
                secret_id: &t.secret_id,
                partition: &t.partition,
                namespace: &t.namespace,
                description: &t.description,
                local: t.local,
                auth_method: &t.auth_method,
                auth_method_namespace: &t.auth_method_namespace,
                create_time: &t.create_time,
                expiration_time: t.expiration_time.as_deref(),
            },
        );
        let _ = writeln!(out, "Legacy:           {}", t.legacy);
        if show_meta {
            meta(&mut out, "", 18, &t.hash, t.create_index, t.modify_index);
        }
        links(&mut out, "Policies", "", &t.policies);
        links(&mut out, "Roles", "", &t.roles);
        identities(&mut out, "", &t.service_identities, &t.node_identities, &t.templated_policies);
    }
    out
}

/// Synthetic policies of identities and templates, keyed by template name
/// and `name` variable; `token read -expanded` fetches them from the
/// agent's preview endpoint so the rules are the server's own.
pub type Synthetic = BTreeMap<(String, String), Policy>;

const TAB: &str = "\t";
const TAB2: &str = "\t\t";

fn expanded_policy(out: &mut String, p: &Policy, indent: &str) {
    let _ = writeln!(out, "{indent}Policy Name: {}", p.name);
    let _ = writeln!(out, "{indent}{TAB}ID: {}", p.id);
    let _ = writeln!(out, "{indent}{TAB}Description: {}", p.description);
    let _ = writeln!(out, "{indent}{TAB}Rules:");
    let _ = write!(out, "{indent}{TAB2}{}", p.rules.replace('\n', &format!("\n{indent}{TAB2}")));
    out.push_str("\n\n");
}

fn synthetic_policy(out: &mut String, p: Option<&Policy>, indent: &str) {
    let (desc, rules) = p.map(|p| (p.description.as_str(), p.rules.as_str())).unwrap_or(("", ""));
    let _ = writeln!(out, "{indent}{TAB}Description: {desc}");
    let _ = write!(out, "{indent}{TAB}Rules:{}", rules.replace('\n', &format!("\n{indent}{TAB2}")));
    out.push_str("\n\n");
}

pub const SERVICE_TEMPLATE: &str = "builtin/service";
pub const NODE_TEMPLATE: &str = "builtin/node";

struct Expansion<'a> {
    policies: BTreeMap<&'a str, &'a Policy>,
    synthetic: &'a Synthetic,
}

impl Expansion<'_> {
    fn policy(&self, out: &mut String, link: &Link, indent: &str) {
        let fallback = Policy { id: link.id.clone(), name: link.name.clone(), ..Policy::default() };
        let p = self.policies.get(link.id.as_str()).copied().unwrap_or(&fallback);
        expanded_policy(out, p, indent);
    }

    fn service_identity(&self, out: &mut String, s: &ServiceIdentity, indent: &str) {
        let _ = writeln!(out, "{indent}Name: {}", service_identity_line(s));
        let key = (SERVICE_TEMPLATE.to_string(), s.service_name.clone());
        synthetic_policy(out, self.synthetic.get(&key), indent);
    }

    fn node_identity(&self, out: &mut String, n: &NodeIdentity, indent: &str) {
        let _ = writeln!(out, "{indent}Name: {}", node_identity_line(n));
        let key = (NODE_TEMPLATE.to_string(), n.node_name.clone());
        synthetic_policy(out, self.synthetic.get(&key), indent);
    }

    fn templated(&self, out: &mut String, t: &TemplatedPolicy, indent: &str) {
        let _ = writeln!(out, "{indent}{}", t.template_name);
        if let Some(name) = t.var_name() {
            let _ = writeln!(out, "{indent}{TAB}Name: {name}");
        }
        if t.datacenters.is_empty() {
            let _ = writeln!(out, "{indent}{TAB}Datacenters: all");
        } else {
            let _ = writeln!(out, "{indent}{TAB}Datacenters: {}", t.datacenters.join(", "));
        }
        let key = (t.template_name.clone(), t.var_name().unwrap_or("").to_string());
        synthetic_policy(out, self.synthetic.get(&key), indent);
    }

    fn role(&self, out: &mut String, r: &Role, indent: &str) {
        let _ = writeln!(out, "{indent}Role Name: {}", r.name);
        let _ = writeln!(out, "{indent}{TAB}ID: {}", r.id);
        let _ = writeln!(out, "{indent}{TAB}Description: {}", r.description);
        let inner = format!("{indent}{TAB2}");
        if !r.policies.is_empty() {
            let _ = writeln!(out, "{indent}{TAB}Policies:");
            for l in &r.policies {
                self.policy(out, l, &inner);
            }
        }
        if !r.service_identities.is_empty() {
            let _ = writeln!(out, "{indent}{TAB}Service Identities:");
            for s in &r.service_identities {
                self.service_identity(out, s, &inner);
            }
        }
        if !r.node_identities.is_empty() {
            let _ = writeln!(out, "{indent}{TAB}Node Identities:");
            for n in &r.node_identities {
                self.node_identity(out, n, &inner);
            }
        }
    }
}

/// `token read -expanded`: every policy, identity and role the token
/// carries, with their rules, then the agent's defaults that apply after
/// them.
pub fn token_expanded(e: &TokenExpanded, show_meta: bool, synthetic: &Synthetic) -> String {
    let t = &e.token;
    let mut out = String::new();
    token_head(&mut out, &TokenHead::of_token(t));
    if show_meta {
        meta(&mut out, "", 18, &t.hash, t.create_index, t.modify_index);
    }
    let all_policies = e.expanded_policies.as_deref().unwrap_or_default();
    let all_roles = e.expanded_roles.as_deref().unwrap_or_default();
    let x = Expansion { policies: all_policies.iter().map(|p| (p.id.as_str(), p)).collect(), synthetic };
    if !t.policies.is_empty() {
        out.push_str("Policies:\n");
        for l in &t.policies {
            x.policy(&mut out, l, TAB);
        }
    }
    if !t.service_identities.is_empty() {
        out.push_str("Service Identities:\n");
        for s in &t.service_identities {
            x.service_identity(&mut out, s, TAB);
        }
    }
    if !t.node_identities.is_empty() {
        out.push_str("Node Identities:\n");
        for n in &t.node_identities {
            x.node_identity(&mut out, n, TAB);
        }
    }
    if !t.templated_policies.is_empty() {
        out.push_str("Templated Policies:\n");
        for tp in &t.templated_policies {
            x.templated(&mut out, tp, TAB);
        }
    }
    if !t.roles.is_empty() {
        out.push_str("Roles:\n");
        for l in &t.roles {
            let fallback = Role { id: l.id.clone(), name: l.name.clone(), ..Role::default() };
            let role = all_roles.iter().find(|r| r.id == l.id).unwrap_or(&fallback);
            x.role(&mut out, role, TAB);
        }
    }
    out.push_str("=== End of Authorizer Layer 0: Token ===\n");
    out.push_str("=== Start of Authorizer Layer 2: Agent Configuration Defaults (Inherited) ===\n");
    out.push_str(
        "Description: Defined at request-time by the agent that resolves the ACL token; other agents may have different configuration defaults\n",
    );
    let _ = writeln!(out, "Resolved By Agent: {:?}\n", e.resolved_by_agent);
    let _ = writeln!(out, "Default Policy: {}", e.agent_acl_default_policy);
    out.push_str("\tDescription: Backstop rule used if no preceding layer has a matching rule (refer to default_policy option in agent configuration)\n\n");
    let _ = writeln!(out, "Down Policy: {}", e.agent_acl_down_policy);
    out.push_str("\tDescription: Defines what to do if this Token's information cannot be read from the primary_datacenter (refer to down_policy option in agent configuration)\n\n");
    out
}

fn datacenters(d: &Option<Vec<String>>) -> String {
    d.as_deref().unwrap_or_default().join(", ")
}

pub fn policy(p: &Policy, show_meta: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "ID:           {}", p.id);
    let _ = writeln!(out, "Name:         {}", p.name);
    if !p.partition.is_empty() {
        let _ = writeln!(out, "Partition:    {}", p.partition);
    }
    if !p.namespace.is_empty() {
        let _ = writeln!(out, "Namespace:    {}", p.namespace);
    }
    let _ = writeln!(out, "Description:  {}", p.description);
    let _ = writeln!(out, "Datacenters:  {}", datacenters(&p.datacenters));
    if show_meta {
        meta(&mut out, "", 14, &p.hash, p.create_index, p.modify_index);
    }
    let _ = writeln!(out, "Rules:\n{}", p.rules);
    out
}

pub fn policy_list(entries: &[PolicyListEntry], show_meta: bool) -> String {
    let mut out = String::new();
    for p in entries {
        let _ = writeln!(out, "{}:", p.name);
        let _ = writeln!(out, "   ID:           {}", p.id);
        if !p.partition.is_empty() {
            let _ = writeln!(out, "   Partition:    {}", p.partition);
        }
        if !p.namespace.is_empty() {
            let _ = writeln!(out, "   Namespace:    {}", p.namespace);
        }
        let _ = writeln!(out, "   Description:  {}", p.description);
        let _ = writeln!(out, "   Datacenters:  {}", datacenters(&p.datacenters));
        if show_meta {
            meta(&mut out, "   ", 14, &p.hash, p.create_index, p.modify_index);
        }
    }
    out
}

pub fn role(r: &Role, show_meta: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "ID:           {}", r.id);
    let _ = writeln!(out, "Name:         {}", r.name);
    if !r.partition.is_empty() {
        let _ = writeln!(out, "Partition:    {}", r.partition);
    }
    if !r.namespace.is_empty() {
        let _ = writeln!(out, "Namespace:    {}", r.namespace);
    }
    let _ = writeln!(out, "Description:  {}", r.description);
    if show_meta {
        meta(&mut out, "", 14, &r.hash, r.create_index, r.modify_index);
    }
    links(&mut out, "Policies", "", &r.policies);
    identities(&mut out, "", &r.service_identities, &r.node_identities, &r.templated_policies);
    out
}

pub fn role_list(roles: &[Role], show_meta: bool) -> String {
    let mut out = String::new();
    for r in roles {
        let _ = writeln!(out, "{}:", r.name);
        let _ = writeln!(out, "   ID:           {}", r.id);
        if !r.partition.is_empty() {
            let _ = writeln!(out, "   Partition:    {}", r.partition);
        }
        if !r.namespace.is_empty() {
            let _ = writeln!(out, "   Namespace:    {}", r.namespace);
        }
        let _ = writeln!(out, "   Description:  {}", r.description);
        if show_meta {
            meta(&mut out, "   ", 14, &r.hash, r.create_index, r.modify_index);
        }
        links(&mut out, "Policies", "   ", &r.policies);
        identities(&mut out, "   ", &r.service_identities, &r.node_identities, &r.templated_policies);
    }
    out
}

/// What each built-in template asks for, for `templated-policy read`.
fn template_inputs(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "builtin/service" => Some(("The name of the service", "api")),
        "builtin/node" => Some(("The node name", "node-1")),
        "builtin/api-gateway" => Some(("The api gateway service name", "api-gateway")),
        _ => None,
    }
}

pub fn templated_policy(t: &TemplatedPolicyResponse, show_meta: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Name:            {}", t.template_name);
    let _ = writeln!(out, "Description:     {}", t.description);
    out.push_str("Input variables:");
    match (template_inputs(&t.template_name), t.template_name.as_str()) {
        (Some((what, example)), _) => {
            let _ = writeln!(out, "\n{TAB}Name: String - Required - {what}.");
            out.push_str("Example usage:\n");
            let _ = writeln!(
                out,
                "{TAB}consul acl token create -templated-policy {} -var name:{example}",
                t.template_name
            );
        }
        (None, "builtin/dns" | "builtin/nomad-server" | "builtin/nomad-client") => {
            out.push_str(" None\n");
            out.push_str("Example usage:\n");
            let _ = writeln!(out, "{TAB}consul acl token create -templated-policy {}", t.template_name);
        }
        (None, _) => out.push_str("   None\n"),
    }
    if show_meta {
        if !t.schema.is_empty() {
            let _ = write!(out, "Schema:\n{}\n\n", t.schema);
        }
        let _ = writeln!(out, "Raw Template:\n{}", t.template);
    }
    out
}

/// The names, sorted.
pub fn templated_policy_list(all: &BTreeMap<String, TemplatedPolicyResponse>) -> String {
    let mut names: Vec<&str> = all.values().map(|t| t.template_name.as_str()).collect();
    names.sort_unstable();
    names.iter().map(|n| format!("{n}\n")).collect()
}

#[cfg(test)]
mod tests;
