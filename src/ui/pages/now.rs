//! The manager's "Now" page: the desk at a glance, who works and how loaded, each source's shares and
//! queue, and the latest routing decisions.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::{day_start, decision_summary, lead_label, trim_float};
use crate::AppState;
use crate::api::stats::{SourceStats, read_source_stats};
use crate::domain::fairness::Window;
use crate::error::AppError;
use crate::store::Page;
use crate::store::dashboard::{DeskDay, Waiting};
use crate::store::decisions::DecisionRecord;
use crate::store::operators::OperatorNow;
use crate::store::sources::Source;
use crate::ui::chart::{self, Legend, ShareRow};
use crate::ui::layout::{
    self, Nav, accepting_pill, api_form, elapsed, empty, figure, page, table_head, time,
};
use crate::ui::session::{Viewer, see_other};

/// Waiting contacts shown per source, and decisions in the feed.
const WAITING_SHOWN: i64 = 10;
const FEED_LENGTH: i64 = 20;

struct SourceView {
    source: Source,
    stats: SourceStats,
    waiting: Vec<Waiting>,
}

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    if viewer.operator_id().is_some() {
        return Ok(see_other("/ui/me"));
    }
    if !viewer.sees_the_desk() {
        return Ok(crate::ui::refuse(&viewer));
    }
    let now = state.store.now();
    let today = day_start(&viewer, now);
    let operators = state.store.operators_now().await?;
    let day = state.store.desk_day(today).await?;
    let feed = state.store.recent_decisions(FEED_LENGTH).await?;
    let mut sources = Vec::new();
    let window =
        Window::new(Some(today), None).map_err(|e| AppError::Internal(anyhow::anyhow!(e.0)))?;
    for source in state
        .store
        .list_sources(Page {
            skip: 0,
            limit: 1000,
        })
        .await?
    {
        let stats = read_source_stats(&state, source.id, window).await?;
        let waiting = state
            .store
            .waiting_with_reasons(source.id, WAITING_SHOWN)
            .await?;
        sources.push(SourceView {
            source,
            stats,
            waiting,
        });
    }
    let t = viewer.lang.texts();
    let body = html! {
        h1.visually-hidden { (t.nav_now) }
        (strip(&viewer, &operators, &day, now))
        div.columns {
            div.main-column {
                (operator_table(&viewer, &operators, &day, now))
                @for source in &sources {
                    (source_block(&viewer, source, now))
                }
            }
            aside.side-column {
                (feed_list(&viewer, &feed))
            }
        }
    };
    Ok(page(&viewer, t.nav_now, Nav::Now, body).into_response())
}

fn strip(
    viewer: &Viewer,
    operators: &[OperatorNow],
    day: &DeskDay,
    now: chrono::DateTime<chrono::Utc>,
) -> Markup {
    let t = viewer.lang.texts();
    let accepting: Vec<&OperatorNow> = operators.iter().filter(|o| o.accepting.accepting).collect();
    let free_slots: i64 = accepting
        .iter()
        .map(|o| (o.operator.max_load - o.operator.active_load).max(0))
        .sum();
    html! {
        dl.strip aria-label=(t.nav_now) {
            (figure(t.waiting, html! { (day.waiting) }, "figure-waiting"))
            (figure(t.oldest_wait, match day.oldest_waiting_since {
                Some(since) => elapsed(now, since),
                None => html! { "–" },
            }, "figure-oldest-wait"))
            (figure(t.accepting_of_total, html! { (accepting.len()) " / " (operators.len()) }, "figure-accepting"))
            (figure(t.free_slots, html! { (free_slots) }, "figure-free-slots"))
            (figure(t.routed_today, html! { (day.arrived_today) }, "figure-routed-today"))
        }
    }
}

