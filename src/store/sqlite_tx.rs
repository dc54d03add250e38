//! SQLite's write connection, driven synchronously with rusqlite on the writer's own thread. The statements
//! are those of [`sql`], as PostgreSQL runs them through sqlx; what differs is that each one is a plain
//! function call here, where a sqlx SQLite connection sends every statement to a worker thread and waits for
//! the answer: at several statements per contact, those thread switches were most of a write's cost.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Type;
use rusqlite::{CachedStatement, Connection, OpenFlags, Row, ToSql};

use super::conn::ContactRow;
use super::sql;
use super::tx::{
    ContactState, DeliveryJob, DeliveryUpdate, HistoryChange, IdempotentRequest, OperatorContact,
    WebhookRow, WriteTx,
};
use crate::domain::{Candidate, LeadIdentity, Status};
use crate::error::AppError;
use crate::model::{ApiKey, Contact, HistoryEntry, Lead, Operator, OperatorWeight, Source};

type Result<T> = std::result::Result<T, AppError>;

/// The placeholders of [`sql`], in order; rusqlite binds them by name, as SQLite numbers named parameters by
/// first appearance rather than by the number in their name.
const PLACEHOLDERS: [&str; 9] = ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9"];

/// The write connection. Transactions (BEGIN, savepoints, COMMIT) are the writer's business.
pub struct SqliteTx {
    connection: Connection,
}

impl SqliteTx {
    /// Opens the database file (which must exist, with its schema) for writing: WAL, and every commit synced
    /// to disk before it is acknowledged.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA busy_timeout = 5000;",
        )?;
        connection.set_prepared_statement_cache_capacity(64);
        Ok(Self { connection })
    }

    /// Runs statements that take no parameters and return nothing (BEGIN, SAVEPOINT, COMMIT…).
    pub fn execute_batch(&self, sql: &str) -> rusqlite::Result<()> {
        self.connection.execute_batch(sql)
    }

    fn prepare(
        &self,
        sql: &str,
        parameters: &[&dyn ToSql],
    ) -> rusqlite::Result<CachedStatement<'_>> {
        let mut statement = self.connection.prepare_cached(sql)?;
        for (placeholder, value) in PLACEHOLDERS.iter().zip(parameters) {
            if let Some(index) = statement.parameter_index(placeholder)? {
                statement.raw_bind_parameter(index, value)?;
            }
        }
        Ok(statement)
    }

    fn optional<T>(
        &self,
        sql: &str,
        parameters: &[&dyn ToSql],
        read: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let mut statement = self.prepare(sql, parameters)?;
        let mut rows = statement.raw_query();
        Ok(match rows.next()? {
            Some(row) => Some(read(row)?),
            None => None,
        })
    }

    fn one<T>(
        &self,
        sql: &str,
        parameters: &[&dyn ToSql],
        read: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.optional(sql, parameters, read)?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no row returned by {sql}")))
    }

    fn all<T>(
        &self,
        sql: &str,
        parameters: &[&dyn ToSql],
        read: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let mut statement = self.prepare(sql, parameters)?;
        let mut rows = statement.raw_query();
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            found.push(read(row)?);
        }
        Ok(found)
    }

    /// Runs the statement and returns how many rows it changed.
    fn execute(&self, sql: &str, parameters: &[&dyn ToSql]) -> Result<usize> {
        Ok(self.prepare(sql, parameters)?.raw_execute()?)
    }
}

/// A read-only connection for the API key lookup of every request. Held only for that one indexed query, so
/// a mutex around it costs less than a pool's hand-over to a worker thread would.
pub struct KeyLookup {
    connection: Connection,
}

impl KeyLookup {
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.execute_batch("PRAGMA busy_timeout = 5000;")?;
        Ok(Self { connection })
    }

    /// The live key with this token hash (id, scope), and whether any live key exists.
    pub fn authenticate(&self, token_hash: &str) -> Result<(Option<(i64, String)>, bool)> {
        let mut statement = self.connection.prepare_cached(sql::AUTHENTICATE)?;
        let (key_id, scope, keys_exist): (Option<i64>, Option<String>, bool) = statement
            .query_row([token_hash], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
        Ok((key_id.zip(scope), keys_exist))
    }
}

