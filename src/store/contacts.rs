//! Contacts: the one transaction that registers and routes a new contact (with its idempotency key), status
//! changes, and the lists. Queue positions and drains are [`super::queue`]'s.

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};

use super::audit::Actor;
use super::executor::{Dialect, Executor, Filters, Record, Row, params, returning};
use super::history::{self, HistoryChange, entry, reason};
use super::leads::{self, Lead};
use super::operators::{self, Operator};
use super::queue::{self, Drained, ManualAssignment};
use super::sources::{RulesColumns, Source, WorkRules};
use super::tallies::{self, count_key};
use super::{Page, Result, Store};
use super::{candidates, decisions, sources, webhooks};
use crate::domain::fairness::Window;
use crate::domain::{
    AcceptTimeout, Availability, CapacityClaim, Chooser, Decision, Exclusion, LeadIdentity, Reach,
    Routing, Status, Strategy, Text, TimeZoneName, choose_and_claim,
};
use crate::error::AppError;

/// A contact joined with its lead, source and operator; callers append WHERE, ORDER BY and LIMIT.
macro_rules! contact_select {
    () => {
        "SELECT c.id, c.lead_id, c.source_id, c.operator_id, c.status, c.message, c.created_at, \
         c.assigned_at, c.accepted_at, \
         l.external_id AS lead_external_id, l.phone AS lead_phone, l.email AS lead_email, \
         l.name AS lead_name, l.created_at AS lead_created_at, s.name AS source_name, \
         s.description AS source_description, s.created_at AS source_created_at, \
         s.on_operator_unavailable AS source_on_operator_unavailable, s.sticky_hours AS source_sticky_hours, \
         s.accept_timeout_secs AS source_accept_timeout_secs, s.strategy AS source_strategy, \
         o.name AS operator_name, \
         o.is_active AS operator_is_active, o.max_load AS operator_max_load, \
         o.active_load AS operator_active_load, o.created_at AS operator_created_at, \
         o.availability AS operator_availability, o.away_until AS operator_away_until, \
         o.timezone AS operator_timezone, o.schedule AS operator_schedule \
         FROM contacts c JOIN leads l ON l.id = c.lead_id JOIN sources s ON s.id = c.source_id \
         LEFT JOIN operators o ON o.id = c.operator_id"
    };
}
pub(super) use contact_select;

/// One message of a lead through a source, and who handles it, joined with its lead, source and operator.
#[derive(Debug, Clone)]
pub struct Contact {
    pub id: i64,
    pub lead_id: i64,
    pub source_id: i64,
    /// `None` when no operator was free (or the operator was deleted).
    pub operator_id: Option<i64>,
    pub status: Status,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When its current operator got it (`None` without one).
    pub assigned_at: Option<DateTime<Utc>>,
    /// When its current operator accepted it.
    pub accepted_at: Option<DateTime<Utc>>,
    pub lead: Lead,
    pub source: Source,
    pub operator: Option<Operator>,
    /// While the contact waits: its place in its source's queue, from 1 for the oldest.
    pub queue_position: Option<i64>,
    /// While the contact waits, and its source's queue has moved lately: the seconds it may expect to wait
    /// ([`super::decisions::eta_seconds`]).
    pub eta_seconds: Option<i64>,
}

impl Contact {
    /// Whether the contact waits in its source's queue.
    pub fn is_waiting(&self) -> bool {
        self.operator_id.is_none() && self.status.is_active()
    }
}

