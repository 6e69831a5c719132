//! Logging in Consul's format: `2026-01-02T03:04:05.678Z [INFO]  agent: message: key=value`.
//! Targets are Consul's component names (`agent`, `agent.server.raft`,
//! `agent.http`); openraft's own targets are shown as `agent.server.raft`.
//! The level can be changed at run time (reload). Also owns the monitor
//! tap behind `/v1/agent/monitor`: live copies of the log for readers who
//! may ask for more detail than the agent writes. Must not do I/O for a
//! monitor itself (the HTTP handler does) nor ever wait on a reader.

use crate::config::LogLevel;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt};
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

/// Installs the global logger: the stdout writer at the configured level,
/// and the monitor tap (`monitor`), which sees events at whatever level the
/// attached monitors ask for. Safe to call more than once (later calls only
/// change the level).
pub fn init(level: LogLevel, json: bool) {
    if HANDLE.get().is_some() {
        set_level(level);
        return;
    }
    let (filter, handle) = reload::Layer::new(filter_for(level));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stdout)
        .event_format(ConsulFormat { json })
        .with_filter(filter);
    let tap = global_tap();
    let tap_layer = TapLayer { tap: tap.clone() }.with_filter(TapFilter { tap });
    if tracing_subscriber::registry().with(fmt).with(tap_layer).try_init().is_ok() {
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

/// One event, decoded once, ready to render as either kind of line.
struct Line {
    ts: String,
    level: &'static str,
    component: String,
    fields: Fields,
}

impl Line {
    fn of(event: &Event<'_>) -> Line {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        Line {
            ts: timestamp(),
            level: level_name(meta.level()),
            component: component(meta.target()).to_string(),
            fields,
        }
    }

    /// `TIMESTAMP [LEVEL] component: message: k=v k2="v 2"`, no newline.
    fn text(&self) -> String {
        let level = self.level;
        let mut line = String::new();
        let _ = write!(
            line,
            "{} [{level}] {:width$}{}: {}",
            self.ts,
            "",
            self.component,
            self.fields.message,
            width = 5 - level.len()
        );
        if !self.fields.pairs.is_empty() {
            line.push(':');
            for (k, v) in &self.fields.pairs {
                let quoted = v.contains(' ') || v.is_empty();
                if quoted {
                    let _ = write!(line, " {k}=\"{v}\"");
                } else {
                    let _ = write!(line, " {k}={v}");
                }
            }
        }
        line
    }

    /// One JSON object (`@timestamp`, `@level`, `@module`, `@message`, fields), no newline.
    fn json(&self) -> String {
        let mut obj = serde_json::Map::new();
        obj.insert("@timestamp".into(), self.ts.clone().into());
        obj.insert("@level".into(), self.level.to_ascii_lowercase().into());
        obj.insert("@module".into(), self.component.clone().into());
        obj.insert("@message".into(), self.fields.message.clone().into());
        for (k, v) in &self.fields.pairs {
            obj.insert(k.clone(), v.clone().into());
        }
        serde_json::Value::Object(obj).to_string()
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

impl<S, N> FormatEvent<S, N> for ConsulFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let line = Line::of(event);
        if self.json {
            writeln!(w, "{}", line.json())
        } else {
            writeln!(w, "{}", line.text())
        }
    }
}

// ---------------------------------------------------------------------------
// The monitor tap: `/v1/agent/monitor` streams. Each attached monitor has a
// level, a format and a bounded queue. Logging never waits for a monitor: a
// full queue drops the line and counts it, and the reader is told how many
// it missed. Events below the agent's own level reach the tap only while a
// monitor asks for them (the tap's filter reports the most verbose level
// any monitor wants, and tracing's interest cache is rebuilt on changes).
// ---------------------------------------------------------------------------

/// Lines a monitor may have queued before new ones are dropped.
pub const MONITOR_BUFFER: usize = 512;

/// The set of attached monitors. One global instance serves the agent;
/// tests make their own.
#[derive(Clone, Default)]
pub struct Tap {
    inner: Arc<TapInner>,
}

#[derive(Default)]
struct TapInner {
    sinks: Mutex<Vec<Arc<Sink>>>,
    /// The most verbose level any monitor wants: 0 none, 1 error .. 5 trace.
    max: AtomicU8,
    next_id: AtomicU64,
}

struct Sink {
    id: u64,
    level: LogLevel,
    json: bool,
    tx: mpsc::Sender<String>,
    dropped: AtomicU64,
}

fn global_tap() -> Tap {
    static TAP: OnceLock<Tap> = OnceLock::new();
    TAP.get_or_init(Tap::default).clone()
}

/// Attaches a monitor to the agent's log: lines at `level` and above, as
/// text or JSON, from now until the returned stream is dropped.
pub fn monitor(level: LogLevel, json: bool) -> LogStream {
    global_tap().attach(level, json, MONITOR_BUFFER)
}

fn rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Error => 1,
        LogLevel::Warn => 2,
        LogLevel::Info => 3,
        LogLevel::Debug => 4,
        LogLevel::Trace => 5,
    }
}

