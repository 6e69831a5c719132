//! A compact JWS (`header.payload.signature`): parsing, the signature check
//! against a set of keys, and the time, issuer and audience checks with
//! Consul's leeway rules and error texts.

use super::config::JwtConfig;
use super::keys::{self, Key};
use super::AuthError;
use serde_json::{Map, Value};

/// The largest bearer token accepted (JWTs are a few KiB; this bounds the
/// work a login can cause).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug)]
pub struct Jws {
    pub alg: String,
    pub kid: Option<String>,
    /// `header.payload` as received (what the signature covers).
    signing_input: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// Parses a compact JWS without checking anything but its form.
pub fn parse(token: &str) -> Result<Jws, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!("token is {} bytes, more than the {MAX_TOKEN_BYTES} accepted", token.len()));
    }
    let parts: Vec<&str> = token.trim().split('.').collect();
    if parts.len() != 3 {
        return Err("compact JWS format must have three parts".into());
    }
    let header = keys::b64url(parts[0]).map_err(|e| format!("invalid header encoding: {e}"))?;
    let header: Map<String, Value> =
        serde_json::from_slice(&header).map_err(|e| format!("invalid header: {e}"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or_default().to_string();
    if alg.is_empty() {
        return Err("header has no \"alg\"".into());
    }
    if header.contains_key("crit") {
        return Err("unsupported critical header".into());
    }
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_string);
    let payload = keys::b64url(parts[1]).map_err(|e| format!("invalid payload encoding: {e}"))?;
    let signature = keys::b64url(parts[2]).map_err(|e| format!("invalid signature encoding: {e}"))?;
    Ok(Jws { alg, kid, signing_input: format!("{}.{}", parts[0], parts[1]), payload, signature })
}

impl Jws {
    /// Whether one of `keys` (those whose `kid` and `alg` fit) verifies
    /// the signature. Unsigned and HMAC tokens never do.
    pub fn verified_by(&self, keys: &[Key]) -> bool {
        keys.iter()
            .filter(|k| self.kid.is_none() || k.kid.is_none() || k.kid == self.kid)
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == self.alg))
            .any(|k| keys::verify(&k.key, &self.alg, self.signing_input.as_bytes(), &self.signature))
    }

    /// Whether a key with this token's `kid` is among `keys` (an unknown
    /// one makes a JWKS cache refresh).
    pub fn kid_known(&self, keys: &[Key]) -> bool {
        match &self.kid {
            None => true,
            Some(kid) => keys.iter().any(|k| k.kid.as_ref() == Some(kid)),
        }
    }

    pub fn claims(&self) -> Result<Map<String, Value>, AuthError> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| AuthError(format!("failed to unmarshal claims: {e}")))
    }
}

fn numeric(claims: &Map<String, Value>, name: &str) -> Result<i64, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(0.0) as i64),
        Some(_) => Err(AuthError(format!("failed to unmarshal claims: claim {name:?} is not a number"))),
    }
}

fn audiences(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

/// The time, issuer and audience checks of a verified token's claims at
/// `now` (Unix seconds). `issuer`: the issuer required ("" none).
pub fn check_claims(
    claims: &Map<String, Value>,
    config: &JwtConfig,
    issuer: &str,
    now: i64,
) -> Result<(), AuthError> {
    let iat = numeric(claims, "iat")?;
    let mut exp = numeric(claims, "exp")?;
    let mut nbf = numeric(claims, "nbf")?;
    if iat == 0 && exp == 0 && nbf == 0 {
        return Err(AuthError::new("no issue time, notbefore, or expiration time encoded in token"));
    }
    // As Consul: a missing expiry is the latest start plus the expiration
    // leeway; a missing not-before is the issue time, else the expiry less
    // the not-before leeway.
    if exp == 0 {
        exp = iat.max(nbf) + config.expiration_leeway();
    }
    if nbf == 0 {
        nbf = if iat != 0 { iat } else { exp - config.not_before_leeway() };
    }
    let failed = |what: &str| {
        AuthError(format!("error validating claims: go-jose/go-jose/jwt: validation failed, {what}"))
    };
    if !issuer.is_empty() && claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(failed("invalid issuer claim (iss)"));
    }
    let skew = config.clock_skew_leeway();
    if now + skew < nbf {
        return Err(failed("token not valid yet (nbf)"));
    }
    if now - skew > exp {
        return Err(failed("token is expired (exp)"));
    }
    if iat != 0 && now + skew < iat {
        return Err(AuthError::new(
            "error validating claims: go-jose/go-jose/jwt: validation field, token issued in the future (iat)",
        ));
    }
    let aud = audiences(claims);
    if config.bound_audiences.is_empty() {
        if !aud.is_empty() {
            return Err(AuthError::new(
                "error validating claims: audience claim found in JWT but no audiences are bound",
            ));
        }
    } else if !config.bound_audiences.iter().any(|b| aud.contains(b)) {
        return Err(AuthError::new("error validating claims: aud claim does not match any bound audience"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn time_issuer_and_audience_rules() {
        let mut c = JwtConfig { bound_audiences: vec!["consul".into()], ..Default::default() };
        let now = 1_000_000;
        let ok = claims(json!({"iat": now - 10, "exp": now + 60, "aud": ["x", "consul"], "iss": "me"}));
        check_claims(&ok, &c, "me", now).unwrap();
        assert!(check_claims(&ok, &c, "other", now).unwrap_err().0.contains("invalid issuer claim (iss)"));
        let expired = claims(json!({"exp": now - 61, "aud": "consul"}));
        assert!(check_claims(&expired, &c, "", now).unwrap_err().0.contains("token is expired (exp)"));
        // Within the default one-minute clock skew.
        check_claims(&claims(json!({"exp": now - 30, "aud": "consul"})), &c, "", now).unwrap();
        let future = claims(json!({"nbf": now + 120, "exp": now + 600, "aud": "consul"}));
        assert!(check_claims(&future, &c, "", now).unwrap_err().0.contains("not valid yet"));
        let none = claims(json!({"aud": "consul"}));
        assert!(check_claims(&none, &c, "", now).unwrap_err().0.starts_with("no issue time"));
        // Only iat: expires after the 150 s leeway (plus skew).
        let old = claims(json!({"iat": now - 300, "aud": "consul"}));
        assert!(check_claims(&old, &c, "", now).unwrap_err().0.contains("expired"));
        let wrong_aud = claims(json!({"iat": now, "aud": "vault"}));
        assert!(check_claims(&wrong_aud, &c, "", now).unwrap_err().0.contains("aud claim does not match"));
        c.bound_audiences.clear();
        assert!(check_claims(&wrong_aud, &c, "", now).unwrap_err().0.contains("no audiences are bound"));
    }

    #[test]
    fn malformed_tokens_are_refused_by_form() {
        assert!(parse("abc").unwrap_err().contains("three parts"));
        assert!(parse("a.b.c").is_err());
        assert!(parse(&"a".repeat(MAX_TOKEN_BYTES + 1)).unwrap_err().contains("more than"));
        let h = keys_enc(br#"{"alg":"none"}"#);
        let jws = parse(&format!("{h}.{}.", keys_enc(b"{}"))).unwrap();
        assert!(!jws.verified_by(&[]));
    }

    fn keys_enc(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }
}
