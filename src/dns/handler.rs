//! The one `RequestHandler`: request checks, dispatch, flags and EDNS.
//!
//! Owns: FORMERR/NOTIMP/REFUSED/BADVERS decisions, choosing between our
//! answers and the recursors, AA/RA/TC flags, the OPT record we echo (with
//! EDNS Client Subnet scope 0: our answers do not depend on the client's
//! network). Must not touch sockets (server.rs) or build records itself.

use std::sync::Arc;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::answer::{self, Answer, Ctx};
use super::backend::DnsBackend;
use super::cache::AnswerCache;
use super::compiled::Scratch;
use super::config::{DnsConfigError, DnsServerConfig};
use super::hot::{HotAnswers, HotKey, HotOffer};
use super::name::{DnsQuery, Domains};
use super::recursor::Recursors;
use super::truncate::{clamp_edns_payload, Budget};
use super::wire;

/// Answers DNS requests from the catalog (through `DnsBackend`) and the
/// recursors. Cheap to clone; clones share the answer cache.
#[derive(Clone)]
pub struct DnsHandler {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn DnsBackend>,
    cfg: DnsServerConfig,
    domains: Domains,
    cache: AnswerCache,
    /// Pre-encoded service answers for the UDP receive loops.
    hot: HotAnswers,
    recursors: Recursors,
}

/// A response ready to encode.
#[derive(Clone, Debug)]
pub struct Reply {
    pub metadata: Metadata,
    /// The question, echoed as asked.
    pub queries: Vec<Query>,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    pub edns: Option<Edns>,
}

impl DnsHandler {
    pub fn new(backend: Arc<dyn DnsBackend>, cfg: DnsServerConfig) -> Result<Self, DnsConfigError> {
        let domains = cfg.domains()?;
        let s = &cfg.settings;
        let recursors = Recursors::new(cfg.recursors.clone(), s.recursor_timeout, s.recursor_strategy_random);
        let cache = AnswerCache::new(cfg.answer_cache_entries);
        let hot = HotAnswers::new(cfg.answer_cache_entries);
        Ok(DnsHandler { inner: Arc::new(Inner { backend, cfg, domains, cache, hot, recursors }) })
    }

    /// Answers a UDP packet from a current pre-encoded answer into
    /// `scratch.buf`. False: not a hot question (or no longer current),
    /// answer it through `respond_bytes_with`.
    pub fn serve_hot(&self, packet: &[u8], scratch: &mut Scratch) -> bool {
        let inner = &*self.inner;
        inner.hot.serve(packet, &*inner.backend, inner.cfg.settings.allow_stale, scratch)
    }

    /// How many queries were answered from pre-encoded answers.
    pub fn hot_hits(&self) -> u64 {
        self.inner.hot.hits()
    }

    /// How many service answer sets were built (one per service, tag,
    /// datacenter, domain and catalog index).
    pub fn answer_set_builds(&self) -> u64 {
        self.inner.cache.builds()
    }

    pub fn config(&self) -> &DnsServerConfig {
        &self.inner.cfg
    }

    /// Answers a decoded request and encodes the reply for its transport:
    /// UDP replies never exceed 512 bytes, or the client's EDNS size.
    pub async fn respond_bytes(&self, request: &Request) -> Vec<u8> {
        self.respond_bytes_with(request, None).await
    }

    /// `respond_bytes`, leaving a pre-encoded copy of a service answer
    /// under `hot` (the key of the raw UDP query) for the next queries.
    pub async fn respond_bytes_with(&self, request: &Request, hot: Option<HotKey>) -> Vec<u8> {
        let reply = self.respond_with(request, hot).await;
        let max_size = match request.protocol() {
            Protocol::Udp => {
                reply.edns.as_ref().map_or(512, |e| usize::from(clamp_edns_payload(e.max_payload())))
            }
            _ => usize::from(u16::MAX),
        };
        let parts = wire::Parts {
            metadata: reply.metadata,
            queries: &reply.queries,
            answers: &reply.answers,
            authorities: &reply.authorities,
            additionals: &reply.additionals,
            edns: reply.edns.as_ref(),
        };
        wire::encode(&parts, max_size, !self.inner.cfg.settings.disable_compression)
    }

    /// Computes the reply to a decoded request.
    pub async fn respond(&self, request: &Request) -> Reply {
        self.respond_with(request, None).await
    }

