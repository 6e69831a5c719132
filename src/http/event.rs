//! `/v1/event/fire/<name>` (PUT) and `/v1/event/list` (GET), as Consul's
//! event endpoints: the fired event's JSON, the list oldest first, and the
//! list's own blocking rule (see `event::ring`).

use super::error::{HttpError, HttpResult};
use super::query::{query_options, Params};
use super::response::json;
use super::Ctx;
use crate::event::{fire::too_large_message, EventError, FireRequest, UserEvent, USER_EVENT_SIZE_LIMIT};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};

impl From<EventError> for HttpError {
    fn from(e: EventError) -> Self {
        match e {
            EventError::BadRequest(m) => HttpError::bad_request(m),
            EventError::TooLarge(m) => HttpError::too_large(m),
            EventError::Rpc(e) => e.into(),
            EventError::Internal(m) => HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, m),
        }
    }
}

/// The event name: the rest of the path after `/v1/event/fire/`, decoded
/// (Go serves the decoded path, so `a%2Fb` names `a/b`).
fn name_from_path(uri: &Uri) -> Result<String, HttpError> {
    let rest = uri.path().strip_prefix("/v1/event/fire/").unwrap_or("");
    percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .map(|n| n.into_owned())
        .map_err(|_| HttpError::bad_request("Invalid event name: not valid UTF-8"))
}

/// Reads the payload. Nothing larger than serf's event limit can be fired,
/// so the body is cut off there while it is read.
async fn read_payload(headers: &HeaderMap, body: Body) -> Result<Option<Vec<u8>>, HttpError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > USER_EVENT_SIZE_LIMIT as u64) {
        return Err(HttpError::too_large(too_large_message()));
    }
    let bytes = axum::body::to_bytes(body, USER_EVENT_SIZE_LIMIT)
        .await
        .map_err(|_| HttpError::too_large(too_large_message()))?;
    Ok((!bytes.is_empty()).then(|| bytes.to_vec()))
}

pub async fn fire(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    let params = Params::parse(uri.query());
    let name = name_from_path(&uri)?;
    if name.is_empty() {
        return Err(HttpError::bad_request("Missing name"));
    }
    let filter = |k: &str| params.get(k).unwrap_or_default().to_string();
    let req = FireRequest {
        name,
        payload: read_payload(&headers, body).await?,
        node_filter: filter("node"),
        service_filter: filter("service"),
        tag_filter: filter("tag"),
    };
    let ev = ctx.agent.fire_user_event(params.dc(), super::query::token(&params, &headers), req).await?;
    json(&params, &ev)
}

/// `/v1/event/fire/` without a name.
pub async fn fire_missing_name() -> HttpResult {
    Err(HttpError::bad_request("Missing name"))
}

pub async fn list(
    State(ctx): State<Ctx>,
    uri: Uri,
    id: Option<axum::Extension<super::authz::Caller>>,
) -> HttpResult {
    let params = Params::parse(uri.query());
    let id = super::authz::caller(id)?;
    let opts = query_options(&params)?;
    let name = params.get("name").filter(|n| !n.is_empty());
    // Consul bounds this wait by its max query time and uses the whole of
    // it when no wait is given; no jitter.
    let max = ctx.agent.config().max_query_time;
    let wait = opts.max_wait.filter(|w| !w.is_zero()).unwrap_or(max).min(max);
    let (index, events) = ctx.agent.events().list_blocking(name, opts.min_index, wait).await;
    let out: Vec<&UserEvent> =
        events.iter().map(|e| e.as_ref()).filter(|e| id.0.authz.event_read(&e.name)).collect();
    let mut resp = json(&params, &out)?;
    resp.headers_mut().insert("X-Consul-Index", HeaderValue::from(index));
    Ok(resp)
}
