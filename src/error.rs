//! The one error type. Clients get a short, safe message and the right status;
//! the cause goes to the log only.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    /// A federation request whose signature (or what it binds) fails: 401
    /// with the reason, so the sender's admin can tell what to fix.
    #[error("{0}")]
    Unverified(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// The database (or another dependency) is unavailable: the client may retry.
    #[error("service temporarily unavailable")]
    Unavailable(String),
    /// A remote server failed or refused: 502 to our client.
    #[error("remote server error: {0}")]
    Remote(String),
    #[error("internal error")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized | AppError::Unverified(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Remote(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short stable name of the kind (the JSON `error` field, metric labels).
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized | AppError::Unverified(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::Unprocessable(_) => "unprocessable",
            AppError::TooManyRequests(_) => "too_many_requests",
            AppError::Unavailable(_) => "unavailable",
            AppError::Remote(_) => "remote_error",
            AppError::Internal(_) => "internal",
        }
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        AppError::BadRequest(msg.into())
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        AppError::NotFound(what.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        AppError::Conflict(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        AppError::Forbidden(msg.into())
    }
    pub fn internal(msg: impl std::fmt::Display) -> Self {
        AppError::Internal(msg.to_string())
    }
}

impl AppError {
    /// The full cause, for the operator (CLI output, logs): never sent to clients.
    pub fn detail(&self) -> String {
        match self {
            AppError::Internal(cause) | AppError::Unavailable(cause) => {
                format!("{self}: {cause}")
            }
            other => other.to_string(),
        }
    }
}

/// Errors produced outside our handlers (axum's extractors, tower-http's
/// limits and timeouts) come as plain text or empty: give them our JSON
/// format too, so every client error reads the same. Pages (HTML) keep theirs.
pub async fn json_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() || status.is_server_error() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let mut out = (
        status,
        Json(ErrorBody {
            error: code,
            message,
        }),
    )
        .into_response();
    for (k, v) in parts.headers.iter() {
        if k != axum::http::header::CONTENT_TYPE && k != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Details of server-side failures stay in the log.
        let message = match &self {
            AppError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                "internal error".to_string()
            }
            AppError::Unavailable(cause) => {
                tracing::warn!(%cause, "dependency unavailable");
                "service temporarily unavailable, try again".to_string()
            }
            AppError::Remote(cause) => {
                tracing::info!(%cause, "remote error");
                self.to_string()
            }
            other => other.to_string(),
        };
        let mut res = (
            status,
            Json(ErrorBody {
                error: self.code(),
                message,
            }),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("30"),
            );
        }
        res
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(e: sea_orm::DbErr) -> Self {
        use sea_orm::{DbErr, SqlErr};
        if let Some(SqlErr::UniqueConstraintViolation(_)) = e.sql_err() {
            return AppError::Conflict("already exists".into());
        }
        match &e {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => AppError::Unavailable(e.to_string()),
            DbErr::Exec(sea_orm::RuntimeErr::SqlxError(inner))
            | DbErr::Query(sea_orm::RuntimeErr::SqlxError(inner))
                if is_unavailable(inner) =>
            {
                AppError::Unavailable(e.to_string())
            }
            DbErr::RecordNotFound(what) => AppError::NotFound(what.clone()),
            _ => AppError::Internal(e.to_string()),
        }
    }
}

/// Errors that mean "the database is not there right now", as opposed to a bug.
fn is_unavailable(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match e {
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Tls(_) => true,
        E::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite busy/locked; PostgreSQL admin shutdown / cannot connect now.
            matches!(
                code.as_ref(),
                "5" | "6" | "517" | "57P01" | "57P02" | "57P03"
            ) || code.starts_with("08")
        }
        _ => false,
    }
}

impl From<activitypub_federation::error::Error> for AppError {
    fn from(e: activitypub_federation::error::Error) -> Self {
        use activitypub_federation::error::Error as E;
        match e {
            E::NotFound => AppError::NotFound("object".into()),
            E::ActivityBodyDigestInvalid | E::ActivitySignatureInvalid => AppError::Unauthorized,
            E::UrlVerificationError(why) if why == crate::federation::policy::REFUSED => {
                AppError::Forbidden(format!("refused: {why}"))
            }
            E::UrlVerificationError(why) if why == crate::federation::policy::UNREADABLE => {
                AppError::Unavailable(why.into())
            }
            E::UrlVerificationError(why) => AppError::BadRequest(format!("url refused: {why}")),
            E::ParseReceivedActivity { err, .. } => {
                AppError::BadRequest(format!("activity not understood: {err}"))
            }
            E::WebfingerResolveFailed(inner) => {
                AppError::NotFound(format!("remote actor (webfinger: {inner})"))
            }
            E::ObjectDeleted(url) => AppError::NotFound(format!("{url} (deleted)")),
            E::RequestLimit => AppError::BadRequest("too many fetches for one request".into()),
            E::DomainResolveError(_) | E::ResolveInternalIpError(..) => {
                AppError::BadRequest("remote host not allowed".into())
            }
            other => AppError::Remote(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        AppError::Internal(format!("json: {e}"))
    }
}

impl From<url::ParseError> for AppError {
    fn from(e: url::ParseError) -> Self {
        AppError::BadRequest(format!("invalid url: {e}"))
    }
}
