//! Sources (the bots) and the operators' weights on each: what routing loads to pick an operator.

use chrono::{DateTime, Utc};

use super::audit::{self, Actor, AuditChange, action};
use super::executor::{Dialect, Executor, Record, Row, params};
use super::queue::{self, Drained};
use super::{Page, Result, Store, operators};
use crate::domain::{
    AcceptTimeout, Chooser, Name, Round, Routing, StickyHours, Strategy, Text, UnavailablePolicy,
    ValueError, Weight,
};
use crate::error::AppError;

macro_rules! source_columns {
    () => {
        "id, name, description, created_at, on_operator_unavailable, sticky_hours, accept_timeout_secs, \
         strategy"
    };
}

macro_rules! weight_columns {
    () => {
        "id, source_id, operator_id, weight"
    };
}

/// A channel leads write through: a bot.
#[derive(Debug, Clone)]
pub struct Source {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub rules: WorkRules,
}

/// A source's work rules ([`crate::domain::work_rules`]) and its routing strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkRules {
    pub on_operator_unavailable: UnavailablePolicy,
    pub sticky_hours: StickyHours,
    pub accept_timeout: AcceptTimeout,
    pub strategy: Strategy,
}

/// The columns of a source's work rules, as a source row names them and as a contact's row does.
pub enum RulesColumns {
    Source,
    Contact,
}

impl WorkRules {
    pub fn decode(row: &Row<'_>, columns: RulesColumns) -> Result<Self> {
        let [policy, sticky, timeout, strategy] = match columns {
            RulesColumns::Source => [
                "on_operator_unavailable",
                "sticky_hours",
                "accept_timeout_secs",
                "strategy",
            ],
            RulesColumns::Contact => [
                "source_on_operator_unavailable",
                "source_sticky_hours",
                "source_accept_timeout_secs",
                "source_strategy",
            ],
        };
        let invalid = |column: &str, error: ValueError| {
            AppError::Internal(anyhow::anyhow!("column {column}: {}", error.0))
        };
        Ok(WorkRules {
            on_operator_unavailable: row.get(policy)?,
            sticky_hours: StickyHours::parse(row.get(sticky)?).map_err(|e| invalid(sticky, e))?,
            accept_timeout: AcceptTimeout::parse(row.get(timeout)?)
                .map_err(|e| invalid(timeout, e))?,
            strategy: row.get(strategy)?,
        })
    }
}

/// An operator's weight (competence) on a source.
#[derive(Debug, Clone)]
pub struct OperatorWeight {
    pub id: i64,
    pub source_id: i64,
    pub operator_id: i64,
    pub weight: f64,
}

/// A weight with the operator's name beside it.
#[derive(Debug, Clone)]
pub struct NamedOperatorWeight {
    pub weight: OperatorWeight,
    pub operator_name: String,
}

/// A source with its weights.
#[derive(Debug, Clone)]
pub struct SourceDetail {
    pub source: Source,
    pub operator_weights: Vec<NamedOperatorWeight>,
}

impl Record for Source {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(Source {
            id: row.get("id")?,
            name: row.get("name")?,
            description: row.get("description")?,
            created_at: row.get("created_at")?,
            rules: WorkRules::decode(row, RulesColumns::Source)?,
        })
    }
}

record!(OperatorWeight {
    id,
    source_id,
    operator_id,
    weight
});