impl Record for Contact {
    fn decode(row: &Row<'_>) -> Result<Self> {
        let id = row.get("id")?;
        let lead_id = row.get("lead_id")?;
        let source_id = row.get("source_id")?;
        let operator_id: Option<i64> = row.get("operator_id")?;
        let operator_name: Option<String> = row.get("operator_name")?;
        let operator = match (operator_id, operator_name) {
            (Some(id), Some(name)) => Some(Operator {
                id,
                name,
                is_active: row
                    .get::<Option<bool>>("operator_is_active")?
                    .unwrap_or(false),
                max_load: row.get::<Option<i64>>("operator_max_load")?.unwrap_or(0),
                active_load: row.get::<Option<i64>>("operator_active_load")?.unwrap_or(0),
                created_at: row.get("operator_created_at")?,
                availability: row
                    .get::<Option<Availability>>("operator_availability")?
                    .unwrap_or_default(),
                away_until: row.get("operator_away_until")?,
                timezone: row
                    .get::<Option<TimeZoneName>>("operator_timezone")?
                    .unwrap_or(TimeZoneName::UTC),
                schedule: row.get("operator_schedule")?,
            }),
            _ => None,
        };
        Ok(Contact {
            id,
            lead_id,
            source_id,
            operator_id,
            status: row.get("status")?,
            message: row.get("message")?,
            created_at: row.get("created_at")?,
            assigned_at: row.get("assigned_at")?,
            accepted_at: row.get("accepted_at")?,
            lead: Lead {
                id: lead_id,
                external_id: row.get("lead_external_id")?,
                phone: row.get("lead_phone")?,
                email: row.get("lead_email")?,
                name: row.get("lead_name")?,
                created_at: row.get("lead_created_at")?,
            },
            source: Source {
                id: source_id,
                name: row.get("source_name")?,
                description: row.get("source_description")?,
                created_at: row.get("source_created_at")?,
                rules: WorkRules::decode(row, RulesColumns::Contact)?,
            },
            operator,
            queue_position: None,
            eta_seconds: None,
        })
    }
}

/// What a change to a contact needs to know about it.
#[derive(Debug, Clone)]
pub struct ContactState {
    pub id: i64,
    pub source_id: i64,
    pub operator_id: Option<i64>,
    pub status: Status,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accept_deadline: Option<DateTime<Utc>>,
}

record!(ContactState {
    id,
    source_id,
    operator_id,
    status,
    accepted_at,
    accept_deadline
});

/// The columns of a [`ContactState`].
macro_rules! state_columns {
    () => {
        "id, source_id, operator_id, status, accepted_at, accept_deadline"
    };
}
pub(super) use state_columns;

/// The filters of `GET /contacts/`; absent ones do not filter.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub lead_id: Option<i64>,
    pub source_id: Option<i64>,
    pub operator_id: Option<i64>,
    pub status: Option<Status>,
    /// `Some(true)`: only contacts without an operator; `Some(false)`: only those with one.
    pub unassigned: Option<bool>,
    /// Only contacts created within it (`[since, until)`).
    pub created: Window,
}

/// A change of a contact by hand.
#[derive(Debug, Clone)]
pub struct ContactChange {
    pub status: Option<Status>,
    pub assignment: Option<ManualAssignment>,
    /// Who makes it: the history names its key, the audit trail the actor of an assignment.
    pub actor: Actor,
    /// The contacts the caller may change; any other answers 404.
    pub reach: Reach,
}

#[derive(Debug, Clone)]
pub struct NewContact {
    pub source_id: i64,
    pub lead: LeadIdentity,
    pub message: Option<Text>,
    pub idempotency: Option<IdempotencyKey>,
    /// The API key that sent it, if the API is not open.
    pub created_by_key_id: Option<i64>,
}

impl NewContact {
    /// SHA-256 of the normalised request, so that a retry matches however its JSON was spelled.
    pub fn fingerprint(&self) -> String {
        // A JSON array: unambiguous, and independent of any type's Debug output.
        let canonical = serde_json::json!([
            self.source_id,
            self.lead.external_id,
            self.lead.phone.as_ref().map(|p| p.as_str()),
            self.lead.email.as_ref().map(|e| e.as_str()),
            self.lead.name,
            self.message.as_ref().map(Text::as_str),
        ])
        .to_string();
        hex::encode(Sha256::digest(canonical.as_bytes()))
    }
}

