//! `/v1/agent/monitor`: streams this agent's log lines to the caller as
//! they are written, at the level (`?loglevel=`, default info) and in the
//! format (`?logjson`) the caller asks for, until the caller goes away or
//! the agent shuts down.
//!
//! Owns only the HTTP side; the tap itself (levels, bounded queues, drop
//! counting) is in `crate::logging`. Must never make logging wait.

use super::error::HttpError;
use super::query::Params;
use super::Ctx;
use crate::config::LogLevel;
use crate::logging::LogStream;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

/// What a monitor request asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct MonitorRequest {
    pub level: LogLevel,
    pub json: bool,
}

/// Reads `loglevel` and `logjson`. As in Consul, `logjson` counts by its
/// presence; an explicit `false`/`0` is also honoured.
pub fn parse(params: &Params) -> Result<MonitorRequest, HttpError> {
    let level = match params.get("loglevel").map(str::trim).filter(|s| !s.is_empty()) {
        None => LogLevel::Info,
        Some(s) => {
            LogLevel::parse(s).ok_or_else(|| HttpError::bad_request(format!("Unknown log level: {s}")))?
        }
    };
    let json = params.has("logjson") && !matches!(params.get("logjson"), Some("false" | "0"));
    Ok(MonitorRequest { level, json })
}

pub async fn handle(State(ctx): State<Ctx>, uri: Uri) -> Response {
    let params = Params::parse(uri.query());
    let req = match parse(&params) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let stream = crate::logging::monitor(req.level, req.json);
    tracing::debug!(target: "agent.http", level = req.level.as_str(), json = req.json, "monitor attached");
    let body = Body::from_stream(lines(stream, ctx.agent.shutdown_token()));
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    // Proxies must pass each line on as it comes.
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The body: one chunk per log line. Ends when the agent shuts down, so a
/// monitor never holds up a graceful stop; dropping it (the client went
/// away) detaches the monitor.
fn lines(
    stream: LogStream,
    shutdown: CancellationToken,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold((stream, shutdown), |(mut stream, shutdown)| async move {
        let line = tokio::select! {
            line = stream.next() => line?,
            _ = shutdown.cancelled() => return None,
        };
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        Some((Ok(Bytes::from(bytes)), (stream, shutdown)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(q: &str) -> Result<MonitorRequest, HttpError> {
        parse(&Params::parse(Some(q)))
    }

    #[test]
    fn level_and_format_from_the_query() {
        assert_eq!(req("").ok(), Some(MonitorRequest { level: LogLevel::Info, json: false }));
        assert_eq!(req("loglevel=DEBUG").ok(), Some(MonitorRequest { level: LogLevel::Debug, json: false }));
        assert_eq!(
            req("loglevel=trace&logjson").ok(),
            Some(MonitorRequest { level: LogLevel::Trace, json: true })
        );
        assert_eq!(
            req("logjson=true&loglevel=warn").ok(),
            Some(MonitorRequest { level: LogLevel::Warn, json: true })
        );
        assert_eq!(req("logjson=false").ok(), Some(MonitorRequest { level: LogLevel::Info, json: false }));
    }

    #[test]
    fn unknown_level_is_a_400_naming_it() {
        let e = req("loglevel=loud").expect_err("error");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.message, "Unknown log level: loud");
    }
}
