//! `/api/openapi.json`: the OpenAPI 3.1 description of this API, kept in
//! `openapi.json` beside this file (a test checks it lists every route).

use axum::{Router, http::header, response::IntoResponse, routing::get};

use crate::app::AppState;

pub const OPENAPI_JSON: &str = include_str!("openapi.json");

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(serve))
}

async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
