//! A stored schema version ([`SchemaRecord`]) and a validated registration request
//! ([`NewSchema`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::content::contains_nul;
use crate::{Bump, DomainError, SchemaContent, SchemaFormat, SchemaState, SchemaVersion, Subject};

/// A schema version's id: a UUIDv7, so ids sort by creation time. Never changes once assigned.
pub type SchemaId = Uuid;

/// A dependency of one schema version on another, named by subject and exact version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    pub subject: Subject,
    pub version: SchemaVersion,
}

/// The identity of a version without its content: what dependency listings return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaSummary {
    pub id: SchemaId,
    pub subject: Subject,
    pub version: SchemaVersion,
    pub format: SchemaFormat,
    pub state: SchemaState,
    /// Distance from the schema asked about: 1 for a direct edge.
    pub depth: u32,
}

/// One stored schema version.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaRecord {
    pub id: SchemaId,
    pub subject: Subject,
    pub version: SchemaVersion,
    pub content: SchemaContent,
    pub state: SchemaState,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub tags: Vec<String>,
    pub references: Vec<SchemaReference>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SchemaRecord {
    pub fn format(&self) -> SchemaFormat {
        self.content.format()
    }
    pub fn checksum(&self) -> &str {
        self.content.checksum()
    }
    pub fn size_bytes(&self) -> u64 {
        self.content.size_bytes()
    }
}

/// Which version a registration asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRequest {
    /// Exactly this version; a conflict if it exists with other content.
    Exact(SchemaVersion),
    /// The next version after the highest one ever assigned in the subject (1.0.0 for a new
    /// subject). Bumping from the highest *ever assigned* (including deleted versions) is what
    /// guarantees an auto-assigned version is never handed out twice.
    Next(Bump),
}

/// Size limits on the descriptive fields of a registration. The defaults are generous for
/// humans and small enough that a row stays cheap to index and cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_description_bytes: usize,
    pub max_tags: usize,
    pub max_tag_bytes: usize,
    pub max_metadata_bytes: usize,
    pub max_references: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_description_bytes: 16 * 1024,
            max_tags: 64,
            max_tag_bytes: 128,
            max_metadata_bytes: 64 * 1024,
            max_references: 256,
        }
    }
}

/// A registration request whose every field has been validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchema {
    pub subject: Subject,
    pub version: VersionRequest,
    pub content: SchemaContent,
    pub description: Option<String>,
    pub metadata: Map<String, Value>,
    pub tags: Vec<String>,
    pub references: Vec<SchemaReference>,
}

impl NewSchema {
    /// A request with no descriptive fields; chain the `with_*` methods to add them.
    pub fn new(subject: Subject, version: VersionRequest, content: SchemaContent) -> Self {
        NewSchema {
            subject,
            version,
            content,
            description: None,
            metadata: Map::new(),
            tags: Vec::new(),
            references: Vec::new(),
        }
    }

    pub fn with_description(
        mut self,
        description: Option<String>,
        limits: &Limits,
    ) -> Result<Self, DomainError> {
        if let Some(d) = &description {
            if d.len() > limits.max_description_bytes {
                return Err(DomainError::InvalidDescription(format!(
                    "description is {} bytes; the maximum is {}",
                    d.len(),
                    limits.max_description_bytes
                )));
            }
            if d.contains('\0') {
                return Err(DomainError::InvalidDescription(
                    "description must not contain NUL characters".into(),
                ));
            }
        }
        self.description = description.filter(|d| !d.is_empty());
        Ok(self)
    }

    pub fn with_metadata(
        mut self,
        metadata: Map<String, Value>,
        limits: &Limits,
    ) -> Result<Self, DomainError> {
        let size = serde_json::to_string(&metadata)
            .map(|s| s.len())
            .unwrap_or(usize::MAX);
        if size > limits.max_metadata_bytes {
            return Err(DomainError::InvalidMetadata(format!(
                "metadata is {size} bytes as JSON; the maximum is {}",
                limits.max_metadata_bytes
            )));
        }
        if metadata
            .iter()
            .any(|(k, v)| k.contains('\0') || contains_nul(v))
        {
            return Err(DomainError::InvalidMetadata(
                "metadata must not contain NUL characters".into(),
            ));
        }
        self.metadata = metadata;
        Ok(self)
    }

