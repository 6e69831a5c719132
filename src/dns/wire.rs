//! Encoding replies to bytes, with name compression over the whole message.
//!
//! Owns: the wire encoding of our replies, the compression table, and
//! size-limited writing (a record that does not fit is rolled back; TC is set
//! when an Answer or Authority record had to be left out, not for dropped
//! Additional records, per RFC 2181 §9).
//!
//! Why not hickory's encoder: it compresses only the first 120 names of a
//! message (a guard against quadratic search), so a large SRV answer over
//! TCP carried only ~650 instances in 64 KiB. Here compression uses a hash
//! table (constant time per suffix), so every name can be compressed and
//! ~1,000 SRVs with glue fit. Must not decide what records a reply carries.

use std::collections::HashMap;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, Query};
use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

/// Pointers can address only the first 16 KiB of a message.
const MAX_POINTER_OFFSET: usize = 0x3FFF;
/// Bound on remembered suffixes, so a hostile upstream answer cannot make
/// the table large; names beyond it are written uncompressed.
const MAX_TABLE_ENTRIES: usize = 16_384;

/// The parts of a reply to encode.
pub struct Parts<'a> {
    pub metadata: Metadata,
    pub queries: &'a [Query],
    pub answers: &'a [Record],
    pub authorities: &'a [Record],
    pub additionals: &'a [Record],
    pub edns: Option<&'a Edns>,
}

/// Encodes `parts` into at most `max_size` bytes. Always returns a valid
/// message: records that do not fit are left out (TC set when they were
/// answers or authorities).
pub fn encode(parts: &Parts<'_>, max_size: usize, compress: bool) -> Vec<u8> {
    let mut w = Writer { buf: Vec::with_capacity(512), table: HashMap::new(), compress };
    w.buf.extend_from_slice(&[0u8; 12]);
    let mut metadata = parts.metadata;
    let mut counts = HeaderCounts::default();

    let opt = parts.edns.map(|e| {
        let mut e = e.clone();
        e.set_rcode_high(metadata.response_code.high());
        raw_record(&Record::from(&e))
    });
    // The OPT record must always fit: reserve its space up front.
    let limit = max_size.saturating_sub(opt.as_ref().map_or(0, Vec::len)).max(12);

    for q in parts.queries {
        let mark = w.mark();
        if w.name(q.name()).is_err() {
            w.rollback(mark);
            continue;
        }
        w.buf.extend_from_slice(&u16::from(q.query_type()).to_be_bytes());
        w.buf.extend_from_slice(&u16::from(q.query_class()).to_be_bytes());
        counts.queries += 1;
    }

    let mut full = true;
    for (section, count) in [(parts.answers, &mut counts.answers), (parts.authorities, &mut counts.authorities)] {
        for r in section {
            if !full {
                break;
            }
            match w.record(r, limit) {
                Some(true) => *count += 1,
                Some(false) => full = false,
                None => {} // unencodable record: skipped
            }
        }
    }
    if !full {
        metadata.truncation = true;
    } else {
        for r in parts.additionals {
            match w.record(r, limit) {
                Some(true) => counts.additionals += 1,
                Some(false) => break,
                None => {}
            }
        }
    }
    if let Some(opt) = opt {
        w.buf.extend_from_slice(&opt);
        counts.additionals += 1;
    }

    let mut header = Vec::with_capacity(12);
    let mut enc = BinEncoder::new(&mut header);
    if (Header { metadata, counts }).emit(&mut enc).is_ok() && header.len() == 12 {
        w.buf[..12].copy_from_slice(&header);
    }
    w.buf
}

struct Writer {
    buf: Vec<u8>,
    /// Lowercased wire form of a name suffix → its offset in `buf`.
    table: HashMap<Vec<u8>, u16>,
    compress: bool,
}

struct Mark {
    len: usize,
}

impl Writer {
    fn mark(&self) -> Mark {
        Mark { len: self.buf.len() }
    }

