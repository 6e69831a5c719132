//! A corpus of realistic Consul configs written in HCL (the handbook's
//! configs, docs-style server and client configs, service definitions with
//! checks, HCL1 one-line blocks), each paired with its JSON equivalent: both
//! must load into the same `RuntimeConfig` and the same warnings. Runs
//! against fake interfaces, never this machine's.

use consul::config::{load_with_interfaces, IfAddr, IfFlags, LoadOptions, Loaded, SourceSpec};

fn interfaces() -> Vec<IfAddr> {
    vec![
        IfAddr::parse("lo", "127.0.0.1/8", IfFlags::loopback_up(), false).unwrap(),
        IfAddr::parse("eth0", "192.168.1.11/24", IfFlags::ethernet_up(), true).unwrap(),
    ]
}

fn load_file(name: &str, text: &str) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), text).unwrap();
    let opts = LoadOptions { sources: vec![SourceSpec::Dir(dir.path().to_path_buf())], ..Default::default() };
    match load_with_interfaces(&opts, &interfaces) {
        Ok(l) => l,
        Err(e) => panic!("{name}: {e}\n{text}"),
    }
}

/// Loads both forms and checks they resolve identically.
fn same(hcl: &str, json: &str) -> Loaded {
    let h = load_file("config.hcl", hcl);
    let j = load_file("config.json", json);
    let (hd, jd) = (format!("{:#?}", h.config), format!("{:#?}", j.config));
    if let Some((n, (a, b))) = hd.lines().zip(jd.lines()).enumerate().find(|(_, (a, b))| a != b) {
        let context: Vec<&str> = hd.lines().take(n).collect();
        panic!(
            "HCL and JSON resolve differently at line {n}:\n  HCL:  {a}\n  JSON: {b}\nafter:\n{}",
            context[n.saturating_sub(8)..].join("\n")
        );
    }
    assert_eq!(hd, jd, "HCL and JSON resolve differently");
    // Warnings name their file; compare them without that part.
    let strip = |v: &[String]| {
        v.iter().map(|w| w.split(" (in ").next().unwrap_or("").to_string()).collect::<Vec<_>>()
    };
    assert_eq!(strip(&h.warnings), strip(&j.warnings), "HCL and JSON warn differently");
    assert!(h.warnings.iter().all(|w| w.contains("config.hcl")), "{:?}", h.warnings);
    h
}

#[test]
fn handbook_server() {
    let hcl = r#"
bind_addr = "192.168.1.11"
datacenter = "dc1"
data_dir = "/var/consul"
encrypt = "EXz7LFN8hpQ4id8EDYiFoQ=="
log_level = "INFO"
enable_syslog = true
enable_debug = true
node_name = "ConsulServer1"
server = true
bootstrap_expect = 3
leave_on_terminate = false
skip_leave_on_interrupt = true
rejoin_after_leave = true
retry_interval = "30s"
retry_join = [
  "192.168.1.11:8301",
  "192.168.1.12:8301",
  "192.168.1.13:8301",
]
"#;
    let json = r#"{
  "bind_addr": "192.168.1.11", "datacenter": "dc1", "data_dir": "/var/consul",
  "encrypt": "EXz7LFN8hpQ4id8EDYiFoQ==", "log_level": "INFO", "enable_syslog": true,
  "enable_debug": true, "node_name": "ConsulServer1", "server": true, "bootstrap_expect": 3,
  "leave_on_terminate": false, "skip_leave_on_interrupt": true, "rejoin_after_leave": true,
  "retry_interval": "30s",
  "retry_join": ["192.168.1.11:8301", "192.168.1.12:8301", "192.168.1.13:8301"]
}"#;
    let l = same(hcl, json);
    assert!(l.config.server && l.config.bootstrap_expect == 3);
    assert!(l.warnings.iter().any(|w| w.contains("enable_syslog")));
}

#[test]
fn handbook_client_with_script_check() {
    let hcl = r#"
bind_addr = "192.168.1.21"
datacenter = "dc1"
data_dir = "/var/consul"
node_name = "ConsulClient"
server = false
enable_script_checks = true
service {
  name = "Apache"
  tags = ["HTTP"]
  port = 80
  check {
    script = "curl localhost >/dev/null 2>&1"
    interval = "10s"
  }
}
rejoin_after_leave = true
retry_join = ["192.168.1.11", "192.168.1.12", "192.168.1.13"]
"#;
    let json = r#"{"bind_addr": "192.168.1.21", "datacenter": "dc1", "data_dir": "/var/consul",
  "node_name": "ConsulClient", "server": false, "enable_script_checks": true,
  "service": {"name": "Apache", "tags": ["HTTP"], "port": 80,
    "check": {"script": "curl localhost >/dev/null 2>&1", "interval": "10s"}},
  "rejoin_after_leave": true, "retry_join": ["192.168.1.11", "192.168.1.12", "192.168.1.13"]}"#;
    let l = same(hcl, json);
    assert_eq!(l.config.services[0].name.as_deref(), Some("Apache"));
}