/// An `Idempotency-Key` sent with a contact.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// Whose key it is: keys of different clients never meet.
    pub client: String,
    pub key: String,
    /// [`NewContact::fingerprint`] of the request that came with it.
    pub fingerprint: String,
}

/// What an idempotency key remembers.
struct IdempotentRequest {
    fingerprint: String,
    contact_id: i64,
    created_at: DateTime<Utc>,
}

record!(IdempotentRequest {
    fingerprint,
    contact_id,
    created_at
});

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW: TimeDelta = TimeDelta::hours(24);

/// A contact as `POST /contacts/` answers it: created now, or replayed for a retried idempotency key.
#[derive(Debug, Clone)]
pub struct CreatedContact {
    pub contact: Contact,
    pub replayed: bool,
    /// The older contacts of the source assigned first.
    pub drained: Drained,
}

// ---- reads ----

/// The page of contacts the filter selects, newest first; the waiting ones with their place and ETA, their
/// sources' pace read at `now` (the routing clock's).
pub async fn list(
    db: &mut impl Executor,
    filter: &ContactFilter,
    page: Page,
    now: DateTime<Utc>,
) -> Result<Vec<Contact>> {
    let mut contacts = list_before(db, filter, None, page).await?;
    queue::fill_positions(db, &mut contacts, now).await?;
    Ok(contacts)
}

/// The page of contacts the filter selects among those older than `before` (all: `None`), newest first, as
/// stored: without their place in the queue. An export reads its rows this way, a chunk at a time, each chunk
/// starting below the last id of the one before (which an index finds at once, where an offset would make
/// every chunk pass over all the rows before it).
pub async fn list_before(
    db: &mut impl Executor,
    filter: &ContactFilter,
    before: Option<i64>,
    page: Page,
) -> Result<Vec<Contact>> {
    let mut filters = Filters::default();
    filters.equals("c.lead_id", filter.lead_id);
    filters.equals("c.source_id", filter.source_id);
    filters.equals("c.operator_id", filter.operator_id);
    filters.equals("c.status", filter.status.as_ref().map(Status::as_str));
    match filter.unassigned {
        Some(true) => filters.raw("c.operator_id IS NULL"),
        Some(false) => filters.raw("c.operator_id IS NOT NULL"),
        None => {}
    }
    filters.compare("c.created_at", ">=", filter.created.since());
    filters.compare("c.created_at", "<", filter.created.until());
    filters.compare("c.id", "<", before);
    let (tail, params) = filters.finish("c.id DESC", page);
    let sql = format!("{}{tail}", contact_select!());
    db.all(&sql, &params).await
}

/// The contact, with its place in the queue and its ETA if it waits, its source's pace read at `now` (the
/// routing clock's).
pub async fn find(db: &mut impl Executor, id: i64, now: DateTime<Utc>) -> Result<Option<Contact>> {
    let sql = concat!(contact_select!(), " WHERE c.id = $1");
    let Some(mut contact) = db.optional::<Contact>(sql, params![id]).await? else {
        return Ok(None);
    };
    if contact.is_waiting() {
        queue::place(db, &mut contact, now).await?;
    }
    Ok(Some(contact))
}

/// The contact, if it exists and is within reach; any other answers 404, as if it did not exist.
pub(super) async fn expect(
    db: &mut impl Executor,
    id: i64,
    reach: Reach,
    now: DateTime<Utc>,
) -> Result<Contact> {
    find(db, id, now)
        .await?
        .filter(|contact| reach.covers(contact.operator_id))
        .ok_or_else(|| AppError::not_found("Contact"))
}

/// Whether the contact exists and is within reach.
pub async fn within_reach(db: &mut impl Executor, id: i64, reach: Reach) -> Result<bool> {
    let sql = "SELECT EXISTS (SELECT 1 FROM contacts WHERE id = $1 \
         AND ($2 IS NULL OR operator_id = $2)) AS value";
    db.one(sql, params![id, reach.operator_id()]).await
}

