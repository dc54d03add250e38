//! Pure rules, no I/O: the values a request is parsed into, which lead a contact belongs to, and who among
//! the operators gets it.

pub mod access;
pub mod availability;
pub mod clock;
pub mod fairness;
pub mod identity;
pub mod routing;
pub mod simulation;
pub mod strategy;
pub mod values;
pub mod webhooks;
pub mod work_rules;

pub use access::{Need, Reach, Scope};
pub use availability::{
    Accepting, Availability, NotAccepting, Period, Presence, Schedule, Shift, ShiftSpelling,
    TimeZoneName,
};
pub use clock::Clock;
pub use identity::{
    Email, KnownLead, LeadIdentity, LeadResolution, Phone, PhoneRegion, resolve_lead,
};
pub use routing::{
    CapacityClaim, Chooser, LinkedOperator, RandomSource, Routing, candidates, choose_and_claim,
    evaluate, random_generator,
};
pub use strategy::{
    Candidate, Decision, Excluded, Exclusion, Field, Round, Strategy, weighted_shares,
};
pub use values::*;
pub use webhooks::{DeliveryState, MAX_URL_CHARS, WebhookUrl};
pub use work_rules::{AcceptTimeout, StickyHours, UnavailablePolicy};
