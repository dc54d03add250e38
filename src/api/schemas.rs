//! The response schemas several resources return: a contact with its lead, source and operator, and an entry
//! of its history. Webhook events carry them too, spelled alike by `store::webhooks::event_data` (which the
//! store cannot borrow from here); a test below keeps the two in step.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::wire::{serialize_optional_timestamp, serialize_timestamp};
use crate::domain;
use crate::store::{contacts, decisions, history, leads, operators, sources};

/// A person who handles contacts, with whether they take contacts now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Operator {
    #[serde(flatten)]
    pub record: ContactOperator,
    /// The operator's own switch: `available`, `away` (until `away_until`, or until switched back) or
    /// `offline`.
    #[schema(value_type = AvailabilityName)]
    pub availability: &'static str,
    /// When an away operator is available again by themselves.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, example = json!(null))]
    pub away_until: Option<DateTime<Utc>>,
    /// IANA time-zone name the schedule is read in.
    #[schema(example = "Europe/Berlin")]
    pub timezone: &'static str,
    /// Weekly working hours; `null`: always on shift.
    pub schedule: Option<Vec<Shift>>,
    /// Whether the operator is given contacts now: active, available, on shift and not on time off.
    pub accepting: bool,
    /// Why not, the first that applies: `inactive`, `away`, `offline`, `off_shift`, `time_off`; `null` while
    /// accepting.
    #[schema(value_type = Option<NotAcceptingName>, example = json!(null))]
    pub not_accepting_because: Option<&'static str>,
    /// When `accepting` next flips by the schedule, time off or `away_until`; `null` if nothing scheduled
    /// changes it.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, example = json!(null))]
    pub next_change_at: Option<DateTime<Utc>>,
}

/// An operator's own fields: what a contact shows of its operator, and the start of every operator response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactOperator {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "Оператор 1")]
    pub name: String,
    /// Whether the admin lets the operator take new contacts.
    pub is_active: bool,
    /// Most contacts in status `active` the operator is given automatically.
    #[schema(example = 10)]
    pub max_load: i64,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub created_at: DateTime<Utc>,
}

/// An operator's own availability.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AvailabilityName {
    Available,
    Away,
    Offline,
}

/// What becomes of an operator's contacts on a source when the operator stops taking contacts.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum UnavailablePolicyName {
    Keep,
    Requeue,
}

/// How a source chooses among its candidates (README, "Why this operator").
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum StrategyName {
    WeightedRandom,
    SmoothWeighted,
    LeastLoaded,
}

/// Why an operator does not take contacts.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum NotAcceptingName {
    Inactive,
    Away,
    Offline,
    OffShift,
    TimeOff,
}

/// A day of the week.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum DayName {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// A weekly interval of working hours, in the operator's time zone. It belongs to the day it starts on; one
/// whose `end` is not after its `start` ends the next day (`22:00`–`06:00`; `09:00`–`09:00` is 24 hours).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Shift {
    /// The days it starts on (at least one).
    #[schema(value_type = Vec<DayName>, example = json!(["mon", "tue", "wed", "thu", "fri"]), min_items = 1)]
    pub days: Vec<String>,
    /// "HH:MM", 00:00 to 23:59.
    #[schema(example = "09:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    /// "HH:MM", 00:00 to 23:59; equal to `start`, a whole day.
    #[schema(example = "18:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub end: String,
}

impl Shift {
    pub fn from_domain(shift: &domain::Shift) -> Self {
        let spelled = shift.spelling();
        Shift {
            days: spelled.days,
            start: spelled.start,
            end: spelled.end,
        }
    }

    pub fn spelling(&self) -> domain::ShiftSpelling {
        domain::ShiftSpelling {
            days: self.days.clone(),
            start: self.start.clone(),
            end: self.end.clone(),
        }
    }
}

