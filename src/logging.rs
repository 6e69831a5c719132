//! Logging in Consul's format: `2026-01-02T03:04:05.678Z [INFO]  agent: message: key=value`.
//! Targets are Consul's component names (`agent`, `agent.server.raft`,
//! `agent.http`); openraft's own targets are shown as `agent.server.raft`.
//! The level can be changed at run time (reload).

use crate::config::LogLevel;
use std::fmt::Write as _;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

type ReloadHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

static HANDLE: OnceLock<ReloadHandle> = OnceLock::new();

fn filter_for(level: LogLevel) -> EnvFilter {
    let base = match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    // openraft narrates its internals at INFO and below; our own
    // `agent.server.raft` lines report what operators need, so openraft's
    // own output is shown one level quieter, and fully only at TRACE.
    let quiet = match level {
        LogLevel::Trace => "",
        LogLevel::Debug => ",openraft=info,hyper=warn,h2=warn,tower=warn",
        _ => ",openraft=warn,hyper=warn,h2=warn,tower=warn",
    };
    EnvFilter::new(format!("{base}{quiet}"))
}

/// Installs the global logger. Safe to call more than once (later calls
/// only change the level).
pub fn init(level: LogLevel, json: bool) {
    if HANDLE.get().is_some() {
        set_level(level);
        return;
    }
    let (filter, handle) = reload::Layer::new(filter_for(level));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stdout)
        .event_format(ConsulFormat { json });
    if tracing_subscriber::registry().with(filter).with(fmt).try_init().is_ok() {
        let _ = HANDLE.set(handle);
    }
}

/// Changes the log level of the running agent.
pub fn set_level(level: LogLevel) {
    if let Some(h) = HANDLE.get() {
        let _ = h.reload(filter_for(level));
    }
}

/// Maps a tracing target to Consul's component name.
fn component(target: &str) -> &str {
    if target.starts_with("openraft") {
        "agent.server.raft"
    } else if let Some(rest) = target.strip_prefix("consul::") {
        // Unlabelled events from our own modules: name the module.
        rest.split("::").next().unwrap_or("agent")
    } else {
        target
    }
}

struct ConsulFormat {
    json: bool,
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.pairs.push((field.name().to_string(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.pairs.push((field.name().to_string(), format!("{value:?}")));
        }
    }
}

impl<S, N> FormatEvent<S, N> for ConsulFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *meta.level() {
            Level::TRACE => "TRACE",
            Level::DEBUG => "DEBUG",
            Level::INFO => "INFO",
            Level::WARN => "WARN",
            Level::ERROR => "ERROR",
        };
        let ts = timestamp();
        if self.json {
            let mut obj = serde_json::Map::new();
            obj.insert("@timestamp".into(), ts.into());
            obj.insert("@level".into(), level.to_ascii_lowercase().into());
            obj.insert("@module".into(), component(meta.target()).into());
            obj.insert("@message".into(), fields.message.into());
            for (k, v) in fields.pairs {
                obj.insert(k, v.into());
            }
            return writeln!(w, "{}", serde_json::Value::Object(obj));
        }
        let mut line = String::new();
        let _ = write!(line, "{ts} [{level}] {:width$}{}: {}", "", component(meta.target()), fields.message, width = 5 - level.len());
        if !fields.pairs.is_empty() {
            line.push(':');
            for (k, v) in fields.pairs {
                let quoted = v.contains(' ') || v.is_empty();
                if quoted {
                    let _ = write!(line, " {k}=\"{v}\"");
                } else {
                    let _ = write!(line, " {k}={v}");
                }
            }
        }
        writeln!(w, "{line}")
    }
}

/// RFC 3339 UTC timestamp with milliseconds, without a date crate.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format_unix_millis(now.as_millis() as i64)
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_unix_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", sod / 3600, (sod % 3600) / 60, sod % 60)
}

/// Days since 1970-01-01 to a (year, month, day) date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(format_unix_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_unix_millis(1_795_786_843_123), "2026-11-27T13:40:43.123Z");
        assert_eq!(format_unix_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
