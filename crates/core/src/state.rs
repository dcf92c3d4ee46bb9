//! Lifecycle state of a schema version.
//!
//! `active` → `deprecated` → `active` are reversible client choices (`PATCH`). `deleted` is
//! reached only through a soft delete and is final for the state API: a deleted version stays
//! readable by id but can only go on to a permanent (hard) delete.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaState {
    Active,
    Deprecated,
    Deleted,
}

impl SchemaState {
    pub const ALL: [SchemaState; 3] = [
        SchemaState::Active,
        SchemaState::Deprecated,
        SchemaState::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SchemaState::Active => "active",
            SchemaState::Deprecated => "deprecated",
            SchemaState::Deleted => "deleted",
        }
    }

    /// Whether a client may set this state directly (deletion has its own operation).
    pub fn is_settable(self) -> bool {
        matches!(self, SchemaState::Active | SchemaState::Deprecated)
    }
}

impl FromStr for SchemaState {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchemaState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                DomainError::InvalidState(format!(
                    "unknown state {s:?}; expected one of active, deprecated, deleted"
                ))
            })
    }
}

impl fmt::Display for SchemaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_two_are_settable() {
        for s in SchemaState::ALL {
            assert_eq!(s.as_str().parse::<SchemaState>(), Ok(s));
        }
        assert!(SchemaState::Active.is_settable());
        assert!(SchemaState::Deprecated.is_settable());
        assert!(!SchemaState::Deleted.is_settable());
        assert!("retired".parse::<SchemaState>().is_err());
    }
}
