//! The frame of every page — head, navigation, banners — and the small pieces pages share: times, figures,
//! forms that act through the API.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::assets::asset_url;
use super::i18n::Lang;
use super::session::Viewer;
use crate::domain::Scope;

/// The pages of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Now,
    Me,
    Contacts,
    Operators,
    Sources,
    Webhooks,
    Keys,
    None,
}

/// A whole page.
pub fn page(viewer: &Viewer, title: &str, nav: Nav, body: Markup) -> Markup {
    let t = viewer.lang.texts();
    html! {
        (DOCTYPE)
        html lang=(viewer.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(csrf) = &viewer.csrf_token {
                    meta name="csrf-token" content=(csrf);
                }
                title { (title) " · leadrouter" }
                link rel="icon" href=(asset_url("icon.svg")) type="image/svg+xml";
                link rel="stylesheet" href=(asset_url("ui.css"));
                script type="module" src=(asset_url("ui.js")) {}
            }
            body data-page=(nav_name(nav)) data-lang=(viewer.lang.code())
                data-now=(viewer.now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                data-text-new-contact=(t.new_contact) {
                a.skip href="#content" { (t.skip_to_content) }
                header.top {
                    a.brand href="/ui/" { "leadrouter" }
                    nav aria-label="main" {
                        ul {
                            @if viewer.sees_the_desk() {
                                (nav_link(nav, Nav::Now, "/ui/", t.nav_now))
                                (nav_link(nav, Nav::Contacts, "/ui/contacts", t.nav_contacts))
                                (nav_link(nav, Nav::Operators, "/ui/operators", t.nav_operators))
                                (nav_link(nav, Nav::Sources, "/ui/sources", t.nav_sources))
                                @if viewer.may_change() {
                                    (nav_link(nav, Nav::Webhooks, "/ui/webhooks", t.nav_webhooks))
                                    (nav_link(nav, Nav::Keys, "/ui/keys", t.nav_keys))
                                }
                            }
                            @if viewer.operator_id().is_some() {
                                (nav_link(nav, Nav::Me, "/ui/me", t.nav_me))
                            }
                        }
                    }
                    div.tools {
                        span.live #live role="status" data-on=(t.live) data-off=(t.reconnecting) { (t.reconnecting) }
                        a href=(format!("/ui/lang/{}?back={}", viewer.lang.other().code(),
                                super::session::percent_encode(&viewer.here)))
                          lang=(viewer.lang.other().code()) { (t.switch_language) }
                        @if viewer.signed_in() {
                            form.inline method="post" action="/ui/sign-out" {
                                input type="hidden" name="csrf" value=[viewer.csrf_token.as_deref()];
                                button type="submit" { (t.sign_out) }
                            }
                        }
                    }
                }
                @if viewer.open {
                    p.banner.warning role="alert" { (with_code(t.open_banner)) }
                }
                @if viewer.caller.scope == Some(Scope::Read) {
                    p.banner role="note" { (t.read_only_banner) }
                }
                p.banner.error #problem role="alert" hidden {}
                main #content tabindex="-1" {
                    (body)
                }
            }
        }
    }
}

fn nav_name(nav: Nav) -> &'static str {
    match nav {
        Nav::Now => "now",
        Nav::Me => "me",
        Nav::Contacts => "contacts",
        Nav::Operators => "operators",
        Nav::Sources => "sources",
        Nav::Webhooks => "webhooks",
        Nav::Keys => "keys",
        Nav::None => "other",
    }
}

fn nav_link(current: Nav, this: Nav, href: &str, label: &str) -> Markup {
    html! {
        li { a href=(href) aria-current=[(current == this).then_some("page")] { (label) } }
    }
}

