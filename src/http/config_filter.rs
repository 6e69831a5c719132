//! `?filter=` on `/v1/config/:kind`: the selectors of a kind are its
//! fields as the config-entry schema declares them (Consul evaluates the
//! expression against the kind's Go struct), plus `Kind`, `Name` and the
//! raft indexes. Free-form fields (`Config`, extension `Arguments`) are not
//! selectable, as in Consul.

use crate::config_entry::schema::{Ty, F};
use crate::filter::{Field, Kind, Schema};

fn kind_of(ty: Ty) -> Option<Kind> {
    Some(match ty {
        Ty::Str | Ty::Dur => Kind::String,
        Ty::Bool => Kind::Bool,
        Ty::Int => Kind::Int,
        Ty::Float => Kind::Float,
        Ty::Strs => Kind::List(Box::new(Kind::String)),
        Ty::Ints => Kind::List(Box::new(Kind::Int)),
        Ty::StrMap => Kind::Map(Box::new(Kind::String)),
        Ty::Any => return None,
        Ty::Obj(fields) => Kind::Struct(fields_of(fields)),
        Ty::List(fields) => Kind::List(Box::new(Kind::Struct(fields_of(fields)))),
        Ty::ObjMap(fields) => Kind::Map(Box::new(Kind::Struct(fields_of(fields)))),
    })
}

fn fields_of(fields: &[F]) -> Vec<Field> {
    fields.iter().filter_map(|f| kind_of(f.1).map(|k| Field::new(f.0, k))).collect()
}

/// The filter schema of one config-entry kind (`None`: not a kind).
pub fn schema(kind: &str) -> Option<Schema> {
    let declared = crate::config_entry::schema_of(kind)?;
    let mut fields = vec![Field::new("Kind", Kind::String), Field::new("Name", Kind::String)];
    fields.extend(fields_of(declared));
    fields.push(Field::new("CreateIndex", Kind::Uint));
    fields.push(Field::new("ModifyIndex", Kind::Uint));
    Some(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;
    use serde_json::json;

    #[test]
    fn selects_on_a_kinds_fields() {
        let s = schema("service-defaults").unwrap();
        let f = Filter::parse("Protocol == http and Name != api", &s).unwrap();
        assert!(f.matches(&json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http"})));
        assert!(!f.matches(&json!({"Kind": "service-defaults", "Name": "api", "Protocol": "http"})));
        assert!(Filter::parse("Bogus == 1", &s).is_err(), "unknown selectors are refused");
        let r = schema("ingress-gateway").unwrap();
        let g = Filter::parse("Listeners is not empty", &r).unwrap();
        assert!(g.matches(&json!({"Kind": "ingress-gateway", "Name": "i", "Listeners": [{"Port": 1}]})));
        assert!(schema("nope").is_none());
    }
}
