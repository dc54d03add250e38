//! Signing in to the dashboard. A visitor shows an API key once; the server answers with a session cookie
//! (HttpOnly, so no script can read it; SameSite=Strict, so no other site's page can send it) and keeps only
//! the session token's hash. The session acts with the key's scope. Changes made through it also need the
//! session's CSRF token in a header, which the pages carry and other sites cannot read. While no key exists
//! the dashboard is open, as the API is, and says so on every page.

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::{COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::i18n::Lang;
use super::layout;
use crate::AppState;
use crate::api::access::Caller;
use crate::domain::Scope;
use crate::domain::access::{new_token, token_hash};
use crate::error::AppError;
use crate::store::sessions::SESSION_LIFETIME;

pub const SESSION_COOKIE: &str = "leadrouter_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const TZ_COOKIE: &str = "leadrouter_tz";

/// Who is looking at a page, and in which language.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub caller: Caller,
    /// The session's CSRF token; `None` while the dashboard is open (no key exists).
    pub csrf_token: Option<String>,
    /// No key exists: anyone who reaches the server sees and changes everything.
    pub open: bool,
    pub lang: Lang,
    /// The page's path and query, for the links that come back to it.
    pub here: String,
    /// The browser's time zone (its page script tells it in a cookie): what "today" and times are shown in.
    pub tz: chrono_tz::Tz,
    /// The store's clock when the request came: what the page's ticking waits count from.
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Viewer {
    /// Admin keys, and everyone while the dashboard is open.
    pub fn may_change(&self) -> bool {
        self.open || self.caller.scope == Some(Scope::Admin)
    }

    /// Managers' pages: admin and read keys.
    pub fn sees_the_desk(&self) -> bool {
        self.open || matches!(self.caller.scope, Some(Scope::Admin | Scope::Read))
    }

    /// The operator an operator key acts for.
    pub fn operator_id(&self) -> Option<i64> {
        self.caller.operator_id
    }

    pub fn signed_in(&self) -> bool {
        self.caller.key_id.is_some()
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = Lang::of(&parts.headers);
        let tz = cookie_value(&parts.headers, TZ_COOKIE)
            .map(|zone| zone.replace("%2F", "/"))
            .and_then(|zone| zone.parse().ok())
            .unwrap_or(chrono_tz::UTC);
        let now = state.store.now();
        let here = parts
            .uri
            .path_and_query()
            .map_or("/ui/".to_owned(), |p| p.as_str().to_owned());
        let signed_in = match cookie_value(&parts.headers, SESSION_COOKIE) {
            Some(token) => state
                .store
                .authenticate_session(&token_hash(token))
                .await
                .map_err(IntoResponse::into_response)?,
            None => None,
        };
        if let Some(found) = signed_in {
            let scope: Option<Scope> = found.key.scope.parse().ok();
            let operator_gone = scope == Some(Scope::Operator) && !found.key.operator_exists;
            if scope.is_some() && !operator_gone {
                return Ok(Viewer {
                    caller: Caller {
                        key_id: Some(found.key.id),
                        scope,
                        operator_id: found
                            .key
                            .operator_id
                            .filter(|_| scope == Some(Scope::Operator)),
                    },
                    csrf_token: Some(found.csrf_token),
                    open: false,
                    lang,
                    here,
                    tz,
                    now,
                });
            }
        }
        let keys_exist = state
            .store
            .api_keys_exist()
            .await
            .map_err(IntoResponse::into_response)?;
        if !keys_exist {
            return Ok(Viewer {
                caller: Caller::default(),
                csrf_token: None,
                open: true,
                lang,
                here,
                tz,
                now,
            });
        }
        if parts.uri.path() == "/ui/events" {
            return Err(AppError::Rejected {
                status: StatusCode::UNAUTHORIZED,
                message: "Sign in to the dashboard first".to_owned(),
            }
            .into_response());
        }
        Err(see_other(&format!(
            "/ui/sign-in?next={}",
            percent_encode(&here)
        )))
    }
}

/// The value of the named cookie, if the request sends it.
pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the token sent equals the session's, compared in time that does not depend on where they differ.
pub fn tokens_match(sent: Option<&[u8]>, expected: &str) -> bool {
    let Some(sent) = sent else {
        return false;
    };
    let expected = expected.as_bytes();
    sent.len() == expected.len()
        && sent
            .iter()
            .zip(expected)
            .fold(0u8, |differs, (a, b)| differs | (a ^ b))
            == 0
}

#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

pub async fn sign_in_page(headers: HeaderMap, Query(query): Query<Next>) -> Response {
    let lang = Lang::of(&headers);
    layout::sign_in(lang, query.next.as_deref(), None).into_response()
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    token: String,
    next: Option<String>,
}

/// Exchanges the key for a session cookie, and sends the visitor where they were going (operators to their
/// own page).
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Result<Response, AppError> {
    let lang = Lang::of(&headers);
    if !same_origin(&headers) {
        return Err(AppError::Rejected {
            status: StatusCode::FORBIDDEN,
            message: "A sign-in must come from the dashboard's own page".to_owned(),
        });
    }
    let refused = |message: &'static str| {
        let page = layout::sign_in(lang, form.next.as_deref(), Some(message));
        Ok((StatusCode::UNAUTHORIZED, page).into_response())
    };
    let texts = lang.texts();
    let (key, _) = state
        .store
        .authenticate(&token_hash(form.token.trim()))
        .await?;
    let Some(key) = key else {
        return refused(texts.sign_in_unknown_key);
    };
    let scope: Option<Scope> = key.scope.parse().ok();
    match scope {
        Some(Scope::Admin | Scope::Read) => {}
        Some(Scope::Operator) if key.operator_exists => {}
        Some(Scope::Operator) => return refused(texts.sign_in_operator_gone),
        Some(Scope::Ingest) | None => return refused(texts.sign_in_ingest_key),
    }
    let session = new_token();
    state
        .store
        .create_session(token_hash(&session), key.id, new_token())
        .await?;
    let home = match scope {
        Some(Scope::Operator) => "/ui/me",
        _ => "/ui/",
    };
    let target = form
        .next
        .as_deref()
        .filter(|next| is_local(next))
        .unwrap_or(home);
    let mut response = see_other(target);
    let cookie = format!(
        "{SESSION_COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        SESSION_LIFETIME.num_seconds(),
        if served_over_https(&headers) {
            "; Secure"
        } else {
            ""
        }
    );
    set_cookie(&mut response, &cookie);
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct SignOut {
    csrf: Option<String>,
}

/// Ends the session and forgets the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignOut>,
) -> Result<Response, AppError> {
    if let Some(token) = cookie_value(&headers, SESSION_COOKIE) {
        let hash = token_hash(token);
        if let Some(found) = state.store.authenticate_session(&hash).await? {
            let sent = form.csrf.as_deref().map(str::as_bytes);
            if !tokens_match(sent, &found.csrf_token) {
                return Err(AppError::Rejected {
                    status: StatusCode::FORBIDDEN,
                    message: "A sign-out must come from the dashboard's own page".to_owned(),
                });
            }
            state.store.delete_session(hash).await?;
        }
    }
    let mut response = see_other("/ui/sign-in");
    set_cookie(
        &mut response,
        &format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(response)
}

pub(super) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

pub(super) fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// A path of the dashboard itself: never another site (`//host`, `https:`), so that `next` cannot send a
/// visitor away.
pub(super) fn is_local(path: &str) -> bool {
    (path == "/ui" || path.starts_with("/ui/") || path.starts_with("/ui?"))
        && !path.contains("//")
        && !path.contains('\\')
}

/// A browser says where a form was posted from; a sign-in posted from another site is refused, so that it
/// cannot sign a visitor in with the other site's key. Requests without `Origin` (not from a browser) pass.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    host == Some(origin_host)
}

/// Behind a TLS-terminating proxy, the cookie is marked `Secure`.
fn served_over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// Enough percent-encoding for a path carried in a query parameter.
pub(super) fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_dashboards_own_paths_are_followed_after_sign_in() {
        assert!(is_local("/ui/"));
        assert!(is_local("/ui/sources/3?x=1"));
        assert!(!is_local("//evil.example/ui/"));
        assert!(!is_local("https://evil.example/ui/"));
        assert!(!is_local("/ui//evil.example"));
        assert!(!is_local("/uix"));
        assert!(!is_local("/ui/\\evil"));
    }

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(tokens_match(Some(b"abc"), "abc"));
        assert!(!tokens_match(Some(b"abd"), "abc"));
        assert!(!tokens_match(Some(b"ab"), "abc"));
        assert!(!tokens_match(None, "abc"));
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; leadrouter_session=xyz; b=2"),
        );
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie_value(&headers, "c"), None);
    }
}
