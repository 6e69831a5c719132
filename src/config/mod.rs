//! Agent configuration: reading config files and directories (JSON or
//! HCL), merging them with flags in Consul's order, applying defaults and
//! validating.
//!
//! Owns: the config file format (`file.rs`), HCL parsing (`hcl/`), merge
//! rules (`merge.rs`), address keys and go-sockaddr templates (`addrs.rs`,
//! `sockaddr/`, `netif.rs`), TLS settings (`tls.rs`) and the resolved
//! `RuntimeConfig` (`runtime.rs`).
//! Must not open sockets or spawn tasks; the only IO is reading config
//! files (and, to pick a default advertise address or evaluate templates,
//! listing interface addresses).

pub mod acl;
pub mod addrs;
pub mod config_entries;
pub mod file;
pub mod hcl;
pub mod merge;
pub mod netif;
pub mod runtime;
pub mod sockaddr;
pub mod tls;

pub use netif::{IfAddr, IfFlags};
pub use runtime::{LogLevel, RuntimeConfig, UiSettings};

use file::{FileConfig, Support};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Where a config source comes from, in flag order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    File(PathBuf),
    Dir(PathBuf),
}

/// The format of config files; by default chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Hcl,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "json" => Some(Format::Json),
            "hcl" => Some(Format::Hcl),
            _ => None,
        }
    }
}

/// Everything `load` needs.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    pub dev: bool,
    pub sources: Vec<SourceSpec>,
    pub format: Option<Format>,
    /// Config keys set by command-line flags. As in Consul, their lists
    /// (`-retry-join`, ...) go before the files' lists and the rest is
    /// merged after the files, so flags win.
    pub flags: Option<Value>,
    /// `-hcl` fragments, merged after the flags in the order given.
    pub hcl: Vec<String>,
    /// Config keys merged before any file (defaults a caller supplies).
    pub defaults: Option<Value>,
    /// For `consul validate`: check go-sockaddr templates without
    /// evaluating them and do not pick an advertise address from this
    /// machine's interfaces, so the verdict does not depend on the machine.
    pub validate_only: bool,
}

/// A loaded configuration and the warnings produced while loading it.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: RuntimeConfig,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Error reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("Error parsing {path}: {message}")]
    Parse { path: String, message: String },
    #[error("Error parsing {path}: config key {key:?} is not supported yet by this agent; refusing to start rather than ignore it, because ignoring it would change security or semantics")]
    Unsupported { path: String, key: String },
    #[error("{0}")]
    Invalid(String),
}

/// One parsed source, kept with its name for messages.
struct Source {
    name: String,
    value: Value,
    parsed: FileConfig,
}

const FLAGS: &str = "command-line flags";

/// Loads, merges and validates the configuration, reading this machine's
/// interfaces if an address needs them.
pub fn load(opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    load_with_interfaces(opts, &netif::interface_addrs)
}

