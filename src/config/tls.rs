//! TLS settings: the nested `tls { defaults, internal_rpc, https, grpc }`
//! block, the deprecated flat keys folded into it (per source, as Consul
//! does, with Consul's deprecation warnings), and the resolved per-surface
//! settings the `tls` module loads certificates from.
//!
//! Owns: names and values (versions, cipher suites), inheritance from
//! `defaults`, and refusing combinations that cannot work, with the fix
//! spelled out. Must not read certificate files: that is the `tls`
//! module's job at start and on reload.

use super::file::{FileConfig, TlsBlock, TlsProtocolBlock};
use super::ConfigError;
use serde_json::{Map, Value};
use std::path::PathBuf;

/// The lowest TLS version a surface accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    #[default]
    V1_2,
    V1_3,
}

impl TlsVersion {
    /// Consul's names (`TLSv1_2`); `TLSv1_0`/`TLSv1_1` are refused by name.
    fn parse(key: &str, s: &str) -> Result<TlsVersion, ConfigError> {
        match s {
            "TLSv1_2" => Ok(TlsVersion::V1_2),
            "TLSv1_3" => Ok(TlsVersion::V1_3),
            "TLSv1_0" | "TLSv1_1" => Err(ConfigError::Invalid(format!(
                "{key}: {s} is not supported: this agent's TLS stack (rustls) implements only TLS 1.2 and 1.3 \
                 (TLS 1.0 and 1.1 are deprecated by RFC 8996); use TLSv1_2 or TLSv1_3"
            ))),
            other => Err(ConfigError::Invalid(format!(
                "{key}: invalid TLS version {other:?}: must be one of TLSv1_2, TLSv1_3"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::V1_2 => "TLSv1_2",
            TlsVersion::V1_3 => "TLSv1_3",
        }
    }
}

/// The TLS 1.2 cipher suites we can offer, by Consul's (Go's) names, with
/// Go's alternative spelling of the ChaCha20 suites.
pub const CIPHER_SUITES: &[(&str, CipherSuite)] = &[
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", CipherSuite::EcdheEcdsaAes128Gcm),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", CipherSuite::EcdheEcdsaAes256Gcm),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", CipherSuite::EcdheEcdsaChacha20),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", CipherSuite::EcdheEcdsaChacha20),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", CipherSuite::EcdheRsaAes128Gcm),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", CipherSuite::EcdheRsaAes256Gcm),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", CipherSuite::EcdheRsaChacha20),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", CipherSuite::EcdheRsaChacha20),
];

/// A TLS 1.2 cipher suite rustls implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CipherSuite {
    EcdheEcdsaAes128Gcm,
    EcdheEcdsaAes256Gcm,
    EcdheEcdsaChacha20,
    EcdheRsaAes128Gcm,
    EcdheRsaAes256Gcm,
    EcdheRsaChacha20,
}

