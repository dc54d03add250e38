//! Every statement leadrouter runs, written once. Both SQLite and PostgreSQL accept `$N` placeholders and the
//! SQL below, so each method is one statement run on whichever connection it is given; where the dialects
//! differ, the two arms stand side by side.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, SqliteConnection};

use crate::domain::{Candidate, LeadIdentity, Status};
use crate::error::AppError;
use crate::model::{Contact, Lead, NamedOperatorWeight, Operator, OperatorWeight, Source};

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

/// `operator_id` as `contact_counts` keys it: 0 for unassigned contacts.
pub fn count_key(operator_id: Option<i64>) -> i64 {
    operator_id.unwrap_or(0)
}

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

/// What a status change needs to know about a contact.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactState {
    pub source_id: i64,
    pub operator_id: Option<i64>,
    pub status: String,
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

const CONTACT_SELECT: &str = "SELECT c.id, c.lead_id, c.source_id, c.operator_id, c.status, c.message, \
     c.created_at, l.external_id AS lead_external_id, l.phone AS lead_phone, l.email AS lead_email, \
     l.name AS lead_name, l.created_at AS lead_created_at, s.name AS source_name, \
     s.description AS source_description, s.created_at AS source_created_at, o.name AS operator_name, \
     o.is_active AS operator_is_active, o.max_load AS operator_max_load, \
     o.active_load AS operator_active_load, o.created_at AS operator_created_at \
     FROM contacts c JOIN leads l ON l.id = c.lead_id JOIN sources s ON s.id = c.source_id \
     LEFT JOIN operators o ON o.id = c.operator_id";

/// One row of [`CONTACT_SELECT`]: a contact joined with its lead, source and operator.
#[derive(sqlx::FromRow)]
struct ContactRow {
    id: i64,
    lead_id: i64,
    source_id: i64,
    operator_id: Option<i64>,
    status: String,
    message: Option<String>,
    created_at: DateTime<Utc>,
    lead_external_id: Option<String>,
    lead_phone: Option<String>,
    lead_email: Option<String>,
    lead_name: Option<String>,
    lead_created_at: DateTime<Utc>,
    source_name: String,
    source_description: Option<String>,
    source_created_at: DateTime<Utc>,
    operator_name: Option<String>,
    operator_is_active: Option<bool>,
    operator_max_load: Option<i64>,
    operator_active_load: Option<i64>,
    operator_created_at: Option<DateTime<Utc>>,
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
        }
    }
}

const OPERATOR_COLUMNS: &str = "id, name, is_active, max_load, active_load, created_at";
const SOURCE_COLUMNS: &str = "id, name, description, created_at";
const LEAD_COLUMNS: &str = "id, external_id, phone, email, name, created_at";

