//! The inbox (shared and per actor, one handler): body limit with 413, a sane
//! `Date`, then the crate's digest, signature and origin checks, then our own
//! verify and receive. Repeats are absorbed by the activity-id record.

use activitypub_federation::axum::inbox::{ActivityData, receive_activity};
use axum::{
    body::{Body, to_bytes},
    extract::{FromRequest, Request},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};

use super::{FedData, activities::InboxActivity, objects::actor::DbActor};
use crate::{app::AppState, error::AppError};

pub async fn post_inbox(data: FedData, req: Request) -> Result<StatusCode, AppError> {
    let (parts, body) = req.into_parts();
    check_date(
        &parts.headers,
        Utc::now(),
        data.settings.federation.max_clock_skew_secs,
    )?;
    let limit = data.settings.server.max_body_bytes;
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| AppError::PayloadTooLarge)?;
    let req = Request::from_parts(parts, Body::from(bytes));
    let activity = ActivityData::from_request(req, &()).await.map_err(|r| {
        AppError::BadRequest(format!(
            "unreadable request ({})",
            r.into_response().status()
        ))
    })?;
    receive_activity::<InboxActivity, DbActor, AppState>(activity, &data).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The signature library accepts a missing, unparseable or future `Date`: we
/// don't. (It checks the past itself: at most one hour old.)
pub fn check_date(
    headers: &HeaderMap,
    now: DateTime<Utc>,
    max_skew_secs: i64,
) -> Result<(), AppError> {
    let raw = headers
        .get("date")
        .and_then(|d| d.to_str().ok())
        .ok_or(AppError::Unauthorized)?;
    let date = DateTime::parse_from_rfc2822(raw)
        .map_err(|_| AppError::Unauthorized)?
        .with_timezone(&Utc);
    if (date - now).num_seconds() > max_skew_secs {
        return Err(AppError::Unauthorized);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_date(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert("date", v);
        }
        h
    }

    #[test]
    fn dates() {
        let now = DateTime::parse_from_rfc2822("Sun, 22 Nov 2026 10:00:00 GMT")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        assert!(check_date(&with_date("Sun, 22 Nov 2026 10:00:00 GMT"), now, 300).is_ok());
        assert!(check_date(&with_date("Sun, 22 Nov 2026 09:30:00 GMT"), now, 300).is_ok());
        assert!(check_date(&with_date("Sun, 22 Nov 2026 10:04:00 GMT"), now, 300).is_ok());
        assert!(check_date(&with_date("Sun, 22 Nov 2026 11:00:00 GMT"), now, 300).is_err());
        assert!(check_date(&with_date("yesterday"), now, 300).is_err());
        assert!(check_date(&HeaderMap::new(), now, 300).is_err());
    }
}