fn parse_cipher_suites(key: &str, s: &str) -> Result<Vec<CipherSuite>, ConfigError> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match CIPHER_SUITES.iter().find(|(n, _)| *n == name) {
            Some((_, suite)) => {
                if !out.contains(suite) {
                    out.push(*suite);
                }
            }
            None if name.contains("_CBC_") || name.contains("_RC4_") || name.contains("3DES") => {
                return Err(ConfigError::Invalid(format!(
                    "{key}: cipher suite {name} is not supported: this agent's TLS stack (rustls) offers only \
                     AEAD suites (AES-GCM, ChaCha20-Poly1305); CBC, RC4 and 3DES suites are considered broken"
                )))
            }
            None => {
                let known: Vec<&str> = CIPHER_SUITES.iter().map(|(n, _)| *n).collect();
                return Err(ConfigError::Invalid(format!(
                    "{key}: unknown cipher suite {name:?}; supported: {}",
                    known.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

/// One surface's resolved settings (its own keys over `tls.defaults`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsProtocol {
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub min_version: TlsVersion,
    /// Empty: rustls's default TLS 1.2 suites.
    pub cipher_suites: Vec<CipherSuite>,
    pub verify_incoming: bool,
    pub verify_outgoing: bool,
    pub verify_server_hostname: bool,
}

impl TlsProtocol {
    pub fn has_ca(&self) -> bool {
        self.ca_file.is_some() || self.ca_path.is_some()
    }

    pub fn has_cert(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }
}

/// Everything TLS, resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsSettings {
    pub https: TlsProtocol,
    pub internal_rpc: TlsProtocol,
    pub grpc: TlsProtocol,
    /// `server_name`: the name this agent's outgoing TLS asks for (SNI) when
    /// it does not verify a server's hostname, and the one its checks send.
    pub server_name: Option<String>,
    /// `enable_agent_tls_for_checks`: HTTP and gRPC checks present the
    /// agent's certificate (`tls.https`'s) and trust its CA.
    pub enable_agent_tls_for_checks: bool,
}

impl TlsSettings {
    /// Whether the server port (RPC and Raft) speaks TLS at all: it accepts
    /// TLS when it has a certificate, and dials TLS when `verify_outgoing`.
    pub fn rpc_enabled(&self) -> bool {
        self.internal_rpc.has_cert() || self.internal_rpc.verify_outgoing
    }
}

/// Consul's deprecation warning wording.
fn deprecated(old: &str, new: &str) -> String {
    format!("The '{old}' field is deprecated. Use the '{new}' field instead.")
}

/// Folds one source's deprecated flat TLS keys into its `tls` block (a
/// nested key already set in the same source wins, as in Consul) and
/// returns the warnings. Runs on each source before the merge, so a later
/// source's flat key overrides an earlier source's nested one, as in Consul.
pub fn fold_deprecated(source: &mut Value) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(obj) = source.as_object_mut() else { return warnings };
    // (flat key, block, nested key)
    const MOVES: &[(&str, &str, &str)] = &[
        ("ca_file", "defaults", "ca_file"),
        ("ca_path", "defaults", "ca_path"),
        ("cert_file", "defaults", "cert_file"),
        ("key_file", "defaults", "key_file"),
        ("tls_cipher_suites", "defaults", "tls_cipher_suites"),
        ("tls_min_version", "defaults", "tls_min_version"),
        ("verify_incoming", "defaults", "verify_incoming"),
        ("verify_incoming_https", "https", "verify_incoming"),
        ("verify_incoming_rpc", "internal_rpc", "verify_incoming"),
        ("verify_outgoing", "defaults", "verify_outgoing"),
        ("verify_server_hostname", "internal_rpc", "verify_server_hostname"),
    ];
    for (flat, block, key) in MOVES {
        let Some(mut value) = obj.remove(*flat) else { continue };
        if value.is_null() {
            continue;
        }
        if *flat == "tls_min_version" {
            if let Some(old) = value.as_str() {
                let new = match old {
                    "tls10" => Some("TLSv1_0"),
                    "tls11" => Some("TLSv1_1"),
                    "tls12" => Some("TLSv1_2"),
                    "tls13" => Some("TLSv1_3"),
                    _ => None,
                };
                if let Some(new) = new {
                    warnings.push(format!(
                        "'tls_min_version' value '{old}' is deprecated, please specify '{new}' instead"
                    ));
                    value = Value::String(new.to_string());
                }
            }
        }
        let nested = tls_block(obj, block);
        if let Some(nested) = nested {
            nested.entry(key.to_string()).or_insert(value);
        }
        warnings.push(deprecated(flat, &format!("tls.{block}.{key}")));
    }
    if obj.remove("tls_prefer_server_cipher_suites").is_some() {
        warnings
            .push("The 'tls_prefer_server_cipher_suites' field is deprecated and will be ignored.".into());
    }
    warnings
}

/// The object `tls.<block>` of a source, created if missing; `None` when
/// the source's `tls` is not an object (the typed parse reports that).
fn tls_block<'a>(obj: &'a mut Map<String, Value>, block: &str) -> Option<&'a mut Map<String, Value>> {
    // One HCL block is an object; a list of one (JSON written that way) is
    // taken as that object.
    fn single(v: &mut Value) -> &mut Value {
        if matches!(v, Value::Array(items) if items.len() == 1) {
            if let Value::Array(items) = v {
                return &mut items[0];
            }
        }
        v
    }
    let tls = single(obj.entry("tls").or_insert_with(|| Value::Object(Map::new())));
    let b = single(tls.as_object_mut()?.entry(block).or_insert_with(|| Value::Object(Map::new())));
    b.as_object_mut()
}