/// A timestamp as sqlx writes it to SQLite, so that the read side (sqlx) reads both alike.
fn timestamp_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn timestamp(row: &Row, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(index)?;
    parse_timestamp(&text, index)
}

fn optional_timestamp(row: &Row, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(index)?;
    text.map(|text| parse_timestamp(&text, index)).transpose()
}

fn parse_timestamp(text: &str, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(error))
        })
}

/// Rows in the column order of [`sql`]'s operator statements.
fn read_operator(row: &Row) -> rusqlite::Result<Operator> {
    Ok(Operator {
        id: row.get(0)?,
        name: row.get(1)?,
        is_active: row.get(2)?,
        max_load: row.get(3)?,
        active_load: row.get(4)?,
        created_at: timestamp(row, 5)?,
    })
}

fn read_source(row: &Row) -> rusqlite::Result<Source> {
    Ok(Source {
        id: row.get(0)?,
        name: row.get(1)?,
        description: row.get(2)?,
        created_at: timestamp(row, 3)?,
    })
}

fn read_weight(row: &Row) -> rusqlite::Result<OperatorWeight> {
    Ok(OperatorWeight {
        id: row.get(0)?,
        source_id: row.get(1)?,
        operator_id: row.get(2)?,
        weight: row.get(3)?,
    })
}

fn read_lead(row: &Row) -> rusqlite::Result<Lead> {
    Ok(Lead {
        id: row.get(0)?,
        external_id: row.get(1)?,
        phone: row.get(2)?,
        email: row.get(3)?,
        name: row.get(4)?,
        created_at: timestamp(row, 5)?,
    })
}

/// A row of [`sql::CONTACT_SELECT`].
fn read_contact(row: &Row) -> rusqlite::Result<ContactRow> {
    Ok(ContactRow {
        id: row.get(0)?,
        lead_id: row.get(1)?,
        source_id: row.get(2)?,
        operator_id: row.get(3)?,
        status: row.get(4)?,
        message: row.get(5)?,
        created_at: timestamp(row, 6)?,
        lead_external_id: row.get(7)?,
        lead_phone: row.get(8)?,
        lead_email: row.get(9)?,
        lead_name: row.get(10)?,
        lead_created_at: timestamp(row, 11)?,
        source_name: row.get(12)?,
        source_description: row.get(13)?,
        source_created_at: timestamp(row, 14)?,
        operator_name: row.get(15)?,
        operator_is_active: row.get(16)?,
        operator_max_load: row.get(17)?,
        operator_active_load: row.get(18)?,
        operator_created_at: optional_timestamp(row, 19)?,
    })
}

fn read_state(row: &Row) -> rusqlite::Result<ContactState> {
    Ok(ContactState {
        source_id: row.get(0)?,
        operator_id: row.get(1)?,
        status: row.get(2)?,
    })
}

fn read_candidate(row: &Row) -> rusqlite::Result<Candidate> {
    Ok(Candidate {
        operator_id: row.get(0)?,
        weight: row.get(1)?,
        free_slots: row.get(2)?,
    })
}

fn read_idempotent_request(row: &Row) -> rusqlite::Result<IdempotentRequest> {
    Ok(IdempotentRequest {
        fingerprint: row.get(0)?,
        contact_id: row.get(1)?,
        created_at: timestamp(row, 2)?,
    })
}

fn read_api_key(row: &Row) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        name: row.get(1)?,
        scope: row.get(2)?,
        created_at: timestamp(row, 3)?,
        revoked_at: optional_timestamp(row, 4)?,
    })
}

fn read_id(row: &Row) -> rusqlite::Result<i64> {
    row.get(0)
}

fn read_operator_contact(row: &Row) -> rusqlite::Result<OperatorContact> {
    Ok(OperatorContact {
        id: row.get(0)?,
        source_id: row.get(1)?,
        status: row.get(2)?,
    })
}

