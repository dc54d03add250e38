//! The backend plumbing: which database a URL names, opening it (migrations first), the connections reads and
//! writes run on, and how a write becomes a transaction:
//! - SQLite: one writer thread owns the write connection and commits concurrent writes in batches
//!   ([`super::writer`]); reads use a pool of read-only connections and never wait for writes (WAL);
//! - PostgreSQL: each write is its own transaction on the pool, retried when it collides with a concurrent
//!   one (a deadlock, a serialization failure, a race for a unique value); row locks and conditional updates
//!   keep the invariants across processes.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection as _, Postgres, Transaction};

use super::api_keys::KeyConnections;
use super::executor::Dialect;
use super::writer::{WriterHandle, WriterSettings};
use crate::config::Config;
use crate::error::AppError;

type Result<T> = std::result::Result<T, AppError>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How many times a PostgreSQL write is tried when it keeps colliding with concurrent writes.
const POSTGRES_WRITE_ATTEMPTS: usize = 8;

#[derive(Clone)]
pub enum Backend {
    Sqlite {
        readers: SqlitePool,
        writer: WriterHandle,
        /// Answers the key lookup that every request makes with a direct call rather than a hand-over to a
        /// pool connection's worker thread: that hand-over cost a third of the throughput.
        keys: Arc<KeyConnections>,
    },
    Postgres {
        pool: PgPool,
    },
}

/// Runs `$body` — an expression over `$db: &mut impl Executor` — on a read connection of whichever backend
/// the store has. A macro, so that the body is compiled for each backend's connection type.
macro_rules! read {
    ($store:expr, |$db:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::backend::Backend::Sqlite { readers, .. } => {
                let mut connection = readers.acquire().await?;
                let $db = &mut *connection;
                $body
            }
            $crate::store::backend::Backend::Postgres { pool } => {
                let mut connection = pool.acquire().await?;
                let $db = &mut *connection;
                $body
            }
        }
    };
}

/// Runs `$body` as [`read!`] does, but in one read-only transaction, so that all its statements see the
/// database as of one moment: for an answer put together from several reads that must agree (counts, and
/// the decisions behind them). On SQLite the first read fixes the snapshot (WAL); on PostgreSQL the
/// transaction is REPEATABLE READ. Nothing is written, so the transaction is rolled back when done.
macro_rules! read_transaction {
    ($store:expr, |$db:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::backend::Backend::Sqlite { readers, .. } => {
                let mut transaction = readers.begin().await?;
                let result = {
                    let $db = &mut *transaction;
                    $body
                };
                transaction.rollback().await?;
                result
            }
            $crate::store::backend::Backend::Postgres { pool } => {
                let mut transaction = pool.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *transaction)
                    .await?;
                let result = {
                    let $db = &mut *transaction;
                    $body
                };
                transaction.rollback().await?;
                result
            }
        }
    };
}

/// Runs `$body` — an expression over `$db: &mut impl Executor` — as one transaction, and evaluates to its
/// result once that is durably committed: on SQLite in the writer's next batch (in a savepoint of its own),
/// on PostgreSQL as a transaction of its own, tried again when it collides with a concurrent one.
macro_rules! transaction {
    ($store:expr, |$db:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::backend::Backend::Sqlite { writer, .. } => {
                writer
                    .write(move |$db| Box::pin(async move { $body }))
                    .await
            }
            $crate::store::backend::Backend::Postgres { pool } => {
                let mut attempt = 1;
                loop {
                    let mut transaction = pool.begin().await?;
                    let result = {
                        let $db = &mut *transaction;
                        $body
                    };
                    match $crate::store::backend::finish_postgres(transaction, result, attempt)
                        .await
                    {
                        Some(result) => break result,
                        None => attempt += 1,
                    }
                }
            }
        }
    };
}

/// Decodes a record whose fields are read from the columns of the same names:
/// `record!(Operator { id, name, … })`.
macro_rules! record {
    ($type:ident { $($field:ident),+ $(,)? }) => {
        impl $crate::store::executor::Record for $type {
            fn decode(
                row: &$crate::store::executor::Row<'_>,
            ) -> std::result::Result<Self, $crate::error::AppError> {
                Ok($type {
                    $($field: row.get(stringify!($field))?),+
                })
            }
        }
    };
}

