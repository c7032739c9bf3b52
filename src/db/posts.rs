//! Queries on `posts`: threads, replies, their authors in one go.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::entities::{actor, post};
use crate::domain::markup::Tag;

/// Counts the writes to `posts` made by this process: a page of threads kept
/// in memory (`federation::docs`) is served only while this has not moved.
static CHANGES: AtomicU64 = AtomicU64::new(0);

/// How many writes to `posts` this process has made.
pub fn changes() -> u64 {
    CHANGES.load(Ordering::Acquire)
}

/// Called by every function here that writes `posts`, before it writes.
pub(crate) fn changed() {
    CHANGES.fetch_add(1, Ordering::AcqRel);
}

/// What an author writes: title (threads), sanitised HTML, the source they
/// typed (local posts), content warning, and the post's mentions and hashtags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Body {
    pub title: Option<String>,
    pub html: String,
    pub source: Option<String>,
    pub content_warning: Option<String>,
    pub sensitive: bool,
    pub tags: Vec<Tag>,
}

fn tags_json(tags: &[Tag]) -> Option<String> {
    if tags.is_empty() {
        None
    } else {
        serde_json::to_string(tags).ok()
    }
}

/// A stored post's mentions and hashtags (an unreadable column reads as none).
pub fn tags_of(p: &post::Model) -> Vec<Tag> {
    p.tags
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

pub async fn by_id(db: &impl ConnectionTrait, id: i64) -> Result<Option<post::Model>, DbErr> {
    post::Entity::find_by_id(id).one(db).await
}

pub async fn by_ap_id(
    db: &impl ConnectionTrait,
    ap_id: &str,
) -> Result<Option<post::Model>, DbErr> {
    post::Entity::find()
        .filter(post::Column::ApId.eq(ap_id))
        .one(db)
        .await
}

#[derive(Clone)]
pub struct NewPost {
    pub ap_id: String,
    pub author_id: i64,
    pub group_id: i64,
    pub thread_id: Option<i64>,
    pub in_reply_to_id: Option<i64>,
    pub body: Body,
    pub local: bool,
    pub published_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Insert a post; a reply also moves its thread's last activity forward.
pub async fn insert(db: &impl ConnectionTrait, p: NewPost) -> Result<post::Model, DbErr> {
    changed();
    if let Some(thread) = p.thread_id {
        post::Entity::update_many()
            .col_expr(post::Column::LastActivityAt, p.published_at.into())
            .filter(post::Column::Id.eq(thread))
            .filter(
                Condition::any()
                    .add(post::Column::LastActivityAt.is_null())
                    .add(post::Column::LastActivityAt.lt(p.published_at)),
            )
            .exec(db)
            .await?;
    }
    post::ActiveModel {
        last_activity_at: Set(Some(p.published_at)),
        ap_id: Set(p.ap_id),
        author_id: Set(p.author_id),
        group_id: Set(p.group_id),
        thread_id: Set(p.thread_id),
        in_reply_to_id: Set(p.in_reply_to_id),
        tags: Set(tags_json(&p.body.tags)),
        title: Set(p.body.title),
        content_html: Set(p.body.html),
        source: Set(p.body.source),
        content_warning: Set(p.body.content_warning),
        sensitive: Set(p.body.sensitive),
        local: Set(p.local),
        published_at: Set(p.published_at),
        updated_at: Set(p.updated_at),
        deleted_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// A local post gets its id from its row id: insert, then set the URL.
pub async fn set_ap_id(db: &impl ConnectionTrait, id: i64, ap_id: &str) -> Result<(), DbErr> {
    changed();
    post::Entity::update_many()
        .col_expr(post::Column::ApId, ap_id.into())
        .filter(post::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// An edit: new content; the title changes only when one is given.
pub async fn update_content(
    db: &impl ConnectionTrait,
    id: i64,
    body: Body,
    updated_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    changed();
    let mut q = post::Entity::update_many()
        .col_expr(post::Column::ContentHtml, body.html.into())
        .col_expr(post::Column::Source, body.source.into())
        .col_expr(post::Column::ContentWarning, body.content_warning.into())
        .col_expr(post::Column::Sensitive, body.sensitive.into())
        .col_expr(post::Column::Tags, tags_json(&body.tags).into())
        .col_expr(post::Column::UpdatedAt, Some(updated_at).into());
    if let Some(t) = body.title {
        q = q.col_expr(post::Column::Title, Some(t).into());
    }
    q.filter(post::Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// Soft delete: the row stays as a tombstone (410 for fetches), content goes.
pub async fn mark_deleted(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    changed();
    post::Entity::update_many()
        .col_expr(post::Column::DeletedAt, Some(Utc::now()).into())
        .col_expr(post::Column::ContentHtml, String::new().into())
        .col_expr(post::Column::Source, Option::<String>::None.into())
        .col_expr(post::Column::Title, Option::<String>::None.into())
        .col_expr(post::Column::ContentWarning, Option::<String>::None.into())
        .col_expr(post::Column::Tags, Option::<String>::None.into())
        .filter(post::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// One page of a group's live threads, newest first, with their authors: two
/// queries, whatever the page size.
pub async fn threads_of_group(
    db: &impl ConnectionTrait,
    group_id: i64,
    before_id: Option<i64>,
    limit: u64,
) -> Result<Vec<(post::Model, actor::Model)>, DbErr> {
    let mut q = post::Entity::find()
        .filter(post::Column::GroupId.eq(group_id))
        .filter(post::Column::ThreadId.is_null())
        .filter(live());
    if let Some(b) = before_id {
        q = q.filter(post::Column::Id.lt(b));
    }
    let posts = q
        .order_by_desc(post::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    with_authors(db, posts).await
}

/// The live replies of a thread, oldest first, with their authors.
pub async fn replies_of_thread(
    db: &impl ConnectionTrait,
    thread_id: i64,
    limit: u64,
) -> Result<Vec<(post::Model, actor::Model)>, DbErr> {
    let posts = post::Entity::find()
        .filter(post::Column::ThreadId.eq(thread_id))
        .filter(live())
        .order_by_asc(post::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    with_authors(db, posts).await
}

pub async fn count_replies(db: &impl ConnectionTrait, thread_id: i64) -> Result<u64, DbErr> {
    post::Entity::find()
        .filter(post::Column::ThreadId.eq(thread_id))
        .filter(live())
        .count(db)
        .await
}

pub async fn count_local(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    post::Entity::find()
        .filter(post::Column::Local.eq(true))
        .filter(live())
        .count(db)
        .await
}

async fn with_authors(
    db: &impl ConnectionTrait,
    posts: Vec<post::Model>,
) -> Result<Vec<(post::Model, actor::Model)>, DbErr> {
    let mut ids: Vec<i64> = posts.iter().map(|p| p.author_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let authors = actor::Entity::find()
        .filter(Condition::all().add(actor::Column::Id.is_in(ids)))
        .all(db)
        .await?;
    Ok(posts
        .into_iter()
        .filter_map(|p| {
            let a = authors.iter().find(|a| a.id == p.author_id)?.clone();
            Some((p, a))
        })
        .collect())
}

pub async fn count_threads(db: &impl ConnectionTrait, group_id: i64) -> Result<u64, DbErr> {
    post::Entity::find()
        .filter(post::Column::GroupId.eq(group_id))
        .filter(post::Column::ThreadId.is_null())
        .filter(live())
        .count(db)
        .await
}

/// The live threads of the given groups, newest activity first, with their
/// authors (a member's home page).
pub async fn threads_of_groups(
    db: &impl ConnectionTrait,
    group_ids: Vec<i64>,
    offset: u64,
    limit: u64,
) -> Result<Vec<(post::Model, actor::Model)>, DbErr> {
    if group_ids.is_empty() {
        return Ok(vec![]);
    }
    let posts = post::Entity::find()
        .filter(post::Column::GroupId.is_in(group_ids))
        .filter(post::Column::ThreadId.is_null())
        .filter(live())
        .order_by_desc(post::Column::LastActivityAt)
        .order_by_desc(post::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    with_authors(db, posts).await
}

/// Live reply counts for the given threads.
pub async fn reply_counts(
    db: &impl ConnectionTrait,
    thread_ids: Vec<i64>,
) -> Result<std::collections::HashMap<i64, u64>, DbErr> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    if thread_ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(Option<i64>, i64)> = post::Entity::find()
        .select_only()
        .column(post::Column::ThreadId)
        .column_as(Expr::col(post::Column::Id).count(), "n")
        .filter(post::Column::ThreadId.is_in(thread_ids))
        .filter(live())
        .group_by(post::Column::ThreadId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(t, n)| Some((t?, u64::try_from(n).unwrap_or(0))))
        .collect())
}

/// Neither deleted nor hidden by an admin.
fn live() -> Condition {
    Condition::all()
        .add(post::Column::DeletedAt.is_null())
        .add(post::Column::HiddenAt.is_null())
        .add(post::Column::HeldAt.is_null())
}

/// Hide (or show again) the posts of these authors; how many changed.
pub async fn set_hidden_for_authors(
    db: &impl ConnectionTrait,
    author_ids: Vec<i64>,
    hidden: bool,
) -> Result<u64, DbErr> {
    changed();
    if author_ids.is_empty() {
        return Ok(0);
    }
    let at = hidden.then(Utc::now);
    let mut q = post::Entity::update_many()
        .col_expr(post::Column::HiddenAt, at.into())
        .filter(post::Column::AuthorId.is_in(author_ids));
    q = if hidden {
        q.filter(post::Column::HiddenAt.is_null())
    } else {
        q.filter(post::Column::HiddenAt.is_not_null())
    };
    Ok(q.exec(db).await?.rows_affected)
}

/// Delete (tombstone) every live post of these authors; how many.
pub async fn delete_for_authors(
    db: &impl ConnectionTrait,
    author_ids: Vec<i64>,
) -> Result<u64, DbErr> {
    changed();
    if author_ids.is_empty() {
        return Ok(0);
    }
    Ok(post::Entity::update_many()
        .col_expr(post::Column::DeletedAt, Some(Utc::now()).into())
        .col_expr(post::Column::ContentHtml, String::new().into())
        .col_expr(post::Column::Source, Option::<String>::None.into())
        .col_expr(post::Column::Title, Option::<String>::None.into())
        .col_expr(post::Column::ContentWarning, Option::<String>::None.into())
        .col_expr(post::Column::Tags, Option::<String>::None.into())
        .filter(post::Column::AuthorId.is_in(author_ids))
        .filter(post::Column::DeletedAt.is_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// Every live post by this author (held ones too), oldest first.
pub async fn all_by_author(
    db: &impl ConnectionTrait,
    author_id: i64,
) -> Result<Vec<post::Model>, DbErr> {
    post::Entity::find()
        .filter(post::Column::AuthorId.eq(author_id))
        .filter(post::Column::DeletedAt.is_null())
        .order_by_asc(post::Column::Id)
        .all(db)
        .await
}