/// The contact's state, locked until the transaction ends where the database locks rows, so that two
/// concurrent changes cannot both move the same load.
pub async fn state_for_update(db: &mut impl Executor, id: i64) -> Result<ContactState> {
    let sql = match db.dialect() {
        Dialect::Sqlite => concat!("SELECT ", state_columns!(), " FROM contacts WHERE id = $1"),
        Dialect::Postgres => concat!(
            "SELECT ",
            state_columns!(),
            " FROM contacts WHERE id = $1 FOR UPDATE"
        ),
    };
    db.optional(sql, params![id])
        .await?
        .ok_or_else(|| AppError::not_found("Contact"))
}

// ---- writes ----

/// Gives the contact to the operator (or to nobody) at `at`: it is theirs from then, not accepted yet, and due
/// to be accepted by the source's timeout, if it has one.
pub async fn set_operator(
    db: &mut impl Executor,
    id: i64,
    operator_id: Option<i64>,
    at: DateTime<Utc>,
    timeout: AcceptTimeout,
) -> Result<()> {
    let sql = "UPDATE contacts SET operator_id = $2, assigned_at = $3, accepted_at = NULL, \
         accept_deadline = $4 WHERE id = $1";
    let assigned_at = operator_id.map(|_| at);
    let deadline = operator_id.and_then(|_| timeout.deadline(at));
    db.execute(sql, params![id, operator_id, assigned_at, deadline])
        .await?;
    Ok(())
}

/// Leaves the operator's contacts without an operator (they keep their status), and returns them as they
/// are about to be recorded in their history.
pub async fn unassign_all_of(
    db: &mut impl Executor,
    operator_id: i64,
) -> Result<Vec<ContactState>> {
    let sql = concat!(
        "UPDATE contacts SET operator_id = NULL, assigned_at = NULL, accepted_at = NULL, ",
        "accept_deadline = NULL WHERE operator_id = $1 RETURNING ",
        state_columns!()
    );
    db.all(sql, params![operator_id]).await
}

/// Identifies the lead, picks an operator, claims one unit of their capacity and stores the contact: all in
/// the caller's transaction, so that either all of it is committed or none of it. With an idempotency key
/// seen in the last 24 hours, creates nothing and answers the contact that key created.
pub async fn create(
    db: &mut impl Executor,
    routing: &Routing,
    new: &NewContact,
) -> Result<CreatedContact> {
    let now = super::now();
    if let Some(key) = &new.idempotency {
        let sql = "SELECT fingerprint, contact_id, created_at FROM idempotency_keys \
             WHERE client = $1 AND key = $2";
        let earlier: Option<IdempotentRequest> =
            db.optional(sql, params![&key.client, &key.key]).await?;
        if let Some(earlier) = earlier {
            if now - earlier.created_at < IDEMPOTENCY_WINDOW {
                if earlier.fingerprint != key.fingerprint {
                    return Err(AppError::Unprocessable(
                        "Idempotency-Key: already used with a different request".to_owned(),
                    ));
                }
                let contact = find(db, earlier.contact_id, routing.clock.now())
                    .await?
                    .ok_or_else(|| {
                        AppError::Internal(anyhow::anyhow!(
                            "idempotency key points at a missing contact"
                        ))
                    })?;
                return Ok(CreatedContact {
                    contact,
                    replayed: true,
                    drained: Drained::default(),
                });
            }
            let sql = "DELETE FROM idempotency_keys WHERE client = $1 AND key = $2";
            db.execute(sql, params![&key.client, &key.key]).await?;
        }
    }
    let (contact, drained) = route_new(db, routing, new, now).await?;
    if let Some(key) = &new.idempotency {
        // A plain INSERT, not an upsert: two requests racing with one key must collide here, so that one of
        // them is rolled back (and, tried again, replays the other's answer).
        let sql = "INSERT INTO idempotency_keys (client, key, fingerprint, contact_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)";
        let params = params![&key.client, &key.key, &key.fingerprint, contact.id, now];
        db.execute(sql, params).await?;
    }
    Ok(CreatedContact {
        contact,
        replayed: false,
        drained,
    })
}

