//! Bounded capture of check output and the truncation notes Consul writes.
//! Owns byte buffers only; knows nothing about processes or sockets.
//!
//! Consul keeps the *last* bytes of script and HTTP output (a circular
//! buffer) and, for scripts, prefixes `Captured <kept> of <total> bytes\n...\n`.
//! TTL updates keep the *first* bytes and append
//! ` ... (captured <kept> of <total> bytes)`. Both are reproduced here.

use std::collections::VecDeque;

/// Keeps the last `cap` bytes written and counts all of them, so memory
/// stays bounded whatever a check prints.
#[derive(Debug)]
pub(crate) struct TailBuffer {
    cap: usize,
    buf: VecDeque<u8>,
    total: u64,
}

impl TailBuffer {
    pub(crate) fn new(cap: usize) -> TailBuffer {
        TailBuffer { cap, buf: VecDeque::with_capacity(cap.min(64 * 1024)), total: 0 }
    }

    pub(crate) fn write(&mut self, data: &[u8]) {
        self.total = self.total.saturating_add(data.len() as u64);
        // Only the last `cap` bytes of this write can survive.
        let data = &data[data.len().saturating_sub(self.cap)..];
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow.min(self.buf.len()));
        self.buf.extend(data);
    }

    /// Bytes seen in total, kept or not.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn truncated(&self) -> bool {
        self.total > self.buf.len() as u64
    }

    /// The kept bytes as text (invalid UTF-8 replaced; a multi-byte
    /// character cut in half at the start is dropped).
    pub(crate) fn text(&self) -> String {
        let (a, b) = self.buf.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        let start = if self.truncated() { skip_continuation_bytes(&bytes) } else { 0 };
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// Script output as Consul reports it: the kept tail, prefixed with a
    /// note when something was dropped.
    pub(crate) fn script_output(&self) -> String {
        let text = self.text();
        if self.truncated() {
            format!("Captured {} of {} bytes\n...\n{}", self.buf.len(), self.total, text)
        } else {
            text
        }
    }
}

/// A cut in the middle of a UTF-8 sequence leaves up to three continuation
/// bytes at the front; skip them rather than print a replacement character.
fn skip_continuation_bytes(bytes: &[u8]) -> usize {
    bytes.iter().take(3).take_while(|b| (**b & 0xC0) == 0x80).count()
}

/// TTL output as Consul stores it: at most `max` bytes (cut on a character
/// boundary), with a note when cut.
pub(crate) fn truncate_head(output: String, max: usize) -> String {
    let total = output.len();
    if total <= max {
        return output;
    }
    let mut end = max;
    while end > 0 && !output.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ... (captured {} of {} bytes)", &output[..end], end, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_buffer_keeps_last_bytes_and_counts_all() {
        let mut b = TailBuffer::new(4);
        b.write(b"ab");
        assert_eq!(b.script_output(), "ab");
        b.write(b"cdef");
        assert_eq!(b.total(), 6);
        assert!(b.truncated());
        assert_eq!(b.text(), "cdef");
        b.write(b"g");
        assert_eq!(b.text(), "defg");
        assert_eq!(b.script_output(), "Captured 4 of 7 bytes\n...\ndefg");
        b.write(b"0123456789");
        assert_eq!(b.text(), "6789");
    }

    #[test]
    fn tail_buffer_drops_half_characters_and_replaces_binary() {
        let mut b = TailBuffer::new(3);
        b.write("xé€".as_bytes()); // x(1) é(2) €(3): the tail is exactly "€"
        assert_eq!(b.text(), "€");
        let mut b = TailBuffer::new(4);
        b.write("é€".as_bytes()); // 5 bytes: tail starts inside "é"
        assert_eq!(b.text(), "€");
        let mut b = TailBuffer::new(16);
        b.write(&[0xff, 0xfe, b'o', b'k']);
        assert_eq!(b.text(), "\u{fffd}\u{fffd}ok");
    }

    #[test]
    fn tail_buffer_with_zero_cap_only_counts() {
        let mut b = TailBuffer::new(0);
        b.write(b"abc");
        assert_eq!(b.script_output(), "Captured 0 of 3 bytes\n...\n");
    }

    #[test]
    fn truncate_head_cuts_on_char_boundary() {
        assert_eq!(truncate_head("hello".into(), 5), "hello");
        assert_eq!(truncate_head("hello".into(), 3), "hel ... (captured 3 of 5 bytes)");
        assert_eq!(truncate_head("aé".into(), 2), "a ... (captured 1 of 3 bytes)");
    }
}