    /// Undo everything written since `mark`, including table entries that
    /// point into the removed bytes.
    fn rollback(&mut self, mark: Mark) {
        if self.buf.len() > mark.len {
            self.buf.truncate(mark.len);
            self.table.retain(|_, off| usize::from(*off) < mark.len);
        }
    }

    /// Writes one record; `Some(false)` (and nothing written) when it would
    /// pass `limit`, `None` when it cannot be encoded.
    fn record(&mut self, r: &Record, limit: usize) -> Option<bool> {
        let mark = self.mark();
        match self.try_record(r) {
            Ok(()) if self.buf.len() <= limit => Some(true),
            Ok(()) => {
                self.rollback(mark);
                Some(false)
            }
            Err(()) => {
                self.rollback(mark);
                None
            }
        }
    }

    fn try_record(&mut self, r: &Record) -> Result<(), ()> {
        self.name(&r.name)?;
        self.buf.extend_from_slice(&u16::from(r.record_type()).to_be_bytes());
        self.buf.extend_from_slice(&u16::from(r.dns_class).to_be_bytes());
        self.buf.extend_from_slice(&r.ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        match &r.data {
            RData::A(a) => self.buf.extend_from_slice(&a.0.octets()),
            RData::AAAA(a) => self.buf.extend_from_slice(&a.0.octets()),
            // RFC 1035 types: names in RDATA may be compressed.
            RData::CNAME(n) => self.name(&n.0)?,
            RData::NS(n) => self.name(&n.0)?,
            RData::PTR(n) => self.name(&n.0)?,
            RData::SOA(soa) => {
                self.name(&soa.mname)?;
                self.name(&soa.rname)?;
                for v in [soa.serial, soa.refresh as u32, soa.retry as u32, soa.expire as u32, soa.minimum] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
            }
            // Everything else (SRV per RFC 2782, TXT, upstream types):
            // hickory's own uncompressed RDATA; SRV targets are still
            // remembered so glue owners can point at them.
            other => {
                let start = self.buf.len();
                let raw = raw_rdata(other).ok_or(())?;
                self.buf.extend_from_slice(&raw);
                if let RData::SRV(srv) = other {
                    self.remember(&srv.target, start + 6);
                }
            }
        }
        let rdlen = u16::try_from(self.buf.len() - len_at - 2).map_err(|_| ())?;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        Ok(())
    }

    /// Writes a name, replacing its longest already-written suffix with a
    /// pointer.
    fn name(&mut self, name: &Name) -> Result<(), ()> {
        let labels: Vec<&[u8]> = name.iter().collect();
        if labels.iter().any(|l| l.len() > 63) || name.len() > 255 {
            return Err(());
        }
        let start = self.buf.len();
        for i in 0..labels.len() {
            if self.compress {
                if let Some(&ptr) = self.table.get(&suffix_key(&labels[i..])) {
                    self.buf.extend_from_slice(&(0xC000 | ptr).to_be_bytes());
                    self.remember_labels(&labels[..i], start, &labels);
                    return Ok(());
                }
            }
            self.buf.push(labels[i].len() as u8);
            self.buf.extend_from_slice(labels[i]);
        }
        self.buf.push(0);
        let n = labels.len();
        self.remember_labels(&labels[..n], start, &labels);
        Ok(())
    }

    /// Records the suffixes starting at each of the first `written` labels
    /// of `all`, written from `start`.
    fn remember_labels(&mut self, written: &[&[u8]], start: usize, all: &[&[u8]]) {
        let mut off = start;
        for i in 0..written.len() {
            if off > MAX_POINTER_OFFSET || self.table.len() >= MAX_TABLE_ENTRIES {
                return;
            }
            self.table.entry(suffix_key(&all[i..])).or_insert(off as u16);
            off += 1 + all[i].len();
        }
    }

    /// Remembers an uncompressed name already written at `at`.
    fn remember(&mut self, name: &Name, at: usize) {
        let labels: Vec<&[u8]> = name.iter().collect();
        self.remember_labels(&labels, at, &labels);
    }
}

fn suffix_key(labels: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(labels.iter().map(|l| l.len() + 1).sum());
    for l in labels {
        key.push(l.len() as u8);
        key.extend(l.iter().map(u8::to_ascii_lowercase));
    }
    key
}

fn raw_rdata(data: &RData) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(64);
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    data.emit(&mut enc).ok()?;
    Some(buf)
}

