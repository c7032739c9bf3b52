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
        .route("/api/v1/me", get(me))
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
