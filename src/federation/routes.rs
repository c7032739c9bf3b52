//! The ActivityPub documents we serve: actors, their collections, posts.
//! Member lists are never listed, only counted: they reveal diagnoses.

use std::sync::Arc;

use activitypub_federation::{
    FEDERATION_CONTENT_TYPE, axum::json::FederationJson, protocol::context::WithContext,
    traits::Object,
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
    docs::Doc,
    objects::{
        actor::{DbActor, actor_context},
        object_context,
        post::DbPost,
    },
    policy::{Fetcher, may_fetch_content, may_fetch_group},
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
    let doc = match data.group_docs.get(&name) {
        Some(doc) => doc,
        None => {
            let stamp = data.group_docs.stamp();
            let g = local_actor(&data, &name, ActorKind::Group).await?;
            let row = g.row.clone();
            let json = g.into_json(&data).await?;
            let body = serde_json::to_vec(&WithContext::new(json, actor_context()))
                .map_err(|e| AppError::internal(format!("actor document: {e}")))?;
            let doc = Arc::new(Doc::new(row, body.into()));
            data.group_docs.put(doc.clone(), stamp);
            doc
        }
    };
    if let Some(r) = page_redirect(&headers, format!("/g/{}", doc.row.username)) {
        return Ok(r);
    }
    may_fetch_group(&data, who(&fetch), &doc.row).await?;
    Ok((
        [(header::CONTENT_TYPE, FEDERATION_CONTENT_TYPE)],
        doc.body.clone(),
    )
        .into_response())
}

pub async fn get_person(data: FedData, Path(name): Path<String>) -> Result<Response, AppError> {
    let p = local_actor(&data, &name, ActorKind::Person).await?;
    if p.row.deleted_at.is_some() {
        // A deleted account: peers drop their copy; the name stays taken.
        let body = json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "type": "Tombstone",
            "id": p.row.ap_id,
        });
        let mut res = FederationJson(body).into_response();
        *res.status_mut() = StatusCode::GONE;
        return Ok(res);
    }
    actor_response(&data, p).await
}

pub async fn get_instance_actor(data: FedData) -> Result<Response, AppError> {
    let row = db::actors::instance_actor(&data.db)
        .await?
        .ok_or_else(|| AppError::not_found("instance actor"))?;
    actor_response(&data, DbActor::new(row)?).await
}

fn collection(id: String, total: Option<u64>) -> Response {
    let mut body = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "OrderedCollection",
        "id": id,
        "orderedItems": [],
    });
    if let Some(n) = total {
        body["totalItems"] = n.into();
    }
    FederationJson(body).into_response()
}

/// A group's collection `{group}/{name}` listing these ids in full.
fn listed(g: &DbActor, name: &str, ids: Vec<String>) -> Response {
    let body = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "OrderedCollection",
        "id": format!("{}/{name}", g.row.ap_id),
        "totalItems": ids.len(),
        "orderedItems": ids,
    });
    FederationJson(body).into_response()
}

/// Members-only content, and every "not here" answer of a content route:
/// never kept by a shared cache, so one member's copy is never served to
/// someone else, and a 404 looks the same whether or not something exists.
fn private(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private"),
    );
    res.headers_mut().insert(
        header::VARY,
        header::HeaderValue::from_static("Accept, Signature"),
    );
    res
}

/// A group's content route: the group, once the fetcher may read it; any
/// refusal is the plain private 404.
async fn readable_group(data: &FedData, fetch: &Fetch, name: &str) -> Result<DbActor, Response> {
    let g = local_actor(data, name, ActorKind::Group)
        .await
        .map_err(|e| private(e.into_response()))?;
    may_fetch_content(data, who(fetch), &g.row)
        .await
        .map_err(|e| private(e.into_response()))?;
    Ok(g)
}

fn finish(g: &DbActor, res: Response) -> Response {
    if crate::service::access::visibility(&g.row) == crate::domain::group::Visibility::Public {
        res
    } else {
        private(res)
    }
}

