//! The closed-loop load driver: N clients, each with its own connection,
//! each doing one operation after another for a warm-up and then a measured
//! window. Latency of every operation that starts and ends inside the
//! window goes into an HDR histogram (microseconds).
//!
//! Owns: timing, counting and percentiles. Must not know what an
//! operation is (a `Worker` does).

use hdrhistogram::Histogram;
use std::future::Future;
use std::time::{Duration, Instant};

/// One load client. `step` performs one operation; an `Err` counts as an
/// error (and the driver backs off 1 ms so a dead server is not spun on).
pub trait Worker: Send + 'static {
    fn step(&mut self, seq: u64) -> impl Future<Output = Result<(), String>> + Send;
}

pub struct LoadResult {
    /// successful operations inside the measured window
    pub ops: u64,
    /// successful operations including warm-up and the last, uncounted ones
    pub total_ops: u64,
    pub errors: u64,
    pub secs: f64,
    pub hist: Histogram<u64>,
    pub first_error: Option<String>,
}

pub fn new_hist() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits; the bounds are constants.
    // The bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, 600_000_000, 3).unwrap_or_else(|e| panic!("hdrhistogram bounds: {e}"))
}

impl LoadResult {
    pub fn throughput(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Latency quantile in milliseconds (NaN without samples).
    pub fn ms(&self, q: f64) -> f64 {
        quantile_ms(&self.hist, q)
    }
}

pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        f64::NAN
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Runs `clients` workers built by `make(i)` and returns the merged result
/// plus the workers (so callers can read counters they kept).
pub async fn run<W: Worker, F: FnMut(usize) -> W>(
    clients: usize,
    warmup: Duration,
    window: Duration,
    mut make: F,
) -> (LoadResult, Vec<W>) {
    let t0 = Instant::now() + Duration::from_millis(20);
    let measure_from = t0 + warmup;
    let end = measure_from + window;
    let mut handles = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut w = make(i);
        handles.push(tokio::spawn(async move {
            let mut hist = new_hist();
            let (mut ops, mut total, mut errors, mut first_error) = (0u64, 0u64, 0u64, None::<String>);
            tokio::time::sleep_until(t0.into()).await;
            let mut seq = 0u64;
            loop {
                let start = Instant::now();
                if start >= end {
                    break;
                }
                let r = w.step(seq).await;
                seq += 1;
                let done = Instant::now();
                let counted = start >= measure_from && done <= end;
                match r {
                    Ok(()) => {
                        total += 1;
                        if counted {
                            ops += 1;
                            let _ = hist.record((done - start).as_micros().max(1) as u64);
                        }
                    }
                    Err(e) => {
                        if counted {
                            errors += 1;
                        }
                        if first_error.is_none() {
                            first_error = Some(e);
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
            (hist, ops, total, errors, first_error, w)
        }));
    }
    let mut result = LoadResult {
        ops: 0,
        total_ops: 0,
        errors: 0,
        secs: window.as_secs_f64(),
        hist: new_hist(),
        first_error: None,
    };
    let mut workers = Vec::with_capacity(clients);
    for h in handles {
        // A worker stuck past the end (a request that never answers) is
        // bounded by its own request timeout.
        match h.await {
            Ok((hist, ops, total, errors, fe, w)) => {
                let _ = result.hist.add(&hist);
                result.ops += ops;
                result.total_ops += total;
                result.errors += errors;
                if result.first_error.is_none() {
                    result.first_error = fe;
                }
                workers.push(w);
            }
            Err(e) => {
                result.errors += 1;
                if result.first_error.is_none() {
                    result.first_error = Some(format!("load task failed: {e}"));
                }
            }
        }
    }
    (result, workers)
}
