//! Answers for names under our domains: service, node, addr, PTR, apex.
//!
//! Owns: which records a query type gets, NXDOMAIN vs NODATA (both with the
//! SOA in Authority), SERVFAIL on backend errors, TTLs, per-query order and
//! fitting service answers into the size budget. Must not parse names
//! (name.rs), touch sockets, or forward to recursors (handler.rs decides).

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Edns, Query, ResponseCode};
use hickory_proto::rr::rdata::{NS, PTR, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::seq::SliceRandom;

use super::backend::{BackendError, DnsBackend, NodeInfo, ReverseHit};
use super::cache::{AnswerCache, CacheKey};
use super::compiled::Compiled;
use super::config::{service_ttl, ttl_secs, DnsServerConfig};
use super::hot::{HotEntry, HotOffer, MAX_HOT_BYTES};
use super::name::{DnsQuery, Domains};
use super::records::{self, AnswerSet, SetInput, Unit};
use super::truncate::{self, Budget};

/// The sections of a response, before encoding.
#[derive(Clone, Debug, Default)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    /// Records were left out to fit the budget (TC policy is the caller's).
    pub truncated: bool,
}

impl Answer {
    fn code(rcode: ResponseCode) -> Self {
        Answer { rcode, ..Default::default() }
    }
}

/// Everything an answer needs to know about the server and the query.
pub struct Ctx<'a> {
    pub backend: &'a dyn DnsBackend,
    pub cfg: &'a DnsServerConfig,
    pub domains: &'a Domains,
    pub cache: &'a AnswerCache,
    /// The query name exactly as asked (echoed as the owner of answers).
    pub qname: &'a Name,
    pub qtype: RecordType,
    pub budget: Budget,
    /// The request's question and our OPT, for exact size measurement.
    pub queries: &'a [Query],
    pub edns: Option<&'a Edns>,
    /// Set for UDP queries whose service answer may be pre-encoded.
    pub hot: Option<HotOffer<'a>>,
    /// The client's address (its EDNS client subnet when it sent one), for
    /// prepared queries that sort `_ip` near.
    pub client_ip: Option<IpAddr>,
}

impl Ctx<'_> {
    fn settings(&self) -> &crate::config::runtime::DnsSettings {
        &self.cfg.settings
    }

    fn node_ttl(&self) -> u32 {
        ttl_secs(self.settings().node_ttl)
    }

    /// SOA of domain `d`: MNAME `ns.<d>`, RNAME `hostmaster.<d>`, serial =
    /// Unix time, timers from `dns_config.soa`.
    pub fn soa(&self, d: usize) -> Record {
        let domain = self.domains.name(d);
        let s = self.settings();
        let serial = SystemTime::now().duration_since(UNIX_EPOCH).map(|t| t.as_secs() as u32).unwrap_or(0);
        let label = |l: &str| records::under_domain(l, domain).unwrap_or_else(|| domain.clone());
        let i = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let soa = SOA::new(
            label("ns"),
            label("hostmaster"),
            serial,
            i(s.soa_refresh),
            i(s.soa_retry),
            i(s.soa_expire),
            s.soa_min_ttl,
        );
        Record::from_rdata(domain.clone(), s.soa_min_ttl, RData::SOA(soa))
    }

    fn nxdomain(&self, d: usize) -> Answer {
        Answer { rcode: ResponseCode::NXDomain, authorities: vec![self.soa(d)], ..Default::default() }
    }

    fn nodata(&self, d: usize) -> Answer {
        Answer { rcode: ResponseCode::NoError, authorities: vec![self.soa(d)], ..Default::default() }
    }

    /// Maps a backend error: no path to the datacenter is a name that does
    /// not exist; anything else is a server failure.
    fn backend_error(&self, d: usize, err: &BackendError) -> Answer {
        match err {
            BackendError::NoPathToDatacenter => self.nxdomain(d),
            other => {
                tracing::warn!(target: "agent.dns", name = %self.qname, error = %other, "catalog lookup failed");
                Answer::code(ResponseCode::ServFail)
            }
        }
    }

    fn owned(&self, mut r: Record) -> Record {
        r.name = self.qname.clone();
        r
    }
}