#[test]
fn docs_style_server() {
    let hcl = r#"
# /etc/consul.d/server.hcl
datacenter       = "dc1"
data_dir         = "/opt/consul"
encrypt          = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
server           = true
bootstrap_expect = 3
client_addr      = "0.0.0.0"
bind_addr        = "{{ GetInterfaceIP \"eth0\" }}"
retry_join       = ["10.0.0.11", "10.0.0.12", "provider=aws tag_key=consul tag_value=server"]

ui_config {
  enabled = true
}

performance {
  raft_multiplier = 1
}

ports {
  grpc  = 8502
  dns   = 8600
}

addresses {
  http = "0.0.0.0"
  dns  = "127.0.0.1"
}

autopilot {
  cleanup_dead_servers      = true
  last_contact_threshold    = "200ms"
  max_trailing_logs         = 250
  server_stabilization_time = "10s"
}

telemetry {
  prometheus_retention_time = "30s"
  disable_hostname          = true
}

limits {
  http_max_conns_per_client = 400
}
"#;
    let json = r#"{
  "datacenter": "dc1", "data_dir": "/opt/consul",
  "encrypt": "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
  "server": true, "bootstrap_expect": 3, "client_addr": "0.0.0.0",
  "bind_addr": "{{ GetInterfaceIP \"eth0\" }}",
  "retry_join": ["10.0.0.11", "10.0.0.12", "provider=aws tag_key=consul tag_value=server"],
  "ui_config": {"enabled": true},
  "performance": {"raft_multiplier": 1},
  "ports": {"grpc": 8502, "dns": 8600},
  "addresses": {"http": "0.0.0.0", "dns": "127.0.0.1"},
  "autopilot": {"cleanup_dead_servers": true, "last_contact_threshold": "200ms",
                "max_trailing_logs": 250, "server_stabilization_time": "10s"},
  "telemetry": {"prometheus_retention_time": "30s", "disable_hostname": true},
  "limits": {"http_max_conns_per_client": 400}
}"#;
    let l = same(hcl, json);
    assert_eq!(l.config.bind_addr.to_string(), "192.168.1.11");
    assert_eq!(l.config.limits.http_max_conns_per_client, 400);
    assert_eq!(l.config.retry_join.len(), 3);
}

#[test]
fn client_with_services_and_checks_in_every_shape() {
    let hcl = r#"
data_dir   = "/opt/consul"
bind_addr  = "192.168.1.11"
node_name  = "web-01"
node_meta {
  "rack.id" = "r12"
  zone      = "eu-west-1a"
}
enable_local_script_checks = true

service {
  id   = "web-1"
  name = "web"
  tags = ["v1", "primary"]
  port = 8080
  meta {
    version = "1.4.2"
  }
  weights {
    passing = 10
    warning = 1
  }
  check {
    id       = "web-http"
    name     = "HTTP on 8080"
    http     = "http://localhost:8080/health"
    method   = "GET"
    header {
      Accept = ["application/json"]
    }
    interval = "10s"
    timeout  = "1s"
  }
}

service {
  name = "db"
  port = 5432
  checks = [
    {
      tcp      = "localhost:5432"
      interval = "5s"
    },
    {
      args     = ["/usr/local/bin/check_pg", "--quick"]
      interval = "30s"
      notes    = <<EOF
Runs the quick probe.
Pages the DBA when critical.
EOF
    },
  ]
}

check {
  id       = "mem"
  name     = "Memory utilization"
  args     = ["/usr/local/bin/check_mem.py", "-limit", "256MB"]
  interval = "10s"
  timeout  = "1s"
}

checks = [
  {
    id  = "ttl-heartbeat"
    ttl = "30s"
  }
]
"#;
    let json = r#"{
  "data_dir": "/opt/consul", "bind_addr": "192.168.1.11", "node_name": "web-01",
  "node_meta": {"rack.id": "r12", "zone": "eu-west-1a"},
  "enable_local_script_checks": true,
  "service": [
    {"id": "web-1", "name": "web", "tags": ["v1", "primary"], "port": 8080,
     "meta": {"version": "1.4.2"}, "weights": {"passing": 10, "warning": 1},
     "check": {"id": "web-http", "name": "HTTP on 8080", "http": "http://localhost:8080/health",
               "method": "GET", "header": {"Accept": ["application/json"]},
               "interval": "10s", "timeout": "1s"}},
    {"name": "db", "port": 5432, "checks": [
      {"tcp": "localhost:5432", "interval": "5s"},
      {"args": ["/usr/local/bin/check_pg", "--quick"], "interval": "30s",
       "notes": "Runs the quick probe.\nPages the DBA when critical.\n"}]}
  ],
  "check": {"id": "mem", "name": "Memory utilization",
            "args": ["/usr/local/bin/check_mem.py", "-limit", "256MB"], "interval": "10s", "timeout": "1s"},
  "checks": [{"id": "ttl-heartbeat", "ttl": "30s"}]
}"#;
    let l = same(hcl, json);
    let c = &l.config;
    assert_eq!(c.services.len(), 2);
    assert_eq!(c.services[1].checks.as_ref().map(|v| v.len()), Some(2));
    assert_eq!(c.checks.len(), 2);
    assert_eq!(c.node_meta.get("rack.id").map(String::as_str), Some("r12"));
    assert_eq!(
        c.services[1].checks.as_ref().unwrap()[1].notes.as_deref(),
        Some("Runs the quick probe.\nPages the DBA when critical.\n")
    );
}