/// As `load`, with the interface list injected: tests use this to play the
/// handbook's network environments and to evaluate go-sockaddr templates
/// against fake interfaces. `interfaces` is called at most once, and only
/// when an address needs it (`bind_addr` 0.0.0.0 without an advertise
/// address, or a template). `IfAddr::from_ips` turns plain addresses into
/// such a list.
pub fn load_with_interfaces(
    opts: &LoadOptions,
    interfaces: &dyn Fn() -> Vec<IfAddr>,
) -> Result<Loaded, ConfigError> {
    let (flag_lists, flag_values) = match &opts.flags {
        Some(flags) => split_lists(flags),
        None => (None, None),
    };
    let mut sources = Vec::new();
    if let Some(lists) = flag_lists {
        sources.push(value_source(FLAGS, lists)?);
    }
    if let Some(defaults) = &opts.defaults {
        sources.push(value_source("defaults", defaults.clone())?);
    }
    for spec in &opts.sources {
        for path in expand(spec, opts.format)? {
            sources.push(read_source(&path, opts.format)?);
        }
    }
    if let Some(values) = flag_values {
        sources.push(value_source(FLAGS, values)?);
    }
    for (i, fragment) in opts.hcl.iter().enumerate() {
        sources.push(parse_hcl_text(&format!("-hcl fragment {}", i + 1), fragment)?);
    }

    let mut warnings = Vec::new();
    let mut merged = Value::Object(Default::default());
    for mut source in sources {
        for (key, support) in source.parsed.unsupported_keys() {
            match support {
                Support::IgnoredWithWarning => warnings.push(format!(
                    "The {key:?} field is accepted for compatibility but not supported yet; it is ignored (in {})",
                    source.name
                )),
                Support::Refused => return Err(ConfigError::Unsupported { path: source.name, key }),
            }
        }
        merge::normalize(&mut source.value);
        warnings.extend(tls::fold_deprecated(&mut source.value));
        merge::merge(&mut merged, source.value);
    }
    let file = parse_value("merged configuration", merged)?;
    let net = if opts.validate_only { addrs::Network::CheckOnly } else { addrs::Network::live(interfaces) };
    let config = runtime::build(file, opts.dev, &mut warnings, &net)?;
    Ok(Loaded { config, warnings })
}

/// Splits the flags' keys into the lists and everything else.
fn split_lists(flags: &Value) -> (Option<Value>, Option<Value>) {
    let Some(obj) = flags.as_object() else { return (None, Some(flags.clone())) };
    let (mut lists, mut values) = (Map::new(), Map::new());
    for (k, v) in obj {
        if v.is_array() {
            lists.insert(k.clone(), v.clone());
        } else {
            values.insert(k.clone(), v.clone());
        }
    }
    let some = |m: Map<String, Value>| (!m.is_empty()).then_some(Value::Object(m));
    (some(lists), some(values))
}

fn value_source(name: &str, value: Value) -> Result<Source, ConfigError> {
    let parsed = parse_value(name, value.clone())?;
    Ok(Source { name: name.to_string(), value, parsed })
}

/// Lists the files a source names: a file itself, or a directory's config
/// files in lexical order (not recursive, as Consul).
fn expand(spec: &SourceSpec, format: Option<Format>) -> Result<Vec<PathBuf>, ConfigError> {
    match spec {
        SourceSpec::File(p) => Ok(vec![p.clone()]),
        SourceSpec::Dir(dir) => {
            let io = |source| ConfigError::Io { path: dir.display().to_string(), source };
            let mut files = Vec::new();
            for entry in std::fs::read_dir(dir).map_err(io)? {
                let entry = entry.map_err(io)?;
                let path = entry.path();
                // Follow symlinks; skip directories.
                let Ok(meta) = std::fs::metadata(&path) else { continue };
                if meta.is_dir() {
                    continue;
                }
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                let wanted = match format {
                    Some(_) => true,
                    None => ext == "json" || ext == "hcl",
                };
                if wanted {
                    files.push(path);
                }
            }
            files.sort();
            Ok(files)
        }
    }
}

fn read_source(path: &Path, format: Option<Format>) -> Result<Source, ConfigError> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: name.clone(), source })?;
    let format = format.unwrap_or_else(|| match path.extension().and_then(|e| e.to_str()) {
        Some("hcl") => Format::Hcl,
        _ => Format::Json,
    });
    match format {
        Format::Json => parse_json_text(&name, &text),
        Format::Hcl => parse_hcl_text(&name, &text),
    }
}

/// Reads the service definitions (`service`/`services` blocks) of one
/// config file, JSON or HCL, as `consul services register FILE` takes them.
pub fn services_in_file(path: &Path) -> Result<Vec<file::ServiceDefinition>, ConfigError> {
    let source = read_source(path, None)?;
    let mut out = Vec::new();
    if let Some(s) = source.parsed.service {
        out.extend(s.0);
    }
    if let Some(s) = source.parsed.services {
        out.extend(s.0);
    }
    Ok(out)
}