/// Answers a query under domain `d`. `Ptr` and `NotOurs` are not handled
/// here (see `ptr` and the handler).
pub async fn answer(ctx: &Ctx<'_>, query: &DnsQuery, d: usize) -> Answer {
    match query {
        DnsQuery::Apex => apex(ctx, d).await,
        DnsQuery::Service { name, dc, .. } | DnsQuery::Rfc2782 { service: name, dc, .. } => {
            service(ctx, name, query.tag_filter(), dc.as_deref(), d).await
        }
        DnsQuery::Node { name, dc } => node(ctx, name, dc.as_deref(), d).await,
        DnsQuery::PreparedQuery { name, dc } => prepared_query(ctx, name, dc.as_deref(), d).await,
        DnsQuery::Addr { ip } => addr(ctx, *ip, d),
        DnsQuery::Invalid | DnsQuery::Ptr { .. } | DnsQuery::NotOurs => ctx.nxdomain(d),
    }
}

async fn apex(ctx: &Ctx<'_>, d: usize) -> Answer {
    match ctx.qtype {
        RecordType::SOA | RecordType::ANY => {
            let (ns, glue) = nameservers(ctx, d).await;
            Answer { answers: vec![ctx.soa(d)], authorities: ns, additionals: glue, ..Default::default() }
        }
        RecordType::NS => {
            let (ns, glue) = nameservers(ctx, d).await;
            if ns.is_empty() {
                return ctx.nodata(d);
            }
            Answer { answers: ns, additionals: glue, ..Default::default() }
        }
        _ => ctx.nodata(d),
    }
}

/// Up to three random servers as NS records for domain `d`, with glue.
async fn nameservers(ctx: &Ctx<'_>, d: usize) -> (Vec<Record>, Vec<Record>) {
    let mut servers = match ctx.backend.servers().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(target: "agent.dns", error = %e, "unable to get list of servers");
            return (Vec::new(), Vec::new());
        }
    };
    servers.shuffle(&mut rand::rng());
    let domain = ctx.domains.name(d);
    let ttl = ctx.node_ttl();
    let (mut ns, mut glue) = (Vec::new(), Vec::new());
    for s in servers {
        let Some(host) = records::under_domain(&format!("{}.node.{}", s.node, s.datacenter), domain) else {
            tracing::debug!(target: "agent.dns", node = %s.node, "skipping server with an invalid DNS name");
            continue;
        };
        let host = host.to_lowercase();
        if let Ok(ip) = s.address.parse::<IpAddr>() {
            glue.push(Record::from_rdata(host.clone(), ttl, records::ip_rdata(ip)));
        }
        ns.push(Record::from_rdata(domain.clone(), ttl, RData::NS(NS(host))));
        if ns.len() >= 3 {
            break;
        }
    }
    (ns, glue)
}

async fn service(ctx: &Ctx<'_>, name: &str, tag: Option<&str>, dc: Option<&str>, d: usize) -> Answer {
    let s = ctx.settings();
    let dc_name = match dc {
        Some(dc) => dc.to_string(),
        None => ctx.backend.local_datacenter(),
    };
    let key = CacheKey {
        service: name.to_string(),
        tag: tag.map(str::to_string),
        dc: dc_name.clone(),
        domain: d,
        acl: ctx.backend.acl_generation(),
    };
    // The common case: nothing changed since the set was built, and the
    // backend can tell without handing over every instance.
    let cheap_index = ctx.backend.service_index(name, dc, s.allow_stale);
    let acl = key.acl;
    let cached = cheap_index.and_then(|index| Some((index, ctx.cache.get(&key, index)?)));
    let (index, set) = match cached {
        Some(found) => found,
        None => {
            let (index, instances) = match ctx.backend.service_instances(name, dc, s.allow_stale).await {
                Ok(r) => r,
                Err(e) => return ctx.backend_error(d, &e),
            };
            let set = ctx.cache.get_or_build(key, index, || {
                records::build_answer_set(&SetInput {
                    instances: &instances,
                    tag,
                    only_passing: s.only_passing,
                    node_meta_txt: s.enable_additional_node_meta_txt,
                    domain: ctx.domains.name(d),
                    dc: &dc_name,
                    ttl: service_ttl(s, name),
                })
            });
            (index, set)
        }
    };
    if set.healthy == 0 {
        return ctx.nxdomain(d);
    }
    let pool = Pool::for_query(&set, ctx.qtype);
    if pool.len() == 0 {
        return ctx.nodata(d);
    }
    let is_address = ctx.qtype != RecordType::SRV;
    let a_limit = if is_address && s.a_record_limit > 0 { s.a_record_limit } else { usize::MAX };
    // Later queries can be answered from pre-encoded bytes only when the
    // backend can re-check the index cheaply, and only for what the
    // templates cover (no random CNAME pick, no per-reply glue merging).
    if cheap_index.is_some() && !pool.from_hosts && !set.shared_targets {
        offer_hot(ctx, &pool, HotLookup { service: name, dc, index, acl, a_limit });
    }
    fit_units(ctx, &pool, a_limit, set.shared_targets, Order::Shuffled)
}

