//! The vocabulary of the check runners: what a check is (`CheckSpec`,
//! `CheckKind`), what it reports (`Status`, `CheckResult`) and Consul's
//! defaults. Plain data: no IO, no tasks.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Output cap applied when a spec says 0 (Consul's `DefaultBufSize`, 4 KiB).
pub const DEFAULT_OUTPUT_MAX_SIZE: usize = 4096;
/// Timeout of HTTP, TCP, UDP and gRPC probes when the spec says 0.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of script checks when the spec says 0 (Consul uses 30s there).
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Consul's minimum interval for periodic checks. The agent raises shorter
/// intervals to this (and logs a warning) before it calls `Runner::start`;
/// the runner itself only guards against busy loops (`MIN_RUNNER_INTERVAL`).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest interval the runner accepts; anything shorter is raised to
/// it so a zero interval cannot spin a core.
pub const MIN_RUNNER_INTERVAL: Duration = Duration::from_millis(10);

/// The health of a check, as Consul spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Passing,
    Warning,
    Critical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passing => "passing",
            Status::Warning => "warning",
            Status::Critical => "critical",
        }
    }

    /// Parses Consul's exact lowercase spelling; anything else is `None`
    /// (the API answers 400 for it).
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "passing" => Some(Status::Passing),
            "warning" => Some(Status::Warning),
            "critical" => Some(Status::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Status, String> {
        Status::parse(s)
            .ok_or_else(|| format!("invalid check status {s:?}: must be passing, warning or critical"))
    }
}

/// How a check decides its status.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckKind {
    /// `args`: runs `args[0]` with the rest as arguments, no shell.
    Script { args: Vec<String> },
    /// The deprecated `script` string: runs `<shell> -c <command>`, where the
    /// shell is the given one, else `$SHELL`, else `/bin/sh` (as Consul).
    Shell { command: String, shell: Option<String> },
    /// `http` + `method` (empty = GET), `header`, `body`, `tls_skip_verify`,
    /// `tls_server_name`, `disable_redirects`.
    Http {
        url: String,
        method: String,
        headers: BTreeMap<String, Vec<String>>,
        body: Option<String>,
        tls_skip_verify: bool,
        tls_server_name: Option<String>,
        disable_redirects: bool,
    },
    /// `tcp` (`host:port`); with `use_tls` (`tcp_use_tls`) a TLS handshake
    /// must complete too.
    Tcp { address: String, use_tls: bool, tls_skip_verify: bool, tls_server_name: Option<String> },
    /// `udp` (`host:port`).
    Udp { address: String },
    /// `grpc`: `host:port` or `host:port/service`; `grpc_use_tls`.
    Grpc { target: String, use_tls: bool, tls_skip_verify: bool, tls_server_name: Option<String> },
    /// `ttl`: the status is pushed through `Runner::ttl_update`.
    Ttl { ttl: Duration },
    /// `alias_node` / `alias_service`: mirrors another service's (or, with
    /// no service, a node's) aggregate health. `node: None` = this agent.
    Alias { node: Option<String>, service_id: Option<String> },
}

impl CheckKind {
    /// The `Type` Consul shows for such a check in the HTTP API.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Script { .. } | CheckKind::Shell { .. } => "script",
            CheckKind::Http { .. } => "http",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Udp { .. } => "udp",
            CheckKind::Grpc { .. } => "grpc",
            CheckKind::Ttl { .. } => "ttl",
            CheckKind::Alias { .. } => "alias",
        }
    }

    /// Whether the check runs arbitrary commands (the agent gates these on
    /// `enable_script_checks` / `enable_local_script_checks`).
    pub fn is_script(&self) -> bool {
        matches!(self, CheckKind::Script { .. } | CheckKind::Shell { .. })
    }

    /// Whether the runner probes it on an interval (TTL and alias checks are
    /// driven from outside instead).
    pub fn is_periodic(&self) -> bool {
        !matches!(self, CheckKind::Ttl { .. } | CheckKind::Alias { .. })
    }

    /// The timeout Consul uses when none is given.
    pub fn default_timeout(&self) -> Duration {
        if self.is_script() {
            DEFAULT_SCRIPT_TIMEOUT
        } else {
            DEFAULT_TIMEOUT
        }
    }
}

/// One check as the runner needs it. The agent builds it from a check
/// definition after validation (and after the script-check gate).
#[derive(Clone, Debug, PartialEq)]
pub struct CheckSpec {
    pub id: String,
    pub kind: CheckKind,
    /// Time between the end of one run and the start of the next.
    pub interval: Duration,
    /// Per-run limit; zero means the kind's default (`CheckKind::default_timeout`).
    pub timeout: Duration,
    /// The status the agent records at registration (Consul: critical). The
    /// runner never reports it itself; it is here so a spec describes a
    /// check completely.
    pub initial: Status,
    /// Consecutive passing/warning results needed before they are reported.
    pub success_before_passing: u32,
    /// Consecutive critical results needed before warning is reported;
    /// zero means "same as `failures_before_critical`" (Consul's default).
    pub failures_before_warning: u32,
    /// Consecutive critical results needed before critical is reported.
    pub failures_before_critical: u32,
    /// Output cap in bytes; zero means `DEFAULT_OUTPUT_MAX_SIZE`.
    pub output_max_size: usize,
}

impl CheckSpec {
    /// A spec with Consul's defaults: 10s interval, the kind's timeout,
    /// initial critical, no thresholds, 4 KiB output.
    pub fn new(id: impl Into<String>, kind: CheckKind) -> CheckSpec {
        CheckSpec {
            id: id.into(),
            kind,
            interval: Duration::from_secs(10),
            timeout: Duration::ZERO,
            initial: Status::Critical,
            success_before_passing: 0,
            failures_before_warning: 0,
            failures_before_critical: 0,
            output_max_size: DEFAULT_OUTPUT_MAX_SIZE,
        }
    }

    /// The timeout actually applied to one run.
    pub fn effective_timeout(&self) -> Duration {
        if self.timeout.is_zero() {
            self.kind.default_timeout()
        } else {
            self.timeout
        }
    }

    /// The interval actually applied between runs.
    pub fn effective_interval(&self) -> Duration {
        self.interval.max(MIN_RUNNER_INTERVAL)
    }

    /// The output cap actually applied.
    pub fn effective_output_max_size(&self) -> usize {
        if self.output_max_size == 0 {
            DEFAULT_OUTPUT_MAX_SIZE
        } else {
            self.output_max_size
        }
    }
}

/// One report from a running check.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckResult {
    pub id: String,
    pub status: Status,
    pub output: String,
}
