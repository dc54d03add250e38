//! The sqlx side of the store: a connection of either backend, the reads (on both backends) and the write
//! statements as PostgreSQL runs them. Each method runs one statement of [`sql`] on whichever connection it is
//! given; where the dialects differ, the two arms stand side by side.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, SqliteConnection};

use super::sql;
use super::tx::{
    ContactState, DeliveryJob, DeliveryUpdate, HistoryChange, IdempotentRequest, OperatorContact,
    WebhookRow, WriteTx,
};
use crate::domain::{Candidate, LeadIdentity, Status};
use crate::error::AppError;
use crate::model::{
    ApiKey, Contact, Delivery, DeliveryAttempt, HistoryEntry, Lead, NamedOperatorWeight, Operator,
    OperatorWeight, Source, Webhook,
};

/// A connection (or transaction) of either backend.
pub enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection of whichever backend `$conn` is.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Postgres($c) => $body,
        }
    };
}

type Result<T> = std::result::Result<T, AppError>;

/// A page of a list: `skip` rows passed over, at most `limit` returned.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub skip: i64,
    pub limit: i64,
}

/// The filters of `GET /contacts/`; absent ones do not filter.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub lead_id: Option<i64>,
    pub source_id: Option<i64>,
    pub operator_id: Option<i64>,
    pub status: Option<Status>,
    /// `Some(true)`: only contacts without an operator; `Some(false)`: only those with one.
    pub unassigned: Option<bool>,
}

/// The filters of `GET /leads/`, already normalised.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    pub external_id: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// Contacts of one (operator or "unassigned") on one source, from `contact_counts`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OperatorTally {
    /// 0 for unassigned contacts.
    pub operator_id: i64,
    pub operator_name: Option<String>,
    pub contacts: i64,
    pub active_contacts: i64,
}

/// Contacts of one operator on one source in one status, from `contact_counts`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SourceStatusTally {
    pub source_id: i64,
    pub source_name: String,
    pub status: String,
    pub contacts: i64,
}

/// A value bound to a dynamically built statement.
enum Bind {
    Int(i64),
    Text(String),
}

/// Appends ` AND <column> = $N` and records the value, so that list queries filter only on what was given.
struct Filters {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Filters {
    fn new() -> Self {
        Self {
            clauses: Vec::new(),
            binds: Vec::new(),
        }
    }

    fn equals(&mut self, column: &str, value: Option<Bind>) {
        if let Some(value) = value {
            self.binds.push(value);
            self.clauses
                .push(format!("{column} = ${}", self.binds.len()));
        }
    }

    fn raw(&mut self, clause: &str) {
        self.clauses.push(clause.to_owned());
    }

    /// The WHERE clause (empty when nothing filters), then ORDER BY and the page.
    fn finish(mut self, order_by: &str, page: Page) -> (String, Vec<Bind>) {
        let mut sql = String::new();
        if !self.clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.clauses.join(" AND "));
        }
        self.binds.push(Bind::Int(page.limit));
        self.binds.push(Bind::Int(page.skip));
        let n = self.binds.len();
        sql.push_str(&format!(
            " ORDER BY {order_by} LIMIT ${} OFFSET ${n}",
            n - 1
        ));
        (sql, self.binds)
    }
}

/// Binds a [`Filters`] list onto a query of either backend.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Int(value) => query.bind(*value),
                Bind::Text(value) => query.bind(value.as_str()),
            };
        }
        query
    }};
}

/// One row of [`sql::CONTACT_SELECT`]: a contact joined with its lead, source and operator.
#[derive(sqlx::FromRow)]
pub(super) struct ContactRow {
    pub(super) id: i64,
    pub(super) lead_id: i64,
    pub(super) source_id: i64,
    pub(super) operator_id: Option<i64>,
    pub(super) status: String,
    pub(super) message: Option<String>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) lead_external_id: Option<String>,
    pub(super) lead_phone: Option<String>,
    pub(super) lead_email: Option<String>,
    pub(super) lead_name: Option<String>,
    pub(super) lead_created_at: DateTime<Utc>,
    pub(super) source_name: String,
    pub(super) source_description: Option<String>,
    pub(super) source_created_at: DateTime<Utc>,
    pub(super) operator_name: Option<String>,
    pub(super) operator_is_active: Option<bool>,
    pub(super) operator_max_load: Option<i64>,
    pub(super) operator_active_load: Option<i64>,
    pub(super) operator_created_at: Option<DateTime<Utc>>,
}