/// A group's members: the count only (none when the group hides it).
pub async fn get_group_followers(
    data: FedData,
    fetch: Fetch,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let g = match readable_group(&data, &fetch, &name).await {
        Ok(g) => g,
        Err(r) => return Ok(r),
    };
    let n = if g.row.member_count_hidden {
        None
    } else {
        Some(db::follows::count_members(&data.db, g.row.id).await?)
    };
    Ok(finish(
        &g,
        collection(format!("{}/followers", g.row.ap_id), n),
    ))
}

/// A group's owner and moderators (FEP-1b12, as Lemmy reads them from the
/// group's `attributedTo`).
pub async fn get_group_moderators(
    data: FedData,
    fetch: Fetch,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let g = match readable_group(&data, &fetch, &name).await {
        Ok(g) => g,
        Err(r) => return Ok(r),
    };
    let staff: Vec<String> = db::roles::staff(&data.db, g.row.id)
        .await?
        .into_iter()
        .map(|(_, a)| a.ap_id)
        .collect();
    Ok(finish(&g, listed(&g, "moderators", staff)))
}

/// The groups a group is linked with (both sides agreed).
pub async fn get_group_links(
    data: FedData,
    fetch: Fetch,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let g = match readable_group(&data, &fetch, &name).await {
        Ok(g) => g,
        Err(r) => return Ok(r),
    };
    let links: Vec<String> = db::links::accepted_of(&data.db, g.row.id)
        .await?
        .into_iter()
        .map(|a| a.ap_id)
        .collect();
    Ok(finish(&g, listed(&g, "links", links)))
}

/// A group's outbox: its thread count (items are read through the group's
/// posts, fetched by id).
pub async fn get_group_outbox(
    data: FedData,
    fetch: Fetch,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let g = match readable_group(&data, &fetch, &name).await {
        Ok(g) => g,
        Err(r) => return Ok(r),
    };
    let n = db::posts::count_threads(&data.db, g.row.id).await?;
    Ok(finish(
        &g,
        collection(format!("{}/outbox", g.row.ap_id), Some(n)),
    ))
}

pub async fn get_person_outbox(
    data: FedData,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let p = local_actor(&data, &name, ActorKind::Person).await?;
    Ok(collection(format!("{}/outbox", p.row.ap_id), Some(0)))
}

/// People have no followers here (only groups do): an empty collection.
pub async fn get_person_followers(
    data: FedData,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let p = local_actor(&data, &name, ActorKind::Person).await?;
    Ok(collection(format!("{}/followers", p.row.ap_id), Some(0)))
}

/// A post, or a Tombstone with 410 once deleted (peers delete their copy).
pub async fn get_post(
    data: FedData,
    fetch: Fetch,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let not_found = || private(AppError::not_found("post").into_response());
    let Some(row) = db::posts::by_id(&data.db, id)
        .await?
        .filter(|p| p.local && p.held_at.is_none())
    else {
        return Ok(not_found());
    };
    let Some(group) = db::actors::by_id(&data.db, row.group_id).await? else {
        return Ok(not_found());
    };
    // A browser is sent to the page, which asks its own question (is the
    // viewer signed in, and a member?); everyone else must be let in here.
    let browser = fetch.is_none();
    if !browser && may_fetch_content(&data, who(&fetch), &group).await.is_err() {
        return Ok(not_found());
    }
    let public =
        crate::service::access::visibility(&group) == crate::domain::group::Visibility::Public;
    let seal = |res: Response| if public { res } else { private(res) };
    if browser && !public && row.deleted_at.is_some() {
        return Ok(not_found());
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
        return Ok(seal(res));
    }
    let json = DbPost::new(row)?.into_json(&data).await?;
    let mut res = FederationJson(WithContext::new(json, object_context())).into_response();
    res.headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("Accept"));
    Ok(seal(res))
}
