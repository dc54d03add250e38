//! Values whose constructors refuse what the service must not store. Each error message names the rule, the
//! API layer prefixes the field name.

use std::fmt;

/// The longest name (of an operator, a source, a lead) or external id, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// The longest contact message or source description, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;
/// The longest contact status, in characters.
pub const MAX_STATUS_CHARS: usize = 32;
/// The largest max_load an operator can have.
pub const MAX_MAX_LOAD: i64 = 1_000_000;
/// The largest weight of an operator on a source; bounded so that any sum of weights stays finite.
pub const MAX_WEIGHT: f64 = 1_000_000.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(pub String);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ValueError {}

fn error(message: impl Into<String>) -> ValueError {
    ValueError(message.into())
}

/// A required, human-readable name: trimmed, not empty, at most [`MAX_NAME_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(error("must not be empty"));
        }
        check_length(trimmed, MAX_NAME_CHARS)?;
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text (a message, a description): at most [`MAX_TEXT_CHARS`] characters, kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        check_length(raw, MAX_TEXT_CHARS)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An optional identifier or name given by a bot: trimmed; blank counts as not given.
pub fn optional_short_text(raw: Option<&str>) -> Result<Option<String>, ValueError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => {
            check_length(value, MAX_NAME_CHARS)?;
            Ok(Some(value.to_owned()))
        }
    }
}

/// Every text a client sends passes here: bounded in characters, and free of NUL, which PostgreSQL cannot
/// store in text (both backends refuse it alike).
fn check_length(value: &str, max_chars: usize) -> Result<(), ValueError> {
    if value.chars().count() > max_chars {
        return Err(error(format!("must be at most {max_chars} characters")));
    }
    if value.contains('\0') {
        return Err(error("must not contain the NUL character"));
    }
    Ok(())
}

/// How many `active` contacts an operator may hold at once: 0 (takes none) to [`MAX_MAX_LOAD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxLoad(i64);

impl MaxLoad {
    pub const DEFAULT: MaxLoad = MaxLoad(10);

    pub fn parse(value: i64) -> Result<Self, ValueError> {
        if !(0..=MAX_MAX_LOAD).contains(&value) {
            return Err(error(format!("must be between 0 and {MAX_MAX_LOAD}")));
        }
        Ok(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// An operator's competence on a source: finite, above 0, at most [`MAX_WEIGHT`]; fractions allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weight(f64);

impl Weight {
    pub const DEFAULT: Weight = Weight(1.0);

    pub fn parse(value: f64) -> Result<Self, ValueError> {
        if !value.is_finite() || value <= 0.0 || value > MAX_WEIGHT {
            return Err(error(format!(
                "must be a number above 0 and at most {MAX_WEIGHT}"
            )));
        }
        Ok(Self(value))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

/// A contact's status: any non-blank label of at most [`MAX_STATUS_CHARS`] characters. Only
/// [`Status::ACTIVE`] counts towards an operator's load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status(String);

impl Status {
    pub const ACTIVE: &'static str = "active";

    /// The status a contact arrives in.
    pub fn active() -> Self {
        Self(Self::ACTIVE.to_owned())
    }

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(error("must not be empty"));
        }
        check_length(trimmed, MAX_STATUS_CHARS)?;
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_active(&self) -> bool {
        self.0 == Self::ACTIVE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(Name::parse("  Ann ").unwrap().as_str(), "Ann");
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse(&"я".repeat(255)).is_ok());
        assert!(Name::parse(&"я".repeat(256)).is_err());
    }

    #[test]
    fn weights_must_be_positive_and_finite() {
        assert!(Weight::parse(0.5).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, MAX_WEIGHT * 2.0] {
            assert!(Weight::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn max_load_is_bounded() {
        assert!(MaxLoad::parse(0).is_ok());
        assert!(MaxLoad::parse(-1).is_err());
        assert!(MaxLoad::parse(MAX_MAX_LOAD + 1).is_err());
    }

    #[test]
    fn statuses_are_short_labels() {
        assert!(Status::parse("closed").is_ok());
        assert!(Status::parse("").is_err());
        assert!(Status::parse(&"x".repeat(33)).is_err());
        assert!(Status::parse(" active ").unwrap().is_active());
    }

    #[test]
    fn nul_characters_are_refused_everywhere() {
        assert!(Name::parse("a\0b").is_err());
        assert!(Text::parse("a\0b").is_err());
        assert!(Status::parse("a\0b").is_err());
        assert!(optional_short_text(Some("a\0b")).is_err());
    }

    #[test]
    fn blank_optional_text_is_absent() {
        assert_eq!(optional_short_text(Some("  ")).unwrap(), None);
        assert_eq!(optional_short_text(Some(" x ")).unwrap(), Some("x".into()));
        assert!(optional_short_text(Some(&"x".repeat(256))).is_err());
    }
}