/// A row of [`sql::INSERT_HISTORY`]'s RETURNING.
fn read_history(row: &Row) -> rusqlite::Result<HistoryEntry> {
    Ok(HistoryEntry {
        id: row.get(0)?,
        contact_id: row.get(1)?,
        at: timestamp(row, 2)?,
        event: row.get(3)?,
        from_operator_id: row.get(4)?,
        to_operator_id: row.get(5)?,
        from_status: row.get(6)?,
        to_status: row.get(7)?,
        reason: row.get(8)?,
        api_key_id: row.get(9)?,
    })
}

fn read_subscription(row: &Row) -> rusqlite::Result<(i64, String)> {
    Ok((row.get(0)?, row.get(1)?))
}

fn read_webhook(row: &Row) -> rusqlite::Result<WebhookRow> {
    Ok(WebhookRow {
        id: row.get(0)?,
        url: row.get(1)?,
        events: row.get(2)?,
        created_at: timestamp(row, 3)?,
    })
}

fn read_delivery_job(row: &Row) -> rusqlite::Result<DeliveryJob> {
    Ok(DeliveryJob {
        id: row.get(0)?,
        attempt_count: row.get(1)?,
        url: row.get(2)?,
        secret: row.get(3)?,
        event_id: row.get(4)?,
        event_type: row.get(5)?,
        data: row.get(6)?,
        event_created_at: timestamp(row, 7)?,
    })
}

// Every statement is a synchronous call: these futures are ready at their first poll.
impl WriteTx for SqliteTx {
    async fn operator(&mut self, id: i64) -> Result<Option<Operator>> {
        self.optional(sql::OPERATOR_BY_ID, &[&id], read_operator)
    }

    async fn operator_for_update(&mut self, id: i64) -> Result<Option<Operator>> {
        // The single writer already excludes every other write.
        self.optional(sql::OPERATOR_BY_ID, &[&id], read_operator)
    }

    async fn insert_operator(
        &mut self,
        name: &str,
        is_active: bool,
        max_load: i64,
        created_at: DateTime<Utc>,
    ) -> Result<Operator> {
        let created_at = timestamp_text(created_at);
        self.one(
            sql::INSERT_OPERATOR,
            &[&name, &is_active, &max_load, &created_at],
            read_operator,
        )
    }

    async fn update_operator(
        &mut self,
        id: i64,
        name: Option<&str>,
        is_active: Option<bool>,
        max_load: Option<i64>,
    ) -> Result<Option<Operator>> {
        self.optional(
            sql::UPDATE_OPERATOR,
            &[&id, &name, &is_active, &max_load],
            read_operator,
        )
    }

    async fn delete_operator(&mut self, id: i64) -> Result<bool> {
        Ok(self.execute(sql::DELETE_OPERATOR, &[&id])? > 0)
    }

    async fn claim_capacity(&mut self, operator_id: i64) -> Result<Option<Operator>> {
        self.optional(sql::CLAIM_CAPACITY, &[&operator_id], read_operator)
    }

    async fn adjust_load(&mut self, operator_id: i64, delta: i64) -> Result<()> {
        self.execute(sql::ADJUST_LOAD, &[&operator_id, &delta])?;
        Ok(())
    }

    async fn source(&mut self, id: i64) -> Result<Option<Source>> {
        self.optional(sql::SOURCE_BY_ID, &[&id], read_source)
    }

    async fn source_for_share(&mut self, id: i64) -> Result<Option<Source>> {
        // The single writer already excludes every other write.
        self.optional(sql::SOURCE_BY_ID, &[&id], read_source)
    }

    async fn source_named(&mut self, name: &str) -> Result<Option<Source>> {
        self.optional(sql::SOURCE_BY_NAME, &[&name], read_source)
    }

    async fn insert_source(
        &mut self,
        name: &str,
        description: Option<&str>,
        created_at: DateTime<Utc>,
    ) -> Result<Source> {
        let created_at = timestamp_text(created_at);
        self.one(
            sql::INSERT_SOURCE,
            &[&name, &description, &created_at],
            read_source,
        )
    }

    async fn update_source(
        &mut self,
        id: i64,
        name: Option<&str>,
        description: Option<Option<&str>>,
    ) -> Result<Option<Source>> {
        let (set_description, new_description) = (description.is_some(), description.flatten());
        self.optional(
            sql::UPDATE_SOURCE,
            &[&id, &name, &set_description, &new_description],
            read_source,
        )
    }

