//! JSON request bodies decoded the way Consul's Go decoder does: struct
//! field names match case-insensitively (and, as Consul's agent endpoints
//! allow, with or without underscores: `EnableTagOverride`,
//! `enable_tag_override`), unknown fields are ignored, and map keys (such as
//! `Meta`) are left exactly as sent.

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// Decodes a body into `T` with Consul's field-name rules. The error text
/// names the field path, as a user would need to fix it.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    from_value(value)
}

pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(CiValue(value)).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

fn normalize(s: &str) -> String {
    s.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

struct CiValue(Value);

impl<'de> de::Deserializer<'de> for CiValue {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(CiSeq(items.into_iter())),
            Value::Object(map) => visitor.visit_map(CiMap::new(map, None)),
            other => de::Deserializer::deserialize_any(other, visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(CiMap::new(map, Some(fields))),
            other => de::Deserializer::deserialize_struct(other, name, fields, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(CiValue(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_enum(self.0, name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct CiSeq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for CiSeq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        match self.0.next() {
            Some(v) => seed.deserialize(CiValue(v)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct CiMap {
    iter: serde_json::map::IntoIter,
    fields: Option<&'static [&'static str]>,
    pending: Option<Value>,
}

impl CiMap {
    fn new(map: Map<String, Value>, fields: Option<&'static [&'static str]>) -> Self {
        CiMap { iter: map.into_iter(), fields, pending: None }
    }
}

impl<'de> MapAccess<'de> for CiMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.iter.next() else { return Ok(None) };
        self.pending = Some(value);
        let key = match self.fields {
            Some(fields) => {
                let want = normalize(&key);
                fields.iter().find(|f| normalize(f) == want).map(|f| f.to_string()).unwrap_or(key)
            }
            None => key,
        };
        seed.deserialize(IntoDeserializer::<serde_json::Error>::into_deserializer(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        match self.pending.take() {
            Some(v) => seed.deserialize(CiValue(v)),
            None => Err(de::Error::custom("value is missing")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Svc {
        #[serde(rename = "ID")]
        id: Option<String>,
        name: String,
        enable_tag_override: Option<bool>,
        meta: Option<BTreeMap<String, String>>,
        check: Option<Chk>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Chk {
        #[serde(rename = "TTL")]
        ttl: Option<String>,
    }

    #[test]
    fn case_and_underscores_ignored_map_keys_kept() {
        let v: Svc = from_slice(
            br#"{"id": "x", "NAME": "web", "enable_tag_override": true, "Meta": {"Env": "Prod"},
                 "check": {"ttl": "10s"}, "Unknown": 1}"#,
        )
        .unwrap();
        assert_eq!(v.id.as_deref(), Some("x"));
        assert_eq!(v.name, "web");
        assert_eq!(v.enable_tag_override, Some(true));
        assert_eq!(v.meta.unwrap().get("Env").map(String::as_str), Some("Prod"));
        assert_eq!(v.check.unwrap().ttl.as_deref(), Some("10s"));
    }

    #[test]
    fn errors_name_the_field() {
        let err = from_slice::<Svc>(br#"{"Name": 5}"#).unwrap_err();
        assert!(err.contains("Name"), "{err}");
    }
}
