//! Embeds the web UI (`ui/`: plain HTML, CSS and ES modules, no build step
//! of its own) into the binary: every file once as written and once
//! gzip-compressed, with a content hash for its ETag, plus one hash over the
//! whole tree that names the asset directory the UI is served from, so the
//! browser may cache assets for good. Writes `$OUT_DIR/ui_assets.rs`, which
//! `src/http/ui/embedded.rs` includes.

use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    order_startup_code();
    let root = PathBuf::from(env_var("CARGO_MANIFEST_DIR")).join("ui");
    let out = PathBuf::from(env_var("OUT_DIR"));
    // A directory here makes cargo rescan the whole tree for changes.
    println!("cargo:rerun-if-changed=ui");
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();

    let gz_dir = out.join("ui-gz");
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    let mut tree_hash = Fnv::new();
    for rel in &files {
        let src = root.join(rel);
        let data = std::fs::read(&src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
        let gz_path = gz_dir.join(format!("{rel}.gz"));
        if let Some(parent) = gz_path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&data).unwrap_or_else(|e| panic!("compressing {rel}: {e}"));
        let gz = enc.finish().unwrap_or_else(|e| panic!("compressing {rel}: {e}"));
        std::fs::write(&gz_path, &gz).unwrap_or_else(|e| panic!("writing {}: {e}", gz_path.display()));

        let mut h = Fnv::new();
        h.write(&data);
        let hash = format!("{:016x}", h.finish());
        tree_hash.write(rel.as_bytes());
        tree_hash.write(hash.as_bytes());
        table.push_str(&format!(
            "    Asset {{ path: {rel:?}, raw: include_bytes!({src:?}), gzip: include_bytes!({gz:?}), hash: {hash:?} }},\n",
            src = src.display().to_string(),
            gz = gz_path.display().to_string(),
        ));
    }
    table.push_str("];\n");
    table.push_str(&format!("pub const TREE_HASH: &str = \"{:012x}\";\n", tree_hash.finish() >> 16));
    let dest = out.join("ui_assets.rs");
    std::fs::write(&dest, table).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
}

/// Links the functions an agent runs while it starts and idles next to each
/// other at the front of `.text` (list: `layout/startup-symbols.txt`, how it
/// is recorded: `layout/README.md`). The kernel maps an executable's pages
/// into a process in 64 KB windows around each page it executes, so an idle
/// agent's resident size follows how many windows its code is spread over:
/// about 2 MB of functions scattered over all of `.text` cost 13–18 MB,
/// packed they cost a little more than their size.
///
/// Only for release builds on x86_64 Linux, whose default linker (rustc's
/// lld, since Rust 1.90) takes the list; a build that picks its own linker
/// is left alone, as GNU ld does not know the option. Names the binary no
/// longer has are skipped silently by lld, so a stale list degrades to the
/// default layout and never fails the build (`layout/check.sh` tells how
/// stale it is).
fn order_startup_code() {
    let list = PathBuf::from(env_var("CARGO_MANIFEST_DIR")).join("layout/startup-symbols.txt");
    println!("cargo:rerun-if-changed=layout/startup-symbols.txt");
    for var in ["RUSTC_LINKER", "CARGO_ENCODED_RUSTFLAGS"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let target_is = |var: &str, want: &str| std::env::var(var).is_ok_and(|v| v == want);
    let lld_default = target_is("CARGO_CFG_TARGET_ARCH", "x86_64")
        && target_is("CARGO_CFG_TARGET_OS", "linux")
        && target_is("CARGO_CFG_TARGET_ENV", "gnu");
    let own_linker = std::env::var_os("RUSTC_LINKER").is_some()
        || std::env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|f| f.contains("link"));
    if !target_is("PROFILE", "release") || !lld_default || own_linker || !list.is_file() {
        return;
    }
    println!("cargo:rustc-link-arg-bin=consul=-Wl,--symbol-ordering-file={}", list.display());
    println!("cargo:rustc-link-arg-bin=consul=-Wl,--no-warn-symbol-ordering");
}

fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
}

/// Every regular file under `dir`, as a `/`-separated path relative to
/// `root`; dot files (editor droppings) are left out.
fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.is_file() {
            let rel = path.strip_prefix(root).unwrap_or_else(|_| panic!("{} under ui/", path.display()));
            let parts: Vec<String> =
                rel.components().map(|c| c.as_os_str().to_string_lossy().to_string()).collect();
            out.push(parts.join("/"));
        }
    }
}

/// FNV-1a, 64 bits: a change detector for cache validation, not a security
/// hash (and no build dependency for it).
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
