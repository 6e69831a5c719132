//! Auth methods: checking a bearer token from an outside identity provider
//! and turning it into the claims binding rules select on. Only type `jwt`
//! is served (static PEM keys, a JWKS URL, or OIDC discovery); the other
//! types Consul knows are refused by name.
//!
//! Pure checks (`config`, `jwt`, `keys`, `selector`, `bind`) are separate
//! from the one part that does IO: `fetch` (a bounded HTTP(S) GET for JWKS
//! and discovery documents), used by `validator`, which keeps fetched keys
//! per method.

pub mod bind;
pub mod claims;
pub mod config;
pub mod fetch;
pub mod jwt;
pub mod keys;
pub mod selector;
pub mod validator;

/// The types Consul (community edition) registers, as its error lists them.
pub const CONSUL_TYPES: &[&str] = &["aws-iam", "jwt", "kubernetes", "oidc"];

/// Why a type cannot be used here, if it cannot.
pub fn unsupported_type(method_type: &str) -> Option<String> {
    match method_type {
        "jwt" => None,
        "kubernetes" | "oidc" | "aws-iam" => Some(format!(
            "Invalid Auth Method: Type {method_type:?} is not supported by this agent; only \"jwt\" is"
        )),
        _ => Some(format!("Invalid Auth Method: Type should be one of: [{}]", CONSUL_TYPES.join(" "))),
    }
}

/// A failed login or method check, with the text the caller sees.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

impl AuthError {
    pub fn new(msg: impl Into<String>) -> AuthError {
        AuthError(msg.into())
    }
}