/// A channel leads write through: a bot, with its work rules.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Source {
    #[serde(flatten)]
    pub record: ContactSource,
    /// `keep`: an operator's active contacts stay with them when they stop taking contacts; `requeue`:
    /// they go back to this queue, at their age.
    #[schema(value_type = UnavailablePolicyName, example = "keep")]
    pub on_operator_unavailable: &'static str,
    /// A returning lead goes to the operator of their contact assigned within this many hours, if that
    /// operator can take it now; 0: off.
    #[schema(example = 0)]
    pub sticky_hours: i64,
    /// Seconds an operator has to accept a contact before it goes to another; 0: off.
    #[schema(example = 0)]
    pub accept_timeout_secs: i64,
    /// How the source chooses among its candidates: `weighted_random` (the specification's rule),
    /// `smooth_weighted` (deterministic, within one contact of each operator's weighted share) or
    /// `least_loaded` (the lowest load / max_load).
    #[schema(value_type = StrategyName, example = "weighted_random")]
    pub strategy: &'static str,
}

/// A person who writes to the business, possibly through several sources.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
    /// When its operator got it; `null` without one.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub assigned_at: Option<DateTime<Utc>>,
    /// When its operator accepted it (`POST /contacts/{id}/accept`); `null` until then.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime, example = json!(null))]
    pub accepted_at: Option<DateTime<Utc>>,
    pub lead: Lead,
    pub source: ContactSource,
    pub operator: Option<ContactOperator>,
    /// While the contact waits (no operator, status `active`): its place in its source's queue, from 1 for
    /// the oldest. `null` otherwise.
    #[schema(example = json!(null))]
    pub queue_position: Option<i64>,
    /// While the contact waits: the seconds it may expect to wait, `queue_position / pace` rounded up, where
    /// the pace is the rate at which its source's queue was assigned lately — its latest (at most 50)
    /// assignments from the queue in the past hour, over the time from the oldest of them to now (at least a
    /// minute). It supposes the queue keeps that pace. `null` when the contact does not wait, or nothing was
    /// assigned from its source's queue in the past hour.
    #[schema(example = json!(null), minimum = 0)]
    pub eta_seconds: Option<i64>,
}

/// One change in a contact's life: its creation, an assignment, a status change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = 1)]
    pub contact_id: i64,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub at: DateTime<Utc>,
    /// `created`, `assigned`, `unassigned`, `status_changed` or `accepted`.
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
    /// `creation` (routed, or left waiting, as it arrived), `sticky` (a returning lead routed to their
    /// previous operator), `queue` (assigned as capacity freed up), `manual` (through the API),
    /// `operator_deleted`, `operator_unavailable` (requeued when the operator stopped taking contacts),
    /// `accept_timeout` (not accepted in time) or `declined` (given up by the operator).
    #[schema(example = "queue")]
    pub reason: String,
    /// The API key that made a manual change (`null` while the API is open, and for automatic changes).
    #[schema(example = json!(null))]
    pub api_key_id: Option<i64>,
    /// The routing decision behind an automatic assignment attempt (`GET /contacts/{id}/decisions` lists
    /// it); `null` for changes by hand.
    #[schema(example = 4)]
    pub decision_id: Option<i64>,
}

impl From<operators::Operator> for ContactOperator {
    fn from(operator: operators::Operator) -> Self {
        Self {
            id: operator.id,
            name: operator.name,
            is_active: operator.is_active,
            max_load: operator.max_load,
            created_at: operator.created_at,
        }
    }
}

impl From<operators::OperatorNow> for Operator {
    fn from(now: operators::OperatorNow) -> Self {
        let operators::OperatorNow {
            operator,
            accepting,
        } = now;
        Self {
            availability: operator.availability.as_str(),
            away_until: operator.away_until,
            timezone: operator.timezone.as_str(),
            schedule: operator
                .schedule
                .as_ref()
                .map(|schedule| schedule.0.iter().map(Shift::from_domain).collect()),
            record: ContactOperator::from(operator),
            accepting: accepting.accepting,
            not_accepting_because: accepting.because.map(domain::NotAccepting::as_str),
            next_change_at: accepting.next_change_at,
        }
    }
}

/// A source's own fields: what a contact shows of its source (its work rules are the source's business, read
/// at `GET /sources/{id}`), and the start of every source response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactSource {
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

impl From<sources::Source> for ContactSource {
    fn from(source: sources::Source) -> Self {
        Self {
            id: source.id,
            name: source.name,
            description: source.description,
            created_at: source.created_at,
        }
    }
}