impl From<ContactRow> for Contact {
    fn from(row: ContactRow) -> Self {
        let operator = match (row.operator_id, row.operator_name, row.operator_created_at) {
            (Some(id), Some(name), Some(created_at)) => Some(Operator {
                id,
                name,
                is_active: row.operator_is_active.unwrap_or(false),
                max_load: row.operator_max_load.unwrap_or(0),
                active_load: row.operator_active_load.unwrap_or(0),
                created_at,
            }),
            _ => None,
        };
        Contact {
            id: row.id,
            lead_id: row.lead_id,
            source_id: row.source_id,
            operator_id: row.operator_id,
            status: row.status,
            message: row.message,
            created_at: row.created_at,
            lead: Lead {
                id: row.lead_id,
                external_id: row.lead_external_id,
                phone: row.lead_phone,
                email: row.lead_email,
                name: row.lead_name,
                created_at: row.lead_created_at,
            },
            source: Source {
                id: row.source_id,
                name: row.source_name,
                description: row.source_description,
                created_at: row.source_created_at,
            },
            operator,
            queue_position: None,
        }
    }
}

/// A row of [`sql::DELIVERY_SELECT`].
#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    webhook_id: i64,
    event_id: i64,
    event_type: String,
    state: String,
    attempt_count: i64,
    due_at_ms: Option<i64>,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for Delivery {
    fn from(row: DeliveryRow) -> Self {
        let next_attempt_at = match row.state.as_str() {
            "pending" => row.due_at_ms.and_then(DateTime::from_timestamp_millis),
            _ => None,
        };
        Delivery {
            id: row.id,
            webhook_id: row.webhook_id,
            event_id: row.event_id,
            event_type: row.event_type,
            state: row.state,
            attempt_count: row.attempt_count,
            next_attempt_at,
            last_status_code: row.last_status_code,
            last_error: row.last_error,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
        }
    }
}

