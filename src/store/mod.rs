//! Persistence. One `Store` over either backend: SQLite (embedded, the default) or PostgreSQL (several
//! instances on one database). Reads and writes are the same operations on both; what differs is how a write
//! becomes a transaction:
//! - SQLite: one writer thread owns the write connection and commits concurrent writes in batches
//!   ([`writer`], [`sqlite_tx`]), reads use a pool of read-only connections and never wait for writes (WAL);
//! - PostgreSQL: each write is its own transaction on the pool, retried when it collides with a concurrent
//!   one (a unique violation, a deadlock); row locks and conditional updates keep the invariants across
//!   processes.

mod conn;
pub mod ops;
mod sql;
mod sqlite_tx;
mod tx;
mod writer;

use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection, Postgres, Sqlite};

pub use conn::{Conn, ContactFilter, LeadFilter, OperatorTally, Page, SourceStatusTally};
use ops::{CreatedContact, NewContact, NewOperator, NewSource, OperatorChanges, SourceChanges};
use sqlite_tx::KeyLookup;
use sqlx::Transaction;
use tx::WriteTx;
use writer::WriterHandle;

use crate::config::Config;
use crate::domain::{Name, Scope, Status, Weight};
use crate::error::AppError;
use crate::model::{
    ApiKey, Contact, Lead, LeadDetail, Operator, OperatorWeight, Source, SourceDetail,
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
        Ok(Self { backend })
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
        transaction!(self, |tx| ops::update_operator(tx, id, &changes).await)
    }

    pub async fn delete_operator(&self, id: i64) -> Result<()> {
        transaction!(self, |tx| ops::delete_operator(tx, id).await)
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
        transaction!(self, |tx| ops::link_operator(
            tx,
            source_id,
            operator_id,
            weight
        )
        .await)
    }

    pub async fn update_weight(
        &self,
        source_id: i64,
        operator_id: i64,
        weight: Weight,
    ) -> Result<OperatorWeight> {
        transaction!(self, |tx| ops::update_weight(
            tx,
            source_id,
            operator_id,
            weight
        )
        .await)
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
        transaction!(self, |tx| ops::create_contact(tx, &new).await)
    }

    pub async fn list_contacts(&self, filter: &ContactFilter, page: Page) -> Result<Vec<Contact>> {
        self.reader().await?.conn().contacts(filter, page).await
    }

    pub async fn get_contact(&self, id: i64) -> Result<Contact> {
        let found = self.reader().await?.conn().contact(id).await?;
        found.ok_or_else(|| AppError::not_found("Contact"))
    }

    pub async fn set_contact_status(&self, id: i64, status: Status) -> Result<Contact> {
        transaction!(self, |tx| ops::set_contact_status(tx, id, &status).await)
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
