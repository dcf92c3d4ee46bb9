//! A record together with its wire encodings, made once.
//!
//! Services fetch the same few schemas on every request, and each interface (the native API,
//! later the Confluent-compatible one) sends a record in its own shape. The cache holds each
//! record with the encodings of the interfaces the server runs, made when the entry is filled,
//! so a hot read neither clones the record nor serialises it again: the interface sends the
//! bytes as they are, from the shared `Arc<EncodedRecord>` the cache handed out.
//!
//! Storage knows no wire format: an interface names its shape as a `static` [`Encoding`] (a name
//! and a function), and the composition root tells the cache which encodings to make.

use bytes::Bytes;
use schema_registry_core::SchemaRecord;

/// One interface's encoding of a record. Declared as a `static` by the interface; compared by
/// address, so two encodings never collide whatever their names.
pub struct Encoding {
    /// For logs and debugging.
    pub name: &'static str,
    /// The record in the interface's shape. Encoding our own record type into memory cannot
    /// fail in practice; an encoder that could fail must handle it itself.
    pub encode: fn(&SchemaRecord) -> Vec<u8>,
}

impl std::fmt::Debug for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Encoding").field(&self.name).finish()
    }
}

/// A record and the encodings made of it.
#[derive(Debug, Clone)]
pub struct EncodedRecord {
    pub record: SchemaRecord,
    encodings: Vec<(&'static Encoding, Bytes)>,
}

impl EncodedRecord {
    /// Encodes `record` with each of `encodings`.
    pub fn new(record: SchemaRecord, encodings: &[&'static Encoding]) -> Self {
        let encodings = encodings
            .iter()
            .map(|e| (*e, Bytes::from((e.encode)(&record))))
            .collect();
        EncodedRecord { record, encodings }
    }

    /// The bytes of `encoding`, when this record was encoded with it.
    pub fn encoding(&self, encoding: &'static Encoding) -> Option<&Bytes> {
        self.encodings
            .iter()
            .find(|(e, _)| std::ptr::eq(*e, encoding))
            .map(|(_, bytes)| bytes)
    }

    /// Every encoding this holds.
    pub fn encodings(&self) -> impl Iterator<Item = (&'static Encoding, &Bytes)> {
        self.encodings.iter().map(|(e, b)| (*e, b))
    }

    /// Bytes this holds beyond fixed overhead: the content and its encodings. What a cache that
    /// budgets memory should weigh.
    pub fn weight_bytes(&self) -> u64 {
        self.encodings
            .iter()
            .map(|(_, b)| u64::try_from(b.len()).unwrap_or(u64::MAX))
            .fold(self.record.size_bytes(), u64::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use schema_registry_core::{SchemaContent, SchemaFormat, SchemaState, SchemaVersion, Subject};
    use serde_json::{json, Map};

    static UPPER: Encoding = Encoding {
        name: "upper",
        encode: |r| r.subject.as_str().to_uppercase().into_bytes(),
    };
    static OTHER: Encoding = Encoding {
        name: "upper",
        encode: |_| b"other".to_vec(),
    };

    fn record() -> SchemaRecord {
        SchemaRecord {
            id: uuid::Uuid::nil(),
            subject: Subject::parse("orders").expect("subject"),
            version: SchemaVersion::initial(),
            content: SchemaContent::parse(SchemaFormat::JsonSchema, &json!({"type": "string"}))
                .expect("content"),
            state: SchemaState::Active,
            description: None,
            metadata: Map::new(),
            tags: vec![],
            references: vec![],
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn encodings_are_made_once_found_by_identity_and_weighed() {
        let encoded = EncodedRecord::new(record(), &[&UPPER]);
        assert_eq!(
            encoded.encoding(&UPPER).map(|b| b.as_ref()),
            Some(&b"ORDERS"[..])
        );
        // Same name, another encoding: not confused with the first.
        assert_eq!(encoded.encoding(&OTHER), None);
        assert_eq!(encoded.weight_bytes(), 17 + 6);
        let bare = EncodedRecord::new(record(), &[]);
        assert_eq!(bare.encoding(&UPPER), None);
        assert_eq!(bare.weight_bytes(), 17);
    }
}
