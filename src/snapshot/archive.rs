//! Writing and reading snapshot archives, with every member's SHA-256
//! checked against `SHA256SUMS` before anything is trusted.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;

/// Size caps while reading an archive: a hostile or corrupt file must not
/// make us allocate without bound.
const MAX_META: u64 = 64 * 1024;
const MAX_STATE: u64 = 1024 * 1024 * 1024;

/// `meta.json`, with Consul's field names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapshotMeta {
    #[serde(rename = "ID")]
    pub id: String,
    pub size: u64,
    pub index: u64,
    pub term: u64,
    pub version: u32,
    /// What `state.bin` holds; lets a future format be told apart.
    #[serde(default)]
    pub format: String,
}

/// The format of `state.bin` this build writes and reads.
pub const STATE_FORMAT: &str = "consul-rs/postcard-state/v1";

/// A verified archive.
#[derive(Debug)]
pub struct Archive {
    pub meta: SnapshotMeta,
    pub state: Vec<u8>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds the archive for `state` taken at `index`/`term`.
pub fn write_archive(index: u64, term: u64, state: &[u8]) -> Result<Vec<u8>, String> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let meta = SnapshotMeta {
        id: format!("{term}-{index}-{now_ms}"),
        size: state.len() as u64,
        index,
        term,
        version: 1,
        format: STATE_FORMAT.to_string(),
    };
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(|e| e.to_string())?;
    let sums = format!(
        "{}  meta.json\n{}  state.bin\n",
        hex(&Sha256::digest(&meta_json)),
        hex(&Sha256::digest(state))
    );
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in
        [("meta.json", meta_json.as_slice()), ("state.bin", state), ("SHA256SUMS", sums.as_bytes())]
    {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime((now_ms / 1000) as u64);
        h.set_cksum();
        tar.append_data(&mut h, name, data).map_err(|e| format!("writing {name}: {e}"))?;
    }
    let gz = tar.into_inner().map_err(|e| format!("finishing archive: {e}"))?;
    gz.finish().map_err(|e| format!("compressing archive: {e}"))
}

fn read_capped(r: impl Read, cap: u64, name: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    r.take(cap + 1).read_to_end(&mut out).map_err(|e| format!("reading {name}: {e}"))?;
    if out.len() as u64 > cap {
        return Err(format!("{name} is larger than the {cap}-byte limit"));
    }
    Ok(out)
}

/// Reads and verifies an archive: every member present, every checksum
/// right, the metadata consistent with the state.
pub fn read_archive(bytes: &[u8]) -> Result<Archive, String> {
    read_archive_capped(bytes, MAX_STATE)
}

