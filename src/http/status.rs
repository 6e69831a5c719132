//! `/v1/status/leader` and `/v1/status/peers`.

use super::error::HttpResult;
use super::query::{caller, Params};
use super::response::json;
use super::Ctx;
use crate::rpc::method;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};

pub async fn leader(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let leader = ctx.agent.call(caller(&params, &headers), method::StatusLeader {}).await?;
    json(&params, &leader)
}

pub async fn peers(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let peers = ctx.agent.call(caller(&params, &headers), method::StatusPeers {}).await?;
    json(&params, &peers)
}
