//! The loop of one periodic check (script, HTTP, TCP, UDP, gRPC): a random
//! first delay within the interval (so checks registered together do not
//! fire together, as Consul staggers them), then run, filter through the
//! counters, report, and wait `interval` after the run *finished* (as
//! Consul does), so runs of one check never overlap or pile up.

use super::counters::StatusFilter;
use super::grpc::{self, GrpcProbe};
use super::http::{self, HttpProbe};
use super::reporter::Reporter;
use super::script;
use super::spec::{CheckKind, CheckSpec, Status};
use super::tcp::{self, TcpProbe};
use super::tls::TlsRoots;
use super::udp;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;

/// Uniform in `[0, interval)`.
fn random_stagger(interval: Duration) -> Duration {
    let nanos = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::rng().random_range(0..nanos))
}

pub(crate) async fn run(reporter: Reporter, spec: CheckSpec, roots: Arc<TlsRoots>) {
    let interval = spec.effective_interval();
    let mut filter = StatusFilter::new(&spec);
    if !reporter.sleep(random_stagger(interval)).await {
        return;
    }
    loop {
        let outcome = tokio::select! {
            biased;
            // Dropping the probe mid-run kills a script's process group.
            _ = reporter.cancelled() => return,
            outcome = probe_once(&spec, &roots) => outcome,
        };
        let (status, output) = outcome;
        match filter.filter(status) {
            Some(reported) => {
                log_result(reporter.id(), reported, &output);
                if !reporter.report(reported, output).await {
                    return;
                }
            }
            None => {
                tracing::debug!(target: "agent", check = %reporter.id(), status = %status, "check result not reported: threshold not reached");
            }
        }
        if !reporter.sleep(interval).await {
            return;
        }
    }
}

fn log_result(id: &str, status: Status, output: &str) {
    match status {
        Status::Passing => tracing::debug!(target: "agent", check = %id, "check is passing"),
        Status::Warning => {
            tracing::warn!(target: "agent", check = %id, output = %output, "check is now warning")
        }
        Status::Critical => {
            tracing::warn!(target: "agent", check = %id, output = %output, "check is now critical")
        }
    }
}

/// One run of a periodic check, whatever its kind.
pub(crate) async fn probe_once(spec: &CheckSpec, roots: &TlsRoots) -> (Status, String) {
    let timeout = spec.effective_timeout();
    let max_output = spec.effective_output_max_size();
    match &spec.kind {
        CheckKind::Script { args } => script::run(args, timeout, max_output).await,
        CheckKind::Shell { command, shell } => {
            script::run(&crate::proc_group::shell_args(command, shell.as_deref()), timeout, max_output).await
        }
        CheckKind::Http {
            url,
            method,
            headers,
            body,
            tls_skip_verify,
            tls_server_name,
            disable_redirects,
        } => {
            let probe = HttpProbe {
                url,
                method,
                headers,
                body: body.as_deref(),
                tls_skip_verify: *tls_skip_verify,
                tls_server_name: tls_server_name.as_deref(),
                disable_redirects: *disable_redirects,
            };
            http::run(&probe, timeout, max_output, roots).await
        }
        CheckKind::Tcp { address, use_tls, tls_skip_verify, tls_server_name } => {
            let probe = TcpProbe {
                address,
                use_tls: *use_tls,
                tls_skip_verify: *tls_skip_verify,
                tls_server_name: tls_server_name.as_deref(),
            };
            tcp::run(&probe, timeout, roots).await
        }
        CheckKind::Udp { address } => udp::run(address, timeout).await,
        CheckKind::Grpc { target, use_tls, tls_skip_verify, tls_server_name } => {
            let probe = GrpcProbe {
                target,
                use_tls: *use_tls,
                tls_skip_verify: *tls_skip_verify,
                tls_server_name: tls_server_name.as_deref(),
            };
            grpc::run(&probe, timeout, roots).await
        }
        CheckKind::Ttl { .. } | CheckKind::Alias { .. } => {
            (Status::Critical, format!("{} checks are not run on an interval", spec.kind.type_name()))
        }
    }
}