impl From<sources::Source> for Source {
    fn from(source: sources::Source) -> Self {
        Self {
            on_operator_unavailable: source.rules.on_operator_unavailable.as_str(),
            sticky_hours: source.rules.sticky_hours.get(),
            accept_timeout_secs: source.rules.accept_timeout.secs(),
            strategy: source.rules.strategy.as_str(),
            record: ContactSource::from(source),
        }
    }
}

impl From<leads::Lead> for Lead {
    fn from(lead: leads::Lead) -> Self {
        Self {
            id: lead.id,
            external_id: lead.external_id,
            phone: lead.phone,
            email: lead.email,
            name: lead.name,
            created_at: lead.created_at,
        }
    }
}

impl From<contacts::Contact> for Contact {
    fn from(contact: contacts::Contact) -> Self {
        Self {
            id: contact.id,
            lead_id: contact.lead_id,
            source_id: contact.source_id,
            operator_id: contact.operator_id,
            status: contact.status.as_str().to_owned(),
            message: contact.message,
            created_at: contact.created_at,
            assigned_at: contact.assigned_at,
            accepted_at: contact.accepted_at,
            lead: contact.lead.into(),
            source: contact.source.into(),
            operator: contact.operator.map(Into::into),
            queue_position: contact.queue_position,
            eta_seconds: contact.eta_seconds,
        }
    }
}

/// Why a linked operator was no candidate.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ExclusionName {
    Inactive,
    Away,
    Offline,
    OffShift,
    TimeOff,
    Full,
    Declined,
}

/// A candidate of a routing decision, as it stood then.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionCandidate {
    #[schema(example = 2)]
    pub operator_id: i64,
    /// Their name now; `null` once the operator is deleted.
    #[schema(example = "Анна")]
    pub operator_name: Option<String>,
    #[schema(example = 3.0)]
    pub weight: f64,
    /// Their active contacts then.
    #[schema(example = 2)]
    pub load: i64,
    #[schema(example = 5)]
    pub max_load: i64,
    /// The chance the strategy gave them: weight / Σ weights for `weighted_random`; 1 for the one chosen
    /// and 0 for the others for the deterministic strategies and sticky assignments.
    #[schema(example = 0.75)]
    pub probability: f64,
}

/// A linked operator left out of a routing decision, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionExclusion {
    #[schema(example = 3)]
    pub operator_id: i64,
    #[schema(example = "Борис")]
    pub operator_name: Option<String>,
    /// `inactive`, `away`, `offline`, `off_shift`, `time_off`, `full`, or `declined` (they declined this
    /// contact or let it time out).
    #[schema(value_type = ExclusionName, example = "full")]
    pub why: &'static str,
}

/// One automatic assignment attempt: whom the source's strategy could choose from, whom it left out and why,
/// whom it chose, and what it used.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoutingDecision {
    #[schema(example = 4)]
    pub id: i64,
    #[schema(example = 1)]
    pub contact_id: i64,
    #[schema(example = 1)]
    pub source_id: i64,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T16:38:00.123456Z")]
    pub at: DateTime<Utc>,
    /// What prompted it, as in the history: `creation`, `sticky`, `queue`, `accept_timeout`, `declined` or
    /// `operator_unavailable`.
    #[schema(example = "creation")]
    pub reason: String,
    /// The source's strategy then.
    #[schema(value_type = StrategyName, example = "weighted_random")]
    pub strategy: &'static str,
    /// `null`: nobody could take the contact, and it waits.
    #[schema(example = 2)]
    pub chosen_operator_id: Option<i64>,
    pub candidates: Vec<DecisionCandidate>,
    pub excluded: Vec<DecisionExclusion>,
    /// What the strategy used: `weighted_random` its draw (`random` in [0, `total_weight`)); `smooth_weighted`
    /// each candidate's credit before the choice, the round's assignments, and whether the round started
    /// afresh; `least_loaded` the lowest load ratio, the operators tied at it and what broke the tie; a sticky
    /// assignment the previous operator and the window in hours.
    #[schema(value_type = Object, example = json!({"random": 17.3, "total_weight": 40.0}))]
    pub detail: serde_json::Value,
}