fn operator_table(
    viewer: &Viewer,
    operators: &[OperatorNow],
    day: &DeskDay,
    now: chrono::DateTime<chrono::Utc>,
) -> Markup {
    let t = viewer.lang.texts();
    let lang = viewer.lang;
    let may_change = viewer.may_change();
    html! {
        section #operators aria-labelledby="operators-title" {
            h2 #operators-title { (t.operators) }
            @if operators.is_empty() { (empty(t.none)) }
            @else {
            div.table-wrap {
            table.operators {
                (table_head(&[t.name, t.availability, t.load, t.oldest_active, t.assigned_today, t.actions]))
                tbody {
                    @for o in operators {
                        @let op = &o.operator;
                        @let extra = day.operators.get(&op.id).cloned().unwrap_or_default();
                        tr data-operator-id=(op.id) {
                            th scope="row" { (op.name) }
                            td {
                                (accepting_pill(viewer, &o.accepting))
                                " "
                                span.muted {
                                    (lang.code_name(op.availability.as_str())) " " (t.since) " "
                                    (time(viewer, extra.availability_changed_at.unwrap_or(op.created_at)))
                                }
                            }
                            td.load {
                                meter min="0" max=(op.max_load.max(1)) value=(op.active_load)
                                    aria-label=(format!("{} {}", t.load, op.name)) {}
                                " " span.load-figure { (op.active_load) " / " (op.max_load) }
                            }
                            td data-label=(t.oldest_active) { @match extra.oldest_active_at { Some(at) => (elapsed(now, at)), None => "–" } }
                            td.assigned-today data-label=(t.assigned_today) { (extra.assigned_today) }
                            td.actions {
                                (api_form(may_change, "PATCH", &format!("/operators/{}", op.id),
                                    if op.is_active { t.deactivate } else { t.activate }, "toggle",
                                    html! { input type="hidden" name="is_active" data-type="bool" value=(!op.is_active); },
                                    if op.is_active { t.deactivate } else { t.activate }))
                                (api_form(may_change, "PATCH", &format!("/operators/{}", op.id), t.availability, "availability",
                                    html! {
                                        label.visually-hidden for=(format!("availability-{}", op.id)) { (t.availability) " " (op.name) }
                                        select #(format!("availability-{}", op.id)) name="availability" {
                                            @for code in ["available", "away", "offline"] {
                                                option value=(code) selected[op.availability.as_str() == code] { (lang.code_name(code)) }
                                            }
                                        }
                                    }, t.save))
                                (api_form(may_change, "PATCH", &format!("/operators/{}", op.id), t.max_load, "max-load",
                                    html! {
                                        label.visually-hidden for=(format!("max-load-{}", op.id)) { (t.max_load) " " (op.name) }
                                        input #(format!("max-load-{}", op.id)) type="number" name="max_load" data-type="int"
                                            min="1" max="1000000" value=(op.max_load) size="4";
                                    }, t.save))
                            }
                        }
                    }
                }
            }
            }
            }
        }
    }
}

