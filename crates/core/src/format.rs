//! The schema languages the registry stores.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SchemaFormat {
    /// JSON Schema (any draft). The document is a JSON object or boolean.
    #[default]
    JsonSchema,
    /// Apache Avro schema, in its JSON notation.
    Avro,
    /// Protocol Buffers `.proto` source text.
    Protobuf,
}

impl SchemaFormat {
    pub const ALL: [SchemaFormat; 3] = [
        SchemaFormat::JsonSchema,
        SchemaFormat::Avro,
        SchemaFormat::Protobuf,
    ];

    /// The stable name used in the API and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaFormat::JsonSchema => "json_schema",
            SchemaFormat::Avro => "avro",
            SchemaFormat::Protobuf => "protobuf",
        }
    }

    /// The media type of the raw document served at `/content`.
    pub fn media_type(self) -> &'static str {
        match self {
            SchemaFormat::JsonSchema => "application/schema+json",
            SchemaFormat::Avro => "application/json",
            SchemaFormat::Protobuf => "text/plain; charset=utf-8",
        }
    }
}

impl FromStr for SchemaFormat {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchemaFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                DomainError::InvalidFormat(format!(
                    "unknown format {s:?}; expected one of json_schema, avro, protobuf"
                ))
            })
    }
}

impl fmt::Display for SchemaFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in SchemaFormat::ALL {
            assert_eq!(f.as_str().parse::<SchemaFormat>(), Ok(f));
            assert_eq!(
                serde_json::to_value(f).ok(),
                Some(serde_json::json!(f.as_str()))
            );
        }
        assert!("xml".parse::<SchemaFormat>().is_err());
    }
}
