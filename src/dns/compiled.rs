//! Service answers pre-encoded to wire pieces, assembled per query.
//!
//! Owns: turning one answer set (records.rs) for one question into byte
//! templates, and writing a reply from a chosen order of units. The output
//! is byte for byte what `wire::encode` writes for the same records (same
//! name compression: every suffix compressed against the first place it
//! was written, SRV targets written in full, pointers only into the first
//! 16 KiB, rollback of a record that passes the size limit, TC only for
//! answers left out). Suffixes are interned when compiling, so per query a
//! name costs array lookups instead of hashing and comparing labels. Must
//! not choose the order or how many units fit (hot.rs does, with
//! truncate.rs's rules).

use std::collections::HashMap;

use hickory_proto::rr::{Name, RData, Record};

use super::records::Unit;

/// Pointers can address only the first 16 KiB of a message.
const MAX_POINTER_OFFSET: usize = 0x3FFF;
const HEADER_LEN: usize = 12;

/// A name split into wire labels, with the interned id of each suffix.
#[derive(Debug)]
struct WireName {
    /// Length-prefixed labels, without the terminating zero.
    labels: Vec<u8>,
    /// Offset in `labels` where label `i` starts.
    starts: Vec<u16>,
    /// Interned id of the (lowercased) suffix starting at label `i`.
    suffixes: Vec<u32>,
}

#[derive(Debug)]
enum Owner {
    /// The question name as the client wrote it.
    Question,
    Name(u32),
}

#[derive(Debug)]
enum Rdata {
    /// Written as is (A, AAAA, TXT).
    Raw(Vec<u8>),
    /// Priority, weight, port, then the target in full (RFC 2782).
    Srv([u8; 6], u32),
    /// A compressible name (CNAME).
    Name(u32),
}

#[derive(Debug)]
struct WireRecord {
    owner: Owner,
    /// Type, class, TTL.
    fixed: [u8; 8],
    rdata: Rdata,
}

/// One unit of the answer set as templates.
#[derive(Debug)]
pub struct WireUnit {
    answer: WireRecord,
    extras: Vec<WireRecord>,
    optional: Vec<WireRecord>,
    pub weight: u32,
    /// Uncompressed size estimates, as `records::Unit` has them.
    pub size: usize,
    pub optional_size: usize,
}

impl WireUnit {
    pub fn has_optional(&self) -> bool {
        !self.optional.is_empty()
    }
}

/// The units of one pool, pre-encoded for one (lowercased) question name.
#[derive(Debug)]
pub struct Compiled {
    names: Vec<WireName>,
    question: WireName,
    suffix_count: usize,
    pub units: Vec<WireUnit>,
}

/// What a reply is assembled from besides the units.
pub struct Frame<'a> {
    pub id: u16,
    /// Header byte 2 without TC (QR, opcode, AA, RD) and byte 3 (RA, CD, rcode).
    pub flags: [u8; 2],
    /// Force TC (answers were left out to fit the budget, with truncation on).
    pub truncated: bool,
    /// The question as the client sent it: name, type, class.
    pub qname: &'a [u8],
    pub qtype_class: [u8; 4],
    /// Our OPT record, already encoded.
    pub opt: Option<&'a [u8]>,
    pub compress: bool,
}

/// Per-query scratch: the reply buffer and the compression table (offset
/// of each interned suffix in this reply, 0 = not written yet).
#[derive(Default)]
pub struct Scratch {
    pub buf: Vec<u8>,
    offsets: Vec<u16>,
    touched: Vec<u32>,
}

struct Interner {
    ids: HashMap<Vec<u8>, u32>,
}

impl Interner {
    /// Splits wire labels (no terminating zero) and interns every suffix.
    fn split(&mut self, labels: Vec<u8>) -> Option<WireName> {
        let mut starts = Vec::new();
        let mut at = 0;
        while at < labels.len() {
            starts.push(u16::try_from(at).ok()?);
            at += 1 + usize::from(*labels.get(at)?);
        }
        let suffixes = starts
            .iter()
            .map(|&s| {
                let key = labels.get(usize::from(s)..).unwrap_or_default().to_ascii_lowercase();
                let next = self.ids.len() as u32;
                *self.ids.entry(key).or_insert(next)
            })
            .collect();
        Some(WireName { labels, starts, suffixes })
    }
}

fn name_labels(name: &Name) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    for label in name.iter() {
        out.push(u8::try_from(label.len()).ok().filter(|&l| l <= 63)?);
        out.extend_from_slice(label);
    }
    (out.len() < 255).then_some(out)
}