fn source_block(viewer: &Viewer, view: &SourceView, now: chrono::DateTime<chrono::Utc>) -> Markup {
    let t = viewer.lang.texts();
    let lang = viewer.lang;
    let source = &view.source;
    let stats = &view.stats;
    let today: std::collections::BTreeMap<i64, f64> = stats
        .fairness
        .operators
        .iter()
        .map(|o| (o.operator_id, o.actual_share))
        .collect();
    let rows: Vec<ShareRow> = stats
        .operator_distribution
        .iter()
        .filter_map(|share| {
            let id = share.operator_id?;
            Some(ShareRow {
                name: share
                    .operator_name
                    .clone()
                    .unwrap_or_else(|| format!("#{id}")),
                target: share.target_share.unwrap_or(0.0),
                today: today.get(&id).copied(),
                all_time: share.actual_share,
            })
        })
        .collect();
    let waiting_count = stats
        .operator_distribution
        .iter()
        .find(|s| s.operator_id.is_none())
        .map_or(0, |s| s.active_count);
    let linked: Vec<(i64, String)> = stats
        .operator_distribution
        .iter()
        .filter(|s| s.weight.is_some())
        .filter_map(|s| Some((s.operator_id?, s.operator_name.clone().unwrap_or_default())))
        .collect();
    html! {
        section.source data-source-id=(source.id) aria-labelledby=(format!("source-{}", source.id)) {
            h2 #(format!("source-{}", source.id)) {
                a href=(format!("/ui/sources/{}", source.id)) { (source.name) }
                " " span.muted { (t.strategy.to_lowercase()) ": " (lang.code_name(source.rules.strategy.as_str())) }
            }
            p.weights {
                (t.weights) ": "
                @for (i, share) in stats.operator_distribution.iter().filter(|s| s.weight.is_some()).enumerate() {
                    @if i > 0 { ", " }
                    (share.operator_name.clone().unwrap_or_default()) " " (trim_float(share.weight.unwrap_or(0.0)))
                }
                @if linked.is_empty() { (t.none) }
            }
            @if !rows.is_empty() {
                (chart::shares(&rows, &Legend {
                    title: t.share_chart,
                    target: t.target_share,
                    today: t.actual_today,
                    all_time: t.actual_all_time,
                }))
            }
            h3 { (t.queue) ": " span.queue-length { (waiting_count) } }
            @if view.waiting.is_empty() { (empty(t.nobody_waits)) }
            @else {
                div.table-wrap {
                table.queue {
                    (table_head(&[t.contact, t.waiting_since, t.eta, t.why_it_waits, t.assign]))
                    tbody {
                        @for w in &view.waiting {
                            @let c = &w.contact;
                            tr data-contact-id=(c.id) {
                                th scope="row" {
                                    a href=(format!("/ui/contacts/{}", c.id)) { "#" (c.id) }
                                    " " span.muted { (lead_label(c)) }
                                }
                                td { (elapsed(now, c.created_at)) }
                                td { @match c.eta_seconds { Some(s) => (layout::duration(s)), None => (t.no_eta) } }
                                td.why { @match &w.decision { Some(d) => (decision_summary(viewer, d)), None => "–" } }
                                td {
                                    (api_form(viewer.may_change() && !linked.is_empty(), "PATCH", &format!("/contacts/{}", c.id), t.assign, "assign",
                                        html! {
                                            label.visually-hidden for=(format!("assign-{}", c.id)) { (t.assign_to) " #" (c.id) }
                                            select #(format!("assign-{}", c.id)) name="operator_id" data-type="int" {
                                                @for (id, name) in &linked { option value=(id) { (name) } }
                                            }
                                        }, t.assign))
                                }
                            }
                        }
                    }
                }
                }
            }
            p.muted {
                (totals_line(viewer, stats)) " · "
                a href=(format!("/ui/export/sources/{}.csv", source.id)) download { (t.export_csv) }
            }
        }
    }
}

/// "Contacts, all time: 100 · unassigned: 3" under each source.
fn totals_line(viewer: &Viewer, stats: &SourceStats) -> Markup {
    let t = viewer.lang.texts();
    html! {
        (t.contacts_count) ", " (t.all_time) ": " (stats.total_contacts) " · "
        (t.unassigned) ": " (stats.unassigned_contacts)
    }
}

fn feed_list(viewer: &Viewer, feed: &[DecisionRecord]) -> Markup {
    let t = viewer.lang.texts();
    html! {
        section #feed aria-labelledby="feed-title" {
            h2 #feed-title { (t.feed) }
            @if feed.is_empty() { (empty(t.no_decisions)) }
            ol.feed {
                @for d in feed {
                    li data-decision-id=(d.id) {
                        a href=(format!("/ui/contacts/{}", d.contact_id)) { "#" (d.contact_id) }
                        " " (decision_summary(viewer, d))
                        br;
                        span.muted { (time(viewer, d.at)) " · " (viewer.lang.code_name(&d.reason)) }
                    }
                }
            }
        }
    }
}