fn event_rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Whether a monitor at `want` shows an event: the same rule as the
/// agent's own filter (`filter_for`), so a monitor at the agent's level
/// sees exactly the agent's output.
fn shows(want: LogLevel, meta: &tracing::Metadata<'_>) -> bool {
    let ev = event_rank(meta.level());
    let mut limit = rank(want);
    let target = meta.target();
    if want != LogLevel::Trace {
        if target.starts_with("openraft") {
            limit = limit.min(if want == LogLevel::Debug { 3 } else { 2 });
        } else if ["hyper", "h2", "tower"].iter().any(|p| target.starts_with(p)) {
            limit = limit.min(2);
        }
    }
    ev <= limit
}

impl Tap {
    /// Attaches a monitor with a queue of `buffer` lines.
    pub fn attach(&self, level: LogLevel, json: bool, buffer: usize) -> LogStream {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let sink = Arc::new(Sink { id, level, json, tx, dropped: AtomicU64::new(0) });
        self.sinks().push(sink.clone());
        self.recompute();
        crate::metrics::gauge_add("consul.agent.monitor.streams", 1);
        LogStream { rx, sink, tap: self.clone(), pending: None }
    }

    /// How many streams are attached (tests look).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sinks().len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sinks(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Sink>>> {
        self.inner.sinks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn detach(&self, id: u64) {
        self.sinks().retain(|s| s.id != id);
        self.recompute();
        crate::metrics::gauge_add("consul.agent.monitor.streams", -1);
    }

    /// Updates the tap's level and makes tracing ask it again, so events
    /// nobody wants any more stop being built.
    fn recompute(&self) {
        let max = self.sinks().iter().map(|s| rank(s.level)).max().unwrap_or(0);
        if self.inner.max.swap(max, Ordering::Relaxed) != max {
            tracing::callsite::rebuild_interest_cache();
        }
    }

    fn max_rank(&self) -> u8 {
        self.inner.max.load(Ordering::Relaxed)
    }