/// The database a URL names.
pub(super) enum Target {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

pub(super) fn target(database_url: &str) -> anyhow::Result<Target> {
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

/// The versions of the migrations this build applies to a database of the dialect, oldest first.
pub(super) fn migration_versions(dialect: Dialect) -> Vec<i64> {
    let migrator = match dialect {
        Dialect::Sqlite => &SQLITE_MIGRATIONS,
        Dialect::Postgres => &POSTGRES_MIGRATIONS,
    };
    migrator
        .iter()
        .filter(|migration| migration.migration_type.is_up_migration())
        .map(|migration| migration.version)
        .collect()
}

impl Backend {
    /// Opens the database, creating it (SQLite) and applying the migrations first.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        Ok(match target(&config.database_url)? {
            Target::Sqlite(options) => {
                let options = options
                    .busy_timeout(Duration::from_secs(5))
                    .log_statements(tracing::log::LevelFilter::Trace);
                migrate_sqlite(&options).await?;
                let writer = WriterHandle::start(
                    options.get_filename(),
                    WriterSettings {
                        batch_max: config.write_batch_max,
                        queue_timeout: config.db_acquire_timeout(),
                        watch: config.writer_watch(),
                    },
                )?;
                let keys = KeyConnections::open(options.get_filename())?;
                let readers = SqlitePoolOptions::new()
                    .max_connections(config.db_max_connections.max(1))
                    .acquire_timeout(config.db_acquire_timeout())
                    .connect_with(options.read_only(true))
                    .await?;
                Backend::Sqlite {
                    readers,
                    writer,
                    keys: Arc::new(keys),
                }
            }
            Target::Postgres(options) => {
                let statement_timeout = format!("{}s", config.db_statement_timeout_secs);
                let pool = PgPoolOptions::new()
                    .max_connections(config.db_max_connections.max(1))
                    .acquire_timeout(config.db_acquire_timeout())
                    .connect_with(
                        options
                            .clone()
                            .options([("statement_timeout", statement_timeout.as_str())])
                            .log_statements(tracing::log::LevelFilter::Trace),
                    )
                    .await?;
                migrate_postgres(&options).await?;
                Backend::Postgres { pool }
            }
        })
    }

    /// Applies the migrations and returns, without starting anything.
    pub async fn migrate(config: &Config) -> anyhow::Result<()> {
        match target(&config.database_url)? {
            Target::Sqlite(options) => migrate_sqlite(&options).await,
            Target::Postgres(options) => migrate_postgres(&options).await,
        }
    }

    /// Waits for the writes under way, then closes every connection.
    pub async fn close(&self) {
        match self {
            Backend::Sqlite {
                readers, writer, ..
            } => {
                writer.stop().await;
                readers.close().await;
            }
            Backend::Postgres { pool } => pool.close().await,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// Applies the SQLite migrations on a connection of their own, creating the file (in WAL mode) if missing.
async fn migrate_sqlite(options: &SqliteConnectOptions) -> anyhow::Result<()> {
    let mut connection = options
        .clone()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await?;
    SQLITE_MIGRATIONS.run(&mut connection).await?;
    connection.close().await?;
    Ok(())
}

/// Applies the PostgreSQL migrations on a connection of their own, without the requests' statement timeout:
/// a migration may rewrite a large table, or wait for the migration lock while another instance upgrades,
/// for longer than a request's statement may take.
async fn migrate_postgres(options: &PgConnectOptions) -> anyhow::Result<()> {
    let mut connection = options.connect().await?;
    POSTGRES_MIGRATIONS.run(&mut connection).await?;
    connection.close().await?;
    Ok(())
}

/// Commits the transaction if its work succeeded. `None`: it collided with a concurrent transaction and
/// should be tried again.
pub async fn finish_postgres<T>(
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

/// The unique constraints that a write checks before it inserts, so that a violation can only mean a
/// concurrent transaction inserted the same value first: tried again, the write sees that row (and reuses the
/// lead, replays the idempotent answer, or refuses the duplicate with 409).
const RACED_UNIQUE_CONSTRAINTS: [&str; 6] = [
    "leads_external_id_key",
    "leads_phone_key",
    "leads_email_key",
    "idempotency_keys_pkey",
    "sources_live_name",
    "source_operator_weights_source_id_operator_id_key",
];

/// The references a write makes to rows it does not lock: a webhook deleted while a change queues an event
/// for it, or while a sender records an attempt at one of its deliveries. Tried again, the write no longer
/// sees the webhook.
const RACED_FOREIGN_KEYS: [&str; 2] = [
    "webhook_deliveries_webhook_id_fkey",
    "webhook_attempts_delivery_id_fkey",
];

/// A PostgreSQL error that a fresh attempt of the same transaction may not meet: it lost a race for a row
/// lock or a serializable snapshot, for one of the unique values a write checks before inserting, or with
/// the deletion of a webhook it refers to. Every other error — a constraint the write breaks whatever it races with, a bug — is answered at once, with the
/// status SQLite gives it.
fn is_transient_conflict(error: &sqlx::Error) -> bool {
    let Some(database_error) = error.as_database_error() else {
        return false;
    };
    match database_error.code().as_deref() {
        // serialization_failure, deadlock_detected
        Some("40001" | "40P01") => true,
        // unique_violation
        Some("23505") => database_error
            .constraint()
            .is_some_and(|name| RACED_UNIQUE_CONSTRAINTS.contains(&name)),
        // foreign_key_violation
        Some("23503") => database_error
            .constraint()
            .is_some_and(|name| RACED_FOREIGN_KEYS.contains(&name)),
        _ => false,
    }
}
