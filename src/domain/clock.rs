//! Where "now" comes from. Every rule that decides by time (availability, shifts, time off, when the next
//! change is due) asks a [`Clock`]: the system's in production, a manual one in tests, which stands still
//! until it is set or advanced, and wakes whoever waits for it ([`Clock::changed`]) when it moves.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Notify;

#[derive(Clone, Default)]
pub enum Clock {
    /// The system's clock.
    #[default]
    System,
    /// A clock that moves only when told to (tests).
    Manual(Arc<ManualClock>),
}

pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    changed: Notify,
}

impl Clock {
    /// A manual clock showing `at` (truncated to microseconds).
    pub fn manual(at: DateTime<Utc>) -> Self {
        Clock::Manual(Arc::new(ManualClock {
            now: Mutex::new(truncate(at)),
            changed: Notify::new(),
        }))
    }

    /// Now, at the precision both databases keep (microseconds), so that what is returned on creation is
    /// exactly what is read back later.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => truncate(Utc::now()),
            Clock::Manual(manual) => *manual.now.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Sets a manual clock (a system clock is left alone) and wakes its waiters.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Clock::Manual(manual) = self {
            *manual.now.lock().unwrap_or_else(PoisonError::into_inner) = truncate(at);
            manual.changed.notify_waiters();
        }
    }

    /// Moves a manual clock forward by `by`.
    pub fn advance(&self, by: TimeDelta) {
        self.set(self.now() + by);
    }

    /// Resolves when a manual clock is set; never for the system clock.
    pub async fn changed(&self) {
        match self {
            Clock::System => std::future::pending().await,
            Clock::Manual(manual) => manual.changed.notified().await,
        }
    }

    /// How long, in real time, until the clock shows `at`: for the system clock the difference; for a
    /// manual clock none (it does not move by itself; [`Clock::changed`] tells when it does).
    pub fn real_wait_until(&self, at: DateTime<Utc>) -> Option<std::time::Duration> {
        match self {
            Clock::System => Some((at - self.now()).to_std().unwrap_or_default()),
            Clock::Manual(_) => None,
        }
    }
}

fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let start = DateTime::parse_from_rfc3339("2026-03-29T00:00:00.1234567Z")
            .unwrap()
            .to_utc();
        let clock = Clock::manual(start);
        assert_eq!(clock.now().timestamp_subsec_nanos(), 123_456_000);
        let before = clock.now();
        clock.advance(TimeDelta::hours(2));
        assert_eq!(clock.now() - before, TimeDelta::hours(2));
    }
}
