//! Turning catalog data into DNS records: the per-service answer set and the
//! small record helpers every answer uses.
//!
//! Owns: health and tag filtering, de-duplication, SRV targets (`.node.` /
//! `.addr.` / hostname), Additional-section glue, node-meta TXT (RFC 1464),
//! and each record's uncompressed wire size. Must not shuffle, truncate or
//! talk to the backend: the answer set is built once per catalog index and
//! shared read-only by every query.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::backend::{Health, ServiceInstance};
use super::name::hex_ip;

/// One selectable piece of an answer: the record for the Answer section and
/// the records that must travel with it in the Additional section.
#[derive(Clone, Debug)]
pub struct Unit {
    /// Owner name is a placeholder (root); the query name is set per query.
    pub answer: Record,
    pub extras: Vec<Record>,
    /// Additional records that are dropped first when space is short
    /// (node-meta TXT).
    pub optional: Vec<Record>,
    /// Relative weight for ordering (instances with equal addresses add up).
    pub weight: u32,
    /// Uncompressed wire bytes of `answer` without its owner, plus `extras`.
    pub size: usize,
    /// Uncompressed wire bytes of `optional`.
    pub optional_size: usize,
}

/// Every record a service lookup can return, built once per catalog index.
#[derive(Clone, Debug, Default)]
pub struct AnswerSet {
    /// Instances left after health and tag filtering (before de-duplication).
    pub healthy: usize,
    pub v4: Vec<Unit>,
    pub v6: Vec<Unit>,
    /// Hostname service addresses, answered as CNAME.
    pub hosts: Vec<Unit>,
    pub srv: Vec<Unit>,
    /// Some SRVs share a target (same node, other port), so their glue
    /// must be de-duplicated per reply.
    pub shared_targets: bool,
}

/// What a service answer set is built from.
pub struct SetInput<'a> {
    pub instances: &'a [ServiceInstance],
    pub tag: Option<&'a str>,
    pub only_passing: bool,
    pub node_meta_txt: bool,
    /// The domain SRV targets are placed under (the one the client asked).
    pub domain: &'a Name,
    /// Datacenter used in SRV targets when an instance carries none.
    pub dc: &'a str,
    pub ttl: u32,
}

/// Filters, de-duplicates and renders the instances of one service.
pub fn build_answer_set(input: &SetInput<'_>) -> AnswerSet {
    let mut set = AnswerSet::default();
    let mut addr_seen: HashMap<String, (usize, usize)> = HashMap::new(); // key → (list, index)
    let mut srv_seen: HashMap<(Name, u16), usize> = HashMap::new();
    let mut targets: std::collections::HashSet<Name> = std::collections::HashSet::new();
    for inst in input.instances {
        let weight = match inst.health {
            Health::Critical => continue,
            Health::Warning if input.only_passing => continue,
            Health::Warning => inst.weight_warning,
            Health::Passing => inst.weight_passing,
        };
        if let Some(tag) = input.tag {
            if !inst.service_tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
                continue;
            }
        }
        set.healthy += 1;
        let dc = if inst.datacenter.is_empty() { input.dc } else { inst.datacenter.as_str() };
        let address =
            if inst.service_address.is_empty() { &inst.node_address } else { &inst.service_address };

        // A / AAAA / CNAME, de-duplicated by address.
        let key = address.to_ascii_lowercase();
        if let Some(&(list, i)) = addr_seen.get(&key) {
            if let Some(u) = list_mut(&mut set, list).get_mut(i) {
                u.weight = u.weight.saturating_add(weight);
            }
        } else if let Some(rdata) = address_rdata(address) {
            let list = match rdata {
                RData::A(_) => 0,
                RData::AAAA(_) => 1,
                _ => 2,
            };
            let answer = Record::from_rdata(Name::root(), input.ttl, rdata);
            let size = wire_len(&answer).saturating_sub(1);
            let units = list_mut(&mut set, list);
            units.push(Unit {
                answer,
                extras: Vec::new(),
                optional: Vec::new(),
                weight,
                size,
                optional_size: 0,
            });
            addr_seen.insert(key, (list, units.len() - 1));
        }

        // SRV, de-duplicated by (target, port).
        let Some((target, extras, optional)) = srv_target(inst, dc, input) else { continue };
        let skey = (target.to_lowercase(), inst.service_port);
        if let Some(&i) = srv_seen.get(&skey) {
            if let Some(u) = set.srv.get_mut(i) {
                u.weight = u.weight.saturating_add(weight);
            }
            continue;
        }
        if !targets.insert(skey.0.clone()) {
            set.shared_targets = true;
        }
        let srv = SRV::new(1, clamp_weight(weight), inst.service_port, target);
        let answer = Record::from_rdata(Name::root(), input.ttl, RData::SRV(srv));
        let size = wire_len(&answer).saturating_sub(1) + extras.iter().map(wire_len).sum::<usize>();
        let optional_size = optional.iter().map(wire_len).sum();
        set.srv.push(Unit { answer, extras, optional, weight, size, optional_size });
        srv_seen.insert(skey, set.srv.len() - 1);
    }
    // The SRV weight field carries the summed weight of merged duplicates.
    for u in &mut set.srv {
        if let RData::SRV(srv) = &mut u.answer.data {
            srv.weight = clamp_weight(u.weight);
        }
    }
    set
}

