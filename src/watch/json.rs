//! JSON text as Go's `encoding/json` writes it, which is what watch
//! handlers and `consul watch` output have always received: `<`, `>`, `&`,
//! U+2028 and U+2029 escaped as `\u003c`-style sequences, compact with a
//! trailing newline for handlers, four-space indentation for printing.

use serde::Serialize;
use serde_json::Value;

/// Go's `json.Encoder.Encode`: compact, newline-terminated.
pub fn encode_line(v: &Value) -> Vec<u8> {
    let mut text = go_escape(v.to_string());
    text.push('\n');
    text.into_bytes()
}

/// Go's `json.MarshalIndent(v, "", "    ")`.
pub fn encode_indented(v: &Value) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if v.serialize(&mut ser).is_err() {
        // Serializing a Value into memory cannot fail; fall back anyway.
        return go_escape(v.to_string());
    }
    go_escape(String::from_utf8_lossy(&buf).into_owned())
}

/// These characters can only occur inside JSON strings, so replacing them
/// everywhere in the text is the same as escaping them in every string.
fn go_escape(text: String) -> String {
    if !text.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_shapes() {
        let v = json!({"Key": "a<b>&c", "List": [], "Map": {}, "N": 1});
        assert_eq!(
            String::from_utf8(encode_line(&v)).unwrap(),
            "{\"Key\":\"a\\u003cb\\u003e\\u0026c\",\"List\":[],\"Map\":{},\"N\":1}\n"
        );
        assert_eq!(
            encode_indented(&v),
            "{\n    \"Key\": \"a\\u003cb\\u003e\\u0026c\",\n    \"List\": [],\n    \"Map\": {},\n    \"N\": 1\n}"
        );
        assert_eq!(encode_indented(&Value::Null), "null");
    }
}