/// As `read_archive`, refusing a state.bin over `max_state` bytes while it
/// decompresses: a small archive can expand a thousandfold, so a caller
/// with its own limit (the HTTP restore) must not first inflate up to ours.
pub fn read_archive_capped(bytes: &[u8], max_state: u64) -> Result<Archive, String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let (mut meta, mut state, mut sums) = (None, None, None);
    let entries = tar.entries().map_err(|e| format!("not a snapshot archive: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("not a snapshot archive: {e}"))?;
        let name = entry.path().map_err(|e| format!("bad member name: {e}"))?.to_string_lossy().to_string();
        match name.as_str() {
            "meta.json" => meta = Some(read_capped(entry, MAX_META, "meta.json")?),
            "state.bin" => state = Some(read_capped(entry, max_state.min(MAX_STATE), "state.bin")?),
            "SHA256SUMS" => sums = Some(read_capped(entry, MAX_META, "SHA256SUMS")?),
            other => return Err(format!("unexpected file {other:?} in snapshot archive")),
        }
    }
    // tar stops at its end-of-archive blocks; gzip only checks its CRC and
    // length trailer once the stream is read to the end, so drain it.
    std::io::copy(&mut tar.into_inner(), &mut std::io::sink())
        .map_err(|e| format!("corrupt snapshot archive: {e}"))?;
    let meta_bytes = meta.ok_or("snapshot archive has no meta.json")?;
    let state = state.ok_or("snapshot archive has no state.bin")?;
    let sums = String::from_utf8(sums.ok_or("snapshot archive has no SHA256SUMS")?)
        .map_err(|_| "SHA256SUMS is not text")?;
    for (name, data) in [("meta.json", &meta_bytes), ("state.bin", &state)] {
        let want = sums
            .lines()
            .find_map(|l| l.split_once("  ").filter(|(_, n)| *n == name).map(|(h, _)| h.to_string()))
            .ok_or_else(|| format!("SHA256SUMS has no entry for {name}"))?;
        if want != hex(&Sha256::digest(data)) {
            return Err(format!("checksum mismatch for {name}: the snapshot is corrupt"));
        }
    }
    let meta: SnapshotMeta =
        serde_json::from_slice(&meta_bytes).map_err(|e| format!("bad meta.json: {e}"))?;
    if meta.size != state.len() as u64 {
        return Err(format!("state.bin is {} bytes but meta.json says {}", state.len(), meta.size));
    }
    if !meta.format.is_empty() && meta.format != STATE_FORMAT {
        return Err(format!(
            "unsupported snapshot format {:?} (this agent reads {STATE_FORMAT:?})",
            meta.format
        ));
    }
    Ok(Archive { meta, state })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompression_stops_at_the_callers_cap() {
        // 80 MiB of zeros compresses to well under 1 MiB.
        let state = vec![0u8; 80 << 20];
        let bytes = write_archive(1, 1, &state).unwrap();
        assert!(bytes.len() < 1 << 20, "{}", bytes.len());
        let err = read_archive_capped(&bytes, 8 << 20).unwrap_err();
        assert!(err.contains("state.bin is larger than the 8388608-byte limit"), "{err}");
        assert_eq!(read_archive(&bytes).unwrap().state.len(), 80 << 20);
    }

    #[test]
    fn round_trip_and_tamper_detection() {
        let state = b"some state bytes".repeat(100);
        let bytes = write_archive(42, 7, &state).unwrap();
        let a = read_archive(&bytes).unwrap();
        assert_eq!((a.meta.index, a.meta.term, a.meta.version), (42, 7, 1));
        assert_eq!(a.state, state);
        assert!(a.meta.id.starts_with("7-42-"));

        // Flipping any byte of the compressed stream never yields different
        // content: gzip's CRC, tar's framing or our checksums refuse it.
        // (Deflate has slack bits, e.g. unused Huffman code lengths, so a
        // flip can also decode to the very same bytes; that is harmless.
        // Bytes 4..10 of the gzip header carry no check at all.)
        let mut refused = 0;
        for pos in 10..bytes.len() {
            let mut bad = bytes.clone();
            bad[pos] ^= 0x55;
            match read_archive(&bad) {
                Err(_) => refused += 1,
                Ok(b) => assert_eq!(
                    (b.state, b.meta.index),
                    (state.clone(), 42),
                    "corruption at {pos} slipped through"
                ),
            }
        }
        assert!(
            refused > (bytes.len() - 10) * 9 / 10,
            "only {refused} of {} flips refused",
            bytes.len() - 10
        );
        assert!(read_archive(b"").is_err());
        assert!(read_archive(&bytes[..bytes.len() / 2]).is_err());
    }

    #[test]
    fn a_member_changed_under_a_valid_gzip_is_caught_by_the_sums() {
        let state = b"abc".to_vec();
        let good = write_archive(1, 1, &state).unwrap();
        // Re-pack with a different state.bin but the old SHA256SUMS.
        let mut t = tar::Archive::new(flate2::read::GzDecoder::new(good.as_slice()));
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut out = tar::Builder::new(gz);
        for e in t.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            if name == "state.bin" {
                data = b"xyz".to_vec();
            }
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_cksum();
            out.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        let bad = out.into_inner().unwrap().finish().unwrap();
        let err = read_archive(&bad).unwrap_err();
        assert!(err.contains("checksum mismatch for state.bin"), "{err}");
    }
}