fn list_mut(set: &mut AnswerSet, list: usize) -> &mut Vec<Unit> {
    match list {
        0 => &mut set.v4,
        1 => &mut set.v6,
        _ => &mut set.hosts,
    }
}

fn clamp_weight(w: u32) -> u16 {
    u16::try_from(w).unwrap_or(u16::MAX)
}

/// The SRV target of an instance and the glue for it:
/// own IP → `<hex>.addr.<dc>.<domain>` + A/AAAA; own hostname → the hostname;
/// none → `<node>.node.<dc>.<domain>` + the node's address (+ meta TXT,
/// returned separately as optional).
fn srv_target(
    inst: &ServiceInstance,
    dc: &str,
    input: &SetInput<'_>,
) -> Option<(Name, Vec<Record>, Vec<Record>)> {
    if !inst.service_address.is_empty() {
        return match inst.service_address.parse::<IpAddr>() {
            Ok(ip) => {
                let target = under_domain(&format!("{}.addr.{dc}", hex_ip(ip)), input.domain)?;
                let glue = Record::from_rdata(target.clone(), input.ttl, ip_rdata(ip));
                Some((target, vec![glue], Vec::new()))
            }
            Err(_) => Some((host_name(&inst.service_address)?, Vec::new(), Vec::new())),
        };
    }
    let target = under_domain(&format!("{}.node.{dc}", inst.node), input.domain)?;
    let mut extras = Vec::new();
    if let Some(rdata) = address_rdata(&inst.node_address) {
        extras.push(Record::from_rdata(target.clone(), input.ttl, rdata));
    }
    let optional =
        if input.node_meta_txt { meta_txt(&target, &inst.node_meta, input.ttl) } else { Vec::new() };
    Some((target, extras, optional))
}

/// `<relative>.<domain>` as a DNS name, or None when it is not a valid name.
pub fn under_domain(relative: &str, domain: &Name) -> Option<Name> {
    Name::from_ascii(relative).ok()?.append_domain(domain).ok()
}

/// A hostname as a fully qualified name, or None when it is not valid.
pub fn host_name(host: &str) -> Option<Name> {
    if host.is_empty() {
        return None;
    }
    let mut name = Name::from_ascii(host).ok()?;
    name.set_fqdn(true);
    Some(name)
}

pub fn ip_rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// An address as record data: IP → A/AAAA, hostname → CNAME.
pub fn address_rdata(address: &str) -> Option<RData> {
    match address.parse::<IpAddr>() {
        Ok(ip) => Some(ip_rdata(ip)),
        Err(_) => host_name(address).map(|n| RData::CNAME(CNAME(n))),
    }
}

/// Node metadata as TXT records, one per key, RFC 1464 `key=value`; keys
/// starting `rfc1035-` carry the raw value.
pub fn meta_txt(owner: &Name, meta: &BTreeMap<String, String>, ttl: u32) -> Vec<Record> {
    meta.iter()
        .map(|(k, v)| {
            let text = if k.starts_with("rfc1035-") { v.clone() } else { rfc1464(k, v) };
            Record::from_rdata(owner.clone(), ttl, RData::TXT(TXT::new(split_character_strings(&text))))
        })
        .collect()
}

/// RFC 1464 encoding: backquote-escape backquotes and `=` in the key, and
/// its leading/trailing spaces; backquotes in the value.
fn rfc1464(key: &str, value: &str) -> String {
    let escaped = key.replace('`', "``").replace('=', "`=");
    let lead = escaped.len() - escaped.trim_start_matches(' ').len();
    let core = escaped.trim_start_matches(' ');
    let trail = core.len() - core.trim_end_matches(' ').len();
    let core = core.trim_end_matches(' ');
    format!("{}{core}{}={}", "` ".repeat(lead), "` ".repeat(trail), value.replace('`', "``"))
}

/// TXT character-strings are at most 255 bytes: split on char boundaries.
fn split_character_strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if cur.len() + c.len_utf8() > 255 {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() || out.is_empty() {
        out.push(cur);
    }
    out
}

