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
use std::hash::{BuildHasherDefault, Hasher};

use hickory_proto::op::{Edns, HeaderCounts, MessageType, Metadata, Query};
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
    let mut w = Writer {
        buf: Vec::with_capacity(512),
        table: Table::with_capacity_and_hasher(32, Default::default()),
        hashes: Vec::with_capacity(16),
        labels: Vec::with_capacity(16),
        label_bytes: Vec::with_capacity(256),
        compress,
    };
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
    for (section, count) in
        [(parts.answers, &mut counts.answers), (parts.authorities, &mut counts.authorities)]
    {
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

    w.buf[..12].copy_from_slice(&header_bytes(&metadata, &counts));
    w.buf
}

/// Our OPT record exactly as `encode` writes it into a NOERROR reply.
pub fn opt_bytes(edns: &Edns) -> Vec<u8> {
    let mut e = edns.clone();
    e.set_rcode_high(hickory_proto::op::ResponseCode::NoError.high());
    raw_record(&Record::from(&e))
}

/// The 12-byte header (RFC 1035 §4.1.1; AD/CD from RFC 4035).
fn header_bytes(m: &Metadata, c: &HeaderCounts) -> [u8; 12] {
    let flag = |on: bool, bit: u8| if on { bit } else { 0 };
    let b2 = flag(m.message_type == MessageType::Response, 0x80)
        | ((u8::from(m.op_code) & 0x0F) << 3)
        | flag(m.authoritative, 0x04)
        | flag(m.truncation, 0x02)
        | flag(m.recursion_desired, 0x01);
    let b3 = flag(m.recursion_available, 0x80)
        | flag(m.authentic_data, 0x20)
        | flag(m.checking_disabled, 0x10)
        | (m.response_code.low() & 0x0F);
    let mut h = [0u8; 12];
    h[0..2].copy_from_slice(&m.id.to_be_bytes());
    h[2] = b2;
    h[3] = b3;
    h[4..6].copy_from_slice(&c.queries.to_be_bytes());
    h[6..8].copy_from_slice(&c.answers.to_be_bytes());
    h[8..10].copy_from_slice(&c.authorities.to_be_bytes());
    h[10..12].copy_from_slice(&c.additionals.to_be_bytes());
    h
}

/// Hash of a lowercased name suffix → its offset in the message. A hit is
/// verified against the bytes at that offset, so collisions are harmless.
type Table = HashMap<u64, u16, BuildHasherDefault<PassThrough>>;

/// The keys are already hashes: pass them through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

