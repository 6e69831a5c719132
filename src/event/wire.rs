//! How a user event rides inside a serf user event (our own format; mixed
//! clusters with HashiCorp agents are a non-goal).
//!
//! Serf name: `consul:event:<name>` (Consul's prefix, so internal serf
//! events never collide with user ones). Serf payload: one format byte
//! (1), then the postcard encoding of `WireV1`. The name is not repeated
//! inside, which leaves more of serf's 512 bytes to the payload. Trailing
//! bytes after `WireV1` are ignored, so later versions may append fields.
//!
//! Owns the encoding. Must not filter or store events.

use super::types::UserEvent;
use serde::{Deserialize, Serialize};

/// Prefix of the serf event names that carry user events.
pub const SERF_PREFIX: &str = "consul:event:";

const FORMAT_V1: u8 = 1;

#[derive(Serialize, Deserialize)]
struct WireV1 {
    id: [u8; 16],
    payload: Option<Vec<u8>>,
    node_filter: String,
    service_filter: String,
    tag_filter: String,
    version: u8,
}

/// The serf event name for a user event name.
pub fn serf_name(name: &str) -> String {
    format!("{SERF_PREFIX}{name}")
}

/// The serf payload of an event (the name travels as the serf name).
pub fn encode(ev: &UserEvent) -> Result<Vec<u8>, String> {
    let w = WireV1 {
        id: *ev.id.as_bytes(),
        payload: ev.payload.clone(),
        node_filter: ev.node_filter.clone(),
        service_filter: ev.service_filter.clone(),
        tag_filter: ev.tag_filter.clone(),
        version: ev.version,
    };
    let mut out = vec![FORMAT_V1];
    out.extend(postcard::to_stdvec(&w).map_err(|e| format!("failed to encode user event: {e}"))?);
    Ok(out)
}

/// Decodes a serf user event. `Ok(None)` when the serf event is not a
/// user event of ours (another serf event name).
pub fn decode(serf_name: &str, payload: &[u8], ltime: u64) -> Result<Option<UserEvent>, String> {
    let Some(name) = serf_name.strip_prefix(SERF_PREFIX) else { return Ok(None) };
    if name.is_empty() {
        return Err("user event has an empty name".into());
    }
    let (format, body) = payload.split_first().ok_or("user event payload is empty")?;
    if *format != FORMAT_V1 {
        return Err(format!("unknown user event format {format}"));
    }
    let (w, _later_fields) =
        postcard::take_from_bytes::<WireV1>(body).map_err(|e| format!("bad user event encoding: {e}"))?;
    Ok(Some(UserEvent {
        id: uuid::Uuid::from_bytes(w.id),
        name: name.to_string(),
        payload: w.payload,
        node_filter: w.node_filter,
        service_filter: w.service_filter,
        tag_filter: w.tag_filter,
        version: w.version,
        ltime,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> UserEvent {
        UserEvent {
            id: uuid::Uuid::new_v4(),
            name: "deploy".into(),
            payload: Some(b"v1.2.3".to_vec()),
            node_filter: "^web".into(),
            service_filter: "api".into(),
            tag_filter: "prod".into(),
            version: 1,
            ltime: 0,
        }
    }

    #[test]
    fn round_trip_keeps_everything_and_takes_the_lamport_time() {
        let ev = sample();
        let bytes = encode(&ev).unwrap();
        let back = decode(&serf_name("deploy"), &bytes, 42).unwrap().unwrap();
        assert_eq!(back, UserEvent { ltime: 42, ..ev.clone() });
        let no_payload = UserEvent { payload: None, ..ev };
        let back = decode("consul:event:deploy", &encode(&no_payload).unwrap(), 1).unwrap().unwrap();
        assert_eq!(back.payload, None);
    }

    #[test]
    fn other_serf_events_are_not_ours() {
        assert_eq!(decode("consul:new-leader", b"x", 1).unwrap(), None);
        assert_eq!(decode("deploy", b"x", 1).unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode("consul:event:x", b"", 1).is_err());
        assert!(decode("consul:event:x", &[9, 1, 2], 1).unwrap_err().contains("format 9"));
        assert!(decode("consul:event:x", &[1, 0xff, 0xff], 1).is_err());
        assert!(decode("consul:event:", &encode(&sample()).unwrap(), 1).is_err());
        // Every truncation of a valid encoding fails cleanly.
        let bytes = encode(&sample()).unwrap();
        for n in 0..bytes.len() {
            assert!(decode("consul:event:x", &bytes[..n], 1).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn appended_fields_are_ignored() {
        let mut bytes = encode(&sample()).unwrap();
        bytes.extend_from_slice(&[7, 7, 7]);
        assert!(decode("consul:event:deploy", &bytes, 1).unwrap().is_some());
    }

    #[test]
    fn encoding_is_compact() {
        // Format byte, 16-byte ID, one length byte per string and the
        // payload, one for the option tag and one for the version.
        let ev = UserEvent {
            payload: Some(vec![0; 10]),
            node_filter: String::new(),
            service_filter: String::new(),
            tag_filter: String::new(),
            ..sample()
        };
        assert_eq!(encode(&ev).unwrap().len(), 1 + 16 + 1 + 1 + 10 + 3 + 1);
    }
}
