//! The dashboard's sign-in sessions: a browser that showed an API key holds a random session token in an
//! HttpOnly cookie, and the store keeps only the token's hash. A session is worth what its key is: it acts
//! with the key's scope, and ends when the key is revoked, when it expires, or at sign-out.

use chrono::{DateTime, TimeDelta, Utc};

use super::api_keys::LiveKey;
use super::executor::{Executor, Record, Row, params};
use super::{Result, Store};

/// How long a sign-in lasts: a working day and some, so that a shift never has to sign in twice.
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::hours(12);

/// The key behind a live session, and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct SessionKey {
    pub key: LiveKey,
    pub csrf_token: String,
}

impl Record for SessionKey {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(SessionKey {
            key: LiveKey {
                id: row.get("key_id")?,
                scope: row.get("scope")?,
                operator_id: row.get("operator_id")?,
                operator_exists: row.get::<Option<i64>>("live_operator_id")?.is_some(),
            },
            csrf_token: row.get("csrf_token")?,
        })
    }
}

impl Store {
    /// Opens a session for the key; expired sessions are cleared on the way.
    pub async fn create_session(
        &self,
        token_hash: String,
        key_id: i64,
        csrf_token: String,
    ) -> Result<()> {
        let now = super::now();
        transaction!(self, |db| {
            let sql = "DELETE FROM ui_sessions WHERE expires_at <= $1";
            db.execute(sql, params![now]).await?;
            let sql = "INSERT INTO ui_sessions (token_hash, key_id, csrf_token, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)";
            let params = params![
                token_hash.as_str(),
                key_id,
                csrf_token.as_str(),
                now,
                now + SESSION_LIFETIME
            ];
            db.execute(sql, params).await?;
            Ok(())
        })
    }

    /// The live key of the unexpired session with this token hash, if any.
    pub async fn authenticate_session(&self, token_hash: &str) -> Result<Option<SessionKey>> {
        let now = super::now();
        read!(self, |db| find(db, token_hash, now).await)
    }

    /// Ends the session (nothing happens for one that is already gone).
    pub async fn delete_session(&self, token_hash: String) -> Result<()> {
        transaction!(self, |db| {
            let sql = "DELETE FROM ui_sessions WHERE token_hash = $1";
            db.execute(sql, params![token_hash.as_str()]).await?;
            Ok(())
        })
    }
}

async fn find(
    db: &mut impl Executor,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<SessionKey>> {
    let sql = "SELECT k.id AS key_id, k.scope, k.operator_id, o.id AS live_operator_id, s.csrf_token \
         FROM ui_sessions s JOIN api_keys k ON k.id = s.key_id AND k.revoked_at IS NULL \
         LEFT JOIN operators o ON o.id = k.operator_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2";
    db.optional(sql, params![token_hash, now]).await
}
