//! Subject names. A subject is the stable name under which versions of one schema evolve
//! (`orders.created`, `tools/search-v2`, `prompt:summarise`).
//!
//! **The rule** (the only place it is enforced): 1 to 255 bytes of UTF-8, none of them a
//! character that is invisible, or that could make two names that look the same differ. Decided
//! from Unicode properties, not from a list of examples, a character is refused when it is
//! - of general category Cc (control), Cf (format: zero-width spaces, bidirectional controls,
//!   byte-order mark, tag characters, U+061C, U+180E, ...), Zs, Zl or Zp (every space and line
//!   or paragraph separator), Co (private use) or Cn (unassigned in the Unicode version of the
//!   `unicode-properties` crate);
//! - `Default_Ignorable_Code_Point` (`DEFAULT_IGNORABLE`: variation selectors, the combining
//!   grapheme joiner, Hangul fillers, ...), which renderers draw as nothing;
//! - one of the few characters that render blank though Unicode marks them neither
//!   (`RENDERS_BLANK`).
//!
//! Everything else is allowed, including `/`, `:`, `.`, accented and non-Latin letters and
//! emoji, because teams already name things that way (an emoji that needs a variation selector
//! or a zero-width joiner is refused with them). Names are case-sensitive and are compared byte
//! for byte: no normalisation is applied, so what a client sends is what it gets back.

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
                "subject contains the forbidden character U+{:04X} (control, format, space, private-use, unassigned, default-ignorable and blank characters are not allowed)",
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
/// that look identical could differ (see the module's rule).
fn is_forbidden(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        G::Control
            | G::Format
            | G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::PrivateUse
            | G::Unassigned
    ) || in_table(DEFAULT_IGNORABLE, c)
        || in_table(RENDERS_BLANK, c)
}

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let c = c as u32;
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// The `Default_Ignorable_Code_Point` property, Unicode 15.1 (DerivedCoreProperties.txt), as
/// inclusive ranges in ascending order; the surrogates (D800..DFFF) are left out, no `char` is
/// one. The property has not changed since.
const DEFAULT_IGNORABLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // Cf SOFT HYPHEN
    (0x034F, 0x034F),   // Mn COMBINING GRAPHEME JOINER
    (0x061C, 0x061C),   // Cf ARABIC LETTER MARK
    (0x115F, 0x1160),   // Lo HANGUL CHOSEONG FILLER..HANGUL JUNGSEONG FILLER
    (0x17B4, 0x17B5),   // Mn KHMER VOWEL INHERENT AQ..KHMER VOWEL INHERENT AA
    (0x180B, 0x180F),   // Mn/Cf MONGOLIAN FREE VARIATION SELECTORS, MONGOLIAN VOWEL SEPARATOR
    (0x200B, 0x200F),   // Cf ZERO WIDTH SPACE..RIGHT-TO-LEFT MARK
    (0x202A, 0x202E),   // Cf LEFT-TO-RIGHT EMBEDDING..RIGHT-TO-LEFT OVERRIDE
    (0x2060, 0x206F),   // Cf/Cn WORD JOINER..NOMINAL DIGIT SHAPES
    (0x3164, 0x3164),   // Lo HANGUL FILLER
    (0xFE00, 0xFE0F),   // Mn VARIATION SELECTOR-1..VARIATION SELECTOR-16
    (0xFEFF, 0xFEFF),   // Cf ZERO WIDTH NO-BREAK SPACE
    (0xFFA0, 0xFFA0),   // Lo HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),   // Cn <reserved-FFF0>..<reserved-FFF8>
    (0x1BCA0, 0x1BCA3), // Cf SHORTHAND FORMAT LETTER OVERLAP..SHORTHAND FORMAT UP STEP
    (0x1D173, 0x1D17A), // Cf MUSICAL SYMBOL BEGIN BEAM..MUSICAL SYMBOL END PHRASE
    (0xE0000, 0xE0FFF), // Cn/Cf/Mn LANGUAGE TAG, TAG SPACE..CANCEL TAG, VARIATION SELECTOR-17..256
];