impl Conn<'_> {
    // ---- operators ----

    pub async fn operators(&mut self, page: Page) -> Result<Vec<Operator>> {
        let sql =
            format!("SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY id LIMIT $1 OFFSET $2");
        Ok(
            on_conn!(self, c => sqlx::query_as(&sql).bind(page.limit).bind(page.skip).fetch_all(&mut **c).await)?,
        )
    }

    pub async fn operator(&mut self, id: i64) -> Result<Option<Operator>> {
        let sql = format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1");
        Ok(on_conn!(self, c => sqlx::query_as(&sql).bind(id).fetch_optional(&mut **c).await)?)
    }

    /// The operator's row, locked until the transaction ends where the database can lock rows.
    pub async fn operator_for_update(&mut self, id: i64) -> Result<Option<Operator>> {
        Ok(match self {
            // The single writer already excludes every other write.
            Conn::Sqlite(_) => return self.operator(id).await,
            Conn::Postgres(c) => {
                let sql =
                    format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1 FOR UPDATE");
                sqlx::query_as(&sql)
                    .bind(id)
                    .fetch_optional(&mut **c)
                    .await?
            }
        })
    }

    pub async fn insert_operator(
        &mut self,
        name: &str,
        is_active: bool,
        max_load: i64,
        created_at: DateTime<Utc>,
    ) -> Result<Operator> {
        let sql = format!(
            "INSERT INTO operators (name, is_active, max_load, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING {OPERATOR_COLUMNS}"
        );
        Ok(on_conn!(self, c => sqlx::query_as(&sql)
            .bind(name).bind(is_active).bind(max_load).bind(created_at)
            .fetch_one(&mut **c).await)?)
    }

    pub async fn update_operator(
        &mut self,
        id: i64,
        name: Option<&str>,
        is_active: Option<bool>,
        max_load: Option<i64>,
    ) -> Result<Option<Operator>> {
        let sql = format!(
            "UPDATE operators SET name = COALESCE($2, name), is_active = COALESCE($3, is_active), \
             max_load = COALESCE($4, max_load) WHERE id = $1 RETURNING {OPERATOR_COLUMNS}"
        );
        Ok(on_conn!(self, c => sqlx::query_as(&sql)
            .bind(id).bind(name).bind(is_active).bind(max_load)
            .fetch_optional(&mut **c).await)?)
    }

    pub async fn delete_operator(&mut self, id: i64) -> Result<bool> {
        let sql = "DELETE FROM operators WHERE id = $1";
        let done =
            on_conn!(self, c => sqlx::query(sql).bind(id).execute(&mut **c).await?.rows_affected());
        Ok(done > 0)
    }

    /// Takes one unit of the operator's capacity if, as committed right now, the operator is active and below
    /// max_load. This conditional update is what keeps max_load exact under concurrency, across processes too:
    /// PostgreSQL re-checks the condition on the latest row version after waiting for a concurrent writer.
    pub async fn claim_capacity(&mut self, operator_id: i64) -> Result<Option<Operator>> {
        let sql = format!(
            "UPDATE operators SET active_load = active_load + 1 \
             WHERE id = $1 AND is_active AND active_load < max_load RETURNING {OPERATOR_COLUMNS}"
        );
        Ok(
            on_conn!(self, c => sqlx::query_as(&sql).bind(operator_id).fetch_optional(&mut **c).await)?,
        )
    }

    /// Changes the operator's active load by `delta` without any capacity check (a contact closed or reopened).
    pub async fn adjust_load(&mut self, operator_id: i64, delta: i64) -> Result<()> {
        let sql = "UPDATE operators SET active_load = MAX(active_load + $2, 0) WHERE id = $1";
        match self {
            Conn::Sqlite(c) => {
                sqlx::query(sql)
                    .bind(operator_id)
                    .bind(delta)
                    .execute(&mut **c)
                    .await?;
            }
            Conn::Postgres(c) => {
                sqlx::query("UPDATE operators SET active_load = GREATEST(active_load + $2, 0) WHERE id = $1")
                    .bind(operator_id)
                    .bind(delta)
                    .execute(&mut **c)
                    .await?;
            }
        }
        Ok(())
    }

    // ---- sources and weights ----

    pub async fn sources(&mut self, page: Page) -> Result<Vec<Source>> {
        let sql = format!(
            "SELECT {SOURCE_COLUMNS} FROM sources WHERE deleted_at IS NULL ORDER BY id LIMIT $1 OFFSET $2"
        );
        Ok(
            on_conn!(self, c => sqlx::query_as(&sql).bind(page.limit).bind(page.skip).fetch_all(&mut **c).await)?,
        )
    }

    /// A source that has not been deleted.
    pub async fn source(&mut self, id: i64) -> Result<Option<Source>> {
        let sql =
            format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE id = $1 AND deleted_at IS NULL");
        Ok(on_conn!(self, c => sqlx::query_as(&sql).bind(id).fetch_optional(&mut **c).await)?)
    }

    pub async fn source_named(&mut self, name: &str) -> Result<Option<Source>> {
        let sql =
            format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE name = $1 AND deleted_at IS NULL");
        Ok(on_conn!(self, c => sqlx::query_as(&sql).bind(name).fetch_optional(&mut **c).await)?)
    }

    pub async fn insert_source(
        &mut self,
        name: &str,
        description: Option<&str>,
        created_at: DateTime<Utc>,
    ) -> Result<Source> {
        let sql = format!(
            "INSERT INTO sources (name, description, created_at) VALUES ($1, $2, $3) RETURNING {SOURCE_COLUMNS}"
        );
        Ok(on_conn!(self, c => sqlx::query_as(&sql)
            .bind(name).bind(description).bind(created_at)
            .fetch_one(&mut **c).await)?)
    }

    /// `description`: `None` keeps it, `Some(None)` clears it.
    pub async fn update_source(
        &mut self,
        id: i64,
        name: Option<&str>,
        description: Option<Option<&str>>,
    ) -> Result<Option<Source>> {
        let sql = format!(
            "UPDATE sources SET name = COALESCE($2, name), \
             description = CASE WHEN $3 THEN $4 ELSE description END \
             WHERE id = $1 AND deleted_at IS NULL RETURNING {SOURCE_COLUMNS}"
        );
        let (set_description, new_description) = (description.is_some(), description.flatten());
        Ok(on_conn!(self, c => sqlx::query_as(&sql)
            .bind(id).bind(name).bind(set_description).bind(new_description)
            .fetch_optional(&mut **c).await)?)
    }

    /// Marks the source deleted; its contacts keep pointing at it.
    pub async fn retire_source(&mut self, id: i64, at: DateTime<Utc>) -> Result<bool> {
        let sql = "UPDATE sources SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL";
        let done = on_conn!(self, c => sqlx::query(sql).bind(id).bind(at).execute(&mut **c).await?.rows_affected());
        Ok(done > 0)
    }

    pub async fn weights_of_source(&mut self, source_id: i64) -> Result<Vec<NamedOperatorWeight>> {
        let sql = "SELECT w.id, w.source_id, w.operator_id, w.weight, o.name AS operator_name \
                   FROM source_operator_weights w JOIN operators o ON o.id = w.operator_id \
                   WHERE w.source_id = $1 ORDER BY w.operator_id";
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(source_id).fetch_all(&mut **c).await)?)
    }

    pub async fn weight(
        &mut self,
        source_id: i64,
        operator_id: i64,
    ) -> Result<Option<OperatorWeight>> {
        let sql = "SELECT id, source_id, operator_id, weight FROM source_operator_weights \
                   WHERE source_id = $1 AND operator_id = $2";
        Ok(
            on_conn!(self, c => sqlx::query_as(sql).bind(source_id).bind(operator_id).fetch_optional(&mut **c).await)?,
        )
    }

    pub async fn insert_weight(
        &mut self,
        source_id: i64,
        operator_id: i64,
        weight: f64,
    ) -> Result<OperatorWeight> {
        let sql = "INSERT INTO source_operator_weights (source_id, operator_id, weight) VALUES ($1, $2, $3) \
                   RETURNING id, source_id, operator_id, weight";
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(source_id).bind(operator_id).bind(weight)
            .fetch_one(&mut **c).await)?)
    }

    pub async fn update_weight(
        &mut self,
        source_id: i64,
        operator_id: i64,
        weight: f64,
    ) -> Result<Option<OperatorWeight>> {
        let sql = "UPDATE source_operator_weights SET weight = $3 WHERE source_id = $1 AND operator_id = $2 \
                   RETURNING id, source_id, operator_id, weight";
        Ok(on_conn!(self, c => sqlx::query_as(sql)
            .bind(source_id).bind(operator_id).bind(weight)
            .fetch_optional(&mut **c).await)?)
    }

    pub async fn delete_weight(&mut self, source_id: i64, operator_id: i64) -> Result<bool> {
        let sql = "DELETE FROM source_operator_weights WHERE source_id = $1 AND operator_id = $2";
        let done = on_conn!(self, c => sqlx::query(sql).bind(source_id).bind(operator_id).execute(&mut **c).await?.rows_affected());
        Ok(done > 0)
    }

    pub async fn delete_weights_of_source(&mut self, source_id: i64) -> Result<()> {
        let sql = "DELETE FROM source_operator_weights WHERE source_id = $1";
        on_conn!(self, c => sqlx::query(sql).bind(source_id).execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    /// The operators that may take a contact of the source now: linked, active, below max_load.
    pub async fn candidates(&mut self, source_id: i64) -> Result<Vec<Candidate>> {
        let sql = "SELECT w.operator_id, w.weight FROM source_operator_weights w \
                   JOIN operators o ON o.id = w.operator_id \
                   WHERE w.source_id = $1 AND o.is_active AND o.active_load < o.max_load \
                   ORDER BY w.operator_id";
        let rows: Vec<(i64, f64)> =
            on_conn!(self, c => sqlx::query_as(sql).bind(source_id).fetch_all(&mut **c).await)?;
        Ok(rows
            .into_iter()
            .map(|(operator_id, weight)| Candidate {
                operator_id,
                weight,
            })
            .collect())
    }

    // ---- leads ----

    /// Every lead that holds any of the identity's identifiers: at most three, one per identifier.
    pub async fn leads_matching(&mut self, identity: &LeadIdentity) -> Result<Vec<Lead>> {
        let sql = format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE external_id = $1 OR phone = $2 OR email = $3 ORDER BY id"
        );
        let external_id = identity.external_id.as_deref();
        let phone = identity.phone.as_ref().map(|p| p.as_str());
        let email = identity.email.as_ref().map(|e| e.as_str());
        Ok(on_conn!(self, c => sqlx::query_as(&sql)
            .bind(external_id).bind(phone).bind(email)
            .fetch_all(&mut **c).await)?)
    }

    pub async fn insert_lead(
        &mut self,
        identity: &LeadIdentity,
        created_at: DateTime<Utc>,
    ) -> Result<Lead> {
        let sql = format!(
            "INSERT INTO leads (external_id, phone, email, name, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING {LEAD_COLUMNS}"
        );
        let phone = identity.phone.as_ref().map(|p| p.as_str());
        let email = identity.email.as_ref().map(|e| e.as_str());
        Ok(on_conn!(self, c => sqlx::query_as(&sql)
            .bind(identity.external_id.as_deref()).bind(phone).bind(email)
            .bind(identity.name.as_deref()).bind(created_at)
            .fetch_one(&mut **c).await)?)
    }

    /// Sets the lead's empty fields to the given values; fields it already has stay as they are.
    pub async fn fill_lead(&mut self, id: i64, fill: &LeadIdentity) -> Result<Lead> {
        let sql = format!(
            "UPDATE leads SET external_id = COALESCE(external_id, $2), phone = COALESCE(phone, $3), \
             email = COALESCE(email, $4), name = COALESCE(name, $5) WHERE id = $1 RETURNING {LEAD_COLUMNS}"
        );
        let phone = fill.phone.as_ref().map(|p| p.as_str());
        let email = fill.email.as_ref().map(|e| e.as_str());
        Ok(on_conn!(self, c => sqlx::query_as(&sql)
            .bind(id).bind(fill.external_id.as_deref()).bind(phone).bind(email).bind(fill.name.as_deref())
            .fetch_one(&mut **c).await)?)
    }

    pub async fn lead(&mut self, id: i64) -> Result<Option<Lead>> {
        let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1");
        Ok(on_conn!(self, c => sqlx::query_as(&sql).bind(id).fetch_optional(&mut **c).await)?)
    }

    pub async fn leads(&mut self, filter: &LeadFilter, page: Page) -> Result<Vec<Lead>> {
        let mut filters = Filters::new();
        filters.equals("external_id", filter.external_id.clone().map(Bind::Text));
        filters.equals("phone", filter.phone.clone().map(Bind::Text));
        filters.equals("email", filter.email.clone().map(Bind::Text));
        let (tail, binds) = filters.finish("id DESC", page);
        let sql = format!("SELECT {LEAD_COLUMNS} FROM leads{tail}");
        Ok(on_conn!(self, c => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(&mut **c).await)?)
    }

    // ---- contacts ----

    pub async fn insert_contact(
        &mut self,
        lead_id: i64,
        source_id: i64,
        operator_id: Option<i64>,
        message: Option<&str>,
        created_at: DateTime<Utc>,
    ) -> Result<i64> {
        let sql = "INSERT INTO contacts (lead_id, source_id, operator_id, status, message, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
        Ok(on_conn!(self, c => sqlx::query_scalar(sql)
            .bind(lead_id).bind(source_id).bind(operator_id).bind(Status::ACTIVE).bind(message).bind(created_at)
            .fetch_one(&mut **c).await)?)
    }

    pub async fn contact(&mut self, id: i64) -> Result<Option<Contact>> {
        let sql = format!("{CONTACT_SELECT} WHERE c.id = $1");
        let row: Option<ContactRow> =
            on_conn!(self, c => sqlx::query_as(&sql).bind(id).fetch_optional(&mut **c).await)?;
        Ok(row.map(Contact::from))
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
        let sql = format!("{CONTACT_SELECT}{tail}");
        let rows: Vec<ContactRow> =
            on_conn!(self, c => bind_all!(sqlx::query_as(&sql), &binds).fetch_all(&mut **c).await)?;
        Ok(rows.into_iter().map(Contact::from).collect())
    }

    /// The contact's source, operator and status, locked until the transaction ends where the database can
    /// lock rows, so that two concurrent status changes cannot both move the same load.
    pub async fn contact_state_for_update(&mut self, id: i64) -> Result<Option<ContactState>> {
        let sql = "SELECT source_id, operator_id, status FROM contacts WHERE id = $1";
        Ok(match self {
            // The single writer already excludes every other write.
            Conn::Sqlite(c) => {
                sqlx::query_as(sql)
                    .bind(id)
                    .fetch_optional(&mut **c)
                    .await?
            }
            Conn::Postgres(c) => {
                let locking = format!("{sql} FOR UPDATE");
                sqlx::query_as(&locking)
                    .bind(id)
                    .fetch_optional(&mut **c)
                    .await?
            }
        })
    }

    pub async fn set_contact_status(&mut self, id: i64, status: &str) -> Result<()> {
        let sql = "UPDATE contacts SET status = $2 WHERE id = $1";
        on_conn!(self, c => sqlx::query(sql).bind(id).bind(status).execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    /// Leaves the operator's contacts without an operator (they keep their status).
    pub async fn unassign_contacts_of(&mut self, operator_id: i64) -> Result<()> {
        let sql = "UPDATE contacts SET operator_id = NULL WHERE operator_id = $1";
        on_conn!(self, c => sqlx::query(sql).bind(operator_id).execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    // ---- contact counts (what the stats read) ----

    /// Adds `delta` to the number of contacts of (source, operator or 0, status).
    pub async fn count_contacts(
        &mut self,
        source_id: i64,
        operator_key: i64,
        status: &str,
        delta: i64,
    ) -> Result<()> {
        let sql = "INSERT INTO contact_counts (source_id, operator_id, status, contacts) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (source_id, operator_id, status) \
                   DO UPDATE SET contacts = contact_counts.contacts + excluded.contacts";
        on_conn!(self, c => sqlx::query(sql)
            .bind(source_id).bind(operator_key).bind(status).bind(delta)
            .execute(&mut **c).await.map(drop))?;
        Ok(())
    }

    /// Moves the operator's counts to "unassigned" (operator 0), as its contacts just were.
    pub async fn move_counts_to_unassigned(&mut self, operator_id: i64) -> Result<()> {
        let merge = "INSERT INTO contact_counts (source_id, operator_id, status, contacts) \
                     SELECT source_id, 0, status, contacts FROM contact_counts WHERE operator_id = $1 \
                     ON CONFLICT (source_id, operator_id, status) \
                     DO UPDATE SET contacts = contact_counts.contacts + excluded.contacts";
        let remove = "DELETE FROM contact_counts WHERE operator_id = $1";
        on_conn!(self, c => {
            sqlx::query(merge).bind(operator_id).execute(&mut **c).await?;
            sqlx::query(remove).bind(operator_id).execute(&mut **c).await.map(drop)
        })?;
        Ok(())
    }

    /// Per operator (0 = unassigned) of the source: contacts in all, and in status `active`.
    pub async fn source_tallies(&mut self, source_id: i64) -> Result<Vec<OperatorTally>> {
        let sql = "SELECT cc.operator_id, o.name AS operator_name, \
                   CAST(SUM(cc.contacts) AS BIGINT) AS contacts, \
                   CAST(SUM(CASE WHEN cc.status = 'active' THEN cc.contacts ELSE 0 END) AS BIGINT) AS active_contacts \
                   FROM contact_counts cc LEFT JOIN operators o ON o.id = cc.operator_id \
                   WHERE cc.source_id = $1 GROUP BY cc.operator_id, o.name ORDER BY cc.operator_id";
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(source_id).fetch_all(&mut **c).await)?)
    }

    /// The operator's contacts per source and status.
    pub async fn operator_tallies(&mut self, operator_id: i64) -> Result<Vec<SourceStatusTally>> {
        let sql = "SELECT cc.source_id, s.name AS source_name, cc.status, cc.contacts \
                   FROM contact_counts cc JOIN sources s ON s.id = cc.source_id \
                   WHERE cc.operator_id = $1 AND cc.contacts > 0 ORDER BY cc.source_id, cc.status";
        Ok(on_conn!(self, c => sqlx::query_as(sql).bind(operator_id).fetch_all(&mut **c).await)?)
    }
}