fn raw_record(r: &Record) -> Vec<u8> {
    let mut buf = Vec::with_capacity(32);
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    if r.emit(&mut enc).is_err() {
        buf.clear();
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, SRV, TXT};
    use hickory_proto::rr::RecordType;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn srv_reply(n: usize) -> (Vec<Record>, Vec<Record>) {
        let owner = name("web.service.consul.");
        let mut answers = Vec::new();
        let mut extras = Vec::new();
        for i in 0..n {
            let target = name(&format!("node-{i}.node.dc1.consul."));
            answers.push(Record::from_rdata(owner.clone(), 0, RData::SRV(SRV::new(1, 1, 80, target.clone()))));
            extras.push(Record::from_rdata(target, 0, RData::A(A::new(10, 0, (i / 256) as u8, (i % 256) as u8))));
        }
        (answers, extras)
    }

    fn meta() -> Metadata {
        Metadata::new(7, MessageType::Response, OpCode::Query)
    }

    #[test]
    fn round_trips_through_hickory_and_compresses_every_name() {
        // SRV targets stay uncompressed (RFC 2782); glue owners point at them
        // while they are within the first 16 KiB, at `.node.dc1.consul.` after.
        let (answers, extras) = srv_reply(950);
        let q = [Query::query(name("web.service.consul."), RecordType::SRV)];
        let parts = Parts { metadata: meta(), queries: &q, answers: &answers, authorities: &[], additionals: &extras, edns: None };
        let bytes = encode(&parts, 65535, true);
        assert!(bytes.len() <= 65535, "{}", bytes.len());
        let m = Message::from_vec(&bytes).unwrap();
        assert!(!m.metadata.truncation);
        assert_eq!((m.answers.len(), m.additionals.len()), (950, 950));
        for (got, want) in m.answers.iter().zip(&answers).chain(m.additionals.iter().zip(&extras)) {
            assert_eq!(got, want);
        }
        let plain = encode(&parts, usize::MAX, false);
        assert!(plain.len() > bytes.len() * 3 / 2, "{} vs {}", plain.len(), bytes.len());
        assert_eq!(Message::from_vec(&plain).unwrap().answers, answers);
    }

    #[test]
    fn size_limit_rolls_back_and_sets_tc_only_for_answers() {
        let (answers, extras) = srv_reply(50);
        let q = [Query::query(name("web.service.consul."), RecordType::SRV)];
        let mut e = Edns::new();
        e.set_max_payload(512);
        let parts = Parts { metadata: meta(), queries: &q, answers: &answers, authorities: &[], additionals: &extras, edns: Some(&e) };
        let bytes = encode(&parts, 512, true);
        assert!(bytes.len() <= 512);
        let m = Message::from_vec(&bytes).unwrap();
        assert!(m.metadata.truncation);
        assert!(m.answers.len() < 50 && !m.answers.is_empty());
        assert!(m.additionals.is_empty(), "nothing after a truncated answer section");
        assert!(m.edns.is_some(), "OPT always fits");
        // Answers fit, glue does not: no TC.
        let (answers, extras) = srv_reply(3);
        let big_txt: Vec<Record> = (0..10)
            .map(|_| Record::from_rdata(name("x.consul."), 0, RData::TXT(TXT::new(vec!["a".repeat(200)]))))
            .collect();
        let all: Vec<Record> = extras.into_iter().chain(big_txt).collect();
        let parts = Parts { metadata: meta(), queries: &q, answers: &answers, authorities: &[], additionals: &all, edns: None };
        let m = Message::from_vec(&encode(&parts, 512, true)).unwrap();
        assert_eq!(m.answers.len(), 3);
        assert!(!m.metadata.truncation);
        assert!(m.additionals.len() >= 3 && m.additionals.len() < 13);
    }
}