/// What a hot answer is re-validated against.
struct HotLookup<'a> {
    service: &'a str,
    dc: Option<&'a str>,
    index: u64,
    acl: u64,
    a_limit: usize,
}

/// Leaves this query's answer pre-encoded in the hot table, if the query
/// came over UDP in the plain shape and the reply stays within 16 KiB.
fn offer_hot(ctx: &Ctx<'_>, pool: &Pool<'_>, lookup: HotLookup<'_>) {
    let Some(offer) = &ctx.hot else { return };
    if ctx.budget.max_bytes > MAX_HOT_BYTES || offer.table.has(&offer.key, lookup.index, lookup.acl) {
        return;
    }
    let units: Vec<&Unit> = (0..pool.len()).filter_map(|i| pool.get(i)).collect();
    let Some(compiled) = Compiled::new(offer.key.name(), &units) else { return };
    let s = ctx.settings();
    offer.table.insert(HotEntry {
        key: offer.key.clone(),
        service: lookup.service.to_string(),
        dc: lookup.dc.map(str::to_string),
        index: lookup.index,
        acl: lookup.acl,
        compiled,
        opt: ctx.edns.map(super::wire::opt_bytes),
        budget: ctx.budget,
        a_limit: lookup.a_limit,
        recursion_available: offer.recursion_available,
        enable_truncate: s.enable_truncate,
        compress: !s.disable_compression,
        qlen: ctx.qname.len() + 1,
    });
}

/// `<query>.query.<domain>`: the query's answer set, built per lookup (the
/// server already ordered and limited it), with the query's TTL or else the
/// service's; the same pool, truncation and A-record limit as services.
async fn prepared_query(ctx: &Ctx<'_>, name: &str, dc: Option<&str>, d: usize) -> Answer {
    let s = ctx.settings();
    let found = match ctx.backend.prepared_query(name, dc, s.allow_stale, ctx.client_ip).await {
        Ok(f) => f,
        Err(e) => return ctx.backend_error(d, &e),
    };
    let Some(result) = found else { return ctx.nxdomain(d) };
    let ttl = match result.ttl {
        Some(t) => ttl_secs(t),
        None => service_ttl(s, &result.service),
    };
    let set = records::build_answer_set(&SetInput {
        instances: &result.instances,
        tag: None,
        only_passing: s.only_passing,
        node_meta_txt: s.enable_additional_node_meta_txt,
        domain: ctx.domains.name(d),
        dc: &result.datacenter,
        ttl,
    });
    if set.healthy == 0 {
        return ctx.nxdomain(d);
    }
    let pool = Pool::for_query(&set, ctx.qtype);
    if pool.len() == 0 {
        return ctx.nodata(d);
    }
    let is_address = ctx.qtype != RecordType::SRV;
    let a_limit = if is_address && s.a_record_limit > 0 { s.a_record_limit } else { usize::MAX };
    // The server shuffled, or sorted by distance (`near`): keep its order.
    fit_units(ctx, &pool, a_limit, set.shared_targets, Order::AsGiven)
}

/// How `fit_units` orders the pool.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// A fresh weighted shuffle per query (service lookups).
    Shuffled,
    /// The pool's order (prepared queries: the server already ordered it).
    AsGiven,
}

