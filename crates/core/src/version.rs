//! Semantic versions of a schema (`MAJOR.MINOR.PATCH[-PRERELEASE]`), ordered by semver
//! precedence.
//!
//! Two decisions are made here, once:
//! - **No build metadata.** `1.0.0+abc` and `1.0.0+def` have equal precedence under semver, so two
//!   stored versions could not be told apart by order. A `+` suffix is rejected.
//! - **An SQL-sortable key.** Databases cannot order pre-release identifiers by semver rules
//!   (numeric identifiers compare as numbers, and below alphanumeric ones). [`SchemaVersion::pre_key`]
//!   encodes the pre-release so that a plain byte-wise `ORDER BY major, minor, patch, pre_key`
//!   equals semver order; a table-driven test checks it against the `semver` crate's own `Ord`.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Longest accepted version string, in bytes.
pub const MAX_VERSION_BYTES: usize = 128;

/// The pre-release key of a release (no pre-release). `~` sorts after every encoded pre-release,
/// which all start with `0` or `1`, so a release outranks its pre-releases.
const RELEASE_PRE_KEY: &str = "~";

/// A validated semantic version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SchemaVersion(semver::Version);

/// How to derive the next version from the previous one when the client does not name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Bump {
    Major,
    #[default]
    Minor,
    Patch,
}

impl SchemaVersion {
    /// The first version of a new subject when none is named.
    pub fn initial() -> Self {
        SchemaVersion(semver::Version::new(1, 0, 0))
    }

    /// Parses and validates a version string.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        if text.len() > MAX_VERSION_BYTES {
            return Err(DomainError::InvalidVersion(format!(
                "version is {} bytes long; the maximum is {MAX_VERSION_BYTES}",
                text.len()
            )));
        }
        let v = semver::Version::parse(text).map_err(|e| {
            DomainError::InvalidVersion(format!(
                "{text:?} is not a semantic version MAJOR.MINOR.PATCH[-PRERELEASE]: {e}"
            ))
        })?;
        Self::from_semver(v)
    }

    /// Validates an already-parsed version against the registry's extra rules.
    pub fn from_semver(v: semver::Version) -> Result<Self, DomainError> {
        if !v.build.is_empty() {
            return Err(DomainError::InvalidVersion(format!(
                "{v}: build metadata (+{}) is not allowed; it does not take part in version ordering",
                v.build
            )));
        }
        for part in [v.major, v.minor, v.patch] {
            if i64::try_from(part).is_err() {
                return Err(DomainError::InvalidVersion(format!(
                    "{v}: version numbers must not exceed {}",
                    i64::MAX
                )));
            }
        }
        for ident in v.pre.as_str().split('.').filter(|i| !i.is_empty()) {
            if is_numeric(ident) && ident.len() > 99 {
                return Err(DomainError::InvalidVersion(format!(
                    "{v}: numeric pre-release identifiers are limited to 99 digits"
                )));
            }
        }
        Ok(SchemaVersion(v))
    }

    pub fn major(&self) -> i64 {
        // Checked in `from_semver`.
        i64::try_from(self.0.major).unwrap_or(i64::MAX)
    }
    pub fn minor(&self) -> i64 {
        i64::try_from(self.0.minor).unwrap_or(i64::MAX)
    }
    pub fn patch(&self) -> i64 {
        i64::try_from(self.0.patch).unwrap_or(i64::MAX)
    }
    /// The pre-release part without the leading `-`; empty for a release.
    pub fn pre(&self) -> &str {
        self.0.pre.as_str()
    }
    pub fn is_prerelease(&self) -> bool {
        !self.0.pre.is_empty()
    }
    pub fn as_semver(&self) -> &semver::Version {
        &self.0
    }

    /// A string whose byte-wise order, after (major, minor, patch), is semver precedence.
    ///
    /// Each identifier is encoded on its own and joined with a space (which sorts below every
    /// character an identifier may contain, so a shorter identifier list that is a prefix of a
    /// longer one sorts first, as semver requires):
    /// - numeric: `0`, its digit count as two digits, the digits — numbers compare by length,
    ///   then digit by digit, and below alphanumerics;
    /// - alphanumeric: `1` then the identifier, compared in ASCII order.
    ///
    /// A release gets `~`, above every pre-release.
    pub fn pre_key(&self) -> String {
        if self.0.pre.is_empty() {
            return RELEASE_PRE_KEY.to_string();
        }
        let encoded: Vec<String> = self
            .0
            .pre
            .as_str()
            .split('.')
            .map(|ident| {
                if is_numeric(ident) {
                    format!("0{:02}{ident}", ident.len())
                } else {
                    format!("1{ident}")
                }
            })
            .collect();
        encoded.join(" ")
    }

    /// The next version after `self` for the given bump, always strictly greater than `self`.
    ///
    /// Follows the common (npm/cargo-release) convention for pre-releases: bumping a pre-release
    /// whose lower parts are already zero releases it (`2.0.0-rc.1` + major = `2.0.0`), because
    /// that release is still unassigned and greater than the pre-release.
    pub fn bump(&self, bump: Bump) -> Result<Self, DomainError> {
        let v = &self.0;
        let pre = !v.pre.is_empty();
        let overflow =
            || DomainError::InvalidVersion(format!("cannot bump {v}: version number overflow"));
        let next = match bump {
            Bump::Major if pre && v.minor == 0 && v.patch == 0 => {
                semver::Version::new(v.major, 0, 0)
            }
            Bump::Major => semver::Version::new(v.major.checked_add(1).ok_or_else(overflow)?, 0, 0),
            Bump::Minor if pre && v.patch == 0 => semver::Version::new(v.major, v.minor, 0),
            Bump::Minor => {
                semver::Version::new(v.major, v.minor.checked_add(1).ok_or_else(overflow)?, 0)
            }
            Bump::Patch if pre => semver::Version::new(v.major, v.minor, v.patch),
            Bump::Patch => semver::Version::new(
                v.major,
                v.minor,
                v.patch.checked_add(1).ok_or_else(overflow)?,
            ),
        };
        Self::from_semver(next)
    }

    /// Rebuilds a version from the columns a backend stores.
    pub fn from_parts(major: i64, minor: i64, patch: i64, pre: &str) -> Result<Self, DomainError> {
        let to_u64 = |n: i64| {
            u64::try_from(n)
                .map_err(|_| DomainError::InvalidVersion(format!("negative version number {n}")))
        };
        let mut v = semver::Version::new(to_u64(major)?, to_u64(minor)?, to_u64(patch)?);
        if !pre.is_empty() {
            v.pre = semver::Prerelease::new(pre)
                .map_err(|e| DomainError::InvalidVersion(format!("pre-release {pre:?}: {e}")))?;
        }
        Self::from_semver(v)
    }
}

