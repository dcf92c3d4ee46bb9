//! A schema document, checked for syntax and brought to canonical form.
//!
//! **Canonical form** is what the registry stores, serves and hashes:
//! - JSON Schema: the JSON value with object keys sorted (by Unicode code point, i.e. UTF-8
//!   bytes) and no insignificant whitespace. Two documents that differ only in key order or
//!   formatting are the same schema and get the same checksum. Numbers pass through serde_json,
//!   so they are normalised to a 64-bit integer or an IEEE-754 double (`1.50` → `1.5`).
//! - Avro: the text exactly as given (Avro's own "parsing canonical form" drops docs and
//!   defaults, which users want to keep). A JSON value sent instead of a string is serialised
//!   compactly with sorted keys.
//! - Protobuf: the `.proto` text exactly as given.
//!
//! The checksum is the lowercase hex SHA-256 of the canonical bytes.
//!
//! NUL characters are refused in every format: PostgreSQL cannot store them in `text` nor
//! `\u0000` in `jsonb`, and a schema must mean the same on every backend.

use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{DomainError, SchemaFormat};

/// A syntactically valid schema document in canonical form.
#[derive(Debug, Clone)]
pub struct SchemaContent {
    format: SchemaFormat,
    text: Text,
    checksum: String,
}

/// The document. A JSON Schema is kept as a validated [`RawValue`]: it is checked once, when
/// the content is built, and then embedded in every API response as is, without re-parsing
/// (the hot read path serialises records many times per second).
#[derive(Debug, Clone)]
enum Text {
    Json(Box<RawValue>),
    Plain(String),
}

impl Text {
    /// Validates JSON Schema text once. Text that is not exactly one JSON value (only possible
    /// for corrupted stored data) stays plain, byte for byte, so the checksum still covers it.
    fn new(format: SchemaFormat, text: String) -> Text {
        if format == SchemaFormat::JsonSchema {
            if let Ok(raw) = serde_json::from_str::<Box<RawValue>>(&text) {
                if raw.get().len() == text.len() {
                    return Text::Json(raw);
                }
            }
        }
        Text::Plain(text)
    }

    fn as_str(&self) -> &str {
        match self {
            Text::Json(raw) => raw.get(),
            Text::Plain(s) => s,
        }
    }
}

impl PartialEq for SchemaContent {
    fn eq(&self, other: &Self) -> bool {
        self.format == other.format
            && self.checksum == other.checksum
            && self.text.as_str() == other.text.as_str()
    }
}
impl Eq for SchemaContent {}

impl SchemaContent {
    /// Checks `document` for `format`'s syntax and canonicalises it.
    ///
    /// `document` is the `schema` field of a registration: a JSON value for JSON Schema (a string
    /// holding JSON is accepted too, as Confluent-style clients send it), a string for Avro (or
    /// the Avro JSON itself) and Protobuf.
    pub fn parse(format: SchemaFormat, document: &Value) -> Result<Self, DomainError> {
        let text = match format {
            SchemaFormat::JsonSchema => {
                let parsed;
                let value = match document {
                    Value::String(s) => {
                        parsed = serde_json::from_str::<Value>(s).map_err(|e| {
                            DomainError::InvalidSchema(format!(
                                "a JSON Schema given as a string must hold JSON: {e}"
                            ))
                        })?;
                        &parsed
                    }
                    other => other,
                };
                if !matches!(value, Value::Object(_) | Value::Bool(_)) {
                    return Err(DomainError::InvalidSchema(format!(
                        "a JSON Schema must be a JSON object or boolean, not {}",
                        kind_of(value)
                    )));
                }
                canonical_json(value)
            }
            SchemaFormat::Avro => {
                let text = match document {
                    Value::String(s) => s.clone(),
                    Value::Object(_) | Value::Array(_) => canonical_json(document),
                    other => {
                        return Err(DomainError::InvalidSchema(format!(
                            "an Avro schema must be a string or its JSON notation, not {}",
                            kind_of(other)
                        )))
                    }
                };
                parse_avro(&text)?;
                text
            }
            SchemaFormat::Protobuf => match document {
                Value::String(s) if !s.trim().is_empty() => s.clone(),
                Value::String(_) => {
                    return Err(DomainError::InvalidSchema(
                        "a Protobuf schema must not be empty".into(),
                    ))
                }
                other => {
                    return Err(DomainError::InvalidSchema(format!(
                        "a Protobuf schema must be its .proto source as a string, not {}",
                        kind_of(other)
                    )))
                }
            },
        };
        let json_nul = || {
            serde_json::from_str::<Value>(&text)
                .map(|v| contains_nul(&v))
                .unwrap_or(false)
        };
        if text.contains('\0') || (format != SchemaFormat::Protobuf && json_nul()) {
            return Err(DomainError::InvalidSchema(
                "schema content must not contain NUL characters".into(),
            ));
        }
        Ok(Self::from_canonical(format, text))
    }