    /// Tags are trimmed of nothing: a tag must already be 1..=`max_tag_bytes` bytes with no
    /// control characters and no leading or trailing whitespace. Duplicates are dropped, the
    /// first occurrence's position kept.
    pub fn with_tags(mut self, tags: Vec<String>, limits: &Limits) -> Result<Self, DomainError> {
        let mut out: Vec<String> = Vec::with_capacity(tags.len());
        for tag in tags {
            if tag.is_empty() || tag.len() > limits.max_tag_bytes {
                return Err(DomainError::InvalidTag(format!(
                    "tag {tag:?} must be 1 to {} bytes",
                    limits.max_tag_bytes
                )));
            }
            if tag.chars().any(char::is_control) || tag.trim() != tag {
                return Err(DomainError::InvalidTag(format!(
                    "tag {tag:?} must not contain control characters or leading/trailing whitespace"
                )));
            }
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
        if out.len() > limits.max_tags {
            return Err(DomainError::InvalidTag(format!(
                "at most {} tags are allowed",
                limits.max_tags
            )));
        }
        self.tags = out;
        Ok(self)
    }

    pub fn with_references(
        mut self,
        references: Vec<SchemaReference>,
        limits: &Limits,
    ) -> Result<Self, DomainError> {
        if references.len() > limits.max_references {
            return Err(DomainError::InvalidReference(format!(
                "at most {} references are allowed",
                limits.max_references
            )));
        }
        let mut out: Vec<SchemaReference> = Vec::with_capacity(references.len());
        for r in references {
            if r.subject == self.subject {
                if let VersionRequest::Exact(v) = &self.version {
                    if *v == r.version {
                        return Err(DomainError::InvalidReference(
                            "a schema cannot reference itself".into(),
                        ));
                    }
                }
            }
            if !out.contains(&r) {
                out.push(r);
            }
        }
        self.references = out;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> NewSchema {
        NewSchema::new(
            Subject::parse("s").expect("subject"),
            VersionRequest::Next(Bump::Minor),
            SchemaContent::parse(SchemaFormat::JsonSchema, &json!({})).expect("content"),
        )
    }

    #[test]
    fn tags_are_validated_and_deduplicated() {
        let l = Limits::default();
        let n = base()
            .with_tags(vec!["a".into(), "b".into(), "a".into()], &l)
            .expect("ok");
        assert_eq!(n.tags, vec!["a".to_string(), "b".to_string()]);
        for bad in ["", " x", "x ", "a\nb", &"t".repeat(129)] {
            assert_eq!(
                base()
                    .with_tags(vec![bad.to_string()], &l)
                    .map(|_| ())
                    .map_err(|e| e.code()),
                Err("invalid_tag"),
                "{bad:?}"
            );
        }
        let many: Vec<String> = (0..65).map(|i| i.to_string()).collect();
        assert!(base().with_tags(many, &l).is_err());
    }

    #[test]
    fn metadata_and_description_limits() {
        let l = Limits::default();
        let big = json!({"k": "x".repeat(70 * 1024)});
        let Value::Object(big) = big else {
            unreachable!()
        };
        assert_eq!(
            base()
                .with_metadata(big, &l)
                .map(|_| ())
                .map_err(|e| e.code()),
            Err("invalid_metadata")
        );
        let Value::Object(nul) = json!({"k": "a\u{0}b"}) else {
            unreachable!()
        };
        assert!(base().with_metadata(nul, &l).is_err());
        assert!(base()
            .with_description(Some("x".repeat(20_000)), &l)
            .is_err());
        assert_eq!(
            base()
                .with_description(Some(String::new()), &l)
                .map(|n| n.description),
            Ok(None)
        );
    }
}
