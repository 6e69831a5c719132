//! Gives back, once the agent has started, the memory only start-up needed.
//!
//! An idle client agent's anonymous memory is small (a few MB); most of its
//! resident set is pages of the executable's code and read-only data that
//! start-up touched once: argument and config parsing, HCL, the banner,
//! listener set-up. The kernel maps file pages in 64 KiB (or larger folio)
//! blocks around each fault, so code used once at start keeps a large,
//! scattered part of the binary resident for the life of the process. After
//! start-up we drop those clean file-backed mappings from our page tables
//! (`MADV_DONTNEED`); what the running agent executes is mapped again from
//! the page cache on its next use, so only the code of the steady state stays
//! resident. Freed heap left over from start-up goes back with `malloc_trim`.
//!
//! Only mappings that can be dropped without losing anything qualify:
//! file-backed, not writable, and holding no private (copy-on-write) pages —
//! the relocated read-only data (RELRO) is written by the dynamic linker and
//! is therefore skipped. Outside Linux every call does nothing.
//!
//! Owns: reading our own memory map and the `madvise`/`malloc_trim` calls.
//! Must not decide when to run: the daemon calls `release_startup_pages`.

/// What one release did, for the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Mappings dropped from the page tables.
    pub mappings: usize,
    /// Resident kB those mappings held before.
    pub resident_kb: u64,
    /// Mappings `madvise` refused (left as they were).
    pub refused: usize,
}

/// One mapping of `/proc/self/smaps` as far as the choice needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    path: String,
    rss_kb: u64,
    anonymous_kb: u64,
}

/// Parses `/proc/<pid>/smaps` text: a header line per mapping
/// (`start-end perms offset dev inode [path]`) followed by `Key: value kB`
/// lines. Lines it does not understand are skipped.
fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                let perms = fields.next().unwrap_or("");
                // offset, device, inode, then the path (which may hold spaces).
                let path = fields.skip(3).collect::<Vec<_>>().join(" ");
                out.push(Mapping {
                    start,
                    end,
                    writable: perms.contains('w'),
                    path,
                    rss_kb: 0,
                    anonymous_kb: 0,
                });
                continue;
            }
        }
        let Some(m) = out.last_mut() else { continue };
        let kb = || fields.clone().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match first {
            "Rss:" => m.rss_kb = kb(),
            "Anonymous:" => m.anonymous_kb = kb(),
            _ => {}
        }
    }
    out
}

/// Whether dropping `m`'s page-table entries loses nothing: a file's pages
/// never written by us (re-read from the page cache on the next access), and
/// only the executable's or a shared library's, not files mapped as data.
fn droppable(m: &Mapping, exe: &str) -> bool {
    !m.writable
        && m.anonymous_kb == 0
        && m.rss_kb > 0
        && m.path.starts_with('/')
        && (m.path == exe || is_shared_library(&m.path))
}

/// `libc.so.6`, `libm.so`: a shared object, not `x.sock` or `.solution`.
fn is_shared_library(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.ends_with(".so") || name.contains(".so.")
}

/// Drops the start-up pages (see the module comment). Safe to call at any
/// time and more than once; each call costs one read of `/proc/self/smaps`.
#[cfg(target_os = "linux")]
pub fn release_startup_pages() -> Released {
    let mut r = Released::default();
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps") else { return r };
    let exe = std::fs::read_link("/proc/self/exe").map(|p| p.display().to_string()).unwrap_or_default();
    for m in parse_smaps(&text).iter().filter(|m| droppable(m, &exe)) {
        // SAFETY: the range is a whole mapping of ours that is read-only and
        // holds no private pages (checked above), so MADV_DONTNEED only
        // unmaps clean page-cache pages; any later access faults them back
        // in with the same contents. No Rust object lives in such a mapping.
        let rc = unsafe { libc::madvise(m.start as *mut libc::c_void, m.end - m.start, libc::MADV_DONTNEED) };
        if rc == 0 {
            r.mappings += 1;
            r.resident_kb += m.rss_kb;
        } else {
            r.refused += 1;
        }
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    r
}

#[cfg(not(target_os = "linux"))]
pub fn release_startup_pages() -> Released {
    Released::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0e5e7000-55d0ebb3000 r--p 00000000 fd:01 123 /opt/consul/bin/consul
Size:               5936 kB
Rss:                1700 kB
Anonymous:             0 kB
55d0ebb3000-55d10207000 r-xp 005cb000 fd:01 123 /opt/consul/bin/consul
Rss:               13252 kB
Anonymous:             0 kB
55d10207000-55d1028c000 r--p 01c1e000 fd:01 123 /opt/consul/bin/consul
Rss:                 532 kB
Anonymous:           532 kB
55d1028c000-55d10295000 rw-p 01ca2000 fd:01 123 /opt/consul/bin/consul
Rss:                  36 kB
Anonymous:            36 kB
55d220bf000-55d22255000 rw-p 00000000 00:00 0 [heap]
Rss:                1564 kB
Anonymous:          1564 kB
7f1bfa1fd000-7f1bfa353000 r-xp 00026000 fd:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                1028 kB
Anonymous:             0 kB
7f1bfa400000-7f1bfa500000 r--p 00000000 fd:01 99 /data/serf/local.snapshot
Rss:                  40 kB
Anonymous:             0 kB
7f1bfa600000-7f1bfa601000 r-xp 00000000 00:00 0 [vdso]
Rss:                   4 kB
Anonymous:             0 kB
";

    #[test]
    fn parses_headers_and_sizes() {
        let maps = parse_smaps(SMAPS);
        assert_eq!(maps.len(), 8);
        assert_eq!(maps[1].start, 0x55d0ebb3000);
        assert_eq!(maps[1].end, 0x55d10207000);
        assert_eq!(maps[1].rss_kb, 13252);
        assert!(!maps[1].writable);
        assert_eq!(maps[2].anonymous_kb, 532);
        assert!(maps[3].writable);
        assert_eq!(maps[4].path, "[heap]");
        assert_eq!(maps[5].path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
    }

    /// Code and read-only data of the binary and its libraries qualify;
    /// relocated read-only data (private pages), writable data, the heap,
    /// data files and the vdso never do.
    #[test]
    fn only_clean_code_and_rodata_qualify() {
        let exe = "/opt/consul/bin/consul";
        let picked: Vec<usize> = parse_smaps(SMAPS)
            .iter()
            .enumerate()
            .filter(|(_, m)| droppable(m, exe))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(picked, vec![0, 1, 5]);
        assert!(is_shared_library("/lib/libm.so"));
        assert!(!is_shared_library("/run/consul.sock"));
    }

    /// The real call on this test process: it must leave the process
    /// working (code mapped back on use) and drop something resident.
    #[cfg(target_os = "linux")]
    #[test]
    fn release_keeps_the_process_working() {
        let r = release_startup_pages();
        assert_eq!(r.refused, 0);
        assert!(r.mappings > 0, "{r:?}");
        assert!(r.resident_kb > 0, "{r:?}");
        // Code and constants of this process still work after the drop.
        let v: Vec<String> = (0..100).map(|i| format!("{i:x}")).collect();
        assert_eq!(v[255 % 100], "37");
    }
}
