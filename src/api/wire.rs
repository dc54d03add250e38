//! How values are spelled on the wire, for serde and the OpenAPI document: timestamps, whole numbers, and the
//! string types the API accepts.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{self, AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

/// RFC 3339 in UTC with a `Z` and always six fractional digits: `2026-11-25T16:38:00.123456Z`.
pub fn timestamp_text(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// [`timestamp_text`], for serde.
pub fn serialize_timestamp<S: Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&timestamp_text(time))
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

/// A field that may be left out for its default but, not being nullable, may not be `null`: serde would read
/// `null` as absent, where the reference implementation (and the document) refuse it.
pub fn deserialize_present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)?
        .map(Some)
        .ok_or_else(|| de::Error::custom(NULL_REFUSED))
}

/// [`deserialize_whole_number`] for a field that may be left out but not be `null`.
pub fn deserialize_present_whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    deserialize_optional_whole_number(deserializer)?
        .map(Some)
        .ok_or_else(|| de::Error::custom(NULL_REFUSED))
}

const NULL_REFUSED: &str = "may not be null (leave the field out for its default)";

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

/// An IANA time-zone name the time-zone database knows (`Europe/Berlin`, `UTC`). Which names exist is the
/// database's to say, hence a format of our own: `iana-time-zone`.
pub struct TimeZoneString(pub String);

impl PartialSchema for TimeZoneString {
    fn schema() -> RefOr<schema::Schema> {
        ObjectBuilder::new()
            .schema_type(schema::Type::String)
            .format(Some(SchemaFormat::Custom("iana-time-zone".to_owned())))
            .description(Some(
                "An IANA time-zone name known to the time-zone database (`Europe/Berlin`, `UTC`).",
            ))
            .examples([serde_json::json!("Europe/Berlin")])
            .into()
    }
}

impl ToSchema for TimeZoneString {}
