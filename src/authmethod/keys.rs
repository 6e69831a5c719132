//! Public keys a token may be signed with: from PEM (`JWTValidationPubKeys`:
//! a SubjectPublicKeyInfo or a certificate) or from a JWKS document, and
//! checking a signature with one (ring). RSA (RS*/PS*) and EC P-256/P-384
//! (ES256/ES384) are supported; ES512 (P-521) and Ed25519 are refused with
//! a clear error because the crypto provider the agent ships (ring, already
//! used by rustls here) does not verify them.

use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use rustls_pki_types::pem::{PemObject, SectionKind};
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point (0x04 || x || y).
    P256(Vec<u8>),
    P384(Vec<u8>),
}

/// A key with the `kid` and `alg` a JWKS gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub kid: Option<String>,
    pub alg: Option<String>,
    pub key: PublicKey,
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

fn ec_point(point: &[u8]) -> Result<PublicKey, String> {
    match (point.first(), point.len()) {
        (Some(4), 65) => Ok(PublicKey::P256(point.to_vec())),
        (Some(4), 97) => Ok(PublicKey::P384(point.to_vec())),
        (Some(4), 133) => Err("ECDSA P-521 keys are not supported".into()),
        _ => Err("unsupported or compressed EC public key".into()),
    }
}

fn from_spki(der: &[u8]) -> Result<PublicKey, String> {
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der).map_err(|e| e.to_string())?;
    match spki.parsed().map_err(|e| e.to_string())? {
        x509_parser::public_key::PublicKey::RSA(k) => {
            Ok(PublicKey::Rsa { n: strip_zeros(k.modulus), e: strip_zeros(k.exponent) })
        }
        x509_parser::public_key::PublicKey::EC(p) => ec_point(p.data()),
        _ => Err("data does not contain any valid RSA or ECDSA public keys".into()),
    }
}

/// Parses one PEM block: `PUBLIC KEY` (SubjectPublicKeyInfo) or
/// `CERTIFICATE` (its key).
pub fn parse_pem(pem: &str) -> Result<PublicKey, String> {
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem.as_bytes()) {
        let (kind, der) = item.map_err(|e| format!("invalid PEM: {e:?}"))?;
        match kind {
            SectionKind::PublicKey => return from_spki(&der),
            SectionKind::Certificate => {
                use x509_parser::prelude::FromDer;
                let (_, cert) =
                    x509_parser::certificate::X509Certificate::from_der(&der).map_err(|e| e.to_string())?;
                return from_spki(cert.tbs_certificate.subject_pki.raw);
            }
            _ => continue,
        }
    }
    Err("data does not contain any valid RSA or ECDSA public keys".into())
}

#[derive(Deserialize)]
struct Jwk {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<serde_json::Value>,
}

pub fn b64url(s: &str) -> Result<Vec<u8>, String> {
    let trimmed = s.trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed).map_err(|e| e.to_string())
}

/// The signature keys of a JWKS document. Keys of other types or uses
/// (encryption) are skipped; a document with none usable is an error.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<Key>, String> {
    let doc: Jwks = serde_json::from_slice(body).map_err(|e| format!("failed to decode keys: {e}"))?;
    let mut out = Vec::new();
    for raw in doc.keys {
        let Ok(k) = serde_json::from_value::<Jwk>(raw) else { continue };
        if k.use_.as_deref().is_some_and(|u| u != "sig") {
            continue;
        }
        let key = match (k.kty.as_deref(), k.crv.as_deref()) {
            (Some("RSA"), _) => match (k.n.as_deref().map(b64url), k.e.as_deref().map(b64url)) {
                (Some(Ok(n)), Some(Ok(e))) => PublicKey::Rsa { n: strip_zeros(&n), e: strip_zeros(&e) },
                _ => continue,
            },
            (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
                let (Some(Ok(x)), Some(Ok(y))) = (k.x.as_deref().map(b64url), k.y.as_deref().map(b64url))
                else {
                    continue;
                };
                let size = if crv == "P-256" { 32 } else { 48 };
                if x.len() != size || y.len() != size {
                    continue;
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                match ec_point(&point) {
                    Ok(p) => p,
                    Err(_) => continue,
                }
            }
            _ => continue,
        };
        out.push(Key { kid: k.kid, alg: k.alg, key });
    }
    if out.is_empty() {
        return Err("no usable signature keys in the JWKS document".into());
    }
    Ok(out)
}

/// Whether `key` verifies `signature` over `message` with JWS algorithm
/// `alg`. A key of the wrong kind for the algorithm does not verify.
pub fn verify(key: &PublicKey, alg: &str, message: &[u8], sig: &[u8]) -> bool {
    match (key, alg) {
        (PublicKey::Rsa { n, e }, _) => {
            let params: &signature::RsaParameters = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return false,
            };
            RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }.verify(params, message, sig).is_ok()
        }
        (PublicKey::P256(point), "ES256") => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message, sig).is_ok()
        }
        (PublicKey::P384(point), "ES384") => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point).verify(message, sig).is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    #[test]
    fn ec_key_from_jwks_verifies_and_wrong_alg_does_not() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-256", "kid": "k1", "x": enc(&point[1..33]), "y": enc(&point[33..])},
        ]});
        let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("k1"));
        let sig = pair.sign(&rng, b"msg").unwrap();
        assert!(verify(&keys[0].key, "ES256", b"msg", sig.as_ref()));
        assert!(!verify(&keys[0].key, "ES256", b"other", sig.as_ref()));
        assert!(!verify(&keys[0].key, "RS256", b"msg", sig.as_ref()));
        assert!(parse_jwks(b"{\"keys\": []}").is_err());
        assert!(parse_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err());
    }
}
