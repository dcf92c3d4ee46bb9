//! The L2 (Redis) value encoding: MessagePack (via `rmp-serde`) of a flat mirror of
//! [`SchemaRecord`], behind a one-byte format version.
//!
//! **Why MessagePack.** bincode cannot decode `serde_json::Value` (metadata is free
//! JSON): bincode is not self-describing, and `Value`'s `Deserialize` needs `deserialize_any`.
//! MessagePack is self-describing, so arbitrary metadata round-trips, and it is compact (the
//! struct is encoded as an array, without field names). The benchmark `cache` in
//! `benches/cache.rs` measures it against JSON for time and size (see docs/PERFORMANCE.md).
//!
//! A value whose version byte is unknown (written by a newer server) decodes as a miss, never an
//! error: mixed versions during a rolling upgrade just skip each other's entries.

use schema_registry_core::{SchemaContent, SchemaRecord, SchemaReference};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::sql::rows::{from_micros, to_micros};
use crate::{StorageError, StorageResult};

/// The current encoding. Bump on any change to [`Wire`].
const FORMAT_V1: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Wire {
    id: [u8; 16],
    subject: String,
    version: String,
    format: String,
    content: String,
    checksum: String,
    state: String,
    description: Option<String>,
    /// Metadata as JSON text: `Value` inside MessagePack would round-trip too, but integers and
    /// floats would then be re-typed by MessagePack's own number rules; JSON text keeps them
    /// exactly as the API sees them.
    metadata: String,
    tags: Vec<String>,
    references: Vec<(String, String)>,
    created_us: i64,
    updated_us: i64,
}

/// Encodes a record.
pub fn encode(record: &SchemaRecord) -> StorageResult<Vec<u8>> {
    let wire = Wire {
        id: *record.id.as_bytes(),
        subject: record.subject.to_string(),
        version: record.version.to_string(),
        format: record.format().as_str().to_string(),
        content: record.content.text().to_string(),
        checksum: record.checksum().to_string(),
        state: record.state.as_str().to_string(),
        description: record.description.clone(),
        metadata: serde_json::to_string(&record.metadata)
            .map_err(|e| StorageError::Internal(format!("encode metadata: {e}")))?,
        tags: record.tags.clone(),
        references: record
            .references
            .iter()
            .map(|r| (r.subject.to_string(), r.version.to_string()))
            .collect(),
        created_us: to_micros(record.created_at),
        updated_us: to_micros(record.updated_at),
    };
    let mut out = vec![FORMAT_V1];
    rmp_serde::encode::write(&mut out, &wire)
        .map_err(|e| StorageError::Internal(format!("encode cache entry: {e}")))?;
    Ok(out)
}

/// Decodes a record; `Ok(None)` for an encoding this server does not know.
pub fn decode(bytes: &[u8]) -> StorageResult<Option<SchemaRecord>> {
    let Some((&FORMAT_V1, body)) = bytes.split_first() else {
        return Ok(None);
    };
    let bad =
        |e: &dyn std::fmt::Display| StorageError::Internal(format!("corrupt cache entry: {e}"));
    let w: Wire = rmp_serde::from_slice(body).map_err(|e| bad(&e))?;
    let metadata: Map<String, Value> = serde_json::from_str(&w.metadata).map_err(|e| bad(&e))?;
    let references = w
        .references
        .into_iter()
        .map(|(s, v)| {
            Ok(SchemaReference {
                subject: s.try_into().map_err(|e| bad(&e))?,
                version: v.try_into().map_err(|e| bad(&e))?,
            })
        })
        .collect::<StorageResult<Vec<_>>>()?;
    Ok(Some(SchemaRecord {
        id: uuid::Uuid::from_bytes(w.id),
        subject: w.subject.try_into().map_err(|e| bad(&e))?,
        version: w.version.try_into().map_err(|e| bad(&e))?,
        content: SchemaContent::from_stored(
            w.format.parse().map_err(|e| bad(&e))?,
            w.content,
            w.checksum,
        ),
        state: w.state.parse().map_err(|e| bad(&e))?,
        description: w.description,
        metadata,
        tags: w.tags,
        references,
        created_at: from_micros(w.created_us),
        updated_at: from_micros(w.updated_us),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema_registry_core::{SchemaFormat, SchemaState, SchemaVersion, Subject};
    use serde_json::json;

    fn record(format: SchemaFormat, doc: Value, metadata: Value) -> SchemaRecord {
        let Value::Object(metadata) = metadata else {
            panic!("metadata must be an object")
        };
        SchemaRecord {
            id: uuid::Uuid::now_v7(),
            subject: Subject::parse("ünï/côdé:subject").expect("subject"),
            version: SchemaVersion::parse("2.0.0-rc.1.alpha-7").expect("version"),
            content: SchemaContent::parse(format, &doc).expect("content"),
            state: SchemaState::Deprecated,
            description: Some("desc with \"quotes\" and 😀".into()),
            metadata,
            tags: vec!["a".into(), "名前".into()],
            references: vec![SchemaReference {
                subject: Subject::parse("dep").expect("s"),
                version: SchemaVersion::parse("1.0.0").expect("v"),
            }],
            created_at: crate::sql::rows::now(),
            updated_at: crate::sql::rows::now(),
        }
    }

    /// Every shape a record can take survives encode → decode exactly.
    #[test]
    fn every_schema_shape_round_trips() {
        let shapes = [
            record(
                SchemaFormat::JsonSchema,
                json!({"type": "object", "properties": {"x": {"type": "number", "minimum": -1.5e-7}}}),
                json!({}),
            ),
            record(
                SchemaFormat::JsonSchema,
                json!(true),
                json!({"n": null, "b": false, "i": -9223372036854775807i64, "u": 18446744073709551615u64, "f": 0.1, "big": 1e308}),
            ),
            record(
                SchemaFormat::JsonSchema,
                json!({"deep": [[[[{"a": [1, "2", null, true]}]]]]}),
                json!({"nested": {"list": [1, {"x": "y"}], "empty": {}, "arr": []}}),
            ),
            record(
                SchemaFormat::Avro,
                json!("{\"type\": \"record\", \"name\": \"R\", \"fields\": []}"),
                json!({"unicode": "名前 😀 \u{7f}"}),
            ),
            record(
                SchemaFormat::Protobuf,
                json!("syntax = \"proto3\";\nmessage M { string s = 1; }\n"),
                json!({"k": "v"}),
            ),
        ];
        for rec in shapes {
            let bytes = encode(&rec).expect("encode");
            let back = decode(&bytes).expect("decode").expect("known format");
            assert_eq!(back, rec);
            assert!(back.content.verify());
        }
    }

    #[test]
    fn unknown_versions_are_misses_and_garbage_is_an_error() {
        assert!(decode(&[]).expect("empty").is_none());
        assert!(decode(&[99, 1, 2, 3]).expect("unknown version").is_none());
        assert!(decode(&[FORMAT_V1, 0xc1]).is_err());
    }
}