    async fn retire_source(&mut self, id: i64, at: DateTime<Utc>) -> Result<bool> {
        Ok(self.execute(sql::RETIRE_SOURCE, &[&id, &timestamp_text(at)])? > 0)
    }

    async fn weight(&mut self, source_id: i64, operator_id: i64) -> Result<Option<OperatorWeight>> {
        self.optional(sql::WEIGHT, &[&source_id, &operator_id], read_weight)
    }

    async fn insert_weight(
        &mut self,
        source_id: i64,
        operator_id: i64,
        weight: f64,
    ) -> Result<OperatorWeight> {
        self.one(
            sql::INSERT_WEIGHT,
            &[&source_id, &operator_id, &weight],
            read_weight,
        )
    }

    async fn update_weight(
        &mut self,
        source_id: i64,
        operator_id: i64,
        weight: f64,
    ) -> Result<Option<OperatorWeight>> {
        self.optional(
            sql::UPDATE_WEIGHT,
            &[&source_id, &operator_id, &weight],
            read_weight,
        )
    }

    async fn delete_weight(&mut self, source_id: i64, operator_id: i64) -> Result<bool> {
        Ok(self.execute(sql::DELETE_WEIGHT, &[&source_id, &operator_id])? > 0)
    }

    async fn delete_weights_of_source(&mut self, source_id: i64) -> Result<()> {
        self.execute(sql::DELETE_WEIGHTS_OF_SOURCE, &[&source_id])?;
        Ok(())
    }

    async fn candidates(&mut self, source_id: i64) -> Result<Vec<Candidate>> {
        self.all(sql::CANDIDATES, &[&source_id], read_candidate)
    }

    async fn leads_matching(&mut self, identity: &LeadIdentity) -> Result<Vec<Lead>> {
        let phone = identity.phone.as_ref().map(|p| p.as_str());
        let email = identity.email.as_ref().map(|e| e.as_str());
        self.all(
            sql::LEADS_MATCHING,
            &[&identity.external_id, &phone, &email],
            read_lead,
        )
    }

    async fn insert_lead(
        &mut self,
        identity: &LeadIdentity,
        created_at: DateTime<Utc>,
    ) -> Result<Lead> {
        let phone = identity.phone.as_ref().map(|p| p.as_str());
        let email = identity.email.as_ref().map(|e| e.as_str());
        let created_at = timestamp_text(created_at);
        let parameters: [&dyn ToSql; 5] = [
            &identity.external_id,
            &phone,
            &email,
            &identity.name,
            &created_at,
        ];
        self.one(sql::INSERT_LEAD, &parameters, read_lead)
    }

    async fn fill_lead(&mut self, id: i64, fill: &LeadIdentity) -> Result<Lead> {
        let phone = fill.phone.as_ref().map(|p| p.as_str());
        let email = fill.email.as_ref().map(|e| e.as_str());
        self.one(
            sql::FILL_LEAD,
            &[&id, &fill.external_id, &phone, &email, &fill.name],
            read_lead,
        )
    }

    async fn insert_contact(
        &mut self,
        lead_id: i64,
        source_id: i64,
        operator_id: Option<i64>,
        message: Option<&str>,
        created_at: DateTime<Utc>,
        created_by_key_id: Option<i64>,
    ) -> Result<i64> {
        let created_at = timestamp_text(created_at);
        let parameters: [&dyn ToSql; 7] = [
            &lead_id,
            &source_id,
            &operator_id,
            &Status::ACTIVE,
            &message,
            &created_at,
            &created_by_key_id,
        ];
        self.one(sql::INSERT_CONTACT, &parameters, read_id)
    }

    async fn contact(&mut self, id: i64) -> Result<Option<Contact>> {
        let sql = format!("{} WHERE c.id = $1", sql::CONTACT_SELECT);
        let Some(mut contact) = self
            .optional(&sql, &[&id], read_contact)?
            .map(Contact::from)
        else {
            return Ok(None);
        };
        if contact.is_waiting() {
            let position = self.one(sql::QUEUE_POSITION, &[&contact.source_id, &id], read_id)?;
            contact.queue_position = Some(position);
        }
        Ok(Some(contact))
    }

