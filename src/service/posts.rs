//! Threads and replies by local members: post, edit, delete. The change and
//! its federation (Create/Update/Delete to a remote group's inbox, or our
//! group's Announce to every member server) are written in one transaction.

use chrono::Utc;
use sea_orm::ConnectionTrait;
use url::Url;

use super::{compose, users::CurrentUser};
use crate::{
    db::{self, entities::post, posts::NewPost},
    domain::{content, group::Visibility, rules},
    error::AppError,
    federation::{
        FedData,
        activities::{create::Create, delete::Delete, update::Update},
        objects::{actor::DbActor, post::post_to_json},
        outbox,
    },
};

async fn group_of(data: &FedData, group_id: i64) -> Result<DbActor, AppError> {
    let row = db::actors::by_id(&data.db, group_id)
        .await?
        .ok_or_else(|| AppError::not_found("group"))?;
    DbActor::new(row)
}

async fn require_member(data: &FedData, me: &CurrentUser, group: &DbActor) -> Result<(), AppError> {
    let state = db::follows::state(&data.db, me.actor.id, group.row.id).await?;
    if !rules::may_post_in_group(state) {
        return Err(AppError::forbidden("join this group before posting in it"));
    }
    Ok(())
}

/// Send `activity` by `me` where it must go: a remote group's inbox, or, for
/// our own group, the group's Announce to every member server; and straight
/// to the remote people it mentions or answers (`direct`), as Mastodon does.
async fn federate<A: serde::Serialize>(
    txn: &impl ConnectionTrait,
    data: &FedData,
    me: &DbActor,
    group: &DbActor,
    (id, activity): (&Url, &A),
    direct: &[DbActor],
    new_thread: Option<(&Url, serde_json::Value)>,
) -> Result<(), AppError> {
    let visibility = super::access::visibility(&group.row);
    if group.row.local && !visibility.federates() {
        return Ok(());
    }
    let mut inboxes: Vec<String> = vec![];
    if group.row.local {
        match new_thread {
            Some((object, embedded)) => {
                outbox::announce_thread_to_members(
                    txn, &data.urls, group, activity, object, embedded,
                )
                .await?
            }
            None => outbox::announce_to_members(txn, &data.urls, group, activity).await?,
        }
    } else {
        inboxes.push(group.row.inbox.clone());
    }
    for a in direct {
        // In a members-only group, only members are told directly: a
        // mention never hands the post to someone outside.
        if visibility != Visibility::Public
            && !super::access::is_member_or_staff(txn, &group.row, a.row.id).await?
        {
            continue;
        }
        let inbox = if visibility == Visibility::Public {
            a.row
                .shared_inbox
                .clone()
                .unwrap_or_else(|| a.row.inbox.clone())
        } else {
            a.row.inbox.clone()
        };
        if !inboxes.contains(&inbox) {
            inboxes.push(inbox);
        }
    }
    outbox::queue(txn, &data.urls, id, activity, me, inboxes).await
}

/// The remote people a post goes to directly: those it mentions, and the
/// author of the post it answers.
async fn direct_recipients(
    data: &FedData,
    mentioned: Vec<DbActor>,
    parent: Option<&post::Model>,
) -> Result<Vec<DbActor>, AppError> {
    let mut out = mentioned;
    if let Some(p) = parent
        && let Some(a) = db::actors::by_id(&data.db, p.author_id).await?
        && !a.local
        && a.kind != crate::domain::ActorKind::Group.as_str()
        && !out.iter().any(|x| x.row.id == a.id)
    {
        out.push(DbActor::new(a)?);
    }
    Ok(out)
}

async fn publish_new(
    data: &FedData,
    me: &CurrentUser,
    group: &DbActor,
    mut new: NewPost,
    direct: &[DbActor],
) -> Result<post::Model, AppError> {
    let thread = match new.thread_id {
        Some(t) => db::posts::by_id(&data.db, t).await?,
        None => None,
    };
    let held =
        super::moderation::screen_new_post(&data.db, &group.row, me.actor.id, thread.as_ref())
            .await?;
    let author = DbActor::new(me.actor.clone())?;
    let txn = db::write_txn(&data.db).await?;
    // The id comes from the row id: insert with a placeholder, then set it.
    new.ap_id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let mut row = db::posts::insert(&txn, new).await?;
    let ap_id = data.urls.post(row.id);
    db::posts::set_ap_id(&txn, row.id, ap_id.as_str()).await?;
    row.ap_id = ap_id.to_string();
    if held {
        // Waits for a moderator: nothing leaves until it is approved.
        let now = Utc::now();
        db::moderation::set_held(&txn, row.id, Some(now)).await?;
        row.held_at = Some(now);
        txn.commit().await?;
        return Ok(row);
    }
    publish_federation(&txn, data, &author, group, &row, direct).await?;
    txn.commit().await?;
    data.wake_delivery();
    Ok(row)
}