/// Routes the contact as it arrives. It never jumps the queue: should the source have older contacts waiting
/// while an operator is free (capacity a trigger did not hand out), those are assigned first.
async fn route_new(
    db: &mut impl Executor,
    routing: &Routing,
    new: &NewContact,
    created_at: DateTime<Utc>,
) -> Result<(Contact, Drained)> {
    let candidates::RoutingView {
        source,
        mut field,
        mut round,
        has_waiting,
    } = candidates::routing_view(db, new.source_id, routing.clock.now())
        .await?
        .ok_or_else(|| AppError::not_found("Source"))?;
    let strategy = source.rules.strategy;
    let takes_turns = sources::takes_turns(db, strategy);
    if takes_turns {
        round = sources::lock_round(db, source.id).await?;
        field = candidates::field_of(db, source.id, routing.clock.now()).await?;
    }
    let lead = leads::resolve(db, &new.lead).await?;
    let mut drained = Drained::default();
    if !field.candidates.is_empty() && has_waiting {
        drained = queue::drain(db, routing, &[source.id]).await?;
        field = candidates::field_of(db, source.id, routing.clock.now()).await?;
        if strategy == Strategy::SmoothWeighted {
            round = sources::lock_round(db, source.id).await?;
        }
    }
    let now = routing.clock.now();
    // Read before any claim: on PostgreSQL the claim locks the operator's row until the commit.
    let subscriptions = webhooks::subscriptions(db).await?;
    let mut claimer = operators::Claimer { db: &mut *db, now };
    let mut why = reason::CREATION;
    let mut operator = None;
    let mut decision = None;
    if let Some(since) = source.rules.sticky_hours.window_start(now)
        && !field.candidates.is_empty()
        && let Some(previous) = previous_operator(claimer.db, lead.id, since).await?
        && field.candidates.iter().any(|c| c.operator_id == previous)
    {
        operator = claimer.claim(previous).await?;
        if operator.is_some() {
            why = reason::STICKY;
            let hours = source.rules.sticky_hours.get();
            decision = Some(Decision::sticky(strategy, &field, previous, hours));
        } else {
            field.exclude(previous, Exclusion::Full);
        }
    }
    let mut chooser = Chooser::new(strategy, round);
    let decision = match decision {
        Some(decision) => decision,
        None => {
            let (chosen, decision) = choose_and_claim(
                &mut field,
                &mut chooser,
                &routing.random,
                &mut claimer,
                |_| {},
            )
            .await?;
            operator = chosen;
            decision
        }
    };
    sources::save_round(db, source.id, &chooser).await?;
    let operator_id = operator.as_ref().map(|o| o.id);
    if operator_id.is_none() {
        drained = drained.and(Drained::look_again(source.id));
    }
    let assigned_at = operator_id.map(|_| now);
    let message = new.message.as_ref().map(Text::as_str);
    let arrival = Arrival {
        lead_id: lead.id,
        source_id: source.id,
        operator_id,
        message,
        created_at,
        created_by_key_id: new.created_by_key_id,
        assigned_at,
        accept_deadline: assigned_at.and_then(|at| source.rules.accept_timeout.deadline(at)),
        decided_at: now,
        reason: why,
        decision: &decision,
    };
    let Arrived { entry, counted } = record_arrival(db, &arrival).await?;
    let id = entry.contact_id;
    // The newest contact waits last: its place is the number waiting, which the counts hold, and reading it
    // there costs nothing however long the queue. Its ETA costs a read of the pace, made only when it waits.
    let queue_position = operator_id.is_none().then_some(counted);
    let eta_seconds = match queue_position {
        Some(position) => decisions::queue_pace(db, source.id, now)
            .await?
            .map(|pace| decisions::eta_seconds(position, pace)),
        None => None,
    };
    let contact = Contact {
        id,
        lead_id: lead.id,
        source_id: source.id,
        operator_id,
        status: Status::active(),
        message: message.map(str::to_owned),
        created_at,
        assigned_at,
        accepted_at: None,
        lead,
        source,
        operator,
        queue_position,
        eta_seconds,
    };
    let change = arrival.history_change(id, entry.decision_id);
    webhooks::enqueue_for(db, &subscriptions, &change, &entry, Some(&contact), now).await?;
    Ok((contact, drained))
}

