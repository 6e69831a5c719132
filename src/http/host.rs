//! `/v1/agent/host`: facts about the machine the agent runs on, in the
//! shape Consul's `debug.HostInfo` has (gopsutil's lower-camel field names:
//! `Memory`, `CPU`, `Host`, `Disk`, `CollectionTime`, `Errors`). Read from
//! /proc and statvfs; a part that cannot be read is reported in `Errors`
//! and left empty, as Consul does.

use super::error::HttpResult;
use super::query::Params;
use super::response::json;
use axum::http::Uri;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub async fn handle(uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    json(&params, &collect())
}

/// Everything `/v1/agent/host` shows (also written by `consul debug`).
pub fn collect() -> Value {
    let mut errors: Vec<String> = Vec::new();
    let memory = memory().unwrap_or_else(|e| {
        errors.push(e);
        Value::Null
    });
    let cpu = cpus().unwrap_or_else(|e| {
        errors.push(e);
        Value::Array(Vec::new())
    });
    let host = host().unwrap_or_else(|e| {
        errors.push(e);
        Value::Null
    });
    let disk = disk("/").unwrap_or_else(|e| {
        errors.push(e);
        Value::Null
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    json!({
        "Memory": memory,
        "CPU": cpu,
        "Host": host,
        "Disk": disk,
        "CollectionTime": now,
        "Errors": if errors.is_empty() { Value::Null } else { json!(errors) },
    })
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))
}

/// `/proc/meminfo` in kB → bytes, by key.
fn meminfo() -> Result<BTreeMap<String, u64>, String> {
    let text = read("/proc/meminfo")?;
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let mut parts = v.split_whitespace();
        let Some(n) = parts.next().and_then(|n| n.parse::<u64>().ok()) else { continue };
        let bytes = if parts.next() == Some("kB") { n * 1024 } else { n };
        m.insert(k.trim().to_string(), bytes);
    }
    Ok(m)
}

fn memory() -> Result<Value, String> {
    let mi = meminfo()?;
    let g = |k: &str| mi.get(k).copied().unwrap_or(0);
    let total = g("MemTotal");
    let free = g("MemFree");
    let buffers = g("Buffers");
    let cached = g("Cached") + g("SReclaimable");
    let available = mi.get("MemAvailable").copied().unwrap_or(free + buffers + cached);
    let used = total.saturating_sub(free + buffers + cached);
    let used_percent = if total == 0 { 0.0 } else { used as f64 / total as f64 * 100.0 };
    Ok(json!({
        "total": total,
        "available": available,
        "used": used,
        "usedPercent": used_percent,
        "free": free,
        "active": g("Active"),
        "inactive": g("Inactive"),
        "wired": 0,
        "laundry": 0,
        "buffers": buffers,
        "cached": cached,
        "writeBack": g("Writeback"),
        "dirty": g("Dirty"),
        "writeBackTmp": g("WritebackTmp"),
        "shared": g("Shmem"),
        "slab": g("Slab"),
        "sreclaimable": g("SReclaimable"),
        "sunreclaim": g("SUnreclaim"),
        "pageTables": g("PageTables"),
        "swapCached": g("SwapCached"),
        "commitLimit": g("CommitLimit"),
        "committedAS": g("Committed_AS"),
        "highTotal": g("HighTotal"),
        "highFree": g("HighFree"),
        "lowTotal": g("LowTotal"),
        "lowFree": g("LowFree"),
        "swapTotal": g("SwapTotal"),
        "swapFree": g("SwapFree"),
        "mapped": g("Mapped"),
        "vmallocTotal": g("VmallocTotal"),
        "vmallocUsed": g("VmallocUsed"),
        "vmallocChunk": g("VmallocChunk"),
        "hugePagesTotal": g("HugePages_Total"),
        "hugePagesFree": g("HugePages_Free"),
        "hugePagesRsvd": g("HugePages_Rsvd"),
        "hugePagesSurp": g("HugePages_Surp"),
        "hugePageSize": g("Hugepagesize"),
        "anonHugePages": g("AnonHugePages"),
    }))
}

