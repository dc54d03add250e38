//! The operator's own page: their availability switch, their slots, and their contacts, newest first, with
//! accept, decline and close. The page script announces a contact that appears here (a notification, if
//! allowed, and a count in the title).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::lead_label;
use crate::AppState;
use crate::error::AppError;
use crate::store::Page;
use crate::store::contacts::ContactFilter;
use crate::ui::layout::{Nav, accepting_pill, api_form, elapsed, empty, page, time};
use crate::ui::session::Viewer;

const CONTACTS_SHOWN: i64 = 50;

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    let Some(operator_id) = viewer.operator_id() else {
        return Ok(crate::ui::refuse(&viewer));
    };
    let t = viewer.lang.texts();
    let lang = viewer.lang;
    let now = state.store.now();
    let me = state.store.get_operator(operator_id).await?;
    let filter = ContactFilter {
        operator_id: Some(operator_id),
        ..ContactFilter::default()
    };
    let page_of = Page {
        skip: 0,
        limit: CONTACTS_SHOWN,
    };
    let contacts = state.store.list_contacts(&filter, page_of).await?;
    let op = &me.operator;
    let body = html! {
        h1 { (op.name) }
        section #me aria-labelledby="me-availability" {
            h2 #me-availability.visually-hidden { (t.availability) }
            (api_form(true, "PATCH", &format!("/operators/{operator_id}"), t.availability, "availability-switch",
                html! {
                    legend { (t.availability) }
                    @for code in ["available", "away", "offline"] {
                        label.choice {
                            input type="radio" name="availability" value=(code)
                                checked[op.availability.as_str() == code] data-autosubmit;
                            " " (lang.code_name(code))
                        }
                    }
                }, t.save))
            p.slots #slots {
                strong { (op.active_load) } " " (t.slots_of) " " strong { (op.max_load) } " " (t.slots)
                " · "
                (accepting_pill(&viewer, &me.accepting))
            }
            button.notify type="button" data-enable-notifications { (t.enable_notifications) }
        }
        section aria-labelledby="my-contacts" {
            h2 #my-contacts { (t.my_contacts) }
            @if contacts.is_empty() { (empty(t.no_contacts)) }
            ul.contacts {
                @for c in &contacts {
                    li.contact data-contact-id=(c.id) data-status=(c.status.as_str()) {
                        div.contact-head {
                            a href=(format!("/ui/contacts/{}", c.id)) { "#" (c.id) }
                            " " strong { (lead_label(c)) }
                            " " span.pill { (lang.code_name(c.status.as_str())) }
                            " " span.muted { (c.source.name) " · " (time(&viewer, c.created_at)) }
                            @if c.status.is_active() {
                                @if let Some(at) = c.assigned_at { " · " (elapsed(now, at)) }
                            }
                        }
                        @if let Some(message) = &c.message { p.message { (message) } }
                        @if c.status.is_active() {
                            div.contact-actions {
                                @if c.accepted_at.is_none() {
                                    (api_form(true, "POST", &format!("/contacts/{}/accept", c.id), t.accept, "accept", html! {}, t.accept))
                                    (api_form(true, "POST", &format!("/contacts/{}/decline", c.id), t.decline, "decline", html! {}, t.decline))
                                }
                                (api_form(true, "PATCH", &format!("/contacts/{}/status?status=closed", c.id), t.close, "close", html! {}, t.close))
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&viewer, t.my_contacts, Nav::Me, body).into_response())
}