impl From<decisions::DecisionRecord> for RoutingDecision {
    fn from(decision: decisions::DecisionRecord) -> Self {
        Self {
            id: decision.id,
            contact_id: decision.contact_id,
            source_id: decision.source_id,
            at: decision.at,
            reason: decision.reason,
            strategy: decision.strategy.as_str(),
            chosen_operator_id: decision.chosen_operator_id,
            candidates: decision
                .candidates
                .into_iter()
                .map(|c| DecisionCandidate {
                    operator_id: c.operator_id,
                    operator_name: c.operator_name,
                    weight: c.weight,
                    load: c.load,
                    max_load: c.max_load,
                    probability: c.probability,
                })
                .collect(),
            excluded: decision
                .excluded
                .into_iter()
                .map(|e| DecisionExclusion {
                    operator_id: e.operator_id,
                    operator_name: e.operator_name,
                    why: e.why.as_str(),
                })
                .collect(),
            detail: decision.detail,
        }
    }
}

impl From<history::HistoryEntry> for HistoryEntry {
    fn from(entry: history::HistoryEntry) -> Self {
        Self {
            id: entry.id,
            contact_id: entry.contact_id,
            at: entry.at,
            event: entry.event,
            from_operator_id: entry.from_operator_id,
            to_operator_id: entry.to_operator_id,
            from_status: entry.from_status.as_ref().map(|s| s.as_str().to_owned()),
            to_status: entry.to_status.as_str().to_owned(),
            reason: entry.reason,
            api_key_id: entry.api_key_id,
            decision_id: entry.decision_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::Status;
    use crate::store::webhooks::event_data;

    #[test]
    fn webhook_events_spell_contacts_and_changes_as_the_api_does() {
        let at = crate::store::now();
        let operator = operators::Operator {
            id: 2,
            name: "Ann".to_owned(),
            is_active: true,
            max_load: 10,
            created_at: at,
            active_load: 1,
            availability: domain::Availability::Away,
            away_until: None,
            timezone: domain::TimeZoneName::UTC,
            schedule: None,
        };
        let contact = contacts::Contact {
            id: 3,
            lead_id: 4,
            source_id: 5,
            operator_id: Some(2),
            status: Status::active(),
            message: Some("Hi".to_owned()),
            created_at: at,
            assigned_at: Some(at),
            accepted_at: Some(at),
            lead: leads::Lead {
                id: 4,
                external_id: Some("user123".to_owned()),
                phone: None,
                email: Some("ivan@example.com".to_owned()),
                name: None,
                created_at: at,
            },
            source: sources::Source {
                id: 5,
                name: "Bot".to_owned(),
                description: None,
                created_at: at,
                rules: sources::WorkRules {
                    on_operator_unavailable: domain::UnavailablePolicy::Requeue,
                    sticky_hours: domain::StickyHours::parse(24).unwrap(),
                    accept_timeout: domain::AcceptTimeout::parse(90).unwrap(),
                    strategy: domain::Strategy::SmoothWeighted,
                },
            },
            operator: Some(operator),
            queue_position: None,
            eta_seconds: None,
        };
        let entry = history::HistoryEntry {
            id: 6,
            contact_id: 3,
            at,
            event: history::entry::STATUS_CHANGED.to_owned(),
            from_operator_id: Some(2),
            to_operator_id: Some(2),
            from_status: Some(Status::parse("closed").unwrap()),
            to_status: Status::active(),
            reason: history::reason::MANUAL.to_owned(),
            api_key_id: Some(7),
            decision_id: Some(4),
        };
        let waiting = contacts::Contact {
            operator_id: None,
            operator: None,
            assigned_at: None,
            accepted_at: None,
            queue_position: Some(1),
            eta_seconds: Some(120),
            ..contact.clone()
        };
        for contact in [contact, waiting] {
            let sent: Value = serde_json::from_str(&event_data(&contact, &entry)).unwrap();
            let shown = json!({
                "contact": Contact::from(contact),
                "change": HistoryEntry::from(entry.clone()),
            });
            assert_eq!(sent, shown);
        }
    }
}