/// Uncompressed wire size of a record (an upper bound of its compressed size).
pub fn wire_len(record: &Record) -> usize {
    let mut buf = Vec::with_capacity(64);
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    match record.emit(&mut enc) {
        Ok(()) => buf.len(),
        // Unencodable records are never kept: make them "too big".
        Err(_) => usize::MAX / 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(node: &str, addr: &str, svc_addr: &str, port: u16, health: Health) -> ServiceInstance {
        ServiceInstance {
            node: node.into(),
            node_address: addr.into(),
            datacenter: "dc1".into(),
            node_meta: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
            node_tagged_addresses: BTreeMap::new(),
            service_id: format!("web-{node}-{port}"),
            service_name: "web".into(),
            service_address: svc_addr.into(),
            service_port: port,
            service_tags: vec!["Primary".into()],
            weight_passing: 3,
            weight_warning: 1,
            health,
        }
    }

    fn build(instances: &[ServiceInstance], tag: Option<&str>, only_passing: bool) -> AnswerSet {
        let domain = Name::from_ascii("consul.").unwrap();
        build_answer_set(&SetInput {
            instances,
            tag,
            only_passing,
            node_meta_txt: true,
            domain: &domain,
            dc: "dc1",
            ttl: 7,
        })
    }

    #[test]
    fn health_filter_and_weights() {
        let list = [
            inst("a", "10.0.0.1", "", 80, Health::Passing),
            inst("b", "10.0.0.2", "", 80, Health::Warning),
            inst("c", "10.0.0.3", "", 80, Health::Critical),
        ];
        let set = build(&list, None, false);
        assert_eq!(set.healthy, 2);
        assert_eq!(set.v4.len(), 2);
        let weights: Vec<u16> = set
            .srv
            .iter()
            .map(|u| match &u.answer.data {
                RData::SRV(s) => s.weight,
                _ => 0,
            })
            .collect();
        assert_eq!(weights, vec![3, 1]);
        assert_eq!(build(&list, None, true).healthy, 1);
    }

    #[test]
    fn srv_targets_follow_the_address_kind() {
        let list = [
            inst("a", "10.0.0.1", "", 80, Health::Passing),
            inst("b", "10.0.0.2", "192.168.1.5", 81, Health::Passing),
            inst("c", "10.0.0.3", "db.example.com", 82, Health::Passing),
            inst("d", "10.0.0.4", "2001:db8::5", 83, Health::Passing),
        ];
        let set = build(&list, None, false);
        let targets: Vec<String> = set
            .srv
            .iter()
            .map(|u| match &u.answer.data {
                RData::SRV(s) => s.target.to_ascii(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(
            targets,
            vec![
                "a.node.dc1.consul.",
                "c0a80105.addr.dc1.consul.",
                "db.example.com.",
                "20010db8000000000000000000000005.addr.dc1.consul."
            ]
        );
        // node target: A glue + meta TXT; addr target: A/AAAA glue; hostname: none.
        assert_eq!((set.srv[0].extras.len(), set.srv[0].optional.len()), (1, 1));
        assert_eq!(set.srv[1].extras.len(), 1);
        assert!(set.srv[2].extras.is_empty());
        assert_eq!(set.v4.len(), 2);
        assert_eq!(set.v6.len(), 1);
        assert_eq!(set.hosts.len(), 1);
    }

    #[test]
    fn duplicates_merge_and_tags_match_case_insensitively() {
        let list = [
            inst("a", "10.0.0.1", "", 80, Health::Passing),
            inst("a", "10.0.0.1", "", 80, Health::Passing),
            inst("a", "10.0.0.1", "", 81, Health::Passing),
        ];
        let set = build(&list, Some("primary"), false);
        assert_eq!(set.healthy, 3);
        assert_eq!(set.v4.len(), 1);
        assert_eq!(set.v4[0].weight, 9);
        assert_eq!(set.srv.len(), 2);
        assert!(set.shared_targets);
        assert_eq!(build(&list, Some("other"), false).healthy, 0);
    }

    #[test]
    fn rfc1464_escaping() {
        assert_eq!(rfc1464("a=b", "c`d"), "a`=b=c``d");
        assert_eq!(rfc1464(" k ", "v"), "` k` =v");
        let owner = Name::from_ascii("n.node.dc1.consul.").unwrap();
        let meta = BTreeMap::from([("rfc1035-x".to_string(), "raw".to_string())]);
        let recs = meta_txt(&owner, &meta, 0);
        assert_eq!(recs[0].data.to_string(), "raw");
        let long = BTreeMap::from([("k".to_string(), "é".repeat(300))]);
        let recs = meta_txt(&owner, &long, 0);
        match &recs[0].data {
            RData::TXT(t) => assert!(t.txt_data.iter().all(|s| s.len() <= 255) && t.txt_data.len() == 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sizes_are_uncompressed_upper_bounds() {
        let set = build(&[inst("a", "10.0.0.1", "", 80, Health::Passing)], None, false);
        // A: type/class/ttl/len (10) + 4 bytes address.
        assert_eq!(set.v4[0].size, 14);
        assert!(set.srv[0].size > 14 + 18);
    }
}
