//! The ActivityPub documents we serve: actors, their collections, posts.
//! Member lists are never listed, only counted: they reveal diagnoses.

use activitypub_federation::{
    axum::json::FederationJson, protocol::context::WithContext, traits::Object,
};
use axum::{
    Extension,
    extract::Path,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde_json::json;

use super::{
    FedData,
    objects::{
        actor::{DbActor, actor_context},
        object_context,
        post::DbPost,
    },
    policy::{Fetcher, may_fetch_group},
};
use crate::{db, domain::ActorKind, error::AppError};

async fn local_actor(data: &FedData, name: &str, kind: ActorKind) -> Result<DbActor, AppError> {
    let row = db::actors::local_by_name_and_kind(&data.db, name, kind)
        .await?
        .ok_or_else(|| AppError::not_found(kind.as_str()))?;
    DbActor::new(row)
}

/// Who fetches, as the policy gate found it (absent for browsers).
type Fetch = Option<Extension<Fetcher>>;

fn who(f: &Fetch) -> Option<&Fetcher> {
    f.as_ref().map(|e| &e.0)
}

async fn actor_response(data: &FedData, actor: DbActor) -> Result<Response, AppError> {
    let json = actor.into_json(data).await?;
    Ok(FederationJson(WithContext::new(json, actor_context())).into_response())
}

/// A browser following a link to an ActivityPub id gets the page instead.
fn page_redirect(headers: &HeaderMap, to: String) -> Option<Response> {
    crate::web::wants_html(headers).then(|| {
        let mut res = Redirect::to(&to).into_response();
        res.headers_mut()
            .insert(header::VARY, header::HeaderValue::from_static("Accept"));
        res
    })
}

pub async fn get_group(
    data: FedData,
    fetch: Fetch,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let g = local_actor(&data, &name, ActorKind::Group).await?;
    if let Some(r) = page_redirect(&headers, format!("/g/{}", g.row.username)) {
        return Ok(r);
    }
    may_fetch_group(&data, who(&fetch), &g.row).await?;
    actor_response(&data, g).await
}

pub async fn get_person(data: FedData, Path(name): Path<String>) -> Result<Response, AppError> {
    let p = local_actor(&data, &name, ActorKind::Person).await?;
    actor_response(&data, p).await
}

pub async fn get_instance_actor(data: FedData) -> Result<Response, AppError> {
    let row = db::actors::instance_actor(&data.db)
        .await?
        .ok_or_else(|| AppError::not_found("instance actor"))?;
    actor_response(&data, DbActor::new(row)?).await
}

fn collection(id: String, total: u64) -> Response {
    FederationJson(json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "OrderedCollection",
        "id": id,
        "totalItems": total,
        "orderedItems": [],
    }))
    .into_response()
}

/// A group's members: the count only.
pub async fn get_group_followers(
    data: FedData,
    fetch: Fetch,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let g = local_actor(&data, &name, ActorKind::Group).await?;
    may_fetch_group(&data, who(&fetch), &g.row).await?;
    let n = db::follows::count_members(&data.db, g.row.id).await?;
    Ok(collection(format!("{}/followers", g.row.ap_id), n))
}

/// A group's outbox: its thread count (items are read through the group's
/// posts, fetched by id).
pub async fn get_group_outbox(
    data: FedData,
    fetch: Fetch,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let g = local_actor(&data, &name, ActorKind::Group).await?;
    may_fetch_group(&data, who(&fetch), &g.row).await?;
    let n = db::posts::count_threads(&data.db, g.row.id).await?;
    Ok(collection(format!("{}/outbox", g.row.ap_id), n))
}

pub async fn get_person_outbox(
    data: FedData,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let p = local_actor(&data, &name, ActorKind::Person).await?;
    Ok(collection(format!("{}/outbox", p.row.ap_id), 0))
}

/// People have no followers here (only groups do): an empty collection.
pub async fn get_person_followers(
    data: FedData,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let p = local_actor(&data, &name, ActorKind::Person).await?;
    Ok(collection(format!("{}/followers", p.row.ap_id), 0))
}

/// A post, or a Tombstone with 410 once deleted (peers delete their copy).
pub async fn get_post(
    data: FedData,
    fetch: Fetch,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let row = db::posts::by_id(&data.db, id)
        .await?
        .filter(|p| p.local)
        .ok_or_else(|| AppError::not_found("post"))?;
    if fetch.is_some()
        && let Some(group) = db::actors::by_id(&data.db, row.group_id).await?
    {
        may_fetch_group(&data, who(&fetch), &group)
            .await
            .map_err(|_| AppError::not_found("post"))?;
    }
    if row.deleted_at.is_none() {
        let to = match row.thread_id {
            Some(t) => format!("/t/{t}#p{}", row.id),
            None => format!("/t/{}", row.id),
        };
        if let Some(r) = page_redirect(&headers, to) {
            return Ok(r);
        }
    }
    if row.deleted_at.is_some() {
        let body = json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "type": "Tombstone",
            "id": row.ap_id,
        });
        let mut res = FederationJson(body).into_response();
        *res.status_mut() = StatusCode::GONE;
        return Ok(res);
    }
    let json = DbPost::new(row)?.into_json(&data).await?;
    let mut res = FederationJson(WithContext::new(json, object_context())).into_response();
    res.headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("Accept"));
    Ok(res)
}