struct Writer {
    buf: Vec<u8>,
    table: Table,
    /// Scratch: suffix hashes of the name being written.
    hashes: Vec<u64>,
    /// Scratch: (start, len) in `label_bytes` of each label of the name
    /// being written.
    labels: Vec<(usize, usize)>,
    label_bytes: Vec<u8>,
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
            // SRV targets are never compressed (RFC 2782), but later names
            // may point at them.
            RData::SRV(srv) => {
                for v in [srv.priority, srv.weight, srv.port] {
                    self.buf.extend_from_slice(&v.to_be_bytes());
                }
                let at = self.buf.len();
                let n = self.split(&srv.target)?;
                for &(s, l) in &self.labels {
                    self.buf.push(l as u8);
                    self.buf.extend_from_slice(self.label_bytes.get(s..s + l).ok_or(())?);
                }
                self.buf.push(0);
                self.remember_labels(n, at);
            }
            RData::TXT(txt) => {
                for part in txt.txt_data.iter() {
                    let len = u8::try_from(part.len()).map_err(|_| ())?;
                    self.buf.push(len);
                    self.buf.extend_from_slice(part);
                }
            }
            // Anything else (relayed upstream types): hickory's own
            // uncompressed RDATA.
            other => {
                let raw = raw_rdata(other).ok_or(())?;
                self.buf.extend_from_slice(&raw);
            }
        }
        let rdlen = u16::try_from(self.buf.len() - len_at - 2).map_err(|_| ())?;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        Ok(())
    }

    /// Writes a name, replacing its longest already-written suffix with a
    /// pointer.
    fn name(&mut self, name: &Name) -> Result<(), ()> {
        if name.len() > 255 {
            return Err(());
        }
        let n = self.split(name)?;
        let start = self.buf.len();
        for i in 0..n {
            if self.compress {
                let hit = self.hashes.get(i).and_then(|h| self.table.get(h)).copied();
                if let Some(ptr) = hit.filter(|&p| self.matches(usize::from(p), i)) {
                    self.buf.extend_from_slice(&(0xC000 | ptr).to_be_bytes());
                    self.remember_labels(i, start);
                    return Ok(());
                }
            }
            let (s, l) = self.labels.get(i).copied().ok_or(())?;
            let label = self.label_bytes.get(s..s + l).ok_or(())?;
            self.buf.push(l as u8);
            self.buf.extend_from_slice(label);
        }
        self.buf.push(0);
        self.remember_labels(n, start);
        Ok(())
    }

    /// Loads `name` into the scratch buffers: its labels and the hash of
    /// every suffix (built from the right, so each costs one label). Returns
    /// the label count.
    fn split(&mut self, name: &Name) -> Result<usize, ()> {
        self.labels.clear();
        self.label_bytes.clear();
        for label in name.iter() {
            if label.len() > 63 {
                return Err(());
            }
            self.labels.push((self.label_bytes.len(), label.len()));
            self.label_bytes.extend_from_slice(label);
        }
        let n = self.labels.len();
        self.hashes.clear();
        self.hashes.resize(n, 0);
        let mut h = FNV_OFFSET;
        for i in (0..n).rev() {
            let (s, l) = self.labels.get(i).copied().unwrap_or((0, 0));
            h = (h ^ l as u64).wrapping_mul(FNV_PRIME);
            for &b in self.label_bytes.get(s..s + l).unwrap_or_default() {
                h = (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(FNV_PRIME);
            }
            if let Some(slot) = self.hashes.get_mut(i) {
                *slot = h;
            }
        }
        Ok(n)
    }

    /// Records the suffixes starting at each of the first `written` labels
    /// of the split name, written from `start`.
    fn remember_labels(&mut self, written: usize, start: usize) {
        let mut off = start;
        for (&(_, len), &hash) in self.labels.iter().zip(self.hashes.iter()).take(written) {
            if off > MAX_POINTER_OFFSET || self.table.len() >= MAX_TABLE_ENTRIES {
                return;
            }
            self.table.entry(hash).or_insert(off as u16);
            off += 1 + len;
        }
    }

    /// Whether the name written at `off` (following pointers) equals labels
    /// `from..` of the split name, ignoring ASCII case.
    fn matches(&self, mut off: usize, from: usize) -> bool {
        let mut i = from;
        for _ in 0..256 {
            let Some(&len) = self.buf.get(off) else { return false };
            if len & 0xC0 == 0xC0 {
                let Some(&lo) = self.buf.get(off + 1) else { return false };
                off = (usize::from(len & 0x3F) << 8) | usize::from(lo);
                continue;
            }
            if len == 0 {
                return i == self.labels.len();
            }
            let len = usize::from(len);
            let Some(&(s, l)) = self.labels.get(i) else { return false };
            let (Some(label), Some(bytes)) =
                (self.label_bytes.get(s..s + l), self.buf.get(off + 1..off + 1 + len))
            else {
                return false;
            };
            if !bytes.eq_ignore_ascii_case(label) {
                return false;
            }
            i += 1;
            off += 1 + len;
        }
        false
    }
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
            answers.push(Record::from_rdata(
                owner.clone(),
                0,
                RData::SRV(SRV::new(1, 1, 80, target.clone())),
            ));
            extras.push(Record::from_rdata(
                target,
                0,
                RData::A(A::new(10, 0, (i / 256) as u8, (i % 256) as u8)),
            ));
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
        let parts = Parts {
            metadata: meta(),
            queries: &q,
            answers: &answers,
            authorities: &[],
            additionals: &extras,
            edns: None,
        };
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
        let parts = Parts {
            metadata: meta(),
            queries: &q,
            answers: &answers,
            authorities: &[],
            additionals: &extras,
            edns: Some(&e),
        };
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
        let parts = Parts {
            metadata: meta(),
            queries: &q,
            answers: &answers,
            authorities: &[],
            additionals: &all,
            edns: None,
        };
        let m = Message::from_vec(&encode(&parts, 512, true)).unwrap();
        assert_eq!(m.answers.len(), 3);
        assert!(!m.metadata.truncation);
        assert!(m.additionals.len() >= 3 && m.additionals.len() < 13);
    }
}
