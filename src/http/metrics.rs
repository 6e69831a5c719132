//! `/v1/agent/metrics`: our counters and gauges in Consul's JSON shape, or
//! in Prometheus' text exposition format (`?format=prometheus`, or an
//! `Accept` header asking for OpenMetrics) when Prometheus retention is
//! enabled, as Consul requires (without it: an empty 200 with the reason in
//! `X-Consul-Reason`, as Consul 1.2x answers). Our counters are totals since start, not
//! per-interval aggregates. Reads `crate::metrics`; keeps no metrics itself.

use super::error::HttpResult;
use super::query::Params;
use super::response::json;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::Response;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `telemetry.prometheus_retention_time` in milliseconds; 0 = disabled.
static PROMETHEUS_RETENTION_MS: AtomicU64 = AtomicU64::new(0);

/// Enables (`> 0`) or disables the Prometheus format, from the agent's
/// `telemetry.prometheus_retention_time`. Called once at agent start.
pub fn set_prometheus_retention(retention: Duration) {
    PROMETHEUS_RETENTION_MS.store(retention.as_millis().min(u64::MAX as u128) as u64, Ordering::Relaxed);
}

/// The Content-Type of the Prometheus text format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Counter {
    name: String,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    mean: f64,
    stddev: f64,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Gauge {
    name: String,
    value: f64,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Summary {
    timestamp: String,
    gauges: Vec<Gauge>,
    points: Vec<serde_json::Value>,
    counters: Vec<Counter>,
    samples: Vec<serde_json::Value>,
}

/// Whether the caller asked for the Prometheus format: `?format=prometheus`
/// or an `Accept` header naming OpenMetrics or the 0.0.4 text format, as
/// Prometheus' scrapers send.
fn wants_prometheus(params: &Params, headers: &HeaderMap) -> bool {
    if let Some(f) = params.get("format") {
        return f == "prometheus";
    }
    headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        let v = v.to_ascii_lowercase();
        v.contains("application/openmetrics-text")
            || (v.contains("text/plain") && v.contains("version=0.0.4"))
    })
}

pub async fn handle(uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    if wants_prometheus(&params, &headers) {
        if PROMETHEUS_RETENTION_MS.load(Ordering::Relaxed) == 0 {
            // Consul's handler returns a 415 "payload error" with no body,
            // which its HTTP wrapper turns into the reason header on an
            // empty 200: that, not a 415, is what clients see.
            let mut resp = Response::new(Body::empty());
            resp.headers_mut().insert(
                "X-Consul-Reason",
                HeaderValue::from_static(
                    "Prometheus is not enabled since its retention time is not positive",
                ),
            );
            return Ok(resp);
        }
        let text = prometheus_text(&crate::metrics::snapshot(), &crate::metrics::gauge_snapshot());
        let mut resp = Response::new(Body::from(text));
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROMETHEUS_CONTENT_TYPE));
        return Ok(resp);
    }
    let counters = crate::metrics::snapshot()
        .into_iter()
        .map(|(name, v)| Counter {
            name: name.to_string(),
            count: v,
            sum: v as f64,
            min: 1.0,
            max: 1.0,
            mean: 1.0,
            stddev: 0.0,
            labels: BTreeMap::new(),
        })
        .collect();
    json(
        &params,
        &Summary {
            timestamp: crate::logging::timestamp(),
            gauges: crate::metrics::gauge_snapshot()
                .into_iter()
                .map(|(name, v)| Gauge { name: name.to_string(), value: v as f64, labels: BTreeMap::new() })
                .collect(),
            points: Vec::new(),
            counters,
            samples: Vec::new(),
        },
    )
}

/// A metric name as Prometheus spells it: `consul.raft.apply` becomes
/// `consul_raft_apply`; anything outside `[A-Za-z0-9_:]` becomes `_`, and
/// names not already under `consul` get the `consul_` prefix, as Consul's
/// own exporter names everything.
pub fn prometheus_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' })
        .collect();
    if !(out == "consul" || out.starts_with("consul_")) {
        out.insert_str(0, "consul_");
    }
    out
}

/// The text exposition format (0.0.4): for each metric a `# HELP` and a
/// `# TYPE` line, then its sample. Counters are totals since the agent
/// started, which is what Prometheus expects of a counter.
pub fn prometheus_text(counters: &[(&str, u64)], gauges: &[(&str, i64)]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, value: &dyn std::fmt::Display| {
        let n = prometheus_name(name);
        let _ = writeln!(out, "# HELP {n} {n}");
        let _ = writeln!(out, "# TYPE {n} {kind}");
        let _ = writeln!(out, "{n} {value}");
    };
    for (name, v) in counters {
        family(name, "counter", v);
    }
    for (name, v) in gauges {
        family(name, "gauge", v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_rules() {
        assert_eq!(prometheus_name("consul.raft.wal.syncs"), "consul_raft_wal_syncs");
        assert_eq!(prometheus_name("consul.http.GET.v1.kv._"), "consul_http_GET_v1_kv__");
        assert_eq!(prometheus_name("runtime.alloc-bytes"), "consul_runtime_alloc_bytes");
    }

    #[test]
    fn exposition_has_help_type_and_sample_per_metric() {
        let text = prometheus_text(&[("consul.raft.apply", 7)], &[("consul.blocking_query.watchers", -1)]);
        assert_eq!(
            text,
            "# HELP consul_raft_apply consul_raft_apply\n# TYPE consul_raft_apply counter\nconsul_raft_apply 7\n\
             # HELP consul_blocking_query_watchers consul_blocking_query_watchers\n\
             # TYPE consul_blocking_query_watchers gauge\nconsul_blocking_query_watchers -1\n"
        );
    }

    #[test]
    fn format_is_chosen_by_query_then_accept() {
        let mut h = HeaderMap::new();
        assert!(!wants_prometheus(&Params::parse(None), &h));
        assert!(wants_prometheus(&Params::parse(Some("format=prometheus")), &h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
            ),
        );
        assert!(wants_prometheus(&Params::parse(None), &h));
        assert!(!wants_prometheus(&Params::parse(Some("format=json")), &h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_prometheus(&Params::parse(None), &h));
    }
}
