//! `/api/v1/auth/*` and `/api/v1/me`: sign in for a token, sign out, who am I.

use axum::{
    Json, Router,
    http::StatusCode,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{ApiJson, Auth};
use crate::{
    app::AppState,
    error::AppError,
    federation::FedData,
    service::users::{self, CurrentUser},
    web::session::ClientIp,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/me", get(me).delete(delete_me))
        .route("/api/v1/me/export", get(export))
}

#[derive(Deserialize)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Serialize)]
pub struct LoginResponse {
    token: String,
    user: UserView,
}

#[derive(Serialize)]
pub struct UserView {
    username: String,
    handle: String,
    url: String,
    admin: bool,
}

impl UserView {
    fn from_current(u: &CurrentUser) -> Self {
        UserView {
            username: u.actor.username.clone(),
            handle: format!("{}@{}", u.actor.username, u.actor.domain),
            url: u.actor.ap_id.clone(),
            admin: u.user.is_admin,
        }
    }
}

/// Shares the web sign-in's limits (per client address and per username), so
/// the API is no way around them.
async fn login(
    data: FedData,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, AppError> {
    let username = req.username.to_lowercase();
    if !data.signin_limits.check(ip, &username) {
        return Err(AppError::TooManyRequests(
            "too many sign-in attempts; wait a minute and try again".into(),
        ));
    }
    let (token, user) = users::login(&data, &username, &req.password).await?;
    Ok(Json(LoginResponse {
        token,
        user: UserView::from_current(&user),
    }))
}

async fn logout(data: FedData, Auth(_, token): Auth) -> Result<StatusCode, AppError> {
    users::logout(&data, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(Auth(user, _): Auth) -> Json<UserView> {
    Json(UserView::from_current(&user))
}

/// Everything I wrote and my memberships, as one ActivityStreams document.
async fn export(data: FedData, Auth(me, _): Auth) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let archive = crate::service::data::export(&data, &me).await?;
    let name = format!("kindred-{}.json", me.actor.username);
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/activity+json".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (
                axum::http::header::CACHE_CONTROL,
                "private, no-store".to_string(),
            ),
        ],
        Json(archive),
    )
        .into_response())
}

#[derive(Deserialize)]
struct DeleteMe {
    password: String,
}

/// Delete my account (the password again, to be sure).
async fn delete_me(
    data: FedData,
    Auth(me, _): Auth,
    ApiJson(b): ApiJson<DeleteMe>,
) -> Result<StatusCode, AppError> {
    crate::service::data::delete_account(&data, &me, &b.password).await?;
    Ok(StatusCode::NO_CONTENT)
}
