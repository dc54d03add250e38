//! Persistence. One `Store` over either backend: SQLite (embedded, the default) or PostgreSQL (several
//! instances on one database). Reads and writes are the same operations on both; what differs is how a write
//! becomes a transaction:
//! - SQLite: one writer thread owns the write connection and commits concurrent writes in batches
//!   ([`writer`], [`sqlite_tx`]), reads use a pool of read-only connections and never wait for writes (WAL);
//! - PostgreSQL: each write is its own transaction on the pool, retried when it collides with a concurrent
//!   one (a unique violation, a deadlock); row locks and conditional updates keep the invariants across
//!   processes.

mod conn;
pub mod events;
pub mod ops;
pub mod queue;
mod sql;
mod sqlite_tx;
mod tx;
mod writer;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, Postgres, Sqlite};

pub use conn::{Conn, ContactFilter, LeadFilter, OperatorTally, Page, SourceStatusTally};
use ops::{
    Attempt, CreatedContact, NewContact, NewOperator, NewSource, NewWebhook, OperatorChanges,
    SourceChanges,
};
use queue::{Drained, ManualAssignment};
use sqlite_tx::KeyLookup;
use sqlx::Transaction;
pub use tx::DeliveryJob;
use tx::WriteTx;
use writer::WriterHandle;

use crate::config::Config;
use crate::domain::{Name, Scope, Status, Weight};
use crate::error::AppError;
use crate::model::{
    ApiKey, Contact, Delivery, DeliveryDetail, HistoryEntry, Lead, LeadDetail, Operator,
    OperatorWeight, Source, SourceDetail, Webhook,
};

type Result<T> = std::result::Result<T, AppError>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How many times a PostgreSQL write is tried when it keeps colliding with concurrent writes.
const POSTGRES_WRITE_ATTEMPTS: usize = 8;

/// The contacts `GET /leads/{id}` returns at most; the rest are paged through `GET /contacts/?lead_id=`.
pub const LEAD_DETAIL_CONTACTS: i64 = 1000;

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    signals: Arc<Signals>,
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

#[derive(Clone)]
enum Backend {
    Sqlite {
        readers: SqlitePool,
        writer: WriterHandle,
        /// Answers the key lookup that every request makes with a direct call rather than a hand-over to a
        /// pool connection's worker thread (see `sqlite_tx`): that hand-over cost a third of the throughput.
        keys: Arc<Mutex<KeyLookup>>,
    },
    Postgres {
        pool: PgPool,
    },
}

enum ReadConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl ReadConn {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            ReadConn::Sqlite(c) => Conn::Sqlite(&mut *c),
            ReadConn::Postgres(c) => Conn::Postgres(&mut *c),
        }
    }
}

/// The database a URL names.
enum Target {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

fn target(database_url: &str) -> anyhow::Result<Target> {
    if database_url.starts_with("sqlite:") {
        if database_url.contains(":memory:") || database_url.contains("mode=memory") {
            anyhow::bail!(
                "an in-memory SQLite database cannot be shared by the writer and the readers; use a file"
            );
        }
        Ok(Target::Sqlite(SqliteConnectOptions::from_str(
            database_url,
        )?))
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        Ok(Target::Postgres(PgConnectOptions::from_str(database_url)?))
    } else {
        anyhow::bail!("DATABASE_URL must start with sqlite: or postgres:, not {database_url:?}")
    }
}

/// Runs `$body` — an expression over `$tx: &mut impl WriteTx` — as one transaction, and evaluates to its
/// result once that is durably committed: on SQLite in the writer's next batch, on PostgreSQL as a transaction
/// of its own, retried when it collides with a concurrent one. A macro, so that the body is compiled for each
/// backend's transaction type.
macro_rules! transaction {
    ($store:expr, |$tx:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite { writer, .. } => {
                writer
                    .write(move |$tx| Box::pin(async move { $body }))
                    .await
            }
            Backend::Postgres { pool } => {
                let mut attempt = 1;
                loop {
                    let mut transaction = pool.begin().await?;
                    let result = {
                        let mut conn = Conn::Postgres(&mut transaction);
                        let $tx = &mut conn;
                        $body
                    };
                    match finish_postgres(transaction, result, attempt).await {
                        Some(result) => break result,
                        None => attempt += 1,
                    }
                }
            }
        }
    };
}

