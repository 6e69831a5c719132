//! Query-string and header parsing shared by every endpoint: Consul's
//! presence flags (`?recurse` with or without a value), blocking and
//! consistency options, `?dc`, tokens, `?pretty` and `?filter`.

use super::error::HttpError;
use crate::filter::{Filter, Schema, CONSUL_ERROR_PREFIX};
use crate::rpc::{Consistency, QueryOptions, RequestContext};
use axum::http::HeaderMap;
use serde_json::Value;

/// The decoded query string, in order, repeated keys kept.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(raw: Option<&str>) -> Params {
        let pairs = raw
            .map(|q| {
                form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
            })
            .unwrap_or_default();
        Params { pairs }
    }

    /// Whether the key is present at all (Consul's `_, ok := query[k]`).
    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// The first value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    pub fn pretty(&self) -> bool {
        self.has("pretty")
    }

    pub fn dc(&self) -> Option<&str> {
        self.get("dc").filter(|s| !s.is_empty())
    }

    /// The encoded query string (for Consul's "Conflicting flags" message).
    pub fn encode(&self) -> String {
        let mut sorted = self.pairs.clone();
        sorted.sort();
        form_urlencoded::Serializer::new(String::new()).extend_pairs(sorted).finish()
    }

    /// A `u64` parameter, if present.
    pub fn u64(&self, key: &str, what: &str) -> Result<Option<u64>, HttpError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| HttpError::bad_request(format!("Invalid {what}: {v:?}"))),
        }
    }

    /// Refuses a request that names more than one of `flags`.
    pub fn conflicting(&self, flags: &[&str]) -> Result<(), HttpError> {
        if flags.iter().filter(|f| self.has(f)).count() > 1 {
            return Err(HttpError::bad_request(format!("Conflicting flags: {}\n", self.encode())));
        }
        Ok(())
    }
}

/// The ACL token of a request, in Consul's order: `?token`, then
/// `X-Consul-Token`, then `Authorization: Bearer <token>` (any other
/// scheme carries none). A header that is not valid text still counts, as
/// bytes no token has: it must be refused as not found, never dropped (which
/// would serve the request as the anonymous token).
pub fn token(params: &Params, headers: &HeaderMap) -> Option<String> {
    if let Some(t) = params.get("token").filter(|t| !t.is_empty()) {
        return Some(t.to_string());
    }
    let text = |name: &str| headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if let Some(t) = text("X-Consul-Token").filter(|t| !t.is_empty()) {
        return Some(t);
    }
    if let Some(auth) = text("Authorization") {
        let mut parts = auth.split(' ');
        let scheme = parts.next().unwrap_or_default();
        // Bearer tokens have no spaces: the first word after the scheme.
        let value = parts.find(|p| !p.trim().is_empty()).map(|p| p.trim().to_string());
        if scheme.eq_ignore_ascii_case("bearer") {
            if let Some(v) = value {
                return Some(v);
            }
        }
    }
    None
}

/// Parses `index`, `wait`, `stale` and `consistent` into query options.
pub fn query_options(params: &Params) -> Result<QueryOptions, HttpError> {
    let min_index = match params.get("index") {
        None | Some("") => 0,
        Some(v) => v.parse::<u64>().map_err(|_| HttpError::bad_request("Invalid index"))?,
    };
    let max_wait = match params.get("wait") {
        None | Some("") => None,
        Some(v) => Some(crate::duration::parse(v).map_err(|_| HttpError::bad_request("Invalid wait time"))?),
    };
    let stale = params.has("stale");
    let consistent = params.has("consistent");
    if stale && consistent {
        return Err(HttpError::bad_request("Cannot specify ?stale with ?consistent, conflicting semantics."));
    }
    let consistency = if consistent {
        Consistency::Consistent
    } else if stale {
        Consistency::Stale
    } else {
        Consistency::Default
    };
    Ok(QueryOptions { min_index, max_wait, consistency })
}

/// The context of a read: the caller's token and the query options. (The
/// datacenter comes from `?dc=` through `datacenter::route`.)
pub fn request_context(params: &Params, headers: &HeaderMap) -> Result<RequestContext, HttpError> {
    Ok(RequestContext { token: token(params, headers), query: query_options(params)?, ..Default::default() })
}

/// The context of a write: the caller's token.
pub fn caller(params: &Params, headers: &HeaderMap) -> RequestContext {
    RequestContext { token: token(params, headers), ..Default::default() }
}

/// `?node-meta=key:value` pairs (repeatable).
pub fn node_meta(params: &Params) -> Result<Vec<(String, String)>, HttpError> {
    params
        .all("node-meta")
        .into_iter()
        .map(|kv| match kv.split_once(':') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(HttpError::bad_request(format!("Invalid node-meta {kv:?}: expected key:value"))),
        })
        .collect()
}

/// `?passing`: present or `true`/`1` filters, `false`/`0` doesn't.
pub fn passing(params: &Params) -> Result<bool, HttpError> {
    match params.get("passing") {
        None => Ok(false),
        Some("" | "true" | "1" | "True" | "TRUE" | "t" | "T") => Ok(true),
        Some("false" | "0" | "False" | "FALSE" | "f" | "F") => Ok(false),
        // Consul's text names the parameter, not the value.
        Some(_) => Err(HttpError::bad_request("Invalid value for ?passing")),
    }
}

/// `?filter=`: the expression bound to the endpoint's record schema, or
/// `None` when absent or empty. A bad expression is a 400 with Consul's
/// prefix and the parser's message.
pub fn filter(params: &Params, schema: &Schema) -> Result<Option<Filter>, HttpError> {
    match params.get("filter") {
        None | Some("") => Ok(None),
        Some(expr) => Filter::parse(expr, schema).map(Some).map_err(|e| {
            crate::metrics::incr("consul.http.filter.rejected", 1);
            tracing::debug!(target: "agent.http", error = %e, "rejected filter expression");
            HttpError::bad_request(format!("{CONSUL_ERROR_PREFIX}{e}"))
        }),
    }
}

/// Whether a record survives the filter (every record does without one).
pub fn keep(filter: Option<&Filter>, record: &Value) -> bool {
    filter.is_none_or(|f| f.matches(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_and_values() {
        let p = Params::parse(Some("recurse&tag=a&tag=b&flags=5&x=%2Fy"));
        assert!(p.has("recurse"));
        assert_eq!(p.get("recurse"), Some(""));
        assert_eq!(p.all("tag"), vec!["a", "b"]);
        assert_eq!(p.u64("flags", "flags").unwrap(), Some(5));
        assert_eq!(p.get("x"), Some("/y"));
        assert!(p.u64("x", "flags").is_err());
    }
}
