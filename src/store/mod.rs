//! Persistence. One `Store` over either backend: SQLite (embedded, the default) or PostgreSQL (several
//! instances on one database). Each resource's file holds its statements (the SQLite and PostgreSQL versions
//! side by side where they differ), its row decoders and its operations, written once against
//! [`executor::Executor`]; [`backend`] holds how reads and writes reach each database. The rules that decide
//! (which lead, which operator) are `domain`'s: the store loads what they need, asks them, and commits.

#[macro_use]
mod backend;
pub mod acceptance;
pub mod api_keys;
pub mod audit;
pub mod backup;
pub mod candidates;
pub mod check;
pub mod contacts;
pub mod dashboard;
pub mod decisions;
pub mod deliveries;
pub mod executor;
pub mod history;
pub mod leads;
pub mod operators;
pub mod queue;
pub mod sessions;
pub mod sources;
pub mod tallies;
pub mod time_off;
pub mod webhooks;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::Notify;

use backend::Backend;
use queue::Drained;
use writer::WriterState;

use crate::config::Config;
use crate::domain::{Clock, RandomSource, Routing};
use crate::error::AppError;

pub use audit::{Actor, AuditFilter};
pub use contacts::{ContactChange, ContactFilter, CreatedContact, IdempotencyKey, NewContact};
pub use deliveries::{Attempt, DeliveryJob};
pub use leads::LEAD_DETAIL_CONTACTS;
pub use leads::LeadFilter;
pub use operators::{NewOperator, OperatorChanges, OperatorNow};
pub use queue::ManualAssignment;
pub use sources::{NewSource, SourceChanges};
pub use tallies::{OperatorTally, SourceStatsRead, SourceStatusTally};
pub use time_off::{NewTimeOff, TimeOff};
pub use webhooks::NewWebhook;

type Result<T> = std::result::Result<T, AppError>;

/// Now by the system clock, at the precision both databases keep (microseconds), so that what is returned on
/// creation is exactly what is read back later: for the timestamps records carry. What decides by time
/// (availability, shifts, time off) reads the store's [`Clock`] instead ([`Store::now`]).
pub fn now() -> DateTime<Utc> {
    Clock::System.now()
}

/// A page of a list: `skip` rows passed over, at most `limit` returned.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub skip: i64,
    pub limit: i64,
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    signals: Arc<Signals>,
    /// Where routing's draws and its time come from.
    routing: Routing,
    /// How long the audit trail is kept; `None`: forever.
    audit_retention: Option<TimeDelta>,
}

/// How the store tells this instance's background work that there is something for it.
#[derive(Default)]
pub struct Signals {
    /// A drain stopped at its budget: contacts may wait while capacity is free.
    pub queue: Notify,
    /// Webhook events may have been written.
    pub outbox: Notify,
    /// An operator's availability, schedule or time off changed: when someone next starts accepting may
    /// have changed too.
    pub presence: Notify,
    /// Whether any webhook exists, as last seen: without one, changes need not wake the sender.
    pub webhooks_exist: AtomicBool,
}

impl Store {
    /// Opens the database, creating it (SQLite) and applying the migrations first.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        Self::open_with_clock(config, Clock::System).await
    }

    /// [`Store::open`], with time taken from `clock` wherever it decides (tests use a manual one).
    pub async fn open_with_clock(config: &Config, clock: Clock) -> anyhow::Result<Self> {
        let store = Self {
            backend: Backend::open(config).await?,
            signals: Arc::default(),
            routing: Routing {
                random: RandomSource::new(config.routing_seed),
                clock,
            },
            audit_retention: config.audit_retention(),
        };
        let webhooks_exist = store.webhooks_exist().await?;
        store
            .signals
            .webhooks_exist
            .store(webhooks_exist, Ordering::Relaxed);
        Ok(store)
    }

    /// Applies the migrations and returns, without starting anything.
    pub async fn migrate(config: &Config) -> anyhow::Result<()> {
        Backend::migrate(config).await
    }

    /// Waits for the writes under way, then closes every connection.
    pub async fn close(&self) {
        self.backend.close().await
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// The clock every decision by time reads.
    pub fn clock(&self) -> &Clock {
        &self.routing.clock
    }

    /// Now by the store's clock, at microsecond precision.
    pub fn now(&self) -> DateTime<Utc> {
        self.routing.clock.now()
    }

    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// Checks that the database answers: a read, and on SQLite that the writer thread is alive and not stuck —
    /// read from the writer's own account, so that readiness never waits behind a burst of writes.
    pub async fn check_ready(&self) -> Result<()> {
        read!(self, |db| operators::find(db, 0).await)?;
        let Backend::Sqlite { writer, .. } = &self.backend else {
            // PostgreSQL writes on the same server and pool the read just used.
            return Ok(());
        };
        match writer.state() {
            WriterState::Working => Ok(()),
            // Only a write can tell whether writes work again.
            WriterState::LastCommitFailed => {
                transaction!(self, |db| operators::find(db, 0).await.map(drop))
            }
            WriterState::Stalled(running) => Err(AppError::Unavailable(format!(
                "SQLite's writer has been running one batch for {} s",
                running.as_secs()
            ))),
            WriterState::Stopped => Err(AppError::Unavailable(
                "SQLite's writer has stopped".to_owned(),
            )),
        }
    }

    /// After a change to contacts or capacity has committed: on PostgreSQL, looks at the queues it drained once
    /// more (see [`Drained::sources`]); wakes the sweep if work was left behind, and the webhook sender if
    /// there may be events to send.
    async fn changed(&self, drained: &Drained) {
        crate::telemetry::queue_assigned(drained.assigned);
        let mut more = drained.more;
        if matches!(self.backend, Backend::Postgres { .. }) && !drained.sources.is_empty() {
            match self.drain_sources(drained.sources.clone()).await {
                Ok(again) => {
                    crate::telemetry::queue_assigned(again.assigned);
                    more |= again.more;
                }
                Err(error) => {
                    // The change itself is committed; the sweep sees to its queues.
                    tracing::warn!(%error, "draining the queues again after a change failed");
                    more = true;
                }
            }
        }
        if more {
            self.signals.queue.notify_one();
        }
        if self.signals.webhooks_exist.load(Ordering::Relaxed) {
            self.signals.outbox.notify_one();
        }
    }
}
