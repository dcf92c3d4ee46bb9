//! Subject names. A subject is the stable name under which versions of one schema evolve
//! (`orders.created`, `tools/search-v2`, `prompt:summarise`).
//!
//! **The rule** (the only place it is enforced): 1 to 255 bytes of UTF-8; no control characters,
//! no whitespace, and no invisible formatting characters (zero-width spaces, bidirectional
//! overrides, byte-order marks). Everything else printable is allowed, including `/`, `:`, `.` and
//! non-ASCII letters, because teams already name things that way. Names are case-sensitive and are
//! compared byte for byte: no normalisation is applied, so what a client sends is what it gets back.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Longest subject name, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 255;

/// A validated subject name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subject(String);

impl Subject {
    /// Validates `name` against the subject rule.
    pub fn parse(name: impl Into<String>) -> Result<Self, DomainError> {
        let name = name.into();
        if name.is_empty() {
            return Err(DomainError::InvalidSubject(
                "subject must not be empty".into(),
            ));
        }
        if name.len() > MAX_SUBJECT_BYTES {
            return Err(DomainError::InvalidSubject(format!(
                "subject is {} bytes long; the maximum is {MAX_SUBJECT_BYTES}",
                name.len()
            )));
        }
        if let Some(bad) = name.chars().find(|c| is_forbidden(*c)) {
            return Err(DomainError::InvalidSubject(format!(
                "subject contains the forbidden character U+{:04X} (control, whitespace or invisible formatting characters are not allowed)",
                bad as u32
            )));
        }
        Ok(Subject(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters a subject may not contain: they are invisible in logs and UIs, so two subjects
/// that look identical could differ.
fn is_forbidden(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'             // soft hyphen
            | '\u{200B}'..='\u{200F}' // zero-width spaces, joiners, direction marks
            | '\u{202A}'..='\u{202E}' // bidirectional embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidirectional isolates
            | '\u{FEFF}'              // byte-order mark
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        )
}

impl TryFrom<String> for Subject {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Subject::parse(value)
    }
}

impl From<Subject> for String {
    fn from(value: Subject) -> Self {
        value.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Subject {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_printable_names() {
        for ok in [
            "a",
            "orders.created",
            "tools/search-v2",
            "prompt:summarise",
            "Ünïcödé-名前",
            "com.example.User-value",
            &"x".repeat(255),
        ] {
            assert_eq!(
                Subject::parse(ok).map(|s| s.to_string()),
                Ok(ok.to_string()),
                "{ok:?}"
            );
        }
    }

    #[test]
    fn rejects_what_the_rule_forbids() {
        for bad in [
            "",
            " leading",
            "trailing ",
            "in side",
            "tab\there",
            "new\nline",
            "nul\0",
            "bell\u{7}",
            "del\u{7f}",
            "zero\u{200B}width",
            "bidi\u{202E}override",
            "bom\u{FEFF}",
            "nbsp\u{00A0}",
            &"x".repeat(256),
            &"é".repeat(128), // 256 bytes
        ] {
            let err = Subject::parse(bad).expect_err(bad);
            assert_eq!(err.code(), "invalid_subject");
        }
    }

    #[test]
    fn deserialising_enforces_the_rule() {
        assert!(serde_json::from_str::<Subject>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<Subject>("\"not ok\"").is_err());
    }
}