/// The units one query type draws from, without copying: up to two lists
/// (ANY = IPv4 then IPv6).
struct Pool<'s> {
    first: &'s [Unit],
    second: &'s [Unit],
    /// One hostname drawn at random for this query (CNAME answer).
    from_hosts: bool,
}

impl<'s> Pool<'s> {
    /// Address queries never mix CNAME with A/AAAA (RFC 1034 §3.6.2):
    /// hostnames are answered, as one CNAME, only when the service has no
    /// address of the asked family.
    fn for_query(set: &'s AnswerSet, qtype: RecordType) -> Pool<'s> {
        let (first, second): (&[Unit], &[Unit]) = match qtype {
            RecordType::SRV => return Pool { first: &set.srv, second: &[], from_hosts: false },
            RecordType::A => (&set.v4, &[]),
            RecordType::AAAA => (&set.v6, &[]),
            RecordType::ANY => (&set.v4, &set.v6),
            _ => (&[], &[]),
        };
        let addresses = matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY);
        if first.len() + second.len() > 0 || set.hosts.is_empty() || !addresses {
            return Pool { first, second, from_hosts: false };
        }
        let pick = truncate::random_prefix(
            |i| set.hosts.get(i).map_or(0, |u| u.weight),
            set.hosts.len(),
            1,
            &mut rand::rng(),
        );
        let one = pick.first().and_then(|&i| set.hosts.get(i..=i)).unwrap_or(&[]);
        Pool { first: one, second: &[], from_hosts: true }
    }

    fn len(&self) -> usize {
        self.first.len() + self.second.len()
    }

    fn get(&self, i: usize) -> Option<&'s Unit> {
        match i.checked_sub(self.first.len()) {
            None => self.first.get(i),
            Some(j) => self.second.get(j),
        }
    }
}

/// Orders the pool (randomly by weight, or as given), keeps as many as the budget allows
/// and renders them with the query name as owner. Optional additional
/// records (node-meta TXT) are sent only when every offered unit fits with
/// them; otherwise they are dropped first so more answers fit.
fn fit_units(ctx: &Ctx<'_>, pool: &Pool<'_>, a_limit: usize, shared_targets: bool, how: Order) -> Answer {
    let offered = pool.len().min(a_limit);
    let cap = offered.min(ctx.budget.count_cap.unwrap_or(usize::MAX));
    // Only the first `cap` of a random order can ever be sent: draw just those.
    let weight = |i: usize| pool.get(i).map_or(0, |u| u.weight);
    let order = match how {
        Order::Shuffled => truncate::random_prefix(weight, pool.len(), cap, &mut rand::rng()),
        Order::AsGiven => (0..cap).collect(),
    };
    let ordered: Vec<&Unit> = order.iter().filter_map(|&i| pool.get(i)).collect();

    let mut with_optional = true;
    let mut keep = fit(ctx, &ordered, cap, true, shared_targets);
    if keep < cap && ordered.iter().any(|u| !u.optional.is_empty()) {
        with_optional = false;
        keep = fit(ctx, &ordered, cap, false, shared_targets);
    }
    let (answers, additionals) = render(ctx, &ordered, keep, with_optional, shared_targets);
    Answer { answers, additionals, truncated: keep < offered, ..Default::default() }
}

/// How many of `ordered` (at most `cap`) fit the budget: a greedy pass on
/// uncompressed sizes, then, when compression may let more fit, a binary
/// search on the real encoding (only for big answers).
fn fit(ctx: &Ctx<'_>, ordered: &[&Unit], cap: usize, optional: bool, dedupe: bool) -> usize {
    let qlen = ctx.qname.len() + 1;
    let room = ctx.budget.max_bytes.saturating_sub(truncate::overhead(qlen, ctx.edns));
    let size = |u: &&Unit| u.size + qlen + if optional { u.optional_size } else { 0 };
    let keep = truncate::greedy_fit(ordered.iter().map(size), room, cap);
    if keep >= cap || !ctx.budget.refine_compressed {
        return keep;
    }
    let compress = !ctx.settings().disable_compression;
    truncate::largest_fitting(keep, cap, ctx.budget.max_bytes, |n| {
        let (a, x) = render(ctx, ordered, n, optional, dedupe);
        truncate::encoded_len(ctx.queries, ctx.edns, &a, &x, compress)
    })
}

