//! `/v1/snapshot`: GET saves the replicated state as an archive, PUT
//! restores one. The archive is built and checked here, at the agent, so
//! servers only ever handle verified state bytes.

use super::error::{HttpError, HttpResult};
use super::query::{caller, request_context, Params};
use super::response::{empty_ok, with_meta};
use super::Ctx;
use crate::rpc::method;
use crate::snapshot::ArchiveError;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};

/// The largest state a snapshot can carry: it travels as one server RPC
/// frame and one Raft log entry (with room for their own headers).
pub const MAX_SNAPSHOT_STATE: usize = crate::rpc::frame::MAX_FRAME - 1024 * 1024;

pub async fn save(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let rc = request_context(&params, &headers)?;
    let (meta, index, term, state) = ctx.agent.call(rc, method::SnapshotSave {}).await?;
    // Compressing may take a while for a big state: off the async workers.
    let archive = tokio::task::spawn_blocking(move || crate::snapshot::write_archive(index, term, &state))
        .await
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("snapshot failed: {e}")))?
        .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("snapshot failed: {e}")))?;
    let mut resp = axum::response::Response::new(Body::from(archive));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-gzip"));
    Ok(with_meta(resp, &meta))
}

pub async fn restore(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let bytes = axum::body::to_bytes(body, MAX_SNAPSHOT_STATE).await.map_err(|_| {
        HttpError::too_large(format!("snapshot archive larger than the {MAX_SNAPSHOT_STATE}-byte limit"))
    })?;
    let archive = tokio::task::spawn_blocking(move || {
        crate::snapshot::read_archive_capped(&bytes, MAX_SNAPSHOT_STATE as u64)
    })
    .await
    .map_err(|e| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("restore failed: {e}")))?
    .map_err(|e| {
        // Over our size limit is 413, as for the compressed archive. An
        // archive that does not read is Consul's restore error, a 500.
        let msg = format!("failed to read snapshot: {e}");
        match e {
            ArchiveError::TooLarge { name: "state.bin", .. } => HttpError::too_large(msg),
            _ => HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, msg),
        }
    })?;
    if archive.state.len() > MAX_SNAPSHOT_STATE {
        return Err(HttpError::too_large(format!(
            "snapshot state of {} bytes exceeds the {MAX_SNAPSHOT_STATE}-byte limit",
            archive.state.len()
        )));
    }
    tracing::info!(target: "agent.http", index = archive.meta.index, bytes = archive.state.len(), "restoring snapshot");
    let args = method::SnapshotRestore { state: archive.state.into() };
    ctx.agent.call(caller(&params, &headers), args).await?;
    Ok(empty_ok())
}
