//! Hot service answers: replies pre-encoded per question, served straight
//! from the UDP receive loop without decoding the query or touching the
//! answer-building path.
//!
//! Owns: the table of pre-encoded answers keyed by (lowercased name, type,
//! class, EDNS size), their validity (the catalog index of the service and
//! the ACL state of the DNS token, both re-read on every query), and the
//! per-query work: the weighted shuffle, the answer limit, fitting the
//! client's size and the TC rule, all exactly as answer.rs does them.
//! Entries are offered by answer.rs after a full-path answer; anything not
//! covered (prepared queries, nodes, NXDOMAIN/NODATA with their SOA serial,
//! EDNS options, TCP) never gets here. Must not build records itself.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::backend::DnsBackend;
use super::compiled::{Compiled, Frame, Scratch};
use super::packet::{self, QueryView, MAX_NAME_WIRE};
use super::truncate::{self, clamp_edns_payload, Budget};

/// Largest reply built here: beyond 16 KiB compression pointers stop
/// reaching, which only the full encoder handles.
pub const MAX_HOT_BYTES: usize = 0x3FFF;
const OPT_FIXED_LEN: usize = 11;

/// What a pre-encoded answer is looked up by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotKey {
    /// Question name, wire form, ASCII-lowercased.
    name: Box<[u8]>,
    qtype: u16,
    qclass: u16,
    /// The clamped EDNS payload size, 0 without EDNS.
    payload: u16,
}

impl HotKey {
    pub fn of(view: &QueryView<'_>) -> HotKey {
        let mut lower = [0u8; MAX_NAME_WIRE];
        let name = packet::lowercase_into(view.qname, &mut lower);
        HotKey { name: name.into(), qtype: view.qtype, qclass: view.qclass, payload: payload_class(view) }
    }

    /// The lowercased question name, wire form.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    fn hash(&self) -> u64 {
        key_hash(&self.name, self.qtype, self.qclass, self.payload)
    }

    fn matches(&self, name: &[u8], qtype: u16, qclass: u16, payload: u16) -> bool {
        &*self.name == name && self.qtype == qtype && self.qclass == qclass && self.payload == payload
    }
}

fn payload_class(view: &QueryView<'_>) -> u16 {
    view.edns_payload.map_or(0, clamp_edns_payload)
}

fn key_hash(name: &[u8], qtype: u16, qclass: u16, payload: u16) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(name);
    h.write_u16(qtype);
    h.write_u16(qclass);
    h.write_u16(payload);
    h.finish()
}

/// One pre-encoded answer and what it is valid for.
pub struct HotEntry {
    pub key: HotKey,
    /// The lookup the answer came from, re-checked per query.
    pub service: String,
    pub dc: Option<String>,
    pub index: u64,
    pub acl: u64,
    pub compiled: Compiled,
    /// Our OPT record (client's size, version 0), encoded.
    pub opt: Option<Vec<u8>>,
    pub budget: Budget,
    /// `a_record_limit` for address queries, else unlimited.
    pub a_limit: usize,
    pub recursion_available: bool,
    pub enable_truncate: bool,
    pub compress: bool,
    /// Length of the question name as `Name::len` counts it, plus one (the
    /// size estimates of answer.rs use it).
    pub qlen: usize,
}

/// The table of hot answers. Shared by every receive loop.
pub struct HotAnswers {
    entries: RwLock<HashMap<u64, Arc<HotEntry>>>,
    capacity: usize,
    hits: AtomicU64,
    stale: AtomicU64,
}

impl HotAnswers {
    pub fn new(capacity: usize) -> HotAnswers {
        HotAnswers {
            entries: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
            hits: AtomicU64::new(0),
            stale: AtomicU64::new(0),
        }
    }

    /// Queries answered from this table since start.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Whether an entry for `key` exists for exactly this index and ACL state.
    pub fn has(&self, key: &HotKey, index: u64, acl: u64) -> bool {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(&key.hash()).is_some_and(|e| e.key == *key && e.index == index && e.acl == acl)
    }

