//! Version facts. We report the Consul version whose API we follow, so
//! clients that gate features on `Config.Version` behave as with that
//! Consul; our own version appears as the revision and in `build` metadata.

/// The Consul release whose HTTP API, CLI and config this build follows.
pub const CONSUL_VERSION: &str = "1.22.0";
/// This implementation's own version.
pub const OWN_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Consul protocol versions (the `vsn` tags and `consul version` line).
pub const PROTOCOL: u32 = 2;
pub const PROTOCOL_MIN: u32 = 2;
pub const PROTOCOL_MAX: u32 = 3;

/// The `Revision` shown by `consul version`.
pub fn revision() -> String {
    format!("consul-rs-{OWN_VERSION}")
}
