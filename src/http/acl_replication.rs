//! `/v1/acl/replication`: the status of ACL replication in the datacenter
//! asked (its leader's view), with Consul's fields. Times are whole
//! seconds in UTC; "never" is Go's zero time.

use super::acl::rfc3339_nanos;
use super::error::HttpResult;
use super::query::{request_context, Params};
use super::response::json;
use super::Ctx;
use crate::rpc::method;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use serde_json::json;

/// What Go's JSON writes for a zero `time.Time`.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time(ms: Option<u64>) -> String {
    // Consul rounds these times to the second.
    ms.map(|ms| rfc3339_nanos((ms + 500) / 1000 * 1_000_000_000)).unwrap_or_else(|| ZERO_TIME.into())
}

pub async fn replication(State(ctx): State<Ctx>, uri: Uri, headers: HeaderMap) -> HttpResult {
    let params = Params::parse(uri.query());
    let s = ctx.agent.call(request_context(&params, &headers)?, method::AclReplicationStatusGet {}).await?;
    json(
        &params,
        &json!({
            "Enabled": s.enabled,
            "Running": s.running,
            "SourceDatacenter": s.source_datacenter,
            "ReplicationType": s.replication_type,
            "ReplicatedIndex": s.replicated_index,
            "ReplicatedRoleIndex": s.replicated_role_index,
            "ReplicatedTokenIndex": s.replicated_token_index,
            "LastSuccess": time(s.last_success_ms),
            "LastError": time(s.last_error_ms),
            "LastErrorMessage": s.last_error_message,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_whole_seconds_or_go_zero() {
        assert_eq!(time(None), ZERO_TIME);
        assert_eq!(time(Some(1_541_226_538_400)), "2018-11-03T06:28:58Z");
    }
}
