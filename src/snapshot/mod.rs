//! Snapshot archives (`consul snapshot save|restore|inspect`,
//! `/v1/snapshot`): a portable, checksummed file holding the replicated
//! state at one Raft index. Laid out as Consul's are — a gzip-compressed
//! tar with `meta.json`, `state.bin` and `SHA256SUMS` — so operators can
//! look inside with `tar`, though `state.bin` is our own encoding (a
//! Consul snapshot cannot be restored here, nor ours into Consul).
//!
//! Owns the archive format and its verification, and the statistics
//! `inspect` prints. Must not know Raft or HTTP: the server produces and
//! consumes the `state.bin` bytes.

pub mod archive;
pub mod inspect;

pub use archive::{read_archive, read_archive_capped, write_archive, Archive, ArchiveError, SnapshotMeta};
