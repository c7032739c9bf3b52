//! `/api/v1/posts/*`: read a post and its replies, reply, edit, delete.

use axum::{
    Json, Router,
    extract::{Path, Query},
    http::StatusCode,
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiJson, Auth, MaybeAuth};
use crate::{
    app::AppState,
    db::{
        self,
        entities::{actor, post},
    },
    domain::markup::TagKind,
    error::AppError,
    federation::{FedData, objects::actor::DbActor},
    service::{access, posts},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/posts/{id}", get(show).patch(edit).delete(delete))
        .route("/api/v1/posts/{id}/replies", get(replies).post(reply))
}

#[derive(Serialize)]
pub struct AuthorView {
    handle: String,
    name: Option<String>,
    url: String,
}

#[derive(Serialize)]
pub struct TagView {
    /// `mention` or `hashtag`.
    kind: &'static str,
    name: String,
    url: String,
}

#[derive(Serialize)]
pub struct PostView {
    id: i64,
    url: String,
    group: String,
    author: AuthorView,
    title: Option<String>,
    /// Sanitised HTML.
    content_html: String,
    /// What the author typed, Markdown (local posts only).
    source: Option<String>,
    /// Shown instead of the content until the reader opens it.
    content_warning: Option<String>,
    sensitive: bool,
    /// Mentions and hashtags.
    tags: Vec<TagView>,
    thread_id: Option<i64>,
    in_reply_to_id: Option<i64>,
    published: DateTime<Utc>,
    updated: Option<DateTime<Utc>>,
}

impl PostView {
    pub fn new(p: &post::Model, author: &actor::Model, group: &DbActor) -> Self {
        PostView {
            id: p.id,
            url: p.ap_id.clone(),
            group: group.handle(),
            author: AuthorView {
                handle: format!("{}@{}", author.username, author.domain),
                name: author.display_name.clone(),
                url: author.ap_id.clone(),
            },
            title: p.title.clone(),
            content_html: p.content_html.clone(),
            source: p.source.clone(),
            content_warning: p.content_warning.clone(),
            sensitive: p.sensitive,
            tags: db::posts::tags_of(p)
                .into_iter()
                .map(|t| TagView {
                    kind: match t.kind {
                        TagKind::Mention => "mention",
                        TagKind::Hashtag => "hashtag",
                    },
                    name: t.name,
                    url: t.href,
                })
                .collect(),
            thread_id: p.thread_id,
            in_reply_to_id: p.in_reply_to_id,
            published: p.published_at,
            updated: p.updated_at,
        }
    }
}

async fn show(
    data: FedData,
    MaybeAuth(me): MaybeAuth,
    Path(id): Path<i64>,
) -> Result<Json<PostView>, AppError> {
    let (p, a, g) = access::readable_post(&data.db, me.as_ref(), id).await?;
    Ok(Json(PostView::new(&p, &a, &g)))
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<u64>,
}

/// All replies of a thread (given the thread's id), oldest first.
async fn replies(
    data: FedData,
    MaybeAuth(me): MaybeAuth,
    Path(id): Path<i64>,
    Query(l): Query<Limit>,
) -> Result<Json<Vec<PostView>>, AppError> {
    let (p, _, g) = access::readable_post(&data.db, me.as_ref(), id).await?;
    let thread = p.thread_id.unwrap_or(p.id);
    let limit = l.limit.unwrap_or(500).clamp(1, 1000);
    let rows = db::posts::replies_of_thread(&data.db, thread, limit).await?;
    Ok(Json(
        rows.iter().map(|(p, a)| PostView::new(p, a, &g)).collect(),
    ))
}

#[derive(Deserialize)]
struct NewReply {
    /// Markdown.
    content: String,
    content_warning: Option<String>,
}

async fn reply(
    data: FedData,
    Auth(me, _): Auth,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<NewReply>,
) -> Result<(StatusCode, Json<PostView>), AppError> {
    let draft = posts::Draft {
        title: None,
        body: &req.content,
        content_warning: req.content_warning.as_deref(),
    };
    let row = posts::reply(&data, &me, id, draft).await?;
    let (_, _, g) = access::readable_post(&data.db, Some(&me), row.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(PostView::new(&row, &me.actor, &g)),
    ))
}

#[derive(Deserialize)]
struct EditPost {
    title: Option<String>,
    content: String,
    /// Absent: unchanged; empty: removed.
    content_warning: Option<String>,
}

async fn edit(
    data: FedData,
    Auth(me, _): Auth,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<EditPost>,
) -> Result<Json<PostView>, AppError> {
    let draft = posts::Draft {
        title: req.title.as_deref(),
        body: &req.content,
        content_warning: req.content_warning.as_deref(),
    };
    let row = posts::edit(&data, &me, id, draft).await?;
    let (_, _, g) = access::readable_post(&data.db, Some(&me), row.id).await?;
    Ok(Json(PostView::new(&row, &me.actor, &g)))
}

async fn delete(
    data: FedData,
    Auth(me, _): Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    posts::delete(&data, &me, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
