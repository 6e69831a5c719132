//! The `Config` of a `jwt` auth method: Consul's field names (matched
//! case-insensitively, as its decoder does), its checks and its error texts.

use super::AuthError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Algorithms a `jwt` method may list in `JWTSupportedAlgs`.
pub const KNOWN_ALGS: &[&str] =
    &["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"];

/// The leeway used when a leeway setting is 0 (Consul's defaults).
pub const DEFAULT_EXP_NBF_LEEWAY_S: i64 = 150;
pub const DEFAULT_CLOCK_SKEW_S: i64 = 60;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwtConfig {
    pub jwt_validation_pub_keys: Vec<String>,
    pub jwks_url: String,
    pub jwks_ca_cert: String,
    pub oidc_discovery_url: String,
    pub oidc_discovery_ca_cert: String,
    pub bound_audiences: Vec<String>,
    pub bound_issuer: String,
    /// Claim (name or JSON pointer) -> attribute under `value.`.
    pub claim_mappings: BTreeMap<String, String>,
    /// Claim -> attribute under `list.`.
    pub list_claim_mappings: BTreeMap<String, String>,
    pub jwt_supported_algs: Vec<String>,
    /// Leeways in seconds as given (negative: none; 0: the default).
    pub expiration_leeway_s: i64,
    pub not_before_leeway_s: i64,
    pub clock_skew_leeway_s: i64,
}

/// Where the method's keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySourceKind {
    Static,
    Jwks,
    OidcDiscovery,
}

impl JwtConfig {
    pub fn key_source(&self) -> KeySourceKind {
        if !self.jwt_validation_pub_keys.is_empty() {
            KeySourceKind::Static
        } else if !self.jwks_url.is_empty() {
            KeySourceKind::Jwks
        } else {
            KeySourceKind::OidcDiscovery
        }
    }

    /// Effective leeways in seconds.
    pub fn expiration_leeway(&self) -> i64 {
        leeway(self.expiration_leeway_s, DEFAULT_EXP_NBF_LEEWAY_S)
    }
    pub fn not_before_leeway(&self) -> i64 {
        leeway(self.not_before_leeway_s, DEFAULT_EXP_NBF_LEEWAY_S)
    }
    pub fn clock_skew_leeway(&self) -> i64 {
        leeway(self.clock_skew_leeway_s, DEFAULT_CLOCK_SKEW_S)
    }
}

fn leeway(given: i64, default: i64) -> i64 {
    match given {
        g if g < 0 => 0,
        0 => default,
        g => g,
    }
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError(format!("Invalid Auth Method: {}", msg.into()))
}

fn string(key: &str, v: &Value) -> Result<String, AuthError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        other => Err(invalid(format!("'{key}' expected a string, got {other}"))),
    }
}

fn strings(key: &str, v: &Value) -> Result<Vec<String>, AuthError> {
    match v {
        Value::Array(items) => items.iter().map(|i| string(key, i)).collect(),
        Value::Null => Ok(Vec::new()),
        // A single string is accepted as a one-element list (as Consul's
        // weakly typed decoder does).
        Value::String(s) => Ok(vec![s.clone()]),
        other => Err(invalid(format!("'{key}' expected a list of strings, got {other}"))),
    }
}

fn string_map(key: &str, v: &Value) -> Result<BTreeMap<String, String>, AuthError> {
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| Ok((k.clone(), string(key, v)?))).collect(),
        Value::Null => Ok(BTreeMap::new()),
        other => Err(invalid(format!("'{key}' expected a map of strings, got {other}"))),
    }
}

/// A leeway: a Go duration string ("5s", "-1s") or a number of
/// nanoseconds; whole seconds.
fn seconds(key: &str, v: &Value) -> Result<i64, AuthError> {
    let ns: i128 = match v {
        Value::Null => 0,
        Value::Number(n) => {
            n.as_i64().map(i128::from).ok_or_else(|| invalid(format!("'{key}': bad duration {n}")))?
        }
        Value::String(s) if s.is_empty() => 0,
        Value::String(s) => crate::duration::parse_nanos(s)
            .map_err(|e| invalid(format!("'{key}': invalid duration {s:?}: {e}")))?,
        other => return Err(invalid(format!("'{key}' expected a duration, got {other}"))),
    };
    Ok((ns / 1_000_000_000) as i64)
}

/// OIDC-flow settings a `jwt` method must not have.
const OIDC_ONLY: &[&str] = &[
    "OIDCClientID",
    "OIDCClientSecret",
    "OIDCScopes",
    "OIDCACRValues",
    "AllowedRedirectURIs",
    "VerboseOIDCLogging",
];

