//! API keys at the door: who is calling, and whether their key's scope allows the request.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::limits::{Client, RateClass};
use crate::AppState;
use crate::domain::access::token_hash;
use crate::domain::{Need, Scope};
use crate::error::AppError;
use crate::store::Actor;

/// Who sent the request: the key, or nobody while the API is open (no key was ever created). `GET
/// /contacts/{id}` lets an `ingest` key through; its handler shows it only the contacts it created.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller {
    pub key_id: Option<i64>,
    pub scope: Option<Scope>,
}

impl Caller {
    /// The namespace of the caller's idempotency keys.
    pub fn idempotency_client(&self) -> String {
        self.key_id.map(|id| id.to_string()).unwrap_or_default()
    }

    /// Who the audit trail says made the changes of this request.
    pub fn actor(&self) -> Actor {
        Actor::api(self.key_id)
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
    let need = Need::of(
        request.method().as_str(),
        route.as_deref().unwrap_or("unmatched"),
    );
    if need == Need::Nothing {
        request.extensions_mut().insert(Caller::default());
        return next.run(request).await;
    }
    let token = token(request.headers());
    let (key, keys_exist) = match state
        .store
        .authenticate(&token_hash(token.unwrap_or_default()))
        .await
    {
        Ok(found) => found,
        Err(error) => return error.into_response(),
    };
    let caller = match key {
        Some((key_id, scope)) => Caller {
            key_id: Some(key_id),
            scope: scope.parse().ok(),
        },
        None if !keys_exist => Caller::default(),
        None => return unauthorized(token.is_some()),
    };
    // A key whose scope this build does not know is refused, never treated as unrestricted.
    let allowed = match caller.scope {
        Some(scope) => need.allows(scope),
        None => caller.key_id.is_none(),
    };
    if !allowed {
        let scope = caller.scope.map_or("unknown", Scope::as_str);
        return AppError::Rejected {
            status: StatusCode::FORBIDDEN,
            message: format!("This key's scope ({scope}) does not allow this request"),
        }
        .into_response();
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