    /// Wraps text that is already canonical (read back from storage). Computes the checksum.
    pub fn from_canonical(format: SchemaFormat, text: String) -> Self {
        let checksum = sha256_hex(text.as_bytes());
        SchemaContent {
            format,
            text: Text::new(format, text),
            checksum,
        }
    }

    /// Wraps stored text with its stored checksum, without rehashing (the hot read path).
    /// Backends that want to verify integrity call [`SchemaContent::verify`].
    pub fn from_stored(format: SchemaFormat, text: String, checksum: String) -> Self {
        SchemaContent {
            format,
            text: Text::new(format, text),
            checksum,
        }
    }

    /// Whether the stored checksum matches the text.
    pub fn verify(&self) -> bool {
        sha256_hex(self.text().as_bytes()) == self.checksum
    }

    pub fn format(&self) -> SchemaFormat {
        self.format
    }
    /// The canonical document.
    pub fn text(&self) -> &str {
        self.text.as_str()
    }
    pub fn into_text(self) -> String {
        match self.text {
            Text::Json(raw) => raw.get().to_string(),
            Text::Plain(s) => s,
        }
    }
    /// The document as a validated raw JSON value, for JSON Schema content (embedded in API
    /// responses without re-parsing).
    pub fn as_raw_json(&self) -> Option<&RawValue> {
        match &self.text {
            Text::Json(raw) => Some(raw),
            Text::Plain(_) => None,
        }
    }
    /// Lowercase hex SHA-256 of [`SchemaContent::text`].
    pub fn checksum(&self) -> &str {
        &self.checksum
    }
    pub fn size_bytes(&self) -> u64 {
        self.text().len() as u64
    }
    /// Whether the canonical text is itself a JSON document (JSON Schema and Avro).
    pub fn is_json(&self) -> bool {
        matches!(self.format, SchemaFormat::JsonSchema)
            || (self.format == SchemaFormat::Avro
                && serde_json::from_str::<serde::de::IgnoredAny>(self.text()).is_ok())
    }
}

/// Checks Avro text with `apache-avro`. The parser panics on some names it should refuse
/// (`"name": "1R"`, `"my-record"`, such aliases or type references), so the names are checked
/// against the specification first, for a precise message, and any panic left is caught and
/// reported as the invalid schema it is: a dependency that cannot parse a document means bad
/// input, never a server error.
fn parse_avro(text: &str) -> Result<(), DomainError> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        check_avro_names(&value)?;
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        apache_avro::Schema::parse_str(text)
    })) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(DomainError::InvalidSchema(format!(
            "Avro schema does not parse: {e}"
        ))),
        Err(_) => Err(DomainError::InvalidSchema(
            "Avro schema does not parse: the Avro parser refused it (check its names, types and defaults)".into(),
        )),
    }
}

/// An Avro name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_avro_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An Avro namespace: empty, or names joined by dots.
fn is_avro_namespace(s: &str) -> bool {
    s.is_empty() || s.split('.').all(is_avro_name)
}

/// An Avro full name, as the parser reads one: an optional namespace and a dot, then a name.
fn is_avro_fullname(s: &str) -> bool {
    match s.rsplit_once('.') {
        Some((namespace, name)) => is_avro_namespace(namespace) && is_avro_name(name),
        None => is_avro_name(s),
    }
}