    pub fn insert(&self, entry: HotEntry) {
        let h = entry.key.hash();
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if !entries.contains_key(&h) && entries.len() >= self.capacity {
            // Any one: a full table of live questions is rare, and a miss
            // only costs one answer through the full path.
            if let Some(&victim) = entries.keys().next() {
                entries.remove(&victim);
            }
        }
        entries.insert(h, Arc::new(entry));
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the reply to `packet` into `scratch.buf` and returns true when
    /// a current pre-encoded answer exists; false leaves the packet to the
    /// full path.
    pub fn serve(
        &self,
        packet: &[u8],
        backend: &dyn DnsBackend,
        allow_stale: bool,
        scratch: &mut Scratch,
    ) -> bool {
        let Some(view) = packet::parse(packet) else { return false };
        let mut lower = [0u8; MAX_NAME_WIRE];
        let name = packet::lowercase_into(view.qname, &mut lower);
        let payload = payload_class(&view);
        let entry = {
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            match entries.get(&key_hash(name, view.qtype, view.qclass, payload)) {
                Some(e) if e.key.matches(name, view.qtype, view.qclass, payload) => e.clone(),
                _ => return false,
            }
        };
        // The catalog or the token's rights changed: the full path rebuilds.
        let current = backend.service_index(&entry.service, entry.dc.as_deref(), allow_stale);
        if current != Some(entry.index) || backend.acl_generation() != entry.acl {
            self.stale.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        reply(&entry, &view, scratch);
        self.hits.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// The per-query part: order, limits, fit, encode (answer.rs's `fit_units`
/// on pre-encoded units).
fn reply(entry: &HotEntry, view: &QueryView<'_>, scratch: &mut Scratch) {
    let units = &entry.compiled.units;
    let budget = entry.budget;
    let offered = units.len().min(entry.a_limit);
    let cap = offered.min(budget.count_cap.unwrap_or(usize::MAX));
    let weight = |i: usize| units.get(i).map_or(0, |u| u.weight);
    let order = truncate::random_prefix(weight, units.len(), cap, &mut rand::rng());

    let mut qtype_class = [0u8; 4];
    qtype_class[0..2].copy_from_slice(&view.qtype.to_be_bytes());
    qtype_class[2..4].copy_from_slice(&view.qclass.to_be_bytes());
    let mut frame = Frame {
        id: view.id,
        flags: [
            0x80 | 0x04 | u8::from(view.recursion_desired),
            if entry.recursion_available { 0x80 } else { 0 } | if view.checking_disabled { 0x10 } else { 0 },
        ],
        truncated: false,
        qname: view.qname,
        qtype_class,
        opt: entry.opt.as_deref(),
        compress: entry.compress,
    };

    let mut with_optional = true;
    let mut keep = fit(entry, &frame, &order, cap, true, scratch);
    if keep < cap && order.iter().any(|&i| units.get(i).is_some_and(|u| u.has_optional())) {
        with_optional = false;
        keep = fit(entry, &frame, &order, cap, false, scratch);
    }
    frame.truncated = keep < offered && entry.enable_truncate;
    entry.compiled.assemble(scratch, &frame, &order, keep, with_optional, budget.max_bytes);
}

/// answer.rs's `fit`: greedy on uncompressed sizes, then the largest prefix
/// whose real encoding fits when compression may let more in.
fn fit(
    entry: &HotEntry,
    frame: &Frame<'_>,
    order: &[usize],
    cap: usize,
    optional: bool,
    s: &mut Scratch,
) -> usize {
    let units = &entry.compiled.units;
    let qlen = entry.qlen;
    let overhead = 12 + qlen + 4 + if entry.opt.is_some() { OPT_FIXED_LEN } else { 0 };
    let room = entry.budget.max_bytes.saturating_sub(overhead);
    let size =
        |&i: &usize| units.get(i).map_or(0, |u| u.size + qlen + if optional { u.optional_size } else { 0 });
    let keep = truncate::greedy_fit(order.iter().map(size), room, cap);
    if keep >= cap || !entry.budget.refine_compressed {
        return keep;
    }
    truncate::largest_fitting(keep, cap, entry.budget.max_bytes, |n| {
        entry.compiled.assemble(s, frame, order, n, optional, usize::MAX);
        s.buf.len()
    })
}

/// A full-path UDP query that may leave its answer here: the table and the
/// query's key.
pub struct HotOffer<'a> {
    pub table: &'a HotAnswers,
    pub key: HotKey,
    pub recursion_available: bool,
}
