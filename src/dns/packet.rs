//! A zero-allocation view of the common query shape: one question, no
//! answers or authorities, at most a bare OPT record.
//!
//! Owns: recognising the packets the pre-encoded answers (hot.rs) may
//! serve, and the lowercase key of their question. Must not decide
//! anything about malformed input: whatever this view does not recognise
//! goes to the full decoder (server.rs → handler.rs), which answers it.

/// Longest name on the wire (RFC 1035 §3.1), terminating zero included.
pub const MAX_NAME_WIRE: usize = 255;
const OPT_TYPE: u16 = 41;

/// The parts of a query the pre-encoded answers depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryView<'a> {
    pub id: u16,
    pub recursion_desired: bool,
    pub checking_disabled: bool,
    /// The question name as sent (wire labels and the terminating zero).
    pub qname: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    /// The EDNS payload size the client advertised (unclamped), if it sent
    /// an OPT record.
    pub edns_payload: Option<u16>,
}

/// The view of `p`, or None when it is not a plain query (responses,
/// other opcodes, several questions, compressed question names, EDNS
/// options or versions, trailing bytes, anything short).
pub fn parse(p: &[u8]) -> Option<QueryView<'_>> {
    let be16 = |at: usize| -> Option<u16> { Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?])) };
    let flags = *p.get(2)?;
    let flags2 = *p.get(3)?;
    // QR clear, opcode QUERY; RCODE zero in a query.
    if flags & 0xF8 != 0 || flags2 & 0x0F != 0 {
        return None;
    }
    if be16(4)? != 1 || be16(6)? != 0 || be16(8)? != 0 {
        return None;
    }
    let additional = be16(10)?;
    if additional > 1 {
        return None;
    }
    let start = 12;
    let mut at = start;
    loop {
        let len = usize::from(*p.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        // Pointers and extended label types never appear in a sane question.
        if len > 63 {
            return None;
        }
        at += 1 + len;
        if at - start >= MAX_NAME_WIRE {
            return None;
        }
    }
    let qname = p.get(start..at)?;
    let qtype = be16(at)?;
    let qclass = be16(at + 2)?;
    at += 4;
    let mut edns_payload = None;
    if additional == 1 {
        // Root owner, type OPT, class = payload, TTL = ext-rcode/version/flags.
        if *p.get(at)? != 0 || be16(at + 1)? != OPT_TYPE {
            return None;
        }
        let payload = be16(at + 3)?;
        let (ext_rcode, version) = (*p.get(at + 5)?, *p.get(at + 6)?);
        if ext_rcode != 0 || version != 0 || be16(at + 9)? != 0 {
            return None; // BADVERS and options (client subnet) take the full path
        }
        edns_payload = Some(payload);
        at += 11;
    }
    if at != p.len() {
        return None;
    }
    Some(QueryView {
        id: be16(0)?,
        recursion_desired: flags & 0x01 != 0,
        checking_disabled: flags2 & 0x10 != 0,
        qname,
        qtype,
        qclass,
        edns_payload,
    })
}

/// ASCII-lowercases `name` into `out` (DNS names compare case-insensitively),
/// returning the written prefix.
pub fn lowercase_into<'b>(name: &[u8], out: &'b mut [u8; MAX_NAME_WIRE]) -> &'b [u8] {
    let n = name.len().min(MAX_NAME_WIRE);
    for (o, b) in out.iter_mut().zip(name.iter()).take(n) {
        *o = b.to_ascii_lowercase();
    }
    out.get(..n).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, opt: Option<&[u8]>) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, u8::from(opt.is_some())];
        p.extend_from_slice(name);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&[0, 1]);
        if let Some(o) = opt {
            p.extend_from_slice(o);
        }
        p
    }

    const WEB: &[u8] = b"\x03Web\x07service\x06consul\x00";

    #[test]
    fn reads_plain_and_edns_queries() {
        let plain = query(WEB, 33, None);
        let v = parse(&plain).unwrap();
        assert_eq!(v.id, 0x1234);
        assert!(v.recursion_desired && v.checking_disabled);
        assert_eq!((v.qname, v.qtype, v.qclass, v.edns_payload), (WEB, 33, 1, None));
        let opt = [0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0];
        let with_opt = query(WEB, 1, Some(&opt));
        let v = parse(&with_opt).unwrap();
        assert_eq!(v.edns_payload, Some(4096));
        let mut buf = [0u8; MAX_NAME_WIRE];
        assert_eq!(lowercase_into(v.qname, &mut buf), b"\x03web\x07service\x06consul\x00");
    }

    #[test]
    fn leaves_everything_else_to_the_full_decoder() {
        let good = query(WEB, 1, None);
        let mut response = good.clone();
        response[2] |= 0x80;
        let mut notify = good.clone();
        notify[2] |= 4 << 3;
        let mut two = good.clone();
        two[5] = 2;
        let mut trailing = good.clone();
        trailing.push(0);
        let pointer = query(b"\x03web\xc0\x0c", 1, None);
        let options = query(WEB, 1, Some(&[0, 0, 41, 0x10, 0, 0, 0, 0, 0, 4, 0, 8, 0, 0]));
        let version = query(WEB, 1, Some(&[0, 0, 41, 0x10, 0, 0, 1, 0, 0, 0, 0]));
        let long = query(&[[63u8].as_slice(), &[b'a'; 63]].concat().repeat(5), 1, None);
        for (what, p) in [
            ("response", response),
            ("opcode", notify),
            ("two questions", two),
            ("trailing", trailing),
            ("pointer", pointer),
            ("options", options),
            ("version", version),
            ("long name", long),
        ] {
            assert!(parse(&p).is_none(), "{what}");
        }
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_none(), "cut at {cut}");
        }
    }
}