/// What a new contact writes once routed: the contact, the decision, its count and its history entry.
struct Arrival<'a> {
    lead_id: i64,
    source_id: i64,
    operator_id: Option<i64>,
    message: Option<&'a str>,
    created_at: DateTime<Utc>,
    created_by_key_id: Option<i64>,
    assigned_at: Option<DateTime<Utc>>,
    accept_deadline: Option<DateTime<Utc>>,
    /// When the routing clock made the decision.
    decided_at: DateTime<Utc>,
    reason: &'static str,
    decision: &'a Decision,
}

impl Arrival<'_> {
    /// The contact's first history entry.
    fn history_change(&self, contact_id: i64, decision_id: Option<i64>) -> HistoryChange {
        HistoryChange {
            contact_id,
            at: self.created_at,
            event: entry::CREATED,
            from_operator_id: None,
            to_operator_id: self.operator_id,
            from_status: None,
            to_status: Status::active(),
            reason: self.reason,
            api_key_id: self.created_by_key_id,
            decision_id,
        }
    }
}

/// The history entry an arrival wrote, and the number of its source's contacts in its (operator, status)
/// after it.
struct Arrived {
    entry: history::HistoryEntry,
    counted: i64,
}

impl Record for Arrived {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(Arrived {
            entry: history::HistoryEntry::decode(row)?,
            counted: row.get("counted")?,
        })
    }
}

/// Writes the arrival's rows. Each statement waits for the one before on SQLite, where that costs nothing;
/// on PostgreSQL they are one statement, one round trip: they run after the claim on the operator's row, whose
/// lock every other contact for that operator waits on until the commit (with four round trips there, three
/// of every four backends were found waiting on it).
async fn record_arrival(db: &mut impl Executor, arrival: &Arrival<'_>) -> Result<Arrived> {
    // $1 to $9: the contact's columns.
    let contact = params![
        arrival.lead_id,
        arrival.source_id,
        arrival.operator_id,
        Status::ACTIVE,
        arrival.message,
        arrival.created_at,
        arrival.created_by_key_id,
        arrival.assigned_at,
        arrival.accept_deadline
    ];
    match db.dialect() {
        Dialect::Sqlite => {
            let sql = returning!(
                write: "INSERT INTO contacts (lead_id, source_id, operator_id, status, message, created_at, \
                     created_by_key_id, assigned_at, accept_deadline) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                columns: "id AS value",
                read_back: "FROM contacts WHERE id = last_insert_rowid()",
            );
            let id: i64 = db.written_one(&sql, contact).await?;
            let decision_id = decisions::record(
                db,
                id,
                arrival.source_id,
                arrival.decided_at,
                arrival.reason,
                arrival.decision,
            )
            .await?;
            let key = count_key(arrival.operator_id);
            let counted = tallies::count(db, arrival.source_id, key, Status::ACTIVE, 1).await?;
            let entry = history::insert(db, &arrival.history_change(id, Some(decision_id))).await?;
            Ok(Arrived { entry, counted })
        }
        Dialect::Postgres => {
            let sql = concat!(
                "WITH contact AS (INSERT INTO contacts (lead_id, source_id, operator_id, status, message, ",
                "created_at, created_by_key_id, assigned_at, accept_deadline) ",
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id), ",
                "decision AS (INSERT INTO routing_decisions (contact_id, source_id, at, reason, strategy, ",
                "chosen_operator_id, record) SELECT id, $2, $10, $11, $12, $13, $14 FROM contact ",
                "RETURNING id, contact_id), ",
                "counted AS (INSERT INTO contact_counts (source_id, operator_id, status, contacts) ",
                "VALUES ($2, $15, $4, 1) ON CONFLICT (source_id, operator_id, status) ",
                "DO UPDATE SET contacts = contact_counts.contacts + excluded.contacts RETURNING contacts), ",
                "entry AS (INSERT INTO contact_history (contact_id, at, event, from_operator_id, ",
                "to_operator_id, from_status, to_status, reason, api_key_id, decision_id) ",
                "SELECT contact_id, $6, $16, NULL, $3, NULL, $4, $11, $7, id FROM decision RETURNING ",
                history::history_columns!(),
                ") SELECT entry.*, counted.contacts AS counted FROM entry, counted"
            );
            let record = decisions::record_column(arrival.decision, arrival.reason)?;
            let rest = params![
                arrival.decided_at,
                arrival.reason,
                arrival.decision.strategy.as_str(),
                arrival.decision.chosen_operator_id,
                record.as_str(),
                count_key(arrival.operator_id),
                entry::CREATED
            ];
            db.one(sql, &[contact.as_slice(), rest.as_slice()].concat())
                .await
        }
    }
}

