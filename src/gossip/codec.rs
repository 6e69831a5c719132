//! Byte-level framing shared by the SWIM core, the Serf layer and the
//! transport: the plaintext packet header, compound packets (many messages
//! in one UDP datagram), unsigned LEB128 varints and the postcard helpers.
//!
//! Owns: the layout of a plaintext packet and of a plaintext stream payload.
//! Must not know about sockets or encryption (see `crypto`): everything here
//! works on byte slices and never panics on hostile input.
//!
//! Plaintext packet:  `b'G' | version (1) | (varint len | message)*`
//! Plaintext stream payload: `b'G' | version (1) | postcard(StreamMsg)`

use serde::de::DeserializeOwned;
use serde::Serialize;

/// First byte of every plaintext packet and stream payload.
pub const PLAINTEXT_MAGIC: u8 = b'G';
/// Wire version of our own gossip protocol (not memberlist's).
pub const WIRE_VERSION: u8 = 1;
/// Bytes taken by the packet header.
pub const HEADER_LEN: usize = 2;

/// Why bytes from the network could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("empty message")]
    Empty,
    #[error("bad magic byte {0:#04x}")]
    BadMagic(u8),
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u8),
    #[error("truncated message")]
    Truncated,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("message too large ({size} bytes, limit {limit})")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid field: {0}")]
    Invalid(String),
}

/// Number of bytes `v` takes as a varint.
pub fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_varint(buf: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        buf.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Reads a varint from the front of `bytes`; returns the value and the
/// number of bytes it took. At most 4 bytes (values < 2^28) are accepted:
/// nothing we frame is that large.
pub fn get_varint(bytes: &[u8]) -> Result<(usize, usize), CodecError> {
    let mut v: usize = 0;
    for (i, b) in bytes.iter().enumerate().take(4) {
        v |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    if bytes.len() < 4 {
        Err(CodecError::Truncated)
    } else {
        Err(CodecError::Malformed("varint longer than 4 bytes".into()))
    }
}

/// Checks the two-byte header of a plaintext packet or stream payload and
/// returns the rest.
pub fn strip_header(bytes: &[u8]) -> Result<&[u8], CodecError> {
    match bytes {
        [] => Err(CodecError::Empty),
        [m, ..] if *m != PLAINTEXT_MAGIC => Err(CodecError::BadMagic(*m)),
        [_] => Err(CodecError::Truncated),
        [_, v, ..] if *v != WIRE_VERSION => Err(CodecError::UnsupportedVersion(*v)),
        [_, _, rest @ ..] => Ok(rest),
    }
}

/// Builds one compound UDP packet within a byte budget.
pub struct PacketBuilder {
    buf: Vec<u8>,
    budget: usize,
    count: usize,
}

impl PacketBuilder {
    pub fn new(budget: usize) -> Self {
        let mut buf = Vec::with_capacity(budget.min(2048));
        buf.push(PLAINTEXT_MAGIC);
        buf.push(WIRE_VERSION);
        PacketBuilder { buf, budget, count: 0 }
    }

    /// Bytes still free in this packet.
    pub fn free(&self) -> usize {
        self.budget.saturating_sub(self.buf.len())
    }

    /// Bytes a message of `len` bytes takes inside a packet.
    pub fn framed_len(len: usize) -> usize {
        varint_len(len) + len
    }

    /// Appends a message if it fits; returns whether it did.
    pub fn try_push(&mut self, msg: &[u8]) -> bool {
        if Self::framed_len(msg.len()) > self.free() {
            return false;
        }
        put_varint(&mut self.buf, msg.len());
        self.buf.extend_from_slice(msg);
        self.count += 1;
        true
    }

    /// Appends a message even past the budget (the first message of a
    /// packet must always go out; the caller checked it is small enough).
    pub fn push_unchecked(&mut self, msg: &[u8]) {
        put_varint(&mut self.buf, msg.len());
        self.buf.extend_from_slice(msg);
        self.count += 1;
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Splits a plaintext compound packet into its messages.
pub fn split_packet(bytes: &[u8]) -> Result<Vec<&[u8]>, CodecError> {
    let mut rest = strip_header(bytes)?;
    let mut out = Vec::new();
    if rest.is_empty() {
        return Err(CodecError::Empty);
    }
    while !rest.is_empty() {
        let (len, used) = get_varint(rest)?;
        let body = rest.get(used..used + len).ok_or(CodecError::Truncated)?;
        out.push(body);
        rest = rest.get(used + len..).unwrap_or(&[]);
    }
    Ok(out)
}

/// postcard-encodes a value. Our own types always encode; a failure would be
/// a programming error, so it yields an empty vector that the receiver
/// rejects rather than a panic.
pub fn to_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    match postcard::to_stdvec(v) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(target: "agent.server.memberlist", error = %e, "failed to encode a gossip message");
            Vec::new()
        }
    }
}

/// postcard-decodes a value, rejecting trailing bytes.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(CodecError::Malformed(format!("{} trailing bytes", rest.len()))),
        Err(postcard::Error::DeserializeUnexpectedEnd) => Err(CodecError::Truncated),
        Err(e) => Err(CodecError::Malformed(e.to_string())),
    }
}

/// Encodes a stream payload: header then one postcard value.
pub fn encode_stream<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![PLAINTEXT_MAGIC, WIRE_VERSION];
    out.extend_from_slice(&to_bytes(v));
    out
}

/// Decodes a stream payload written by [`encode_stream`].
pub fn decode_stream<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    from_bytes(strip_header(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0usize, 1, 127, 128, 300, 16_383, 16_384, 1 << 20, (1 << 28) - 1] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            assert_eq!(get_varint(&b), Ok((v, b.len())));
        }
        assert_eq!(get_varint(&[0x80]), Err(CodecError::Truncated));
        assert!(get_varint(&[0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
    }

    #[test]
    fn compound_packets_respect_budget_and_split_back() {
        let mut p = PacketBuilder::new(20);
        assert!(p.try_push(b"hello"));
        assert!(p.try_push(b"world"));
        assert!(!p.try_push(b"too long for the rest"));
        let bytes = p.finish();
        assert!(bytes.len() <= 20);
        assert_eq!(split_packet(&bytes).unwrap(), vec![&b"hello"[..], &b"world"[..]]);
    }

    #[test]
    fn garbage_packets_are_errors_not_panics() {
        assert_eq!(split_packet(&[]), Err(CodecError::Empty));
        assert_eq!(split_packet(&[1, 2, 3]), Err(CodecError::BadMagic(1)));
        assert_eq!(split_packet(&[b'G', 9]), Err(CodecError::UnsupportedVersion(9)));
        assert_eq!(split_packet(&[b'G', 1, 10, 1, 2]), Err(CodecError::Truncated));
        // Every prefix of a valid packet is either valid or an error.
        let mut p = PacketBuilder::new(100);
        p.try_push(&[7; 40]);
        p.try_push(&[8; 3]);
        let bytes = p.finish();
        for i in 0..bytes.len() {
            let _ = split_packet(&bytes[..i]);
        }
    }
}