    /// Hands one event to every monitor that wants it, rendering each
    /// format at most once. Never blocks.
    fn publish(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut sinks: Vec<Arc<Sink>> =
            self.sinks().iter().filter(|s| shows(s.level, meta)).cloned().collect();
        // A reader whose queue is full loses this line: count it without
        // rendering anything, so a stuck reader costs next to nothing.
        sinks.retain(|s| {
            let room = s.tx.capacity() > 0;
            if !room {
                s.dropped.fetch_add(1, Ordering::Relaxed);
            }
            room
        });
        if sinks.is_empty() {
            return;
        }
        let line = Line::of(event);
        let (mut text, mut json) = (None, None);
        for s in sinks {
            let rendered = if s.json {
                json.get_or_insert_with(|| line.json()).clone()
            } else {
                text.get_or_insert_with(|| line.text()).clone()
            };
            if let Err(mpsc::error::TrySendError::Full(_)) = s.tx.try_send(rendered) {
                s.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One attached monitor's lines. Dropping it detaches the monitor.
pub struct LogStream {
    rx: mpsc::Receiver<String>,
    sink: Arc<Sink>,
    tap: Tap,
    /// The drop notice, due after the line just handed out.
    pending: Option<String>,
}

impl LogStream {
    /// The next line (without a newline). If lines were dropped because
    /// this reader fell behind, a warning saying how many follows the lines
    /// that were queued when the dropping happened.
    pub async fn next(&mut self) -> Option<String> {
        if let Some(notice) = self.pending.take() {
            return Some(notice);
        }
        let line = self.rx.recv().await?;
        if self.rx.is_empty() {
            let missed = self.sink.dropped.swap(0, Ordering::Relaxed);
            if missed > 0 {
                // Counted here, off the logging path.
                crate::metrics::incr("consul.agent.monitor.dropped", missed);
                self.pending = Some(self.notice(missed));
            }
        }
        Some(line)
    }

    fn notice(&self, missed: u64) -> String {
        let line = Line {
            ts: timestamp(),
            level: "WARN",
            component: "agent.monitor".into(),
            fields: Fields {
                message: format!("Monitor dropped {missed} logs during monitor request"),
                pairs: Vec::new(),
            },
        };
        if self.sink.json {
            line.json()
        } else {
            line.text()
        }
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        let missed = self.sink.dropped.swap(0, Ordering::Relaxed);
        if missed > 0 {
            crate::metrics::incr("consul.agent.monitor.dropped", missed);
        }
        self.tap.detach(self.sink.id);
    }
}

/// Feeds events to the tap.
struct TapLayer {
    tap: Tap,
}

impl<S: Subscriber> Layer<S> for TapLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        self.tap.publish(event);
    }
}

/// Lets events through to the tap only up to the most verbose level an
/// attached monitor wants (none while no monitor is attached).
struct TapFilter {
    tap: Tap,
}

impl<S> Filter<S> for TapFilter {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        event_rank(meta.level()) <= self.tap.max_rank()
    }

    fn callsite_enabled(&self, meta: &'static tracing::Metadata<'static>) -> Interest {
        // Cached per call site; `recompute` rebuilds the cache whenever the
        // level monitors want changes, so the answer stays right.
        if event_rank(meta.level()) <= self.tap.max_rank() {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match self.tap.max_rank() {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
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

    use tracing_subscriber::layer::SubscriberExt;

    /// Runs `f` with a subscriber that feeds only `tap`.
    fn with_tap(tap: &Tap, f: impl FnOnce()) {
        let layer = TapLayer { tap: tap.clone() }.with_filter(TapFilter { tap: tap.clone() });
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    }

    fn drain(s: &mut LogStream) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(Some(l)) =
            tokio::runtime::Builder::new_current_thread().enable_time().build().map(|rt| {
                rt.block_on(async {
                    tokio::time::timeout(std::time::Duration::from_millis(50), s.next()).await.ok().flatten()
                })
            })
        {
            out.push(l);
        }
        out
    }

    #[test]
    fn monitor_gets_lines_at_its_level_in_its_format() {
        let tap = Tap::default();
        let mut info = tap.attach(LogLevel::Info, false, 16);
        let mut debug_json = tap.attach(LogLevel::Debug, true, 16);
        with_tap(&tap, || {
            tracing::info!(target: "agent", service = "web", "Synced service");
            tracing::debug!(target: "agent", event_name = "deploy now", "new event");
            tracing::debug!(target: "openraft::core", "internal chatter");
        });
        let lines = drain(&mut info);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with(" [INFO]  agent: Synced service: service=web"), "{}", lines[0]);
        let lines = drain(&mut debug_json);
        assert_eq!(lines.len(), 2, "openraft debug stays quiet at debug: {lines:?}");
        let v: serde_json::Value = serde_json::from_str(&lines[1]).expect("json line");
        assert_eq!(v["@level"], "debug");
        assert_eq!(v["@module"], "agent");
        assert_eq!(v["@message"], "new event");
        assert_eq!(v["event_name"], "deploy now");
    }

    #[test]
    fn slow_reader_loses_lines_but_never_blocks_logging() {
        let tap = Tap::default();
        let mut slow = tap.attach(LogLevel::Info, false, 2);
        with_tap(&tap, || {
            for i in 0..5 {
                tracing::info!(target: "agent", n = i, "tick");
            }
        });
        let lines = drain(&mut slow);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].ends_with("tick: n=0") && lines[1].ends_with("tick: n=1"), "{lines:?}");
        assert!(
            lines[2].contains("[WARN]  agent.monitor: Monitor dropped 3 logs during monitor request"),
            "{lines:?}"
        );
        // The notice is given once; later lines flow again.
        with_tap(&tap, || tracing::info!(target: "agent", "after"));
        let lines = drain(&mut slow);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].ends_with("agent: after"));
    }

    /// Measurement, not a check: `cargo test --lib logging::tests::tap_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn tap_cost() {
        const N: u32 = 200_000;
        let tap = Tap::default();
        let run = |label: &str| {
            let start = std::time::Instant::now();
            with_tap(&tap, || {
                for i in 0..N {
                    tracing::info!(target: "agent", n = i, "tick");
                }
            });
            println!("{label}: {:.0} ns/event", start.elapsed().as_nanos() as f64 / f64::from(N));
        };
        run("no monitor");
        let stuck = tap.attach(LogLevel::Info, false, MONITOR_BUFFER);
        run("one monitor that never reads (queue full after 512)");
        drop(stuck);
        let _json = tap.attach(LogLevel::Info, true, MONITOR_BUFFER);
        let _text = tap.attach(LogLevel::Info, false, MONITOR_BUFFER);
        run("two stuck monitors, text and JSON");
        // For scale: what the agent's own stdout formatter costs per event.
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::sink)
            .event_format(ConsulFormat { json: false });
        let start = std::time::Instant::now();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(fmt), || {
            for i in 0..N {
                tracing::info!(target: "agent", n = i, "tick");
            }
        });
        println!(
            "agent's own formatter, to a null writer: {:.0} ns/event",
            start.elapsed().as_nanos() as f64 / f64::from(N)
        );
    }

    #[test]
    fn dropping_the_stream_detaches_and_quiets_the_tap() {
        let tap = Tap::default();
        let a = tap.attach(LogLevel::Trace, false, 4);
        let b = tap.attach(LogLevel::Warn, false, 4);
        assert_eq!((tap.len(), tap.max_rank()), (2, 5));
        drop(a);
        assert_eq!((tap.len(), tap.max_rank()), (1, 2));
        drop(b);
        assert!(tap.is_empty());
        assert_eq!(tap.max_rank(), 0);
    }

    #[test]
    fn timestamps() {
        assert_eq!(format_unix_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_unix_millis(1_795_786_843_123), "2026-11-27T13:40:43.123Z");
        assert_eq!(format_unix_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