/// The operator of the lead's latest contact assigned since `since`, if any.
async fn previous_operator(
    db: &mut impl Executor,
    lead_id: i64,
    since: DateTime<Utc>,
) -> Result<Option<i64>> {
    let sql = "SELECT operator_id AS value FROM contacts \
         WHERE lead_id = $1 AND operator_id IS NOT NULL AND assigned_at >= $2 \
         ORDER BY assigned_at DESC, id DESC LIMIT 1";
    db.optional(sql, params![lead_id, since]).await
}

/// Changes the contact by hand — its status, then its operator — in one transaction, once it is known to be
/// within the caller's reach as committed: a contact given to another operator meanwhile is out of an
/// operator key's reach, and answers 404. The status goes first, so that a contact closed and handed over in
/// one request needs none of the new operator's capacity.
pub async fn change(
    db: &mut impl Executor,
    routing: &Routing,
    id: i64,
    change: &ContactChange,
) -> Result<(Contact, Drained)> {
    let current = state_for_update(db, id).await?;
    if !change.reach.covers(current.operator_id) {
        return Err(AppError::not_found("Contact"));
    }
    let mut drained = Drained::default();
    if let Some(status) = &change.status {
        drained = drained.and(set_status(db, routing, id, status, change.actor.key_id()).await?);
    }
    if let Some(assignment) = &change.assignment {
        let assigned = queue::assign_manually(db, routing, id, assignment, change.actor).await?;
        drained = drained.and(assigned);
    }
    Ok((
        expect(db, id, Reach::All, routing.clock.now()).await?,
        drained,
    ))
}

