//! `/v1/coordinate/*`: network coordinates of the datacenters' servers
//! (WAN) and of this datacenter's nodes (LAN), and the update endpoint.

use super::body::read_limited;
use super::decode;
use super::error::{HttpError, HttpResult};
use super::query::{caller, request_context, Params};
use super::response::{json, with_meta};
use super::Ctx;
use crate::catalog::coordinates::CoordinateEntry;
use crate::coordinate::{Coordinate, VivaldiConfig};
use crate::rpc::method;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

const MAX_BODY: u64 = 64 * 1024;

/// One node's coordinate as Consul shows it.
#[derive(Serialize)]
struct CoordinateJson<'a> {
    #[serde(rename = "Node")]
    node: &'a str,
    #[serde(rename = "Segment")]
    segment: &'a str,
    #[serde(rename = "Coord")]
    coord: &'a Coordinate,
}

impl<'a> CoordinateJson<'a> {
    fn new(e: &'a CoordinateEntry) -> Self {
        CoordinateJson { node: &e.node, segment: &e.segment, coord: &e.coord }
    }
}

/// `PUT /v1/coordinate/update` body.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct UpdateIn {
    node: Option<String>,
    segment: Option<String>,
    coord: Option<Coordinate>,
}

/// Refuses every coordinate endpoint when this agent has coordinates off.
fn enabled(ctx: &Ctx) -> Result<(), HttpError> {
    if ctx.agent.config().disable_coordinates {
        return Err(HttpError::new(StatusCode::UNAUTHORIZED, "Coordinate support disabled"));
    }
    Ok(())
}

pub async fn datacenters(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    enabled(&ctx)?;
    let params = Params::parse(uri.query());
    let dcs = ctx.agent.call(caller(&params, &headers), method::CoordinateDatacenters {}).await?;
    let out: Vec<serde_json::Value> = dcs
        .iter()
        .map(|d| {
            serde_json::json!({
                "Datacenter": d.datacenter,
                "AreaID": d.area_id,
                "Coordinates": d.coordinates.iter().map(CoordinateJson::new).collect::<Vec<_>>(),
            })
        })
        .collect();
    json(&params, &out)
}

pub async fn nodes(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    enabled(&ctx)?;
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let rc = request_context(&params, &headers)?;
    let segment = params.get("segment").map(str::to_string);
    let (meta, list) = ctx.agent.call(rc, method::CoordinateNodes { segment }).await?;
    let out: Vec<CoordinateJson<'_>> = list.iter().map(CoordinateJson::new).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

pub async fn node(
    State(ctx): State<Ctx>,
    Path(node): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> HttpResult {
    enabled(&ctx)?;
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let rc = request_context(&params, &headers)?;
    let (meta, mut list) = ctx.agent.call(rc, method::CoordinateNode { node }).await?;
    if let Some(seg) = params.get("segment") {
        list.retain(|e| e.segment == seg);
    }
    if list.is_empty() {
        return Ok(with_meta(StatusCode::NOT_FOUND.into_response(), &meta));
    }
    let out: Vec<CoordinateJson<'_>> = list.iter().map(CoordinateJson::new).collect();
    Ok(with_meta(json(&params, &out)?, &meta))
}

pub async fn update(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap, body: Body) -> HttpResult {
    enabled(&ctx)?;
    let params = Params::parse(uri.query());
    ctx.agent.check_dc(params.dc())?;
    let body = read_limited(&headers, body, MAX_BODY).await?;
    let input: UpdateIn = decode::from_slice(&body)
        .map_err(|e| HttpError::bad_request(format!("Request decode failed: {e}")))?;
    let node =
        input.node.filter(|n| !n.is_empty()).ok_or_else(|| HttpError::bad_request("Must provide node"))?;
    let coord = input.coord.ok_or_else(|| HttpError::bad_request("Must provide coordinate"))?;
    coord
        .check(&VivaldiConfig::default())
        .map_err(|e| HttpError::bad_request(format!("rejected bad coordinate: {e}")))?;
    let entry = CoordinateEntry { node, segment: input.segment.unwrap_or_default(), coord };
    ctx.agent.call(caller(&params, &headers), method::CoordinateUpdate { entry }).await?;
    Ok(StatusCode::OK.into_response())
}
