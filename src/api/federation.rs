//! `/api/v1/admin/*` (admins): the federation mode and lists, Mastodon CSV
//! import and export, a domain's content, instances met, the audit log; and
//! `/api/v1/groups/{handle}/federation` (a group's own allow-list, for its
//! owner, moderators and admins).

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiJson, Auth};
use crate::{
    app::AppState,
    domain::policy::List,
    error::AppError,
    federation::FedData,
    service::{
        federation::{self as fed, ContentAction, Who},
        groups,
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/admin/federation", get(show))
        .route("/api/v1/admin/federation/mode", put(set_mode))
        .route("/api/v1/admin/federation/allow", post(allow))
        .route("/api/v1/admin/federation/allow/{domain}", delete(unallow))
        .route("/api/v1/admin/federation/block", post(block))
        .route("/api/v1/admin/federation/block/{domain}", delete(unblock))
        .route("/api/v1/admin/federation/import", post(import))
        .route("/api/v1/admin/federation/export", get(export))
        .route("/api/v1/admin/federation/content", post(content))
        .route("/api/v1/admin/instances", get(instances))
        .route("/api/v1/admin/audit", get(audit))
        .route(
            "/api/v1/groups/{handle}/federation",
            get(group_show).put(group_set),
        )
}

#[derive(Serialize)]
struct RuleView {
    domain: String,
    reason: Option<String>,
    created_by: String,
    created_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct PolicyView {
    mode: &'static str,
    allow: Vec<RuleView>,
    block: Vec<RuleView>,
}

fn rules(rows: Vec<fed::RuleView>) -> Vec<RuleView> {
    rows.into_iter()
        .map(|r| RuleView {
            domain: r.domain,
            reason: r.reason,
            created_by: r.created_by,
            created_at: r.created_at,
        })
        .collect()
}

async fn policy_view(data: &FedData) -> Result<Json<PolicyView>, AppError> {
    let v = fed::view(data).await?;
    Ok(Json(PolicyView {
        mode: v.mode.as_str(),
        allow: rules(v.allow),
        block: rules(v.block),
    }))
}

async fn show(data: FedData, Auth(me, _): Auth) -> Result<Json<PolicyView>, AppError> {
    crate::service::instance::require_admin(&me)?;
    policy_view(&data).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModeBody {
    mode: String,
    reason: Option<String>,
}

async fn set_mode(
    data: FedData,
    Auth(me, _): Auth,
    ApiJson(b): ApiJson<ModeBody>,
) -> Result<Json<PolicyView>, AppError> {
    fed::set_mode(&data, Who::User(&me), &b.mode, b.reason.as_deref()).await?;
    policy_view(&data).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainBody {
    domain: String,
    reason: Option<String>,
    /// Blocks only: also `hide` or `purge` what its people wrote here.
    content: Option<String>,
}

async fn allow(
    data: FedData,
    Auth(me, _): Auth,
    ApiJson(b): ApiJson<DomainBody>,
) -> Result<(StatusCode, Json<PolicyView>), AppError> {
    if b.content.is_some() {
        return Err(AppError::bad_request("content applies to blocks only"));
    }
    fed::add(
        &data,
        Who::User(&me),
        List::Allow,
        &b.domain,
        b.reason.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, policy_view(&data).await?))
}

async fn block(
    data: FedData,
    Auth(me, _): Auth,
    ApiJson(b): ApiJson<DomainBody>,
) -> Result<(StatusCode, Json<PolicyView>), AppError> {
    let action = match b.content.as_deref() {
        None => None,
        Some("hide") => Some(ContentAction::Hide),
        Some("purge") => Some(ContentAction::Purge),
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "unknown content action '{other}': use hide or purge"
            )));
        }
    };
    let who = Who::User(&me);
    let e = fed::add(&data, who, List::Block, &b.domain, b.reason.as_deref()).await?;
    if let Some(a) = action {
        fed::content(&data, who, &e.to_string(), a, b.reason.as_deref()).await?;
    }
    Ok((StatusCode::CREATED, policy_view(&data).await?))
}