/// Walks an Avro schema's JSON (not its defaults or custom attributes) and checks every name,
/// namespace, alias, enum symbol and type reference against the specification.
fn check_avro_names(schema: &Value) -> Result<(), DomainError> {
    fn bad(what: &str, value: &str, rule: &str) -> DomainError {
        DomainError::InvalidSchema(format!(
            "Avro schema does not parse: {what} {value:?} is not {rule}"
        ))
    }
    const NAME: &str = "an Avro name ([A-Za-z_][A-Za-z0-9_]*)";
    const FULLNAME: &str = "an Avro full name (names of [A-Za-z_][A-Za-z0-9_]* joined by dots)";
    fn aliases(
        object: &serde_json::Map<String, Value>,
        rule: fn(&str) -> bool,
        text: &str,
    ) -> Result<(), DomainError> {
        if let Some(Value::Array(items)) = object.get("aliases") {
            for alias in items.iter().filter_map(Value::as_str) {
                if !rule(alias) {
                    return Err(bad("alias", alias, text));
                }
            }
        }
        Ok(())
    }
    match schema {
        Value::String(reference) if !is_avro_fullname(reference) => {
            Err(bad("type", reference, FULLNAME))
        }
        Value::Array(branches) => branches.iter().try_for_each(check_avro_names),
        Value::Object(object) => {
            let kind = match object.get("type") {
                Some(Value::String(kind)) => {
                    if !is_avro_fullname(kind) {
                        return Err(bad("type", kind, FULLNAME));
                    }
                    kind.as_str()
                }
                Some(nested @ (Value::Object(_) | Value::Array(_))) => {
                    return check_avro_names(nested)
                }
                _ => return Ok(()),
            };
            if matches!(kind, "record" | "error" | "enum" | "fixed") {
                if let Some(Value::String(name)) = object.get("name") {
                    if !is_avro_fullname(name) {
                        return Err(bad("name", name, FULLNAME));
                    }
                }
                if let Some(Value::String(namespace)) = object.get("namespace") {
                    if !is_avro_namespace(namespace) {
                        return Err(bad("namespace", namespace, FULLNAME));
                    }
                }
                aliases(object, is_avro_fullname, FULLNAME)?;
            }
            match kind {
                "record" | "error" => {
                    if let Some(Value::Array(fields)) = object.get("fields") {
                        for field in fields.iter().filter_map(Value::as_object) {
                            if let Some(Value::String(name)) = field.get("name") {
                                if !is_avro_name(name) {
                                    return Err(bad("field name", name, NAME));
                                }
                            }
                            aliases(field, is_avro_name, NAME)?;
                            if let Some(ty) = field.get("type") {
                                check_avro_names(ty)?;
                            }
                        }
                    }
                    Ok(())
                }
                "enum" => {
                    if let Some(Value::Array(symbols)) = object.get("symbols") {
                        for symbol in symbols.iter().filter_map(Value::as_str) {
                            if !is_avro_name(symbol) {
                                return Err(bad("enum symbol", symbol, NAME));
                            }
                        }
                    }
                    Ok(())
                }
                "array" => object.get("items").map_or(Ok(()), check_avro_names),
                "map" => object.get("values").map_or(Ok(()), check_avro_names),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether any string or object key in `v` holds a NUL character.
pub fn contains_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(contains_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Serialises `value` with object keys sorted and no whitespace.
///
/// Written out rather than relying on `serde_json::Map` being a `BTreeMap`: any crate in the
/// build that enables serde_json's `preserve_order` feature would silently change that, and with
/// it every checksum.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut String) {
    // Serialising a scalar `Value` cannot fail; fall back to `null` rather than panic.
    out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_schema_is_canonicalised() {
        let a = SchemaContent::parse(
            SchemaFormat::JsonSchema,
            &json!({"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "integer"}}}),
        )
        .expect("valid");
        assert_eq!(
            a.text(),
            r#"{"properties":{"a":{"type":"integer"},"b":{"type":"string"}},"type":"object"}"#
        );
        let b = SchemaContent::parse(
            SchemaFormat::JsonSchema,
            &json!("{ \"properties\" : {\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"}}, \"type\":\"object\" }"),
        )
        .expect("valid string form");
        assert_eq!(a, b);
        assert_eq!(a.checksum().len(), 64);
        assert!(a.verify());
        assert_eq!(
            SchemaContent::parse(SchemaFormat::JsonSchema, &json!(true))
                .map(|c| c.text().to_string()),
            Ok("true".into())
        );
    }

    #[test]
    fn checksum_is_sha256_of_canonical_text() {
        let c = SchemaContent::parse(SchemaFormat::JsonSchema, &json!({})).expect("valid");
        // sha256("{}")
        assert_eq!(
            c.checksum(),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn unicode_and_escapes_survive() {
        let c = SchemaContent::parse(
            SchemaFormat::JsonSchema,
            &json!({"title": "naïve \"quote\" \u{1F600}", "é": 1, "e": 2}),
        )
        .expect("valid");
        assert_eq!(
            c.text(),
            "{\"e\":2,\"title\":\"naïve \\\"quote\\\" \u{1F600}\",\"é\":1}"
        );
        let back: Value = serde_json::from_str(c.text()).expect("json");
        assert_eq!(back["title"], json!("naïve \"quote\" \u{1F600}"));
    }

    #[test]
    fn rejects_bad_documents() {
        let cases = [
            (SchemaFormat::JsonSchema, json!(1)),
            (SchemaFormat::JsonSchema, json!(null)),
            (SchemaFormat::JsonSchema, json!([1, 2])),
            (SchemaFormat::JsonSchema, json!("not json {")),
            (SchemaFormat::JsonSchema, json!("\"a string\"")),
            (SchemaFormat::Avro, json!("{\"type\": \"record\"}")),
            (SchemaFormat::Avro, json!("nonsense")),
            (SchemaFormat::Avro, json!(42)),
            (SchemaFormat::Protobuf, json!("   ")),
            (SchemaFormat::Protobuf, json!({"message": "x"})),
            (SchemaFormat::Protobuf, json!("message A {}\u{0}")),
            (SchemaFormat::JsonSchema, json!({"title": "a\u{0}b"})),
            (SchemaFormat::JsonSchema, json!({"a\u{0}": 1})),
            (
                SchemaFormat::Avro,
                json!(r#"{"type": "enum", "name": "E", "symbols": ["A"], "doc": "x\u0000"}"#),
            ),
        ];
        for (format, doc) in cases {
            let err = SchemaContent::parse(format, &doc).expect_err(&doc.to_string());
            assert_eq!(err.code(), "invalid_schema");
        }
    }

    /// Names the Avro parser panics on, or refuses, are invalid schemas with a message naming
    /// the culprit; none of them panics.
    #[test]
    fn rejects_bad_avro_names_without_panicking() {
        let cases = [
            (
                json!({"type": "record", "name": "1R", "fields": []}),
                "\"1R\"",
            ),
            (
                json!({"type": "record", "name": "my-record", "fields": []}),
                "\"my-record\"",
            ),
            (
                json!(r#"{"type":"record","name":"1R","fields":[]}"#),
                "\"1R\"",
            ),
            (
                json!({"type": "record", "name": "R", "namespace": "a.1b", "fields": []}),
                "\"a.1b\"",
            ),
            (
                json!({"type": "record", "name": "R", "aliases": ["x-y"], "fields": []}),
                "\"x-y\"",
            ),
            (
                json!({"type": "record", "name": "R", "fields": [{"name": "a b", "type": "int"}]}),
                "\"a b\"",
            ),
            (
                json!({"type": "record", "name": "R", "fields": [{"name": "f", "type": "no-such"}]}),
                "\"no-such\"",
            ),
            (
                json!({"type": "record", "name": "R", "fields": [
                    {"name": "f", "type": {"type": "enum", "name": "E", "symbols": ["ok", "not ok"]}}
                ]}),
                "\"not ok\"",
            ),
            (json!({"type": "fixed", "name": "é", "size": 4}), "\"é\""),
            (
                json!({"type": "array", "items": {"type": "record", "name": "-", "fields": []}}),
                "\"-\"",
            ),
            (
                json!({"type": "map", "values": ["null", {"type": "enum", "name": "9", "symbols": []}]}),
                "\"9\"",
            ),
            (json!({"type": "my-type"}), "\"my-type\""),
            (json!(r#""1R""#), "\"1R\""),
        ];
        for (doc, culprit) in cases {
            let err = SchemaContent::parse(SchemaFormat::Avro, &doc).expect_err(&doc.to_string());
            assert_eq!(err.code(), "invalid_schema", "{doc}");
            assert!(err.to_string().contains(culprit), "{doc}: {err}");
        }
    }

    /// Valid names still parse: namespaces, full names, underscores, references to named types.
    #[test]
    fn accepts_avro_names_the_specification_allows() {
        for doc in [
            json!({"type": "record", "name": "_R1", "namespace": "com.example", "fields": [
                {"name": "_id", "type": "long", "aliases": ["id_"]},
                {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "_b"]}},
                {"name": "again", "type": "com.example.Kind"},
                {"name": "list", "type": {"type": "array", "items": "Kind"}},
                {"name": "opt", "type": ["null", "string"], "default": null},
                {"name": "meta", "type": {"type": "map", "values": "int"}, "default": {"type": 1}}
            ]}),
            json!({"type": "fixed", "name": "a.b.Hash", "size": 16, "aliases": ["c.Old"]}),
            json!(r#""string""#),
            json!(["null", "int"]),
        ] {
            SchemaContent::parse(SchemaFormat::Avro, &doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
        }
    }

    /// Whatever the Avro parser panics on becomes `invalid_schema` (the guard behind the name
    /// checks): text that is not JSON skips them and still cannot panic through.
    #[test]
    fn a_panicking_avro_parse_is_an_invalid_schema() {
        let err = parse_avro(
            r#"{"type":"record","name":"R","fields":[{"name":"f","type":"int"}],"aliases":["1x"]}"#,
        )
        .expect_err("bad alias");
        assert_eq!(err.code(), "invalid_schema");
    }

    #[test]
    fn avro_text_is_kept_as_given() {
        let text = "{\"type\": \"record\", \"name\": \"User\", \"fields\": [{\"name\": \"id\", \"type\": \"long\"}]}";
        let c = SchemaContent::parse(SchemaFormat::Avro, &json!(text)).expect("valid avro");
        assert_eq!(c.text(), text);
        assert!(c.is_json());
        let prim = SchemaContent::parse(SchemaFormat::Avro, &json!("\"int\"")).expect("primitive");
        assert_eq!(prim.text(), "\"int\"");
        let obj = SchemaContent::parse(
            SchemaFormat::Avro,
            &json!({"type": "enum", "name": "Suit", "symbols": ["SPADES", "HEARTS"]}),
        )
        .expect("object form");
        assert_eq!(
            obj.text(),
            r#"{"name":"Suit","symbols":["SPADES","HEARTS"],"type":"enum"}"#
        );
    }

    #[test]
    fn stored_text_is_returned_byte_for_byte_even_when_not_canonical() {
        for odd in [" {} ", "{\"a\":1}\n", "not json", "{} {}"] {
            let c =
                SchemaContent::from_stored(SchemaFormat::JsonSchema, odd.to_string(), "x".into());
            assert_eq!(c.text(), odd);
            assert!(
                c.as_raw_json().is_none(),
                "{odd:?} is not one exact JSON value"
            );
        }
        let c = SchemaContent::from_stored(
            SchemaFormat::JsonSchema,
            "{\"a\":[1,2]}".into(),
            "x".into(),
        );
        assert_eq!(c.as_raw_json().map(|r| r.get()), Some("{\"a\":[1,2]}"));
    }

    #[test]
    fn protobuf_text_is_kept_as_given() {
        let text = "syntax = \"proto3\";\nmessage A { string id = 1; }\n";
        let c = SchemaContent::parse(SchemaFormat::Protobuf, &json!(text)).expect("valid");
        assert_eq!(c.text(), text);
        assert!(!c.is_json());
    }
}
