//! Contacts: the list with the API's filters (and its CSV download), and one contact with every routing
//! decision about it and its history.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use maud::html;
use serde::Deserialize;

use super::{decision_summary, lead_label, trim_float};
use crate::AppState;
use crate::api::export::Rows;
use crate::domain::Status;
use crate::domain::fairness::Window;
use crate::error::AppError;
use crate::store::Page;
use crate::store::contacts::ContactFilter;
use crate::ui::layout::{Nav, empty, not_found, page, percent, table_head, time};
use crate::ui::session::{Viewer, percent_encode};

const CONTACTS_SHOWN: i64 = 100;

/// The list's filters, as the API names them; blank fields do not filter. `since` and `until` are the
/// browser's `datetime-local` values, read in the viewer's time zone.
#[derive(Debug, Deserialize, Default)]
pub struct Filters {
    source_id: Option<String>,
    operator_id: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

fn number(field: &Option<String>) -> Option<i64> {
    field.as_deref().and_then(|v| v.trim().parse().ok())
}

impl Filters {
    fn status(&self) -> Option<Status> {
        self.status
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|s| Status::parse(s).ok())
    }

    fn local_time(&self, viewer: &Viewer, field: &Option<String>) -> Option<DateTime<Utc>> {
        let text = field.as_deref().filter(|v| !v.is_empty())?;
        let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").ok()?;
        let at = viewer.tz.from_local_datetime(&local).earliest()?;
        Some(at.with_timezone(&Utc))
    }

    fn filter(&self, viewer: &Viewer) -> ContactFilter {
        let since = self.local_time(viewer, &self.since);
        let until = self.local_time(viewer, &self.until);
        ContactFilter {
            source_id: number(&self.source_id),
            operator_id: number(&self.operator_id),
            status: self.status(),
            created: Window::new(since, until).unwrap_or_default(),
            ..ContactFilter::default()
        }
    }

