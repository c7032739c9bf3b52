//! The JSON API for local members (token auth), one file per resource, each
//! with its routes, DTOs and handlers. Views are built here from rows; a row
//! never goes straight to JSON.

pub mod auth;
pub mod directory;
pub mod federation;
pub mod groups;
pub mod moderation;
pub mod openapi;
pub mod posts;

use axum::{
    Router,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts},
};
use serde::de::DeserializeOwned;

use crate::{
    app::AppState,
    error::AppError,
    federation::FedData,
    service::users::{self, CurrentUser},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(directory::router())
        .merge(federation::router())
        .merge(groups::router())
        .merge(moderation::router())
        .merge(posts::router())
        .merge(openapi::router())
}

/// JSON body whose errors come back in our error format (400 with a reason).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(match rejection.status().as_u16() {
                413 => AppError::PayloadTooLarge,
                415 => AppError::bad_request("expected Content-Type: application/json"),
                _ => AppError::BadRequest(rejection.body_text()),
            }),
        }
    }
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// The signed-in member (`Authorization: Bearer TOKEN`); 401 otherwise.
pub struct Auth(pub CurrentUser, pub String);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let token = bearer(parts).ok_or(AppError::Unauthorized)?;
        let data = FedData::from_request_parts(parts, state)
            .await
            .map_err(|(_, m)| AppError::internal(m))?;
        let user = users::authenticate(&data, &token).await?;
        Ok(Auth(user, token))
    }
}

/// The signed-in member if there is a valid token, else nobody.
pub struct MaybeAuth(pub Option<CurrentUser>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        if bearer(parts).is_none() {
            return Ok(MaybeAuth(None));
        }
        Auth::from_request_parts(parts, state)
            .await
            .map(|Auth(u, _)| MaybeAuth(Some(u)))
    }
}
