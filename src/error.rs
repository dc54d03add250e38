//! The one error type of the service and its one way out: a status code and a JSON body `{"detail": …}`, the
//! shape the reference implementation's clients already parse.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but a value in it is not acceptable.
    #[error("{0}")]
    Unprocessable(String),
    /// A rejection produced by axum while reading the request (body too large, wrong content type, …).
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    /// The database could not be reached in time; the client may retry.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// An error of SQLite's write connection.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words meant for the developer of the client.
    #[schema(example = "Operator not found")]
    pub detail: String,
}

impl AppError {
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Rejected { status, .. } => *status,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(error) if is_unavailability(error) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Sqlite(error) if is_sqlite_busy(error) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Sqlite(_) | Self::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Whether PostgreSQL cancelled the statement for running past `statement_timeout` (57014): a request
    /// that is heavy by nature meets it again on retry, so its answer says so.
    fn is_statement_timeout(&self) -> bool {
        matches!(self, Self::Database(error) if postgres_code(error) == Some("57014"))
    }

    /// Whether the error is the client's doing; a batch of writes survives those, not the others.
    pub fn is_client_error(&self) -> bool {
        self.status().is_client_error()
    }
}

fn is_unavailability(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        _ => postgres_code(error).is_some_and(is_postgres_unavailability),
    }
}

/// The SQLSTATE of an error PostgreSQL answered with; `None` for any other error.
fn postgres_code(error: &sqlx::Error) -> Option<&str> {
    let sqlx::Error::Database(error) = error else {
        return None;
    };
    error
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .map(|error| error.code())
}

/// PostgreSQL's SQLSTATEs for a statement it cut short or a connection it ended, none of them the request's
/// doing: class 08 (the connection failed; not 08P01, a protocol violation, which is a bug), 57014 (cancelled,
/// as `statement_timeout` does), 57P01–57P03 (the server is shutting down, has crashed, or is not yet
/// accepting connections), 57P05 and 25P03 (a session or transaction idle past the server's timeout).
fn is_postgres_unavailability(code: &str) -> bool {
    (code.starts_with("08") && code != "08P01")
        || matches!(
            code,
            "57014" | "57P01" | "57P02" | "57P03" | "57P05" | "25P03"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_ending_a_statement_or_connection_is_unavailability_and_a_bug_or_conflict_is_not() {
        for code in [
            "08006", "08001", "57014", "57P01", "57P02", "57P03", "57P05", "25P03",
        ] {
            assert!(is_postgres_unavailability(code), "{code}");
        }
        for code in ["08P01", "23505", "40001", "42P01", "57P04", "22001"] {
            assert!(!is_postgres_unavailability(code), "{code}");
        }
    }
}

fn is_sqlite_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        // A database's own error text is for the log, not for clients; every other message is written for them.
        let detail = match &self {
            Self::Database(_) | Self::Sqlite(_) | Self::Internal(_) if status.is_server_error() => {
                if self.is_statement_timeout() {
                    tracing::warn!(error = %self, "statement timed out");
                    "The database took longer than the statement timeout; retry later, or ask for less \
                     (a narrower filter, a smaller page)"
                        .to_owned()
                } else if status == StatusCode::SERVICE_UNAVAILABLE {
                    tracing::warn!(error = %self, "database unavailable");
                    "Database unavailable, retry later".to_owned()
                } else {
                    tracing::error!(error = %self, "request failed");
                    "Internal server error".to_owned()
                }
            }
            _ => {
                if status.is_server_error() {
                    tracing::warn!(error = %self, "request not served");
                }
                self.to_string()
            }
        };
        (status, Json(ErrorBody { detail })).into_response()
    }
}

macro_rules! from_rejection {
    ($rejection:ty) => {
        impl From<$rejection> for AppError {
            fn from(rejection: $rejection) -> Self {
                let status = match rejection.status() {
                    // A body that is JSON but not of the expected shape is a validation error, as in the
                    // reference; so is a path or query parameter of the wrong type.
                    StatusCode::BAD_REQUEST => StatusCode::UNPROCESSABLE_ENTITY,
                    other => other,
                };
                Self::Rejected {
                    status,
                    message: rejection.body_text(),
                }
            }
        }
    };
}

from_rejection!(JsonRejection);
from_rejection!(PathRejection);
from_rejection!(QueryRejection);
from_rejection!(BytesRejection);
