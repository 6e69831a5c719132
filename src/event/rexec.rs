//! The remote-exec protocol `consul exec` and the agents share: the KV
//! layout under `<prefix>/<session>/`, the job spec stored there, and the
//! payload of the `_rexec` user event. Both sides use these definitions so
//! they cannot drift apart; the JSON shapes and key names are Consul's.
//!
//! ```text
//! <prefix>/<session>/job                  job spec (JSON), written by the CLI
//! <prefix>/<session>/<node>/ack           empty: the node took the job
//! <prefix>/<session>/<node>/out/<%05x>    output chunk (empty = heartbeat)
//! <prefix>/<session>/<node>/exit          exit code, decimal text
//! ```
//!
//! Every key is written with `?acquire=<session>`, so destroying the
//! session (behavior `delete`) removes them all.
//!
//! Owns names and shapes only; no IO.

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

pub const DEFAULT_PREFIX: &str = "_rexec";
pub const JOB: &str = "job";
pub const ACK: &str = "ack";
pub const EXIT: &str = "exit";
pub const OUTPUT: &str = "out";

/// The payload of the `_rexec` user event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecEvent {
    #[serde(rename = "Prefix", alias = "prefix", default)]
    pub prefix: String,
    #[serde(rename = "Session", alias = "session", default)]
    pub session: String,
}

/// The job: a shell command, an argv run without a shell, or a script.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    #[serde(
        rename = "Command",
        alias = "command",
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub command: String,
    #[serde(
        rename = "Args",
        alias = "args",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub args: Vec<String>,
    /// Base64 in JSON, as Go encodes a byte slice.
    #[serde(
        rename = "Script",
        alias = "script",
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "base64_bytes"
    )]
    pub script: Vec<u8>,
    /// The CLI's quiet period; agents send a heartbeat after this long
    /// without output. Integer nanoseconds in JSON (Go's `time.Duration`).
    #[serde(rename = "Wait", alias = "wait", default, with = "nanos")]
    pub wait: Duration,
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

mod base64_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(serde::de::Error::custom),
        }
    }
}

mod nanos {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let n = Option::<i64>::deserialize(d)?.unwrap_or(0);
        Ok(Duration::from_nanos(n.max(0) as u64))
    }
}

/// Go's `path.Join`: joins the non-empty parts with `/` and cleans the
/// result (no empty or `.` segments, `..` resolved).
pub fn join(parts: &[&str]) -> String {
    let rooted = parts.iter().find(|p| !p.is_empty()).is_some_and(|p| p.starts_with('/'));
    let mut segs: Vec<&str> = Vec::new();
    for seg in parts.iter().flat_map(|p| p.split('/')) {
        match seg {
            "" | "." => {}
            ".." => {
                if segs.last().is_some_and(|s| *s != "..") {
                    segs.pop();
                } else if !rooted {
                    segs.push("..");
                }
            }
            s => segs.push(s),
        }
    }
    let body = segs.join("/");
    if rooted {
        format!("/{body}")
    } else {
        body
    }
}

/// `<prefix>/<session>/job`.
pub fn job_key(prefix: &str, session: &str) -> String {
    join(&[prefix, session, JOB])
}

/// `<prefix>/<session>/<node>/<suffix>`.
pub fn node_key(prefix: &str, session: &str, node: &str, suffix: &str) -> String {
    join(&[prefix, session, node, suffix])
}

/// The suffix of output chunk `num`: `out/00000`, `out/00001`, …
pub fn output_suffix(num: u32) -> String {
    format!("{OUTPUT}/{num:05x}")
}

/// What a key under `<prefix>/<session>/` is, from the part after that
/// directory (the CLI's reading of the layout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResultKey<'a> {
    Job,
    Ack(&'a str),
    Exit(&'a str),
    Output(&'a str),
    Unknown,
}

pub fn classify(rel: &str) -> ResultKey<'_> {
    if rel == JOB {
        return ResultKey::Job;
    }
    if let Some(node) = rel.strip_suffix("/ack") {
        return ResultKey::Ack(node);
    }
    if let Some(node) = rel.strip_suffix("/exit") {
        return ResultKey::Exit(node);
    }
    if let Some(idx) = rel.rfind("/out/") {
        return ResultKey::Output(&rel[..idx]);
    }
    ResultKey::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_cleans_like_go() {
        assert_eq!(join(&["_rexec", "s1", "job"]), "_rexec/s1/job");
        assert_eq!(join(&["_rexec/", "s1", "node", "out/0000a"]), "_rexec/s1/node/out/0000a");
        assert_eq!(join(&["a//b", "", "./c"]), "a/b/c");
        assert_eq!(join(&["a", "..", "b"]), "b");
        assert_eq!(join(&["/a", "b"]), "/a/b");
        assert_eq!(join(&["/..", "b"]), "/b");
        assert_eq!(join(&["", ""]), "");
    }

    #[test]
    fn keys_and_chunk_names() {
        assert_eq!(job_key("_rexec", "abc"), "_rexec/abc/job");
        assert_eq!(node_key("_rexec", "abc", "n1", ACK), "_rexec/abc/n1/ack");
        assert_eq!(output_suffix(0), "out/00000");
        assert_eq!(output_suffix(26), "out/0001a");
        assert_eq!(node_key("p", "s", "n", &output_suffix(1)), "p/s/n/out/00001");
    }

    #[test]
    fn classify_reads_the_layout() {
        assert_eq!(classify("job"), ResultKey::Job);
        assert_eq!(classify("web-1/ack"), ResultKey::Ack("web-1"));
        assert_eq!(classify("web-1/exit"), ResultKey::Exit("web-1"));
        assert_eq!(classify("web-1/out/00003"), ResultKey::Output("web-1"));
        assert_eq!(classify("weird"), ResultKey::Unknown);
    }

    #[test]
    fn job_spec_json_is_consuls() {
        let spec = JobSpec { command: "uptime".into(), wait: Duration::from_secs(2), ..Default::default() };
        assert_eq!(serde_json::to_string(&spec).unwrap(), r#"{"Command":"uptime","Wait":2000000000}"#);
        let script =
            JobSpec { script: b"echo hi\n".to_vec(), wait: Duration::from_millis(1), ..Default::default() };
        assert_eq!(serde_json::to_string(&script).unwrap(), r#"{"Script":"ZWNobyBoaQo=","Wait":1000000}"#);
        let back: JobSpec =
            serde_json::from_str(r#"{"Command":"","Args":null,"Script":"ZWNobyBoaQo=","Wait":1000000}"#)
                .unwrap();
        assert_eq!(back, script);
        let argv: JobSpec = serde_json::from_str(r#"{"args":["ls","-l"],"wait":-5}"#).unwrap();
        assert_eq!(argv.args, vec!["ls", "-l"]);
        assert_eq!(argv.wait, Duration::ZERO);
        assert!(serde_json::from_str::<JobSpec>(r#"{"Script":"%%%"}"#).is_err());
    }

    #[test]
    fn event_payload_json_is_consuls() {
        let ev = ExecEvent { prefix: "_rexec".into(), session: "s1".into() };
        assert_eq!(serde_json::to_string(&ev).unwrap(), r#"{"Prefix":"_rexec","Session":"s1"}"#);
        assert_eq!(
            serde_json::from_str::<ExecEvent>(r#"{"prefix":"p","session":"s"}"#).unwrap().session,
            "s"
        );
    }
}