impl Compiled {
    /// Templates for `units` answering `qname_lower` (the question name's
    /// wire bytes, lowercased, with the terminating zero). None when a
    /// record is of a kind the templates do not cover (the caller then
    /// keeps answering through the full path).
    pub fn new(qname_lower: &[u8], units: &[&Unit]) -> Option<Compiled> {
        let mut interner = Interner { ids: HashMap::new() };
        let question = interner.split(qname_lower.get(..qname_lower.len().checked_sub(1)?)?.to_vec())?;
        let mut names: Vec<WireName> = Vec::new();
        let mut by_name: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut name_id = |n: &Name, interner: &mut Interner| -> Option<u32> {
            let labels = name_labels(n)?;
            if let Some(&id) = by_name.get(&labels) {
                return Some(id);
            }
            let id = u32::try_from(names.len()).ok()?;
            by_name.insert(labels.clone(), id);
            names.push(interner.split(labels)?);
            Some(id)
        };
        let mut record = |r: &Record,
                          owner_is_question: bool,
                          interner: &mut Interner|
         -> Option<WireRecord> {
            let owner =
                if owner_is_question { Owner::Question } else { Owner::Name(name_id(&r.name, interner)?) };
            let mut fixed = [0u8; 8];
            fixed[0..2].copy_from_slice(&u16::from(r.record_type()).to_be_bytes());
            fixed[2..4].copy_from_slice(&u16::from(r.dns_class).to_be_bytes());
            fixed[4..8].copy_from_slice(&r.ttl.to_be_bytes());
            let rdata = match &r.data {
                RData::A(a) => Rdata::Raw(a.0.octets().to_vec()),
                RData::AAAA(a) => Rdata::Raw(a.0.octets().to_vec()),
                RData::CNAME(n) => Rdata::Name(name_id(&n.0, interner)?),
                RData::SRV(srv) => {
                    let mut head = [0u8; 6];
                    head[0..2].copy_from_slice(&srv.priority.to_be_bytes());
                    head[2..4].copy_from_slice(&srv.weight.to_be_bytes());
                    head[4..6].copy_from_slice(&srv.port.to_be_bytes());
                    Rdata::Srv(head, name_id(&srv.target, interner)?)
                }
                RData::TXT(txt) => {
                    let mut raw = Vec::new();
                    for part in txt.txt_data.iter() {
                        raw.push(u8::try_from(part.len()).ok()?);
                        raw.extend_from_slice(part);
                    }
                    Rdata::Raw(raw)
                }
                _ => return None,
            };
            Some(WireRecord { owner, fixed, rdata })
        };
        let mut out_units = Vec::with_capacity(units.len());
        for u in units {
            let answer = record(&u.answer, true, &mut interner)?;
            let extras = u.extras.iter().map(|r| record(r, false, &mut interner)).collect::<Option<_>>()?;
            let optional =
                u.optional.iter().map(|r| record(r, false, &mut interner)).collect::<Option<_>>()?;
            out_units.push(WireUnit {
                answer,
                extras,
                optional,
                weight: u.weight,
                size: u.size,
                optional_size: u.optional_size,
            });
        }
        let suffix_count = interner.ids.len();
        Some(Compiled { names, question, suffix_count, units: out_units })
    }

