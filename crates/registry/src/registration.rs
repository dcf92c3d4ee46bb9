//! A registration request in plain values, as any interface receives it, and the one
//! translation of it into a validated [`NewSchema`].
//!
//! The fields are checked in a fixed order (format, version or bump, the document, references,
//! then the limits on descriptive fields), so the first error a client sees does not depend on
//! the interface it used.

use schema_registry_core::{
    Bump, Limits, NewSchema, SchemaContent, SchemaFormat, SchemaReference, SchemaVersion, Subject,
    VersionRequest,
};
use serde_json::{Map, Value};

use crate::{RegistryError, RegistryResult};

/// A registration as a client states it, before anything is checked.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// The document: a JSON value for JSON Schema, a string (or JSON) for Avro, a string for
    /// Protobuf.
    pub schema: Value,
    /// The format's name; JSON Schema when absent.
    pub format: Option<String>,
    /// An exact version to register.
    pub version: Option<String>,
    /// Which part of the highest version to raise (`major`, `minor`, `patch`); minor when
    /// neither this nor `version` is given.
    pub bump: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    pub tags: Option<Vec<String>>,
    pub references: Vec<RegistrationReference>,
}

/// A reference as a client states it.
#[derive(Debug, Clone)]
pub struct RegistrationReference {
    pub subject: String,
    pub version: String,
}

fn parse_bump(raw: &str) -> RegistryResult<Bump> {
    match raw {
        "major" => Ok(Bump::Major),
        "minor" => Ok(Bump::Minor),
        "patch" => Ok(Bump::Patch),
        other => Err(RegistryError::invalid(
            "invalid_bump",
            format!("bump {other:?} is not one of major, minor, patch"),
        )),
    }
}

impl Registration {
    /// Checks every field and builds the validated request for `subject`.
    pub fn into_new_schema(self, subject: Subject, limits: &Limits) -> RegistryResult<NewSchema> {
        let format: SchemaFormat = match &self.format {
            Some(f) => f.parse()?,
            None => SchemaFormat::JsonSchema,
        };
        let version = match (&self.version, &self.bump) {
            (Some(_), Some(_)) => {
                return Err(RegistryError::invalid(
                    "invalid_version",
                    "give either an explicit version or a bump, not both",
                ))
            }
            (Some(v), None) => VersionRequest::Exact(SchemaVersion::parse(v)?),
            (None, Some(b)) => VersionRequest::Next(parse_bump(b)?),
            (None, None) => VersionRequest::Next(Bump::Minor),
        };
        let content = SchemaContent::parse(format, &self.schema)?;
        let references = self
            .references
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let invalid = |e: schema_registry_core::DomainError| {
                    RegistryError::invalid("invalid_reference", format!("reference #{i}: {e}"))
                };
                let subject = Subject::parse(r.subject).map_err(invalid)?;
                let version = SchemaVersion::parse(&r.version).map_err(invalid)?;
                Ok(SchemaReference { subject, version })
            })
            .collect::<RegistryResult<Vec<_>>>()?;
        Ok(NewSchema::new(subject, version, content)
            .with_description(self.description, limits)?
            .with_metadata(self.metadata.unwrap_or_default(), limits)?
            .with_tags(self.tags.unwrap_or_default(), limits)?
            .with_references(references, limits)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subject() -> Subject {
        Subject::parse("orders").expect("subject")
    }

    #[test]
    fn defaults_are_json_schema_and_a_minor_bump() {
        let new = Registration {
            schema: json!({"type": "object"}),
            ..Registration::default()
        }
        .into_new_schema(subject(), &Limits::default())
        .expect("valid");
        assert_eq!(new.content.format(), SchemaFormat::JsonSchema);
        assert_eq!(new.version, VersionRequest::Next(Bump::Minor));
    }

    #[test]
    fn version_and_bump_together_are_refused() {
        let err = Registration {
            schema: json!({}),
            version: Some("1.0.0".into()),
            bump: Some("major".into()),
            ..Registration::default()
        }
        .into_new_schema(subject(), &Limits::default())
        .expect_err("refused");
        assert!(matches!(
            err,
            RegistryError::Invalid {
                code: "invalid_version",
                ..
            }
        ));
    }

    #[test]
    fn a_bad_bump_and_a_bad_reference_name_their_codes() {
        let bump = Registration {
            schema: json!({}),
            bump: Some("huge".into()),
            ..Registration::default()
        }
        .into_new_schema(subject(), &Limits::default())
        .expect_err("refused");
        assert!(matches!(
            bump,
            RegistryError::Invalid {
                code: "invalid_bump",
                ..
            }
        ));
        let reference = Registration {
            schema: json!({}),
            references: vec![RegistrationReference {
                subject: "ok".into(),
                version: "not-a-version".into(),
            }],
            ..Registration::default()
        }
        .into_new_schema(subject(), &Limits::default())
        .expect_err("refused");
        match reference {
            RegistryError::Invalid { code, message } => {
                assert_eq!(code, "invalid_reference");
                assert!(message.starts_with("reference #0: "), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
