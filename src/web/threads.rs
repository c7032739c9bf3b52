//! A thread: the post and its replies, the reply form, sharing it into a
//! linked group, editing and deleting my own posts.

use askama::Template;
use axum::{
    extract::{Path, Query},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;

use super::{
    Layout, Notice, ok, render, see_other,
    session::{CSRF_MESSAGE, Submitted, Viewer},
    views::{self, GroupCard, GroupLinkView, PostItem},
};
use crate::{
    db::{self, entities::post},
    domain::{FollowState, group::Visibility},
    error::AppError,
    federation::FedData,
    service::{access, links, posts},
};

#[derive(Template)]
#[template(path = "thread.html")]
struct ThreadPage {
    l: Layout,
    g: GroupCard,
    op: PostItem,
    replies: Vec<PostItem>,
    reply_count: usize,
    can_reply: bool,
    signed_in: bool,
    reply_to: Option<i64>,
    reply_to_name: Option<String>,
    error: Option<String>,
    body: String,
    content_warning: String,
    preview_html: Option<String>,
    /// The viewer is the group's owner or a moderator, or an admin, and the
    /// group is ours: remove and lock buttons.
    moderates: bool,
    /// No new replies.
    locked: bool,
    /// What went wrong with a moderator's action (remove, lock).
    mod_error: Option<String>,
    /// Linked groups the viewer may share this thread into (a member, a
    /// public group).
    share_targets: Vec<GroupLinkView>,
    /// The share form, as typed.
    share_target: i64,
    share_comment: String,
    share_error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ThreadQuery {
    reply_to: Option<i64>,
    done: Option<String>,
}

async fn thread_view(
    data: &FedData,
    viewer: &Viewer,
    id: i64,
    reply_to: Option<i64>,
) -> Result<ThreadPage, AppError> {
    let (p, a, g) = access::readable_post(&data.db, viewer.user.as_ref(), id).await?;
    if let Some(t) = p.thread_id {
        // A reply's address shows its thread.
        return Box::pin(thread_view(data, viewer, t, reply_to.or(Some(p.id)))).await;
    }
    let me = viewer.user.as_ref().map(|u| u.actor.id);
    let membership = match me {
        Some(id) => db::follows::state(&data.db, id, g.row.id).await?,
        None => None,
    };
    let rows = db::posts::replies_of_thread(&data.db, p.id, 1000).await?;
    let reply_count = rows.len();
    let replies = views::thread_replies(p.id, &rows, me);
    let reply_to = reply_to.filter(|r| *r != p.id && rows.iter().any(|(x, _)| x.id == *r));
    let reply_to_name = reply_to.and_then(|r| {
        rows.iter()
            .find(|(x, _)| x.id == r)
            .map(|(_, a)| views::PersonView::new(a).name)
    });
    let card = GroupCard::new(&g.row, membership);
    let title = p.title.clone().unwrap_or_else(|| "Thread".into());
    let moderates = g.row.local
        && match viewer.user.as_ref() {
            Some(u) => {
                u.user.is_admin
                    || db::roles::role_of(&data.db, g.row.id, u.actor.id)
                        .await?
                        .is_some()
            }
            None => false,
        };
    let locked = p.locked_at.is_some();
    let share_targets = match viewer.user.as_ref() {
        Some(u)
            if membership == Some(FollowState::Accepted)
                && access::visibility(&g.row) == Visibility::Public =>
        {
            links::share_targets(data, u, &g)
                .await?
                .iter()
                .map(GroupLinkView::new)
                .collect()
        }
        _ => vec![],
    };
    Ok(ThreadPage {
        l: Layout::new(data, viewer, title).await?,
        g: card,
        op: PostItem::new(&p, &a, me),
        replies,
        reply_count,
        can_reply: membership == Some(FollowState::Accepted) && !locked,
        signed_in: me.is_some(),
        reply_to,
        reply_to_name,
        error: None,
        body: String::new(),
        content_warning: String::new(),
        preview_html: None,
        moderates,
        locked,
        mod_error: None,
        share_targets,
        share_target: 0,
        share_comment: String::new(),
        share_error: None,
    })
}

/// The thread a post belongs to, with a moderator's failed action explained
/// (and its status); when the thread cannot be shown (it was removed), the
/// error page.
pub(super) async fn thread_with_error(
    data: &FedData,
    viewer: &Viewer,
    post_id: i64,
    e: AppError,
) -> Result<Response, AppError> {
    if !e.status().is_client_error() {
        return Err(e);
    }
    let Some(thread_id) = db::posts::by_id(&data.db, post_id)
        .await?
        .map(|p| p.thread_id.unwrap_or(p.id))
    else {
        return Err(e);
    };
    let Ok(mut page) = thread_view(data, viewer, thread_id, None).await else {
        return Err(e);
    };
    page.mod_error = Some(super::capitalise(&e.to_string()));
    Ok(render(e.status(), &page))
}

pub async fn thread_page(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<ThreadQuery>,
) -> Result<Response, AppError> {
    let mut page = thread_view(&data, &viewer, id, q.reply_to).await?;
    page.l = page.l.with_notice(Notice::from(q.done.as_deref()));
    Ok(ok(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReplyForm {
    body: String,
    content_warning: String,
    /// The post answered (the thread itself when empty).
    parent: Option<i64>,
    action: String,
}

pub async fn reply(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<ReplyForm>,
) -> Result<Response, AppError> {
    let me = viewer.require()?;
    let f = sub.form;
    let mut page = thread_view(&data, &viewer, id, f.parent).await?;
    page.body = f.body.clone();
    page.content_warning = f.content_warning.clone();
    if !sub.csrf_ok {
        page.error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    if f.action == "preview" {
        match super::groups::preview(&f.body) {
            Ok(html) => page.preview_html = Some(html),
            Err(e) => page.error = Some(super::capitalise(&e)),
        }
        return Ok(ok(&page));
    }
    let parent = page.reply_to.unwrap_or(page.op.id);
    let draft = posts::Draft {
        title: None,
        body: &f.body,
        content_warning: Some(f.content_warning.as_str()).filter(|c| !c.trim().is_empty()),
    };
    match posts::reply(&data, me, parent, draft).await {
        Ok(row) => Ok(see_other(&format!(
            "/t/{}?done=replied#p{}",
            page.op.id, row.id
        ))),
        Err(e) if e.status().is_client_error() => {
            page.error = Some(super::capitalise(&e.to_string()));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ShareForm {
    /// The linked group's id.
    target: String,
    comment: String,
}

/// Share a thread into a linked group: a new thread there, with a link back.
pub async fn share(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<ShareForm>,
) -> Result<Response, AppError> {
    let me = viewer.require()?;
    let f = sub.form;
    let mut page = thread_view(&data, &viewer, id, None).await?;
    let target = f.target.trim().parse::<i64>().ok();
    page.share_target = target.unwrap_or(0);
    page.share_comment = f.comment.clone();
    let result = match target {
        _ if !sub.csrf_ok => Err(AppError::forbidden(CSRF_MESSAGE)),
        None => Err(AppError::bad_request(
            "choose the linked group to share into",
        )),
        Some(t) => links::share(&data, me, page.op.id, t, &f.comment).await,
    };
    match result {
        Ok(row) => Ok(see_other(&format!("/t/{}?done=posted", row.id))),
        Err(e) if e.status().is_client_error() => {
            page.share_error = Some(super::capitalise(&e.to_string()));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "edit.html")]
struct EditPage {
    l: Layout,
    id: i64,
    thread_id: i64,
    is_thread: bool,
    error: Option<String>,
    title: String,
    body: String,
    content_warning: String,
    preview_html: Option<String>,
}

async fn my_post(
    data: &FedData,
    viewer: &Viewer,
    id: i64,
) -> Result<(post::Model, EditPage), AppError> {
    let me = viewer.require()?;
    let (p, _, _) = access::readable_post(&data.db, Some(me), id).await?;
    if p.author_id != me.actor.id {
        return Err(AppError::forbidden("you can only change your own posts"));
    }
    let page = EditPage {
        l: Layout::new(data, viewer, "Edit post").await?,
        id: p.id,
        thread_id: p.thread_id.unwrap_or(p.id),
        is_thread: p.thread_id.is_none(),
        error: None,
        title: p.title.clone().unwrap_or_default(),
        body: p.source.clone().unwrap_or_default(),
        content_warning: p.content_warning.clone().unwrap_or_default(),
        preview_html: None,
    };
    Ok((p, page))
}

pub async fn edit_page(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let (_, page) = my_post(&data, &viewer, id).await?;
    Ok(ok(&page))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EditForm {
    title: String,
    body: String,
    content_warning: String,
    action: String,
}

pub async fn edit(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<EditForm>,
) -> Result<Response, AppError> {
    let (p, mut page) = my_post(&data, &viewer, id).await?;
    let me = viewer.require()?;
    let f = sub.form;
    page.title = f.title.clone();
    page.body = f.body.clone();
    page.content_warning = f.content_warning.clone();
    if !sub.csrf_ok {
        page.error = Some(CSRF_MESSAGE.into());
        return Ok(render(StatusCode::FORBIDDEN, &page));
    }
    if f.action == "preview" {
        match super::groups::preview(&f.body) {
            Ok(html) => page.preview_html = Some(html),
            Err(e) => page.error = Some(super::capitalise(&e)),
        }
        return Ok(ok(&page));
    }
    let draft = posts::Draft {
        title: p.thread_id.is_none().then_some(f.title.as_str()),
        body: &f.body,
        // Empty removes the warning.
        content_warning: Some(f.content_warning.as_str()),
    };
    match posts::edit(&data, me, id, draft).await {
        Ok(_) => Ok(see_other(&format!(
            "/t/{}?done=edited#p{}",
            page.thread_id, id
        ))),
        Err(e) if e.status().is_client_error() => {
            page.error = Some(super::capitalise(&e.to_string()));
            Ok(render(e.status(), &page))
        }
        Err(e) => Err(e),
    }
}

#[derive(Template)]
#[template(path = "delete.html")]
struct DeletePage {
    l: Layout,
    id: i64,
    thread_id: i64,
    is_thread: bool,
    excerpt: String,
    error: Option<String>,
}

pub async fn delete_page(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let (p, page) = my_post(&data, &viewer, id).await?;
    Ok(ok(&DeletePage {
        l: Layout::new(&data, &viewer, "Delete post").await?,
        id,
        thread_id: page.thread_id,
        is_thread: page.is_thread,
        excerpt: excerpt(&p),
        error: None,
    }))
}

fn excerpt(p: &post::Model) -> String {
    let text = crate::domain::content::sanitize_plain(&p.content_html, 200);
    p.title.clone().unwrap_or(text)
}

pub async fn delete(
    data: FedData,
    viewer: Viewer,
    Path(id): Path<i64>,
    sub: Submitted<super::auth::EmptyForm>,
) -> Result<Response, AppError> {
    let (p, page) = my_post(&data, &viewer, id).await?;
    let me = viewer.require()?;
    if !sub.csrf_ok {
        return Ok(render(
            StatusCode::FORBIDDEN,
            &DeletePage {
                l: Layout::new(&data, &viewer, "Delete post").await?,
                id,
                thread_id: page.thread_id,
                is_thread: page.is_thread,
                excerpt: excerpt(&p),
                error: Some(CSRF_MESSAGE.into()),
            },
        ));
    }
    posts::delete(&data, me, id).await?;
    let g = db::actors::by_id(&data.db, p.group_id)
        .await?
        .ok_or_else(|| AppError::not_found("group"))?;
    if page.is_thread {
        Ok(see_other(&format!(
            "/g/{}?done=deleted",
            views::group_path(&g)
        )))
    } else {
        Ok(see_other(&format!("/t/{}?done=deleted", page.thread_id)))
    }
}