/// Resolves the `tls` block and the TLS-related top-level keys; refuses what
/// cannot work. `warnings` gets the notes an operator should see once.
pub(super) fn build(c: &FileConfig, warnings: &mut Vec<String>) -> Result<TlsSettings, ConfigError> {
    refuse_auto_tls(c)?;
    let block = c.tls.clone().unwrap_or_default();
    check_keys(&block)?;
    let defaults = block.defaults.clone().unwrap_or_default();
    let resolve = |name: &str, own: &Option<TlsProtocolBlock>| -> Result<TlsProtocol, ConfigError> {
        let own = own.clone().unwrap_or_default();
        let pick = |a: &Option<String>, b: &Option<String>| {
            a.clone().or_else(|| b.clone()).filter(|s| !s.is_empty()).map(PathBuf::from)
        };
        let min_version_key = if own.tls_min_version.is_some() {
            format!("tls.{name}.tls_min_version")
        } else {
            "tls.defaults.tls_min_version".to_string()
        };
        let min_version = match own.tls_min_version.as_deref().or(defaults.tls_min_version.as_deref()) {
            None | Some("") => TlsVersion::V1_2,
            Some(v) => TlsVersion::parse(&min_version_key, v)?,
        };
        let suites_key = if own.tls_cipher_suites.is_some() {
            format!("tls.{name}.tls_cipher_suites")
        } else {
            "tls.defaults.tls_cipher_suites".to_string()
        };
        let cipher_suites = match own.tls_cipher_suites.as_deref().or(defaults.tls_cipher_suites.as_deref()) {
            None => Vec::new(),
            Some(s) => parse_cipher_suites(&suites_key, s)?,
        };
        if !cipher_suites.is_empty() && min_version == TlsVersion::V1_3 {
            return Err(ConfigError::Invalid(format!(
                "{suites_key}: cipher suites cannot be chosen with tls_min_version TLSv1_3: they apply to \
                 TLS 1.2 only (TLS 1.3 suites are not configurable); remove one of the two"
            )));
        }
        let verify_server_hostname =
            own.verify_server_hostname.or(defaults.verify_server_hostname).unwrap_or(false);
        Ok(TlsProtocol {
            ca_file: pick(&own.ca_file, &defaults.ca_file),
            ca_path: pick(&own.ca_path, &defaults.ca_path),
            cert_file: pick(&own.cert_file, &defaults.cert_file),
            key_file: pick(&own.key_file, &defaults.key_file),
            min_version,
            cipher_suites,
            verify_incoming: own.verify_incoming.or(defaults.verify_incoming).unwrap_or(false),
            // Checking a server's name is pointless without checking its
            // chain, so it implies verify_outgoing (as in Consul).
            verify_outgoing: own.verify_outgoing.or(defaults.verify_outgoing).unwrap_or(false)
                || verify_server_hostname,
            verify_server_hostname,
        })
    };
    let settings = TlsSettings {
        https: resolve("https", &block.https)?,
        internal_rpc: resolve("internal_rpc", &block.internal_rpc)?,
        grpc: resolve("grpc", &block.grpc)?,
        server_name: c.server_name.clone().filter(|s| !s.is_empty()),
        enable_agent_tls_for_checks: c.enable_agent_tls_for_checks.unwrap_or(false),
    };
    for (name, p) in [("https", &settings.https), ("internal_rpc", &settings.internal_rpc)] {
        check_protocol(name, p)?;
    }
    if block.grpc.is_some() {
        warnings.push(
            "tls.grpc applies to the gRPC ports, which this agent does not serve (ports.grpc and \
             ports.grpc_tls are ignored); its settings are checked but have no effect"
                .to_string(),
        );
    }
    if settings.https.verify_incoming && https_port_set(c) {
        warnings.push(
            "tls.https.verify_incoming is on: every HTTPS client, including the consul CLI and browsers, \
             must present a certificate signed by the CA (consul CLI: -client-cert/-client-key or \
             CONSUL_CLIENT_CERT/CONSUL_CLIENT_KEY)"
                .to_string(),
        );
    }
    Ok(settings)
}

fn https_port_set(c: &FileConfig) -> bool {
    c.ports.as_ref().and_then(|p| p.https).is_some_and(|p| p > 0)
}

/// `auto_encrypt` and `auto_config` have servers sign agents' certificates
/// with the built-in Connect CA, which this agent does not have.
fn refuse_auto_tls(c: &FileConfig) -> Result<(), ConfigError> {
    let enabled = |v: &Option<Value>, key: &str| {
        v.as_ref().is_some_and(|v| {
            let objects: Vec<&Value> = match v {
                Value::Array(items) => items.iter().collect(),
                v => vec![v],
            };
            objects.iter().any(|o| o.get(key) == Some(&Value::Bool(true)))
        })
    };
    let why = "servers would sign agent certificates with Consul's built-in Connect CA, which this agent \
               does not implement; make certificates with `consul tls cert create -client` and set \
               tls.defaults.cert_file and key_file on each agent instead";
    if enabled(&c.auto_encrypt, "tls") || enabled(&c.auto_encrypt, "allow_tls") {
        return Err(ConfigError::Invalid(format!("auto_encrypt is not supported: {why}")));
    }
    if enabled(&c.auto_config, "enabled") {
        return Err(ConfigError::Invalid(format!("auto_config.enabled is not supported: {why}")));
    }
    Ok(())
}

