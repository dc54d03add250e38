//! The set-up pages: operators (with shifts and time off), sources (strategy, returning leads, accept
//! timeout) and their weights beside the what-if simulator, webhooks, and the list of keys. Every control
//! acts through the API; for a read key they are shown disabled, and the API would refuse them anyway.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::trim_float;
use crate::AppState;
use crate::error::AppError;
use crate::store::Page;
use crate::ui::layout::{
    Nav, accepting_pill, api_form, empty, not_found, page, table_head, time, with_code,
};
use crate::ui::session::Viewer;

const EVERYTHING: Page = Page {
    skip: 0,
    limit: 1000,
};
const STRATEGIES: [&str; 3] = ["weighted_random", "smooth_weighted", "least_loaded"];

pub async fn operators(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, AppError> {
    if !viewer.sees_the_desk() {
        return Ok(crate::ui::refuse(&viewer));
    }
    let t = viewer.lang.texts();
    let lang = viewer.lang;
    let may = viewer.may_change();
    let operators = state.store.operators_now().await?;
    let mut time_off = Vec::with_capacity(operators.len());
    for o in &operators {
        time_off.push(state.store.list_time_off(o.operator.id).await?);
    }
    let body = html! {
        h1 { (t.nav_operators) }
        (api_form(may, "POST", "/operators", t.new_operator, "create-operator", html! {
            legend { (t.new_operator) }
            label { (t.name) " " input type="text" name="name" required maxlength="200"; }
            label { (t.max_load) " " input type="number" name="max_load" data-type="int" min="1" value="5"; }
            label { (t.timezone) " " input type="text" name="timezone" value="UTC" maxlength="64"; }
        }, t.create))
        @for (o, off) in operators.iter().zip(&time_off) {
            @let op = &o.operator;
            section.card data-operator-id=(op.id) aria-labelledby=(format!("operator-{}", op.id)) {
                h2 #(format!("operator-{}", op.id)) { (op.name) " "
                    (accepting_pill(&viewer, &o.accepting))
                }
                (api_form(may, "PATCH", &format!("/operators/{}", op.id), t.edit, "edit-operator", html! {
                    label { (t.name) " " input type="text" name="name" value=(op.name) required maxlength="200"; }
                    label { (t.max_load) " " input type="number" name="max_load" data-type="int" min="1" value=(op.max_load); }
                    label { (t.is_active) " "
                        select name="is_active" data-type="bool" {
                            option value="true" selected[op.is_active] { "✓" }
                            option value="false" selected[!op.is_active] { "✗" }
                        }
                    }
                    label { (t.availability) " "
                        select name="availability" {
                            @for code in ["available", "away", "offline"] {
                                option value=(code) selected[op.availability.as_str() == code] { (lang.code_name(code)) }
                            }
                        }
                    }
                    label { (t.timezone) " " input type="text" name="timezone" value=(op.timezone.as_str()) maxlength="64"; }
                    label.wide { (t.shifts) " (JSON) "
                        input type="text" name="schedule" data-type="json"
                            value=(op.schedule.as_ref().map(|s| s.to_json()).unwrap_or_else(|| "null".to_owned()))
                            placeholder=(r#"[{"days":["mon","tue"],"start":"09:00","end":"18:00"}]"#);
                    }
                }, t.save))
                h3 { (t.time_off) }
                @if off.is_empty() { (empty(t.none)) }
                ul {
                    @for period in off {
                        li {
                            (time(&viewer, period.starts_at)) " – " (time(&viewer, period.ends_at))
                            @if let Some(reason) = &period.reason { " · " (reason) }
                            " "
                            (api_form(may, "DELETE", &format!("/operators/{}/time-off/{}", op.id, period.id), t.delete, "inline", html! {}, t.delete))
                        }
                    }
                }
                (api_form(may, "POST", &format!("/operators/{}/time-off", op.id), t.add_time_off, "add-time-off", html! {
                    label { (t.starts) " " input type="datetime-local" name="starts_at" data-type="datetime" required; }
                    label { (t.ends) " " input type="datetime-local" name="ends_at" data-type="datetime" required; }
                    label { (t.reason) " " input type="text" name="reason" data-type="optional" maxlength="200"; }
                }, t.add_time_off))
                (api_form(may, "DELETE", &format!("/operators/{}", op.id), t.delete, "danger", html! {}, t.delete))
            }
        }
    };
    Ok(page(&viewer, t.nav_operators, Nav::Operators, body).into_response())
}

pub async fn sources(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    if !viewer.sees_the_desk() {
        return Ok(crate::ui::refuse(&viewer));
    }
    let t = viewer.lang.texts();
    let lang = viewer.lang;
    let sources = state.store.list_sources(EVERYTHING).await?;
    let body = html! {
        h1 { (t.nav_sources) }
        (api_form(viewer.may_change(), "POST", "/sources", t.new_source, "create-source", html! {
            legend { (t.new_source) }
            label { (t.name) " " input type="text" name="name" required maxlength="200"; }
            label { (t.description) " " input type="text" name="description" data-type="optional" maxlength="2000"; }
            (strategy_select(viewer.lang, None))
        }, t.create))
        @if sources.is_empty() { (empty(t.none)) }
        ul.cards {
            @for s in &sources {
                li data-source-id=(s.id) {
                    a href=(format!("/ui/sources/{}", s.id)) { (s.name) }
                    " " span.muted { (lang.code_name(s.rules.strategy.as_str())) }
                }
            }
        }
    };
    Ok(page(&viewer, t.nav_sources, Nav::Sources, body).into_response())
}

fn strategy_select(lang: crate::ui::Lang, current: Option<&str>) -> Markup {
    let t = lang.texts();
    html! {
        label { (t.strategy) " "
            select name="strategy" {
                @for code in STRATEGIES {
                    option value=(code) selected[current == Some(code)] { (lang.code_name(code)) }
                }
            }
        }
    }
}

pub async fn source(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    if !viewer.sees_the_desk() {
        return Ok(crate::ui::refuse(&viewer));
    }
    let t = viewer.lang.texts();
    let may = viewer.may_change();
    let detail = match state.store.get_source(id).await {
        Ok(detail) => detail,
        Err(AppError::NotFound(_)) => return Ok(not_found(&viewer)),
        Err(error) => return Err(error),
    };
    let operators = state.store.operators_now().await?;
    let s = &detail.source;
    let linked: Vec<i64> = detail
        .operator_weights
        .iter()
        .map(|w| w.weight.operator_id)
        .collect();
    let body = html! {
        h1 { (s.name) }
        (api_form(may, "PATCH", &format!("/sources/{id}"), t.edit, "edit-source", html! {
            label { (t.name) " " input type="text" name="name" value=(s.name) required maxlength="200"; }
            (strategy_select(viewer.lang, Some(s.rules.strategy.as_str())))
            label { (t.sticky_hours) " " input type="number" name="sticky_hours" data-type="int" min="0"
                value=(s.rules.sticky_hours.get()); }
            label { (t.accept_timeout) " " input type="number" name="accept_timeout_secs" data-type="int" min="0"
                value=(s.rules.accept_timeout.secs()); }
        }, t.save))
        div.columns {
            section.main-column aria-labelledby="weights-title" {
                h2 #weights-title { (t.weights) }
                @if detail.operator_weights.is_empty() { (empty(t.none)) }
                div.table-wrap {
                table.weights {
                    (table_head(&[t.operator, t.weight, t.actions]))
                    tbody {
                        @for w in &detail.operator_weights {
                            @let op_id = w.weight.operator_id;
                            tr data-operator-id=(op_id) {
                                th scope="row" { (w.operator_name) }
                                td {
                                    (api_form(may, "PATCH", &format!("/sources/{id}/operators/{op_id}"), t.weight, "weight", html! {
                                        label.visually-hidden for=(format!("weight-{op_id}")) { (t.weight) " " (w.operator_name) }
                                        input #(format!("weight-{op_id}")) type="number" name="weight" data-type="float"
                                            data-weight-of=(op_id) min="0" step="any" value=(trim_float(w.weight.weight)) size="5";
                                    }, t.save))
                                }
                                td { (api_form(may, "DELETE", &format!("/sources/{id}/operators/{op_id}"), t.unlink, "inline", html! {}, t.unlink)) }
                            }
                        }
                    }
                }
                }
                @let unlinked: Vec<_> = operators.iter().filter(|o| !linked.contains(&o.operator.id)).collect();
                @if !unlinked.is_empty() {
                    (api_form(may, "POST", &format!("/sources/{id}/operators"), t.link_operator, "link", html! {
                        legend { (t.link_operator) }
                        label { (t.operator) " "
                            select name="operator_id" data-type="int" {
                                @for o in unlinked { option value=(o.operator.id) { (o.operator.name) } }
                            }
                        }
                        label { (t.weight) " " input type="number" name="weight" data-type="float" min="0" step="any" value="1"; }
                    }, t.link_operator))
                }
            }
            aside.side-column aria-labelledby="simulator-title" {
                h2 #simulator-title { (t.simulator) }
                form.simulator data-path=(format!("/sources/{id}/simulate")) aria-label=(t.simulator) {
                    label { (t.contacts_count) " " input type="number" name="contacts" min="1" max="100000" value="1000"; }
                    (strategy_select(viewer.lang, Some(s.rules.strategy.as_str())))
                    label { input type="radio" name="capacity" value="ignore" checked; " " (t.capacity_ignore) }
                    label { input type="radio" name="capacity" value="current"; " " (t.capacity_current) }
                    button type="submit" { (t.simulate) }
                }
                div #simulation data-keep role="status" aria-live="polite"
                    data-text-target=(t.target_share) data-text-simulated=(t.simulated_share)
                    data-text-operator=(t.operator) data-text-unassigned=(t.unassigned) {}
            }
        }
    };
    Ok(page(&viewer, &s.name, Nav::Sources, body).into_response())
}

pub async fn webhooks(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    if !viewer.may_change() {
        return Ok(crate::ui::refuse(&viewer));
    }
    let t = viewer.lang.texts();
    let hooks = state.store.list_webhooks().await?;
    let events = [
        "contact.created",
        "contact.assigned",
        "contact.unassigned",
        "contact.status_changed",
    ];
    let body = html! {
        h1 { (t.webhooks) }
        (api_form(true, "POST", "/webhooks", t.new_webhook, "create-webhook", html! {
            legend { (t.new_webhook) }
            label.wide { (t.url) " " input type="url" name="url" required placeholder="https://crm.example.com/leadrouter"; }
            fieldset.events {
                legend { (t.events) }
                @for e in events {
                    label { input type="checkbox" name="events" value=(e) data-type="list" checked; " " code { (e) } }
                }
            }
        }, t.create))
        @if hooks.is_empty() { (empty(t.none)) }
        ul.cards {
            @for h in &hooks {
                li data-webhook-id=(h.id) {
                    code { (h.url.as_str()) } " · " (h.events.join(", ")) " · " (time(&viewer, h.created_at)) " "
                    (api_form(true, "DELETE", &format!("/webhooks/{}", h.id), t.delete, "inline", html! {}, t.delete))
                }
            }
        }
    };
    Ok(page(&viewer, t.webhooks, Nav::Webhooks, body).into_response())
}

pub async fn keys(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    if !viewer.may_change() {
        return Ok(crate::ui::refuse(&viewer));
    }
    let t = viewer.lang.texts();
    let keys = state.store.list_api_keys().await?;
    let body = html! {
        h1 { (t.keys) }
        p { (with_code(t.keys_hint)) }
        @if keys.is_empty() { (empty(t.none)) }
        @else {
            div.table-wrap {
            table.keys {
                (table_head(&["#", t.name, t.scope, t.operator, t.created, t.status]))
                tbody {
                    @for k in &keys {
                        tr data-key-id=(k.id) {
                            th scope="row" { (k.id) }
                            td { (k.name) }
                            td { code { (k.scope) } }
                            td { @if let Some(op) = k.operator_id { "#" (op) } }
                            td { (time(&viewer, k.created_at)) }
                            td { @match k.revoked_at { Some(at) => { (t.revoked) " " (time(&viewer, at)) }, None => (t.live_key) } }
                        }
                    }
                }
            }
            }
        }
    };
    Ok(page(&viewer, t.keys, Nav::Keys, body).into_response())
}
