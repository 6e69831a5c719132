//! One `jwt` method's login check: its parsed config and its keys (static,
//! or fetched from a JWKS URL / OIDC discovery and kept: refreshed when
//! older than `REFRESH_AFTER` or when a token names a key not in the set,
//! as after a key rotation). Validators are cached per method and rebuilt
//! when the method changes (`ValidatorCache`).

use super::claims::{self, Identity};
use super::config::{self, JwtConfig, KeySourceKind};
use super::keys::{self, Key};
use super::{fetch, jwt, AuthError};
use crate::acl::model::AuthMethod;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Fetched keys older than this are fetched again before use.
pub const REFRESH_AFTER: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Fetched {
    keys: Vec<Key>,
    /// The issuer the discovery document names (discovery only).
    issuer: String,
    at: Option<Instant>,
}

pub struct Validator {
    pub config: JwtConfig,
    static_keys: Vec<Key>,
    /// Held across a fetch, so concurrent logins share one.
    fetched: tokio::sync::Mutex<Fetched>,
}

/// Parses a method's `Config` JSON text into its `jwt` settings.
pub fn parse_config(config_json: &str) -> Result<JwtConfig, AuthError> {
    let v: Value = if config_json.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_json::from_str(config_json).map_err(|e| AuthError(format!("Invalid Auth Method: {e}")))?
    };
    let Value::Object(m) = v else {
        return Err(AuthError::new("Invalid Auth Method: Config must be an object"));
    };
    config::parse(&m)
}

/// Checks what can only be checked over the network when a method is
/// written (as Consul does): the JWKS URL answers with keys, or the
/// discovery document names a JWKS URL.
pub async fn check_reachable(config: &JwtConfig) -> Result<(), AuthError> {
    match config.key_source() {
        KeySourceKind::Static => Ok(()),
        KeySourceKind::Jwks => {
            fetch::check_ca(&config.jwks_ca_cert)
                .map_err(|e| AuthError(format!("Invalid Auth Method: error checking JWKSCACert: {e}")))?;
            let body = fetch::get(&config.jwks_url, &config.jwks_ca_cert)
                .await
                .map_err(|e| AuthError(format!("Invalid Auth Method: error checking JWKSURL: {e}")))?;
            keys::parse_jwks(&body)
                .map(|_| ())
                .map_err(|e| AuthError(format!("Invalid Auth Method: error checking JWKSURL: {e}")))
        }
        KeySourceKind::OidcDiscovery => {
            fetch::check_ca(&config.oidc_discovery_ca_cert).map_err(|e| {
                AuthError(format!("Invalid Auth Method: error checking OIDCDiscoveryCACert: {e}"))
            })?;
            discover(config)
                .await
                .map(|_| ())
                .map_err(|e| AuthError(format!("Invalid Auth Method: error checking OIDCDiscoveryURL: {e}")))
        }
    }
}

/// The discovery document's issuer and JWKS URL.
async fn discover(config: &JwtConfig) -> Result<(String, String), String> {
    let base = config.oidc_discovery_url.trim_end_matches('/');
    let url = format!("{base}/.well-known/openid-configuration");
    let body = fetch::get(&url, &config.oidc_discovery_ca_cert).await?;
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("oidc: failed to decode provider discovery object: {e}"))?;
    let issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or_default().to_string();
    if issuer.trim_end_matches('/') != base {
        return Err(format!(
            "oidc: issuer did not match the issuer returned by provider, expected {:?} got {issuer:?}",
            config.oidc_discovery_url
        ));
    }
    let jwks = doc.get("jwks_uri").and_then(Value::as_str).unwrap_or_default().to_string();
    if jwks.is_empty() {
        return Err("oidc: discovery document has no jwks_uri".into());
    }
    Ok((issuer, jwks))
}

impl Validator {
    pub fn new(config: JwtConfig) -> Result<Validator, AuthError> {
        let mut static_keys = Vec::new();
        for (i, pem) in config.jwt_validation_pub_keys.iter().enumerate() {
            let key = keys::parse_pem(pem).map_err(|e| {
                AuthError(format!(
                    "Invalid Auth Method: error parsing public key JWTValidationPubKeys[{i}]: {e}"
                ))
            })?;
            static_keys.push(Key { kid: None, alg: None, key });
        }
        Ok(Validator { config, static_keys, fetched: Default::default() })
    }

