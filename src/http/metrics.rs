//! `/v1/agent/metrics` (JSON form): our counters in Consul's shape. Our
//! counters are totals since start, not per-interval aggregates.

use super::error::HttpResult;
use super::query::Params;
use super::response::json;
use axum::http::Uri;
use serde::Serialize;
use std::collections::BTreeMap;

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

pub async fn handle(uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    if params.get("format") == Some("prometheus") {
        return Err(super::error::HttpError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Prometheus is not enabled since its retention time is not positive",
        ));
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
