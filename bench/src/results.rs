//! What a benchmark produces: a `Section` (text about the method, the
//! commands that started each system, tables, named metrics for the
//! targets, plots) saved as JSON so the report can be rebuilt from any
//! mix of runs without re-measuring.
//!
//! Owns: the result format and number formatting. Must not measure.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Section {
    pub id: String,
    pub title: String,
    /// Paragraphs describing how the numbers were taken.
    pub about: Vec<String>,
    /// Command lines of the processes started (with `$WORK` for the scratch dir).
    pub commands: Vec<String>,
    pub tables: Vec<Table>,
    /// Observations computed from the run (anomalies, checks).
    pub notes: Vec<String>,
    /// Named values the targets table reads.
    pub metrics: BTreeMap<String, f64>,
    pub plots: Vec<Plot>,
    /// Preformatted blocks (title, text), e.g. `free -h` output.
    pub pre: Vec<(String, String)>,
    pub quick: bool,
    /// UTC start time and wall seconds.
    pub started: String,
    pub wall_secs: f64,
    /// /proc/loadavg when the benchmark started and ended: how busy the
    /// machine was besides us.
    pub load_before: String,
    pub load_after: String,
    /// Machine-wide CPU use (percent of all cores) over one second just
    /// before the benchmark started, when none of its processes ran yet:
    /// other work on the machine.
    #[serde(default)]
    pub busy_before_pct: Option<f64>,
    /// The commit of the consul-rs binary this section measured (the page
    /// mixes sections from different runs; unknown for older results).
    #[serde(default)]
    pub consul_commit: Option<String>,
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Serialize, Deserialize, Clone, Default)]
pub struct Plot {
    pub title: String,
    /// File names inside the assets directory.
    pub csv: String,
    pub png: String,
    pub xlabel: String,
    pub ylabel: String,
    pub logx: bool,
}

impl Table {
    pub fn new(title: &str, header: &[&str]) -> Table {
        Table {
            title: title.into(),
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

impl Section {
    pub fn new(id: &str, title: &str) -> Section {
        Section { id: id.into(), title: title.into(), ..Default::default() }
    }

    pub fn metric(&mut self, name: impl Into<String>, v: f64) {
        if v.is_finite() {
            self.metrics.insert(name.into(), v);
        }
    }

    pub fn save(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
        let path = dir.join(format!("{}.json", self.id));
        let text =
            serde_json::to_string_pretty(self).map_err(|e| format!("failed to encode {}: {e}", self.id))?;
        std::fs::write(&path, text).map_err(|e| format!("failed to write {}: {e}", path.display()))
    }

    pub fn load(dir: &Path, id: &str) -> Option<Section> {
        let text = std::fs::read_to_string(dir.join(format!("{id}.json"))).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Number formatting for tables: a few significant figures, no noise.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    let a = v.abs();
    if a >= 1000.0 {
        group(v.round() as i64)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a == 0.0 {
        "0".into()
    } else {
        format!("{v:.3}")
    }
}

/// Thousands separated by commas.
fn group(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A ratio like "1.23×".
pub fn ratio(ours: f64, theirs: f64) -> String {
    if ours.is_finite() && theirs.is_finite() && theirs > 0.0 {
        format!("{:.2}×", ours / theirs)
    } else {
        "—".into()
    }
}

pub fn ratio_val(ours: f64, theirs: f64) -> f64 {
    if theirs > 0.0 {
        ours / theirs
    } else {
        f64::NAN
    }
}

/// Median of a sample (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

/// Nearest-rank quantile of a sample (NaN when empty).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let idx = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    s[idx]
}

/// Busy and total jiffies of all CPUs from /proc/stat.
fn cpu_jiffies() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait are not busy
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Percent of all CPUs busy over `window` (whatever runs on the machine).
pub fn machine_busy_pct(window: std::time::Duration) -> Option<f64> {
    let (b0, t0) = cpu_jiffies()?;
    std::thread::sleep(window);
    let (b1, t1) = cpu_jiffies()?;
    if t1 <= t0 {
        return None;
    }
    Some(100.0 * (b1 - b0) as f64 / (t1 - t0) as f64)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn now_utc() -> String {
    // Seconds since the epoch rendered as a UTC timestamp (no date crate).
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(num(1234.4), "1,234");
        assert_eq!(num(123_456.0), "123,456");
        assert_eq!(num(1_234_567.0), "1,234,567");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(0.01234), "0.012");
        assert_eq!(ratio(3.0, 2.0), "1.50×");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }
}