async fn unallow(
    data: FedData,
    Auth(me, _): Auth,
    Path(domain): Path<String>,
) -> Result<StatusCode, AppError> {
    fed::remove(&data, Who::User(&me), List::Allow, &domain, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unblock(
    data: FedData,
    Auth(me, _): Auth,
    Path(domain): Path<String>,
) -> Result<StatusCode, AppError> {
    fed::remove(&data, Who::User(&me), List::Block, &domain, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct SkippedRow {
    line: usize,
    why: String,
}

#[derive(Serialize)]
struct ImportView {
    added: Vec<String>,
    already_blocked: Vec<String>,
    skipped: Vec<SkippedRow>,
}

/// The body is the CSV itself (`text/csv`).
async fn import(
    data: FedData,
    Auth(me, _): Auth,
    body: Bytes,
) -> Result<Json<ImportView>, AppError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| AppError::bad_request("the CSV must be UTF-8 text"))?;
    let r = fed::import_blocks(&data, Who::User(&me), text).await?;
    Ok(Json(ImportView {
        added: r.added,
        already_blocked: r.already,
        skipped: r
            .skipped
            .into_iter()
            .map(|(line, why)| SkippedRow { line, why })
            .collect(),
    }))
}

async fn export(data: FedData, Auth(me, _): Auth) -> Result<Response, AppError> {
    crate::service::instance::require_admin(&me)?;
    let csv = fed::export_blocks(&data).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"domain_blocks.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContentBody {
    domain: String,
    /// `hide`, `show` or `purge`.
    action: String,
    reason: Option<String>,
}

#[derive(Serialize)]
struct ContentView {
    posts: u64,
}

async fn content(
    data: FedData,
    Auth(me, _): Auth,
    ApiJson(b): ApiJson<ContentBody>,
) -> Result<Json<ContentView>, AppError> {
    let a = ContentAction::parse(&b.action).ok_or_else(|| {
        AppError::BadRequest(format!(
            "unknown action '{}': use hide, show or purge",
            b.action
        ))
    })?;
    let posts = fed::content(&data, Who::User(&me), &b.domain, a, b.reason.as_deref()).await?;
    Ok(Json(ContentView { posts }))
}

#[derive(Serialize)]
struct InstanceView {
    domain: String,
    software: Option<String>,
    version: Option<String>,
    first_seen: Option<DateTime<Utc>>,
    last_contact: Option<DateTime<Utc>>,
    members_here: u64,
    deliveries_pending: u64,
    deliveries_failed: u64,
    failing_in_a_row: i32,
    /// Null when federation with it is allowed; else why not.
    refused: Option<&'static str>,
}

async fn instances(data: FedData, Auth(me, _): Auth) -> Result<Json<Vec<InstanceView>>, AppError> {
    let rows = fed::instances(&data, Who::User(&me)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|i| InstanceView {
                domain: i.domain,
                software: i.software,
                version: i.version,
                first_seen: i.first_seen,
                last_contact: i.last_contact,
                members_here: i.members_here,
                deliveries_pending: i.deliveries_pending,
                deliveries_failed: i.deliveries_failed,
                failing_in_a_row: i.failing_in_a_row,
                refused: i.refused,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<u64>,
}

#[derive(Serialize)]
struct AuditView {
    at: DateTime<Utc>,
    who: String,
    action: String,
    target: String,
    reason: Option<String>,
}

async fn audit(
    data: FedData,
    Auth(me, _): Auth,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, AppError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = fed::audit_log(&data, Who::User(&me), limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|e| AuditView {
                at: e.at,
                who: e.who,
                action: e.action,
                target: e.target,
                reason: e.reason,
            })
            .collect(),
    ))
}

#[derive(Serialize)]
struct GroupFederationView {
    /// True: members only from `domains` (and this instance).
    restricted: bool,
    domains: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFederationBody {
    restricted: bool,
    #[serde(default)]
    domains: Vec<String>,
}

async fn local_group(
    data: &FedData,
    handle: &str,
) -> Result<crate::federation::objects::actor::DbActor, AppError> {
    let g = groups::find_group(data, handle).await?;
    if !g.row.local {
        return Err(AppError::bad_request(
            "only this instance's groups have their own federation list",
        ));
    }
    Ok(g)
}

async fn group_show(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
) -> Result<Json<GroupFederationView>, AppError> {
    let g = local_group(&data, &handle).await?;
    // Reading needs the same rights as writing: the list says who is welcome.
    let now = fed::group_domains(&data, &g).await?;
    fed::require_group_staff(&data, Who::User(&me), &g).await?;
    Ok(Json(GroupFederationView {
        restricted: now.restricted,
        domains: now.domains,
    }))
}

async fn group_set(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
    ApiJson(b): ApiJson<GroupFederationBody>,
) -> Result<Json<GroupFederationView>, AppError> {
    let g = local_group(&data, &handle).await?;
    let now = fed::set_group_domains(
        &data,
        Who::User(&me),
        &g,
        b.restricted,
        &b.domains.join("\n"),
    )
    .await?;
    Ok(Json(GroupFederationView {
        restricted: now.restricted,
        domains: now.domains,
    }))
}