/// Commits the transaction if its work succeeded. `None`: it collided with a concurrent transaction and
/// should be tried again.
async fn finish_postgres<T>(
    transaction: Transaction<'_, Postgres>,
    result: Result<T>,
    attempt: usize,
) -> Option<Result<T>> {
    let result = match result {
        Ok(value) => transaction
            .commit()
            .await
            .map(|()| value)
            .map_err(AppError::from),
        Err(error) => Err(error), // dropping the transaction rolls it back
    };
    match result {
        Err(AppError::Database(error)) if is_transient_conflict(&error) => {
            if attempt < POSTGRES_WRITE_ATTEMPTS {
                tracing::debug!(%error, attempt, "write collided with a concurrent one; retrying");
                return None;
            }
            tracing::warn!(%error, attempt, "write kept colliding with concurrent ones; giving up");
            Some(Err(AppError::Unavailable(
                "Too much contention on the database; retry".to_owned(),
            )))
        }
        other => Some(other),
    }
}

impl Store {
    /// Opens the database, creating it (SQLite) and applying the migrations first.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let backend = match target(&config.database_url)? {
            Target::Sqlite(options) => {
                let options = options
                    .busy_timeout(Duration::from_secs(5))
                    .log_statements(tracing::log::LevelFilter::Trace);
                let mut migrating = options
                    .clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .connect()
                    .await?;
                SQLITE_MIGRATIONS.run(&mut migrating).await?;
                migrating.close().await?;
                let writer = WriterHandle::start(
                    options.get_filename(),
                    config.write_batch_max,
                    config.db_acquire_timeout(),
                )?;
                let keys = Arc::new(Mutex::new(KeyLookup::open(options.get_filename())?));
                let readers = SqlitePoolOptions::new()
                    .max_connections(config.db_max_connections.max(1))
                    .acquire_timeout(config.db_acquire_timeout())
                    .connect_with(options.read_only(true))
                    .await?;
                Backend::Sqlite {
                    readers,
                    writer,
                    keys,
                }
            }
            Target::Postgres(options) => {
                let statement_timeout = format!("{}s", config.db_statement_timeout_secs);
                let options = options.options([("statement_timeout", statement_timeout.as_str())]);
                let pool = PgPoolOptions::new()
                    .max_connections(config.db_max_connections.max(1))
                    .acquire_timeout(config.db_acquire_timeout())
                    .connect_with(options.log_statements(tracing::log::LevelFilter::Trace))
                    .await?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Backend::Postgres { pool }
            }
        };
        let store = Self {
            backend,
            signals: Arc::default(),
        };
        let webhooks_exist = store.webhooks_exist().await?;
        store
            .signals
            .webhooks_exist
            .store(webhooks_exist, Ordering::Relaxed);
        Ok(store)
    }

    async fn drain_sources(&self, sources: Vec<i64>) -> Result<Drained> {
        transaction!(self, |tx| queue::drain(tx, &sources).await)
    }

    pub fn signals(&self) -> &Signals {
        &self.signals
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

    /// Applies the migrations and returns, without starting anything.
    pub async fn migrate(config: &Config) -> anyhow::Result<()> {
        match target(&config.database_url)? {
            Target::Sqlite(options) => {
                let mut connection = options
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .connect()
                    .await?;
                SQLITE_MIGRATIONS.run(&mut connection).await?;
                connection.close().await?;
            }
            Target::Postgres(options) => {
                let mut connection = options.connect().await?;
                POSTGRES_MIGRATIONS.run(&mut connection).await?;
                connection.close().await?;
            }
        }
        Ok(())
    }

    /// Waits for the writes under way, then closes every connection.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite {
                readers, writer, ..
            } => {
                writer.stop().await;
                readers.close().await;
            }
            Backend::Postgres { pool } => pool.close().await,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    async fn reader(&self) -> Result<ReadConn> {
        Ok(match &self.backend {
            Backend::Sqlite { readers, .. } => ReadConn::Sqlite(readers.acquire().await?),
            Backend::Postgres { pool } => ReadConn::Postgres(pool.acquire().await?),
        })
    }

    /// Checks that the database answers: a read, and on SQLite a (empty) write through the writer thread.
    pub async fn check_ready(&self) -> Result<()> {
        self.reader().await?.conn().operator(0).await?;
        transaction!(self, |tx| tx.operator(0).await.map(drop))
    }

    // ---- API keys ----

    /// The live key whose token has this hash (id, scope), and whether any live key exists.
    pub async fn authenticate(&self, token_hash: &str) -> Result<(Option<(i64, String)>, bool)> {
        match &self.backend {
            Backend::Sqlite { keys, .. } => {
                let lookup = keys.lock().unwrap_or_else(PoisonError::into_inner);
                lookup.authenticate(token_hash)
            }
            Backend::Postgres { .. } => self.reader().await?.conn().authenticate(token_hash).await,
        }
    }

    /// Whether any live API key exists (while none does, the API is open).
    pub async fn api_keys_exist(&self) -> Result<bool> {
        Ok(self.authenticate("").await?.1)
    }

    /// Creates a key and returns it with its token, which is not stored and cannot be shown again.
    pub async fn create_api_key(&self, name: Name, scope: Scope) -> Result<(ApiKey, String)> {
        let token = crate::domain::access::new_token();
        let token_hash = crate::domain::access::token_hash(&token);
        let key = transaction!(self, |tx| ops::create_api_key(
            tx,
            &name,
            scope,
            &token_hash
        )
        .await)?;
        Ok((key, token))
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.reader().await?.conn().api_keys().await
    }

    /// Revokes the live key with this id or name.
    pub async fn revoke_api_key(&self, key: String) -> Result<()> {
        transaction!(self, |tx| ops::revoke_api_key(tx, &key).await)
    }

    /// The key that created the contact: `None` when there is no such contact, `Some(None)` for no key.
    pub async fn contact_creator(&self, id: i64) -> Result<Option<Option<i64>>> {
        self.reader().await?.conn().contact_creator(id).await
    }

    /// Every operator's (id, active load, max_load), for the metrics.
    pub async fn operator_loads(&self) -> Result<Vec<(i64, i64, i64)>> {
        self.reader().await?.conn().operator_loads().await
    }

    // ---- operators ----

    pub async fn create_operator(&self, new: NewOperator) -> Result<Operator> {
        transaction!(self, |tx| ops::create_operator(tx, &new).await)
    }

    pub async fn list_operators(&self, page: Page) -> Result<Vec<Operator>> {
        self.reader().await?.conn().operators(page).await
    }

    pub async fn get_operator(&self, id: i64) -> Result<Operator> {
        let found = self.reader().await?.conn().operator(id).await?;
        found.ok_or_else(|| AppError::not_found("Operator"))
    }

    pub async fn update_operator(&self, id: i64, changes: OperatorChanges) -> Result<Operator> {
        let (operator, drained) =
            transaction!(self, |tx| ops::update_operator(tx, id, &changes).await)?;
        self.changed(&drained).await;
        Ok(operator)
    }

    pub async fn delete_operator(&self, id: i64, api_key_id: Option<i64>) -> Result<()> {
        let drained = transaction!(self, |tx| ops::delete_operator(tx, id, api_key_id).await)?;
        self.changed(&drained).await;
        Ok(())
    }

    /// The operator and their contacts per source and status.
    pub async fn operator_tallies(&self, id: i64) -> Result<(Operator, Vec<SourceStatusTally>)> {
        let mut reader = self.reader().await?;
        let mut conn = reader.conn();
        let operator = conn
            .operator(id)
            .await?
            .ok_or_else(|| AppError::not_found("Operator"))?;
        Ok((operator, conn.operator_tallies(id).await?))
    }

    // ---- sources ----

    pub async fn create_source(&self, new: NewSource) -> Result<Source> {
        transaction!(self, |tx| ops::create_source(tx, &new).await)
    }

    pub async fn list_sources(&self, page: Page) -> Result<Vec<Source>> {
        self.reader().await?.conn().sources(page).await
    }

    pub async fn get_source(&self, id: i64) -> Result<SourceDetail> {
        let mut reader = self.reader().await?;
        let mut conn = reader.conn();
        let source = conn
            .source(id)
            .await?
            .ok_or_else(|| AppError::not_found("Source"))?;
        let operator_weights = conn.weights_of_source(id).await?;
        Ok(SourceDetail {
            source,
            operator_weights,
        })
    }

    pub async fn update_source(&self, id: i64, changes: SourceChanges) -> Result<Source> {
        transaction!(self, |tx| ops::update_source(tx, id, &changes).await)
    }

    pub async fn delete_source(&self, id: i64) -> Result<()> {
        transaction!(self, |tx| ops::delete_source(tx, id).await)
    }

    pub async fn link_operator(
        &self,
        source_id: i64,
        operator_id: i64,
        weight: Weight,
    ) -> Result<OperatorWeight> {
        let (linked, drained) = transaction!(self, |tx| ops::link_operator(
            tx,
            source_id,
            operator_id,
            weight
        )
        .await)?;
        self.changed(&drained).await;
        Ok(linked)
    }

    pub async fn update_weight(
        &self,
        source_id: i64,
        operator_id: i64,
        weight: Weight,
    ) -> Result<OperatorWeight> {
        let (updated, drained) = transaction!(self, |tx| ops::update_weight(
            tx,
            source_id,
            operator_id,
            weight
        )
        .await)?;
        self.changed(&drained).await;
        Ok(updated)
    }

    pub async fn unlink_operator(&self, source_id: i64, operator_id: i64) -> Result<()> {
        transaction!(self, |tx| ops::unlink_operator(tx, source_id, operator_id)
            .await)
    }

    /// The source, its weights, and its contacts per operator (0 = unassigned).
    pub async fn source_tallies(&self, id: i64) -> Result<(SourceDetail, Vec<OperatorTally>)> {
        let mut reader = self.reader().await?;
        let mut conn = reader.conn();
        let source = conn
            .source(id)
            .await?
            .ok_or_else(|| AppError::not_found("Source"))?;
        let operator_weights = conn.weights_of_source(id).await?;
        let tallies = conn.source_tallies(id).await?;
        Ok((
            SourceDetail {
                source,
                operator_weights,
            },
            tallies,
        ))
    }

    // ---- contacts ----

    pub async fn create_contact(&self, new: NewContact) -> Result<CreatedContact> {
        let created = transaction!(self, |tx| ops::create_contact(tx, &new).await)?;
        if !created.replayed {
            self.changed(&created.drained).await;
        }
        Ok(created)
    }

    pub async fn list_contacts(&self, filter: &ContactFilter, page: Page) -> Result<Vec<Contact>> {
        self.reader().await?.conn().contacts(filter, page).await
    }

    pub async fn get_contact(&self, id: i64) -> Result<Contact> {
        let found = self.reader().await?.conn().contact(id).await?;
        found.ok_or_else(|| AppError::not_found("Contact"))
    }

    pub async fn set_contact_status(
        &self,
        id: i64,
        status: Status,
        api_key_id: Option<i64>,
    ) -> Result<Contact> {
        let (contact, drained) = transaction!(self, |tx| ops::set_contact_status(
            tx, id, &status, api_key_id
        )
        .await)?;
        self.changed(&drained).await;
        Ok(contact)
    }

    /// Gives the contact to an operator, or takes it from one, by hand.
    pub async fn assign_contact(&self, id: i64, assignment: ManualAssignment) -> Result<Contact> {
        let (contact, drained) =
            transaction!(self, |tx| queue::assign_manually(tx, id, &assignment).await)?;
        self.changed(&drained).await;
        Ok(contact)
    }

    /// The contact's history, oldest first.
    pub async fn contact_history(&self, id: i64, page: Page) -> Result<Vec<HistoryEntry>> {
        let mut reader = self.reader().await?;
        let mut conn = reader.conn();
        if !conn.contact_exists(id).await? {
            return Err(AppError::not_found("Contact"));
        }
        conn.history(id, page).await
    }

    // ---- the queue ----

    /// A page of the source's queue, oldest first.
    pub async fn queue(&self, source_id: i64, page: Page) -> Result<Vec<Contact>> {
        let mut reader = self.reader().await?;
        let mut conn = reader.conn();
        conn.source(source_id)
            .await?
            .ok_or_else(|| AppError::not_found("Source"))?;
        conn.queue(source_id, page).await
    }

    /// The live sources with contacts waiting.
    pub async fn sources_with_waiting(&self) -> Result<Vec<i64>> {
        self.reader().await?.conn().sources_with_waiting().await
    }

    /// Assigns what it can of the source's queue (at most [`queue::DRAIN_BUDGET`] contacts).
    pub async fn drain_source(&self, source_id: i64) -> Result<Drained> {
        let drained = self.drain_sources(vec![source_id]).await?;
        // The sweep looks again itself (no second look after commit), and is woken again only if a contact
        // was skipped.
        let swept = Drained {
            assigned: drained.assigned,
            more: drained.more && drained.assigned < queue::DRAIN_BUDGET,
            sources: Vec::new(),
        };
        self.changed(&swept).await;
        Ok(drained)
    }

    /// Forgets expired idempotency keys and old deliveries.
    pub async fn purge_expired(&self) -> Result<()> {
        transaction!(self, |tx| ops::purge_expired(tx).await)
    }

    // ---- webhooks ----

    pub async fn create_webhook(&self, new: NewWebhook) -> Result<Webhook> {
        let webhook = transaction!(self, |tx| ops::create_webhook(tx, &new).await)?;
        self.signals.webhooks_exist.store(true, Ordering::Relaxed);
        Ok(webhook)
    }

    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        self.reader().await?.conn().webhooks().await
    }

    pub async fn get_webhook(&self, id: i64) -> Result<Webhook> {
        let found = self.reader().await?.conn().webhook(id).await?;
        found.ok_or_else(|| AppError::not_found("Webhook"))
    }

    pub async fn delete_webhook(&self, id: i64) -> Result<()> {
        transaction!(self, |tx| ops::delete_webhook(tx, id).await)
    }

    pub async fn webhooks_exist(&self) -> Result<bool> {
        self.reader().await?.conn().webhooks_exist().await
    }

    /// The webhook's deliveries, newest first.
    pub async fn deliveries(&self, webhook_id: i64, page: Page) -> Result<Vec<Delivery>> {
        let mut reader = self.reader().await?;
        let mut conn = reader.conn();
        conn.webhook(webhook_id)
            .await?
            .ok_or_else(|| AppError::not_found("Webhook"))?;
        conn.deliveries(webhook_id, page).await
    }

    /// A delivery with its payload and every attempt at it.
    pub async fn delivery(&self, webhook_id: i64, id: i64) -> Result<DeliveryDetail> {
        let mut reader = self.reader().await?;
        let mut conn = reader.conn();
        let delivery = conn
            .delivery(webhook_id, id)
            .await?
            .ok_or_else(|| AppError::not_found("Delivery"))?;
        let job = conn
            .read_delivery_job(id)
            .await?
            .ok_or_else(|| AppError::not_found("Delivery"))?;
        let attempts = conn.delivery_attempts(id).await?;
        Ok(DeliveryDetail {
            delivery,
            payload: events::event_body(
                job.event_id,
                &job.event_type,
                job.event_created_at,
                &job.data,
            ),
            attempts,
        })
    }

    /// Makes the delivery pending and due now, and wakes the sender.
    pub async fn retry_delivery(&self, webhook_id: i64, id: i64) -> Result<Delivery> {
        transaction!(self, |tx| ops::retry_delivery(tx, webhook_id, id).await)?;
        self.signals.outbox.notify_one();
        let found = self.reader().await?.conn().delivery(webhook_id, id).await?;
        found.ok_or_else(|| AppError::not_found("Delivery"))
    }

    /// Leases up to `limit` deliveries that are due, for `lease`.
    pub async fn claim_deliveries(
        &self,
        lease: chrono::TimeDelta,
        limit: i64,
    ) -> Result<Vec<DeliveryJob>> {
        transaction!(self, |tx| ops::claim_deliveries(tx, lease, limit).await)
    }

    pub async fn record_attempt(&self, attempt: Attempt) -> Result<()> {
        transaction!(self, |tx| ops::record_attempt(tx, &attempt).await)
    }

    // ---- leads ----

    pub async fn list_leads(&self, filter: &LeadFilter, page: Page) -> Result<Vec<Lead>> {
        self.reader().await?.conn().leads(filter, page).await
    }

    pub async fn get_lead(&self, id: i64) -> Result<LeadDetail> {
        let mut reader = self.reader().await?;
        let mut conn = reader.conn();
        let lead = conn
            .lead(id)
            .await?
            .ok_or_else(|| AppError::not_found("Lead"))?;
        let filter = ContactFilter {
            lead_id: Some(id),
            ..Default::default()
        };
        let page = Page {
            skip: 0,
            limit: LEAD_DETAIL_CONTACTS,
        };
        let contacts = conn.contacts(&filter, page).await?;
        Ok(LeadDetail { lead, contacts })
    }
}

/// A PostgreSQL error that a fresh attempt of the same transaction may not meet: it lost a race for a unique
/// value or a row lock, or a row it referenced went away meanwhile.
fn is_transient_conflict(error: &sqlx::Error) -> bool {
    let Some(database_error) = error.as_database_error() else {
        return false;
    };
    matches!(
        database_error.code().as_deref(),
        // unique_violation, foreign_key_violation, serialization_failure, deadlock_detected
        Some("23505" | "23503" | "40001" | "40P01")
    )
}