    /// Writes the reply for `order` (indexes into `units`), of which the
    /// first `keep` units are offered, into `s.buf`, never past `max_size`
    /// bytes. Same result as `wire::encode` on the same records.
    pub fn assemble(
        &self,
        s: &mut Scratch,
        frame: &Frame<'_>,
        order: &[usize],
        keep: usize,
        with_optional: bool,
        max_size: usize,
    ) {
        s.buf.clear();
        s.buf.extend_from_slice(&[0u8; HEADER_LEN]);
        s.offsets.clear();
        s.offsets.resize(self.suffix_count, 0);
        s.touched.clear();
        let opt_len = frame.opt.map_or(0, <[u8]>::len);
        let limit = max_size.saturating_sub(opt_len).max(HEADER_LEN);

        s.buf.extend_from_slice(frame.qname);
        s.buf.extend_from_slice(&frame.qtype_class);
        self.remember(s, &self.question, self.question.starts.len(), HEADER_LEN);

        let units = || order.iter().take(keep).filter_map(|&i| self.units.get(i));
        let (mut answers, mut additionals) = (0u16, 0u16);
        let mut full = true;
        for u in units() {
            if !self.record(s, frame, &u.answer, limit) {
                full = false;
                break;
            }
            answers += 1;
        }
        if full {
            'extras: for u in units() {
                let optional = if with_optional { u.optional.as_slice() } else { &[] };
                for r in u.extras.iter().chain(optional) {
                    if !self.record(s, frame, r, limit) {
                        break 'extras;
                    }
                    additionals += 1;
                }
            }
        }
        if let Some(opt) = frame.opt {
            s.buf.extend_from_slice(opt);
            additionals += 1;
        }
        let tc = if frame.truncated || !full { 0x02 } else { 0 };
        let mut header = [0u8; HEADER_LEN];
        header[0..2].copy_from_slice(&frame.id.to_be_bytes());
        header[2] = frame.flags[0] | tc;
        header[3] = frame.flags[1];
        header[4..6].copy_from_slice(&1u16.to_be_bytes());
        header[6..8].copy_from_slice(&answers.to_be_bytes());
        header[10..12].copy_from_slice(&additionals.to_be_bytes());
        if let Some(h) = s.buf.get_mut(..HEADER_LEN) {
            h.copy_from_slice(&header);
        }
    }

    /// Writes one record; false (and nothing written) when it would pass `limit`.
    fn record(&self, s: &mut Scratch, frame: &Frame<'_>, r: &WireRecord, limit: usize) -> bool {
        let mark = s.buf.len();
        match r.owner {
            Owner::Question => {
                if frame.compress && !self.question.starts.is_empty() {
                    s.buf.extend_from_slice(&(0xC000u16 | HEADER_LEN as u16).to_be_bytes());
                } else {
                    s.buf.extend_from_slice(frame.qname);
                }
            }
            Owner::Name(id) => self.name(s, id, frame.compress),
        }
        s.buf.extend_from_slice(&r.fixed);
        let len_at = s.buf.len();
        s.buf.extend_from_slice(&[0, 0]);
        match &r.rdata {
            Rdata::Raw(raw) => s.buf.extend_from_slice(raw),
            Rdata::Name(id) => self.name(s, *id, frame.compress),
            Rdata::Srv(head, id) => {
                s.buf.extend_from_slice(head);
                self.name(s, *id, false);
            }
        }
        let rdlen = (s.buf.len() - len_at - 2) as u16;
        if let Some(at) = s.buf.get_mut(len_at..len_at + 2) {
            at.copy_from_slice(&rdlen.to_be_bytes());
        }
        if s.buf.len() <= limit {
            return true;
        }
        s.buf.truncate(mark);
        s.touched.retain(|&id| {
            let slot = s.offsets.get_mut(id as usize);
            match slot {
                Some(off) if usize::from(*off) >= mark => {
                    *off = 0;
                    false
                }
                _ => true,
            }
        });
        false
    }

    /// Writes name `id`, its longest already-written suffix as a pointer
    /// when compressing, and remembers where its new suffixes start.
    fn name(&self, s: &mut Scratch, id: u32, compress: bool) {
        let Some(n) = self.names.get(id as usize) else { return };
        let start = s.buf.len();
        if compress {
            for (i, &suffix) in n.suffixes.iter().enumerate() {
                let ptr = s.offsets.get(suffix as usize).copied().unwrap_or(0);
                if ptr != 0 {
                    let cut = n.starts.get(i).map_or(0, |&c| usize::from(c));
                    s.buf.extend_from_slice(n.labels.get(..cut).unwrap_or_default());
                    s.buf.extend_from_slice(&(0xC000 | ptr).to_be_bytes());
                    self.remember(s, n, i, start);
                    return;
                }
            }
        }
        s.buf.extend_from_slice(&n.labels);
        s.buf.push(0);
        self.remember(s, n, n.starts.len(), start);
    }

    /// Records the suffixes of the first `written` labels of `n`, written
    /// from `start`, where no earlier place holds them.
    fn remember(&self, s: &mut Scratch, n: &WireName, written: usize, start: usize) {
        for (&at, &suffix) in n.starts.iter().zip(&n.suffixes).take(written) {
            let off = start + usize::from(at);
            if off > MAX_POINTER_OFFSET {
                return;
            }
            if let Some(slot) = s.offsets.get_mut(suffix as usize) {
                if *slot == 0 {
                    *slot = off as u16;
                    s.touched.push(suffix);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::backend::{Health, ServiceInstance};
    use crate::dns::records::{build_answer_set, SetInput};
    use crate::dns::wire::{encode, opt_bytes, Parts};
    use hickory_proto::op::{Edns, MessageType, Metadata, OpCode, Query};
    use hickory_proto::rr::RecordType;
    use rand::seq::SliceRandom;
    use std::collections::BTreeMap;

    fn instance(i: usize) -> ServiceInstance {
        // Node targets, IP service addresses, hostnames; v4 and v6; meta TXT.
        let service_address = match i % 4 {
            1 => format!("192.168.{}.{}", i / 250, i % 250),
            2 => format!("host-{i}.example.com"),
            3 => format!("2001:db8::{i:x}"),
            _ => String::new(),
        };
        ServiceInstance {
            node: format!("Node-{i}"),
            node_address: format!("10.0.{}.{}", i / 250, i % 250),
            datacenter: "dc1".into(),
            node_meta: BTreeMap::from([("rack".to_string(), format!("r{}", i % 3))]),
            node_tagged_addresses: BTreeMap::new(),
            service_id: format!("web-{i}"),
            service_name: "web".into(),
            service_address,
            service_port: 8000 + i as u16,
            service_tags: Vec::new(),
            weight_passing: 1 + (i % 3) as u32,
            weight_warning: 1,
            health: Health::Passing,
        }
    }

    /// The same units through `wire::encode` and through the templates give
    /// the same bytes, for any order, count, size limit, case and EDNS.
    #[test]
    fn assembles_exactly_what_the_encoder_writes() {
        let domain = Name::from_ascii("consul.").unwrap();
        let instances: Vec<_> = (0..60).map(instance).collect();
        let set = build_answer_set(&SetInput {
            instances: &instances,
            tag: None,
            only_passing: false,
            node_meta_txt: true,
            domain: &domain,
            dc: "dc1",
            ttl: 5,
        });
        let mut rng = rand::rng();
        let mut scratch = Scratch::default();
        for (asked, qtype) in [
            ("web.service.consul.", RecordType::SRV),
            ("WeB.Service.CONSUL.", RecordType::A),
            ("web.service.dc1.consul.", RecordType::AAAA),
        ] {
            let units: Vec<&Unit> = match qtype {
                RecordType::SRV => set.srv.iter().collect(),
                RecordType::A => set.v4.iter().collect(),
                _ => set.v6.iter().collect(),
            };
            let qname = Name::from_ascii(asked).unwrap();
            let mut wire_q = Vec::new();
            for l in qname.iter() {
                wire_q.push(l.len() as u8);
                wire_q.extend_from_slice(l);
            }
            wire_q.push(0);
            let compiled = Compiled::new(&wire_q.to_ascii_lowercase(), &units).unwrap();
            let queries = [Query::query(qname.clone(), qtype)];
            for round in 0..200 {
                let compress = round % 5 != 0;
                let edns = (round % 3 == 0).then(|| {
                    let mut e = Edns::new();
                    e.set_max_payload(1232);
                    e
                });
                let opt = edns.as_ref().map(opt_bytes);
                let mut order: Vec<usize> = (0..units.len()).collect();
                order.shuffle(&mut rng);
                let keep = 1 + round % units.len();
                let optional = round % 2 == 0;
                let max_size = [512, 1232, 4096, usize::MAX][round % 4];
                let frame = Frame {
                    id: 0x4242,
                    flags: [0x84 | (round % 2) as u8, 0x80],
                    truncated: round % 7 == 0,
                    qname: &wire_q,
                    qtype_class: [0, u16::from(qtype) as u8, 0, 1],
                    opt: opt.as_deref(),
                    compress,
                };
                compiled.assemble(&mut scratch, &frame, &order, keep, optional, max_size);

                let (mut answers, mut extras) = (Vec::new(), Vec::new());
                for &i in order.iter().take(keep) {
                    let mut a = units[i].answer.clone();
                    a.name = qname.clone();
                    answers.push(a);
                    extras.extend(units[i].extras.iter().cloned());
                    if optional {
                        extras.extend(units[i].optional.iter().cloned());
                    }
                }
                let mut metadata = Metadata::new(0x4242, MessageType::Response, OpCode::Query);
                metadata.authoritative = true;
                metadata.recursion_available = true;
                metadata.recursion_desired = round % 2 == 1;
                metadata.truncation = frame.truncated;
                let parts = Parts {
                    metadata,
                    queries: &queries,
                    answers: &answers,
                    authorities: &[],
                    additionals: &extras,
                    edns: edns.as_ref(),
                };
                let want = encode(&parts, max_size, compress);
                assert_eq!(scratch.buf, want, "{asked} {qtype} round {round}");
            }
        }
    }
}