/// Parses one JSON source, naming the key and line of any problem.
fn parse_json_text(name: &str, text: &str) -> Result<Source, ConfigError> {
    let parse_err = |message: String| ConfigError::Parse { path: name.to_string(), message };
    let value: Value = serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?;
    if !value.is_object() {
        return Err(parse_err("the top level must be a JSON object".into()));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: FileConfig = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let pos = (e.inner().line(), e.inner().column());
        parse_err(describe(e.path().to_string(), &e.inner().to_string(), &|_| Some(pos)))
    })?;
    Ok(Source { name: name.to_string(), value, parsed })
}

/// Parses one HCL source (a file or a `-hcl` fragment) through the same
/// typed validation as JSON, naming the key and, where it can be found,
/// the line.
fn parse_hcl_text(name: &str, text: &str) -> Result<Source, ConfigError> {
    let parse_err = |message: String| ConfigError::Parse { path: name.to_string(), message };
    let doc = hcl::parse(text).map_err(|e| parse_err(e.to_string()))?;
    let parsed: FileConfig = serde_path_to_error::deserialize(&doc.value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        let message = doc
            .repeated_block_error(&path, &inner)
            .unwrap_or_else(|| describe(path.clone(), &inner, &|key| doc.position(key)));
        parse_err(message)
    })?;
    Ok(Source { name: name.to_string(), value: doc.value, parsed })
}

fn parse_value(name: &str, value: Value) -> Result<FileConfig, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e: serde_path_to_error::Error<serde_json::Error>| {
        ConfigError::Parse {
            path: name.to_string(),
            message: describe(e.path().to_string(), &e.inner().to_string(), &|_| None),
        }
    })
}

