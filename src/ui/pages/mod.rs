//! The dashboard's pages, one module per area, and what they share: how a routing decision reads.

pub mod contacts;
pub mod me;
pub mod now;
pub mod setup;

use chrono::{DateTime, TimeZone, Utc};
use maud::{Markup, html};

use super::session::Viewer;
use crate::store::decisions::DecisionRecord;

/// "→ Anna: weight 3, load 2/5; skipped Boris (full), Vera (away)", or "nobody free; skipped …".
pub fn decision_summary(viewer: &Viewer, decision: &DecisionRecord) -> Markup {
    let t = viewer.lang.texts();
    let lang = viewer.lang;
    let chosen = decision.chosen_operator_id.and_then(|id| {
        decision
            .candidates
            .iter()
            .find(|c| c.operator_id == id)
            .map(|c| (id, c))
    });
    let name = |id: i64, name: &Option<String>| name.clone().unwrap_or_else(|| format!("#{id}"));
    html! {
        @match (decision.chosen_operator_id, chosen) {
            (Some(id), Some((_, c))) => {
                "→ " strong { (name(id, &c.operator_name)) } ": "
                (t.weight.to_lowercase()) " " (trim_float(c.weight)) ", "
                (t.load.to_lowercase()) " " (c.load) "/" (c.max_load)
            }
            (Some(id), None) => { "→ " strong { "#" (id) } }
            (None, _) => { (t.nobody_free) }
        }
        @if !decision.excluded.is_empty() {
            "; " (t.skipped) " "
            @for (i, e) in decision.excluded.iter().enumerate() {
                @if i > 0 { ", " }
                (name(e.operator_id, &e.operator_name)) " (" (lang.code_name(e.why.as_str())) ")"
            }
        }
    }
}

/// `3` rather than `3.0`, `2.5` as it is.
pub fn trim_float(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// The start of the viewer's day, in UTC.
pub fn day_start(viewer: &Viewer, now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&viewer.tz).date_naive();
    let midnight = local.and_hms_opt(0, 0, 0).unwrap_or_default();
    viewer
        .tz
        .from_local_datetime(&midnight)
        .earliest()
        .map_or(now, |start| start.with_timezone(&Utc))
}

/// Who a contact is from, as a desk names them: name, else phone, email or external id.
pub fn lead_label(contact: &crate::store::contacts::Contact) -> String {
    let lead = &contact.lead;
    lead.name
        .clone()
        .or_else(|| lead.phone.clone())
        .or_else(|| lead.email.clone())
        .or_else(|| lead.external_id.clone())
        .unwrap_or_else(|| format!("lead #{}", lead.id))
}
