//! The user event as `/v1/event/fire` answers and `/v1/event/list` lists
//! it, and the blocking index derived from its ID.
//!
//! Owns the JSON shape only; no IO.

use base64::Engine;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// One user event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEvent {
    pub id: uuid::Uuid,
    pub name: String,
    /// `None` when the event was fired without a body (JSON `null`).
    pub payload: Option<Vec<u8>>,
    pub node_filter: String,
    pub service_filter: String,
    pub tag_filter: String,
    pub version: u8,
    /// Serf's Lamport time of the event; 0 in the answer to a fire.
    pub ltime: u64,
}

impl Serialize for UserEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Go marshals the struct's field names as they are and a nil byte
        // slice as null.
        let mut st = s.serialize_struct("UserEvent", 8)?;
        st.serialize_field("ID", &self.id.to_string())?;
        st.serialize_field("Name", &self.name)?;
        let payload = self.payload.as_ref().map(|p| base64::engine::general_purpose::STANDARD.encode(p));
        st.serialize_field("Payload", &payload)?;
        st.serialize_field("NodeFilter", &self.node_filter)?;
        st.serialize_field("ServiceFilter", &self.service_filter)?;
        st.serialize_field("TagFilter", &self.tag_filter)?;
        st.serialize_field("Version", &self.version)?;
        st.serialize_field("LTime", &self.ltime)?;
        st.end()
    }
}

/// The `X-Consul-Index` an event stands for: the two 64-bit halves of its
/// 128-bit ID XORed together (Consul's rule; the API client applies the
/// same rule to turn an ID into a wait index).
pub fn index_of(id: &uuid::Uuid) -> u64 {
    let v = id.as_u128();
    ((v >> 64) as u64) ^ (v as u64)
}

/// `index_of` for an ID in its text form; `None` if it is not a UUID.
pub fn id_to_index(id: &str) -> Option<u64> {
    uuid::Uuid::parse_str(id).ok().map(|u| index_of(&u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_the_xor_of_the_id_halves() {
        // High half 0x0123456789abcdef, low half 0xfedcba9876543210.
        let id = "01234567-89ab-cdef-fedc-ba9876543210";
        assert_eq!(id_to_index(id), Some(0x0123456789abcdef ^ 0xfedcba9876543210));
        assert_eq!(id_to_index(id), Some(0xffff_ffff_ffff_ffff));
        // Worked by hand: 0x...0001 ^ 0x...0003 = 2.
        assert_eq!(id_to_index("00000000-0000-0001-0000-000000000003"), Some(2));
        // Equal halves give 0 (the handler then answers index 1).
        assert_eq!(id_to_index("b54fe110-7af5-cafc-b54f-e1107af5cafc"), Some(0));
        assert_eq!(id_to_index("not-a-uuid"), None);
        // Upper-case hex parses to the same index.
        assert_eq!(
            id_to_index("B54FE110-7AF5-CAFC-D1FB-AFC8BA432B1C"),
            id_to_index("b54fe110-7af5-cafc-d1fb-afc8ba432b1c")
        );
    }

    #[test]
    fn index_matches_the_sample_event() {
        // The ID in Consul's API docs: b54fe110-7af5-cafc | d1fb-afc8ba432b1c.
        let expected = 0xb54fe1107af5cafc_u64 ^ 0xd1fbafc8ba432b1c_u64;
        assert_eq!(id_to_index("b54fe110-7af5-cafc-d1fb-afc8ba432b1c"), Some(expected));
    }

    #[test]
    fn json_shape_is_consuls() {
        let mut e = UserEvent {
            id: uuid::Uuid::parse_str("b54fe110-7af5-cafc-d1fb-afc8ba432b1c").unwrap(),
            name: "deploy".into(),
            payload: None,
            node_filter: String::new(),
            service_filter: "web".into(),
            tag_filter: String::new(),
            version: 1,
            ltime: 0,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"ID":"b54fe110-7af5-cafc-d1fb-afc8ba432b1c","Name":"deploy","Payload":null,"NodeFilter":"","ServiceFilter":"web","TagFilter":"","Version":1,"LTime":0}"#
        );
        e.payload = Some(b"1609030".to_vec());
        e.ltime = 19;
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["Payload"], "MTYwOTAzMA==");
        assert_eq!(v["LTime"], 19);
    }
}