    async fn contact_state_for_update(&mut self, id: i64) -> Result<Option<ContactState>> {
        // The single writer already excludes every other write.
        self.optional(sql::CONTACT_STATE, &[&id], read_state)
    }

    async fn set_contact_status(&mut self, id: i64, status: &str) -> Result<()> {
        self.execute(sql::SET_CONTACT_STATUS, &[&id, &status])?;
        Ok(())
    }

    async fn unassign_contacts_of(&mut self, operator_id: i64) -> Result<Vec<OperatorContact>> {
        self.all(
            sql::UNASSIGN_CONTACTS_OF,
            &[&operator_id],
            read_operator_contact,
        )
    }

    async fn count_contacts(
        &mut self,
        source_id: i64,
        operator_key: i64,
        status: &str,
        delta: i64,
    ) -> Result<i64> {
        self.one(
            sql::COUNT_CONTACTS,
            &[&source_id, &operator_key, &status, &delta],
            read_id,
        )
    }

    async fn move_counts_to_unassigned(&mut self, operator_id: i64) -> Result<()> {
        self.execute(sql::MERGE_COUNTS_INTO_UNASSIGNED, &[&operator_id])?;
        self.execute(sql::DELETE_COUNTS_OF_OPERATOR, &[&operator_id])?;
        Ok(())
    }

    async fn idempotent_request(
        &mut self,
        client: &str,
        key: &str,
    ) -> Result<Option<IdempotentRequest>> {
        self.optional(
            sql::IDEMPOTENT_REQUEST,
            &[&client, &key],
            read_idempotent_request,
        )
    }

    async fn forget_idempotent_request(&mut self, client: &str, key: &str) -> Result<()> {
        self.execute(sql::FORGET_IDEMPOTENT_REQUEST, &[&client, &key])?;
        Ok(())
    }

    async fn remember_idempotent_request(
        &mut self,
        client: &str,
        key: &str,
        fingerprint: &str,
        contact_id: i64,
        created_at: DateTime<Utc>,
    ) -> Result<()> {
        let created_at = timestamp_text(created_at);
        let parameters: [&dyn ToSql; 5] = [&client, &key, &fingerprint, &contact_id, &created_at];
        self.execute(sql::REMEMBER_IDEMPOTENT_REQUEST, &parameters)?;
        Ok(())
    }

    async fn waiting_contacts(&mut self, source_id: i64, limit: i64) -> Result<Vec<i64>> {
        self.all(sql::WAITING_CONTACTS, &[&source_id, &limit], read_id)
    }

    async fn lock_waiting_contact(&mut self, id: i64) -> Result<bool> {
        // The single writer already excludes every other write.
        Ok(self
            .optional(sql::LOCK_WAITING_CONTACT, &[&id], read_id)?
            .is_some())
    }

    async fn sources_of_operator(&mut self, operator_id: i64) -> Result<Vec<i64>> {
        self.all(sql::SOURCES_OF_OPERATOR, &[&operator_id], read_id)
    }

    async fn assign_contact(&mut self, id: i64, operator_id: Option<i64>) -> Result<()> {
        self.execute(sql::ASSIGN_CONTACT, &[&id, &operator_id])?;
        Ok(())
    }

    async fn insert_history(&mut self, change: &HistoryChange) -> Result<HistoryEntry> {
        let at = timestamp_text(change.at);
        let parameters: [&dyn ToSql; 9] = [
            &change.contact_id,
            &at,
            &change.event,
            &change.from_operator_id,
            &change.to_operator_id,
            &change.from_status,
            &change.to_status,
            &change.reason,
            &change.api_key_id,
        ];
        self.one(sql::INSERT_HISTORY, &parameters, read_history)
    }

    async fn webhook_subscriptions(&mut self) -> Result<Vec<(i64, String)>> {
        self.all(sql::WEBHOOK_SUBSCRIPTIONS, &[], read_subscription)
    }

