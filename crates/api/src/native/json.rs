//! The native API's JSON shape of a record, and the [`RECORD`] encoding the storage cache makes
//! of it once per entry.

use schema_registry_core::SchemaRecord;
use schema_registry_storage::Encoding;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// The native encoding of a record, for the cache to make once per entry.
pub static RECORD: Encoding = Encoding {
    name: "native",
    encode: record_json,
};

/// A record as the native API sends it.
///
/// Serialising our own record into memory cannot fail (every field is a plain value, every map
/// key a string); the empty fallback is never reached.
pub fn record_json(record: &SchemaRecord) -> Vec<u8> {
    serde_json::to_vec(&RecordJson(record)).unwrap_or_default()
}

/// A record in the native API's JSON shape. `schema` is the document itself for JSON Schema
/// (embedded as raw JSON, not re-parsed) and a string for Avro and Protobuf, mirroring what was
/// registered.
pub struct RecordJson<'a>(pub &'a SchemaRecord);

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut s = serializer.serialize_struct("SchemaRecord", 13)?;
        s.serialize_field("id", &r.id)?;
        s.serialize_field("subject", &r.subject)?;
        s.serialize_field("version", &r.version)?;
        s.serialize_field("format", &r.format())?;
        match r.content.as_raw_json() {
            Some(raw) => s.serialize_field("schema", raw)?,
            None => s.serialize_field("schema", r.content.text())?,
        }
        s.serialize_field("checksum", r.checksum())?;
        s.serialize_field("state", &r.state)?;
        s.serialize_field("description", &r.description)?;
        s.serialize_field("metadata", &r.metadata)?;
        s.serialize_field("tags", &r.tags)?;
        s.serialize_field("references", &r.references)?;
        s.serialize_field("created_at", &r.created_at)?;
        s.serialize_field("updated_at", &r.updated_at)?;
        s.serialize_field("size_bytes", &r.size_bytes())?;
        s.end()
    }
}

/// Records in the native shape, for listings.
pub fn records(records: &[SchemaRecord]) -> Vec<RecordJson<'_>> {
    records.iter().map(RecordJson).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use schema_registry_core::{SchemaContent, SchemaFormat, SchemaState, SchemaVersion, Subject};
    use schema_registry_storage::EncodedRecord;
    use serde_json::{json, Map};
    use uuid::Uuid;

    #[test]
    fn record_serialises_to_the_api_shape() {
        let content =
            SchemaContent::parse(SchemaFormat::JsonSchema, &json!({"type": "string"})).expect("c");
        let rec = SchemaRecord {
            id: Uuid::nil(),
            subject: Subject::parse("s").expect("s"),
            version: SchemaVersion::initial(),
            content,
            state: SchemaState::Active,
            description: None,
            metadata: Map::new(),
            tags: vec!["t".into()],
            references: vec![],
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let v = serde_json::to_value(RecordJson(&rec)).expect("serialise");
        assert_eq!(v["schema"], json!({"type": "string"}));
        assert_eq!(v["version"], json!("1.0.0"));
        assert_eq!(v["format"], json!("json_schema"));
        assert_eq!(v["size_bytes"], json!(17));
        assert_eq!(v["tags"], json!(["t"]));

        let encoded = EncodedRecord::new(rec.clone(), &[&RECORD]);
        assert_eq!(
            encoded.encoding(&RECORD).map(|b| b.to_vec()),
            Some(serde_json::to_vec(&RecordJson(&rec)).expect("json"))
        );
        assert_eq!(encoded.record, rec);
        assert_eq!(encoded.weight_bytes(), 17 + record_json(&rec).len() as u64);
    }
}