#[test]
fn hcl1_one_line_blocks_from_old_configs() {
    // The compact style many pre-1.0 configs used: several attributes on one
    // line in a block, and objects without commas.
    let hcl = r#"
data_dir = "/var/lib/consul"
bind_addr = "192.168.1.11"
ports { http = 8501 dns = 8601 }
dns_config { allow_stale = true max_stale = "10s" service_ttl { "*" = "5s" web = "30s" } }
service { name = "redis" port = 6379 tags = ["cache"] check { tcp = "localhost:6379" interval = "10s" timeout = "2s" } }
service { name = "api" port = 9000 check { http = "http://localhost:9000/ping" interval = "15s" } }
watches = [ { type = "key" key = "config/app" handler_type = "script" args = ["/usr/bin/reload"] } ]
gossip_lan = { gossip_nodes = 4 probe_interval = "2s" }
"#;
    let json = r#"{
  "data_dir": "/var/lib/consul", "bind_addr": "192.168.1.11",
  "ports": {"http": 8501, "dns": 8601},
  "dns_config": {"allow_stale": true, "max_stale": "10s", "service_ttl": {"*": "5s", "web": "30s"}},
  "service": [
    {"name": "redis", "port": 6379, "tags": ["cache"],
     "check": {"tcp": "localhost:6379", "interval": "10s", "timeout": "2s"}},
    {"name": "api", "port": 9000, "check": {"http": "http://localhost:9000/ping", "interval": "15s"}}
  ],
  "watches": [{"type": "key", "key": "config/app", "handler_type": "script", "args": ["/usr/bin/reload"]}],
  "gossip_lan": {"gossip_nodes": 4, "probe_interval": "2s"}
}"#;
    let l = same(hcl, json);
    assert_eq!(l.config.ports.http, 8501);
    assert_eq!(l.config.dns.service_ttl.len(), 2);
    assert_eq!(l.config.gossip_lan.gossip_nodes, 4);
    assert_eq!(l.config.watches.len(), 1);
}

#[test]
fn services_list_and_single_watch_block() {
    let hcl = r#"
data_dir  = "/opt/consul"
bind_addr = "192.168.1.11"
services = [
  {
    name = "a"
    port = 1
  },
  {
    name = "b"
    port = 2
    connect = {
      sidecar_service = {}
    }
  }
]
watches {
  type    = "service"
  service = "a"
  args    = ["/bin/true"]
}
http_config {
  response_headers {
    "Access-Control-Allow-Origin" = "*"
  }
}
"#;
    let json = r#"{
  "data_dir": "/opt/consul", "bind_addr": "192.168.1.11",
  "services": [{"name": "a", "port": 1}, {"name": "b", "port": 2, "connect": {"sidecar_service": {}}}],
  "watches": [{"type": "service", "service": "a", "args": ["/bin/true"]}],
  "http_config": {"response_headers": {"Access-Control-Allow-Origin": "*"}}
}"#;
    let l = same(hcl, json);
    assert_eq!(l.config.services.len(), 2);
    assert_eq!(
        l.config.http.response_headers.get("Access-Control-Allow-Origin").map(String::as_str),
        Some("*")
    );
}

#[test]
fn dev_style_bind_any_uses_the_only_private_address() {
    // Consul's 0.0.0.0 rule applies to HCL configs the same way.
    let l =
        same("data_dir = \"/x\"\nbind_addr = \"0.0.0.0\"\n", r#"{"data_dir": "/x", "bind_addr": "0.0.0.0"}"#);
    assert_eq!(l.config.advertise_addr.to_string(), "192.168.1.11");
}

#[test]
fn interpolation_syntax_is_kept_literally() {
    // HCL1 (and so Consul) never evaluated ${...}; a check command using
    // shell variables must reach the shell unchanged.
    let hcl = "data_dir = \"/x\"\nbind_addr = \"192.168.1.11\"\ncheck {\n  args = [\"sh\", \"-c\", \"test -f ${HOME}/ok\"]\n  interval = \"10s\"\n}\n";
    let json = r#"{"data_dir": "/x", "bind_addr": "192.168.1.11", "check": {"args": ["sh", "-c", "test -f ${HOME}/ok"], "interval": "10s"}}"#;
    let l = same(hcl, json);
    assert_eq!(l.config.checks[0].args.as_ref().unwrap()[2], "test -f ${HOME}/ok");
}