    async fn respond_with(&self, request: &Request, hot: Option<HotKey>) -> Reply {
        let inner = &*self.inner;
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = !inner.recursors.is_empty();
        let edns = request.edns.as_ref().map(response_edns);
        let queries = question(request);
        let reply = |mut metadata: Metadata, a: Answer, edns: Option<Edns>, queries: Vec<Query>| {
            metadata.response_code = a.rcode;
            Reply {
                metadata,
                queries,
                answers: a.answers,
                authorities: a.authorities,
                additionals: a.additionals,
                edns,
            }
        };
        let code = |rcode| Answer { rcode, ..Default::default() };

        if request.metadata.op_code != OpCode::Query {
            return reply(metadata, code(ResponseCode::NotImp), edns, queries);
        }
        let [q] = request.queries.queries() else {
            return reply(metadata, code(ResponseCode::FormErr), edns, queries);
        };
        if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            return reply(metadata, code(ResponseCode::BADVERS), edns, queries);
        }
        let qtype = q.query_type();
        let qname = q.original().name();
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return reply(metadata, code(ResponseCode::NotImp), edns, queries);
        }
        let parsed = inner.domains.parse(qname);
        let ctx = Ctx {
            backend: &*inner.backend,
            cfg: &inner.cfg,
            domains: &inner.domains,
            cache: &inner.cache,
            qname,
            qtype,
            budget: Budget::new(request.protocol(), edns.as_ref(), &inner.cfg.settings),
            queries: &queries,
            edns: edns.as_ref(),
            client_ip: Some(client_ip(request)),
            hot: hot.filter(|_| request.protocol() == Protocol::Udp).map(|key| HotOffer {
                table: &inner.hot,
                key,
                recursion_available: metadata.recursion_available,
            }),
        };

        let ours = match (&parsed.query, parsed.domain) {
            (_, Some(d)) => {
                if !matches!(q.query_class(), DNSClass::IN | DNSClass::ANY) {
                    return reply(metadata, code(ResponseCode::Refused), edns, queries);
                }
                Some(answer::answer(&ctx, &parsed.query, d).await)
            }
            (DnsQuery::Ptr { ip }, None) if matches!(qtype, RecordType::PTR | RecordType::ANY) => {
                match answer::ptr(&ctx, *ip).await {
                    Ok(Some(a)) => Some(a),
                    Err(a) => Some(a),
                    Ok(None) if inner.recursors.is_empty() => Some(answer::ptr_not_found(&ctx)),
                    Ok(None) => None,
                }
            }
            _ => None,
        };
        if let Some(a) = ours {
            metadata.authoritative = true;
            let udp = request.protocol() == Protocol::Udp;
            metadata.truncation = a.truncated && udp && inner.cfg.settings.enable_truncate;
            let edns = edns.map(|e| with_client_subnet(e, request.edns.as_ref()));
            return reply(metadata, a, edns, queries);
        }

        // Not ours: forward, or refuse when there is nowhere to forward.
        if inner.recursors.is_empty() {
            return reply(metadata, code(ResponseCode::Refused), edns, queries);
        }
        let tcp = request.protocol() != Protocol::Udp;
        match inner
            .recursors
            .forward(q.original(), request.metadata.recursion_desired, edns.is_some(), tcp)
            .await
        {
            Some(up) => {
                metadata.response_code = up.metadata.response_code;
                metadata.authoritative = false;
                Reply {
                    metadata,
                    queries,
                    answers: up.answers,
                    authorities: up.authorities,
                    additionals: up.additionals,
                    edns,
                }
            }
            None => reply(metadata, code(ResponseCode::ServFail), edns, queries),
        }
    }
}

/// The question section echoed in the reply: the one question, or none
/// when a request carries several (answered FORMERR). Echoing many large
/// questions could exceed the 512-byte UDP bound (found by the fuzzer).
fn question(request: &Request) -> Vec<Query> {
    match request.queries.queries() {
        [q] => vec![q.original().clone()],
        _ => Vec::new(),
    }
}

/// Our OPT record: the client's payload size (clamped), version 0.
fn response_edns(request: &Edns) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(clamp_edns_payload(request.max_payload()));
    e.set_version(0);
    e
}

/// Who asked, for `_ip` near sorting: the EDNS client subnet's address
/// when the query carries one (a resolver relaying for its client), else
/// the packet's source.
fn client_ip(request: &Request) -> std::net::IpAddr {
    match request.edns.as_ref().and_then(|e| e.option(EdnsCode::Subnet)) {
        Some(EdnsOption::Subnet(subnet)) => subnet.addr(),
        _ => request.src().ip(),
    }
}

/// Echoes an EDNS Client Subnet option with scope 0 (RFC 7871 §7.2.1:
/// the answer is valid for every client).
fn with_client_subnet(mut e: Edns, request: Option<&Edns>) -> Edns {
    if let Some(EdnsOption::Subnet(subnet)) = request.and_then(|r| r.option(EdnsCode::Subnet)) {
        let mut s = *subnet;
        s.set_scope_prefix(0);
        e.options_mut().insert(EdnsOption::Subnet(s));
    }
    e
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let reply = self.respond(request).await;
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(e) = reply.edns.as_ref() {
            builder.edns(e);
        }
        let metadata = reply.metadata;
        let response = builder.build(
            metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            std::iter::empty(),
            reply.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(target: "agent.dns", client = %request.src(), error = %e, "failed to respond");
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header { metadata: failed, counts: HeaderCounts::default() })
            }
        }
    }
}