impl Conn<'_> {
    // ---- reads (both backends) ----

    pub async fn operators(&mut self, page: Page) -> Result<Vec<Operator>> {
        let sql = sql::OPERATORS_PAGE;
        Ok(
            on_conn!(self, c => sqlx::query_as(sql).bind(page.limit).bind(page.skip).fetch_all(&mut **c).await)?,
        )
    }

    /// The live key with this token hash (id, scope), and whether any live key exists.
    pub async fn authenticate(
        &mut self,
        token_hash: &str,
    ) -> Result<(Option<(i64, String)>, bool)> {
        let sql = sql::AUTHENTICATE;
        let (key_id, scope, keys_exist): (Option<i64>, Option<String>, bool) =
            on_conn!(self, c => sqlx::query_as(sql).bind(token_hash).fetch_one(&mut **c).await)?;
        Ok((key_id.zip(scope), keys_exist))
    }

    pub async fn api_keys(&mut self) -> Result<Vec<ApiKey>> {
        let sql = sql::API_KEYS;
        Ok(on_conn!(self, c => sqlx::query_as(sql).fetch_all(&mut **c).await)?)
    }

    /// The key that created the contact: `None` when there is no such contact, `Some(None)` for no key.
    pub async fn contact_creator(&mut self, id: i64) -> Result<Option<Option<i64>>> {
        let sql = sql::CONTACT_CREATOR;
        Ok(on_conn!(self, c => sqlx::query_scalar(sql).bind(id).fetch_optional(&mut **c).await)?)
    }

    /// Every operator's (id, active load, max_load).
    pub async fn operator_loads(&mut self) -> Result<Vec<(i64, i64, i64)>> {
        let sql = sql::OPERATOR_LOADS;
        Ok(on_conn!(self, c => sqlx::query_as(sql).fetch_all(&mut **c).await)?)
    }

    pub async fn sources(&mut self, page: Page) -> Result<Vec<Source>> {
        let sql = sql::SOURCES_PAGE;
        Ok(
            on_conn!(self, c => sqlx::query_as(sql).bind(page.limit).bind(page.skip).fetch_all(&mut **c).await)?,
        )
    }

    pub async fn weights_of_source(&mut self, source_id: i64) -> Result<Vec<NamedOperatorWeight>> {
        let sql = sql::WEIGHTS_OF_SOURCE;
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(source_id).fetch_all(&mut **c).await)?)
    }

    pub async fn lead(&mut self, id: i64) -> Result<Option<Lead>> {
        let sql = sql::LEAD_BY_ID;
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(id).fetch_optional(&mut **c).await)?)
    }

    pub async fn leads(&mut self, filter: &LeadFilter, page: Page) -> Result<Vec<Lead>> {
        let mut filters = Filters::new();
        filters.equals("external_id", filter.external_id.clone().map(Bind::Text));
        filters.equals("phone", filter.phone.clone().map(Bind::Text));
        filters.equals("email", filter.email.clone().map(Bind::Text));
        let (tail, binds) = filters.finish("id DESC", page);
        let sql =
            format!("SELECT id, external_id, phone, email, name, created_at FROM leads{tail}");
        Ok(on_conn!(self, c => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(&mut **c).await)?)
    }

    pub async fn contacts(&mut self, filter: &ContactFilter, page: Page) -> Result<Vec<Contact>> {
        let mut filters = Filters::new();
        filters.equals("c.lead_id", filter.lead_id.map(Bind::Int));
        filters.equals("c.source_id", filter.source_id.map(Bind::Int));
        filters.equals("c.operator_id", filter.operator_id.map(Bind::Int));
        filters.equals(
            "c.status",
            filter
                .status
                .as_ref()
                .map(|s| Bind::Text(s.as_str().to_owned())),
        );
        match filter.unassigned {
            Some(true) => filters.raw("c.operator_id IS NULL"),
            Some(false) => filters.raw("c.operator_id IS NOT NULL"),
            None => {}
        }
        let (tail, binds) = filters.finish("c.id DESC", page);
        let sql = format!("{}{tail}", sql::CONTACT_SELECT);
        let rows: Vec<ContactRow> =
            on_conn!(self, c => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(&mut **c).await)?;
        let mut contacts: Vec<Contact> = rows.into_iter().map(Contact::from).collect();
        self.fill_queue_positions(&mut contacts).await?;
        Ok(contacts)
    }

    /// Sets the queue position of the waiting contacts among `contacts`: per source, one count up to the
    /// oldest of them and one walk over the queue from there to the newest, rather than a count for each.
    async fn fill_queue_positions(&mut self, contacts: &mut [Contact]) -> Result<()> {
        let mut sources: Vec<i64> = contacts
            .iter()
            .filter(|c| c.is_waiting())
            .map(|c| c.source_id)
            .collect();
        sources.sort_unstable();
        sources.dedup();
        for source_id in sources {
            let waiting = || {
                contacts
                    .iter()
                    .filter(|c| c.is_waiting() && c.source_id == source_id)
            };
            let (Some(first), Some(last)) =
                (waiting().map(|c| c.id).min(), waiting().map(|c| c.id).max())
            else {
                continue;
            };
            let ahead: i64 = on_conn!(self, c => sqlx::query_scalar(sql::QUEUE_POSITION)
                .bind(source_id).bind(first - 1).fetch_one(&mut **c).await)?;
            let queue: Vec<i64> = on_conn!(self, c => sqlx::query_scalar(sql::WAITING_BETWEEN)
                .bind(source_id).bind(first).bind(last).fetch_all(&mut **c).await)?;
            for contact in contacts
                .iter_mut()
                .filter(|c| c.is_waiting() && c.source_id == source_id)
            {
                // A contact read before a concurrent change may be missing from the queue read after it.
                contact.queue_position = queue
                    .binary_search(&contact.id)
                    .ok()
                    .map(|index| ahead + index as i64 + 1);
            }
        }
        Ok(())
    }

    /// A page of the source's queue, oldest first, with their positions.
    pub async fn queue(&mut self, source_id: i64, page: Page) -> Result<Vec<Contact>> {
        let sql = format!("{}{}", sql::CONTACT_SELECT, sql::QUEUE_PAGE_WHERE);
        let rows: Vec<ContactRow> = on_conn!(self, c => sqlx::query_as(&sql)
            .bind(source_id).bind(page.limit).bind(page.skip).fetch_all(&mut **c).await)?;
        Ok(rows
            .into_iter()
            .zip(1..)
            .map(|(row, index)| Contact {
                queue_position: Some(page.skip.saturating_add(index)),
                ..Contact::from(row)
            })
            .collect())
    }

    /// The live sources with a waiting contact.
    pub async fn sources_with_waiting(&mut self) -> Result<Vec<i64>> {
        let sql = sql::SOURCES_WITH_WAITING;
        Ok(on_conn!(self, c => sqlx::query_scalar(sql).fetch_all(&mut **c).await)?)
    }

    pub async fn contact_exists(&mut self, id: i64) -> Result<bool> {
        let sql = sql::CONTACT_EXISTS;
        Ok(on_conn!(self, c => sqlx::query_scalar(sql).bind(id).fetch_one(&mut **c).await)?)
    }

    pub async fn history(&mut self, contact_id: i64, page: Page) -> Result<Vec<HistoryEntry>> {
        let sql = sql::HISTORY_OF_CONTACT;
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(contact_id).bind(page.limit).bind(page.skip).fetch_all(&mut **c).await)?)
    }

    pub async fn webhooks(&mut self) -> Result<Vec<Webhook>> {
        let sql = sql::WEBHOOKS;
        let rows: Vec<WebhookRow> =
            on_conn!(self, c => sqlx::query_as(sql).fetch_all(&mut **c).await)?;
        Ok(rows.into_iter().map(Webhook::from).collect())
    }

    pub async fn webhook(&mut self, id: i64) -> Result<Option<Webhook>> {
        let sql = sql::WEBHOOK_BY_ID;
        let row: Option<WebhookRow> =
            on_conn!(self, c => sqlx::query_as(sql).bind(id).fetch_optional(&mut **c).await)?;
        Ok(row.map(Webhook::from))
    }

    pub async fn webhooks_exist(&mut self) -> Result<bool> {
        let sql = sql::WEBHOOKS_EXIST;
        Ok(on_conn!(self, c => sqlx::query_scalar(sql).fetch_one(&mut **c).await)?)
    }

    /// The webhook's deliveries, newest first.
    pub async fn deliveries(&mut self, webhook_id: i64, page: Page) -> Result<Vec<Delivery>> {
        let sql = format!(
            "{} WHERE d.webhook_id = $1 ORDER BY d.id DESC LIMIT $2 OFFSET $3",
            sql::DELIVERY_SELECT
        );
        let rows: Vec<DeliveryRow> = on_conn!(self, c => sqlx::query_as(&sql)
            .bind(webhook_id).bind(page.limit).bind(page.skip).fetch_all(&mut **c).await)?;
        Ok(rows.into_iter().map(Delivery::from).collect())
    }

    pub async fn delivery(&mut self, webhook_id: i64, id: i64) -> Result<Option<Delivery>> {
        let sql = format!(
            "{} WHERE d.webhook_id = $1 AND d.id = $2",
            sql::DELIVERY_SELECT
        );
        let row: Option<DeliveryRow> = on_conn!(self, c => sqlx::query_as(&sql)
            .bind(webhook_id).bind(id).fetch_optional(&mut **c).await)?;
        Ok(row.map(Delivery::from))
    }

    pub async fn delivery_attempts(&mut self, delivery_id: i64) -> Result<Vec<DeliveryAttempt>> {
        let sql = sql::DELIVERY_ATTEMPTS;
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(delivery_id).fetch_all(&mut **c).await)?)
    }

    /// What sending the delivery takes (also read for its payload).
    pub async fn read_delivery_job(&mut self, id: i64) -> Result<Option<DeliveryJob>> {
        let sql = sql::DELIVERY_JOB;
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(id).fetch_optional(&mut **c).await)?)
    }

    /// Per operator (0 = unassigned) of the source: contacts in all, and in status `active`.
    pub async fn source_tallies(&mut self, source_id: i64) -> Result<Vec<OperatorTally>> {
        let sql = sql::SOURCE_TALLIES;
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(source_id).fetch_all(&mut **c).await)?)
    }

    /// The operator's contacts per source and status.
    pub async fn operator_tallies(&mut self, operator_id: i64) -> Result<Vec<SourceStatusTally>> {
        let sql = sql::OPERATOR_TALLIES;
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(operator_id).fetch_all(&mut **c).await)?)
    }
}