/// The sign-in page, with what went wrong on the last try.
pub fn sign_in(lang: Lang, next: Option<&str>, problem: Option<&str>) -> Markup {
    let t = lang.texts();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (t.sign_in_title) " · leadrouter" }
                link rel="icon" href=(asset_url("icon.svg")) type="image/svg+xml";
                link rel="stylesheet" href=(asset_url("ui.css"));
            }
            body data-page="sign-in" {
                main #content.narrow {
                    h1 { "leadrouter" }
                    form method="post" action="/ui/sign-in" {
                        @if let Some(problem) = problem {
                            p.banner.error role="alert" { (problem) }
                        }
                        label for="token" { (t.sign_in_label) }
                        input #token type="password" name="token" required autocomplete="off"
                            spellcheck="false" autofocus aria-describedby="token-hint";
                        p.hint #token-hint { (t.sign_in_hint) }
                        @if let Some(next) = next.filter(|n| super::session::is_local(n)) {
                            input type="hidden" name="next" value=(next);
                        }
                        button type="submit" { (t.sign_in_button) }
                    }
                    p {
                        a href=(format!("/ui/lang/{}?back=/ui/sign-in", lang.other().code()))
                          lang=(lang.other().code()) { (t.switch_language) }
                    }
                }
            }
        }
    }
}

/// 403: the page is not for this key.
pub fn refused(viewer: &Viewer) -> Response {
    let t = viewer.lang.texts();
    let body = html! { h1 { (t.refused) } };
    (
        StatusCode::FORBIDDEN,
        page(viewer, t.refused, Nav::None, body),
    )
        .into_response()
}

/// 404 as a page.
pub fn not_found(viewer: &Viewer) -> Response {
    let t = viewer.lang.texts();
    let body = html! { h1 { (t.not_found) } };
    (
        StatusCode::NOT_FOUND,
        page(viewer, t.not_found, Nav::None, body),
    )
        .into_response()
}

/// A time as the viewer reads it, machine-readable too.
pub fn time(viewer: &Viewer, at: DateTime<Utc>) -> Markup {
    let local = at.with_timezone(&viewer.tz);
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {
            (local.format("%Y-%m-%d %H:%M"))
        }
    }
}

/// How long ago, kept ticking by the page script; the server's figure stands until it does.
pub fn elapsed(now: DateTime<Utc>, since: DateTime<Utc>) -> Markup {
    let seconds = (now - since).num_seconds().max(0);
    html! {
        time.elapsed datetime=(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            data-since=(since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) {
            (duration(seconds))
        }
    }
}

/// `42s`, `5m 03s`, `2h 07m`.
pub fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// A form the page script sends to the API: `method path` with the named fields as a JSON body (each
/// field's `data-type` says how to read it). Disabled for viewers who may not change anything.
pub fn api_form(
    enabled: bool,
    method: &str,
    path: &str,
    label: &str,
    class: &str,
    fields: Markup,
    submit: &str,
) -> Markup {
    html! {
        form class=(format!("api {class}")) data-method=(method) data-path=(path) aria-label=(label) {
            fieldset disabled[!enabled] {
                (fields)
                button type="submit" { (submit) }
            }
        }
    }
}

/// A share as a percentage, one decimal.
pub fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// An empty-state line.
pub fn empty(text: &str) -> Markup {
    html! { p.empty { (text) } }
}

/// A figure of the strip at the top of the "Now" page.
pub fn figure(label: &str, value: Markup, id: &str) -> Markup {
    html! {
        div.figure #(id) {
            dt { (label) }
            dd { (value) }
        }
    }
}

/// Inline code in a help text: the backticks of the texts become `<code>`.
pub fn with_code(text: &str) -> Markup {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        let escaped = maud::html! { (part) }.into_string();
        if i % 2 == 1 {
            out.push_str(&format!("<code>{escaped}</code>"));
        } else {
            out.push_str(&escaped);
        }
    }
    PreEscaped(out)
}

/// A table's header row, one column per label.
pub fn table_head(labels: &[&str]) -> Markup {
    html! {
        thead { tr { @for label in labels { th scope="col" { (label) } } } }
    }
}

/// "accepting", or why not.
pub fn accepting_pill(viewer: &Viewer, accepting: &crate::domain::Accepting) -> Markup {
    let t = viewer.lang.texts();
    html! {
        span class=(format!("pill {}", if accepting.accepting { "yes" } else { "no" })) {
            @match accepting.because {
                None => (t.accepting),
                Some(because) => (viewer.lang.code_name(because.as_str())),
            }
        }
    }
}
