//! API keys: only a hash of each token is stored; the token is shown once, when the key is created.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use super::audit::{self, Actor, AuditChange, action};
use super::backend::Backend;
use super::executor::{Executor, Record, Row, params, ready_now};
use super::operators;
use super::{Result, Store};
use crate::domain::{Name, Scope};
use crate::error::AppError;

macro_rules! key_columns {
    () => {
        "id, name, scope, operator_id, created_at, revoked_at"
    };
}

/// An API key, as listed: never its token, which is shown once at creation and stored only as a hash.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// `admin`, `ingest`, `read` or `operator`.
    pub scope: String,
    /// The operator an `operator` key acts for (kept after the operator is deleted; the key then does nothing).
    pub operator_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

record!(ApiKey {
    id,
    name,
    scope,
    operator_id,
    created_at,
    revoked_at
});

/// A live key, as a request presents it.
#[derive(Debug, Clone)]
pub struct LiveKey {
    pub id: i64,
    pub scope: String,
    /// The operator an `operator` key acts for.
    pub operator_id: Option<i64>,
    /// Whether that operator still exists.
    pub operator_exists: bool,
}

/// Who a token belongs to, and whether any key was ever created (until one is, the API is open; revoking
/// every key later does not open it again).
struct Authenticated {
    key: Option<LiveKey>,
    keys_exist: bool,
}

impl Record for Authenticated {
    fn decode(row: &Row<'_>) -> Result<Self> {
        let key_id: Option<i64> = row.get("key_id")?;
        let scope: Option<String> = row.get("scope")?;
        let operator_id: Option<i64> = row.get("operator_id")?;
        let live_operator_id: Option<i64> = row.get("live_operator_id")?;
        Ok(Authenticated {
            key: key_id.zip(scope).map(|(id, scope)| LiveKey {
                id,
                scope,
                operator_id,
                operator_exists: live_operator_id.is_some(),
            }),
            keys_exist: row.get("keys_exist")?,
        })
    }
}

/// In one round trip: the live key with this token hash, if any, with whether its operator exists, and
/// whether any key exists.
async fn authenticate(db: &mut impl Executor, token_hash: &str) -> Result<Authenticated> {
    let sql = "SELECT k.id AS key_id, k.scope, k.operator_id, o.id AS live_operator_id, \
         EXISTS (SELECT 1 FROM api_keys) AS keys_exist \
         FROM (SELECT 1 AS one) AS lookup \
         LEFT JOIN api_keys k ON k.token_hash = $1 AND k.revoked_at IS NULL \
         LEFT JOIN operators o ON o.id = k.operator_id";
    db.one(sql, params![token_hash]).await
}

async fn create(
    db: &mut impl Executor,
    name: &Name,
    scope: Scope,
    operator_id: Option<i64>,
    token_hash: &str,
    actor: Actor,
) -> Result<ApiKey> {
    if let Some(operator_id) = operator_id {
        // Kept from being deleted until the key is committed, so that it cannot be bound to an operator gone.
        operators::find_for_share(db, operator_id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("No operator with id {operator_id}")))?;
    }
    let sql = concat!(
        "INSERT INTO api_keys (name, scope, operator_id, token_hash, created_at) ",
        "VALUES ($1, $2, $3, $4, $5) RETURNING ",
        key_columns!()
    );
    let params = params![
        name.as_str(),
        scope.as_str(),
        operator_id,
        token_hash,
        super::now()
    ];
    let key = db.one(sql, params).await?;
    let change = AuditChange::created(action::KEY_CREATED, &key);
    audit::record(db, actor, change).await?;
    Ok(key)
}

/// Revokes by id, or by name when `key` is not a number (every live key of that name).
async fn revoke(db: &mut impl Executor, key: &str, actor: Actor) -> Result<()> {
    let id = key.parse::<i64>().ok();
    let name = id.is_none().then_some(key);
    let sql = concat!(
        "UPDATE api_keys SET revoked_at = $3 WHERE (id = $1 OR name = $2) AND revoked_at IS NULL ",
        "RETURNING ",
        key_columns!()
    );
    let revoked: Vec<ApiKey> = db.all(sql, params![id, name, super::now()]).await?;
    if revoked.is_empty() {
        return Err(AppError::NotFound(format!(
            "No live API key with id or name {key:?}"
        )));
    }
    for after in revoked {
        // Only the revocation changed, and the key was live before it.
        let before = ApiKey {
            revoked_at: None,
            ..after.clone()
        };
        let change = AuditChange::changed(action::KEY_REVOKED, &before, &after);
        audit::record(db, actor, change).await?;
    }
    Ok(())
}

/// SQLite's read-only connections for the key lookup, one per lookup under way: each request borrows one
/// (opening another when all are busy) and runs the lookup on it directly, on its own thread, which is a third
/// faster than handing it to a pool's worker thread; the lock guards only the list of idle ones.
pub struct KeyConnections {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Idle key connections kept open beyond this many are closed.
const IDLE_KEY_CONNECTIONS: usize = 8;

impl KeyConnections {
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let connections = Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        let first = connections.connect()?;
        connections.give_back(first);
        Ok(connections)
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.execute_batch("PRAGMA busy_timeout = 5000;")?;
        Ok(connection)
    }

    fn borrow(&self) -> rusqlite::Result<Connection> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(connection) => Ok(connection),
            None => self.connect(),
        }
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_KEY_CONNECTIONS {
            idle.push(connection);
        }
    }

    fn authenticate(&self, token_hash: &str) -> Result<Authenticated> {
        let mut connection = self.borrow()?;
        let found = ready_now(authenticate(&mut connection, token_hash))
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a SQLite key lookup waited")))?;
        // A connection whose lookup failed is closed rather than lent again.
        if found.is_ok() {
            self.give_back(connection);
        }
        found
    }
}

impl Store {
    /// The live key whose token has this hash, and whether any key exists.
    pub async fn authenticate(&self, token_hash: &str) -> Result<(Option<LiveKey>, bool)> {
        let found = match &self.backend {
            Backend::Sqlite { keys, .. } => keys.authenticate(token_hash)?,
            Backend::Postgres { .. } => read!(self, |db| authenticate(db, token_hash).await)?,
        };
        Ok((found.key, found.keys_exist))
    }

    /// Whether any live API key exists (while none does, the API is open).
    pub async fn api_keys_exist(&self) -> Result<bool> {
        Ok(self.authenticate("").await?.1)
    }

    /// Creates a key and returns it with its token, which is not stored and cannot be shown again. An
    /// `operator` key is bound to `operator_id`, which must exist ([`crate::domain::access::key_operator`]
    /// says which scopes take one).
    pub async fn create_api_key(
        &self,
        name: Name,
        scope: Scope,
        operator_id: Option<i64>,
        actor: Actor,
    ) -> Result<(ApiKey, String)> {
        let token = crate::domain::access::new_token();
        let token_hash = crate::domain::access::token_hash(&token);
        let key = transaction!(self, |db| create(
            db,
            &name,
            scope,
            operator_id,
            &token_hash,
            actor
        )
        .await)?;
        Ok((key, token))
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        let sql = concat!("SELECT ", key_columns!(), " FROM api_keys ORDER BY id");
        read!(self, |db| db.all(sql, params![]).await)
    }

    /// Revokes the live key with this id or name.
    pub async fn revoke_api_key(&self, key: String, actor: Actor) -> Result<()> {
        transaction!(self, |db| revoke(db, &key, actor).await)
    }
}
