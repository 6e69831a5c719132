//! `?dc=`: runs the handler with its RPCs routed to that datacenter (see
//! `agent::dc`). Handlers still call `check_dc`, which accepts the routed
//! datacenter; a server of this datacenter answers "No path to datacenter"
//! when the WAN pool shows no server of it.

use super::query::Params;
use super::Ctx;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

pub async fn route(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let dc = Params::parse(req.uri().query()).dc().map(str::to_string);
    crate::agent::dc::in_datacenter(dc, &ctx.agent.config().datacenter, next.run(req)).await
}