/// The first `n` units as Answer and Additional records. With `dedupe`
/// (some SRVs share a target: same node, other port) glue is added once.
fn render(
    ctx: &Ctx<'_>,
    ordered: &[&Unit],
    n: usize,
    optional: bool,
    dedupe: bool,
) -> (Vec<Record>, Vec<Record>) {
    let mut answers = Vec::with_capacity(n);
    let mut extras = Vec::new();
    let mut glued: HashSet<&Name> = HashSet::new();
    for u in ordered.iter().take(n) {
        answers.push(ctx.owned(u.answer.clone()));
        if dedupe {
            if let Some(first) = u.extras.first() {
                if !glued.insert(&first.name) {
                    continue;
                }
            }
        }
        extras.extend(u.extras.iter().cloned());
        if optional {
            extras.extend(u.optional.iter().cloned());
        }
    }
    (answers, extras)
}

async fn node(ctx: &Ctx<'_>, name: &str, dc: Option<&str>, d: usize) -> Answer {
    let info = match ctx.backend.node(name, dc, ctx.settings().allow_stale).await {
        Ok(Some(n)) => n,
        Ok(None) => return ctx.nxdomain(d),
        Err(e) => return ctx.backend_error(d, &e),
    };
    let ttl = ctx.node_ttl();
    let address =
        || records::address_rdata(&info.address).map(|r| Record::from_rdata(ctx.qname.clone(), ttl, r));
    let meta = |info: &NodeInfo| records::meta_txt(ctx.qname, &info.meta, ttl);
    let mut out = Answer::default();
    match ctx.qtype {
        RecordType::A | RecordType::AAAA => {
            out.answers.extend(address().filter(|r| matches_type(r, ctx.qtype)));
            if !out.answers.is_empty() && ctx.settings().enable_additional_node_meta_txt {
                out.additionals = meta(&info);
            }
        }
        RecordType::ANY => {
            out.answers.extend(address());
            out.answers.extend(meta(&info));
        }
        RecordType::TXT => out.answers = meta(&info),
        _ => {}
    }
    if out.answers.is_empty() {
        return ctx.nodata(d);
    }
    out
}

/// A record answers `qtype` directly, or is a CNAME (which answers any type).
fn matches_type(r: &Record, qtype: RecordType) -> bool {
    r.record_type() == qtype || r.record_type() == RecordType::CNAME
}

fn addr(ctx: &Ctx<'_>, ip: IpAddr, d: usize) -> Answer {
    let wanted = match ip {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    };
    if ctx.qtype != wanted && ctx.qtype != RecordType::ANY {
        return ctx.nodata(d);
    }
    let record = Record::from_rdata(ctx.qname.clone(), ctx.node_ttl(), records::ip_rdata(ip));
    Answer { answers: vec![record], ..Default::default() }
}

/// PTR for `ip`: `Ok(None)` when nothing in the catalog has this address
/// (the caller then recurses or answers NXDOMAIN). Targets always use the
/// primary domain.
pub async fn ptr(ctx: &Ctx<'_>, ip: IpAddr) -> Result<Option<Answer>, Answer> {
    let hit = match ctx.backend.reverse(ip).await {
        Ok(Some(hit)) => hit,
        Ok(None) => return Ok(None),
        Err(e) => return Err(ctx.backend_error(0, &e)),
    };
    let (relative, ttl) = match &hit {
        ReverseHit::Node { node, datacenter } => (format!("{node}.node.{datacenter}"), ctx.node_ttl()),
        ReverseHit::Service { service, datacenter } => {
            (format!("{service}.service.{datacenter}"), service_ttl(ctx.settings(), service))
        }
    };
    let Some(target) = records::under_domain(&relative, ctx.domains.primary()) else {
        return Ok(None);
    };
    let record = Record::from_rdata(ctx.qname.clone(), ttl, RData::PTR(PTR(target)));
    Ok(Some(Answer { answers: vec![record], ..Default::default() }))
}

/// NXDOMAIN with the primary domain's SOA, for reverse names we don't know.
pub fn ptr_not_found(ctx: &Ctx<'_>) -> Answer {
    ctx.nxdomain(0)
}
