//! Framing on the server RPC port (8300). Every connection opens with a
//! preamble (`CRPC` + protocol version byte); then both sides exchange
//! frames `[len u32][id u64][kind u8][payload]`, little endian, where the
//! payload is a postcard-encoded `WireCall` or `WireReply`. Frames above the
//! size limit are refused, so a peer can never make us allocate more than
//! that. This is the only file that knows the byte layout.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const MAGIC: &[u8; 4] = b"CRPC";
pub const VERSION: u8 = 4;
/// The largest frame either side accepts (snapshot chunks and big log
/// batches fit well below it).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;
const HEADER: usize = 4 + 8 + 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Request = 0,
    Response = 1,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Request),
            1 => Some(Kind::Response),
            _ => None,
        }
    }
}

/// One decoded frame.
#[derive(Debug)]
pub struct Frame {
    pub id: u64,
    pub kind: Kind,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("not a consul-rs RPC connection (bad preamble)")]
    BadPreamble,
    #[error("unsupported RPC protocol version {0} (this server speaks {VERSION})")]
    BadVersion(u8),
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("unknown frame kind {0}")]
    BadKind(u8),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub async fn write_preamble<W: AsyncWrite + Unpin>(w: &mut W) -> Result<(), FrameError> {
    let mut buf = [0u8; 5];
    buf[..4].copy_from_slice(MAGIC);
    buf[4] = VERSION;
    w.write_all(&buf).await?;
    Ok(())
}

pub async fn read_preamble<R: AsyncRead + Unpin>(r: &mut R) -> Result<(), FrameError> {
    let mut buf = [0u8; 5];
    r.read_exact(&mut buf).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Closed,
        _ => FrameError::Io(e),
    })?;
    if &buf[..4] != MAGIC {
        return Err(FrameError::BadPreamble);
    }
    if buf[4] != VERSION {
        return Err(FrameError::BadVersion(buf[4]));
    }
    Ok(())
}

/// Connections read frames through a buffer of this size: a typical frame
/// (header and a few hundred bytes of payload) then costs one `recv`
/// instead of two, and frames queued behind it arrive in the same call.
/// A larger frame's payload bypasses the buffer.
pub const READ_BUFFER: usize = 4096;

/// Encodes a frame into bytes ready to write.
pub fn encode(id: u64, kind: Kind, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(payload.len()));
    }
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(payload);
    Ok(out)
}

/// Reads one whole frame.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Frame, FrameError> {
    let mut header = [0u8; HEADER];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut idb = [0u8; 8];
    idb.copy_from_slice(&header[4..12]);
    let kind = Kind::from_byte(header[12]).ok_or(FrameError::BadKind(header[12]))?;
    // Grow the buffer as bytes arrive: a peer that announces a large frame
    // must send it before we hold that much memory (a header alone used to
    // pin MAX_FRAME bytes per connection).
    let mut payload = Vec::with_capacity(len.min(64 * 1024));
    (&mut *r).take(len as u64).read_to_end(&mut payload).await?;
    if payload.len() != len {
        return Err(FrameError::Closed);
    }
    Ok(Frame { id: u64::from_le_bytes(idb), kind, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn roundtrip_and_limits() {
        let bytes = encode(7, Kind::Response, b"hello").unwrap();
        let mut cur = std::io::Cursor::new(bytes);
        let f = read_frame(&mut cur).await.unwrap();
        assert_eq!((f.id, f.kind, f.payload.as_slice()), (7, Kind::Response, &b"hello"[..]));

        let mut huge = Vec::new();
        huge.extend_from_slice(&(u32::MAX).to_le_bytes());
        huge.extend_from_slice(&[0u8; 9]);
        let err = read_frame(&mut std::io::Cursor::new(huge)).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(_)));

        let mut bad = encode(1, Kind::Request, b"x").unwrap();
        bad[12] = 9;
        assert!(matches!(
            read_frame(&mut std::io::Cursor::new(bad)).await.unwrap_err(),
            FrameError::BadKind(9)
        ));

        let mut cur = std::io::Cursor::new(b"GET / HTTP/1.1\r\n".to_vec());
        assert!(matches!(read_preamble(&mut cur).await.unwrap_err(), FrameError::BadPreamble));
    }
}
