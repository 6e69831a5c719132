//! Writing and reading snapshot archives, with every member's SHA-256
//! checked against `SHA256SUMS` before anything is trusted.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{self, Read};

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

/// Why an archive could not be written or was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    EncodeMeta(#[source] serde_json::Error),
    #[error("writing {name}: {source}")]
    Write { name: &'static str, source: io::Error },
    #[error("finishing archive: {0}")]
    Finish(#[source] io::Error),
    #[error("compressing archive: {0}")]
    Compress(#[source] io::Error),
    #[error("reading {name}: {source}")]
    Read { name: &'static str, source: io::Error },
    /// A member is over its cap; for `state.bin` that may be the caller's
    /// (the HTTP restore answers 413 for it).
    #[error("{name} is larger than the {cap}-byte limit")]
    TooLarge { name: &'static str, cap: u64 },
    #[error("not a snapshot archive: {0}")]
    NotAnArchive(#[source] io::Error),
    #[error("bad member name: {0}")]
    BadMemberName(#[source] io::Error),
    #[error("unexpected file {0:?} in snapshot archive")]
    UnexpectedFile(String),
    #[error("corrupt snapshot archive: {0}")]
    Corrupt(#[source] io::Error),
    #[error("snapshot archive has no {0}")]
    Missing(&'static str),
    #[error("SHA256SUMS is not text")]
    SumsNotText,
    #[error("SHA256SUMS has no entry for {0}")]
    NoSum(&'static str),
    #[error("checksum mismatch for {0}: the snapshot is corrupt")]
    ChecksumMismatch(&'static str),
    #[error("bad meta.json: {0}")]
    BadMeta(#[source] serde_json::Error),
    #[error("state.bin is {actual} bytes but meta.json says {declared}")]
    SizeMismatch { actual: usize, declared: u64 },
    #[error("unsupported snapshot format {found:?} (this agent reads {:?})", STATE_FORMAT)]
    UnsupportedFormat { found: String },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds the archive for `state` taken at `index`/`term`.
pub fn write_archive(index: u64, term: u64, state: &[u8]) -> Result<Vec<u8>, ArchiveError> {
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
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(ArchiveError::EncodeMeta)?;
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
        tar.append_data(&mut h, name, data).map_err(|source| ArchiveError::Write { name, source })?;
    }
    let gz = tar.into_inner().map_err(ArchiveError::Finish)?;
    gz.finish().map_err(ArchiveError::Compress)
}

fn read_capped(r: impl Read, cap: u64, name: &'static str) -> Result<Vec<u8>, ArchiveError> {
    let mut out = Vec::new();
    r.take(cap + 1).read_to_end(&mut out).map_err(|source| ArchiveError::Read { name, source })?;
    if out.len() as u64 > cap {
        return Err(ArchiveError::TooLarge { name, cap });
    }
    Ok(out)
}

/// Reads and verifies an archive: every member present, every checksum
/// right, the metadata consistent with the state.
pub fn read_archive(bytes: &[u8]) -> Result<Archive, ArchiveError> {
    read_archive_capped(bytes, MAX_STATE)
}

/// As `read_archive`, refusing a state.bin over `max_state` bytes while it
/// decompresses: a small archive can expand a thousandfold, so a caller
/// with its own limit (the HTTP restore) must not first inflate up to ours.
pub fn read_archive_capped(bytes: &[u8], max_state: u64) -> Result<Archive, ArchiveError> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let (mut meta, mut state, mut sums) = (None, None, None);
    let entries = tar.entries().map_err(ArchiveError::NotAnArchive)?;
    for entry in entries {
        let entry = entry.map_err(ArchiveError::NotAnArchive)?;
        let name = entry.path().map_err(ArchiveError::BadMemberName)?.to_string_lossy().to_string();
        match name.as_str() {
            "meta.json" => meta = Some(read_capped(entry, MAX_META, "meta.json")?),
            "state.bin" => state = Some(read_capped(entry, max_state.min(MAX_STATE), "state.bin")?),
            "SHA256SUMS" => sums = Some(read_capped(entry, MAX_META, "SHA256SUMS")?),
            other => return Err(ArchiveError::UnexpectedFile(other.to_string())),
        }
    }
    // tar stops at its end-of-archive blocks; gzip only checks its CRC and
    // length trailer once the stream is read to the end, so drain it.
    std::io::copy(&mut tar.into_inner(), &mut std::io::sink()).map_err(ArchiveError::Corrupt)?;
    let meta_bytes = meta.ok_or(ArchiveError::Missing("meta.json"))?;
    let state = state.ok_or(ArchiveError::Missing("state.bin"))?;
    let sums = String::from_utf8(sums.ok_or(ArchiveError::Missing("SHA256SUMS"))?)
        .map_err(|_| ArchiveError::SumsNotText)?;
    for (name, data) in [("meta.json", &meta_bytes), ("state.bin", &state)] {
        let want = sums
            .lines()
            .find_map(|l| l.split_once("  ").filter(|(_, n)| *n == name).map(|(h, _)| h.to_string()))
            .ok_or(ArchiveError::NoSum(name))?;
        if want != hex(&Sha256::digest(data)) {
            return Err(ArchiveError::ChecksumMismatch(name));
        }
    }
    let meta: SnapshotMeta = serde_json::from_slice(&meta_bytes).map_err(ArchiveError::BadMeta)?;
    if meta.size != state.len() as u64 {
        return Err(ArchiveError::SizeMismatch { actual: state.len(), declared: meta.size });
    }
    if !meta.format.is_empty() && meta.format != STATE_FORMAT {
        return Err(ArchiveError::UnsupportedFormat { found: meta.format });
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
        assert!(matches!(err, ArchiveError::TooLarge { name: "state.bin", cap: 8388608 }), "{err}");
        assert!(err.to_string().contains("state.bin is larger than the 8388608-byte limit"), "{err}");
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
        assert!(err.to_string().contains("checksum mismatch for state.bin"), "{err}");
    }

    /// `consul snapshot` prints these after "Error verifying snapshot file: ".
    #[test]
    fn messages() {
        let text = |e: ArchiveError| e.to_string();
        assert_eq!(text(ArchiveError::Missing("meta.json")), "snapshot archive has no meta.json");
        assert_eq!(text(ArchiveError::SumsNotText), "SHA256SUMS is not text");
        assert_eq!(text(ArchiveError::NoSum("state.bin")), "SHA256SUMS has no entry for state.bin");
        assert_eq!(
            text(ArchiveError::ChecksumMismatch("meta.json")),
            "checksum mismatch for meta.json: the snapshot is corrupt"
        );
        assert_eq!(
            text(ArchiveError::UnexpectedFile("x/y".into())),
            "unexpected file \"x/y\" in snapshot archive"
        );
        assert_eq!(
            text(ArchiveError::SizeMismatch { actual: 3, declared: 4 }),
            "state.bin is 3 bytes but meta.json says 4"
        );
        assert_eq!(
            text(ArchiveError::UnsupportedFormat { found: "v9".into() }),
            "unsupported snapshot format \"v9\" (this agent reads \"consul-rs/postcard-state/v1\")"
        );
        assert_eq!(
            text(ArchiveError::TooLarge { name: "meta.json", cap: 65536 }),
            "meta.json is larger than the 65536-byte limit"
        );
        let io = || io::Error::other("boom");
        assert_eq!(text(ArchiveError::Read { name: "state.bin", source: io() }), "reading state.bin: boom");
        assert_eq!(
            text(ArchiveError::Write { name: "SHA256SUMS", source: io() }),
            "writing SHA256SUMS: boom"
        );
        assert_eq!(text(ArchiveError::NotAnArchive(io())), "not a snapshot archive: boom");
        assert_eq!(text(ArchiveError::Corrupt(io())), "corrupt snapshot archive: boom");
        assert_eq!(text(ArchiveError::BadMemberName(io())), "bad member name: boom");
        assert_eq!(text(ArchiveError::Finish(io())), "finishing archive: boom");
        assert_eq!(text(ArchiveError::Compress(io())), "compressing archive: boom");
        assert!(text(read_archive(b"").unwrap_err()).starts_with("not a snapshot archive: "));
    }
}
