//! Persistence. One `Store` over either backend: SQLite (embedded, the default) or PostgreSQL (several
//! instances on one database). Each resource's file holds its statements (the SQLite and PostgreSQL versions
//! side by side where they differ), its row decoders and its operations, written once against
//! [`executor::Executor`]; [`backend`] holds how reads and writes reach each database. The rules that decide
//! (which lead, which operator) are `domain`'s: the store loads what they need, asks them, and commits.

#[macro_use]
mod backend;
pub mod api_keys;
pub mod audit;
pub mod backup;
pub mod check;
pub mod contacts;
pub mod deliveries;
pub mod executor;
pub mod history;
pub mod leads;
pub mod operators;
pub mod queue;
pub mod sources;
pub mod tallies;
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
use crate::domain::RandomSource;
use crate::error::AppError;

pub use audit::{Actor, AuditFilter};
pub use contacts::{ContactFilter, CreatedContact, IdempotencyKey, NewContact};
pub use deliveries::{Attempt, DeliveryJob};
pub use leads::LEAD_DETAIL_CONTACTS;
pub use leads::LeadFilter;
pub use operators::{NewOperator, OperatorChanges};
pub use queue::ManualAssignment;
pub use sources::{NewSource, SourceChanges};
pub use tallies::{OperatorTally, SourceStatusTally};
pub use webhooks::NewWebhook;

type Result<T> = std::result::Result<T, AppError>;

/// Now, at the precision both databases keep (microseconds), so that what is returned on creation is exactly
/// what is read back later.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
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
    /// Where routing's draws come from.
    random: RandomSource,
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
    /// Whether any webhook exists, as last seen: without one, changes need not wake the sender.
    pub webhooks_exist: AtomicBool,
}

impl Store {
    /// Opens the database, creating it (SQLite) and applying the migrations first.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let store = Self {
            backend: Backend::open(config).await?,
            signals: Arc::default(),
            random: RandomSource::new(config.routing_seed),
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
