//! The records leadrouter keeps, in the shape the API returns them. The store reads them straight from rows
//! (`FromRow`), the API serialises them as they are: one struct per record, no copies to keep in step.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

/// Now, at the precision both databases keep (microseconds), so that what is returned on creation is exactly
/// what is read back later.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// RFC 3339 in UTC with a `Z` and always six fractional digits: `2026-11-25T16:38:00.123456Z`.
pub fn serialize_timestamp<S: Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// A person who handles contacts.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Operator {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "Оператор 1")]
    pub name: String,
    /// Whether the operator takes new contacts.
    pub is_active: bool,
    /// Most contacts in status `active` the operator is given automatically.
    #[schema(example = 10)]
    pub max_load: i64,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub created_at: DateTime<Utc>,
    /// Contacts in status `active` assigned to the operator (shown by the stats endpoint).
    #[serde(skip)]
    pub active_load: i64,
}

/// A channel leads write through: a bot.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Source {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "Telegram Bot")]
    pub name: String,
    #[schema(example = "Бот в Telegram")]
    pub description: Option<String>,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub created_at: DateTime<Utc>,
}

/// An operator's weight (competence) on a source.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct OperatorWeight {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = 1)]
    pub source_id: i64,
    #[schema(example = 1)]
    pub operator_id: i64,
    /// Share of the source's contacts is weight / sum of the weights of the operators free at the time.
    #[schema(example = 10.0)]
    pub weight: f64,
}

/// A weight with the operator's name beside it, as `GET /sources/{id}` lists them.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct NamedOperatorWeight {
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub weight: OperatorWeight,
    #[schema(example = "Оператор 1")]
    pub operator_name: String,
}

/// A source with its distribution settings.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SourceDetail {
    #[serde(flatten)]
    pub source: Source,
    pub operator_weights: Vec<NamedOperatorWeight>,
}

/// A person who writes to the business, possibly through several sources.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Lead {
    #[schema(example = 1)]
    pub id: i64,
    /// The lead's id in the source's own system (a messenger user id, …).
    #[schema(example = "user123")]
    pub external_id: Option<String>,
    /// E.164.
    #[schema(example = "+79991234567")]
    pub phone: Option<String>,
    /// Lower case.
    #[schema(example = "ivan@example.com")]
    pub email: Option<String>,
    #[schema(example = "Иван Иванов")]
    pub name: Option<String>,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub created_at: DateTime<Utc>,
}

/// One message of a lead through a source, and who handles it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Contact {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = 1)]
    pub lead_id: i64,
    #[schema(example = 1)]
    pub source_id: i64,
    /// `null` when no operator was free (or the operator was deleted).
    #[schema(example = 2)]
    pub operator_id: Option<i64>,
    /// `active` counts towards the operator's load; any other label (`closed`, …) does not.
    #[schema(example = "active")]
    pub status: String,
    #[schema(example = "Хочу узнать о продукте")]
    pub message: Option<String>,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub created_at: DateTime<Utc>,
    pub lead: Lead,
    pub source: Source,
    pub operator: Option<Operator>,
}

/// A lead with all its contacts, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadDetail {
    pub lead: Lead,
    pub contacts: Vec<Contact>,
}
