//! The `/v1/acl` calls the commands make, and Consul's CLI shortcuts for
//! naming things: a unique prefix of an ID, `anonymous`,
//! `global-management`.

use super::model::{PolicyListEntry, Role, TokenListEntry};
use crate::api::{encode, Client};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub const ANONYMOUS_TOKEN_ID: &str = "00000000-0000-0000-0000-000000000002";
pub const GLOBAL_MANAGEMENT_ID: &str = "00000000-0000-0000-0000-000000000001";

/// A UUID is 36 characters; anything shorter is a prefix to look up.
const FULL_ID_LEN: usize = 36;

pub async fn get<T: DeserializeOwned>(client: &Client, path: &str) -> Result<T, String> {
    client.call(Method::GET, path, None).await?.json()
}

/// GET that tells a 404 apart (Consul's API returns nothing for it).
pub async fn get_optional<T: DeserializeOwned>(client: &Client, path: &str) -> Result<Option<T>, String> {
    let resp = client.request(Method::GET, path, None).await?;
    if resp.status == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status.is_success() {
        return Err(format!(
            "Unexpected response code: {} ({})",
            resp.status.as_u16(),
            resp.text().trim_end()
        ));
    }
    resp.json().map(Some)
}

pub async fn put<B: Serialize, T: DeserializeOwned>(
    client: &Client,
    path: &str,
    body: Option<&B>,
) -> Result<T, String> {
    let body = match body {
        Some(b) => Some(Bytes::from(serde_json::to_vec(b).map_err(|e| e.to_string())?)),
        None => None,
    };
    client.call(Method::PUT, path, body).await?.json()
}

pub async fn post<B: Serialize, T: DeserializeOwned>(
    client: &Client,
    path: &str,
    body: &B,
) -> Result<T, String> {
    let body = Bytes::from(serde_json::to_vec(body).map_err(|e| e.to_string())?);
    client.call(Method::POST, path, Some(body)).await?.json()
}

pub async fn delete(client: &Client, path: &str) -> Result<(), String> {
    client.call(Method::DELETE, path, None).await.map(|_| ())
}

/// The one ID among `ids` that starts with `prefix`.
pub fn unique_prefix<'a>(
    ids: impl Iterator<Item = &'a str>,
    prefix: &str,
    what: &str,
) -> Result<String, String> {
    let mut found: Option<&str> = None;
    for id in ids {
        if id.starts_with(prefix) {
            if found.is_some() {
                return Err(format!("Partial {what} ID is not unique"));
            }
            found = Some(id);
        }
    }
    found.map(str::to_string).ok_or_else(|| format!("No such {what} ID with prefix: {prefix}"))
}

pub async fn token_accessor_id(client: &Client, partial: &str) -> Result<String, String> {
    if partial == "anonymous" {
        return Ok(ANONYMOUS_TOKEN_ID.to_string());
    }
    if partial.len() == FULL_ID_LEN {
        return Ok(partial.to_string());
    }
    let tokens: Vec<TokenListEntry> = get(client, "/v1/acl/tokens").await?;
    unique_prefix(tokens.iter().map(|t| t.accessor_id.as_str()), partial, "token")
}

pub async fn policy_id(client: &Client, partial: &str) -> Result<String, String> {
    if partial == "global-management" {
        return Ok(GLOBAL_MANAGEMENT_ID.to_string());
    }
    if partial.len() == FULL_ID_LEN {
        return Ok(partial.to_string());
    }
    let policies: Vec<PolicyListEntry> = get(client, "/v1/acl/policies").await?;
    unique_prefix(policies.iter().map(|p| p.id.as_str()), partial, "policy")
}

pub async fn role_id(client: &Client, partial: &str) -> Result<String, String> {
    if partial.len() == FULL_ID_LEN {
        return Ok(partial.to_string());
    }
    let roles: Vec<Role> = get(client, "/v1/acl/roles").await?;
    unique_prefix(roles.iter().map(|r| r.id.as_str()), partial, "role")
}

pub fn path(prefix: &str, id: &str) -> String {
    format!("{prefix}{}", encode(id))
}

#[cfg(test)]
mod tests {
    use super::unique_prefix;

    #[test]
    fn prefixes_must_be_unique() {
        let ids = ["abc-1", "abd-2", "xyz-3"];
        assert_eq!(unique_prefix(ids.iter().copied(), "x", "token").unwrap(), "xyz-3");
        assert_eq!(
            unique_prefix(ids.iter().copied(), "ab", "policy").unwrap_err(),
            "Partial policy ID is not unique"
        );
        assert_eq!(
            unique_prefix(ids.iter().copied(), "q", "role").unwrap_err(),
            "No such role ID with prefix: q"
        );
    }
}