    async fn insert_event(
        &mut self,
        event_type: &str,
        data: &str,
        created_at: DateTime<Utc>,
    ) -> Result<i64> {
        let created_at = timestamp_text(created_at);
        self.one(
            sql::INSERT_EVENT,
            &[&event_type, &data, &created_at],
            read_id,
        )
    }

    async fn insert_delivery(
        &mut self,
        webhook_id: i64,
        event_id: i64,
        due_at_ms: i64,
        created_at: DateTime<Utc>,
    ) -> Result<()> {
        let created_at = timestamp_text(created_at);
        self.execute(
            sql::INSERT_DELIVERY,
            &[&webhook_id, &event_id, &due_at_ms, &created_at],
        )?;
        Ok(())
    }

    async fn insert_webhook(
        &mut self,
        url: &str,
        events: &str,
        secret: &str,
        created_at: DateTime<Utc>,
    ) -> Result<WebhookRow> {
        let created_at = timestamp_text(created_at);
        self.one(
            sql::INSERT_WEBHOOK,
            &[&url, &events, &secret, &created_at],
            read_webhook,
        )
    }

    async fn delete_webhook(&mut self, id: i64) -> Result<bool> {
        Ok(self.execute(sql::DELETE_WEBHOOK, &[&id])? > 0)
    }

    async fn claim_deliveries(
        &mut self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<i64>> {
        self.all(
            sql::CLAIM_DELIVERIES_SQLITE,
            &[&now_ms, &lease_until_ms, &limit],
            read_id,
        )
    }

    async fn delivery_job(&mut self, id: i64) -> Result<Option<DeliveryJob>> {
        self.optional(sql::DELIVERY_JOB, &[&id], read_delivery_job)
    }

    async fn insert_attempt(
        &mut self,
        delivery_id: i64,
        attempt: i64,
        at: DateTime<Utc>,
        status_code: Option<i64>,
        error: Option<&str>,
        duration_ms: i64,
    ) -> Result<()> {
        let at = timestamp_text(at);
        let parameters: [&dyn ToSql; 6] = [
            &delivery_id,
            &attempt,
            &at,
            &status_code,
            &error,
            &duration_ms,
        ];
        self.execute(sql::INSERT_ATTEMPT, &parameters)?;
        Ok(())
    }

    async fn update_delivery(&mut self, delivery_id: i64, update: &DeliveryUpdate) -> Result<()> {
        let delivered_at = update.delivered_at.map(timestamp_text);
        let parameters: [&dyn ToSql; 7] = [
            &delivery_id,
            &update.state,
            &update.attempt_count,
            &update.due_at_ms,
            &update.last_status_code,
            &update.last_error,
            &delivered_at,
        ];
        self.execute(sql::UPDATE_DELIVERY, &parameters)?;
        Ok(())
    }

    async fn retry_delivery(
        &mut self,
        webhook_id: i64,
        delivery_id: i64,
        due_at_ms: i64,
    ) -> Result<bool> {
        let changed = self.execute(
            sql::RETRY_DELIVERY,
            &[&webhook_id, &delivery_id, &due_at_ms],
        )?;
        Ok(changed > 0)
    }

    async fn purge_idempotency_keys(&mut self, before: DateTime<Utc>) -> Result<()> {
        self.execute(sql::PURGE_IDEMPOTENCY_KEYS, &[&timestamp_text(before)])?;
        Ok(())
    }

    async fn purge_deliveries(&mut self, before: DateTime<Utc>) -> Result<()> {
        let before = timestamp_text(before);
        self.execute(sql::PURGE_DELIVERIES, &[&before])?;
        self.execute(sql::PURGE_EVENTS, &[&before])?;
        Ok(())
    }

    async fn insert_api_key(
        &mut self,
        name: &str,
        scope: &str,
        token_hash: &str,
        created_at: DateTime<Utc>,
    ) -> Result<ApiKey> {
        let created_at = timestamp_text(created_at);
        self.one(
            sql::INSERT_API_KEY,
            &[&name, &scope, &token_hash, &created_at],
            read_api_key,
        )
    }

    async fn revoke_api_key(
        &mut self,
        id: Option<i64>,
        name: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(self.execute(sql::REVOKE_API_KEY, &[&id, &name, &timestamp_text(at)])? > 0)
    }
}