    /// The same filters, as the query of the download link.
    fn query(&self) -> String {
        let fields = [
            ("source_id", &self.source_id),
            ("operator_id", &self.operator_id),
            ("status", &self.status),
            ("since", &self.since),
            ("until", &self.until),
        ];
        fields
            .iter()
            .filter_map(|(name, value)| {
                let value = value.as_deref().filter(|v| !v.is_empty())?;
                Some(format!("{name}={}", percent_encode(value)))
            })
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// `GET /ui/export/contacts.csv`: the list's contacts, every one the filters select, as the API streams them.
pub async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(filters): Query<Filters>,
) -> Result<Response, AppError> {
    if !viewer.sees_the_desk() && viewer.operator_id().is_none() {
        return Ok(crate::ui::refuse(&viewer));
    }
    let filter = filters.filter(&viewer);
    let rows = Rows {
        skip: 0,
        limit: None,
    };
    crate::api::export::contacts(state.clone(), viewer.caller.reach(), filter, rows).await
}

/// `GET /ui/export/sources/{id}.csv`: the source's stats, all time.
pub async fn export_source(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(file): Path<String>,
) -> Result<Response, AppError> {
    if !viewer.sees_the_desk() {
        return Ok(crate::ui::refuse(&viewer));
    }
    let Some(id) = file.strip_suffix(".csv").and_then(|id| id.parse().ok()) else {
        return Ok(not_found(&viewer));
    };
    crate::api::export::source_stats(&state, id, Window::default()).await
}

pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(filters): Query<Filters>,
) -> Result<Response, AppError> {
    if !viewer.sees_the_desk() {
        return Ok(crate::ui::refuse(&viewer));
    }
    let t = viewer.lang.texts();
    let lang = viewer.lang;
    let status = filters.status();
    let filter = filters.filter(&viewer);
    let contacts = state
        .store
        .list_contacts(
            &filter,
            Page {
                skip: 0,
                limit: CONTACTS_SHOWN,
            },
        )
        .await?;
    let sources = state
        .store
        .list_sources(Page {
            skip: 0,
            limit: 1000,
        })
        .await?;
    let operators = state.store.operators_now().await?;
    let export = format!("/ui/export/contacts.csv?{}", filters.query());
    let body = html! {
        h1 { (t.nav_contacts) }
        form.filters method="get" action="/ui/contacts" aria-label=(t.filter) {
            label { (t.source) " "
                select name="source_id" {
                    option value="" { (t.any) }
                    @for s in &sources { option value=(s.id) selected[filter.source_id == Some(s.id)] { (s.name) } }
                }
            }
            label { (t.operator) " "
                select name="operator_id" {
                    option value="" { (t.any) }
                    @for o in &operators {
                        option value=(o.operator.id) selected[filter.operator_id == Some(o.operator.id)] { (o.operator.name) }
                    }
                }
            }
            label { (t.status) " "
                select name="status" {
                    option value="" { (t.any) }
                    @for code in ["active", "closed"] {
                        option value=(code) selected[status.as_ref().is_some_and(|s| s.as_str() == code)] { (lang.code_name(code)) }
                    }
                }
            }
            label { (t.from) " "
                input type="datetime-local" name="since" value=[filters.since.as_deref()];
            }
            label { (t.until) " "
                input type="datetime-local" name="until" value=[filters.until.as_deref()];
            }
            button type="submit" { (t.filter) }
            " "
            a.button #export href=(export) download { (t.export_csv) }
        }
        @if contacts.is_empty() { (empty(t.no_contacts)) }
        @else {
            div.table-wrap {
            table.contacts {
                (table_head(&["#", t.lead, t.source, t.operator, t.status, t.created]))
                tbody {
                    @for c in &contacts {
                        tr data-contact-id=(c.id) {
                            th scope="row" { a href=(format!("/ui/contacts/{}", c.id)) { (c.id) } }
                            td data-label=(t.lead) { (lead_label(c)) }
                            td data-label=(t.source) { (c.source.name) }
                            td data-label=(t.operator) { @match &c.operator { Some(o) => (o.name), None => span.muted { (t.unassigned) } } }
                            td data-label=(t.status) { (lang.code_name(c.status.as_str())) }
                            td data-label=(t.created) { (time(&viewer, c.created_at)) }
                        }
                    }
                }
            }
            }
        }
    };
    Ok(page(&viewer, t.nav_contacts, Nav::Contacts, body).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    if !viewer.sees_the_desk() && viewer.operator_id().is_none() {
        return Ok(crate::ui::refuse(&viewer));
    }
    let t = viewer.lang.texts();
    let lang = viewer.lang;
    let reach = viewer.caller.reach();
    let contact = match state.store.get_contact(id, reach).await {
        Ok(contact) => contact,
        Err(AppError::NotFound(_)) => return Ok(not_found(&viewer)),
        Err(error) => return Err(error),
    };
    let all = Page {
        skip: 0,
        limit: 1000,
    };
    let decisions = state.store.contact_decisions(id, reach, all).await?;
    let history = state.store.contact_history(id, reach, all).await?;
    let operator_names = state.store.operator_names().await?;
    let operator_label = |id: i64| {
        operator_names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    };
    let title = format!("{} #{id}", t.contact);
    let body = html! {
        h1 { (title) }
        dl.facts {
            dt { (t.lead) } dd { (lead_label(&contact)) }
            dt { (t.source) } dd { (contact.source.name) }
            dt { (t.operator) } dd { @match &contact.operator { Some(o) => (o.name), None => (t.unassigned) } }
            dt { (t.status) } dd { (lang.code_name(contact.status.as_str())) }
            dt { (t.created) } dd { (time(&viewer, contact.created_at)) }
            @if let Some(message) = &contact.message { dt { (t.message) } dd { (message) } }
        }
        section aria-labelledby="decisions-title" {
            h2 #decisions-title { (t.decisions) }
            @if decisions.is_empty() { (empty(t.no_decisions)) }
            @for d in &decisions {
                article.decision data-decision-id=(d.id) {
                    h3 { (time(&viewer, d.at)) " · " (lang.code_name(&d.reason)) " · " (lang.code_name(d.strategy.as_str())) }
                    p { (decision_summary(&viewer, d)) }
                    @if !d.candidates.is_empty() {
                        div.table-wrap {
                        table {
                            caption { (t.candidates) }
                            (table_head(&[t.operator, t.weight, t.load, t.probability]))
                            tbody {
                                @for c in &d.candidates {
                                    tr class=[(d.chosen_operator_id == Some(c.operator_id)).then_some("chosen")] {
                                        th scope="row" { (c.operator_name.clone().unwrap_or_else(|| format!("#{}", c.operator_id)))
                                            @if d.chosen_operator_id == Some(c.operator_id) { " ✓" span.visually-hidden { (t.chosen) } } }
                                        td { (trim_float(c.weight)) }
                                        td { (c.load) " / " (c.max_load) }
                                        td { (percent(c.probability)) }
                                    }
                                }
                            }
                        }
                        }
                    }
                    @if !d.excluded.is_empty() {
                        p { (t.excluded) ": "
                            @for (i, e) in d.excluded.iter().enumerate() {
                                @if i > 0 { ", " }
                                (e.operator_name.clone().unwrap_or_else(|| format!("#{}", e.operator_id)))
                                " (" (lang.code_name(e.why.as_str())) ")"
                            }
                        }
                    }
                    details { summary { "detail" } pre { (serde_json::to_string_pretty(&d.detail).unwrap_or_default()) } }
                }
            }
        }
        section aria-labelledby="history-title" {
            h2 #history-title { (t.history) }
            ol.history {
                @for h in &history {
                    li {
                        (time(&viewer, h.at)) " · " (lang.code_name(&h.event)) " · " (lang.code_name(&h.reason))
                        @if let Some(to) = h.to_operator_id { " → " (operator_label(to)) }
                        " · " (lang.code_name(h.to_status.as_str()))
                    }
                }
            }
        }
    };
    Ok(page(&viewer, &title, Nav::Contacts, body).into_response())
}
