//! `/api/v1/directory` (search groups here and on every instance we know),
//! `/api/v1/groups/{handle}/about` (what a group is about),
//! `/api/v1/groups/{handle}/links*` (links between groups),
//! `/api/v1/posts/{id}/share` (share a thread into a linked group) and
//! `/api/v1/admin/directory/refresh` (re-read other instances' directories).

use axum::{
    Json, Router,
    extract::{Path, Query},
    http::StatusCode,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{ApiJson, Auth, MaybeAuth};
use crate::{
    app::AppState,
    db,
    domain::topics::Topics,
    error::AppError,
    federation::{FedData, directory, objects::actor::DbActor},
    service::{
        directory::{self as dir, AboutChange},
        federation::Who,
        groups,
        links::{self, LinkView},
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/directory", get(search))
        .route("/api/v1/groups/{handle}/about", get(about).put(set_about))
        .route(
            "/api/v1/groups/{handle}/links",
            get(list_links).post(request_link),
        )
        .route(
            "/api/v1/groups/{handle}/links/{id}/{decision}",
            post(decide_link),
        )
        .route("/api/v1/posts/{id}/share", post(share))
        .route("/api/v1/admin/directory/refresh", post(refresh))
}

#[derive(Serialize)]
struct CodeView {
    /// `icd10`, `icd11`, `orpha` or `snomed`.
    system: &'static str,
    code: String,
}

#[derive(Serialize)]
struct AboutView {
    conditions: Vec<String>,
    tags: Vec<String>,
    codes: Vec<CodeView>,
    languages: Vec<String>,
    region: Option<String>,
}

fn about_view(t: Topics) -> AboutView {
    AboutView {
        conditions: t.conditions,
        tags: t.tags,
        codes: t
            .codes
            .into_iter()
            .map(|c| CodeView {
                system: c.system.as_str(),
                code: c.code,
            })
            .collect(),
        languages: t.languages,
        region: t.region,
    }
}

#[derive(Serialize)]
struct EntryView {
    handle: String,
    title: Option<String>,
    summary: Option<String>,
    /// The instance it lives on.
    host: String,
    local: bool,
    url: String,
    members: Option<u64>,
    about: AboutView,
    /// Higher is a better match (only its order means something).
    score: u32,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SearchQuery {
    q: String,
}

async fn search(
    data: FedData,
    MaybeAuth(me): MaybeAuth,
    Query(q): Query<SearchQuery>,
) -> Result<Json<Vec<EntryView>>, AppError> {
    let found = dir::search(&data, me.as_ref(), &q.q).await?;
    Ok(Json(
        found
            .into_iter()
            .map(|e| EntryView {
                handle: e.handle(),
                title: e.group.display_name.clone(),
                summary: e.group.summary.clone(),
                host: e.group.domain.clone(),
                local: e.group.local,
                url: e.group.ap_id.clone(),
                members: e.members,
                about: about_view(e.topics),
                score: e.score,
            })
            .collect(),
    ))
}

#[derive(Serialize)]
struct AboutWithListing {
    #[serde(flatten)]
    about: AboutView,
    /// Listed in directories.
    discoverable: bool,
}

async fn visible_group(
    data: &FedData,
    me: Option<&crate::service::users::CurrentUser>,
    handle: &str,
) -> Result<DbActor, AppError> {
    // Visitors never make us fetch a group we do not know yet.
    let g = super::groups::find(data, handle, me).await?;
    if !crate::service::access::may_see_profile(me, &g.row) {
        return Err(AppError::not_found("group"));
    }
    Ok(g)
}

async fn about(
    data: FedData,
    MaybeAuth(me): MaybeAuth,
    Path(handle): Path<String>,
) -> Result<Json<AboutWithListing>, AppError> {
    let g = visible_group(&data, me.as_ref(), &handle).await?;
    let t = db::directory::topics_of(&data.db, &g.row).await?;
    Ok(Json(AboutWithListing {
        about: about_view(t),
        discoverable: g.row.discoverable,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AboutBody {
    #[serde(default)]
    conditions: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// `system:code`, e.g. `icd10:G70.0`, `orpha:589`, `snomed:91637004`.
    #[serde(default)]
    codes: Vec<String>,
    #[serde(default)]
    languages: Vec<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default = "yes")]
    discoverable: bool,
}

fn yes() -> bool {
    true
}

async fn set_about(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
    ApiJson(b): ApiJson<AboutBody>,
) -> Result<Json<AboutWithListing>, AppError> {
    let g = groups::find_group(&data, &handle).await?;
    let change = AboutChange {
        conditions: b.conditions,
        tags: b.tags,
        codes: b.codes,
        languages: b.languages,
        region: b.region,
        discoverable: b.discoverable,
    };
    let t = dir::set_about(&data, Who::User(&me), &g, &change).await?;
    Ok(Json(AboutWithListing {
        about: about_view(t),
        discoverable: change.discoverable,
    }))
}

#[derive(Serialize)]
struct LinkJson {
    id: i64,
    /// "accepted"; for the group's moderators also "requested" (we asked)
    /// and "pending" (they asked, waiting for our answer).
    state: String,
    group: String,
    title: Option<String>,
    url: String,
}

fn link_json(l: LinkView) -> LinkJson {
    LinkJson {
        id: l.id,
        state: l.state,
        group: l.peer.handle(),
        title: l.peer.row.display_name.clone(),
        url: l.peer.row.ap_id.clone(),
    }
}

async fn list_links(
    data: FedData,
    MaybeAuth(me): MaybeAuth,
    Path(handle): Path<String>,
) -> Result<Json<Vec<LinkJson>>, AppError> {
    let g = visible_group(&data, me.as_ref(), &handle).await?;
    let staff = match &me {
        Some(u) => crate::service::federation::require_group_staff(&data, Who::User(u), &g)
            .await
            .is_ok(),
        None => false,
    };
    let all = links::links_of(&data, &g).await?;
    Ok(Json(
        all.into_iter()
            .filter(|l| staff || l.state == db::links::ACCEPTED)
            .map(link_json)
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    /// The other group: `name@host` (or a local `name`).
    group: String,
}

async fn request_link(
    data: FedData,
    Auth(me, _): Auth,
    Path(handle): Path<String>,
    ApiJson(b): ApiJson<LinkBody>,
) -> Result<(StatusCode, Json<LinkJson>), AppError> {
    let g = groups::find_group(&data, &handle).await?;
    let l = links::request(&data, Who::User(&me), &g, b.group.trim()).await?;
    Ok((StatusCode::CREATED, Json(link_json(l))))
}

async fn decide_link(
    data: FedData,
    Auth(me, _): Auth,
    Path((handle, id, decision)): Path<(String, i64, String)>,
) -> Result<StatusCode, AppError> {
    let g = groups::find_group(&data, &handle).await?;
    match decision.as_str() {
        "accept" => links::decide(&data, Who::User(&me), &g, id, true).await?,
        "refuse" => links::decide(&data, Who::User(&me), &g, id, false).await?,
        "remove" => {
            links::unlink(&data, Who::User(&me), &g, id).await?;
            return Ok(StatusCode::NO_CONTENT);
        }
        other => {
            return Err(AppError::not_found(format!(
                "link action '{other}' (use accept, refuse or remove)"
            )));
        }
    };
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    /// The linked group to share into: `name@host`.
    group: String,
    #[serde(default)]
    comment: String,
}

#[derive(Serialize)]
struct Shared {
    id: i64,
    url: String,
}

async fn share(
    data: FedData,
    Auth(me, _): Auth,
    Path(id): Path<i64>,
    ApiJson(b): ApiJson<ShareBody>,
) -> Result<(StatusCode, Json<Shared>), AppError> {
    let target = groups::find_group(&data, b.group.trim()).await?;
    let p = links::share(&data, &me, id, target.row.id, &b.comment).await?;
    Ok((
        StatusCode::CREATED,
        Json(Shared {
            id: p.id,
            url: p.ap_id,
        }),
    ))
}

#[derive(Serialize)]
struct RoundView {
    instances_read: usize,
    groups_listed: usize,
    failures: usize,
}

async fn refresh(data: FedData, Auth(me, _): Auth) -> Result<Json<RoundView>, AppError> {
    crate::service::instance::require_admin(&me)?;
    let r = directory::refresh(&data).await?;
    Ok(Json(RoundView {
        instances_read: r.instances_read,
        groups_listed: r.groups_listed,
        failures: r.failures,
    }))
}