fn cpus() -> Result<Value, String> {
    let text = read("/proc/cpuinfo")?;
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut f: BTreeMap<&str, &str> = BTreeMap::new();
        for line in block.lines() {
            if let Some((k, v)) = line.split_once(':') {
                f.insert(k.trim(), v.trim());
            }
        }
        let s = |k: &str| f.get(k).copied().unwrap_or("").to_string();
        let n = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let cache_kb = f.get("cache size").and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok());
        out.push(json!({
            "cpu": n("processor"),
            "vendorId": s("vendor_id"),
            "family": s("cpu family"),
            "model": s("model"),
            "stepping": n("stepping"),
            "physicalId": s("physical id"),
            "coreId": s("core id"),
            "cores": 1,
            "modelName": s("model name"),
            "mhz": f.get("cpu MHz").and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0),
            "cacheSize": cache_kb.unwrap_or(0),
            "flags": f.get("flags").map(|v| v.split_whitespace().collect::<Vec<_>>()).unwrap_or_default(),
            "microcode": s("microcode"),
        }));
    }
    Ok(Value::Array(out))
}

fn os_release() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string("/etc/os-release") {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                m.insert(k.to_string(), v.trim_matches('"').to_string());
            }
        }
    }
    m
}

fn host() -> Result<Value, String> {
    let hostname = read("/proc/sys/kernel/hostname")?.trim().to_string();
    let uptime = read("/proc/uptime")?
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0);
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
                .count()
        })
        .unwrap_or(0);
    let os = os_release();
    let kernel = read("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    let host_id = read("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default();
    let mut m = Map::new();
    m.insert("hostname".into(), json!(hostname));
    m.insert("uptime".into(), json!(uptime));
    m.insert("bootTime".into(), json!(now.saturating_sub(uptime)));
    m.insert("procs".into(), json!(procs));
    m.insert("os".into(), json!(std::env::consts::OS));
    m.insert("platform".into(), json!(os.get("ID").cloned().unwrap_or_default()));
    m.insert("platformFamily".into(), json!(os.get("ID_LIKE").cloned().unwrap_or_default()));
    m.insert("platformVersion".into(), json!(os.get("VERSION_ID").cloned().unwrap_or_default()));
    m.insert("kernelVersion".into(), json!(kernel));
    m.insert("kernelArch".into(), json!(std::env::consts::ARCH));
    m.insert("virtualizationSystem".into(), json!(""));
    m.insert("virtualizationRole".into(), json!(""));
    m.insert("hostId".into(), json!(host_id));
    Ok(Value::Object(m))
}

fn disk(path: &str) -> Result<Value, String> {
    let c = std::ffi::CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: `st` is a plain C struct statvfs fills in; `c` is a valid
    // NUL-terminated path for the duration of the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(format!("statvfs {path}: {}", std::io::Error::last_os_error()));
    }
    let frsize = st.f_frsize as u64;
    let total = st.f_blocks as u64 * frsize;
    let free = st.f_bavail as u64 * frsize;
    let used = (st.f_blocks as u64 - st.f_bfree as u64) * frsize;
    let pct = |u: u64, t: u64| if t == 0 { 0.0 } else { u as f64 / t as f64 * 100.0 };
    let inodes_total = st.f_files as u64;
    let inodes_free = st.f_ffree as u64;
    let inodes_used = inodes_total.saturating_sub(inodes_free);
    Ok(json!({
        "path": path,
        "fstype": "",
        "total": total,
        "free": free,
        "used": used,
        "usedPercent": pct(used, used + free),
        "inodesTotal": inodes_total,
        "inodesUsed": inodes_used,
        "inodesFree": inodes_free,
        "inodesUsedPercent": pct(inodes_used, inodes_total),
    }))
}
