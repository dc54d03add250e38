//! Deployment configuration: one struct, every field settable by flag or environment variable, every default
//! chosen so that `leadrouter` with no arguments just works on a laptop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::TimeDelta;
use clap::{Args, Parser, Subcommand};

use crate::domain::Scope;
use crate::telemetry::LogFormat;

/// leadrouter: routes incoming lead contacts to operators by weight, within their load limits.
///
/// Log verbosity follows `RUST_LOG` (default `leadrouter=info,tower_http=warn`; `tower_http=debug` logs every
/// request).
#[derive(Debug, Parser)]
#[command(name = "leadrouter", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default when no command is given).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage API keys (on the database of DATABASE_URL; a running server sees changes at once).
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Write a consistent copy of the SQLite database of DATABASE_URL to PATH, also while a server runs on it
    /// and writes (PostgreSQL: use pg_dump; this says how).
    Backup {
        /// Where to write the copy: a file that does not exist yet (nothing is ever overwritten).
        path: PathBuf,
    },
    /// Verify the database of DATABASE_URL without changing it: operators' loads, the contact counts, one
    /// lead per identity, the history. Prints one line per invariant; exits 1 on any mismatch.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its token (shown this once; only a hash of it is stored).
    Create {
        /// What the key may do: admin (everything), ingest (post contacts, read back its own), read (every
        /// GET), operator (for one operator: read it and switch its availability, read its contacts and
        /// change their status).
        #[arg(long, value_enum)]
        scope: Scope,
        /// Who holds the key, e.g. telegram-bot.
        #[arg(long)]
        name: String,
        /// The id of the operator an operator key acts for: required with --scope operator, refused with
        /// the other scopes.
        #[arg(long, value_name = "ID", required_if_eq("scope", "operator"))]
        operator: Option<i64>,
    },
    /// List the keys (never their tokens).
    List,
    /// Revoke a key, by id or by name; requests with it are refused at once.
    Revoke {
        /// The key's id or name.
        key: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port the HTTP server listens on.
    #[arg(
        long,
        env = "LEADROUTER_BIND",
        default_value = "127.0.0.1:8000",
        global = true
    )]
    pub bind: SocketAddr,

    /// `sqlite://PATH` (created on first start) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://crm.db",
        global = true
    )]
    pub database_url: String,

    /// Region (ISO 3166 alpha-2) assumed for phone numbers written without a country code.
    #[arg(
        long,
        env = "LEADROUTER_DEFAULT_REGION",
        default_value = "RU",
        global = true
    )]
    pub default_region: String,

    /// Most database connections: SQLite readers, or the PostgreSQL pool.
    #[arg(
        long,
        env = "LEADROUTER_DB_MAX_CONNECTIONS",
        default_value_t = 8,
        global = true
    )]
    pub db_max_connections: u32,

    /// How long a request waits for a database connection (including connecting) before it is answered 503.
    #[arg(
        long,
        env = "LEADROUTER_DB_ACQUIRE_TIMEOUT_SECS",
        default_value_t = 5,
        global = true
    )]
    pub db_acquire_timeout_secs: u64,

    /// PostgreSQL only: a statement running longer than this is cancelled and its request answered 503.
    #[arg(
        long,
        env = "LEADROUTER_DB_STATEMENT_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub db_statement_timeout_secs: u64,

    /// On SIGINT/SIGTERM, how long requests under way may take to finish before their connections are closed.
    #[arg(
        long,
        env = "LEADROUTER_SHUTDOWN_GRACE_SECS",
        default_value_t = 10,
        global = true
    )]
    pub shutdown_grace_secs: u64,

    /// A request not answered within this time is answered 503.
    #[arg(
        long,
        env = "LEADROUTER_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub request_timeout_secs: u64,

    /// `text`, or `json`: one JSON object per line, for log collectors.
    #[arg(long, env = "LEADROUTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// SQLite only: most write requests committed together in one transaction (group commit).
    #[arg(
        long,
        env = "LEADROUTER_WRITE_BATCH_MAX",
        default_value_t = 256,
        global = true
    )]
    pub write_batch_max: usize,

    /// SQLite only: microseconds the writer watches for the next write after a batch before it sleeps. With
    /// few clients the next write comes within a round trip, and waking a sleeping thread costs more than
    /// the write's statements; the watch costs at most this much of one core after each batch, and nothing
    /// while no writes come. 0 sleeps at once.
    #[arg(
        long,
        env = "LEADROUTER_WRITER_WATCH_MICROS",
        default_value_t = 400,
        value_parser = clap::value_parser!(u64).range(0..=10_000),
        global = true
    )]
    pub writer_watch_micros: u64,

    /// How often every source's queue is swept for waiting contacts that could be assigned (a safety net: the
    /// changes that free capacity drain the queues themselves). 0 turns the sweep off.
    #[arg(
        long,
        env = "LEADROUTER_QUEUE_SWEEP_SECS",
        default_value_t = 30,
        global = true
    )]
    pub queue_sweep_secs: u64,

    /// Webhooks: the wait before the first retry of a failed delivery; each later retry waits twice as long as
    /// the one before, up to an hour.
    #[arg(
        long,
        env = "LEADROUTER_WEBHOOK_RETRY_BASE_MS",
        default_value_t = 1000,
        global = true
    )]
    pub webhook_retry_base_ms: u64,

    /// Webhooks: attempts at a delivery before it is given up as failed (about 9 hours at the default base).
    #[arg(
        long,
        env = "LEADROUTER_WEBHOOK_MAX_ATTEMPTS",
        default_value_t = 20,
        global = true
    )]
    pub webhook_max_attempts: u32,

    /// Webhooks: how long a receiver may take to answer before the attempt counts as failed.
    #[arg(
        long,
        env = "LEADROUTER_WEBHOOK_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub webhook_timeout_secs: u64,

    /// Webhooks: how often the outbox is checked for deliveries due (new events of this instance are sent at
    /// once; this paces retries, and events written by other instances).
    #[arg(
        long,
        env = "LEADROUTER_WEBHOOK_POLL_MS",
        default_value_t = 1000,
        global = true
    )]
    pub webhook_poll_ms: u64,

    /// Rate limit of POST /contacts/, in requests a second per API key (per client address while no key
    /// exists), on this instance; fractions allowed; 0 (the default) for no limit. Over it: 429 with
    /// `Retry-After`.
    #[arg(
        long,
        env = "LEADROUTER_INGEST_RATE",
        default_value_t = 0.0,
        global = true
    )]
    pub ingest_rate: f64,

    /// How many POST /contacts/ a client may send at once, above the rate (default: one second's worth).
    #[arg(long, env = "LEADROUTER_INGEST_BURST", global = true)]
    pub ingest_burst: Option<u32>,

    /// Rate limit of every other request (but health, readiness and the docs), as `LEADROUTER_INGEST_RATE`;
    /// 0 (the default) for no limit.
    #[arg(
        long,
        env = "LEADROUTER_API_RATE",
        default_value_t = 0.0,
        global = true
    )]
    pub api_rate: f64,

    /// How many other requests a client may send at once, above the rate (default: one second's worth).
    #[arg(long, env = "LEADROUTER_API_BURST", global = true)]
    pub api_burst: Option<u32>,

    /// Days the audit trail (`GET /audit`) is kept; older entries are forgotten by the hourly purge. 0 keeps
    /// them forever.
    #[arg(
        long,
        env = "LEADROUTER_AUDIT_RETENTION_DAYS",
        default_value_t = 365,
        global = true
    )]
    pub audit_retention_days: u32,

    /// Seeds routing's random draws, so that the same requests in the same order make the same assignments
    /// (for tests and for reproducing a distribution). Unset, the draws are seeded by the operating system.
    #[arg(long, env = "LEADROUTER_ROUTING_SEED", global = true)]
    pub routing_seed: Option<u64>,
}

impl Config {
    /// The defaults, as `leadrouter` with no flags and no environment would use them, on another database.
    pub fn with_database_url(database_url: impl Into<String>) -> Self {
        let mut config = Cli::parse_from(["leadrouter"]).config;
        config.database_url = database_url.into();
        config
    }

    pub fn writer_watch(&self) -> Duration {
        Duration::from_micros(self.writer_watch_micros)
    }

    pub fn db_acquire_timeout(&self) -> Duration {
        Duration::from_secs(self.db_acquire_timeout_secs)
    }

    /// How long the audit trail is kept; `None`: forever.
    pub fn audit_retention(&self) -> Option<TimeDelta> {
        (self.audit_retention_days > 0)
            .then(|| TimeDelta::days(i64::from(self.audit_retention_days)))
    }
}