/// Rewrites serde's messages into Consul's kind: `invalid config key x.y`.
/// `locate` gives the (line, column) of a key path, where known.
fn describe(path: String, inner: &str, locate: &dyn Fn(&str) -> Option<(usize, usize)>) -> String {
    // serde_json appends " at line L column C" itself; strip it to re-add uniformly.
    let msg = match inner.rfind(" at line ") {
        Some(i) => &inner[..i],
        None => inner,
    };
    let at = |key: &str| locate(key).map(|(l, c)| format!(" (line {l}, column {c})")).unwrap_or_default();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or("");
        // The path already ends with the unknown field in recent serde_path_to_error.
        let key = if path.ends_with(field) || path == "." {
            if path == "." {
                field.to_string()
            } else {
                path
            }
        } else {
            format!("{path}.{field}")
        };
        return format!("invalid config key {key}{}", at(&key));
    }
    if path == "." {
        format!("{msg}{}", at(""))
    } else {
        format!("{path}: {msg}{}", at(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_texts(files: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let mut f = std::fs::File::create(dir.path().join(name)).unwrap();
            f.write_all(text.as_bytes()).unwrap();
        }
        let opts =
            LoadOptions { sources: vec![SourceSpec::Dir(dir.path().to_path_buf())], ..Default::default() };
        load_with_interfaces(&opts, &|| IfAddr::from_ips(&["192.168.1.11".parse().unwrap()]))
    }

    #[test]
    fn handbook_server_config_parses() {
        let text = r#"{
            "bind_addr": "192.168.1.11", "datacenter": "dc1", "data_dir": "/var/consul",
            "encrypt": "EXz7LFN8hpQ4id8EDYiFoQ==", "log_level": "INFO", "enable_syslog": true,
            "enable_debug": true, "node_name": "ConsulServer1", "server": true, "bootstrap_expect": 3,
            "leave_on_terminate": false, "skip_leave_on_interrupt": true, "rejoin_after_leave": true,
            "retry_interval": "30s",
            "retry_join": ["192.168.1.11:8301", "192.168.1.12:8301", "192.168.1.13:8301"]
        }"#;
        let loaded = load_texts(&[("config.json", text)]).unwrap();
        let c = loaded.config;
        assert!(c.server);
        assert_eq!(c.bootstrap_expect, 3);
        assert_eq!(c.retry_join.len(), 3);
        assert_eq!(c.node_name, "ConsulServer1");
        assert!(loaded.warnings.iter().any(|w| w.contains("enable_syslog")));
    }

    #[test]
    fn unknown_key_names_file_key_and_line() {
        let err = load_texts(&[("a.json", "{\n \"data_dir\": \"/x\",\n \"bogus_key\": 1\n}")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("a.json"), "{msg}");
        assert!(msg.contains("invalid config key bogus_key"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn nested_unknown_key_has_path() {
        let err = load_texts(&[("a.json", "{\"data_dir\": \"/x\", \"ports\": {\"htp\": 1}}")]).unwrap_err();
        assert!(err.to_string().contains("invalid config key ports.htp"), "{err}");
    }

    #[test]
    fn wrong_type_names_key() {
        let err =
            load_texts(&[("a.json", "{\"data_dir\": \"/x\",\n\"bootstrap_expect\": \"3\"}")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bootstrap_expect"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn bad_duration_names_key() {
        let err =
            load_texts(&[("a.json", "{\"data_dir\": \"/x\", \"retry_interval\": \"30\"}")]).unwrap_err();
        assert!(err.to_string().contains("retry_interval"), "{err}");
    }

    #[test]
    fn refused_key() {
        let err = load_texts(&[("a.json", "{\"data_dir\": \"/x\", \"auto_config\": {\"enabled\": true}}")])
            .unwrap_err();
        // Refused with what it would need (`tls::build`), not ignored.
        assert!(matches!(err, ConfigError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("auto_config.enabled") && err.to_string().contains("Connect CA"));
    }

    #[test]
    fn invalid_json_names_line() {
        let err = load_texts(&[("a.json", "{\n\"data_dir\": \"/x\",,\n}")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("a.json") && msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn directory_merge_in_lexical_order() {
        let loaded = load_texts(&[
            ("b.json", r#"{"datacenter": "dc2", "retry_join": ["b"], "service": {"name": "web"}}"#),
            ("a.json", r#"{"data_dir": "/x", "datacenter": "dc1", "retry_join": ["a"], "services": [{"name": "db"}]}"#),
            ("ignored.txt", "not json"),
        ])
        .unwrap();
        assert_eq!(loaded.config.datacenter, "dc2");
        assert_eq!(loaded.config.retry_join, vec!["a", "b"]);
        let names: Vec<_> = loaded.config.services.iter().map(|s| s.name.clone().unwrap()).collect();
        assert_eq!(names, vec!["db", "web"]);
    }

    #[test]
    fn json_errors_inside_blocks_name_the_full_key() {
        let text = "{\"data_dir\": \"/x\",\n \"service\": {\"name\": \"web\",\n  \"check\": {\"interval\": \"ten\"}}}";
        let msg = load_texts(&[("a.json", text)]).unwrap_err().to_string();
        assert!(msg.contains("service.check.interval") && msg.contains("line 3"), "{msg}");
        let text =
            "{\"data_dir\": \"/x\", \"services\": [{\"name\": \"a\"},\n {\"name\": \"b\", \"bogus\": 1}]}";
        let msg = load_texts(&[("a.json", text)]).unwrap_err().to_string();
        assert!(msg.contains("invalid config key services[1].bogus") && msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn hcl_files_load_and_errors_name_file_key_and_line() {
        let loaded = load_texts(&[(
            "server.hcl",
            "data_dir = \"/x\"\nserver = true\nbootstrap_expect = 3\nports {\n  dns = -1\n}\nservice {\n  name = \"web\"\n  check { http = \"http://localhost\" interval = \"10s\" }\n}\n",
        )])
        .unwrap();
        assert!(loaded.config.server);
        assert_eq!(loaded.config.ports.dns, -1);
        assert_eq!(
            loaded.config.services[0].check.as_ref().unwrap().interval.unwrap().0,
            std::time::Duration::from_secs(10)
        );

        let msg = load_texts(&[("a.hcl", "data_dir = \"/x\"\n\nbogus_key = 1\n")]).unwrap_err().to_string();
        assert!(
            msg.contains("a.hcl") && msg.contains("invalid config key bogus_key") && msg.contains("line 3"),
            "{msg}"
        );
        let msg =
            load_texts(&[("a.hcl", "data_dir = \"/x\"\nports {\n  htp = 1\n}\n")]).unwrap_err().to_string();
        assert!(msg.contains("invalid config key ports.htp") && msg.contains("line 3"), "{msg}");
        let msg = load_texts(&[("a.hcl", "data_dir = \"/x\"\nservice {\n name = \"a\"\n}\nservice {\n name = \"b\"\n  check {\n    interval = \"often\"\n  }\n}\n")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("service[1].check.interval") && msg.contains("line 8"), "{msg}");
        let msg = load_texts(&[("a.hcl", "data_dir = \"/x\"\nbootstrap_expect = \"3\"\n")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("bootstrap_expect: invalid type") && msg.contains("line 2"), "{msg}");
        let msg =
            load_texts(&[("a.hcl", "data_dir = \"/x\"\nports {\n http = 1\n}\nports {\n dns = 2\n}\n")])
                .unwrap_err()
                .to_string();
        assert!(
            msg.contains("ports: the block is given 2 times but only one is allowed (line 5, column 1)"),
            "{msg}"
        );
        let msg = load_texts(&[("a.hcl", "data_dir = \"/x\"\nserver = \n")]).unwrap_err().to_string();
        assert!(msg.contains("a.hcl") && msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn hcl_refusals_and_warnings_match_json() {
        let loaded = load_texts(&[("a.hcl", "data_dir = \"/x\"\nenable_syslog = true\n")]).unwrap();
        assert!(
            loaded.warnings.iter().any(|w| w.contains("enable_syslog") && w.contains("a.hcl")),
            "{:?}",
            loaded.warnings
        );
        let err =
            load_texts(&[("a.hcl", "data_dir = \"/x\"\nauto_config {\n  enabled = true\n}\n")]).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid(_)) && err.to_string().contains("auto_config.enabled"),
            "{err}"
        );
    }

    #[test]
    fn json_and_hcl_in_one_directory_merge_in_lexical_order() {
        let loaded = load_texts(&[
            ("10-base.json", r#"{"data_dir": "/x", "datacenter": "dc1", "retry_join": ["a"]}"#),
            ("20-more.hcl", "datacenter = \"dc2\"\nretry_join = [\"b\"]\nservice {\n  name = \"web\"\n}\n"),
            ("30-last.json", r#"{"service": {"name": "db"}}"#),
        ])
        .unwrap();
        assert_eq!(loaded.config.datacenter, "dc2");
        assert_eq!(loaded.config.retry_join, vec!["a", "b"]);
        let names: Vec<_> = loaded.config.services.iter().map(|s| s.name.clone().unwrap()).collect();
        assert_eq!(names, vec!["web", "db"]);
    }

    #[test]
    fn config_format_forces_the_parser() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("agent.conf"), "data_dir = \"/x\"\nnode_name = \"n1\"\n").unwrap();
        let opts = LoadOptions {
            sources: vec![SourceSpec::Dir(dir.path().to_path_buf())],
            format: Some(Format::Hcl),
            ..Default::default()
        };
        let loaded =
            load_with_interfaces(&opts, &|| IfAddr::from_ips(&["10.1.1.1".parse().unwrap()])).unwrap();
        assert_eq!(loaded.config.node_name, "n1");
        let opts = LoadOptions { format: Some(Format::Json), ..opts };
        let err = load_with_interfaces(&opts, &|| Vec::new()).unwrap_err();
        assert!(err.to_string().contains("agent.conf"), "{err}");
    }

    #[test]
    fn merge_order_flag_lists_files_flag_values_then_hcl_fragments() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"data_dir": "/x", "datacenter": "file", "node_name": "file", "retry_join": ["file"]}"#,
        )
        .unwrap();
        let opts = LoadOptions {
            sources: vec![SourceSpec::Dir(dir.path().to_path_buf())],
            flags: Some(
                serde_json::json!({"datacenter": "flag", "node_name": "flag", "retry_join": ["flag"]}),
            ),
            hcl: vec![
                "node_name = \"frag1\"\nretry_join = [\"frag1\"]".into(),
                "retry_join = [\"frag2\"]".into(),
            ],
            ..Default::default()
        };
        let c =
            load_with_interfaces(&opts, &|| IfAddr::from_ips(&["10.1.1.1".parse().unwrap()])).unwrap().config;
        assert_eq!(c.datacenter, "flag");
        assert_eq!(c.node_name, "frag1");
        assert_eq!(c.retry_join, vec!["flag", "file", "frag1", "frag2"]);
        let opts = LoadOptions { hcl: vec!["data_dir = \"/x\"\nbogus = 1".into()], ..Default::default() };
        let msg = load_with_interfaces(&opts, &Vec::new).unwrap_err().to_string();
        assert!(
            msg.contains("-hcl fragment 1")
                && msg.contains("invalid config key bogus")
                && msg.contains("line 2"),
            "{msg}"
        );
    }

    #[test]
    fn templates_in_address_keys_use_the_injected_interfaces() {
        use crate::config::netif::IfFlags;
        let ifs = || {
            vec![
                IfAddr::parse("lo", "127.0.0.1/8", IfFlags::loopback_up(), false).unwrap(),
                IfAddr::parse("eth0", "10.20.0.7/16", IfFlags::ethernet_up(), true).unwrap(),
                IfAddr::parse("eth1", "192.168.9.9/24", IfFlags::ethernet_up(), false).unwrap(),
            ]
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("net.hcl"),
            r#"data_dir = "/x"
bind_addr = "{{ GetInterfaceIP \"eth1\" }}"
advertise_addr_wan = "{{ GetPrivateIP }}"
client_addr = "127.0.0.1 {{ GetAllInterfaces | include \"network\" \"10.0.0.0/8\" | attr \"address\" }}"
addresses {
  dns = "{{ GetAllInterfaces | include \"name\" \"^lo$\" | include \"type\" \"ipv4\" | attr \"address\" }}"
}
retry_join = ["{{ GetPrivateInterfaces | exclude \"name\" \"eth0\" | join \"address\" \" \" }}", "provider=aws tag_key=x"]
"#,
        )
        .unwrap();
        let opts =
            LoadOptions { sources: vec![SourceSpec::Dir(dir.path().to_path_buf())], ..Default::default() };
        let c = load_with_interfaces(&opts, &ifs).unwrap().config;
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(c.bind_addr, ip("192.168.9.9"));
        assert_eq!(c.advertise_addr, ip("192.168.9.9"));
        assert_eq!(c.advertise_addr_wan, ip("10.20.0.7"));
        assert_eq!(c.client_addrs, vec![ip("127.0.0.1"), ip("10.20.0.7")]);
        assert_eq!(c.dns_addrs, vec![ip("127.0.0.1")]);
        assert_eq!(c.retry_join, vec!["192.168.9.9", "provider=aws tag_key=x"]);

        std::fs::write(
            dir.path().join("net.hcl"),
            "data_dir = \"/x\"\nbind_addr = \"{{ GetInterfaceIP \\\"eth9\\\" }}\"\n",
        )
        .unwrap();
        let msg = load_with_interfaces(&opts, &ifs).unwrap_err().to_string();
        assert!(
            msg.contains("bind_addr") && msg.contains("eth9") && msg.contains("produced no address"),
            "{msg}"
        );
        // GetInterfaceIP skips loopback addresses (not forwardable), so this
        // yields nothing, and a list key refuses that too.
        std::fs::write(dir.path().join("net.hcl"), "data_dir = \"/x\"\nbind_addr = \"10.20.0.7\"\naddresses {\n  http = \"{{ GetInterfaceIP \\\"lo\\\" }}\"\n}\n").unwrap();
        let msg = load_with_interfaces(&opts, &ifs).unwrap_err().to_string();
        assert!(msg.contains("addresses.http") && msg.contains("produced no address"), "{msg}");

        // bind_addr 0.0.0.0 keeps Consul's rule, over the same interface list.
        std::fs::write(dir.path().join("net.hcl"), "data_dir = \"/x\"\n").unwrap();
        let msg = load_with_interfaces(&opts, &ifs).unwrap_err().to_string();
        assert!(msg.contains("Multiple private IPv4 addresses found. Please configure one"), "{msg}");
    }

    #[test]
    fn validate_only_never_reads_interfaces() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.hcl"),
            "data_dir = \"/x\"\nclient_addr = \"{{ GetInterfaceIP \\\"ens5\\\" }}\"\n",
        )
        .unwrap();
        let opts = LoadOptions {
            sources: vec![SourceSpec::Dir(dir.path().to_path_buf())],
            validate_only: true,
            ..Default::default()
        };
        let probe = || -> Vec<IfAddr> { panic!("validate must not list interfaces") };
        assert!(load_with_interfaces(&opts, &probe).is_ok());
        std::fs::write(
            dir.path().join("a.hcl"),
            "data_dir = \"/x\"\nclient_addr = \"{{ GetInterfaceIPP }}\"\n",
        )
        .unwrap();
        let msg = load_with_interfaces(&opts, &probe).unwrap_err().to_string();
        assert!(msg.contains("client_addr") && msg.contains("unknown function"), "{msg}");
    }

    #[test]
    fn services_in_an_hcl_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.hcl");
        std::fs::write(
            &path,
            "service {\n  name = \"web\"\n  port = 80\n}\nservices = [{ name = \"db\" }]\n",
        )
        .unwrap();
        let names: Vec<_> =
            services_in_file(&path).unwrap().into_iter().map(|s| s.name.unwrap_or_default()).collect();
        assert_eq!(names, vec!["web", "db"]);
        std::fs::write(&path, "service {\n  name = \"web\"\n  prot = 80\n}\n").unwrap();
        let msg = services_in_file(&path).unwrap_err().to_string();
        assert!(msg.contains("invalid config key service.prot") && msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn handbook_client_config_with_legacy_script_check() {
        let text = r#"{"bind_addr": "192.168.1.21", "datacenter": "dc1", "data_dir": "/var/consul",
            "node_name": "ConsulClient", "server": false,
            "service": {"name": "Apache", "tags": ["HTTP"], "port": 80,
              "check": {"script": "curl localhost >/dev/null 2>&1", "interval": "10s"}},
            "rejoin_after_leave": true, "retry_join": ["192.168.1.11", "192.168.1.12", "192.168.1.13"]}"#;
        let c = load_texts(&[("config.json", text)]).unwrap().config;
        assert_eq!(c.services.len(), 1);
        assert!(c.services[0].check.as_ref().unwrap().script.is_some());
        assert!(c.leave_on_terminate && !c.skip_leave_on_interrupt);
    }

    #[test]
    fn ui_config_and_its_deprecated_spellings() {
        let c = load_texts(&[("a.json", r#"{"data_dir": "/x"}"#)]).unwrap().config;
        assert!(!c.ui.served());
        assert_eq!(c.ui.content_path, "/ui/");

        let l = load_texts(&[(
            "a.json",
            r#"{"data_dir": "/x", "ui_config": {"enabled": true, "content_path": "console"}}"#,
        )])
        .unwrap();
        assert!(l.config.ui.enabled && l.config.ui.dir.is_none());
        assert_eq!(l.config.ui.content_path, "/console/");
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);

        // The old keys still work, each with Consul's warning, and lose to
        // `ui_config` where both are set.
        let l = load_texts(&[(
            "a.json",
            r#"{"data_dir": "/x", "ui": true, "ui_content_path": "/a/b//", "ui_config": {"content_path": "/c"}}"#,
        )])
        .unwrap();
        assert!(l.config.ui.enabled);
        assert_eq!(l.config.ui.content_path, "/c/");
        assert!(l
            .warnings
            .iter()
            .any(|w| w == "The 'ui' field is deprecated. Use the 'ui_config.enabled' field instead."));
        assert!(l.warnings.iter().any(|w| w.starts_with("The 'ui_content_path' field is deprecated.")));
        let l = load_texts(&[(
            "a.json",
            r#"{"data_dir": "/x", "ui_dir": "/srv/ui", "ui_content_path": "/a/b//"}"#,
        )])
        .unwrap();
        assert_eq!(l.config.ui.dir.as_deref(), Some(std::path::Path::new("/srv/ui")));
        assert_eq!(l.config.ui.content_path, "/a/b/");
        assert!(l.config.ui.served() && !l.config.ui.enabled);
        assert!(l.warnings.iter().any(|w| w.starts_with("The 'ui_dir' field is deprecated.")));

        let err = load_texts(&[(
            "a.json",
            r#"{"data_dir": "/x", "ui_config": {"enabled": true, "dir": "/srv/ui"}}"#,
        )])
        .unwrap_err();
        assert!(err.to_string().contains("Both the ui_config.enabled and ui_config.dir"), "{err}");
        for bad in ["/v1/ui", "a/../b", "a//b", "a b", "{x}"] {
            let text = format!(r#"{{"data_dir": "/x", "ui_config": {{"content_path": "{bad}"}}}}"#);
            let err = load_texts(&[("a.json", &text)]).unwrap_err();
            assert!(err.to_string().contains("ui_config.content_path"), "{bad}: {err}");
        }
        // Keys of panels our UI does not have are accepted with a warning.
        let l = load_texts(&[(
            "a.json",
            r#"{"data_dir": "/x", "ui_config": {"metrics_provider": "prometheus"}}"#,
        )])
        .unwrap();
        assert!(l.warnings.iter().any(|w| w.contains("ui_config.metrics_provider")), "{:?}", l.warnings);
    }

    #[test]
    fn dev_mode_serves_the_ui_and_may_name_a_directory() {
        let opts = LoadOptions {
            dev: true,
            flags: Some(serde_json::json!({"ui_config": {"dir": "/srv/ui"}})),
            ..Default::default()
        };
        let c = load_with_interfaces(&opts, &|| Vec::new()).unwrap().config;
        assert!(c.ui.enabled);
        assert_eq!(c.ui.dir.as_deref(), Some(std::path::Path::new("/srv/ui")));
        let opts = LoadOptions {
            dev: true,
            flags: Some(serde_json::json!({"ui_config": {"enabled": false}})),
            ..Default::default()
        };
        assert!(!load_with_interfaces(&opts, &|| Vec::new()).unwrap().config.ui.served());
    }

    #[test]
    fn dev_mode_keeps_a_wan_pool_with_dev_timings() {
        let opts = LoadOptions { dev: true, ..Default::default() };
        let c = load_with_interfaces(&opts, &|| Vec::new()).unwrap().config;
        assert_eq!(c.ports.serf_wan, 8302);
        assert_eq!(c.gossip_wan.probe_interval, std::time::Duration::from_millis(100));
        assert_eq!(c.gossip_wan.push_pull_interval, runtime::GossipSettings::wan().push_pull_interval);
        let opts = LoadOptions {
            dev: true,
            flags: Some(serde_json::json!({"ports": {"serf_wan": -1}})),
            ..Default::default()
        };
        assert_eq!(load_with_interfaces(&opts, &|| Vec::new()).unwrap().config.ports.serf_wan, -1);
    }
}
