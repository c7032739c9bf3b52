//! `/api/v1/groups/{handle}/moderation*`, `/api/v1/posts/{id}/remove|lock|
//! unlock|approve` and `/api/v1/reports*`: what a group's owner and
//! moderators (and admins) do, and reports by members. Every action answers
//! 403 to people who do not moderate the group, 409 to a repeat.

use axum::{
    Json, Router,
    extract::Path,
    http::StatusCode,
    routing::{get, patch, post},
};
use serde::{Deserialize, Serialize};

use super::{ApiJson, Auth};
use crate::{
    app::AppState,
    db::{self, entities::actor},
    error::AppError,
    federation::{FedData, objects::actor::DbActor},
    service::{
        federation::Who,
        groups,
        moderation::{self, SettingsChange},
        reports::{self, Subject},
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/groups/{handle}/settings", patch(settings))
        .route("/api/v1/groups/{handle}/requests", get(requests))
        .route(
            "/api/v1/groups/{handle}/requests/{actor_id}/{decision}",
            post(decide),
        )
        .route("/api/v1/groups/{handle}/bans", get(bans).post(ban))
        .route("/api/v1/groups/{handle}/unban", post(unban))
        .route("/api/v1/groups/{handle}/invitations", post(invite))
        .route("/api/v1/groups/{handle}/moderation-log", get(log))
        .route("/api/v1/posts/{id}/remove", post(remove))
        .route("/api/v1/posts/{id}/lock", post(lock))
        .route("/api/v1/posts/{id}/unlock", post(unlock))
        .route("/api/v1/posts/{id}/approve", post(approve_post))
        .route("/api/v1/reports", get(list_reports).post(file_report))
        .route("/api/v1/reports/{id}/close", post(close_report))
        .route("/api/v1/reports/{id}/forward", post(forward_report))
}

async fn local_group(data: &FedData, handle: &str) -> Result<DbActor, AppError> {
    let g = groups::find_group(data, handle).await?;
    if !g.row.local {
        return Err(AppError::bad_request(
            "only this instance's groups are moderated here",
        ));
    }
    Ok(g)
}

#[derive(Serialize)]
struct PersonView {
    id: i64,
    handle: String,
    name: Option<String>,
    url: String,
}

fn person(a: &actor::Model) -> PersonView {
    PersonView {
        id: a.id,
        handle: format!("{}@{}", a.username, a.domain),
        name: a.display_name.clone(),
        url: a.ap_id.clone(),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SettingsBody {
    visibility: Option<String>,
    join_policy: Option<String>,
    member_count_hidden: Option<bool>,
    premoderation: Option<bool>,
    default_content_warning: Option<String>,
}

#[derive(Serialize)]
struct SettingsView {
    visibility: &'static str,
    join_policy: &'static str,
    member_count_hidden: bool,
    premoderation: bool,
    default_content_warning: Option<String>,
}

async fn settings(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
    ApiJson(b): ApiJson<SettingsBody>,
) -> Result<Json<SettingsView>, AppError> {
    let g = local_group(&data, &handle).await?;
    let s = moderation::update_settings(
        &data,
        Who::User(&me),
        &g,
        SettingsChange {
            visibility: b.visibility.as_deref(),
            join_policy: b.join_policy.as_deref(),
            member_count_hidden: b.member_count_hidden,
            premoderation: b.premoderation,
            default_content_warning: b.default_content_warning.as_deref(),
        },
    )
    .await?;
    Ok(Json(SettingsView {
        visibility: s.visibility.as_str(),
        join_policy: s.join_policy.as_str(),
        member_count_hidden: s.member_count_hidden,
        premoderation: s.premoderation,
        default_content_warning: s.default_content_warning,
    }))
}

#[derive(Serialize)]
struct RequestView {
    person: PersonView,
    /// What the applicant wrote (plain text), local applicants only.
    note: Option<String>,
    requested_at: chrono::DateTime<chrono::Utc>,
}

async fn requests(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
) -> Result<Json<Vec<RequestView>>, AppError> {
    let g = local_group(&data, &handle).await?;
    crate::service::federation::require_group_staff(&data, Who::User(&me), &g).await?;
    let rows = db::moderation::pending_requests(&data.db, g.row.id).await?;
    Ok(Json(
        rows.iter()
            .map(|(f, a)| RequestView {
                person: person(a),
                note: f.note.clone(),
                requested_at: f.created_at,
            })
            .collect(),
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReasonBody {
    reason: Option<String>,
}

async fn decide(
    data: FedData,
    Auth(me, _): Auth,
    Path((handle, actor_id, decision)): Path<(String, i64, String)>,
    body: axum::body::Bytes,
) -> Result<StatusCode, AppError> {
    let g = local_group(&data, &handle).await?;
    let b: ReasonBody = optional_json(&body)?;
    match decision.as_str() {
        "approve" => moderation::approve(&data, Who::User(&me), &g, actor_id).await?,
        "refuse" => {
            moderation::refuse(&data, Who::User(&me), &g, actor_id, b.reason.as_deref()).await?
        }
        _ => return Err(AppError::not_found("decision (approve or refuse)")),
    }
    Ok(StatusCode::NO_CONTENT)
}

fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("request body is not valid JSON: {e}")))
}

#[derive(Serialize)]
struct BanView {
    person: PersonView,
    reason: Option<String>,
    by: String,
    at: chrono::DateTime<chrono::Utc>,
}

async fn bans(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
) -> Result<Json<Vec<BanView>>, AppError> {
    let g = local_group(&data, &handle).await?;
    crate::service::federation::require_group_staff(&data, Who::User(&me), &g).await?;
    let rows = db::moderation::bans(&data.db, g.row.id).await?;
    Ok(Json(
        rows.iter()
            .map(|(b, a)| BanView {
                person: person(a),
                reason: b.reason.clone(),
                by: b.created_by.clone(),
                at: b.created_at,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
struct BanBody {
    /// `name` (here) or `name@host`.
    account: String,
    reason: Option<String>,
}

async fn ban(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
    ApiJson(b): ApiJson<BanBody>,
) -> Result<StatusCode, AppError> {
    let g = local_group(&data, &handle).await?;
    crate::service::federation::require_group_staff(&data, Who::User(&me), &g).await?;
    let p = moderation::person_by_handle(&data, &b.account).await?;
    moderation::ban(&data, Who::User(&me), &g, &p, b.reason.as_deref()).await?;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
struct AccountBody {
    account: String,
}

async fn unban(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
    ApiJson(b): ApiJson<AccountBody>,
) -> Result<StatusCode, AppError> {
    let g = local_group(&data, &handle).await?;
    crate::service::federation::require_group_staff(&data, Who::User(&me), &g).await?;
    let p = moderation::person_by_handle(&data, &b.account).await?;
    moderation::unban(&data, Who::User(&me), &g, &p).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct InviteBody {
    /// Invite this person; without it, make an invitation link.
    account: Option<String>,
}

#[derive(Serialize)]
struct InviteView {
    /// The link's token (shown once): join with `{"invite": token}`.
    token: Option<String>,
    link: Option<String>,
}

async fn invite(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<InviteView>), AppError> {
    let b: InviteBody = optional_json(&body)?;
    let g = local_group(&data, &handle).await?;
    crate::service::federation::require_group_staff(&data, Who::User(&me), &g).await?;
    let p = match b.account.as_deref() {
        Some(a) => Some(moderation::person_by_handle(&data, a).await?),
        None => None,
    };
    let token = moderation::invite(&data, Who::User(&me), &g, p.as_ref()).await?;
    let link = token
        .as_ref()
        .map(|t| format!("{}g/{}?invite={t}", data.urls.base(), g.row.username));
    Ok((StatusCode::CREATED, Json(InviteView { token, link })))
}

#[derive(Serialize)]
struct LogView {
    at: chrono::DateTime<chrono::Utc>,
    who: String,
    action: String,
    target: String,
    reason: Option<String>,
}

async fn log(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
) -> Result<Json<Vec<LogView>>, AppError> {
    let g = local_group(&data, &handle).await?;
    let rows = moderation::log(&data, Who::User(&me), &g).await?;
    Ok(Json(
        rows.into_iter()
            .map(|e| LogView {
                at: e.at,
                who: e.who,
                action: e.action,
                target: e.target,
                reason: e.reason,
            })
            .collect(),
    ))
}

async fn remove(
    data: FedData,
    Auth(me, _): Auth,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<StatusCode, AppError> {
    let b: ReasonBody = optional_json(&body)?;
    moderation::remove_post(&data, Who::User(&me), id, b.reason.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn lock(
    data: FedData,
    Auth(me, _): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    moderation::set_locked(&data, Who::User(&me), id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unlock(
    data: FedData,
    Auth(me, _): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    moderation::set_locked(&data, Who::User(&me), id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn approve_post(
    data: FedData,
    Auth(me, _): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    moderation::approve_post(&data, Who::User(&me), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ReportBody {
    /// A post's id here…
    post_id: Option<i64>,
    /// …or a person, `name` or `name@host`.
    account: Option<String>,
    #[serde(default)]
    comment: String,
}

#[derive(Serialize)]
struct ReportView {
    id: i64,
    status: String,
    group: Option<String>,
    reporter: Option<PersonView>,
    target: Option<PersonView>,
    post_id: Option<i64>,
    /// The reported post's content (sanitised HTML), for the moderators.
    post_html: Option<String>,
    comment: Option<String>,
    /// A remote server's Flag.
    remote: bool,
    resolved_by: Option<String>,
    resolution: Option<String>,
    forwarded: bool,
    created_at: chrono::DateTime<chrono::Utc>,
}

fn report_view(v: reports::ReportView) -> ReportView {
    ReportView {
        id: v.report.id,
        status: v.report.status.clone(),
        group: v
            .group
            .as_ref()
            .map(|g| format!("{}@{}", g.username, g.domain)),
        reporter: v.reporter.as_ref().map(person),
        target: v.target.as_ref().map(person),
        post_id: v.report.post_id,
        post_html: v
            .post
            .as_ref()
            .filter(|p| p.deleted_at.is_none())
            .map(|p| p.content_html.clone()),
        comment: v.report.comment.clone(),
        remote: v.report.flag_ap_id.is_some(),
        resolved_by: v.report.resolved_by.clone(),
        resolution: v.report.resolution.clone(),
        forwarded: v.report.forwarded_at.is_some(),
        created_at: v.report.created_at,
    }
}

async fn file_report(
    data: FedData,
    Auth(me, _): Auth,
    ApiJson(b): ApiJson<ReportBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    let subject = match (b.post_id, b.account.as_deref()) {
        (Some(id), None) => Subject::Post(id),
        (None, Some(a)) => Subject::Person(a),
        _ => {
            return Err(AppError::bad_request(
                "report either a post (post_id) or a person (account)",
            ));
        }
    };
    let r = reports::report(&data, &me, subject, &b.comment).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"id": r.id}))))
}

async fn list_reports(data: FedData, Auth(me, _): Auth) -> Result<Json<Vec<ReportView>>, AppError> {
    let rows = reports::list(&data, Who::User(&me)).await?;
    Ok(Json(rows.into_iter().map(report_view).collect()))
}

#[derive(Deserialize)]
struct CloseBody {
    /// "resolved" or "dismissed".
    outcome: String,
    resolution: Option<String>,
}

async fn close_report(
    data: FedData,
    Auth(me, _): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<CloseBody>,
) -> Result<StatusCode, AppError> {
    reports::close(
        &data,
        Who::User(&me),
        id,
        &b.outcome,
        b.resolution.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn forward_report(
    data: FedData,
    Auth(me, _): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    reports::forward(&data, Who::User(&me), id).await?;
    Ok(StatusCode::ACCEPTED)
}