impl WriteTx for Conn<'_> {
    async fn operator(&mut self, id: i64) -> Result<Option<Operator>> {
        let sql = sql::OPERATOR_BY_ID;
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(id).fetch_optional(&mut **c).await)?)
    }

    async fn operator_for_update(&mut self, id: i64) -> Result<Option<Operator>> {
        let sql = match self {
            Conn::Sqlite(_) => sql::OPERATOR_BY_ID,
            Conn::Postgres(_) => sql::OPERATOR_BY_ID_FOR_UPDATE_POSTGRES,
        };
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(id).fetch_optional(&mut **c).await)?)
    }

    async fn insert_operator(
        &mut self,
        name: &str,
        is_active: bool,
        max_load: i64,
        created_at: DateTime<Utc>,
    ) -> Result<Operator> {
        let sql = sql::INSERT_OPERATOR;
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(name).bind(is_active).bind(max_load).bind(created_at)
            .fetch_one(&mut **c).await)?)
    }

    async fn update_operator(
        &mut self,
        id: i64,
        name: Option<&str>,
        is_active: Option<bool>,
        max_load: Option<i64>,
    ) -> Result<Option<Operator>> {
        let sql = sql::UPDATE_OPERATOR;
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(id).bind(name).bind(is_active).bind(max_load)
            .fetch_optional(&mut **c).await)?)
    }

    async fn delete_operator(&mut self, id: i64) -> Result<bool> {
        let sql = sql::DELETE_OPERATOR;
        let done =
            on_conn!(self, c => sqlx::query(sql).bind(id).execute(&mut **c).await?.rows_affected());
        Ok(done > 0)
    }

    async fn claim_capacity(&mut self, operator_id: i64) -> Result<Option<Operator>> {
        let sql = sql::CLAIM_CAPACITY;
        Ok(
            on_conn!(self, c => sqlx::query_as(sql).bind(operator_id).fetch_optional(&mut **c).await)?,
        )
    }

    async fn adjust_load(&mut self, operator_id: i64, delta: i64) -> Result<()> {
        let sql = sql::ADJUST_LOAD;
        on_conn!(self, c => sqlx::query(sql).bind(operator_id).bind(delta).execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    async fn source(&mut self, id: i64) -> Result<Option<Source>> {
        let sql = sql::SOURCE_BY_ID;
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(id).fetch_optional(&mut **c).await)?)
    }

    async fn source_for_share(&mut self, id: i64) -> Result<Option<Source>> {
        let sql = match self {
            Conn::Sqlite(_) => sql::SOURCE_BY_ID,
            Conn::Postgres(_) => sql::SOURCE_BY_ID_FOR_SHARE_POSTGRES,
        };
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(id).fetch_optional(&mut **c).await)?)
    }

    async fn source_named(&mut self, name: &str) -> Result<Option<Source>> {
        let sql = sql::SOURCE_BY_NAME;
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(name).fetch_optional(&mut **c).await)?)
    }

    async fn insert_source(
        &mut self,
        name: &str,
        description: Option<&str>,
        created_at: DateTime<Utc>,
    ) -> Result<Source> {
        let sql = sql::INSERT_SOURCE;
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(name).bind(description).bind(created_at)
            .fetch_one(&mut **c).await)?)
    }

    async fn update_source(
        &mut self,
        id: i64,
        name: Option<&str>,
        description: Option<Option<&str>>,
    ) -> Result<Option<Source>> {
        let sql = sql::UPDATE_SOURCE;
        let (set_description, new_description) = (description.is_some(), description.flatten());
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(id).bind(name).bind(set_description).bind(new_description)
            .fetch_optional(&mut **c).await)?)
    }

    async fn retire_source(&mut self, id: i64, at: DateTime<Utc>) -> Result<bool> {
        let sql = sql::RETIRE_SOURCE;
        let done = on_conn!(self, c => sqlx::query(sql).bind(id).bind(at).execute(&mut **c).await?.rows_affected());
        Ok(done > 0)
    }

    async fn weight(&mut self, source_id: i64, operator_id: i64) -> Result<Option<OperatorWeight>> {
        let sql = sql::WEIGHT;
        Ok(
            on_conn!(self, c => sqlx::query_as(sql).bind(source_id).bind(operator_id).fetch_optional(&mut **c).await)?,
        )
    }

    async fn insert_weight(
        &mut self,
        source_id: i64,
        operator_id: i64,
        weight: f64,
    ) -> Result<OperatorWeight> {
        let sql = sql::INSERT_WEIGHT;
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(source_id).bind(operator_id).bind(weight)
            .fetch_one(&mut **c).await)?)
    }

    async fn update_weight(
        &mut self,
        source_id: i64,
        operator_id: i64,
        weight: f64,
    ) -> Result<Option<OperatorWeight>> {
        let sql = sql::UPDATE_WEIGHT;
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(source_id).bind(operator_id).bind(weight)
            .fetch_optional(&mut **c).await)?)
    }

    async fn delete_weight(&mut self, source_id: i64, operator_id: i64) -> Result<bool> {
        let sql = sql::DELETE_WEIGHT;
        let done = on_conn!(self, c => sqlx::query(sql).bind(source_id).bind(operator_id).execute(&mut **c).await?.rows_affected());
        Ok(done > 0)
    }

    async fn delete_weights_of_source(&mut self, source_id: i64) -> Result<()> {
        let sql = sql::DELETE_WEIGHTS_OF_SOURCE;
        on_conn!(self, c => sqlx::query(sql).bind(source_id).execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    async fn candidates(&mut self, source_id: i64) -> Result<Vec<Candidate>> {
        let sql = sql::CANDIDATES;
        let rows: Vec<(i64, f64, i64)> =
            on_conn!(self, c => sqlx::query_as(sql).bind(source_id).fetch_all(&mut **c).await)?;
        Ok(rows
            .into_iter()
            .map(|(operator_id, weight, free_slots)| Candidate {
                operator_id,
                weight,
                free_slots,
            })
            .collect())
    }

    async fn leads_matching(&mut self, identity: &LeadIdentity) -> Result<Vec<Lead>> {
        let sql = sql::LEADS_MATCHING;
        let external_id = identity.external_id.as_deref();
        let phone = identity.phone.as_ref().map(|p| p.as_str());
        let email = identity.email.as_ref().map(|e| e.as_str());
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(external_id).bind(phone).bind(email)
            .fetch_all(&mut **c).await)?)
    }

    async fn insert_lead(
        &mut self,
        identity: &LeadIdentity,
        created_at: DateTime<Utc>,
    ) -> Result<Lead> {
        let sql = sql::INSERT_LEAD;
        let phone = identity.phone.as_ref().map(|p| p.as_str());
        let email = identity.email.as_ref().map(|e| e.as_str());
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(identity.external_id.as_deref()).bind(phone).bind(email)
            .bind(identity.name.as_deref()).bind(created_at)
            .fetch_one(&mut **c).await)?)
    }

    async fn fill_lead(&mut self, id: i64, fill: &LeadIdentity) -> Result<Lead> {
        let sql = sql::FILL_LEAD;
        let phone = fill.phone.as_ref().map(|p| p.as_str());
        let email = fill.email.as_ref().map(|e| e.as_str());
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(id).bind(fill.external_id.as_deref()).bind(phone).bind(email).bind(fill.name.as_deref())
            .fetch_one(&mut **c).await)?)
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
        let sql = sql::INSERT_CONTACT;
        Ok(on_conn!(self, c => sqlx::query_scalar(sql)
            .bind(lead_id).bind(source_id).bind(operator_id).bind(Status::ACTIVE).bind(message).bind(created_at)
            .bind(created_by_key_id)
            .fetch_one(&mut **c).await)?)
    }

    async fn contact(&mut self, id: i64) -> Result<Option<Contact>> {
        let sql = format!("{} WHERE c.id = $1", sql::CONTACT_SELECT);
        let row: Option<ContactRow> =
            on_conn!(self, c => sqlx::query_as(&sql).bind(id).fetch_optional(&mut **c).await)?;
        let Some(mut contact) = row.map(Contact::from) else {
            return Ok(None);
        };
        if contact.is_waiting() {
            let sql = sql::QUEUE_POSITION;
            let position: i64 = on_conn!(self, c => sqlx::query_scalar(sql)
                .bind(contact.source_id).bind(id).fetch_one(&mut **c).await)?;
            contact.queue_position = Some(position);
        }
        Ok(Some(contact))
    }

    async fn contact_state_for_update(&mut self, id: i64) -> Result<Option<ContactState>> {
        let sql = match self {
            Conn::Sqlite(_) => sql::CONTACT_STATE,
            Conn::Postgres(_) => sql::CONTACT_STATE_FOR_UPDATE_POSTGRES,
        };
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(id).fetch_optional(&mut **c).await)?)
    }

    async fn set_contact_status(&mut self, id: i64, status: &str) -> Result<()> {
        let sql = sql::SET_CONTACT_STATUS;
        on_conn!(self, c => sqlx::query(sql).bind(id).bind(status).execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    async fn unassign_contacts_of(&mut self, operator_id: i64) -> Result<Vec<OperatorContact>> {
        let sql = sql::UNASSIGN_CONTACTS_OF;
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(operator_id).fetch_all(&mut **c).await)?)
    }

    async fn count_contacts(
        &mut self,
        source_id: i64,
        operator_key: i64,
        status: &str,
        delta: i64,
    ) -> Result<i64> {
        let sql = sql::COUNT_CONTACTS;
        Ok(on_conn!(self, c => sqlx::query_scalar(sql)
            .bind(source_id).bind(operator_key).bind(status).bind(delta)
            .fetch_one(&mut **c).await)?)
    }

    async fn move_counts_to_unassigned(&mut self, operator_id: i64) -> Result<()> {
        on_conn!(self, c => {
            sqlx::query(sql::MERGE_COUNTS_INTO_UNASSIGNED).bind(operator_id).execute(&mut **c).await?;
            sqlx::query(sql::DELETE_COUNTS_OF_OPERATOR).bind(operator_id).execute(&mut **c).await.map(drop)
        })?;
        Ok(())
    }

    async fn idempotent_request(
        &mut self,
        client: &str,
        key: &str,
    ) -> Result<Option<IdempotentRequest>> {
        let sql = sql::IDEMPOTENT_REQUEST;
        Ok(
            on_conn!(self, c => sqlx::query_as(sql).bind(client).bind(key).fetch_optional(&mut **c).await)?,
        )
    }

    async fn forget_idempotent_request(&mut self, client: &str, key: &str) -> Result<()> {
        let sql = sql::FORGET_IDEMPOTENT_REQUEST;
        on_conn!(self, c => sqlx::query(sql).bind(client).bind(key).execute(&mut **c).await.map(drop))?;
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
        let sql = sql::REMEMBER_IDEMPOTENT_REQUEST;
        on_conn!(self, c => sqlx::query(sql)
            .bind(client).bind(key).bind(fingerprint).bind(contact_id).bind(created_at)
            .execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    async fn waiting_contacts(&mut self, source_id: i64, limit: i64) -> Result<Vec<i64>> {
        let sql = sql::WAITING_CONTACTS;
        Ok(on_conn!(self, c => sqlx::query_scalar(sql)
            .bind(source_id).bind(limit).fetch_all(&mut **c).await)?)
    }

    async fn lock_waiting_contact(&mut self, id: i64) -> Result<bool> {
        let sql = match self {
            Conn::Sqlite(_) => sql::LOCK_WAITING_CONTACT,
            Conn::Postgres(_) => sql::LOCK_WAITING_CONTACT_POSTGRES,
        };
        let found: Option<i64> =
            on_conn!(self, c => sqlx::query_scalar(sql).bind(id).fetch_optional(&mut **c).await)?;
        Ok(found.is_some())
    }

    async fn sources_of_operator(&mut self, operator_id: i64) -> Result<Vec<i64>> {
        let sql = sql::SOURCES_OF_OPERATOR;
        Ok(
            on_conn!(self, c => sqlx::query_scalar(sql).bind(operator_id).fetch_all(&mut **c).await)?,
        )
    }

    async fn assign_contact(&mut self, id: i64, operator_id: Option<i64>) -> Result<()> {
        let sql = sql::ASSIGN_CONTACT;
        on_conn!(self, c => sqlx::query(sql).bind(id).bind(operator_id).execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    async fn insert_history(&mut self, change: &HistoryChange) -> Result<HistoryEntry> {
        let sql = sql::INSERT_HISTORY;
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(change.contact_id).bind(change.at).bind(change.event)
            .bind(change.from_operator_id).bind(change.to_operator_id)
            .bind(change.from_status.as_deref()).bind(change.to_status.as_str())
            .bind(change.reason).bind(change.api_key_id)
            .fetch_one(&mut **c).await)?)
    }

    async fn webhook_subscriptions(&mut self) -> Result<Vec<(i64, String)>> {
        let sql = sql::WEBHOOK_SUBSCRIPTIONS;
        Ok(on_conn!(self, c => sqlx::query_as(sql).fetch_all(&mut **c).await)?)
    }

    async fn insert_event(
        &mut self,
        event_type: &str,
        data: &str,
        created_at: DateTime<Utc>,
    ) -> Result<i64> {
        let sql = sql::INSERT_EVENT;
        Ok(on_conn!(self, c => sqlx::query_scalar(sql)
            .bind(event_type).bind(data).bind(created_at).fetch_one(&mut **c).await)?)
    }

    async fn insert_delivery(
        &mut self,
        webhook_id: i64,
        event_id: i64,
        due_at_ms: i64,
        created_at: DateTime<Utc>,
    ) -> Result<()> {
        let sql = sql::INSERT_DELIVERY;
        on_conn!(self, c => sqlx::query(sql)
            .bind(webhook_id).bind(event_id).bind(due_at_ms).bind(created_at)
            .execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    async fn insert_webhook(
        &mut self,
        url: &str,
        events: &str,
        secret: &str,
        created_at: DateTime<Utc>,
    ) -> Result<WebhookRow> {
        let sql = sql::INSERT_WEBHOOK;
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(url).bind(events).bind(secret).bind(created_at)
            .fetch_one(&mut **c).await)?)
    }

    async fn delete_webhook(&mut self, id: i64) -> Result<bool> {
        let sql = sql::DELETE_WEBHOOK;
        let done =
            on_conn!(self, c => sqlx::query(sql).bind(id).execute(&mut **c).await?.rows_affected());
        Ok(done > 0)
    }

    async fn claim_deliveries(
        &mut self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: i64,
    ) -> Result<Vec<i64>> {
        let sql = match self {
            Conn::Sqlite(_) => sql::CLAIM_DELIVERIES_SQLITE,
            Conn::Postgres(_) => sql::CLAIM_DELIVERIES_POSTGRES,
        };
        Ok(on_conn!(self, c => sqlx::query_scalar(sql)
            .bind(now_ms).bind(lease_until_ms).bind(limit).fetch_all(&mut **c).await)?)
    }

    async fn delivery_job(&mut self, id: i64) -> Result<Option<DeliveryJob>> {
        self.read_delivery_job(id).await
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
        let sql = sql::INSERT_ATTEMPT;
        on_conn!(self, c => sqlx::query(sql)
            .bind(delivery_id).bind(attempt).bind(at).bind(status_code).bind(error).bind(duration_ms)
            .execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    async fn update_delivery(&mut self, delivery_id: i64, update: &DeliveryUpdate) -> Result<()> {
        let sql = sql::UPDATE_DELIVERY;
        on_conn!(self, c => sqlx::query(sql)
            .bind(delivery_id).bind(update.state).bind(update.attempt_count).bind(update.due_at_ms)
            .bind(update.last_status_code).bind(update.last_error.as_deref()).bind(update.delivered_at)
            .execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    async fn retry_delivery(
        &mut self,
        webhook_id: i64,
        delivery_id: i64,
        due_at_ms: i64,
    ) -> Result<bool> {
        let sql = sql::RETRY_DELIVERY;
        let done = on_conn!(self, c => sqlx::query(sql)
            .bind(webhook_id).bind(delivery_id).bind(due_at_ms)
            .execute(&mut **c).await?.rows_affected());
        Ok(done > 0)
    }

    async fn purge_idempotency_keys(&mut self, before: DateTime<Utc>) -> Result<()> {
        let sql = sql::PURGE_IDEMPOTENCY_KEYS;
        on_conn!(self, c => sqlx::query(sql).bind(before).execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    async fn purge_deliveries(&mut self, before: DateTime<Utc>) -> Result<()> {
        on_conn!(self, c => {
            sqlx::query(sql::PURGE_DELIVERIES).bind(before).execute(&mut **c).await?;
            sqlx::query(sql::PURGE_EVENTS).bind(before).execute(&mut **c).await.map(drop)
        })?;
        Ok(())
    }

    async fn insert_api_key(
        &mut self,
        name: &str,
        scope: &str,
        token_hash: &str,
        created_at: DateTime<Utc>,
    ) -> Result<ApiKey> {
        let sql = sql::INSERT_API_KEY;
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(name).bind(scope).bind(token_hash).bind(created_at)
            .fetch_one(&mut **c).await)?)
    }

    async fn revoke_api_key(
        &mut self,
        id: Option<i64>,
        name: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let sql = sql::REVOKE_API_KEY;
        let done = on_conn!(self, c => sqlx::query(sql).bind(id).bind(name).bind(at).execute(&mut **c).await?.rows_affected());
        Ok(done > 0)
    }
}
