//! The records leadrouter keeps, in the shape the API returns them. The store reads them straight from rows
//! (`FromRow`), the API serialises them as they are: one struct per record, no copies to keep in step.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{self, AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

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

pub fn serialize_optional_timestamp<S: Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serialize_timestamp(time, serializer),
        None => serializer.serialize_none(),
    }
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
    /// While the contact waits (no operator, status `active`): its place in its source's queue, from 1 for
    /// the oldest. `null` otherwise.
    #[schema(example = json!(null))]
    pub queue_position: Option<i64>,
}

impl Contact {
    /// Whether the contact waits in its source's queue.
    pub fn is_waiting(&self) -> bool {
        self.operator_id.is_none() && self.status == crate::domain::Status::ACTIVE
    }
}

/// One change in a contact's life: its creation, an assignment, a status change.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct HistoryEntry {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = 1)]
    pub contact_id: i64,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub at: DateTime<Utc>,
    /// `created`, `assigned`, `unassigned` or `status_changed`.
    #[schema(example = "assigned")]
    pub event: String,
    #[schema(example = json!(null))]
    pub from_operator_id: Option<i64>,
    #[schema(example = 2)]
    pub to_operator_id: Option<i64>,
    #[schema(example = "active")]
    pub from_status: Option<String>,
    #[schema(example = "active")]
    pub to_status: String,
    /// `creation` (routed, or left waiting, as it arrived), `queue` (assigned as capacity freed up), `manual`
    /// (through the API), or `operator_deleted`.
    #[schema(example = "queue")]
    pub reason: String,
    /// The API key that made a manual change (`null` while the API is open, and for automatic changes).
    #[schema(example = json!(null))]
    pub api_key_id: Option<i64>,
}

/// A receiver of events.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "https://crm.example.com/leadrouter")]
    pub url: String,
    #[schema(example = json!(["contact.assigned"]))]
    pub events: Vec<String>,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub created_at: DateTime<Utc>,
}

/// One event on its way to one webhook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = 1)]
    pub webhook_id: i64,
    #[schema(example = 1)]
    pub event_id: i64,
    #[schema(example = "contact.assigned")]
    pub event_type: String,
    /// `pending` (to be sent, or retried), `delivered` (a 2xx answer), or `failed` (every attempt failed).
    #[schema(example = "delivered")]
    pub state: String,
    #[schema(example = 1)]
    pub attempt_count: i64,
    /// When a pending delivery is next tried.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, example = json!(null))]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[schema(example = 200)]
    pub last_status_code: Option<i64>,
    #[schema(example = json!(null))]
    pub last_error: Option<String>,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-11-25T16:38:00.234567Z")]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One try at sending a delivery.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct DeliveryAttempt {
    #[schema(example = 1)]
    pub attempt: i64,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub at: DateTime<Utc>,
    /// The receiver's answer; `null` when there was none (refused connection, timeout).
    #[schema(example = 200)]
    pub status_code: Option<i64>,
    #[schema(example = json!(null))]
    pub error: Option<String>,
    #[schema(example = 12)]
    pub duration_ms: i64,
}

/// A delivery with the event it carries and every attempt at it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The event, exactly as sent: `{"id", "type", "created_at", "data": {"contact", "change"}}`.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempts: Vec<DeliveryAttempt>,
}

/// A lead with all its contacts, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeadDetail {
    pub lead: Lead,
    pub contacts: Vec<Contact>,
}

/// Reads an integer that JSON may spell `3` or `3.0` (both are integers to JSON Schema, and to the reference
/// implementation); a fraction or a value outside i64 is refused.
pub fn deserialize_whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<i64, D::Error> {
    struct WholeNumber;

    impl Visitor<'_> for WholeNumber {
        type Value = i64;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer")
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<i64, E> {
            Ok(value)
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<i64, E> {
            i64::try_from(value).map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<i64, E> {
            // 2^63 is the first whole f64 above i64::MAX.
            if value.fract() == 0.0 && value >= -(2f64.powi(63)) && value < 2f64.powi(63) {
                Ok(value as i64)
            } else {
                Err(E::invalid_value(Unexpected::Float(value), &self))
            }
        }
    }

    deserializer.deserialize_any(WholeNumber)
}

/// [`deserialize_whole_number`] for a field that may be absent or null.
pub fn deserialize_optional_whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Whole(#[serde(deserialize_with = "deserialize_whole_number")] i64);

    Ok(Option::<Whole>::deserialize(deserializer)?.map(|Whole(value)| value))
}

// The strings the API accepts, described for the OpenAPI document only: the API reads plain `String`s and
// checks them with the constructors of `domain`, which these patterns spell out. Leading and trailing white
// space (Unicode White_Space, as `str::trim` sees it, listed so that every regex dialect agrees) is trimmed
// before a length is counted; NUL is refused everywhere.

/// 1 to 255 characters once leading and trailing white space is trimmed; no NUL.
#[derive(ToSchema)]
#[schema(
    pattern = r"^[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00]{0,253}[^\x00\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
    example = "Telegram Bot"
)]
pub struct NameString(pub String);

/// At most 255 characters once leading and trailing white space is trimmed; blank counts as absent; no NUL.
#[derive(ToSchema)]
#[schema(
    pattern = r"^[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00]{0,253}[^\x00\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?)?[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
    example = "user123"
)]
pub struct ShortTextString(pub String);

/// A contact status: 1 to 32 characters once leading and trailing white space is trimmed; no NUL.
#[derive(ToSchema)]
#[schema(
    pattern = r"^[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00]{0,30}[^\x00\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
    example = "closed"
)]
pub struct StatusString(pub String);

/// A phone number that libphonenumber's metadata holds valid, in any common notation (`+7 999 123-45-67`,
/// `8 (999) 123-45-67`); without a country code it is read in the configured default region. Blank counts as
/// absent. No regular expression can say which numbers are valid, hence a format of our own: `phone`.
pub struct PhoneString(pub String);

impl PartialSchema for PhoneString {
    fn schema() -> RefOr<schema::Schema> {
        identifier_or_blank(
            SchemaFormat::Custom("phone".to_owned()),
            "A phone number valid in libphonenumber's metadata, in any common notation (`+7 999 123-45-67`, \
             `8 (999) 123-45-67`); without a country code it is read in the configured default region. Blank \
             counts as absent.",
            "+79991234567",
        )
    }
}

impl ToSchema for PhoneString {}

/// An email address with a dotted domain; leading and trailing white space is trimmed, and blank counts as
/// absent.
pub struct EmailString(pub String);

impl PartialSchema for EmailString {
    fn schema() -> RefOr<schema::Schema> {
        identifier_or_blank(
            SchemaFormat::KnownFormat(KnownFormat::Email),
            "An email address with a dotted domain, trimmed and lower-cased. Blank counts as absent.",
            "ivan@example.com",
        )
    }
}

impl ToSchema for EmailString {}

/// A string of the given format, or blank (white space only, as `str::trim` sees it).
fn identifier_or_blank(
    format: SchemaFormat,
    description: &str,
    example: &str,
) -> RefOr<schema::Schema> {
    let string = || ObjectBuilder::new().schema_type(schema::Type::String);
    AnyOfBuilder::new()
        .item(string().format(Some(format)))
        .item(string().pattern(Some(
            r"^[\t\n\x0B\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        )))
        .description(Some(description))
        .examples([serde_json::Value::from(example)])
        .into()
}

/// An API key, as listed: never its token, which is shown once at creation and stored only as a hash.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// `admin`, `ingest` or `read`.
    pub scope: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}
