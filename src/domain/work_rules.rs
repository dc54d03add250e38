//! A source's work rules: what becomes of an operator's contacts when they stop accepting, whether a
//! returning lead goes back to the operator they had, and how long an operator has to accept a contact.

use chrono::{DateTime, TimeDelta, Utc};

use super::values::ValueError;

/// The longest `sticky_hours`: a year.
pub const MAX_STICKY_HOURS: i64 = 24 * 366;
/// The longest `accept_timeout_secs`: a day.
pub const MAX_ACCEPT_TIMEOUT_SECS: i64 = 24 * 60 * 60;

/// What happens to an operator's active contacts on a source when the operator stops accepting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnavailablePolicy {
    /// They stay with the operator (the seed's behaviour).
    #[default]
    Keep,
    /// They go back to the source's queue, at their age, and drain to the others.
    Requeue,
}

impl UnavailablePolicy {
    pub const NAMES: [&'static str; 2] = ["keep", "requeue"];

    pub fn as_str(self) -> &'static str {
        match self {
            UnavailablePolicy::Keep => "keep",
            UnavailablePolicy::Requeue => "requeue",
        }
    }

    pub fn parse(value: &str) -> Result<Self, ValueError> {
        match value {
            "keep" => Ok(UnavailablePolicy::Keep),
            "requeue" => Ok(UnavailablePolicy::Requeue),
            _ => Err(ValueError("must be one of keep, requeue".to_owned())),
        }
    }
}

/// For how long a returning lead goes back to the operator of their last contact: 0 (off) to
/// [`MAX_STICKY_HOURS`] whole hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StickyHours(i64);

impl StickyHours {
    pub fn parse(value: i64) -> Result<Self, ValueError> {
        if !(0..=MAX_STICKY_HOURS).contains(&value) {
            return Err(ValueError(format!(
                "must be between 0 (off) and {MAX_STICKY_HOURS}"
            )));
        }
        Ok(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// The earliest assignment that still counts at `now`, or `None` when returning leads are not sticky.
    pub fn window_start(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (self.0 > 0).then(|| now - TimeDelta::hours(self.0))
    }
}

/// How long an operator has to accept a contact before it goes to another: 0 (off) to
/// [`MAX_ACCEPT_TIMEOUT_SECS`] whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AcceptTimeout(i64);

impl AcceptTimeout {
    pub fn parse(value: i64) -> Result<Self, ValueError> {
        if !(0..=MAX_ACCEPT_TIMEOUT_SECS).contains(&value) {
            return Err(ValueError(format!(
                "must be between 0 (off) and {MAX_ACCEPT_TIMEOUT_SECS}"
            )));
        }
        Ok(Self(value))
    }

    pub fn secs(self) -> i64 {
        self.0
    }

    /// By when a contact assigned at `assigned_at` must be accepted; `None` without a timeout.
    pub fn deadline(self, assigned_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (self.0 > 0).then(|| assigned_at + TimeDelta::seconds(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_each_rule_off() {
        let now = Utc::now();
        assert_eq!(StickyHours::parse(0).unwrap().window_start(now), None);
        assert_eq!(AcceptTimeout::parse(0).unwrap().deadline(now), None);
        assert_eq!(
            StickyHours::parse(2).unwrap().window_start(now),
            Some(now - TimeDelta::hours(2))
        );
        assert_eq!(
            AcceptTimeout::parse(90).unwrap().deadline(now),
            Some(now + TimeDelta::seconds(90))
        );
    }

    #[test]
    fn limits_are_enforced() {
        assert!(StickyHours::parse(-1).is_err());
        assert!(StickyHours::parse(MAX_STICKY_HOURS + 1).is_err());
        assert!(AcceptTimeout::parse(-1).is_err());
        assert!(AcceptTimeout::parse(MAX_ACCEPT_TIMEOUT_SECS).is_ok());
        assert!(AcceptTimeout::parse(MAX_ACCEPT_TIMEOUT_SECS + 1).is_err());
        assert_eq!(
            UnavailablePolicy::parse("requeue"),
            Ok(UnavailablePolicy::Requeue)
        );
        assert!(UnavailablePolicy::parse("drop").is_err());
    }
}