/// Parses and checks a `jwt` method's `Config` (a JSON object). Network
/// checks of the URLs are the validator's (`validator::check_reachable`).
pub fn parse(config: &Map<String, Value>) -> Result<JwtConfig, AuthError> {
    let mut c = JwtConfig::default();
    for (key, v) in config {
        match key.to_ascii_lowercase().as_str() {
            "jwtvalidationpubkeys" => c.jwt_validation_pub_keys = strings("JWTValidationPubKeys", v)?,
            "jwksurl" => c.jwks_url = string("JWKSURL", v)?,
            "jwkscacert" => c.jwks_ca_cert = string("JWKSCACert", v)?,
            "oidcdiscoveryurl" => c.oidc_discovery_url = string("OIDCDiscoveryURL", v)?,
            "oidcdiscoverycacert" => c.oidc_discovery_ca_cert = string("OIDCDiscoveryCACert", v)?,
            "boundaudiences" => c.bound_audiences = strings("BoundAudiences", v)?,
            "boundissuer" => c.bound_issuer = string("BoundIssuer", v)?,
            "claimmappings" => c.claim_mappings = string_map("ClaimMappings", v)?,
            "listclaimmappings" => c.list_claim_mappings = string_map("ListClaimMappings", v)?,
            "jwtsupportedalgs" => c.jwt_supported_algs = strings("JWTSupportedAlgs", v)?,
            "expirationleeway" => c.expiration_leeway_s = seconds("ExpirationLeeway", v)?,
            "notbeforeleeway" => c.not_before_leeway_s = seconds("NotBeforeLeeway", v)?,
            "clockskewleeway" => c.clock_skew_leeway_s = seconds("ClockSkewLeeway", v)?,
            lower => {
                if let Some(name) = OIDC_ONLY.iter().find(|n| n.to_ascii_lowercase() == lower) {
                    let set = !matches!(v, Value::Null | Value::Bool(false))
                        && v.as_str() != Some("")
                        && v.as_array().is_none_or(|a| !a.is_empty());
                    if set {
                        return Err(invalid(format!("'{name}' must not be set for type \"jwt\"")));
                    }
                } else {
                    return Err(invalid(format!("unknown Config key {key:?} for type \"jwt\"")));
                }
            }
        }
    }
    let sources =
        [!c.jwt_validation_pub_keys.is_empty(), !c.jwks_url.is_empty(), !c.oidc_discovery_url.is_empty()];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(invalid(
            "exactly one of 'JWTValidationPubKeys', 'JWKSURL', or 'OIDCDiscoveryURL' must be set for type \"jwt\"",
        ));
    }
    if c.jwks_url.is_empty() && !c.jwks_ca_cert.is_empty() {
        return Err(invalid("'JWKSCACert' should not be set unless 'JWKSURL' is set"));
    }
    if c.oidc_discovery_url.is_empty() && !c.oidc_discovery_ca_cert.is_empty() {
        return Err(invalid("'OIDCDiscoveryCACert' should not be set unless 'OIDCDiscoveryURL' is set"));
    }
    for url in [&c.jwks_url, &c.oidc_discovery_url] {
        if !url.is_empty() && !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(format!("URL {url:?} must start with http:// or https://")));
        }
    }
    for (i, pem) in c.jwt_validation_pub_keys.iter().enumerate() {
        super::keys::parse_pem(pem)
            .map_err(|e| invalid(format!("error parsing public key JWTValidationPubKeys[{i}]: {e}")))?;
    }
    for a in &c.jwt_supported_algs {
        if !KNOWN_ALGS.contains(&a.as_str()) {
            return Err(invalid(format!("Invalid supported algorithm: {a}")));
        }
    }
    duplicates("ClaimMappings", &c.claim_mappings)?;
    duplicates("ListClaimMappings", &c.list_claim_mappings)?;
    Ok(c)
}

fn duplicates(what: &str, m: &BTreeMap<String, String>) -> Result<(), AuthError> {
    let mut seen = std::collections::BTreeSet::new();
    for target in m.values() {
        if !seen.insert(target) {
            return Err(invalid(format!("{what} contains multiple mappings for key {target:?}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> Result<JwtConfig, AuthError> {
        parse(v.as_object().unwrap())
    }

    #[test]
    fn exactly_one_key_source_and_consuls_texts() {
        let e = cfg(json!({})).unwrap_err().0;
        assert!(e.contains("exactly one of 'JWTValidationPubKeys', 'JWKSURL', or 'OIDCDiscoveryURL'"), "{e}");
        let e = cfg(json!({"JWKSURL": "http://127.0.0.1/k", "OIDCDiscoveryURL": "http://127.0.0.1"}))
            .unwrap_err()
            .0;
        assert!(e.contains("exactly one"), "{e}");
        let e = cfg(json!({"JWKSURL": "http://x/k", "OIDCClientID": "c"})).unwrap_err().0;
        assert_eq!(e, "Invalid Auth Method: 'OIDCClientID' must not be set for type \"jwt\"");
        let e = cfg(json!({"JWKSURL": "http://x/k", "JWTSupportedAlgs": ["HS256"]})).unwrap_err().0;
        assert_eq!(e, "Invalid Auth Method: Invalid supported algorithm: HS256");
        let e = cfg(json!({"JWKSURL": "http://x/k", "ClaimMappings": {"a": "x", "b": "x"}})).unwrap_err().0;
        assert!(e.contains("ClaimMappings contains multiple mappings for key \"x\""), "{e}");
        let e = cfg(json!({"JWTValidationPubKeys": ["nope"]})).unwrap_err().0;
        assert!(
            e.starts_with("Invalid Auth Method: error parsing public key JWTValidationPubKeys[0]"),
            "{e}"
        );
        let e = cfg(json!({"JWKSURL": "http://x/k", "Bogus": 1})).unwrap_err().0;
        assert!(e.contains("unknown Config key \"Bogus\""), "{e}");
    }

    #[test]
    fn fields_case_insensitive_and_leeways() {
        let c = cfg(json!({
            "jwksurl": "http://127.0.0.1/k",
            "BoundAudiences": "a",
            "ExpirationLeeway": "-1s",
            "NotBeforeLeeway": "10s",
            "ClockSkewLeeway": 0,
        }))
        .unwrap();
        assert_eq!(c.key_source(), KeySourceKind::Jwks);
        assert_eq!(c.bound_audiences, vec!["a"]);
        assert_eq!((c.expiration_leeway(), c.not_before_leeway(), c.clock_skew_leeway()), (0, 10, 60));
    }
}