/// The Create (and, for a thread in our group, the group's boost) of a post
/// now visible, queued in `txn`.
async fn publish_federation(
    txn: &impl ConnectionTrait,
    data: &FedData,
    author: &DbActor,
    group: &DbActor,
    row: &post::Model,
    direct: &[DbActor],
) -> Result<(), AppError> {
    let ap_id = Url::parse(&row.ap_id)?;
    let json = post_to_json(row, data).await?;
    let embedded = serde_json::to_value(&json)?;
    let id = data.urls.new_activity("create");
    let create = Create::new(id.clone(), author, json);
    // A new thread in our group: each member server gets the group's boost
    // it reads (Mastodon shows a boost of the post itself, not of a Create).
    let thread = (group.row.local && row.thread_id.is_none()).then_some((&ap_id, embedded));
    federate(txn, data, author, group, (&id, &create), direct, thread).await
}

/// A held post a moderator approved: federated now. A local author's post
/// goes out as if just written; a remote member's is passed on by the group.
pub async fn federate_released(
    txn: &impl ConnectionTrait,
    data: &FedData,
    group: &DbActor,
    row: &post::Model,
) -> Result<(), AppError> {
    let author = db::actors::by_id(txn, row.author_id)
        .await?
        .ok_or_else(|| AppError::internal("post without author"))?;
    let author = DbActor::new(author)?;
    if author.row.local {
        let parent = match row.in_reply_to_id {
            Some(pid) => db::posts::by_id(txn, pid).await?,
            None => None,
        };
        let mentioned = mentioned_actors(data, row).await?;
        let direct = direct_recipients(data, mentioned, parent.as_ref()).await?;
        return publish_federation(txn, data, &author, group, row, &direct).await;
    }
    let object = Url::parse(&row.ap_id)?;
    // Members-only: carried whole (nobody else may fetch it).
    let json = serde_json::to_value(post_to_json(row, data).await?)?;
    outbox::announce_object_to_members(txn, &data.urls, group, &object, json).await
}

/// What a member writes: Markdown `body`, an optional content warning.
pub struct Draft<'a> {
    pub title: Option<&'a str>,
    pub body: &'a str,
    pub content_warning: Option<&'a str>,
}

#[tracing::instrument(skip_all, fields(group = %group.handle()))]
pub async fn create_thread(
    data: &FedData,
    me: &CurrentUser,
    group: &DbActor,
    draft: Draft<'_>,
) -> Result<post::Model, AppError> {
    let title =
        content::validate_title(draft.title.unwrap_or_default()).map_err(AppError::BadRequest)?;
    let body = content::validate_body(draft.body).map_err(AppError::BadRequest)?;
    let warning = match draft.content_warning {
        // Not given at all (the API): the group's default applies.
        None => group.row.default_content_warning.clone(),
        given => compose::validate_warning(given)?,
    };
    require_member(data, me, group).await?;
    let composed = compose::compose(data, Some(title), body, warning).await?;
    let direct = direct_recipients(data, composed.mentioned, None).await?;
    let new = NewPost {
        ap_id: String::new(),
        author_id: me.actor.id,
        group_id: group.row.id,
        thread_id: None,
        in_reply_to_id: None,
        body: composed.body,
        local: true,
        published_at: Utc::now(),
        updated_at: None,
    };
    publish_new(data, me, group, new, &direct).await
}

#[tracing::instrument(skip_all, fields(parent = parent_id))]
pub async fn reply(
    data: &FedData,
    me: &CurrentUser,
    parent_id: i64,
    draft: Draft<'_>,
) -> Result<post::Model, AppError> {
    if draft.title.is_some_and(|t| !t.trim().is_empty()) {
        return Err(AppError::bad_request("a reply has no title"));
    }
    let body = content::validate_body(draft.body).map_err(AppError::BadRequest)?;
    let warning = compose::validate_warning(draft.content_warning)?;
    let parent = db::posts::by_id(&data.db, parent_id)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or_else(|| AppError::not_found("post"))?;
    let group = group_of(data, parent.group_id).await?;
    require_member(data, me, &group).await?;
    let composed = compose::compose(data, None, body, warning).await?;
    let direct = direct_recipients(data, composed.mentioned, Some(&parent)).await?;
    let new = NewPost {
        ap_id: String::new(),
        author_id: me.actor.id,
        group_id: group.row.id,
        thread_id: Some(parent.thread_id.unwrap_or(parent.id)),
        in_reply_to_id: Some(parent.id),
        body: composed.body,
        local: true,
        published_at: Utc::now(),
        updated_at: None,
    };
    publish_new(data, me, &group, new, &direct).await
}