    /// Algorithms a token may use: the configured ones; when none are,
    /// any this agent verifies (discovery: RS256, as OIDC's default).
    fn alg_allowed(&self, alg: &str) -> Result<(), AuthError> {
        let configured = &self.config.jwt_supported_algs;
        let ok = if !configured.is_empty() {
            configured.iter().any(|a| a == alg)
        } else if self.config.key_source() == KeySourceKind::OidcDiscovery {
            alg == "RS256"
        } else {
            config::KNOWN_ALGS.contains(&alg)
        };
        if ok {
            Ok(())
        } else {
            let expected = if configured.is_empty() { vec!["RS256".to_string()] } else { configured.clone() };
            Err(AuthError(format!(
                "error verifying token: token signed with unsupported algorithm, expected {expected:?} got {alg:?}"
            )))
        }
    }

    /// Fetches the remote keys (and for discovery the document first).
    async fn refresh(&self, f: &mut Fetched) -> Result<(), String> {
        let (url, ca) = match self.config.key_source() {
            KeySourceKind::Jwks => (self.config.jwks_url.clone(), self.config.jwks_ca_cert.clone()),
            _ => {
                let (issuer, url) = discover(&self.config).await?;
                f.issuer = issuer;
                (url, self.config.oidc_discovery_ca_cert.clone())
            }
        };
        let body = fetch::get(&url, &ca).await?;
        f.keys = keys::parse_jwks(&body)?;
        f.at = Some(Instant::now());
        tracing::debug!(target: "acl.auth", url = %url, keys = f.keys.len(), "fetched signing keys");
        Ok(())
    }

    /// Checks a bearer token; what it proves, or why it is refused.
    pub async fn validate(&self, token: &str, now_unix_s: i64) -> Result<Identity, AuthError> {
        let source = self.config.key_source();
        let jws = match jwt::parse(token) {
            Ok(j) => j,
            Err(e) if source == KeySourceKind::Static => {
                return Err(AuthError(format!("error parsing token: {e}")))
            }
            Err(e) => return Err(AuthError(format!("error verifying token: malformed jwt: {e}"))),
        };
        self.alg_allowed(&jws.alg)?;
        let mut issuer = self.config.bound_issuer.clone();
        if source == KeySourceKind::Static {
            if !jws.verified_by(&self.static_keys) {
                return Err(AuthError::new("no known key successfully validated the token signature"));
            }
        } else {
            let mut f = self.fetched.lock().await;
            let stale = f.at.is_none_or(|at| at.elapsed() > REFRESH_AFTER);
            if stale || !jws.kid_known(&f.keys) {
                if let Err(e) = self.refresh(&mut f).await {
                    // Keys fetched before still serve a token they verify.
                    if f.keys.is_empty() || !jws.verified_by(&f.keys) {
                        tracing::warn!(target: "acl.auth", error = %e, "fetching signing keys failed");
                        return Err(AuthError(format!("error verifying token: fetching keys: {e}")));
                    }
                }
            }
            if !jws.verified_by(&f.keys) {
                let prefix = if source == KeySourceKind::Jwks {
                    "error verifying token"
                } else {
                    "error validating signature"
                };
                return Err(AuthError(format!("{prefix}: failed to verify id token signature")));
            }
            if source == KeySourceKind::OidcDiscovery && issuer.is_empty() {
                issuer = f.issuer.clone();
            }
        }
        let all = jws.claims()?;
        jwt::check_claims(&all, &self.config, &issuer, now_unix_s)?;
        claims::extract(&all, &self.config)
    }
}

/// Validators by method name, each valid for the method's ModifyIndex it
/// was built at.
#[derive(Default)]
pub struct ValidatorCache {
    entries: Mutex<HashMap<String, (u64, Arc<Validator>)>>,
}

impl ValidatorCache {
    pub fn get(&self, method: &AuthMethod) -> Result<Arc<Validator>, AuthError> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((index, v)) = entries.get(&method.name) {
            if *index == method.modify_index {
                return Ok(v.clone());
            }
        }
        if let Some(why) = super::unsupported_type(&method.method_type) {
            return Err(AuthError(why));
        }
        let v = Arc::new(Validator::new(parse_config(&method.config)?)?);
        // Methods are few; drop the ones that no longer match rather than
        // track deletions.
        if entries.len() > 256 {
            entries.clear();
        }
        entries.insert(method.name.clone(), (method.modify_index, v.clone()));
        Ok(v)
    }
}