/// Sets the contact's status, moving one unit of load when it enters or leaves `active`. Reopening a contact
/// gives it back to its operator even when that takes them over max_load: max_load bounds automatic
/// assignment, not an operator's own decision. A unit freed goes to the operator's queues at once; an
/// unassigned contact reopened waits in its source's queue (and is assigned if it can be).
async fn set_status(
    db: &mut impl Executor,
    routing: &Routing,
    id: i64,
    status: &Status,
    api_key_id: Option<i64>,
) -> Result<Drained> {
    let current = state_for_update(db, id).await?;
    let mut drained = Drained::default();
    if current.status != *status {
        // A contact no longer active is not due to be accepted; reopened, it is not due again.
        let sql = "UPDATE contacts SET status = $2, accept_deadline = NULL WHERE id = $1";
        db.execute(sql, params![id, status.as_str()]).await?;
        let was_active = current.status.is_active();
        if let Some(operator_id) = current.operator_id
            && was_active != status.is_active()
        {
            operators::adjust_load(db, operator_id, if was_active { -1 } else { 1 }).await?;
        }
        // Always in the same order, so that two transactions touching the same two counts cannot deadlock.
        let key = count_key(current.operator_id);
        let mut changes = [(current.status.as_str(), -1), (status.as_str(), 1)];
        changes.sort();
        for (status, delta) in changes {
            tallies::count(db, current.source_id, key, status, delta).await?;
        }
        let change = HistoryChange {
            contact_id: id,
            at: super::now(),
            event: entry::STATUS_CHANGED,
            from_operator_id: current.operator_id,
            to_operator_id: current.operator_id,
            from_status: Some(current.status.clone()),
            to_status: status.clone(),
            reason: reason::MANUAL,
            api_key_id,
            decision_id: None,
        };
        history::record(db, change, None, routing.clock.now()).await?;
        drained = match current.operator_id {
            Some(operator_id) if was_active => {
                queue::drain_for_operator(db, routing, operator_id).await?
            }
            None if status.is_active() => queue::drain(db, routing, &[current.source_id]).await?,
            _ => Drained::default(),
        };
    }
    Ok(drained)
}

/// Forgets the idempotency keys older than their window.
pub async fn purge_idempotency_keys(db: &mut impl Executor, now: DateTime<Utc>) -> Result<()> {
    let sql = "DELETE FROM idempotency_keys WHERE created_at < $1";
    db.execute(sql, params![now - IDEMPOTENCY_WINDOW]).await?;
    Ok(())
}

impl Store {
    pub async fn create_contact(&self, new: NewContact) -> Result<CreatedContact> {
        let routing = self.routing.clone();
        let created = transaction!(self, |db| create(db, &routing, &new).await)?;
        if !created.replayed {
            self.changed(&created.drained).await;
        }
        Ok(created)
    }

    pub async fn list_contacts(&self, filter: &ContactFilter, page: Page) -> Result<Vec<Contact>> {
        let now = self.now();
        read!(self, |db| list(db, filter, page, now).await)
    }

    /// [`list_before`], on a read connection of its own: each chunk of an export is one read.
    pub async fn list_contacts_before(
        &self,
        filter: &ContactFilter,
        before: Option<i64>,
        page: Page,
    ) -> Result<Vec<Contact>> {
        read!(self, |db| list_before(db, filter, before, page).await)
    }

    /// The contact, if it is within reach.
    pub async fn get_contact(&self, id: i64, reach: Reach) -> Result<Contact> {
        let now = self.now();
        read!(self, |db| expect(db, id, reach, now).await)
    }

    /// The key that created the contact: `None` when there is no such contact, `Some(None)` for no key.
    pub async fn contact_creator(&self, id: i64) -> Result<Option<Option<i64>>> {
        /// The one column, which may be NULL.
        struct Creator(Option<i64>);
        impl Record for Creator {
            fn decode(row: &Row<'_>) -> Result<Self> {
                Ok(Creator(row.get("created_by_key_id")?))
            }
        }
        let sql = "SELECT created_by_key_id FROM contacts WHERE id = $1";
        let found: Option<Creator> = read!(self, |db| db.optional(sql, params![id]).await)?;
        Ok(found.map(|Creator(key_id)| key_id))
    }

    /// Changes the contact by hand: its status, its operator, or both.
    pub async fn change_contact(&self, id: i64, change: ContactChange) -> Result<Contact> {
        let routing = self.routing.clone();
        let (contact, drained) =
            transaction!(self, |db| self::change(db, &routing, id, &change).await)?;
        self.changed(&drained).await;
        Ok(contact)
    }
}