/// Characters that render as blank space though Unicode gives them a visible category and does
/// not mark them default-ignorable (the Hangul fillers are; see [`DEFAULT_IGNORABLE`]).
const RENDERS_BLANK: &[(u32, u32)] = &[
    (0x2800, 0x2800), // So BRAILLE PATTERN BLANK
];

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
            "com.example.User-value",
            "Ünïcödé-名前",
            "café.crème",
            "Ελληνικά",
            "кириллица",
            "注文.作成",
            "주문",
            "عربي",
            "हिन्दी", // combining vowel signs (Mc, Mn) are visible marks
            "rocket-🚀",
            "👍🏽", // a skin-tone modifier is a visible symbol (Sk)
            "flag-🇫🇷",
            "a\u{0301}", // a combining accent
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
            "bom\u{FEFF}",
            "nbsp\u{00A0}",
            &"x".repeat(256),
            &"é".repeat(128), // 256 bytes
        ] {
            let err = Subject::parse(bad).expect_err(bad);
            assert_eq!(err.code(), "invalid_subject");
        }
    }

    /// Every character the rule names, alone and between letters.
    #[test]
    fn rejects_each_invisible_or_blank_character() {
        let cases: &[(u32, &str)] = &[
            (0x0000, "NUL (Cc)"),
            (0x001B, "ESCAPE (Cc)"),
            (0x0085, "NEXT LINE (Cc)"),
            (0x009F, "APPLICATION PROGRAM COMMAND (Cc)"),
            (0x00A0, "NO-BREAK SPACE (Zs)"),
            (0x00AD, "SOFT HYPHEN (Cf)"),
            (0x034F, "COMBINING GRAPHEME JOINER (DI)"),
            (0x061C, "ARABIC LETTER MARK (Cf)"),
            (0x115F, "HANGUL CHOSEONG FILLER (DI)"),
            (0x1160, "HANGUL JUNGSEONG FILLER (DI)"),
            (0x1680, "OGHAM SPACE MARK (Zs)"),
            (0x17B4, "KHMER VOWEL INHERENT AQ (DI)"),
            (0x180B, "MONGOLIAN FREE VARIATION SELECTOR ONE (DI)"),
            (0x180E, "MONGOLIAN VOWEL SEPARATOR (Cf)"),
            (0x180F, "MONGOLIAN FREE VARIATION SELECTOR FOUR (DI)"),
            (0x2000, "EN QUAD (Zs)"),
            (0x200B, "ZERO WIDTH SPACE (Cf)"),
            (0x200C, "ZERO WIDTH NON-JOINER (Cf)"),
            (0x200D, "ZERO WIDTH JOINER (Cf)"),
            (0x200E, "LEFT-TO-RIGHT MARK (Cf)"),
            (0x2028, "LINE SEPARATOR (Zl)"),
            (0x2029, "PARAGRAPH SEPARATOR (Zp)"),
            (0x202E, "RIGHT-TO-LEFT OVERRIDE (Cf)"),
            (0x202F, "NARROW NO-BREAK SPACE (Zs)"),
            (0x205F, "MEDIUM MATHEMATICAL SPACE (Zs)"),
            (0x2060, "WORD JOINER (Cf)"),
            (0x2065, "<reserved-2065> (Cn, DI)"),
            (0x2066, "LEFT-TO-RIGHT ISOLATE (Cf)"),
            (0x206A, "INHIBIT SYMMETRIC SWAPPING (Cf)"),
            (0x206F, "NOMINAL DIGIT SHAPES (Cf)"),
            (0x2800, "BRAILLE PATTERN BLANK (renders blank)"),
            (0x3000, "IDEOGRAPHIC SPACE (Zs)"),
            (0x3164, "HANGUL FILLER (DI)"),
            (0xE000, "private use (Co)"),
            (0xF8FF, "private use (Co)"),
            (0xFE00, "VARIATION SELECTOR-1 (DI)"),
            (0xFE0F, "VARIATION SELECTOR-16 (DI)"),
            (0xFEFF, "ZERO WIDTH NO-BREAK SPACE (Cf)"),
            (0xFFA0, "HALFWIDTH HANGUL FILLER (DI)"),
            (0xFFF0, "<reserved-FFF0> (Cn, DI)"),
            (0xFFF9, "INTERLINEAR ANNOTATION ANCHOR (Cf)"),
            (0xFFFB, "INTERLINEAR ANNOTATION TERMINATOR (Cf)"),
            (0x1BCA0, "SHORTHAND FORMAT LETTER OVERLAP (Cf)"),
            (0x1D173, "MUSICAL SYMBOL BEGIN BEAM (Cf)"),
            (0xE0000, "<reserved-E0000> (Cn, DI)"),
            (0xE0001, "LANGUAGE TAG (Cf)"),
            (0xE0020, "TAG SPACE (Cf)"),
            (0xE0041, "TAG LATIN CAPITAL LETTER A (Cf)"),
            (0xE007F, "CANCEL TAG (Cf)"),
            (0xE0100, "VARIATION SELECTOR-17 (DI)"),
            (0xE01EF, "VARIATION SELECTOR-256 (DI)"),
            (0xE0FFF, "<reserved-E0FFF> (Cn, DI)"),
            (0xF0000, "supplementary private use A (Co)"),
            (0x10FFFD, "supplementary private use B (Co)"),
            (0x10FFFF, "noncharacter (Cn)"),
            (0x0378, "unassigned (Cn)"),
        ];
        for &(code, what) in cases {
            let c = char::from_u32(code).expect("a scalar value");
            for name in [
                c.to_string(),
                format!("a{c}b"),
                format!("orders.created{c}"),
            ] {
                let err = Subject::parse(name.as_str())
                    .expect_err(&format!("U+{code:04X} {what} must be refused"));
                assert_eq!(err.code(), "invalid_subject", "U+{code:04X} {what}");
                assert!(
                    err.to_string().contains(&format!("U+{code:04X}")),
                    "the message names U+{code:04X}: {err}"
                );
            }
        }
    }

    /// Every tag character (U+E0000..U+E007F) is refused, so is every variation selector.
    #[test]
    fn rejects_every_tag_character_and_variation_selector() {
        for code in (0xE0000..=0xE007F)
            .chain(0xFE00..=0xFE0F)
            .chain(0xE0100..=0xE01EF)
        {
            let c = char::from_u32(code).expect("a scalar value");
            assert!(is_forbidden(c), "U+{code:04X}");
        }
    }

    #[test]
    fn the_tables_are_sorted_and_disjoint() {
        for table in [DEFAULT_IGNORABLE, RENDERS_BLANK] {
            for (lo, hi) in table {
                assert!(lo <= hi, "{lo:X}..{hi:X}");
            }
            for pair in table.windows(2) {
                assert!(pair[0].1 < pair[1].0, "{:X?}", pair);
            }
        }
    }

    #[test]
    fn deserialising_enforces_the_rule() {
        assert!(serde_json::from_str::<Subject>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<Subject>("\"not ok\"").is_err());
    }
}