/// The remote actors a stored post mentions (known ones only: no lookups).
async fn mentioned_actors(data: &FedData, post: &post::Model) -> Result<Vec<DbActor>, AppError> {
    let mut out = vec![];
    for t in db::posts::tags_of(post) {
        if t.kind == crate::domain::markup::TagKind::Mention
            && let Some(a) = db::actors::by_ap_id(&data.db, &t.href).await?
            && !a.local
        {
            out.push(DbActor::new(a)?);
        }
    }
    Ok(out)
}

async fn own_live_post(data: &FedData, me: &CurrentUser, id: i64) -> Result<post::Model, AppError> {
    let post = db::posts::by_id(&data.db, id)
        .await?
        .filter(|p| p.deleted_at.is_none())
        .ok_or_else(|| AppError::not_found("post"))?;
    if !rules::may_change_post(me.actor.id, post.author_id) {
        return Err(AppError::forbidden("you can only change your own posts"));
    }
    Ok(post)
}

/// Edit my post. `content_warning`: None keeps the current one, `Some("")`
/// removes it.
#[tracing::instrument(skip_all, fields(post = id))]
pub async fn edit(
    data: &FedData,
    me: &CurrentUser,
    id: i64,
    draft: Draft<'_>,
) -> Result<post::Model, AppError> {
    let post = own_live_post(data, me, id).await?;
    let body = content::validate_body(draft.body).map_err(AppError::BadRequest)?;
    let title = match (draft.title, post.thread_id) {
        (Some(t), None) => Some(content::validate_title(t).map_err(AppError::BadRequest)?),
        (Some(_), Some(_)) => return Err(AppError::bad_request("a reply has no title")),
        (None, _) => None,
    };
    let warning = match draft.content_warning {
        Some(cw) => compose::validate_warning(Some(cw))?,
        None => post.content_warning.clone(),
    };
    let group = group_of(data, post.group_id).await?;
    let author = DbActor::new(me.actor.clone())?;
    let composed = compose::compose(data, title, body, warning).await?;
    let parent = match post.in_reply_to_id {
        Some(pid) => db::posts::by_id(&data.db, pid).await?,
        None => None,
    };
    let direct = direct_recipients(data, composed.mentioned, parent.as_ref()).await?;
    let now = Utc::now();
    let txn = db::write_txn(&data.db).await?;
    db::posts::update_content(&txn, post.id, composed.body, now).await?;
    let row = db::posts::by_id(&txn, post.id)
        .await?
        .ok_or_else(|| AppError::not_found("post"))?;
    let json = post_to_json(&row, data).await?;
    let aid = data.urls.new_activity("update");
    let update = Update::new(aid.clone(), &author, json);
    federate(&txn, data, &author, &group, (&aid, &update), &direct, None).await?;
    txn.commit().await?;
    data.wake_delivery();
    Ok(row)
}

#[tracing::instrument(skip_all, fields(post = id))]
pub async fn delete(data: &FedData, me: &CurrentUser, id: i64) -> Result<(), AppError> {
    let post = own_live_post(data, me, id).await?;
    let group = group_of(data, post.group_id).await?;
    let author = DbActor::new(me.actor.clone())?;
    let object = Url::parse(&post.ap_id)?;
    let aid = data.urls.new_activity("delete");
    let mut cc = vec![];
    if let Some(f) = &group.row.followers {
        cc.push(f.clone());
    }
    let mut to = vec![group.row.ap_id.clone()];
    if super::access::visibility(&group.row) == Visibility::Public {
        to.push(crate::federation::PUBLIC_AUDIENCE.into());
    }
    let delete = Delete::new(aid.clone(), &author, &object, to, cc);
    let parent = match post.in_reply_to_id {
        Some(pid) => db::posts::by_id(&data.db, pid).await?,
        None => None,
    };
    let mentioned = mentioned_actors(data, &post).await?;
    let direct = direct_recipients(data, mentioned, parent.as_ref()).await?;
    let txn = db::write_txn(&data.db).await?;
    db::posts::mark_deleted(&txn, post.id).await?;
    // What still waits to carry the post (its Create, the group's Announce,
    // an Update) is cancelled: the Delete follows wherever anything went.
    let n = db::deliveries::cancel_pending_carrying(&txn, &post.ap_id).await?;
    if n > 0 {
        tracing::info!(cancelled = n, "queued copies of a deleted post cancelled");
    }
    federate(&txn, data, &author, &group, (&aid, &delete), &direct, None).await?;
    txn.commit().await?;
    data.wake_delivery();
    Ok(())
}