/// Keys Consul does not have at a level (they parse, since the levels share
/// one shape, but mean nothing there).
fn check_keys(block: &TlsBlock) -> Result<(), ConfigError> {
    let bad =
        |level: &str, key: &str| Err(ConfigError::Invalid(format!("invalid config key tls.{level}.{key}")));
    for (level, b) in [("defaults", &block.defaults), ("internal_rpc", &block.internal_rpc)] {
        if b.as_ref().is_some_and(|b| b.use_auto_cert.is_some()) {
            return bad(level, "use_auto_cert");
        }
    }
    if let Some(h) = &block.https {
        if h.verify_server_hostname.is_some() {
            return bad("https", "verify_server_hostname");
        }
        if h.use_auto_cert.is_some() {
            return bad("https", "use_auto_cert");
        }
    }
    if let Some(g) = &block.grpc {
        if g.verify_server_hostname.is_some() {
            return bad("grpc", "verify_server_hostname");
        }
        if g.verify_outgoing.is_some() {
            return bad("grpc", "verify_outgoing");
        }
        if g.use_auto_cert == Some(true) {
            return Err(ConfigError::Invalid(
                "tls.grpc.use_auto_cert is not supported: auto certificates come from Consul's built-in \
                 Connect CA, which this agent does not implement"
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Refuses settings that cannot work, saying how to fix them.
fn check_protocol(name: &str, p: &TlsProtocol) -> Result<(), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    match (&p.cert_file, &p.key_file) {
        (Some(_), None) => {
            return invalid(format!(
                "tls.{name}: cert_file is set but key_file is not; set both (or tls.defaults.key_file)"
            ))
        }
        (None, Some(_)) => {
            return invalid(format!(
                "tls.{name}: key_file is set but cert_file is not; set both (or tls.defaults.cert_file)"
            ))
        }
        _ => {}
    }
    if p.verify_incoming && !p.has_ca() {
        return invalid(format!(
            "tls.{name}.verify_incoming is set but no CA is configured to verify client certificates with; \
             set tls.{name}.ca_file (or tls.defaults.ca_file / ca_path) to the CA that signed them"
        ));
    }
    if p.verify_incoming && !p.has_cert() {
        return invalid(format!(
            "tls.{name}.verify_incoming is set but this agent has no certificate to serve TLS with; set \
             tls.{name}.cert_file and key_file (or tls.defaults.cert_file and key_file)"
        ));
    }
    if p.verify_outgoing && !p.has_ca() {
        return invalid(format!(
            "tls.{name}.verify_outgoing is set but no CA is configured to verify servers' certificates with; \
             set tls.{name}.ca_file (or tls.defaults.ca_file / ca_path)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build_json(v: Value) -> Result<(TlsSettings, Vec<String>), ConfigError> {
        let mut v = v;
        let mut warnings = fold_deprecated(&mut v);
        let c: FileConfig = serde_json::from_value(v).unwrap();
        build(&c, &mut warnings).map(|s| (s, warnings))
    }

    #[test]
    fn defaults_are_inherited_and_overridden() {
        let (s, _) = build_json(json!({"tls": {
            "defaults": {"ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem",
                         "verify_incoming": true, "verify_outgoing": true, "tls_min_version": "TLSv1_3"},
            "https": {"verify_incoming": false, "cert_file": "h.pem", "key_file": "hk.pem"},
            "internal_rpc": {"verify_server_hostname": true}
        }}))
        .unwrap();
        assert_eq!(s.https.cert_file, Some(PathBuf::from("h.pem")));
        assert!(!s.https.verify_incoming && s.https.verify_outgoing);
        assert_eq!(s.https.min_version, TlsVersion::V1_3);
        assert_eq!(s.internal_rpc.cert_file, Some(PathBuf::from("c.pem")));
        assert!(s.internal_rpc.verify_incoming && s.internal_rpc.verify_server_hostname);
        assert!(!s.https.verify_server_hostname);
        assert!(s.rpc_enabled());
    }

    #[test]
    fn flat_keys_fold_with_consul_warnings() {
        let (s, w) = build_json(json!({
            "ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem",
            "verify_incoming_rpc": true, "verify_outgoing": true, "verify_server_hostname": true,
            "tls_min_version": "tls12", "tls_prefer_server_cipher_suites": true,
            "tls": {"defaults": {"key_file": "nested-wins.pem"}}
        }))
        .unwrap();
        assert_eq!(s.internal_rpc.key_file, Some(PathBuf::from("nested-wins.pem")));
        assert!(s.internal_rpc.verify_incoming && !s.https.verify_incoming);
        assert!(s.internal_rpc.verify_server_hostname);
        assert!(
            w.contains(
                &"The 'ca_file' field is deprecated. Use the 'tls.defaults.ca_file' field instead."
                    .to_string()
            ),
            "{w:?}"
        );
        assert!(w.iter().any(|m| m.contains("'tls_min_version' value 'tls12' is deprecated")), "{w:?}");
        assert!(w.iter().any(|m| m.contains("tls.internal_rpc.verify_server_hostname")), "{w:?}");
        assert!(w.iter().any(|m| m.contains("tls_prefer_server_cipher_suites")), "{w:?}");
    }

    #[test]
    fn refusals_name_the_key_and_the_fix() {
        let msg = |v: Value| build_json(v).unwrap_err().to_string();
        let m = msg(json!({"tls": {"https": {"verify_incoming": true, "cert_file": "c", "key_file": "k"}}}));
        assert!(m.contains("tls.https.verify_incoming") && m.contains("ca_file"), "{m}");
        let m = msg(json!({"tls": {"defaults": {"tls_min_version": "TLSv1_1"}}}));
        assert!(m.contains("TLSv1_1 is not supported") && m.contains("rustls"), "{m}");
        let m = msg(json!({"tls_min_version": "tls10"}));
        assert!(m.contains("TLSv1_0 is not supported"), "{m}");
        let m =
            msg(json!({"tls": {"defaults": {"tls_cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}}}));
        assert!(
            m.contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is not supported") && m.contains("CBC"),
            "{m}"
        );
        let m = msg(
            json!({"tls": {"defaults": {"tls_cipher_suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "tls_min_version": "TLSv1_3"}}}),
        );
        assert!(m.contains("TLS 1.2 only"), "{m}");
        let m = msg(json!({"tls": {"defaults": {"cert_file": "c"}}}));
        assert!(m.contains("key_file is set but") || m.contains("cert_file is set but"), "{m}");
        let m = msg(json!({"verify_outgoing": true}));
        assert!(m.contains("verify_outgoing is set but no CA"), "{m}");
        let m = msg(json!({"tls": {"https": {"verify_server_hostname": true}}}));
        assert_eq!(m, "invalid config key tls.https.verify_server_hostname");
        let m = msg(json!({"auto_encrypt": {"tls": true}}));
        assert!(m.contains("auto_encrypt") && m.contains("Connect CA"), "{m}");
        let m = msg(json!({"auto_config": {"enabled": true}}));
        assert!(m.contains("auto_config.enabled") && m.contains("Connect CA"), "{m}");
    }

    #[test]
    fn the_tutorials_hcl_block() {
        let doc = crate::config::hcl::parse(
            r#"
tls {
  defaults {
    ca_file = "consul-agent-ca.pem"
    cert_file = "dc1-server-consul-0.pem"
    key_file = "dc1-server-consul-0-key.pem"
    verify_incoming = true
    verify_outgoing = true
  }
  internal_rpc {
    verify_server_hostname = true
  }
}
"#,
        )
        .unwrap();
        let (s, _) = build_json(doc.value).unwrap();
        assert!(
            s.internal_rpc.verify_incoming
                && s.internal_rpc.verify_server_hostname
                && s.https.verify_incoming
        );
        assert_eq!(s.https.key_file, Some(PathBuf::from("dc1-server-consul-0-key.pem")));
    }

    #[test]
    fn cipher_suites_by_consul_names() {
        let (s, _) = build_json(json!({"tls": {"defaults": {"tls_cipher_suites":
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"}}}))
        .unwrap();
        assert_eq!(
            s.https.cipher_suites,
            vec![CipherSuite::EcdheEcdsaAes128Gcm, CipherSuite::EcdheRsaChacha20]
        );
    }
}