fn is_numeric(ident: &str) -> bool {
    !ident.is_empty() && ident.bytes().all(|b| b.is_ascii_digit())
}

impl Ord for SchemaVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}
impl PartialOrd for SchemaVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for SchemaVersion {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchemaVersion::parse(s)
    }
}

impl TryFrom<String> for SchemaVersion {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SchemaVersion::parse(&value)
    }
}

impl From<SchemaVersion> for String {
    fn from(value: SchemaVersion) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> SchemaVersion {
        SchemaVersion::parse(s).expect(s)
    }

    fn sort_key(x: &SchemaVersion) -> (i64, i64, i64, String) {
        (x.major(), x.minor(), x.patch(), x.pre_key())
    }

    const ORDERED: &[&str] = &[
        "0.0.1",
        "0.1.0-0",
        "0.1.0-1",
        "0.1.0-2",
        "0.1.0-10",
        "0.1.0-100",
        "0.1.0-a",
        "0.1.0",
        "1.0.0-0.3.7",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.1.1",
        "1.0.0-alpha.beta",
        "1.0.0-alpha-",
        "1.0.0-alpha0",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0-x.7.z.92",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0-rc.1",
        "2.0.0",
        "10.0.0",
    ];

    #[test]
    fn precedence_key_orders_exactly_like_semver() {
        let versions: Vec<SchemaVersion> = ORDERED.iter().map(|s| v(s)).collect();
        for a in &versions {
            for b in &versions {
                assert_eq!(
                    sort_key(a).cmp(&sort_key(b)),
                    a.as_semver().cmp(b.as_semver()),
                    "{a} vs {b}"
                );
            }
        }
        // And the list above really is ascending.
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn rejects_invalid_versions() {
        for bad in [
            "",
            "1",
            "1.0",
            "v1.0.0",
            "1.0.0.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0+build",
            "1.0.0-rc.1+build.5",
            "-1.0.0",
            "9223372036854775808.0.0",
            " 1.0.0",
            "latest",
        ] {
            let err = SchemaVersion::parse(bad).expect_err(bad);
            assert_eq!(err.code(), "invalid_version", "{bad}");
        }
        assert!(SchemaVersion::parse(&format!("1.0.0-{}", "a".repeat(200))).is_err());
    }

    #[test]
    fn bump_table() {
        let cases = [
            ("1.0.0", Bump::Major, "2.0.0"),
            ("1.0.0", Bump::Minor, "1.1.0"),
            ("1.0.0", Bump::Patch, "1.0.1"),
            ("1.2.3", Bump::Major, "2.0.0"),
            ("1.2.3", Bump::Minor, "1.3.0"),
            ("1.2.3", Bump::Patch, "1.2.4"),
            ("2.0.0-rc.1", Bump::Major, "2.0.0"),
            ("2.0.0-rc.1", Bump::Minor, "2.0.0"),
            ("2.0.0-rc.1", Bump::Patch, "2.0.0"),
            ("2.1.0-rc.1", Bump::Major, "3.0.0"),
            ("2.1.0-rc.1", Bump::Minor, "2.1.0"),
            ("2.1.3-rc.1", Bump::Minor, "2.2.0"),
            ("2.1.3-rc.1", Bump::Patch, "2.1.3"),
        ];
        for (from, bump, to) in cases {
            let next = v(from).bump(bump).expect("bump");
            assert_eq!(next.to_string(), to, "{from} {bump:?}");
            assert!(next > v(from));
        }
        let max = SchemaVersion::parse(&format!("{}.0.0", i64::MAX)).expect("max");
        assert!(max.bump(Bump::Major).is_err());
    }

    #[test]
    fn parts_round_trip() {
        for s in ORDERED {
            let x = v(s);
            let back = SchemaVersion::from_parts(x.major(), x.minor(), x.patch(), x.pre());
            assert_eq!(back.as_ref(), Ok(&x));
        }
    }
}
