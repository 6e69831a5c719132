//! `/v1/status/leader` and `/v1/status/peers`.

use super::error::HttpResult;
use super::query::Params;
use super::response::json;
use super::Ctx;
use axum::extract::State;
use axum::http::Uri;

pub async fn leader(State(ctx): State<Ctx>, uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let leader = ctx.agent.status_leader().await?;
    json(&params, &leader)
}

pub async fn peers(State(ctx): State<Ctx>, uri: Uri) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let peers = ctx.agent.status_peers().await?;
    json(&params, &peers)
}