impl Record for NamedOperatorWeight {
    fn decode(row: &Row<'_>) -> Result<Self> {
        Ok(NamedOperatorWeight {
            weight: OperatorWeight::decode(row)?,
            operator_name: row.get("operator_name")?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewSource {
    pub name: Name,
    pub description: Option<Text>,
    pub rules: WorkRules,
}

/// `name: None` keeps the name; `description: None` keeps it, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct SourceChanges {
    pub name: Option<Name>,
    pub description: Option<Option<Text>>,
    pub on_operator_unavailable: Option<UnavailablePolicy>,
    pub sticky_hours: Option<StickyHours>,
    pub accept_timeout: Option<AcceptTimeout>,
    /// A new strategy starts from a fresh round.
    pub strategy: Option<Strategy>,
}

// ---- statements ----

pub async fn list(db: &mut impl Executor, page: Page) -> Result<Vec<Source>> {
    let sql = concat!(
        "SELECT ",
        source_columns!(),
        " FROM sources WHERE deleted_at IS NULL ORDER BY id LIMIT $1 OFFSET $2"
    );
    db.all(sql, params![page.limit, page.skip]).await
}

/// A source that has not been deleted.
pub async fn find(db: &mut impl Executor, id: i64) -> Result<Option<Source>> {
    let sql = concat!(
        "SELECT ",
        source_columns!(),
        " FROM sources WHERE id = $1 AND deleted_at IS NULL"
    );
    db.optional(sql, params![id]).await
}

/// A source that has not been deleted, kept from being deleted until the transaction ends where the database
/// locks rows (so that a link cannot be added to a source being deleted).
async fn find_for_share(db: &mut impl Executor, id: i64) -> Result<Option<Source>> {
    let sql = match db.dialect() {
        Dialect::Sqlite => return find(db, id).await,
        Dialect::Postgres => concat!(
            "SELECT ",
            source_columns!(),
            " FROM sources WHERE id = $1 AND deleted_at IS NULL FOR SHARE"
        ),
    };
    db.optional(sql, params![id]).await
}

/// A source that has not been deleted, as it is before a change, kept from other changes until the transaction
/// ends where the database locks rows (as the UPDATE itself would), while contacts may still arrive through it.
async fn find_for_change(db: &mut impl Executor, id: i64) -> Result<Option<Source>> {
    let sql = match db.dialect() {
        Dialect::Sqlite => return find(db, id).await,
        Dialect::Postgres => concat!(
            "SELECT ",
            source_columns!(),
            " FROM sources WHERE id = $1 AND deleted_at IS NULL FOR NO KEY UPDATE"
        ),
    };
    db.optional(sql, params![id]).await
}

async fn find_by_name(db: &mut impl Executor, name: &str) -> Result<Option<Source>> {
    let sql = concat!(
        "SELECT ",
        source_columns!(),
        " FROM sources WHERE name = $1 AND deleted_at IS NULL"
    );
    db.optional(sql, params![name]).await
}

/// The source with its weights.
pub async fn detail(db: &mut impl Executor, id: i64) -> Result<SourceDetail> {
    let source = find(db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Source"))?;
    let sql = "SELECT w.id, w.source_id, w.operator_id, w.weight, o.name AS operator_name \
         FROM source_operator_weights w JOIN operators o ON o.id = w.operator_id \
         WHERE w.source_id = $1 ORDER BY w.operator_id";
    let operator_weights = db.all(sql, params![id]).await?;
    Ok(SourceDetail {
        source,
        operator_weights,
    })
}

async fn weight(
    db: &mut impl Executor,
    source_id: i64,
    operator_id: i64,
) -> Result<Option<OperatorWeight>> {
    let sql = concat!(
        "SELECT ",
        weight_columns!(),
        " FROM source_operator_weights WHERE source_id = $1 AND operator_id = $2"
    );
    db.optional(sql, params![source_id, operator_id]).await
}

/// The weight as it is before a change, kept from other changes until the transaction ends where the database
/// locks rows.
async fn weight_for_update(
    db: &mut impl Executor,
    source_id: i64,
    operator_id: i64,
) -> Result<Option<OperatorWeight>> {
    let sql = match db.dialect() {
        Dialect::Sqlite => return weight(db, source_id, operator_id).await,
        Dialect::Postgres => concat!(
            "SELECT ",
            weight_columns!(),
            " FROM source_operator_weights WHERE source_id = $1 AND operator_id = $2 FOR UPDATE"
        ),
    };
    db.optional(sql, params![source_id, operator_id]).await
}

/// The source's work rules (a retired source's too: its contacts live on).
pub async fn rules_of(db: &mut impl Executor, id: i64) -> Result<WorkRules> {
    /// The rules alone, unprefixed.
    struct Rules(WorkRules);
    impl Record for Rules {
        fn decode(row: &Row<'_>) -> Result<Self> {
            WorkRules::decode(row, RulesColumns::Source).map(Rules)
        }
    }
    let sql = "SELECT on_operator_unavailable, sticky_hours, accept_timeout_secs, strategy FROM sources \
         WHERE id = $1";
    let Rules(rules) = db
        .optional(sql, params![id])
        .await?
        .ok_or_else(|| AppError::not_found("Source"))?;
    Ok(rules)
}

/// A source's smooth_weighted round, as its `strategy_round` column holds it.
pub fn round_column(row: &Row<'_>) -> Result<Round> {
    row.with_text("strategy_round", |text| Ok(Round::from_json(text)))
}

/// The source's round, kept from concurrent choices until the transaction ends where the database locks rows:
/// a strategy that decides by what earlier choices left (its round, or the loads it ranks) takes its turn.
/// Taken before the candidates are read, so that they are read as the previous choice left them.
pub async fn lock_round(db: &mut impl Executor, id: i64) -> Result<Round> {
    /// The round alone.
    struct Stored(Round);
    impl Record for Stored {
        fn decode(row: &Row<'_>) -> Result<Self> {
            round_column(row).map(Stored)
        }
    }
    let sql = match db.dialect() {
        Dialect::Sqlite => "SELECT strategy_round FROM sources WHERE id = $1",
        Dialect::Postgres => "SELECT strategy_round FROM sources WHERE id = $1 FOR NO KEY UPDATE",
    };
    let stored: Option<Stored> = db.optional(sql, params![id]).await?;
    Ok(stored.map(|Stored(round)| round).unwrap_or_default())
}

/// Whether choices for a source of this strategy must take their turns by [`lock_round`] before reading
/// candidates: on PostgreSQL, where concurrent transactions would otherwise choose from the same state. One
/// SQLite writer already runs them one after another.
pub fn takes_turns(db: &impl Executor, strategy: Strategy) -> bool {
    strategy.needs_serial_choices() && db.dialect() == Dialect::Postgres
}

/// Stores the round the chooser left, if it moved on.
pub async fn save_round(db: &mut impl Executor, id: i64, chooser: &Chooser) -> Result<()> {
    if chooser.round_changed {
        let sql = "UPDATE sources SET strategy_round = $2 WHERE id = $1";
        db.execute(sql, params![id, chooser.round.to_json().as_str()])
            .await?;
    }
    Ok(())
}

pub async fn sources_of_operator(db: &mut impl Executor, operator_id: i64) -> Result<Vec<i64>> {
    let sql = "SELECT w.source_id AS value FROM source_operator_weights w \
         JOIN sources s ON s.id = w.source_id WHERE w.operator_id = $1 AND s.deleted_at IS NULL \
         ORDER BY w.source_id";
    db.all(sql, params![operator_id]).await
}

// ---- operations ----

pub async fn create(db: &mut impl Executor, new: &NewSource, actor: Actor) -> Result<Source> {
    ensure_name_free(db, new.name.as_str(), None).await?;
    let sql = concat!(
        "INSERT INTO sources (name, description, created_at, on_operator_unavailable, sticky_hours, ",
        "accept_timeout_secs, strategy) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
        source_columns!()
    );
    let description = new.description.as_ref().map(Text::as_str);
    let params = params![
        new.name.as_str(),
        description,
        super::now(),
        new.rules.on_operator_unavailable.as_str(),
        new.rules.sticky_hours.get(),
        new.rules.accept_timeout.secs(),
        new.rules.strategy.as_str()
    ];
    let source = db.one(sql, params).await?;
    let change = AuditChange::created(action::SOURCE_CREATED, &source);
    audit::record(db, actor, change).await?;
    Ok(source)
}

pub async fn update(
    db: &mut impl Executor,
    id: i64,
    changes: &SourceChanges,
    actor: Actor,
) -> Result<Source> {
    if let Some(name) = &changes.name {
        ensure_name_free(db, name.as_str(), Some(id)).await?;
    }
    let before = find_for_change(db, id)
        .await?
        .ok_or_else(|| AppError::not_found("Source"))?;
    // `$3` says whether to set the description to `$4` (which may be NULL, clearing it).
    let sql = concat!(
        "UPDATE sources SET name = COALESCE($2, name), ",
        "description = CASE WHEN $3 THEN $4 ELSE description END, ",
        "on_operator_unavailable = COALESCE($5, on_operator_unavailable), ",
        "sticky_hours = COALESCE($6, sticky_hours), accept_timeout_secs = COALESCE($7, accept_timeout_secs), ",
        "strategy = COALESCE($8, strategy), ",
        "strategy_round = CASE WHEN $8 IS NULL OR $8 = strategy THEN strategy_round ELSE NULL END ",
        "WHERE id = $1 AND deleted_at IS NULL RETURNING ",
        source_columns!()
    );
    let description = changes
        .description
        .as_ref()
        .map(|d| d.as_ref().map(Text::as_str));
    let params = params![
        id,
        changes.name.as_ref().map(Name::as_str),
        description.is_some(),
        description.flatten(),
        changes
            .on_operator_unavailable
            .map(UnavailablePolicy::as_str),
        changes.sticky_hours.map(StickyHours::get),
        changes.accept_timeout.map(AcceptTimeout::secs),
        changes.strategy.map(Strategy::as_str)
    ];
    let source = db.one(sql, params).await?;
    let change = AuditChange::changed(action::SOURCE_UPDATED, &before, &source);
    audit::record(db, actor, change).await?;
    Ok(source)
}

async fn ensure_name_free(
    db: &mut impl Executor,
    name: &str,
    except_id: Option<i64>,
) -> Result<()> {
    match find_by_name(db, name).await? {
        Some(existing) if Some(existing.id) != except_id => Err(AppError::Conflict(format!(
            "A source named {name:?} already exists (id {})",
            existing.id
        ))),
        _ => Ok(()),
    }
}

/// Retires the source: it disappears from the API and takes no new contacts, its weights are removed, and its
/// contacts stay as they are (with their operators and statuses), still listed and counted.
pub async fn delete(db: &mut impl Executor, id: i64, actor: Actor) -> Result<()> {
    let sql = concat!(
        "UPDATE sources SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING ",
        source_columns!()
    );
    let source: Source = db
        .optional(sql, params![id, super::now()])
        .await?
        .ok_or_else(|| AppError::not_found("Source"))?;
    let sql = concat!(
        "DELETE FROM source_operator_weights WHERE source_id = $1 RETURNING ",
        weight_columns!()
    );
    let weights: Vec<OperatorWeight> = db.all(sql, params![id]).await?;
    for weight in weights {
        let change = AuditChange::removed(action::WEIGHT_REMOVED, &weight);
        audit::record(db, actor, change).await?;
    }
    let change = AuditChange::removed(action::SOURCE_DELETED, &source);
    audit::record(db, actor, change).await
}

/// Removes the operator's weights on every source (the operator is being deleted), and returns them.
pub async fn unlink_operator_everywhere(
    db: &mut impl Executor,
    operator_id: i64,
) -> Result<Vec<OperatorWeight>> {
    let sql = concat!(
        "DELETE FROM source_operator_weights WHERE operator_id = $1 RETURNING ",
        weight_columns!()
    );
    db.all(sql, params![operator_id]).await
}

/// Links the operator to the source; the source's queue drains to them at once.
pub async fn link(
    db: &mut impl Executor,
    routing: &Routing,
    source_id: i64,
    operator_id: i64,
    weight_of_operator: Weight,
    actor: Actor,
) -> Result<(OperatorWeight, Drained)> {
    find_for_share(db, source_id)
        .await?
        .ok_or_else(|| AppError::not_found("Source"))?;
    operators::find_for_share(db, operator_id)
        .await?
        .ok_or_else(|| AppError::not_found("Operator"))?;
    if weight(db, source_id, operator_id).await?.is_some() {
        return Err(AppError::Conflict(format!(
            "Operator {operator_id} is already linked to source {source_id}"
        )));
    }
    let sql = concat!(
        "INSERT INTO source_operator_weights (source_id, operator_id, weight) VALUES ($1, $2, $3) ",
        "RETURNING ",
        weight_columns!()
    );
    let linked = db
        .one(
            sql,
            params![source_id, operator_id, weight_of_operator.get()],
        )
        .await?;
    let change = AuditChange::created(action::WEIGHT_SET, &linked);
    audit::record(db, actor, change).await?;
    let drained = queue::drain(db, routing, &[source_id]).await?;
    Ok((linked, drained))
}

pub async fn update_weight(
    db: &mut impl Executor,
    routing: &Routing,
    source_id: i64,
    operator_id: i64,
    weight: Weight,
    actor: Actor,
) -> Result<(OperatorWeight, Drained)> {
    let before = weight_for_update(db, source_id, operator_id)
        .await?
        .ok_or_else(not_linked)?;
    let sql = concat!(
        "UPDATE source_operator_weights SET weight = $3 WHERE source_id = $1 AND operator_id = $2 ",
        "RETURNING ",
        weight_columns!()
    );
    let updated = db
        .one(sql, params![source_id, operator_id, weight.get()])
        .await?;
    let change = AuditChange::changed(action::WEIGHT_UPDATED, &before, &updated);
    audit::record(db, actor, change).await?;
    let drained = queue::drain(db, routing, &[source_id]).await?;
    Ok((updated, drained))
}

pub async fn unlink(
    db: &mut impl Executor,
    source_id: i64,
    operator_id: i64,
    actor: Actor,
) -> Result<()> {
    let sql = concat!(
        "DELETE FROM source_operator_weights WHERE source_id = $1 AND operator_id = $2 RETURNING ",
        weight_columns!()
    );
    let removed: OperatorWeight = db
        .optional(sql, params![source_id, operator_id])
        .await?
        .ok_or_else(not_linked)?;
    let change = AuditChange::removed(action::WEIGHT_REMOVED, &removed);
    audit::record(db, actor, change).await
}

fn not_linked() -> AppError {
    AppError::NotFound("Operator is not linked to this source".to_owned())
}

impl Store {
    pub async fn create_source(&self, new: NewSource, actor: Actor) -> Result<Source> {
        transaction!(self, |db| create(db, &new, actor).await)
    }

    pub async fn list_sources(&self, page: Page) -> Result<Vec<Source>> {
        read!(self, |db| list(db, page).await)
    }

    pub async fn get_source(&self, id: i64) -> Result<SourceDetail> {
        read!(self, |db| detail(db, id).await)
    }

    pub async fn update_source(
        &self,
        id: i64,
        changes: SourceChanges,
        actor: Actor,
    ) -> Result<Source> {
        transaction!(self, |db| update(db, id, &changes, actor).await)
    }

    pub async fn delete_source(&self, id: i64, actor: Actor) -> Result<()> {
        transaction!(self, |db| delete(db, id, actor).await)
    }

    pub async fn link_operator(
        &self,
        source_id: i64,
        operator_id: i64,
        weight: Weight,
        actor: Actor,
    ) -> Result<OperatorWeight> {
        let routing = self.routing.clone();
        let (linked, drained) = transaction!(self, |db| {
            link(db, &routing, source_id, operator_id, weight, actor).await
        })?;
        self.changed(&drained).await;
        Ok(linked)
    }

    pub async fn update_weight(
        &self,
        source_id: i64,
        operator_id: i64,
        weight: Weight,
        actor: Actor,
    ) -> Result<OperatorWeight> {
        let routing = self.routing.clone();
        let (updated, drained) = transaction!(self, |db| {
            update_weight(db, &routing, source_id, operator_id, weight, actor).await
        })?;
        self.changed(&drained).await;
        Ok(updated)
    }

    pub async fn unlink_operator(
        &self,
        source_id: i64,
        operator_id: i64,
        actor: Actor,
    ) -> Result<()> {
        transaction!(self, |db| unlink(db, source_id, operator_id, actor).await)
    }
}
