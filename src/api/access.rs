//! API keys at the door: who is calling, and whether their key's scope allows the request.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::limits::{Client, RateClass};
use crate::AppState;
use crate::domain::access::{first_field_outside, token_hash};
use crate::domain::{Need, Reach, Scope};
use crate::error::AppError;
use crate::store::Actor;

/// Who sent the request: the key, or nobody while the API is open (no key was ever created). `GET
/// /contacts/{id}` lets an `ingest` key through; its handler shows it only the contacts it created. An
/// `operator` key is let through to its routes ([`Scope::may_call`]); their handlers hold it to its own
/// operator ([`Caller::refuse_other_operator`]), its own contacts ([`Caller::reach`]) and the fields it may
/// change ([`Caller::refuse_fields_outside`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller {
    pub key_id: Option<i64>,
    pub scope: Option<Scope>,
    /// The operator an `operator` key acts for (set for those keys only).
    pub operator_id: Option<i64>,
}

impl Caller {
    /// The contacts the caller may see and change.
    pub fn reach(&self) -> Reach {
        self.operator_id.map_or(Reach::All, Reach::AssignedTo)
    }

    /// 403 when an `operator` key asks about another operator than its own.
    pub fn refuse_other_operator(&self, operator_id: i64) -> Result<(), AppError> {
        refuse_other_operator(self.reach(), operator_id)
    }

    /// 403 naming the first field of the body an `operator` key may not send (others may send them all).
    pub fn refuse_fields_outside<'a>(
        &self,
        fields: impl IntoIterator<Item = &'a str>,
        allowed: &[&str],
    ) -> Result<(), AppError> {
        if self.operator_id.is_none() {
            return Ok(());
        }
        match first_field_outside(fields, allowed) {
            Some(field) => Err(forbidden(format!(
                "{field}: an operator key may not change it; it may send only {}",
                allowed.join(" and ")
            ))),
            None => Ok(()),
        }
    }

    /// The namespace of the caller's idempotency keys.
    pub fn idempotency_client(&self) -> String {
        self.key_id.map(|id| id.to_string()).unwrap_or_default()
    }

    /// Who the audit trail says made the changes of this request.
    pub fn actor(&self) -> Actor {
        Actor::api(self.key_id)
    }
}

/// 403 when a reach limited to one operator (an `operator` key's) asks about another operator.
pub fn refuse_other_operator(reach: Reach, operator_id: i64) -> Result<(), AppError> {
    match reach {
        Reach::AssignedTo(own) if own != operator_id => Err(forbidden(format!(
            "An operator key acts only for its own operator ({own}), not for operator {operator_id}"
        ))),
        _ => Ok(()),
    }
}

/// The token of `Authorization: Bearer …` or `X-API-Key: …`.
fn token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        });
    bearer
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|value| value.to_str().ok())
        })
        .map(str::trim)
}

/// Looks the key up on every request, so that a key created or revoked (by `leadrouter keys`, from any
/// process) counts from the next request on.
pub async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let route = route.as_deref().unwrap_or("unmatched");
    let need = Need::of(request.method().as_str(), route);
    if need == Need::Nothing {
        request.extensions_mut().insert(Caller::default());
        return next.run(request).await;
    }
    let token = token(request.headers());
    let session = match token {
        None => session_of(request.headers()),
        Some(_) => None,
    };
    let found = match session {
        Some(session) => session_key(&state, session, request.method(), request.headers()).await,
        None => {
            state
                .store
                .authenticate(&token_hash(token.unwrap_or_default()))
                .await
        }
    };
    let (key, keys_exist) = match found {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let caller = match key {
        Some(key) => {
            let scope = key.scope.parse().ok();
            if let (Some(Scope::Operator), Some(operator_id), false) =
                (scope, key.operator_id, key.operator_exists)
            {
                return forbidden(format!(
                    "This key acts for operator {operator_id}, who has been deleted: it may do \
                     nothing any more (revoke it with `leadrouter keys revoke {}`)",
                    key.id
                ))
                .into_response();
            }
            Caller {
                key_id: Some(key.id),
                scope,
                operator_id: key.operator_id.filter(|_| scope == Some(Scope::Operator)),
            }
        }
        None if !keys_exist => Caller::default(),
        None => return unauthorized(token.is_some()),
    };
    // A key whose scope this build does not know is refused, never treated as unrestricted; so is an
    // operator key without its operator, which the database does not allow.
    let allowed = match caller.scope {
        Some(Scope::Operator) if caller.operator_id.is_none() => false,
        Some(scope) => scope.may_call(request.method().as_str(), route),
        None => caller.key_id.is_none(),
    };
    if !allowed {
        let message = match caller.scope {
            Some(scope) => format!(
                "This key's scope ({scope}) does not allow this request; it allows {}",
                scope.allowance()
            ),
            None => "This key's scope is unknown to this version of leadrouter".to_owned(),
        };
        return forbidden(message).into_response();
    }
    let class = match need {
        Need::Ingest => RateClass::Ingest,
        _ => RateClass::Other,
    };
    if let Some(too_many) = state
        .rate_limits
        .refusal(class, || Client::of(caller.key_id, &request))
    {
        return too_many;
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The dashboard's session token, from its cookie, when the request sends no key of its own.
pub fn session_of(headers: &HeaderMap) -> Option<&str> {
    crate::ui::session::cookie_value(headers, crate::ui::session::SESSION_COOKIE)
}

/// The key behind a dashboard session. A request that changes anything must also carry the session's CSRF
/// token in `X-CSRF-Token`, which only the dashboard's own pages know: a cookie alone, which the browser
/// would send for another site's form too, changes nothing.
async fn session_key(
    state: &AppState,
    session: &str,
    method: &axum::http::Method,
    headers: &HeaderMap,
) -> Result<(Option<crate::store::api_keys::LiveKey>, bool), AppError> {
    let Some(found) = state
        .store
        .authenticate_session(&token_hash(session))
        .await?
    else {
        return Err(AppError::Rejected {
            status: StatusCode::UNAUTHORIZED,
            message: "The dashboard session has ended (signed out, expired, or its key revoked): sign in \
                      again"
                .to_owned(),
        });
    };
    if !method.is_safe() {
        let sent = headers
            .get(crate::ui::session::CSRF_HEADER)
            .map(HeaderValue::as_bytes);
        if !crate::ui::session::tokens_match(sent, &found.csrf_token) {
            return Err(forbidden(
                "A change made with the dashboard's session needs its X-CSRF-Token header"
                    .to_owned(),
            ));
        }
    }
    Ok((Some(found.key), true))
}

fn forbidden(message: String) -> AppError {
    AppError::Rejected {
        status: StatusCode::FORBIDDEN,
        message,
    }
}

fn unauthorized(token_sent: bool) -> Response {
    let message = if token_sent {
        "Unknown or revoked API key"
    } else {
        "An API key is required: send Authorization: Bearer <token> or X-API-Key: <token>"
    };
    let mut response = AppError::Rejected {
        status: StatusCode::UNAUTHORIZED,
        message: message.to_owned(),
    }
    .into_response();
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
