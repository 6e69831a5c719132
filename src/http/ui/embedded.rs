//! The UI files compiled into the binary by `build.rs` (from `ui/`).

/// One file of `ui/`, as written and gzip-compressed.
pub struct Asset {
    /// Relative to `ui/`, `/`-separated (`assets/app.js`).
    pub path: &'static str,
    pub raw: &'static [u8],
    pub gzip: &'static [u8],
    /// Hash of `raw` (hex), for the ETag.
    pub hash: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}
